/*
 * bench_streams.c — many progressive streams at once in one process, read round-robin by one
 * thread from the loopback test server through one downloader and one cache, for N = 1, 10, 100
 * and 1000 (or the counts given): wall time, MB/s, peak RSS, threads and descriptors with every
 * stream open, and the median and slowest stream's completion time. Every byte is checked.
 * The ratio printed for each N is its MB/s over that of N = 100 (the reference, measured in the
 * same process; the target is >= 0.8 at N = 1000, and the slowest stream within 2x the median).
 * Usage: bench_streams [bytes_per_stream_kib [N ...]] (default 1024 KiB); scratch cache in
 * $TMPDIR or /tmp, removed after each N.
 */
#include <kithara/kithara.h>

#include "testserver.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = -3; /* ".", ".." and the directory's own descriptor */
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static long count_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %ld", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One run of n streams; returns MB/s, or a negative value on failure. */
static double run(kts_server *srv, int n, uint64_t size)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/kithara-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.max_bytes = KTH_CACHE_UNBOUNDED;
    co.no_sync = true;
    kth_cache *cache;
    char err[512];
    if (kth_cache_open(&co, &cache, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "cache: %s\n", err);
        return -1;
    }
    kth_stream **s = calloc((size_t)n, sizeof *s);
    uint64_t *pos = calloc((size_t)n, sizeof *pos);
    double *done_at = calloc((size_t)n, sizeof *done_at);
    static unsigned char buf[64 * 1024];
    double t0 = now_s(), result = 0;
    for (int i = 0; i < n; i++) {
        char path[64], url[256];
        snprintf(path, sizeof path, "/s%d.mp3", i);
        kts_url(srv, path, url, sizeof url);
        kth_stream_options so;
        kth_stream_options_init(&so);
        so.cache = cache;
        if (kth_stream_open(url, &so, &s[i], err, sizeof err) != KTH_OK) {
            fprintf(stderr, "open %d: %s\n", i, err);
            return -1;
        }
    }
    long fds = count_fds(), threads = count_threads();
    for (int left = n; left > 0;) {
        for (int i = 0; i < n; i++) {
            if (done_at[i] > 0)
                continue;
            int64_t k = kth_stream_read(s[i], buf, sizeof buf);
            if (k < 0) {
                fprintf(stderr, "stream %d: %s\n", i, kth_strerror((int)k));
                return -1;
            }
            if (k == 0) {
                if (pos[i] != size) {
                    fprintf(stderr, "stream %d ended at %llu\n", i, (unsigned long long)pos[i]);
                    return -1;
                }
                done_at[i] = now_s() - t0;
                left--;
                continue;
            }
            if (kts_synth_check((uint64_t)i + 1, pos[i], buf, (size_t)k) != (size_t)k) {
                fprintf(stderr, "stream %d: wrong byte near %llu\n", i, (unsigned long long)pos[i]);
                return -1;
            }
            pos[i] += (uint64_t)k;
        }
    }
    double wall = now_s() - t0;
    for (int i = 0; i < n; i++)
        kth_stream_close(s[i]);
    kth_cache_unref(cache);
    qsort(done_at, (size_t)n, sizeof *done_at, cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    result = (double)size * n / wall / 1e6;
    printf("N=%5d  %8.2f s  %8.1f MB/s  peak RSS %6ld MiB  threads %4ld  fds %5ld  "
           "stream median %.2f s slowest %.2f s (%.2fx)\n",
           n, wall, result, ru.ru_maxrss / 1024, threads, fds, done_at[n / 2], done_at[n - 1],
           done_at[n - 1] / done_at[n / 2]);
    fflush(stdout);
    free(s);
    free(pos);
    free(done_at);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? result : -1;
}

int main(int argc, char **argv)
{
    uint64_t size = (argc > 1 ? strtoull(argv[1], NULL, 10) : 1024) * 1024;
    int counts[16] = {1, 10, 100, 1000}, ncounts = 4;
    if (argc > 2) {
        ncounts = 0;
        for (int i = 2; i < argc && ncounts < 16; i++)
            counts[ncounts++] = atoi(argv[i]);
    }
    int most = 0;
    for (int i = 0; i < ncounts; i++)
        most = counts[i] > most ? counts[i] : most;
    kts_server *srv;
    if (kts_start(NULL, &srv) != 0)
        return 1;
    for (int i = 0; i < most; i++) {
        char path[64];
        snprintf(path, sizeof path, "/s%d.mp3", i);
        kts_add_synth(srv, path, size, (uint64_t)i + 1, NULL);
    }
    printf("bench_streams: %llu KiB per stream over loopback, one reader thread round-robin\n",
           (unsigned long long)(size / 1024));
    double mbs[16], ref = 0;
    for (int i = 0; i < ncounts; i++) {
        mbs[i] = run(srv, counts[i], size);
        if (mbs[i] < 0)
            return 1;
        if (counts[i] == 100)
            ref = mbs[i];
    }
    for (int i = 0; ref > 0 && i < ncounts; i++)
        printf("N=%5d  MB/s ratio to N=100: %.2f%s\n", counts[i], mbs[i] / ref,
               counts[i] == 1000
                   ? (mbs[i] / ref >= 0.8 ? "  (target >= 0.8: PASS)" : "  (target >= 0.8: FAIL)")
                   : "");
    kth_shutdown();
    kts_stop(srv);
    return 0;
}
