/*
 * evict.c — making room: LRU eviction down to the budget, deleting assets with their files, and
 * kth_cache_gc (eviction, empty assets, orphan data files).
 *
 * Invariants:
 * - Only assets that are neither live (leased or with open resources), nor leased in the index
 *   by a live process, nor pinned are evicted, least recently used first, whole. Leases of
 *   processes that died are reclaimed before a pass.
 * - Index rows go first (one transaction per asset), files after, outside the index lock; a
 *   crash in between leaves orphan files, never rows without their claims' bytes.
 * - The orphan sweep is the only code that lists the data directory, and it touches only names
 *   of our own shape that no row knows. Rows are created before their files, so a file being
 *   created is never mistaken for an orphan.
 */
#include "cache/cache_internal.h"

#include "platform/log.h"
#include "platform/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void victims_add_file(void *arg, int64_t id, const char *file)
{
    (void)id;
    cache_victims *v = arg;
    if (!file[0])
        return; /* no file of ours (the index vouches only for names of our own shape) */
    if (v->file_count == v->file_cap) {
        size_t cap = v->file_cap ? 2 * v->file_cap : 16;
        char(*files)[CACHE_FILE_MAX] = platform_realloc(v->files, cap * sizeof *files);
        if (!files) {
            v->truncated = true;
            return;
        }
        v->files = files;
        v->file_cap = cap;
    }
    snprintf(v->files[v->file_count++], CACHE_FILE_MAX, "%s", file);
}

static void victims_add_storage(cache_victims *v, storage_resource *r)
{
    if (v->storage_count == v->storage_cap) {
        size_t cap = v->storage_cap ? 2 * v->storage_cap : 16;
        storage_resource **s = platform_realloc(v->storage, cap * sizeof *s);
        if (!s) {
            /* Cannot defer it: releasing a memory resource takes no lock, so do it now. */
            storage_resource_unref(r);
            return;
        }
        v->storage = s;
        v->storage_cap = cap;
    }
    v->storage[v->storage_count++] = r;
}

kth_status cache_delete_asset_locked(kth_cache *c, int64_t id, uint64_t bytes, cache_victims *v)
{
    size_t files_before = v->file_count;
    if (!c->memory_only) {
        kth_status st = cache_index_scan_resources(c->index, id, victims_add_file, v);
        if (st != KTH_OK) {
            v->file_count = files_before;
            return st;
        }
    }
    kth_status st = cache_index_delete_asset(c->index, id);
    if (st != KTH_OK) {
        v->file_count = files_before; /* the rows stay, so their files must too */
        return st;
    }
    cache_set_total_locked(c, c->total_bytes > bytes ? c->total_bytes - bytes : 0);
    if (c->memory_only) {
        size_t keep = 0;
        for (size_t i = 0; i < c->memory_count; i++) {
            if (c->memory[i].asset_id == id)
                victims_add_storage(v, c->memory[i].storage);
            else
                c->memory[keep++] = c->memory[i];
        }
        c->memory_count = keep;
    }
    return KTH_OK;
}

kth_status cache_delete_resource_locked(kth_cache *c, const cache_row *row, cache_victims *v)
{
    kth_status st = cache_index_delete_resource(c->index, row->id);
    if (st != KTH_OK)
        return st;
    cache_set_total_locked(
        c, c->total_bytes > row->stored_bytes ? c->total_bytes - row->stored_bytes : 0);
    if (!c->memory_only) {
        victims_add_file(v, row->id, row->file);
        return KTH_OK;
    }
    size_t keep = 0;
    for (size_t i = 0; i < c->memory_count; i++) {
        if (c->memory[i].resource_id == row->id)
            victims_add_storage(v, c->memory[i].storage);
        else
            c->memory[keep++] = c->memory[i];
    }
    c->memory_count = keep;
    return KTH_OK;
}

enum { EVICT_BATCH = 32 };

struct evict_scan {
    kth_cache *c;
    uint64_t need; /* bytes still to free */
    int64_t ids[EVICT_BATCH];
    uint64_t bytes[EVICT_BATCH];
    size_t count;
};

