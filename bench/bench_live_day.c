/*
 * bench_live_day.c — a whole day of a live HLS stream, compressed in time.
 *
 * The test server's live stream (a window of 6 segments of `seg_s` seconds, one new segment per
 * target duration) is played by a kithara stream with everything real (its downloader, the HLS
 * peer, reloads, the cache on disk) on a virtual clock that the program moves half a target
 * duration at a time, each step settled, with a reader that keeps pace at the live edge (the
 * test player of tests/integration/live_player.h). Nothing sleeps: a day takes minutes.
 *
 * It prints, at 10 % of the session and at its end:
 *   - the bytes kithara itself has allocated (counted by an allocator given to it,
 *     held_alloc.h), and the process's RSS (which includes the in-process test server);
 *   - the cache's resources and data bytes;
 *   - the wall time a step took over the last 1 % of the session (the reload's merge grows with
 *     the stream's age).
 * Target (issue: live storage): growth from 10 % to the end < 1 MiB and a flat cache. The
 * reference for "growth" is the figure at 10 % of the same run. Also printed: segments read,
 * playlist reloads per hour against one per target duration, fences and skips (0 expected).
 * Usage: bench_live_day [hours, default 24] [segment seconds, default 6]
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kithara/kithara.h>

#include "held_alloc.h"
#include "live_player.h"

#define SEGMENT_BYTES 1880

/* ---- figures ---- */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct snapshot {
    int64_t kithara;
    long rss;
    uint64_t resources, data_bytes;
    size_t read;
} snapshot;

static void take(player *p, snapshot *out)
{
    kth_cache_stats cs;
    assert_int_equal(kth_cache_get_stats(p->cache, &cs), KTH_OK);
    out->kithara = held_alloc_bytes();
    out->rss = rss_kib();
    out->resources = cs.resources;
    out->data_bytes = cs.total_bytes;
    out->read = atomic_load(&p->progress);
}

static double hours = 24;
static unsigned seg_s = 6;

static void day(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {
        .window = 6, .target_duration = seg_s, .segment_size = SEGMENT_BYTES, .seed = 1};
    live_player_set_log_capacity(64);
    player_open(&p, &cfg, 3, 0);
    player_count_only(&p);
    int64_t step_ms = (int64_t)seg_s * 500;
    long steps = (long)(hours * 3600 * 1000 / (double)step_ms);
    snapshot early = {0}, late;
    double t0 = now_s(), tail_start = 0;
    long tail_from = steps - steps / 100;
    uint64_t most_resources = 0;
    for (long i = 0; i < steps && !atomic_load(&p.done); i++) {
        if (i == steps / 10)
            take(&p, &early);
        if (i == tail_from)
            tail_start = now_s();
        play(&p, step_ms, 1);
        if (i % 64 == 0) {
            kth_cache_stats cs;
            assert_int_equal(kth_cache_get_stats(p.cache, &cs), KTH_OK);
            most_resources = cs.resources > most_resources ? cs.resources : most_resources;
        }
    }
    double wall = now_s() - t0, tail = now_s() - tail_start;
    take(&p, &late);
    unsigned reloads = kts_request_count(p.c.srv, "/tv/live.m3u8", NULL);
    unsigned skipped = count_events(&p, KTH_EVENT_HLS_LIVE_SKIPPED);
    stop_reading(&p);
    double growth_kib = (double)(late.kithara - early.kithara) / 1024.0;
    printf("%.1f h of %u s segments in %.1f s of wall time: %zu segments read, %u fences, "
           "%u skips\n",
           hours, seg_s, wall, late.read / SEGMENT_BYTES, p.fences, skipped);
    printf("reloads: %.1f an hour (one per target duration: %.1f)\n", reloads / hours,
           3600.0 / seg_s);
    printf("kithara's memory: %.1f KiB at 10 %%, %.1f KiB at the end: growth %.1f KiB (%s, "
           "target < 1024)\n",
           (double)early.kithara / 1024.0, (double)late.kithara / 1024.0, growth_kib,
           growth_kib < 1024 ? "PASS" : "FAIL");
    printf("process RSS (with the test server): %ld KiB at 10 %%, %ld KiB at the end: %+ld KiB\n",
           early.rss, late.rss, late.rss - early.rss);
    printf("cache: %llu resources / %llu bytes at 10 %%, %llu / %llu at the end, at most %llu "
           "resources (%s)\n",
           (unsigned long long)early.resources, (unsigned long long)early.data_bytes,
           (unsigned long long)late.resources, (unsigned long long)late.data_bytes,
           (unsigned long long)most_resources, late.resources <= 12 ? "flat" : "GROWS");
    printf("wall time per step: %.2f ms over the session, %.2f ms over its last 1 %%\n",
           wall * 1e3 / (double)steps, tail * 1e3 / (double)(steps - tail_from));
    player_close(&p);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        hours = atof(argv[1]);
    if (argc > 2)
        seg_s = (unsigned)atoi(argv[2]);
    if (!(hours > 0) || seg_s == 0) {
        fprintf(stderr, "usage: bench_live_day [hours] [segment seconds]\n");
        return 2;
    }
    if (held_alloc_install() != KTH_OK)
        return 1;
    const struct CMUnitTest session[] = {cmocka_unit_test(day)};
    return cmocka_run_group_tests(session, NULL, NULL);
}
