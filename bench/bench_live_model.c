/*
 * bench_live_model.c — what the model of a live HLS stream costs as the stream runs.
 *
 * A live stream keeps every segment it has played in its model: the playlist's record of each
 * segment and its layout entry (size and offset). Each reload writes the model out with the new
 * segments and parses it again (hls_live_merge). Both grow with the stream's age. This program
 * builds the model a stream has after 1, 6, 12 and 24 hours (1 s and 6 s segments, sequential
 * segment names, one new segment per reload), and prints:
 *   - the heap the model and its layout hold (counted by an allocator given to kithara), and
 *     bytes per segment;
 *   - one reload's merge (median of 5), and that time over the time between reloads (the share
 *     of one core the reloads take at that age), for a model whose released segments an earlier
 *     merge released (as a running stream's are: the merge copies them), next to the merge that
 *     writes out and parses every segment (hls_live_merge_whole, the reference) and the ratio.
 * Then it makes the model reload by reload (3,600 merges of one new segment) for the playlists
 * live servers write: plain, dated on every segment, also under an AES-128 key, also fMP4, named
 * by time, by hash, or cut from one resource by byte ranges, and prints what one reload adds to
 * the heap and that over a day.
 * Target of the live work (24 hours): heap growth < 1 MiB; the merge's share is printed, not
 * judged. The reference for "growth" is the model at 1 hour, measured in the same run.
 * Usage: bench_live_model
 */
#include "hls/layout.h"
#include "hls/live.h"
#include "held_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 5
#define BASE "http://cdn.example/live/channel-one/aac-128k/"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The bytes kithara holds (held_alloc.h). */
static size_t heap_bytes(void)
{
    return (size_t)held_alloc_bytes();
}

/* What a live server writes besides the segments' durations and URIs. */
enum {
    DATED = 1,     /* EXT-X-PROGRAM-DATE-TIME on every segment */
    ENCRYPTED = 2, /* EXT-X-KEY (AES-128, explicit IV) at the top of every playlist */
    FMP4 = 4,      /* EXT-X-MAP at the top of every playlist */
    TIMED = 8,     /* segments named by their start in ms, not by their sequence number */
    HASHED = 16,   /* segments named by a hash: no number to count on */
    RANGED = 32,   /* segments cut from one resource by byte ranges */
};

/* Appends segment `seq`'s lines (`seg_s` seconds each) to text[*n, cap). */
static void put_segment(char *text, size_t cap, size_t *n, uint64_t seq, double seg_s, int extras)
{
    if (extras & DATED) {
        time_t when = (time_t)(1796515200 + (double)seq * seg_s); /* from 2026-12-06 00:00Z */
        struct tm tm;
        gmtime_r(&when, &tm);
        *n +=
            strftime(text + *n, cap - *n, "#EXT-X-PROGRAM-DATE-TIME:%Y-%m-%dT%H:%M:%S.000Z\n", &tm);
    }
    if (extras & RANGED) {
        *n += (size_t)snprintf(text + *n, cap - *n,
                               "#EXT-X-BYTERANGE:16000@%llu\n#EXTINF:%.3f,\n" BASE "live.aac\n",
                               (unsigned long long)(seq * 16000), seg_s);
        return;
    }
    unsigned long long name =
        (extras & TIMED)    ? 1796515200000ull + (unsigned long long)((double)seq * seg_s * 1000)
        : (extras & HASHED) ? (seq + 1) * 0x9e3779b97f4a7c15ull
                            : seq;
    *n += (size_t)snprintf(text + *n, cap - *n,
                           (extras & HASHED) ? "#EXTINF:%.3f,\n" BASE "%016llx.ts\n"
                                             : "#EXTINF:%.3f,\n" BASE "seg_%llu.ts\n",
                           seg_s, name);
}