static bool evict_candidate(void *arg, int64_t id, uint64_t bytes)
{
    struct evict_scan *s = arg;
    if (cache_asset_is_live_locked(s->c, id))
        return true; /* in use: never evicted; look further */
    s->ids[s->count] = id;
    s->bytes[s->count] = bytes;
    s->count++;
    s->need = bytes >= s->need ? 0 : s->need - bytes;
    return s->need > 0 && s->count < EVICT_BATCH;
}

kth_status cache_evict_locked(kth_cache *c, uint64_t target, cache_victims *v)
{
    if (cache_refresh_total_locked(c) != KTH_OK) {
        cache_set_error_locked(c, "cache eviction failed: %s", cache_index_errmsg(c->index));
        return KTH_ERR_IO;
    }
    if (c->total_bytes > target)
        cache_reclaim_leases_locked(c); /* a dead process's leases pin nothing */
    while (c->total_bytes > target) {
        struct evict_scan s = {.c = c, .need = c->total_bytes - target};
        kth_status st = cache_index_scan_evictable(c->index, evict_candidate, &s);
        if (st != KTH_OK) {
            cache_set_error_locked(c, "cache eviction failed: %s", cache_index_errmsg(c->index));
            return st;
        }
        if (s.count == 0)
            break; /* what is left is leased or pinned */
        for (size_t i = 0; i < s.count; i++) {
            st = cache_delete_asset_locked(c, s.ids[i], s.bytes[i], v);
            if (st == KTH_ERR_BUSY)
                continue; /* another process leased it since the scan */
            if (st != KTH_OK) {
                cache_set_error_locked(c, "cache eviction failed: %s",
                                       cache_index_errmsg(c->index));
                return st;
            }
            c->evicted_assets++;
            c->evicted_bytes += s.bytes[i];
        }
    }
    return KTH_OK;
}

void cache_victims_dispose(kth_cache *c, cache_victims *v)
{
    for (size_t i = 0; i < v->file_count && c->data_dir; i++) {
        char *path = cache_data_path(c, v->files[i]);
        if (!path)
            continue; /* out of memory: the file stays an orphan, which kth_cache_gc deletes */
        if (unlink(path) != 0 && errno != ENOENT)
            platform_log(KTH_LOG_WARN, "cache", "cannot delete %s: %s (kth_cache_gc retries)", path,
                         strerror(errno));
        platform_free(path);
    }
    for (size_t i = 0; i < v->storage_count; i++)
        storage_resource_unref(v->storage[i]);
    platform_free(v->files);
    platform_free(v->storage);
    memset(v, 0, sizeof *v);
}

void cache_evict_if_over_budget(kth_cache *c)
{
    if (c->budget == 0)
        return;
    cache_victims v = {0};
    platform_mutex_lock(&c->lock);
    if (cache_refresh_total_locked(c) == KTH_OK) {
        /* Bytes written and not recorded yet will be: make room for them too. */
        uint64_t pending = atomic_load(&c->pending);
        if (c->total_bytes + pending > c->budget)
            cache_evict_locked(c, pending < c->budget ? c->budget - pending : 0, &v);
        cache_budget_passed_locked(c);
    }
    platform_mutex_unlock(&c->lock);
    cache_victims_dispose(c, &v);
}

/* Empty assets (no resource, not live, not pinned) are bookkeeping left by leases that stored
 * nothing; gc drops them. */
struct empty_scan {
    kth_cache *c;
    int64_t *ids;
    size_t count, cap;
};

static bool collect_empty(void *arg, const cache_asset_row *row)
{
    struct empty_scan *s = arg;
    if (row->resources > 0 || row->pinned || row->leased ||
        cache_asset_is_live_locked(s->c, row->id))
        return true;
    if (s->count == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        int64_t *ids = platform_realloc(s->ids, cap * sizeof *ids);
        if (!ids)
            return false;
        s->ids = ids;
        s->cap = cap;
    }
    s->ids[s->count++] = row->id;
    return true;
}

