/*
 * bench_protect.c — the cached read of a progressive file through a protected cache (AES-256-CTR
 * at rest) against the same read through an unprotected cache, in one process: the file is
 * played once from the loopback test server into each cache, then read back offline through
 * kth_stream_read several times (page cache warm, so the figures are the read path's own).
 * Prints MB/s for both and the ratio protected / unprotected (goals: >= 1000 MB/s and >= 0.3).
 * Usage: bench_protect [size_mib [rounds]] (default 64 MiB, 5 rounds; the best round counts);
 * scratch caches in $TMPDIR or /tmp, removed at the end.
 */
#include <kithara/kithara.h>

#include "testserver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEED 99

static const uint8_t SECRET[KTH_CACHE_SECRET_SIZE] = "bench secret, thirty-two bytes!";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static kth_cache *open_cache(const char *dir, bool protect, bool offline)
{
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.offline = offline;
    co.no_sync = true;
    co.secret = protect ? SECRET : NULL;
    kth_cache *c = NULL;
    char err[512];
    if (kth_cache_open(&co, &c, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "cache open: %s\n", err);
        return NULL;
    }
    return c;
}

/* Reads url to its end through cache; returns the bytes read, or -1. The first read of each
 * buffer is checked against the pattern (every byte, once per pass). */
static int64_t read_through(const char *url, kth_cache *cache, bool check)
{
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    so.read_timeout_ms = 60000;
    kth_stream *s = NULL;
    char err[512];
    if (kth_stream_open(url, &so, &s, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "open: %s\n", err);
        return -1;
    }
    static uint8_t buf[1 << 20];
    int64_t pos = 0;
    for (;;) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0 || (check && kts_synth_check(SEED, (uint64_t)pos, buf, (size_t)n) != (size_t)n)) {
            fprintf(stderr, "read at %lld: %s\n", (long long)pos,
                    n < 0 ? kth_strerror((int)n) : "wrong bytes");
            pos = -1;
            break;
        }
        pos += n;
    }
    kth_stream_close(s);
    return pos;
}

/* Fills a cache in dir, then returns the best MB/s of `rounds` offline reads (negative: failed). */
static double measure(const char *url, const char *dir, bool protect, uint64_t size, int rounds)
{
    kth_cache *c = open_cache(dir, protect, false);
    if (!c || read_through(url, c, true) != (int64_t)size)
        return -1;
    kth_cache_unref(c);
    if (!(c = open_cache(dir, protect, true)))
        return -1;
    if (read_through(url, c, true) != (int64_t)size) /* checked once, offline */
        return -1;
    double best = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s();
        if (read_through(url, c, false) != (int64_t)size)
            return -1;
        double mbs = (double)size / 1e6 / (now_s() - t0);
        if (mbs > best)
            best = mbs;
    }
    kth_cache_unref(c);
    return best;
}

int main(int argc, char **argv)
{
    uint64_t size = (uint64_t)(argc > 1 ? atoi(argv[1]) : 64) << 20;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    kts_server *srv = NULL;
    if (size == 0 || rounds <= 0 || kts_start(NULL, &srv) != KTH_OK)
        return 1;
    kts_add_synth(srv, "/file.mp3", size, SEED, NULL);
    char url[256];
    kts_url(srv, "/file.mp3", url, sizeof url);
    const char *tmp = getenv("TMPDIR");
    char root[512];
    snprintf(root, sizeof root, "%s/kithara-bench-protect-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root))
        return 1;
    char plain_dir[600], protect_dir[600];
    snprintf(plain_dir, sizeof plain_dir, "%s/plain", root);
    snprintf(protect_dir, sizeof protect_dir, "%s/protected", root);

    double plain = measure(url, plain_dir, false, size, rounds);
    double prot = measure(url, protect_dir, true, size, rounds);
    kts_stop(srv);
    kth_shutdown();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    int rc = system(cmd);
    if (plain <= 0 || prot <= 0) {
        fprintf(stderr, "bench_protect: a run failed\n");
        return 1;
    }
    printf("cached read, %llu MiB, best of %d\n", (unsigned long long)(size >> 20), rounds);
    printf("  unprotected cache: %8.0f MB/s (reference)\n", plain);
    printf("  protected cache:   %8.0f MB/s (AES-256-CTR)\n", prot);
    printf("  ratio protected / unprotected: %.2f (goals: >= 1000 MB/s and >= 0.30)\n",
           prot / plain);
    return rc == 0 ? 0 : 1;
}