/* A live playlist of `count` segments of `seg_s` seconds from media sequence `first`. */
static hls_playlist *live_playlist(uint64_t first, size_t count, double seg_s, int extras)
{
    size_t cap = count * 160 + 512, n = 0;
    char *text = malloc(cap);
    if (!text)
        return NULL;
    n += (size_t)snprintf(text, cap,
                          "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:%.0f\n"
                          "#EXT-X-MEDIA-SEQUENCE:%llu\n",
                          seg_s, (unsigned long long)first);
    if (extras & ENCRYPTED)
        n += (size_t)snprintf(text + n, cap - n,
                              "#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\","
                              "IV=0x00112233445566778899aabbccddeeff\n");
    if (extras & FMP4)
        n += (size_t)snprintf(text + n, cap - n, "#EXT-X-MAP:URI=\"init.mp4\"\n");
    for (size_t i = 0; i < count; i++)
        put_segment(text, cap, &n, first + i, seg_s, extras);
    hls_parse_limits big = {.max_segments = count + 1, .max_playlist_bytes = cap};
    hls_playlist *pl = NULL;
    char err[256];
    if (hls_playlist_parse((const uint8_t *)text, n, BASE "index.m3u8", &big, &pl, err,
                           sizeof err) != KTH_OK) {
        fprintf(stderr, "bench_live_model: %s\n", err);
        pl = NULL;
    }
    free(text);
    return pl;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct figure {
    size_t heap;     /* model + layout, bytes */
    double merge_ms; /* one reload's merge, median */
    double whole_ms; /* the same written out whole, median */
} figure;

typedef kth_status (*merge_fn)(const hls_playlist *, size_t, const hls_playlist *, size_t, size_t,
                               bool, const char *, hls_playlist **, char *, size_t);

/* The median of RUNS merges of one new segment (the last of `reloaded`) into `played`, all but
 * the last six segments released; -1 on failure. */
static double merge_ms(merge_fn merge, const hls_playlist *played, const hls_playlist *reloaded)
{
    double ms[RUNS];
    size_t count = played->media.segment_count;
    for (int r = 0; r < RUNS; r++) {
        hls_playlist *merged = NULL;
        char err[256];
        double t0 = now_ms();
        kth_status st = merge(played, count - 6, reloaded, 5, 1, false, BASE "index.m3u8", &merged,
                              err, sizeof err);
        ms[r] = now_ms() - t0;
        if (st != KTH_OK) {
            fprintf(stderr, "bench_live_model: merge: %s\n", err);
            return -1;
        }
        hls_playlist_free(merged);
    }
    qsort(ms, RUNS, sizeof ms[0], cmp_double);
    return ms[RUNS / 2];
}

/* The model of a stream `hours` old, with every played segment's size known, and one reload. */
static int measure(double hours, double seg_s, figure *out)
{
    size_t count = (size_t)(hours * 3600.0 / seg_s);
    size_t before = heap_bytes();
    hls_playlist *played = live_playlist(0, count, seg_s, 0);
    hls_layout *layout = NULL;
    if (!played || hls_layout_new(played, &layout) != KTH_OK)
        return -1;
    for (size_t i = 0; i < hls_layout_entry_count(layout); i++)
        if (hls_layout_set_size(layout, i, 16000) != KTH_OK)
            return -1;
    out->heap = heap_bytes() - before;
    /* The server's window: the last six segments, the newest one not played yet. One merge
     * releases what the stream played before it, as a running stream's model has. */
    hls_playlist *reloaded = live_playlist(count - 5, 6, seg_s, 0), *running = NULL;
    char err[256];
    if (!reloaded || hls_live_merge(played, count - 6, reloaded, 5, 1, false, BASE "index.m3u8",
                                    &running, err, sizeof err) != KTH_OK)
        return -1;
    hls_playlist_free(reloaded);
    reloaded = live_playlist(count - 4, 6, seg_s, 0);
    if (!reloaded)
        return -1;
    out->merge_ms = merge_ms(hls_live_merge, running, reloaded);
    out->whole_ms = merge_ms(hls_live_merge_whole, running, reloaded);
    hls_playlist_free(running);
    hls_playlist_free(reloaded);
    hls_layout_free(layout);
    hls_playlist_free(played);
    return out->merge_ms < 0 || out->whole_ms < 0 ? -1 : 0;
}

/* A stream run through `reloads` reloads of one new 1 s segment each, as a live stream makes
 * its model (merge after merge, from a first window of six), with `extras` in every playlist.
 * Sets *per_reload to the heap one reload adds, measured over the last `reloads` - 600 of them
 * (the first ones size the tables). */
static int run_reloads(int extras, size_t reloads, double *per_reload)
{
    enum { WINDOW = 6, SETTLE = 600 };
    hls_playlist *played = live_playlist(0, WINDOW, 1.0, extras);
    size_t settled = 0;
    for (size_t r = 1; played && r <= reloads; r++) {
        if (r == SETTLE)
            settled = heap_bytes();
        hls_playlist *reloaded = live_playlist(r, WINDOW, 1.0, extras), *merged = NULL;
        char err[256];
        if (!reloaded ||
            hls_live_merge(played, played->media.segment_count - WINDOW, reloaded, WINDOW - 1, 1,
                           false, BASE "index.m3u8", &merged, err, sizeof err) != KTH_OK) {
            fprintf(stderr, "bench_live_model: reload %zu: %s\n", r, reloaded ? err : "parse");
            merged = NULL;
        }
        hls_playlist_free(reloaded);
        hls_playlist_free(played);
        played = merged;
    }
    if (!played)
        return -1;
    *per_reload = ((double)heap_bytes() - (double)settled) / (double)(reloads - SETTLE);
    hls_playlist_free(played);
    return 0;
}

/* The model made reload by reload, for what live servers add to their playlists: what one
 * reload costs, and that over a day of 1 s segments. A key or an init section declared again in
 * every playlist, or a date on every segment, must add nothing a reload. */
static bool reloads_stay_flat(void)
{
    static const struct {
        int extras;
        const char *name;
    } profiles[] = {
        {0, "plain"},
        {DATED, "dated"},
        {DATED | ENCRYPTED, "dated, AES-128"},
        {DATED | ENCRYPTED | FMP4, "dated, AES-128, fMP4"},
        {TIMED, "named by time"},
        {HASHED, "named by hash"},
        {RANGED, "byte ranges of one file"},
    };
    enum { RELOADS = 3600 };
    bool pass = true;
    printf("\nreload by reload (%d reloads of one 1 s segment, the model only)\n", RELOADS);
    printf("playlist                 per reload   a day of reloads\n");
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
        double per = 0;
        if (run_reloads(profiles[i].extras, RELOADS, &per) != 0)
            return false;
        double day = per * 86400.0 / 1048576.0;
        bool ok = day < 1.0;
        pass &= ok;
        printf("%-22s %10.1f B %14.2f MiB  (target < 1 MiB): %s\n", profiles[i].name, per, day,
               ok ? "PASS" : "FAIL");
    }
    return pass;
}

