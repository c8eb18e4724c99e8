/*
 * test_cache_support.h — helpers shared by the cache tests: scratch trees, opening a cache with
 * test-friendly options, opening a resource through it, writing pattern bytes through a cache
 * resource, and checking that every byte a resource claims matches the pattern.
 */
#ifndef KTH_TEST_CACHE_SUPPORT_H
#define KTH_TEST_CACHE_SUPPORT_H

#include <kithara/cache.h>

#include "cache/cache.h"
#include "test_support.h"

#include <ftw.h>
#include <stdbool.h>

static inline int tc_unlink_entry(const char *path, const struct stat *sb, int flag,
                                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes a directory tree and frees the path. */
static inline void tc_remove_tree(char *path)
{
    if (!path)
        return;
    nftw(path, tc_unlink_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

/* Options for a disk cache in `dir` that checkpoints only when told to (or at commit/close),
 * without fsync (tests that measure durability clear `no_sync` themselves). */
static inline kth_cache_options tc_options(const char *dir)
{
    kth_cache_options o;
    kth_cache_options_init(&o);
    o.dir = dir;
    o.no_sync = true;
    o.checkpoint_bytes = UINT64_MAX / 2;
    o.checkpoint_ms = INT64_MAX / 2000000;
    return o;
}

/* The fixture of the cache tests: a scratch directory and the options of a cache in it. */
struct fixture {
    char *dir;
    kth_cache_options opts;
};

static inline int tc_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = test_make_dir();
    f->opts = tc_options(f->dir);
    *state = f;
    return f->dir ? 0 : -1;
}

static inline int tc_teardown(void **state)
{
    struct fixture *f = *state;
    tc_remove_tree(f->dir);
    free(f);
    return 0;
}

static inline kth_cache *tc_open(const kth_cache_options *o)
{
    kth_cache *c = NULL;
    char err[512] = "";
    kth_status st = kth_cache_open(o, &c, err, sizeof err);
    if (st != KTH_OK) {
        fprintf(stderr, "kth_cache_open: %s: %s\n", kth_status_name(st), err);
        return NULL;
    }
    return c;
}

/* Writes pattern bytes [start, end) through the handle in pieces of at most 64 KiB. */
static inline kth_status tc_write_pattern(cache_resource *h, uint32_t seed, uint64_t start,
                                          uint64_t end)
{
    static uint8_t buf[65536];
    while (start < end) {
        size_t n = end - start < sizeof buf ? (size_t)(end - start) : sizeof buf;
        test_pattern_fill(seed, start, buf, n);
        kth_status st = cache_resource_write(h, start, buf, n);
        if (st != KTH_OK)
            return st;
        start += n;
    }
    return KTH_OK;
}

/* True when every present byte of `r` equals the pattern; *present receives their count. */
static inline bool tc_present_bytes_match(storage_resource *r, uint32_t seed, uint64_t *present)
{
    storage_snapshot s;
    if (storage_resource_snapshot(r, &s) != KTH_OK)
        return false;
    static uint8_t buf[65536], want[65536];
    bool ok = true;
    uint64_t total = 0;
    for (size_t i = 0; i < s.ranges.count && ok; i++) {
        for (uint64_t off = s.ranges.v[i].start; off < s.ranges.v[i].end && ok;) {
            uint64_t left = s.ranges.v[i].end - off;
            size_t want_n = left < sizeof buf ? (size_t)left : sizeof buf;
            size_t got = 0;
            if (storage_resource_read_at(r, off, buf, want_n, &got) != KTH_OK || got == 0) {
                ok = false;
                break;
            }
            test_pattern_fill(seed, off, want, got);
            if (memcmp(buf, want, got) != 0) {
                fprintf(stderr, "byte mismatch in [%llu, %llu)\n", (unsigned long long)off,
                        (unsigned long long)(off + got));
                ok = false;
            }
            off += got;
            total += got;
        }
    }
    storage_range_set_free(&s.ranges);
    if (present)
        *present = total;
    return ok;
}

/* A cache, a leased asset and one resource of it open, with the resource's storage. */
struct tc_handles {
    kth_cache *cache;
    cache_asset *asset;
    cache_resource *res;
    storage_resource *r; /* NULL until the resource is open */
    cache_resource_info info;
};

/* Opens a cache with `o`, asset `url` and its resource `key` (flags: CACHE_OPEN_*) into *h.
 * Returns the first failure (what was opened stays in *h for tc_close); err may be NULL. */
static inline kth_status tc_open_handles(const kth_cache_options *o, const char *url,
                                         const char *key, int flags, struct tc_handles *h,
                                         char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    h->cache = tc_open(o);
    if (!h->cache)
        return KTH_ERR_IO;
    kth_status st = cache_asset_open(h->cache, url, &h->asset, err, errlen);
    if (st == KTH_OK)
        st = cache_resource_open(h->asset, key, flags, &h->res, &h->info, err, errlen);
    if (st == KTH_OK)
        h->r = cache_resource_storage(h->res);
    return st;
}

/* Closes what tc_open_handles opened (any of it may be NULL). */
static inline void tc_close_handles(struct tc_handles *h)
{
    storage_resource_unref(h->r);
    cache_resource_close(h->res);
    cache_asset_release(h->asset);
    kth_cache_unref(h->cache);
    memset(h, 0, sizeof *h);
}

#endif
