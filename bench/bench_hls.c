/*
 * bench_hls.c — HLS figures against their floors (DESIGN.md §6).
 *
 * Start time: from the master playlist URL to the first audio byte in the reader's hands, with
 * a fixed latency added to every response of the loopback server, against the round trips the
 * start cannot avoid — master, media playlist, (key,) first segment — each measured as one
 * request of the same size made alone through the same downloader. Target: ≤ floor + 10 %.
 *
 * Seek into cached audio: kth_stream_seek_time plus the first read, once every segment is
 * cached. Target: < 1 ms.
 *
 * Resident memory: a presentation of 4 variants with 4 s segments (2 hours by default; 24 hours
 * are 86,400 segments in all; synthetic bytes served without being held in memory by a loopback
 * server in a child process) read to its end as fast as the loopback allows, through a fresh
 * on-disk cache, with VmRSS sampled every 5 % of the presentation. Target, whatever the length:
 * peak under 8 MiB above the empty process (its RSS when main starts), flat (RSS at 100 % within
 * 1 MiB of RSS at 10 %), and the master with its media playlists parsed in under 50 ms. It runs
 * first, so nothing else has grown the heap before it. RSS is also shown split into anonymous
 * pages (what the process holds) and file-backed ones (library code and data it touched).
 *
 * Usage: bench_hls [fixtures dir] [latency ms]   (defaults: the source tree's, 50 ms)
 *        bench_hls --memory [hours]              (the memory figure only; default 2)
 */
#include <kithara/hls.h>
#include <kithara/kithara.h>

#include "hls/hls_source.h"
#include "hls/playlist.h"
#include "hls/session.h"
#include "stream/source.h"
#include "testserver.h"

#include <ftw.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef KTH_SOURCE_DIR
#define KTH_SOURCE_DIR "."
#endif

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static kth_cache *memory_cache(void)
{
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.memory_only = true;
    co.max_bytes = (uint64_t)256 << 20;
    kth_cache *c = NULL;
    char err[256];
    if (kth_cache_open(&co, &c, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "cache: %s\n", err);
        exit(1);
    }
    return c;
}

static kth_stream *open_stream(kth_downloader *d, kth_cache *c, const char *url, int variant)
{
    hls_source_options so;
    memset(&so, 0, sizeof so);
    so.downloader = d;
    so.cache = c;
    kth_hls_options_init(&so.hls);
    so.hls.fixed_start = variant >= 0;
    so.hls.initial_variant = variant;
    stream_source *src = NULL;
    char err[1024];
    kth_status st = hls_source_new(url, &so, &src, err, sizeof err);
    if (st != KTH_OK) {
        fprintf(stderr, "open %s: %s\n", url, err);
        exit(1);
    }
    kth_stream *s = NULL;
    if (stream_new(src, NULL, url, &s) != KTH_OK)
        exit(1);
    return s;
}

/* One request alone through the downloader: the floor of one round trip. */
static double one_request_ms(kth_downloader *d, const char *url)
{
    hls_body body;
    double t0 = now_ms();
    kth_status st = hls_fetch_blocking(d, url, NET_GET, false, 0, 0, NULL, false, 64 << 20,
                                       PLATFORM_NO_DEADLINE, NULL, &body);
    double took = now_ms() - t0;
    hls_body_free(&body);
    if (st != KTH_OK) {
        fprintf(stderr, "GET %s failed\n", url);
        exit(1);
    }
    return took;
}

static void start_time(kts_server *srv, kth_downloader *d, const char *label, const char *master,
                       const char *const *floor_paths, int variant)
{
    enum { RUNS = 7 };
    double took[RUNS], floor[RUNS];
    char url[512];
    for (int r = 0; r < RUNS; r++) {
        kth_cache *c = memory_cache();
        kts_url(srv, master, url, sizeof url);
        double t0 = now_ms();
        kth_stream *s = open_stream(d, c, url, variant);
        uint8_t buf[4096];
        if (kth_stream_read(s, buf, sizeof buf) <= 0) {
            fprintf(stderr, "%s: no first byte\n", label);
            exit(1);
        }
        took[r] = now_ms() - t0;
        kth_stream_close(s);
        kth_cache_unref(c);
        floor[r] = 0;
        for (const char *const *p = floor_paths; *p; p++)
            floor[r] += one_request_ms(d, kts_url(srv, *p, url, sizeof url));
    }
    qsort(took, RUNS, sizeof took[0], compare);
    qsort(floor, RUNS, sizeof floor[0], compare);
    size_t trips = 0;
    while (floor_paths[trips])
        trips++;
    printf("start %-28s %8.1f ms   floor (%zu round trips alone) %8.1f ms   ratio %.3f\n", label,
           took[RUNS / 2], trips, floor[RUNS / 2], took[RUNS / 2] / floor[RUNS / 2]);
}

