/*
 * bench_budget.c — the cache's budget under pressure: progressive streams from the loopback test
 * server through one cache with a small budget (default checkpoints: 16 MiB or 1 s), read
 * round-robin by one thread, 64 KiB per stream per pass. Every byte is checked. The server sends
 * each response at R MB/s, so the files change little while one sample sums them (a sample is
 * not a snapshot: unpaced, the downloader writes megabytes during one walk of the directory).
 *
 * churn: N streams of S bytes, at most M open at once (M * S below the budget), each closed
 *   once read, so older assets may always be evicted. After every pass the bytes the data files
 *   hold are summed: their peak is printed with its ratio to the budget (the reference). Target:
 *   the peak stays within the budget plus 1 MiB (one write in flight).
 * all in use: M2 streams at once whose bytes pass the budget: nothing may be evicted, the cache
 *   grows, and the streams that write into it past that point are told on their bus
 *   (KTH_EVENT_CACHE_OVER_BUDGET; one whose download ended before is not). Target: told.
 *
 * Usage: bench_budget [budget_mib [stream_kib [N [M [M2 [R]]]]]] (defaults 64 1024 400 32 96 4).
 * Scratch cache in $TMPDIR or /tmp, removed at the end.
 */
#include <kithara/kithara.h>

#include "testserver.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t summed;

static int add_size(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        summed += (uint64_t)sb->st_size;
    return 0;
}

