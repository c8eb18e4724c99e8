/*
 * test_hls_support.h — what the HLS integration tests share: a loopback server over the
 * committed fixtures (tests/fixtures/hls), a downloader and a cache per test, streams opened
 * through kth_stream_open, and the expected bytes of a variant read from the fixture files.
 */
#ifndef KTH_TEST_HLS_SUPPORT_H
#define KTH_TEST_HLS_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kithara/hls.h>
#include <kithara/kithara.h>

#include "test_support.h"
#include "testserver.h"

#define FIXTURES KTH_SOURCE_DIR "/tests/fixtures/hls"

struct hls_env {
    kts_server *srv;
    char *dir;
    kth_downloader *d;
    kth_cache *cache;
    kth_bus *bus;
};

static inline kth_cache *hls_open_cache(const char *dir, bool offline)
{
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.offline = offline;
    co.no_sync = true;
    kth_cache *c = NULL;
    char err[512];
    if (kth_cache_open(&co, &c, err, sizeof err) != KTH_OK)
        fail_msg("cache open: %s", err);
    return c;
}

static inline int hls_setup(void **state)
{
    struct hls_env *e = calloc(1, sizeof *e);
    kts_config cfg = {.doc_root = FIXTURES};
    if (!e || kts_start(&cfg, &e->srv) != KTH_OK)
        return -1;
    e->dir = test_make_dir();
    kth_downloader_options o;
    kth_downloader_options_init(&o);
    o.retry_base_ms = 5;
    o.retry_cap_ms = 50;
    o.stall_timeout_ms = 2000;
    char err[256];
    if (kth_downloader_new(&o, &e->d, err, sizeof err) != KTH_OK)
        return -1;
    if (kth_bus_new(&e->bus) != KTH_OK)
        return -1;
    e->cache = hls_open_cache(e->dir, false);
    *state = e;
    return 0;
}

static inline int hls_teardown(void **state)
{
    struct hls_env *e = *state;
    kth_cache_unref(e->cache);
    kth_downloader_unref(e->d);
    kth_bus_unref(e->bus);
    kts_stop(e->srv);
    if (test_remove_tree(e->dir) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
    free(e->dir);
    free(e);
    return 0;
}

/* Opens a stream over path on the server; returns the status, *out the stream on success. */
static inline kth_status hls_try_open(struct hls_env *e, const char *path, kth_cache *cache,
                                      const kth_hls_options *hls, kth_stream **out, char *err,
                                      size_t errlen)
{
    char url[512];
    kts_url(e->srv, path, url, sizeof url);
    kth_stream_options opts;
    kth_stream_options_init(&opts);
    opts.read_timeout_ms = 20000; /* hang guard only; also bounds the playlist loads */
    opts.bus = e->bus;
    opts.downloader = e->d;
    opts.cache = cache ? cache : e->cache;
    opts.hls = hls;
    return kth_stream_open(url, &opts, out, err, errlen);
}

static inline kth_stream *hls_open(struct hls_env *e, const char *path, kth_cache *cache,
                                   const kth_hls_options *hls)
{
    kth_stream *s = NULL;
    char err[1024] = "";
    kth_status st = hls_try_open(e, path, cache, hls, &s, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("open %s: %s (%s)", path, kth_strerror(st), err);
    return s;
}

/* Opens a master with a fixed variant (manual mode from the start). */
static inline kth_stream *hls_open_variant(struct hls_env *e, const char *path, int variant)
{
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = variant >= 0;
    h.initial_variant = variant;
    h.start_manual = true;
    kth_stream *s = hls_open(e, path, NULL, &h);
    assert_int_equal(kth_stream_abr_set_manual(s, variant), KTH_OK);
    return s;
}

/* Waits (at most about 10 s) until `variant` of s is usable: its playlist is in. */
static inline void hls_wait_usable(kth_stream *s, int variant)
{
    kth_hls_variant_info info = {0};
    for (int i = 0; i < 10000 && !info.usable; i++) {
        assert_int_equal(kth_stream_variant_info(s, variant, &info), KTH_OK);
        if (!info.usable)
            nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
    }
    assert_true(info.usable);
}

typedef struct bytes {
    uint8_t *data;
    size_t len;
} bytes;

static inline void bytes_append(bytes *b, const void *p, size_t n)
{
    b->data = realloc(b->data, b->len + n + 1);
    assert_non_null(b->data);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline bytes read_file(const char *path)
{
    bytes b = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open fixture %s", path);
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        bytes_append(&b, buf, n);
    fclose(f);
    return b;
}

/* The segment (and init) files of a fixture variant, in playlist order: names[i] relative to
 * the variant's folder. Consecutive repeats (byte ranges of one file) are listed once. */
typedef struct variant_files {
    char names[64][128];
    size_t count;
    bool has_init;
} variant_files;

static inline variant_files list_variant(const char *dir)
{
    variant_files v;
    memset(&v, 0, sizeof v);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/index.m3u8", FIXTURES, dir);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char line[1024];
    while (fgets(line, sizeof line, f) && v.count < 64) {
        line[strcspn(line, "\r\n")] = '\0';
        const char *map = strstr(line, "#EXT-X-MAP:URI=\"");
        if (map) {
            map += strlen("#EXT-X-MAP:URI=\"");
            snprintf(v.names[v.count], sizeof v.names[0], "%.*s", (int)strcspn(map, "\""), map);
            v.count++;
            v.has_init = true;
            continue;
        }
        if (!line[0] || line[0] == '#')
            continue;
        if (v.count > 0 && strcmp(v.names[v.count - 1], line) == 0)
            continue;
        snprintf(v.names[v.count++], sizeof v.names[0], "%.100s", line);
    }
    fclose(f);
    return v;
}

/* The concatenation of a fixture variant's files (dir relative to the fixtures; clear_dir, when
 * not NULL, is where the plaintext of the same names lives). */
static inline bytes expected_variant(const char *dir, const char *clear_dir)
{
    variant_files v = list_variant(dir);
    bytes all = {0};
    for (size_t i = 0; i < v.count; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/%s", FIXTURES, clear_dir ? clear_dir : dir, v.names[i]);
        bytes b = read_file(path);
        bytes_append(&all, b.data, b.len);
        free(b.data);
    }
    return all;
}

/* Reads the stream to its end; a variant fence fails the test unless allow_fences. */
static inline bytes read_to_end(kth_stream *s, bool allow_fences)
{
    bytes b = {0};
    uint8_t buf[20000];
    for (int guard = 0; guard < 100000; guard++) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n == 0)
            return b;
        if (n == KTH_ERR_VARIANT_CHANGE && allow_fences) {
            assert_int_equal(kth_stream_clear_variant_fence(s), KTH_OK);
            continue;
        }
        if (n < 0) {
            char detail[1024];
            kth_stream_last_error(s, detail, sizeof detail);
            fail_msg("read at %llu: %s (%s)", (unsigned long long)kth_stream_position(s),
                     kth_strerror((int)n), detail);
        }
        bytes_append(&b, buf, (size_t)n);
    }
    fail_msg("read_to_end: no end");
    return b;
}

static inline void assert_same_bytes(const bytes *got, const bytes *want)
{
    size_t n = got->len < want->len ? got->len : want->len;
    for (size_t i = 0; i < n; i++)
        if (got->data[i] != want->data[i])
            fail_msg("byte %zu differs (got %zu bytes, want %zu)", i, got->len, want->len);
    if (got->len != want->len)
        fail_msg("got %zu bytes, want %zu", got->len, want->len);
}

#endif
