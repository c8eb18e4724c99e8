/*
 * bench_live.c — live HLS start against the test server's live mode over loopback with 50 ms
 * added to every response (KTS_FAULT_LATENCY):
 *
 * Live start: open → first byte of a live media playlist (the playlist, then the start
 * segment: two requests on the path to the first byte), against the round-trip floor measured
 * in this process: the same two requests (a copy of the playlist and a segment of the same
 * size, each with the same latency) read one after the other as plain progressive streams.
 * Each run uses paths not seen before, so nothing comes from the cache. Median of 5.
 */
#include <kithara/kithara.h>

#include "kts_live.h"
#include "testserver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RUNS       5
#define LATENCY_MS 50
#define SEG_BYTES  (188 * 200)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void slow(kts_server *srv, const char *path)
{
    kts_add_fault(srv, path, &(kts_fault){.kind = KTS_FAULT_LATENCY, .ms = LATENCY_MS});
}

/* Open → first byte of url, in ms; < 0 on failure. */
static double first_byte_ms(kth_cache *cache, kts_server *srv, const char *path)
{
    char url[512], err[512];
    kts_url(srv, path, url, sizeof url);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    kth_stream *s = NULL;
    int64_t t0 = now_ns();
    if (kth_stream_open(url, &so, &s, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "bench_live: open %s: %s\n", path, err);
        return -1;
    }
    unsigned char b[1];
    int64_t n = kth_stream_read(s, b, 1);
    double ms = (double)(now_ns() - t0) / 1e6;
    kth_stream_close(s);
    return n == 1 ? ms : -1;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/kithara-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = mkdtemp(dir);
    co.no_sync = true;
    kts_server *srv = NULL;
    kth_cache *cache = NULL;
    char err[512];
    if (!co.dir || kts_start(NULL, &srv) != 0 ||
        kth_cache_open(&co, &cache, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "bench_live: setup failed\n");
        return 1;
    }
    kts_live cfg = {.window = 6, .target_duration = 4, .segment_size = SEG_BYTES, .seed = 1};
    double live[RUNS], floor_ms[RUNS];
    for (int r = 0; r < RUNS; r++) {
        char d[64], path[128];
        snprintf(d, sizeof d, "/tv%d", r);
        kts_live_stream *ls = NULL;
        if (kts_live_start(srv, d, &cfg, &ls) != 0)
            return 1;
        snprintf(path, sizeof path, "%s/live.m3u8", d);
        slow(srv, path);
        for (int k = 0; k < 6; k++) {
            snprintf(path, sizeof path, "%s/seg%d.ts", d, k);
            slow(srv, path);
        }
        /* The floor: the playlist's bytes and a segment's, as plain files, one after the
         * other. */
        char text[4096], fp[64], fs[64];
        size_t n = kts_live_playlist(&cfg, 0, text, sizeof text);
        snprintf(fp, sizeof fp, "/floor%d.txt", r);
        snprintf(fs, sizeof fs, "/floor%d.ts", r);
        kts_add_body(srv, fp, text, n, "text/plain");
        kts_add_ts_synth(srv, fs, SEG_BYTES, 99, "video/mp2t");
        slow(srv, fp);
        slow(srv, fs);
        double a = first_byte_ms(cache, srv, fp), b = first_byte_ms(cache, srv, fs);
        floor_ms[r] = a < 0 || b < 0 ? -1 : a + b;
        snprintf(path, sizeof path, "%s/live.m3u8", d);
        live[r] = first_byte_ms(cache, srv, path);
        kts_live_free(ls);
    }
    qsort(live, RUNS, sizeof *live, cmp);
    qsort(floor_ms, RUNS, sizeof *floor_ms, cmp);
    double l = live[RUNS / 2], f = floor_ms[RUNS / 2];
    printf("live start (open -> first byte, %d ms added latency, median of %d): %.1f ms; "
           "floor (playlist + segment as files): %.1f ms; ratio %.2f\n",
           LATENCY_MS, RUNS, l, f, f > 0 ? l / f : 0);
    kth_cache_unref(cache);
    kts_stop(srv);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_live: could not remove %s\n", dir);
    return 0;
}
