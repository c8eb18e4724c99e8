/*
 * test_cache_crash_writer.c — the victim of test_cache_crash: writes a pattern resource through
 * the cache in random-order chunks until it is complete, reporting progress on stdout so the
 * parent can kill it (SIGKILL) at a moment of its choosing.
 *
 * usage: test_cache_crash_writer DIR SIZE CHUNK RANDOM_SEED
 * stdout: 'R' once the resource is open (restored), 'W' after each chunk written, 'C' after
 * the commit. Exit 0 when complete, 2 on any failure (reason on stderr).
 */
#include <kithara/cache.h>

#include "cache/cache.h"
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define URL     "https://media.example/torture.flac"
#define KEY     "https://media.example/torture.flac"
#define ETAG    "\"torture-v1\""
#define PATTERN 77u

static void report(char c)
{
    ssize_t k;
    do {
        k = write(STDOUT_FILENO, &c, 1);
    } while (k < 0);
}

static int fail(const char *what, kth_status st)
{
    fprintf(stderr, "crash writer: %s: %s\n", what, kth_status_name(st));
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    const char *dir = argv[1];
    uint64_t size = strtoull(argv[2], NULL, 10);
    uint64_t chunk = strtoull(argv[3], NULL, 10);
    uint64_t rng = strtoull(argv[4], NULL, 10) | 1;
    if (size == 0 || chunk == 0 || chunk > (1 << 20))
        return 2;

    kth_cache_options o;
    kth_cache_options_init(&o);
    o.dir = dir;
    o.no_sync = false;
    o.checkpoint_bytes = 3 * chunk;
    o.checkpoint_ms = 20;
    kth_cache *c;
    char err[512] = "";
    kth_status st = kth_cache_open(&o, &c, err, sizeof err);
    if (st != KTH_OK) {
        fprintf(stderr, "crash writer: %s\n", err);
        return 2;
    }
    cache_asset *a;
    cache_resource *h;
    cache_resource_info info;
    if ((st = cache_asset_open(c, URL, &a, NULL, 0)) != KTH_OK)
        return fail("lease", st);
    if ((st = cache_resource_open(a, KEY, CACHE_OPEN_CREATE, &h, &info, NULL, 0)) != KTH_OK)
        return fail("open", st);
    report('R');
    int rc = 0;
    if (!info.committed) {
        if ((st = cache_resource_set_meta(h, ETAG, NULL, "audio/flac")) != KTH_OK)
            rc = fail("set_meta", st);
        if (!rc && (st = cache_resource_set_length(h, size)) != KTH_OK)
            rc = fail("set_length", st);
        /* The chunks still missing, in random order. */
        storage_resource *r = cache_resource_storage(h);
        size_t n = (size_t)((size + chunk - 1) / chunk), todo = 0;
        uint64_t *order = malloc(n * sizeof *order);
        for (size_t i = 0; order && i < n; i++) {
            uint64_t start = i * chunk, end = start + chunk < size ? start + chunk : size;
            if (!storage_resource_contains(r, start, end))
                order[todo++] = start;
        }
        for (size_t i = todo; i > 1; i--) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            size_t j = (size_t)(rng % i);
            uint64_t t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        uint8_t *buf = malloc((size_t)chunk);
        for (size_t i = 0; !rc && order && buf && i < todo; i++) {
            uint64_t start = order[i], end = start + chunk < size ? start + chunk : size;
            test_pattern_fill(PATTERN, start, buf, (size_t)(end - start));
            if ((st = cache_resource_write(h, start, buf, (size_t)(end - start))) != KTH_OK)
                rc = fail("write", st);
            else
                report('W');
        }
        if (!rc && (!order || !buf))
            rc = fail("allocate", KTH_ERR_NO_MEMORY);
        free(buf);
        free(order);
        storage_resource_unref(r);
        if (!rc && (st = cache_resource_commit(h, size)) != KTH_OK)
            rc = fail("commit", st);
    }
    if (!rc)
        report('C');
    cache_resource_close(h);
    cache_asset_release(a);
    kth_cache_unref(c);
    return rc;
}