static uint64_t data_bytes(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data", dir);
    summed = 0;
    nftw(path, add_size, 16, FTW_PHYS);
    return summed;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

struct slot {
    kth_stream *s;
    kth_subscription *sub;
    int id; /* server file /s<id>.mp3, seed id + 1 */
    uint64_t pos;
    bool told;
};

struct run {
    kts_server *srv;
    kth_cache *cache;
    const char *dir;
    uint64_t size;
    uint64_t peak;
    int told; /* streams told the cache went over its budget */
};

static int slot_open(struct run *r, struct slot *sl, int id)
{
    char path[64], url[256], err[512];
    snprintf(path, sizeof path, "/s%d.mp3", id);
    kts_url(r->srv, path, url, sizeof url);
    kth_bus *bus;
    if (kth_bus_new(&bus) != KTH_OK || kth_bus_subscribe(bus, 64, &sl->sub) != KTH_OK)
        return -1;
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = r->cache;
    so.bus = bus;
    kth_status st = kth_stream_open(url, &so, &sl->s, err, sizeof err);
    kth_bus_unref(bus); /* the stream and the subscription keep it */
    if (st != KTH_OK) {
        fprintf(stderr, "open %d: %s\n", id, err);
        return -1;
    }
    sl->id = id;
    sl->pos = 0;
    sl->told = false;
    return 0;
}

static void slot_close(struct run *r, struct slot *sl)
{
    kth_event ev;
    while (!sl->told && kth_events_next(sl->sub, &ev, 0) == KTH_OK)
        sl->told = ev.kind == KTH_EVENT_CACHE_OVER_BUDGET;
    r->told += sl->told;
    kth_stream_close(sl->s);
    kth_subscription_free(sl->sub);
    sl->s = NULL;
}

/* One read of the slot's stream: 1 while bytes come, 0 at its end, -1 on a failure. */
static int slot_read(struct run *r, struct slot *sl)
{
    static unsigned char buf[64 * 1024];
    int64_t k = kth_stream_read(sl->s, buf, sizeof buf);
    if (k < 0) {
        fprintf(stderr, "stream %d: %s\n", sl->id, kth_strerror((int)k));
        return -1;
    }
    if (k == 0) {
        if (sl->pos != r->size) {
            fprintf(stderr, "stream %d ended at %llu\n", sl->id, (unsigned long long)sl->pos);
            return -1;
        }
        return 0;
    }
    if (kts_synth_check((uint64_t)sl->id + 1, sl->pos, buf, (size_t)k) != (size_t)k) {
        fprintf(stderr, "stream %d: wrong byte near %llu\n", sl->id, (unsigned long long)sl->pos);
        return -1;
    }
    sl->pos += (uint64_t)k;
    return 1;
}

/* Streams first .. first + n - 1, at most m open at once, a closed one replaced by the next. */
static int play(struct run *r, int first, int n, int m)
{
    struct slot *slots = calloc((size_t)m, sizeof *slots);
    int next = first, end = first + n, open = 0, rc = 0;
    while (rc == 0 && (next < end || open > 0)) {
        for (int i = 0; i < m && rc == 0; i++) {
            if (!slots[i].s && next < end) {
                rc = slot_open(r, &slots[i], next++);
                open += rc == 0;
                continue;
            }
            if (!slots[i].s)
                continue;
            int k = slot_read(r, &slots[i]);
            if (k < 0)
                rc = -1;
            if (k == 0) {
                slot_close(r, &slots[i]);
                open--;
            }
        }
        uint64_t now = data_bytes(r->dir);
        r->peak = now > r->peak ? now : r->peak;
    }
    for (int i = 0; i < m; i++)
        if (slots[i].s)
            slot_close(r, &slots[i]);
    free(slots);
    return rc;
}

int main(int argc, char **argv)
{
    uint64_t budget = (argc > 1 ? strtoull(argv[1], NULL, 10) : 64) << 20;
    uint64_t size = (argc > 2 ? strtoull(argv[2], NULL, 10) : 1024) << 10;
    int n = argc > 3 ? atoi(argv[3]) : 400, m = argc > 4 ? atoi(argv[4]) : 32;
    int m2 = argc > 5 ? atoi(argv[5]) : 96;
    double rate = argc > 6 ? atof(argv[6]) : 4;
    if (budget == 0 || size == 0 || n < 1 || m < 1 || m2 < 1 || !(rate > 0)) {
        fprintf(stderr, "usage: bench_budget [budget_mib [stream_kib [N [M [M2 [R]]]]]]\n");
        return 2;
    }
    kts_server *srv;
    if (kts_start(NULL, &srv) != 0)
        return 1;
    if (kts_add_fault(srv, "*",
                      &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = (uint64_t)(rate * 1e6)}) != 0)
        return 1;
    for (int i = 0; i < n + m2; i++) {
        char path[64];
        snprintf(path, sizeof path, "/s%d.mp3", i);
        kts_add_synth(srv, path, size, (uint64_t)i + 1, NULL);
    }
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/kithara-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.max_bytes = budget;
    co.no_sync = true;
    struct run r = {.srv = srv, .dir = dir, .size = size};
    char err[512];
    if (kth_cache_open(&co, &r.cache, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "cache: %s\n", err);
        return 1;
    }
    double mib = 1024.0 * 1024.0;
    printf("bench_budget: budget %.0f MiB, streams of %llu KiB at %.1f MB/s each, default "
           "checkpoints\n",
           (double)budget / mib, (unsigned long long)(size >> 10), rate);
    int rc = play(&r, 0, n, m);
    kth_cache_stats st;
    kth_cache_get_stats(r.cache, &st);
    if (rc == 0) {
        bool pass = r.peak <= budget + ((uint64_t)1 << 20);
        printf("churn:      %d streams, at most %d open (%.0f MiB in use): peak data files %.2f "
               "MiB = %.3f of the budget (target <= budget + 1 MiB: %s); evicted %llu assets; "
               "told over budget: %d\n",
               n, m, (double)m * (double)size / mib, (double)r.peak / mib,
               (double)r.peak / (double)budget, pass ? "PASS" : "FAIL",
               (unsigned long long)st.evicted_assets, r.told);
        r.peak = 0;
        r.told = 0;
        rc = play(&r, n, m2, m2);
    }
    if (rc == 0) {
        kth_cache_get_stats(r.cache, &st);
        printf("all in use: %d streams at once (%.0f MiB in use): peak data files %.2f MiB = "
               "%.3f of the budget; told over budget: %d of %d (target > 0: %s)\n",
               m2, (double)m2 * (double)size / mib, (double)r.peak / mib,
               (double)r.peak / (double)budget, r.told, m2, r.told > 0 ? "PASS" : "FAIL");
    }
    kth_cache_unref(r.cache);
    kth_shutdown();
    kts_stop(srv);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc == 0 ? 0 : 1;
}