static void cached_seek(kts_server *srv, kth_downloader *d)
{
    kth_cache *c = memory_cache();
    char url[512];
    kts_url(srv, "/ts/master.m3u8", url, sizeof url);
    kth_stream *s = open_stream(d, c, url, 2);
    kth_stream_abr_set_manual(s, 2);
    uint8_t buf[65536];
    while (kth_stream_read(s, buf, sizeof buf) > 0) {
    }
    enum { N = 2000 };
    static double took[N];
    for (int i = 0; i < N; i++) {
        double t = (double)((i * 7919) % 2000) / 100.0;
        double t0 = now_ms();
        kth_seek_anchor a;
        if (kth_stream_seek_time(s, t, &a) != KTH_OK || kth_stream_read(s, buf, 4096) <= 0) {
            fprintf(stderr, "seek failed\n");
            exit(1);
        }
        took[i] = now_ms() - t0;
    }
    qsort(took, N, sizeof took[0], compare);
    printf("seek_time + first 4 KiB read, cached: median %.4f ms  p99 %.4f ms  max %.4f ms "
           "(target < 1 ms)\n",
           took[N / 2], took[N * 99 / 100], took[N - 1]);
    kth_stream_close(s);
    kth_cache_unref(c);
}

/* ---- resident memory over a long presentation ------------------------------------------ */

enum { MEM_VARIANTS = 4, MEM_SAMPLES = 20 };
/* Hours of presentation: 2 by default, --memory H changes it; 4 s segments, so each variant has
 * H * 900 segments and the 24-hour presentation 86,400 in all. */
static double mem_hours = 2.0;
static int mem_segments = 1800;
static const unsigned mem_kbps[MEM_VARIANTS] = {32, 64, 96, 128};
#define MEM_SEGMENT_S 4.0

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"); -1 when unreadable. */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    size_t n = strlen(field);
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* Bytes the process's malloc has handed out and not taken back, in KiB; -1 when unknown. Splits
 * RSS into what the heap holds and the rest (stacks, libraries, allocator slack). */
static long heap_kb(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
#else
    return -1;
#endif
}

static double mib(long kb)
{
    return (double)kb / 1024.0;
}

static uint64_t mem_segment_bytes(int variant)
{
    return (uint64_t)mem_kbps[variant] * 1000 / 8 * (uint64_t)MEM_SEGMENT_S;
}

/* The media playlist of variant v (malloc'd, *len bytes). The segments are
 * /synth/<size>.ts?seed=<n>&framing=ts URLs (a pattern that begins like a transport stream, as
 * a segment must), which the server computes on the fly from nothing registered, so serving
 * them costs no memory; every segment has its own seed (its own bytes). */
