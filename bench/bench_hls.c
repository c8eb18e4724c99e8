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
 * Usage: bench_hls [fixtures dir] [latency ms]   (defaults: the source tree's, 50 ms)
 */
#include <kithara/hls.h>
#include <kithara/kithara.h>

#include "hls/hls_source.h"
#include "hls/session.h"
#include "stream/source.h"
#include "testserver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
        kth_cache_close(c);
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
    kth_cache_close(c);
}

int main(int argc, char **argv)
{
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
    kth_downloader_free(d);
    kts_stop(srv);
    return 0;
}
