/*
 * bench_download.c — the downloader's throughput and request rate over loopback.
 *
 *     bench_download [BASE_URL] [--runs N]
 *
 * 1. One 256 MiB synthetic body (BASE_URL/synth/256m) through the downloader into a file-backed
 *    storage resource in a temporary directory, committed and then checked byte for byte.
 *    The same body is also fetched into a writer that drops it, to tell the downloader's cost
 *    from the storage's.
 * 2. 2000 bodies of 20 KiB (BASE_URL/synth/20k?seed=I) submitted at once, 6 in flight.
 *
 * Without BASE_URL the loopback test server runs inside this process. Each figure is the best of
 * N runs (default 3), so a busy shared machine disturbs it less. Output is one "name=value" line
 * per figure, for scripts/bench_download.sh, which compares them with curl's.
 */
#include <kithara/downloader.h>

#include "net/downloader.h"
#include "storage/resource.h"
#include "testserver.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BIG_BYTES   (256ull * 1024 * 1024)
#define SMALL_COUNT 2000
#define SMALL_BYTES 20480
#define IN_FLIGHT   6

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct waiter {
    pthread_mutex_t m;
    pthread_cond_t c;
    unsigned done, want;
    kth_status status;
    uint64_t bytes;
    char message[512];
} waiter;

static void waiter_init(waiter *w, unsigned want)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->m, NULL);
    pthread_cond_init(&w->c, NULL);
    w->want = want;
}

static void waiter_destroy(waiter *w)
{
    pthread_cond_destroy(&w->c);
    pthread_mutex_destroy(&w->m);
}

static void on_complete(void *user, const net_result *r)
{
    waiter *w = user;
    pthread_mutex_lock(&w->m);
    w->done++;
    w->bytes += r->bytes;
    if (r->status != KTH_OK && w->status == KTH_OK) {
        w->status = r->status;
        snprintf(w->message, sizeof w->message, "%s", r->message);
    }
    if (w->done >= w->want)
        pthread_cond_broadcast(&w->c);
    pthread_mutex_unlock(&w->m);
}

static void waiter_wait(waiter *w)
{
    pthread_mutex_lock(&w->m);
    while (w->done < w->want)
        pthread_cond_wait(&w->c, &w->m);
    pthread_mutex_unlock(&w->m);
}

/* --- 256 MiB into a file ------------------------------------------------------------------ */

typedef struct big {
    waiter w;
    storage_resource *res;
} big;

static kth_status big_response(void *user, const net_response *resp)
{
    big *b = user;
    return resp->has_total_length ? storage_resource_set_length(b->res, resp->total_length)
                                  : KTH_OK;
}

static kth_status big_write(void *user, uint64_t offset, const void *data, size_t n)
{
    big *b = user;
    return storage_resource_write_at(b->res, offset, data, n);
}

static void big_complete(void *user, const net_result *r)
{
    big *b = user;
    on_complete(&b->w, r);
}

/* Returns MB/s (10^6 bytes), or a negative value on failure. */
static double run_big(kth_downloader *d, const char *base, const char *dir, bool verify)
{
    char url[1024], path[1100], err[256];
    snprintf(url, sizeof url, "%s/synth/256m", base);
    snprintf(path, sizeof path, "%s/big.bin", dir);
    big b;
    waiter_init(&b.w, 1);
    if (storage_resource_open_file(path, STORAGE_FILE_TRUNCATE, &b.res, err, sizeof err) !=
        KTH_OK) {
        fprintf(stderr, "bench_download: %s\n", err);
        return -1;
    }
    net_fetch_spec s = {.url = url,
                        .method = NET_GET,
                        .priority = NET_FETCH_HIGH,
                        .on_response = big_response,
                        .write = big_write,
                        .complete = big_complete,
                        .user = &b};
    double t0 = now_s();
    if (net_downloader_submit(d, &s, NULL) != KTH_OK)
        return -1;
    waiter_wait(&b.w);
    kth_status st = b.w.status == KTH_OK ? storage_resource_commit(b.res, BIG_BYTES) : b.w.status;
    double seconds = now_s() - t0;
    if (st != KTH_OK) {
        fprintf(stderr, "bench_download: 256 MiB fetch failed: %s %s\n", kth_strerror(st),
                b.w.message);
        return -1;
    }
    if (verify) {
        static unsigned char buf[1 << 20];
        for (uint64_t off = 0; off < BIG_BYTES;) {
            size_t got = 0;
            if (storage_resource_read_at(b.res, off, buf, sizeof buf, &got) != KTH_OK || !got ||
                kts_synth_check(0, off, buf, got) != got) {
                fprintf(stderr, "bench_download: wrong bytes near offset %llu\n",
                        (unsigned long long)off);
                return -1;
            }
            off += got;
        }
    }
    storage_resource_unref(b.res);
    unlink(path);
    waiter_destroy(&b.w);
    return (double)BIG_BYTES / seconds / 1e6;
}

