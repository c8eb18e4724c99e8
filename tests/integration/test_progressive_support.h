/*
 * test_progressive_support.h — what the progressive-file integration tests share: a loopback
 * server, a downloader and a cache in a scratch directory per test, opening a stream over a
 * server path, and reading a stream to its end against the server's byte pattern.
 */
#ifndef KTH_TEST_PROGRESSIVE_SUPPORT_H
#define KTH_TEST_PROGRESSIVE_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <kithara/kithara.h>

#include "test_support.h"
#include "testserver.h"

struct env {
    kts_server *srv;
    char *dir;
    kth_downloader *d;
    kth_cache *cache;
};

/* A cache in dir; budget 0 keeps the default. Not durable: the tests need crash consistency,
 * not power-loss safety. */
static inline kth_cache *open_cache(const char *dir, bool offline, uint64_t budget)
{
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.offline = offline;
    co.no_sync = true;
    if (budget)
        co.max_bytes = budget;
    kth_cache *c = NULL;
    char err[512];
    if (kth_cache_open(&co, &c, err, sizeof err) != KTH_OK)
        fail_msg("cache open: %s", err);
    return c;
}

/* Server, downloader with quick retries (stall_timeout_ms 0: the default) and a cache. */
static inline int env_setup(void **state, int64_t stall_timeout_ms)
{
    struct env *e = calloc(1, sizeof *e);
    if (!e || kts_start(NULL, &e->srv) != KTH_OK)
        return -1;
    e->dir = test_make_dir();
    kth_downloader_options o;
    kth_downloader_options_init(&o);
    o.retry_base_ms = 5;
    o.retry_cap_ms = 50;
    if (stall_timeout_ms > 0)
        o.stall_timeout_ms = stall_timeout_ms;
    char err[256];
    if (kth_downloader_new(&o, &e->d, err, sizeof err) != KTH_OK)
        return -1;
    e->cache = open_cache(e->dir, false, 0);
    *state = e;
    return 0;
}

static inline int teardown(void **state)
{
    struct env *e = *state;
    kth_cache_unref(e->cache);
    kth_downloader_unref(e->d);
    kts_stop(e->srv);
    if (test_remove_tree(e->dir) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
    free(e->dir);
    free(e);
    return 0;
}

/* Opens path on the server through the env's downloader and `cache` (NULL: the env's), or
 * fails the test naming the error. */
static inline kth_stream *open_stream(struct env *e, const char *path, kth_cache *cache,
                                      uint64_t readahead, int64_t timeout_ms)
{
    size_t url_size = strlen(kts_base_url(e->srv)) + strlen(path) + 1; /* any length of path */
    char *url = malloc(url_size);
    assert_non_null(url);
    assert_non_null(kts_url(e->srv, path, url, url_size));
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.downloader = e->d;
    so.cache = cache ? cache : e->cache;
    so.read_timeout_ms = timeout_ms;
    so.readahead_bytes = readahead;
    kth_stream *s = NULL;
    char err[512];
    kth_status st = kth_stream_open(url, &so, &s, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("open %.200s: %s (%s)", url, kth_strerror(st), err);
    free(url);
    return s;
}

/* Reads the whole stream from its position, checking every byte against the pattern of
 * `seed`, and that it ends at expected_end. Returns where it ended. */
static inline uint64_t read_all_checked(kth_stream *s, uint64_t seed, uint64_t expected_end)
{
    static uint8_t buf[128 * 1024];
    uint64_t pos = kth_stream_position(s);
    for (;;) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0) {
            char detail[512];
            kth_stream_last_error(s, detail, sizeof detail);
            fail_msg("read at %llu: %s (%s)", (unsigned long long)pos, kth_strerror((int)n),
                     detail);
        }
        size_t bad = kts_synth_check(seed, pos, buf, (size_t)n);
        if (bad != (size_t)n)
            fail_msg("wrong byte at offset %llu", (unsigned long long)(pos + bad));
        pos += (uint64_t)n;
    }
    assert_int_equal(pos, expected_end);
    return pos;
}

#endif
