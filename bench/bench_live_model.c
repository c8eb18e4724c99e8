/*
 * bench_live_model.c — what the model of a live HLS stream costs as the stream runs.
 *
 * A live stream keeps every segment it has played in its model: the playlist's record of each
 * segment and its layout entry (size and offset). Each reload writes the model out with the new
 * segments and parses it again (hls_live_merge). Both grow with the stream's age. This program
 * builds the model a stream has after 1, 6, 12 and 24 hours (1 s and 6 s segments, sequential
 * segment names, one new segment per reload), and prints:
 *   - the heap the model and its layout hold (mallinfo2), and bytes per segment;
 *   - one reload's merge (median of 5), and that time over the time between reloads (the share
 *     of one core the reloads take at that age).
 * Target of the live work (24 hours): heap growth < 1 MiB; the merge's share is printed, not
 * judged. The reference for "growth" is the model at 1 hour, measured in the same run.
 * Usage: bench_live_model
 */
#include "hls/layout.h"
#include "hls/live.h"

#include <malloc.h>
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

/* Bytes allocated: from the heap's arenas and, for large blocks, mapped on their own. */
static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* A live playlist of `count` segments of `seg_s` seconds from media sequence `first`. */
static hls_playlist *live_playlist(uint64_t first, size_t count, double seg_s)
{
    size_t cap = count * 96 + 256, n = 0;
    char *text = malloc(cap);
    if (!text)
        return NULL;
    n += (size_t)snprintf(text, cap,
                          "#EXTM3U\n#EXT-X-TARGETDURATION:%.0f\n#EXT-X-MEDIA-SEQUENCE:%llu\n",
                          seg_s, (unsigned long long)first);
    for (size_t i = 0; i < count; i++)
        n += (size_t)snprintf(text + n, cap - n, "#EXTINF:%.3f,\n" BASE "seg_%llu.ts\n", seg_s,
                              (unsigned long long)(first + i));
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
} figure;

/* The model of a stream `hours` old, with every played segment's size known, and one reload. */
static int measure(double hours, double seg_s, figure *out)
{
    size_t count = (size_t)(hours * 3600.0 / seg_s);
    size_t before = heap_bytes();
    hls_playlist *played = live_playlist(0, count, seg_s);
    hls_layout *layout = NULL;
    if (!played || hls_layout_new(played, &layout) != KTH_OK)
        return -1;
    for (size_t i = 0; i < hls_layout_entry_count(layout); i++)
        if (hls_layout_set_size(layout, i, 16000) != KTH_OK)
            return -1;
    out->heap = heap_bytes() - before;
    /* The server's window: the last six segments, the newest one not played yet. */
    hls_playlist *reloaded = live_playlist(count - 5, 6, seg_s);
    if (!reloaded)
        return -1;
    double ms[RUNS];
    for (int r = 0; r < RUNS; r++) {
        hls_playlist *merged = NULL;
        char err[256];
        double t0 = now_ms();
        kth_status st = hls_live_merge(played, reloaded, 5, 1, false, BASE "index.m3u8", &merged,
                                       err, sizeof err);
        ms[r] = now_ms() - t0;
        if (st != KTH_OK) {
            fprintf(stderr, "bench_live_model: merge: %s\n", err);
            return -1;
        }
        hls_playlist_free(merged);
    }
    qsort(ms, RUNS, sizeof ms[0], cmp_double);
    out->merge_ms = ms[RUNS / 2];
    hls_playlist_free(reloaded);
    hls_layout_free(layout);
    hls_playlist_free(played);
    return 0;
}

int main(void)
{
    static const double hours[] = {1, 6, 12, 24};
    static const double seg[] = {1, 6};
    bool pass = true;
    printf("live model: played segments kept; every reload re-merges the model\n");
    printf("segment  age   segments   heap (model + layout)   per segment   merge per reload   "
           "share of a core\n");
    for (size_t s = 0; s < 2; s++) {
        figure first = {0};
        for (size_t h = 0; h < 4; h++) {
            figure f;
            if (measure(hours[h], seg[s], &f) != 0)
                return 2;
            if (h == 0)
                first = f;
            size_t count = (size_t)(hours[h] * 3600.0 / seg[s]);
            printf("%5.0f s %4.0f h %10zu %17.2f MiB %11.1f B %15.2f ms %14.1f %%\n", seg[s],
                   hours[h], count, (double)f.heap / 1048576.0, (double)f.heap / (double)count,
                   f.merge_ms, f.merge_ms / (seg[s] * 1e3) * 100.0);
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
    return pass ? 0 : 1;
}
