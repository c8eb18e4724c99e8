/*
 * bench_progressive.c — a progressive file played through the downloader and the cache:
 *   1. first play of a 256 MiB file over loopback (network -> cache -> reader), MB/s;
 *   2. reading the fully cached file again through kth_stream vs pread() of the cache's own data
 *      file, same 64 KiB buffers, best of 5 alternating: ratio (target >= 0.9), for
 *      a. the first read of each block by a freshly opened stream, which checks the block against
 *         its checksum (the cost of verification), and
 *      b. a second read of the whole file by the same stream (blocks already checked).
 * The loopback first play against curl is in scripts/bench_progressive.sh.
 * Usage: bench_progressive [size_mib] (default 256); scratch files in $TMPDIR or /tmp.
 */
#define _XOPEN_SOURCE 700
#include <kithara/kithara.h>

#include "storage/crc32c.h"
#include "testserver.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUF (64 * 1024)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char largest_path[4096];
static off_t largest_size;

static int find_largest(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)f;
    if (type == FTW_F && st->st_size > largest_size) {
        largest_size = st->st_size;
        snprintf(largest_path, sizeof largest_path, "%s", path);
    }
    return 0;
}

/* Reads the stream from its position to the end; bytes per second. */
static double read_to_end(kth_stream *s, uint64_t size)
{
    static unsigned char buf[BUF];
    uint64_t total = 0;
    double t0 = now_s();
    for (;;) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0) {
                fprintf(stderr, "read: %s\n", kth_strerror((int)n));
                exit(1);
            }
            break;
        }
        total += (uint64_t)n;
    }
    double t = now_s() - t0;
    if (total != size) {
        fprintf(stderr, "read %llu of %llu bytes\n", (unsigned long long)total,
                (unsigned long long)size);
        exit(1);
    }
    return (double)size / t;
}

/* Opens a stream and reads the file to its end; with `again`, seeks back and reads it once more
 * (*again receives that pass). Returns the first pass. */
static double stream_pass(const char *url, kth_cache *cache, uint64_t size, double *again)
{
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    kth_stream *s;
    char err[512];
    if (kth_stream_open(url, &so, &s, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    double first = read_to_end(s, size);
    if (again) {
        uint64_t pos = 0;
        if (kth_stream_seek(s, 0, SEEK_SET, &pos) != KTH_OK) {
            fprintf(stderr, "seek failed\n");
            exit(1);
        }
        *again = read_to_end(s, size);
    }
    kth_stream_close(s);
    return first;
}

static double pread_pass(const char *path, uint64_t size)
{
    int fd = open(path, O_RDONLY);
    static unsigned char buf[BUF];
    uint64_t off = 0;
    double t0 = now_s();
    while (off < size) {
        ssize_t n = pread(fd, buf, sizeof buf, (off_t)off);
        if (n <= 0)
            break;
        off += (uint64_t)n;
    }
    double t = now_s() - t0;
    close(fd);
    return (double)size / t;
}

int main(int argc, char **argv)
{
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 256;
    uint64_t size = (mib ? mib : 256) << 20;
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/kithara-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    kts_server *srv;
    if (kts_start(NULL, &srv) != 0)
        return 1;
    kts_add_synth(srv, "/big.flac", size, 5, NULL);
    char url[256];
    kts_url(srv, "/big.flac", url, sizeof url);
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.max_bytes = KTH_CACHE_UNBOUNDED; /* unbounded: the whole file stays */
    kth_cache *cache;
    char err[512];
    if (kth_cache_open(&co, &cache, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "cache: %s\n", err);
        return 1;
    }
    printf("bench_progressive (%ld cores online), %llu MiB file over loopback\n",
           sysconf(_SC_NPROCESSORS_ONLN), (unsigned long long)(size >> 20));
    double first = stream_pass(url, cache, size, NULL);
    printf("first play (loopback -> cache -> reader): %.0f MiB/s\n", first / 1048576);

    nftw(dir, find_largest, 16, FTW_PHYS);
    if ((uint64_t)largest_size < size) {
        fprintf(stderr, "could not find the cached data file\n");
        return 1;
    }
    double best_first = 0, best_again = 0, best_p = 0;
    for (int round = 0; round < 5; round++) {
        double p = pread_pass(largest_path, size);
        double again = 0;
        double s = stream_pass(url, cache, size, &again);
        if (p > best_p)
            best_p = p;
        if (s > best_first)
            best_first = s;
        if (again > best_again)
            best_again = again;
    }
    double r1 = best_first / best_p, r2 = best_again / best_p;
    printf("cached re-read, 64 KiB reads, pread of the cache file %.0f MiB/s; blocks checked "
           "with CRC-32C (%s):\n",
           best_p / 1048576, storage_crc32c_impl_name(storage_crc32c_impl_count() - 1));
    printf("  first read (checks each block): stream %.0f MiB/s, ratio %.3f (target >= 0.9: %s)\n",
           best_first / 1048576, r1, r1 >= 0.9 ? "PASS" : "FAIL");
    printf("  later read (blocks checked):    stream %.0f MiB/s, ratio %.3f (target >= 0.9: %s)\n",
           best_again / 1048576, r2, r2 >= 0.9 ? "PASS" : "FAIL");
    kth_cache_unref(cache);
    kth_shutdown();
    kts_stop(srv);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