/* The same body into a writer that drops it, as `curl -o /dev/null` does: the downloader's own
 * cost, without the storage's. Returns MB/s or a negative value. */
static atomic_uint_fast64_t discarded;

static kth_status discard_write(void *user, uint64_t offset, const void *data, size_t n)
{
    (void)user;
    (void)offset;
    (void)data;
    atomic_fetch_add(&discarded, n);
    return KTH_OK;
}

static double run_big_discard(kth_downloader *d, const char *base)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/synth/256m", base);
    waiter w;
    waiter_init(&w, 1);
    atomic_store(&discarded, 0);
    net_fetch_spec s = {.url = url,
                        .method = NET_GET,
                        .priority = NET_FETCH_HIGH,
                        .write = discard_write,
                        .complete = on_complete,
                        .user = &w};
    double t0 = now_s();
    if (net_downloader_submit(d, &s, NULL) != KTH_OK)
        return -1;
    waiter_wait(&w);
    double seconds = now_s() - t0;
    kth_status st = w.status;
    waiter_destroy(&w);
    if (st != KTH_OK || atomic_load(&discarded) != BIG_BYTES)
        return -1;
    return (double)BIG_BYTES / seconds / 1e6;
}

/* --- 2000 small bodies ------------------------------------------------------------------------ */

static atomic_uint_fast64_t small_bytes;

static kth_status small_write(void *user, uint64_t offset, const void *data, size_t n)
{
    (void)user;
    (void)offset;
    (void)data;
    atomic_fetch_add(&small_bytes, n);
    return KTH_OK;
}

/* Returns requests per second, or a negative value on failure. */
static double run_small(kth_downloader *d, const char *base)
{
    waiter w;
    waiter_init(&w, SMALL_COUNT);
    atomic_store(&small_bytes, 0);
    double t0 = now_s();
    for (unsigned i = 0; i < SMALL_COUNT; i++) {
        char url[1024];
        snprintf(url, sizeof url, "%s/synth/20k?seed=%u", base, i);
        net_fetch_spec s = {.url = url,
                            .method = NET_GET,
                            .priority = NET_FETCH_HIGH,
                            .write = small_write,
                            .complete = on_complete,
                            .user = &w};
        if (net_downloader_submit(d, &s, NULL) != KTH_OK)
            return -1;
    }
    waiter_wait(&w);
    double seconds = now_s() - t0;
    kth_status st = w.status;
    waiter_destroy(&w);
    if (st != KTH_OK || atomic_load(&small_bytes) != (uint64_t)SMALL_COUNT * SMALL_BYTES) {
        fprintf(stderr, "bench_download: small fetches failed: %s %s\n", kth_strerror(st),
                w.message);
        return -1;
    }
    return SMALL_COUNT / seconds;
}

int main(int argc, char **argv)
{
    const char *base = NULL;
    int runs = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (argv[i][0] != '-')
            base = argv[i];
        else {
            fprintf(stderr, "usage: bench_download [BASE_URL] [--runs N]\n");
            return 2;
        }
    }
    if (runs < 1)
        runs = 1;
    kts_server *srv = NULL;
    if (!base) {
        if (kts_start(NULL, &srv) != KTH_OK) {
            fprintf(stderr, "bench_download: cannot start the test server\n");
            return 1;
        }
        base = kts_base_url(srv);
    }
    const char *tmp = getenv("TMPDIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/kithara-bench-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    if (!mkdtemp(dir)) {
        perror("bench_download: mkdtemp");
        return 1;
    }
    kth_downloader_options o;
    kth_downloader_options_init(&o);
    o.proxy = "";
    o.max_in_flight = IN_FLIGHT;
    o.max_per_host = IN_FLIGHT;
    kth_downloader *d = NULL;
    char err[256];
    if (kth_downloader_new(&o, &d, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "bench_download: %s\n", err);
        return 1;
    }
    double best_mbps = 0, best_rps = 0, best_discard = 0;
    int rc = 0;
    for (int r = 0; r < runs && rc == 0; r++) {
        double mbps = run_big(d, base, dir, r == 0);
        double discard = run_big_discard(d, base);
        double rps = run_small(d, base);
        if (mbps < 0 || rps < 0 || discard < 0)
            rc = 1;
        best_mbps = mbps > best_mbps ? mbps : best_mbps;
        best_discard = discard > best_discard ? discard : best_discard;
        best_rps = rps > best_rps ? rps : best_rps;
        fprintf(stderr, "run %d: %.1f MB/s into a file, %.1f MB/s discarded, %.1f requests/s\n",
                r + 1, mbps, discard, rps);
    }
    kth_downloader_unref(d);
    rmdir(dir);
    kts_stop(srv);
    if (rc)
        return rc;
    printf("kithara_256MiB_MBps=%.1f\n", best_mbps);
    printf("kithara_256MiB_discard_MBps=%.1f\n", best_discard);
    printf("kithara_20KiB_requests_per_s=%.1f\n", best_rps);
    return 0;
}