static bool hex_name_prefix(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool hex_name(const char *s, size_t n)
{
    return strlen(s) == n && hex_name_prefix(s, n);
}

/* Opens directory `name` inside the directory `parent` is reading. */
static DIR *open_subdir(DIR *parent, const char *name)
{
    int fd = openat(dirfd(parent), name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    DIR *d = fdopendir(fd);
    if (!d)
        close(fd);
    return d;
}

/* Deletes the orphans among the files of one leaf directory data/ab/cd. */
static uint64_t sweep_leaf(kth_cache *c, DIR *leaf, const char *ab, const char *cd)
{
    uint64_t removed = 0;
    struct dirent *e;
    while ((e = readdir(leaf)) != NULL) {
        const char *n = e->d_name;
        /* Only names of our own shape: <64 hex>-<16 hex>, filed under their first digits. */
        if (strlen(n) != 81 || n[64] != '-' || memcmp(n, ab, 2) != 0 || memcmp(n + 2, cd, 2) != 0 ||
            !hex_name_prefix(n, 64) || !hex_name_prefix(n + 65, 16))
            continue;
        char rel[CACHE_FILE_MAX];
        memcpy(rel, ab, 2);
        rel[2] = '/';
        memcpy(rel + 3, cd, 2);
        rel[5] = '/';
        memcpy(rel + 6, n, 82);
        bool known = true;
        platform_mutex_lock(&c->lock);
        kth_status st = cache_index_file_known(c->index, rel, &known);
        platform_mutex_unlock(&c->lock);
        if (st != KTH_OK || known)
            continue;
        if (unlinkat(dirfd(leaf), n, 0) == 0) {
            removed++;
        } else if (errno != ENOENT) {
            int e2 = errno;
            platform_mutex_lock(&c->lock);
            cache_set_error_locked(c, "cannot delete orphan %s/%s: %s", c->data_dir, rel,
                                   strerror(e2));
            platform_mutex_unlock(&c->lock);
        }
    }
    return removed;
}

uint64_t cache_sweep_orphans(kth_cache *c)
{
    uint64_t removed = 0;
    DIR *top = opendir(c->data_dir);
    if (!top)
        return 0;
    struct dirent *e1;
    while ((e1 = readdir(top)) != NULL) {
        if (!hex_name(e1->d_name, 2))
            continue;
        char ab[3];
        memcpy(ab, e1->d_name, 3);
        DIR *mid = open_subdir(top, ab);
        if (!mid)
            continue;
        struct dirent *e2;
        while ((e2 = readdir(mid)) != NULL) {
            if (!hex_name(e2->d_name, 2))
                continue;
            char cd[3];
            memcpy(cd, e2->d_name, 3);
            DIR *leaf = open_subdir(mid, cd);
            if (!leaf)
                continue;
            removed += sweep_leaf(c, leaf, ab, cd);
            closedir(leaf);
        }
        closedir(mid);
    }
    closedir(top);
    return removed;
}

kth_status kth_cache_gc(kth_cache *cache, kth_cache_gc_result *result)
{
    if (!cache)
        return KTH_ERR_INVALID_ARG;
    kth_cache *c = cache;
    kth_cache_gc_result r = {0};
    cache_victims v = {0};
    struct empty_scan empty = {.c = c};
    platform_mutex_lock(&c->lock);
    uint64_t assets0 = c->evicted_assets, bytes0 = c->evicted_bytes;
    kth_status st = c->budget ? cache_evict_locked(c, c->budget, &v) : KTH_OK;
    r.evicted_assets = c->evicted_assets - assets0;
    r.evicted_bytes = c->evicted_bytes - bytes0;
    if (st == KTH_OK)
        st = cache_index_scan_assets(c->index, collect_empty, &empty);
    for (size_t i = 0; st == KTH_OK && i < empty.count; i++) {
        st = cache_delete_asset_locked(c, empty.ids[i], 0, &v);
        if (st == KTH_ERR_BUSY)
            st = KTH_OK; /* leased by another process since the scan */
    }
    if (st != KTH_OK)
        cache_set_error_locked(c, "cache gc: %s", cache_index_errmsg(c->index));
    platform_mutex_unlock(&c->lock);
    platform_free(empty.ids);
    cache_victims_dispose(c, &v);
    if (st == KTH_OK && !c->memory_only)
        r.orphan_files = cache_sweep_orphans(c);
    if (result)
        *result = r;
    return st;
}