int main(void)
{
    if (held_alloc_install() != KTH_OK)
        return 2;
    static const double hours[] = {1, 6, 12, 24};
    static const double seg[] = {1, 6};
    bool pass = true;
    printf("live model: played segments kept; a reload copies the released ones and merges the "
           "rest\n");
    printf("segment  age   segments   heap (model + layout)   per segment   merge per reload   "
           "share of a core   written whole   ratio\n");
    for (size_t s = 0; s < 2; s++) {
        figure first = {0};
        for (size_t h = 0; h < 4; h++) {
            figure f;
            if (measure(hours[h], seg[s], &f) != 0)
                return 2;
            if (h == 0)
                first = f;
            size_t count = (size_t)(hours[h] * 3600.0 / seg[s]);
            printf("%5.0f s %4.0f h %10zu %17.2f MiB %11.1f B %15.3f ms %14.2f %% %12.2f ms "
                   "%6.1fx\n",
                   seg[s], hours[h], count, (double)f.heap / 1048576.0,
                   (double)f.heap / (double)count, f.merge_ms, f.merge_ms / (seg[s] * 1e3) * 100.0,
                   f.whole_ms, f.whole_ms / f.merge_ms);
            if (h == 3) {
                double growth = (double)(f.heap - first.heap) / 1048576.0;
                bool ok = growth < 1.0;
                pass &= ok;
                printf("  %.0f s segments, 24 h: heap growth from 1 h %.2f MiB (target < 1 MiB): "
                       "%s\n",
                       seg[s], growth, ok ? "PASS" : "FAIL");
            }
        }
    }
    pass &= reloads_stay_flat();
    return pass ? 0 : 1;
}