static char *mem_media_body(int v, size_t *len)
{
    size_t cap = 256 + (size_t)mem_segments * 64;
    char *media = malloc(cap);
    if (media == NULL)
        exit(1);
    size_t n = (size_t)snprintf(media, cap,
                                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n"
                                "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    for (int i = 0; i < mem_segments; i++)
        n += (size_t)snprintf(media + n, cap - n,
                              "#EXTINF:%.3f,\n/synth/%llu.ts?seed=%d&framing=ts\n", MEM_SEGMENT_S,
                              (unsigned long long)mem_segment_bytes(v), v * mem_segments + i + 1);
    n += (size_t)snprintf(media + n, cap - n, "#EXT-X-ENDLIST\n");
    if (n >= cap)
        exit(1);
    *len = n;
    return media;
}

static size_t mem_master_body(char *master, size_t cap)
{
    size_t m = (size_t)snprintf(master, cap, "#EXTM3U\n");
    for (int v = 0; v < MEM_VARIANTS; v++)
        m += (size_t)snprintf(master + m, cap - m,
                              "#EXT-X-STREAM-INF:BANDWIDTH=%u,CODECS=\"mp4a.40.2\"\nv%d.m3u8\n",
                              mem_kbps[v] * 1000, v);
    return m;
}

/* The loopback server, in a child process so that neither its threads nor the playlists it
 * holds count in the RSS of the process measured. Writes the master's URL into url; the child
 * serves until `*keep` (the write end of a pipe it waits on) is closed. */
static pid_t mem_server(char *url, size_t urlsize, int *keep)
{
    int up[2], hold[2];
    if (pipe(up) != 0 || pipe(hold) != 0)
        exit(1);
    pid_t pid = fork();
    if (pid < 0)
        exit(1);
    if (pid == 0) {
        close(up[0]);
        close(hold[1]);
        kts_server *srv = NULL;
        kts_config cfg = {.log_capacity = 16}; /* nobody reads the log here; keep it small */
        if (kts_start(&cfg, &srv) != KTH_OK)
            _exit(1);
        char path[64], master[1024];
        for (int v = 0; v < MEM_VARIANTS; v++) {
            size_t n = 0;
            char *media = mem_media_body(v, &n);
            snprintf(path, sizeof path, "/mem/v%d.m3u8", v);
            if (kts_add_body(srv, path, media, n, NULL) != KTH_OK)
                _exit(1);
            free(media);
        }
        size_t m = mem_master_body(master, sizeof master);
        if (kts_add_body(srv, "/mem/master.m3u8", master, m, NULL) != KTH_OK)
            _exit(1);
        char u[512];
        kts_url(srv, "/mem/master.m3u8", u, sizeof u);
        if (write(up[1], u, strlen(u) + 1) < 0)
            _exit(1);
        close(up[1]);
        char c;
        while (read(hold[0], &c, 1) > 0) {
        }
        kts_stop(srv);
        _exit(0);
    }
    close(up[1]);
    close(hold[0]);
    size_t got = 0;
    ssize_t r;
    while (got < urlsize - 1 && (r = read(up[0], url + got, urlsize - 1 - got)) > 0)
        got += (size_t)r;
    url[got] = '\0';
    close(up[0]);
    if (got == 0 || url[got - 1] != '\0') {
        if (got == 0 || strlen(url) == 0) {
            fprintf(stderr, "memory: server failed\n");
            exit(1);
        }
    }
    *keep = hold[1];
    return pid;
}

/* Milliseconds to parse the master and every media playlist (the median of 5 runs). */
static double mem_parse_ms(void)
{
    enum { RUNS = 5 };
    double took[RUNS];
    char master[1024];
    size_t mlen = mem_master_body(master, sizeof master);
    char *media[MEM_VARIANTS];
    size_t len[MEM_VARIANTS];
    for (int v = 0; v < MEM_VARIANTS; v++)
        media[v] = mem_media_body(v, &len[v]);
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_ms();
        char err[256], url[64];
        hls_playlist *pl = NULL;
        if (hls_playlist_parse((const uint8_t *)master, mlen, "http://127.0.0.1/mem/master.m3u8",
                               NULL, &pl, err, sizeof err) != KTH_OK)
            exit(1);
        hls_playlist_free(pl);
        for (int v = 0; v < MEM_VARIANTS; v++) {
            snprintf(url, sizeof url, "http://127.0.0.1/mem/v%d.m3u8", v);
            if (hls_playlist_parse((const uint8_t *)media[v], len[v], url, NULL, &pl, err,
                                   sizeof err) != KTH_OK) {
                fprintf(stderr, "memory: parse: %s\n", err);
                exit(1);
            }
            hls_playlist_free(pl);
        }
        took[r] = now_ms() - t0;
    }
    for (int v = 0; v < MEM_VARIANTS; v++)
        free(media[v]);
    qsort(took, RUNS, sizeof took[0], compare);
    return took[RUNS / 2];
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Streams the presentation to its end and prints the RSS figures. Returns 0 on PASS. */
static int memory_run(long empty_kb, long empty_anon_kb, long empty_file_kb)
{
    char url[512];
    int keep = -1;
    pid_t server = mem_server(url, sizeof url, &keep);
    long heap_start_kb = heap_kb();

    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/kithara-bench-hls-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.max_bytes = (uint64_t)4 << 30;
    kth_cache *c = NULL;
    char err[1024];
    if (kth_cache_open(&co, &c, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "cache: %s\n", err);
        exit(1);
    }
    kth_downloader *d = NULL;
    if (kth_downloader_new(NULL, &d, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "downloader: %s\n", err);
        exit(1);
    }
    kth_hls_options ho;
    kth_hls_options_init(&ho);
    ho.fixed_start = true;
    ho.initial_variant = 0; /* start low so that ABR climbs the ladder, as a player would */
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = c;
    so.downloader = d;
    so.hls = &ho;

    long before_kb = status_kb("VmRSS"), heap_before_kb = heap_kb();
    long before_anon_kb = status_kb("RssAnon"), before_file_kb = status_kb("RssFile");
    double t0 = now_ms();
    kth_stream *s = NULL;
    if (kth_stream_open(url, &so, &s, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "open %s: %s\n", url, err);
        exit(1);
    }
    long open_kb = status_kb("VmRSS"), heap_open_kb = heap_kb(); /* playlists parsed */

    /* Progress in segments from the stream position: segments have one size per variant, and
     * a variant fence starts a new part at a segment boundary. */
    static uint8_t buf[65536];
    long sample_kb[MEM_SAMPLES + 1] = {0}, heap_sample_kb[MEM_SAMPLES + 1] = {0};
    long peak_kb = before_kb;
    int next_sample = 1;
    int variant = kth_stream_current_variant(s);
    uint64_t part_pos = 0, part_segments = 0, total = 0;
    unsigned switches = 0;
    for (;;) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n == 0)
            break;
        if (n == KTH_ERR_VARIANT_CHANGE) {
            uint64_t pos = kth_stream_position(s);
            part_segments += (pos - part_pos) / mem_segment_bytes(variant);
            part_pos = pos;
            if (kth_stream_clear_variant_fence(s) != KTH_OK)
                exit(1);
            variant = kth_stream_current_variant(s);
            switches++;
            continue;
        }
        if (n < 0) {
            kth_stream_last_error(s, err, sizeof err);
            fprintf(stderr, "memory: read failed (%lld): %s\n", (long long)n, err);
            exit(1);
        }
        total += (uint64_t)n;
        uint64_t done =
            part_segments + (kth_stream_position(s) - part_pos) / mem_segment_bytes(variant);
        while (next_sample <= MEM_SAMPLES &&
               done * MEM_SAMPLES >= (uint64_t)next_sample * mem_segments) {
            long kb = status_kb("VmRSS");
            heap_sample_kb[next_sample] = heap_kb();
            sample_kb[next_sample++] = kb;
            if (kb > peak_kb)
                peak_kb = kb;
        }
    }
    double took = now_ms() - t0;
    uint64_t segments =
        part_segments + (kth_stream_position(s) - part_pos) / mem_segment_bytes(variant);
    long end_kb = status_kb("VmRSS");
    long end_anon_kb = status_kb("RssAnon"), end_file_kb = status_kb("RssFile");
    long hwm_kb = status_kb("VmHWM");
    long heap_end_kb = heap_kb();
    if (end_kb > peak_kb)
        peak_kb = end_kb;
    if (hwm_kb > peak_kb)
        peak_kb = hwm_kb;
    kth_stream_close(s);
    kth_downloader_unref(d);
    kth_cache_unref(c);
    long closed_kb = status_kb("VmRSS");
    close(keep);
    waitpid(server, NULL, 0);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);

    if (segments != (uint64_t)mem_segments || next_sample <= MEM_SAMPLES) {
        fprintf(stderr, "memory: read %llu segments of %d\n", (unsigned long long)segments,
                mem_segments);
        exit(1);
    }
    double parse_ms = mem_parse_ms();
    printf("memory, %.1f-hour presentation (%d variants %u/%u/%u/%u kbit/s, %d x %.0f s segments "
           "each, %d in all), on-disk cache, loopback server in a child process:\n",
           mem_hours, MEM_VARIANTS, mem_kbps[0], mem_kbps[1], mem_kbps[2], mem_kbps[3],
           mem_segments, MEM_SEGMENT_S, MEM_VARIANTS * mem_segments);
    printf("  streamed %.1f MiB in %.1f s (%.1f MiB/s), %u variant switches\n",
           (double)total / 1048576.0, took / 1e3, (double)total / 1048576.0 / (took / 1e3),
           switches);
    printf("  RSS: empty process %.1f MiB, before open %.1f MiB, after open %.1f MiB\n",
           mib(empty_kb), mib(before_kb), mib(open_kb));
    printf("  RSS split (anonymous + file-backed): empty %.1f + %.1f MiB, before open %.1f + %.1f "
           "MiB, at the end %.1f + %.1f MiB\n",
           mib(empty_anon_kb), mib(empty_file_kb), mib(before_anon_kb), mib(before_file_kb),
           mib(end_anon_kb), mib(end_file_kb));
    printf("  RSS while streaming:");
    for (int i = 1; i <= MEM_SAMPLES; i++)
        printf(" %.1f", mib(sample_kb[i]));
    printf(" MiB (every 5 %%)\n");
    printf("  RSS at 10 %% %.1f MiB, 50 %% %.1f MiB, 100 %% %.1f MiB; after close %.1f MiB\n",
           mib(sample_kb[2]), mib(sample_kb[MEM_SAMPLES / 2]), mib(end_kb), mib(closed_kb));
    printf("  heap in use (malloc): at start %.1f MiB, before open %.1f MiB, after open %.1f MiB, "
           "at 10 %% %.1f MiB, 50 %% %.1f MiB, 100 %% %.1f MiB\n",
           mib(heap_start_kb), mib(heap_before_kb), mib(heap_open_kb), mib(heap_sample_kb[2]),
           mib(heap_sample_kb[MEM_SAMPLES / 2]), mib(heap_end_kb));
    double above = mib(peak_kb - empty_kb), growth = mib(end_kb - sample_kb[2]);
    printf("  peak RSS %.1f MiB (VmHWM %.1f MiB): %.1f MiB above the empty process, "
           "%.1f MiB above before-open; 100 %% - 10 %% = %+.2f MiB\n",
           mib(peak_kb), mib(hwm_kb), above, mib(peak_kb - before_kb), growth);
    printf("  parsing the master and its %d media playlists: %.1f ms (median of 5)\n", MEM_VARIANTS,
           parse_ms);
    bool pass = above < 8.0 && growth < 1.0 && parse_ms < 50.0;
    printf("  target: < 8 MiB above the empty process, 100 %% - 10 %% < 1 MiB, parse < 50 ms: "
           "%s\n",
           pass ? "PASS" : "FAIL");
    fflush(stdout);
    return pass ? 0 : 1;
}

