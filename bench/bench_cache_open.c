/*
 * bench_cache_open.c — how long opening a cached asset takes when the index is large: lease the
 * asset, open its resource (index lookups, data file open, ranges restored), until a reader
 * could start. The index holds N assets (default 10,000), each with one resource: three in four
 * committed, one in four partial with several ranges to restore. Target: p99 < 5 ms.
 *
 * Usage: bench_cache_open [assets] [opens]   (defaults 10000 and 2000). The scratch cache goes
 * in $TMPDIR (or the system temporary directory) and is removed at the end. Populating skips fsync
 * (it is set-up, not the measured path); the measured opens use the default, durable options.
 */
#include <kithara/kithara.h>

#include "cache/cache.h"
#include "platform/sync.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESOURCE_SIZE 4096

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void die(const char *what, kth_status st)
{
    fprintf(stderr, "bench_cache_open: %s: %s\n", what, kth_status_name(st));
    exit(1);
}

static void url_of(unsigned i, char *buf, size_t n)
{
    snprintf(buf, n, "https://media.example/library/artist-%u/track-%u.flac", i / 12, i);
}

static void populate(const char *dir, unsigned assets)
{
    kth_cache_options o;
    kth_cache_options_init(&o);
    o.dir = dir;
    o.no_sync = true;
    o.max_bytes = KTH_CACHE_UNBOUNDED;
    kth_cache *c;
    char err[512];
    kth_status st = kth_cache_open(&o, &c, err, sizeof err);
    if (st != KTH_OK) {
        fprintf(stderr, "bench_cache_open: %s\n", err);
        exit(1);
    }
    static unsigned char data[RESOURCE_SIZE];
    memset(data, 0x5a, sizeof data);
    for (unsigned i = 0; i < assets; i++) {
        char url[256];
        url_of(i, url, sizeof url);
        cache_asset *a;
        cache_resource *h;
        if ((st = cache_asset_open(c, url, &a, NULL, 0)) != KTH_OK)
            die("lease", st);
        if ((st = cache_resource_open(a, url, CACHE_OPEN_CREATE, &h, NULL, NULL, 0)) != KTH_OK)
            die("create", st);
        cache_resource_set_meta(h, "\"0123456789abcdef\"", "Mon, 02 Jan 2006 15:04:05 GMT",
                                "audio/flac");
        if (i % 4 == 3) {
            /* Partial: three islands to restore. */
            for (unsigned k = 0; k < 3; k++)
                if ((st = cache_resource_write(h, k * 1024, data, 512)) != KTH_OK)
                    die("write", st);
        } else {
            if ((st = cache_resource_write(h, 0, data, sizeof data)) != KTH_OK)
                die("write", st);
            if ((st = cache_resource_commit(h, sizeof data)) != KTH_OK)
                die("commit", st);
        }
        cache_resource_close(h);
        cache_asset_release(a);
    }
    kth_cache_unref(c);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

int main(int argc, char **argv)
{
    unsigned assets = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 10000;
    unsigned opens = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 2000;
    if (assets == 0 || opens == 0)
        return 2;
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/kithara-bench-cache-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("bench_cache_open (%ld cores online)\n", sysconf(_SC_NPROCESSORS_ONLN));
    int64_t t0 = platform_monotonic_ns();
    populate(dir, assets);
    printf("populated %u assets in %.2f s\n", assets, (double)(platform_monotonic_ns() - t0) / 1e9);

    kth_cache_options o;
    kth_cache_options_init(&o);
    o.dir = dir;
    o.max_bytes = KTH_CACHE_UNBOUNDED;
    kth_cache *c;
    char err[512];
    t0 = platform_monotonic_ns();
    kth_status st = kth_cache_open(&o, &c, err, sizeof err);
    if (st != KTH_OK) {
        fprintf(stderr, "bench_cache_open: %s\n", err);
        return 1;
    }
    double open_cache_ms = (double)(platform_monotonic_ns() - t0) / 1e6;

    double *open_ms = malloc(opens * sizeof *open_ms);
    double *cycle_ms = malloc(opens * sizeof *cycle_ms);
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (unsigned n = 0; n < opens; n++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        unsigned i = (unsigned)(rng % assets);
        char url[256];
        url_of(i, url, sizeof url);
        int64_t a0 = platform_monotonic_ns();
        cache_asset *a;
        cache_resource *h;
        cache_resource_info info;
        if ((st = cache_asset_open(c, url, &a, NULL, 0)) != KTH_OK)
            die("lease", st);
        if ((st = cache_resource_open(a, url, 0, &h, &info, NULL, 0)) != KTH_OK)
            die("open", st);
        storage_resource *r = cache_resource_storage(h);
        int64_t a1 = platform_monotonic_ns();
        bool expect_committed = i % 4 != 3;
        if (info.committed != expect_committed ||
            info.present_bytes != (expect_committed ? RESOURCE_SIZE : 1536)) {
            fprintf(stderr, "bench_cache_open: asset %u restored wrongly\n", i);
            return 1;
        }
        storage_resource_unref(r);
        cache_resource_close(h);
        cache_asset_release(a);
        int64_t a2 = platform_monotonic_ns();
        open_ms[n] = (double)(a1 - a0) / 1e6;
        cycle_ms[n] = (double)(a2 - a0) / 1e6;
    }
    kth_cache_unref(c);
    qsort(open_ms, opens, sizeof *open_ms, cmp_double);
    qsort(cycle_ms, opens, sizeof *cycle_ms, cmp_double);
    printf("cache open with %u assets in the index: %.2f ms\n", assets, open_cache_ms);
    printf("asset open (lease + resource restore), %u random opens: p50 %.3f ms, p99 %.3f ms, "
           "max %.3f ms  (target p99 < 5 ms: %s)\n",
           opens, pct(open_ms, opens, 0.5), pct(open_ms, opens, 0.99), open_ms[opens - 1],
           pct(open_ms, opens, 0.99) < 5.0 ? "PASS" : "FAIL");
    printf("full cycle (open + close + release): p50 %.3f ms, p99 %.3f ms\n",
           pct(cycle_ms, opens, 0.5), pct(cycle_ms, opens, 0.99));
    bool ok = pct(open_ms, opens, 0.99) < 5.0;
    free(open_ms);
    free(cycle_ms);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("bench_cache_open: %s\n", ok ? "all targets met" : "SOME TARGETS MISSED");
    return ok ? 0 : 1;
}
