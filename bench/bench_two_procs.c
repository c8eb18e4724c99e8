/*
 * bench_two_procs.c — two processes streaming the same progressive asset from one cache
 * directory at once, against one process alone (the reference, measured in the same run):
 *   - bytes fetched from the server divided by the asset size (goal 1.00: each byte once);
 *   - wall time of the pair vs one process alone.
 * Every stream's bytes are checked against the served pattern. The processes are this program
 * run again (fork + exec of /proc/self/exe), each with its own cache handle and downloader.
 * Usage: bench_two_procs [size_mib] (default 128); scratch files in $TMPDIR or /tmp.
 */
#define _XOPEN_SOURCE 700
#include <kithara/kithara.h>

#include "testserver.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEED 99
#define PATH "/asset.mp3"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The child: streams url through the cache in dir to the end; exit 0 when every byte matched. */
static int child(const char *url, const char *dir, uint64_t size)
{
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    kth_cache *cache = NULL;
    char err[512] = "";
    if (kth_cache_open(&co, &cache, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "cache: %s\n", err);
        return 1;
    }
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    so.read_timeout_ms = 60000;
    kth_stream *s = NULL;
    if (kth_stream_open(url, &so, &s, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    static unsigned char buf[256 * 1024];
    uint64_t pos = 0;
    int rc = 0;
    for (;;) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0) {
                fprintf(stderr, "read at %llu: %s\n", (unsigned long long)pos,
                        kth_strerror((int)n));
                rc = 1;
            }
            break;
        }
        if (kts_synth_check(SEED, pos, buf, (size_t)n) != (size_t)n) {
            fprintf(stderr, "wrong bytes near %llu\n", (unsigned long long)pos);
            rc = 1;
            break;
        }
        pos += (uint64_t)n;
    }
    if (rc == 0 && pos != size) {
        fprintf(stderr, "ended at %llu of %llu\n", (unsigned long long)pos,
                (unsigned long long)size);
        rc = 1;
    }
    kth_stream_close(s);
    kth_cache_unref(cache);
    kth_shutdown();
    return rc;
}

static pid_t spawn(const char *url, const char *dir, const char *size)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "bench_two_procs", "--child", url, dir, size, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)type;
    (void)f;
    return remove(path);
}

static uint64_t fetched(kts_server *srv)
{
    uint64_t sum = 0;
    size_t n = kts_log_count(srv);
    for (size_t i = 0; i < n; i++) {
        kts_log_entry e;
        if (kts_log_get(srv, i, &e) == KTH_OK && strcmp(e.path, PATH) == 0)
            sum += e.body_bytes;
    }
    return sum;
}

/* Runs `procs` processes at once on a fresh cache directory; their wall time, and the bytes
 * fetched through *bytes. Exits when a process fails. */
static double run(kts_server *srv, const char *url, const char *base, int procs,
                  const char *size_arg, uint64_t *bytes)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/cache-%d", base, procs);
    kts_reset(srv);
    double t0 = now_s();
    pid_t pid[2];
    for (int i = 0; i < procs; i++)
        pid[i] = spawn(url, dir, size_arg);
    for (int i = 0; i < procs; i++) {
        int status = 0;
        if (waitpid(pid[i], &status, 0) != pid[i] || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "bench_two_procs: process %d of %d failed\n", i + 1, procs);
            exit(1);
        }
    }
    double wall = now_s() - t0;
    *bytes = fetched(srv);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return wall;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child(argv[2], argv[3], strtoull(argv[4], NULL, 10));
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 128;
    if (mib == 0 || mib > 4096) {
        fprintf(stderr, "usage: bench_two_procs [size_mib 1..4096]\n");
        return 2;
    }
    uint64_t size = mib << 20;
    char size_arg[32];
    snprintf(size_arg, sizeof size_arg, "%llu", (unsigned long long)size);
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char base[4096];
    snprintf(base, sizeof base, "%s/bench_two_procs.XXXXXX", tmp);
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    kts_server *srv = NULL;
    if (kts_start(NULL, &srv) != KTH_OK)
        return 1;
    kts_add_synth(srv, PATH, size, SEED, "audio/mpeg");
    char url[256];
    kts_url(srv, PATH, url, sizeof url);

    uint64_t one_bytes = 0, two_bytes = 0;
    double one = run(srv, url, base, 1, size_arg, &one_bytes);
    double two = run(srv, url, base, 2, size_arg, &two_bytes);
    printf("asset %llu MiB over loopback, every byte checked\n", (unsigned long long)mib);
    printf("one process:   %.3f s, fetched %.2f x the asset\n", one,
           (double)one_bytes / (double)size);
    printf("two processes: %.3f s, fetched %.2f x the asset (goal 1.00)\n", two,
           (double)two_bytes / (double)size);
    printf("wall time, two at once vs one alone: %.2f\n", two / one);
    kts_stop(srv);
    rmdir(base);
    return 0;
}