int main(int argc, char **argv)
{
    long empty_kb = status_kb("VmRSS");
    long empty_anon_kb = status_kb("RssAnon"), empty_file_kb = status_kb("RssFile");
    if (argc > 1 && strcmp(argv[1], "--memory") == 0) {
        if (argc > 2 && atof(argv[2]) > 0) {
            mem_hours = atof(argv[2]);
            mem_segments = (int)(mem_hours * 3600.0 / MEM_SEGMENT_S + 0.5);
            if (mem_segments < MEM_SAMPLES)
                mem_segments = MEM_SAMPLES;
        }
        return memory_run(empty_kb, empty_anon_kb, empty_file_kb);
    }
    memory_run(empty_kb, empty_anon_kb, empty_file_kb);

    const char *root = argc > 1 ? argv[1] : KTH_SOURCE_DIR "/tests/fixtures/hls";
    unsigned latency = argc > 2 ? (unsigned)atoi(argv[2]) : 50;
    kts_config cfg = {.doc_root = root};
    kts_server *srv = NULL;
    if (kts_start(&cfg, &srv) != KTH_OK) {
        fprintf(stderr, "server over %s failed\n", root);
        return 1;
    }
    kth_downloader *d = NULL;
    char err[256];
    if (kth_downloader_new(NULL, &d, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "downloader: %s\n", err);
        return 1;
    }
    kts_add_fault(srv, "*", &(kts_fault){.kind = KTS_FAULT_LATENCY, .ms = latency});
    printf("latency added to every response: %u ms\n", latency);
    const char *clear[] = {"/ts/master.m3u8", "/ts/v64/index.m3u8", "/ts/v64/seg0.ts", NULL};
    start_time(srv, d, "MPEG-TS (master)", "/ts/master.m3u8", clear, 0);
    const char *aes[] = {"/aes/master.m3u8", "/aes/v64/index.m3u8", "/aes/key.bin",
                         "/aes/v64/seg0.ts", NULL};
    start_time(srv, d, "AES-128 (master)", "/aes/master.m3u8", aes, 0);
    kts_clear_faults(srv, NULL);
    cached_seek(srv, d);
    kth_downloader_unref(d);
    kts_stop(srv);
    return 0;
}
