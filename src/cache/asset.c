/*
 * asset.c — leases on assets and open resources: opening a resource (restore.c brings it back
 * from disk), recording progress (checkpoints), commit, and starting over (invalidate).
 *
 * Invariants:
 * - The index claims a byte only after it is durable: a checkpoint snapshots the present
 *   ranges, syncs the data file, and only then records the snapshot. Present bytes never leave a
 *   storage resource (but for a damaged block, which is not claimed again until it is whole
 *   anew), so a snapshot taken before the sync is covered by it.
 * - On disk caches every claimed piece (block_sums.h) has a checksum, recorded with the claims
 *   in one update: every claimed byte can be checked when it is read again. Pieces the writer
 *   did not fill in one run are summed (sealed) before the snapshot.
 * - A handle's recorded_* fields equal its index row; total_bytes moves by the same difference
 *   in the same index-lock section that changes the row.
 * - A restored resource claims only bytes its file really has (restore.c); a repaired row is
 *   recorded before the handle is published, and counted in stats.repaired.
 * - Dropping claims reaches the index before any byte is deleted or overwritten, and a
 *   resource that starts over gets a new file name.
 */
#include "cache/cache_internal.h"

#include "platform/log.h"
#include "platform/mem.h"
#include "storage/faults.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Durable caches start writeback after this many new bytes of a resource (see
 * cache_resource_write). */
#define WRITEBACK_STEP ((uint64_t)1 << 20)

/* --- leases --- */

/* The asset stops being live: off the list, and its lease row out of the index (a failure
 * leaves a row that the reclaim drops once this process is gone). */
static void live_remove_locked(kth_cache *c, cache_asset *a)
{
    cache_index_drop_lease(c->index, a->id, &c->holder);
    if (a->prev)
        a->prev->next = a->next;
    else
        c->live = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->prev = a->next = NULL;
}

static void asset_free(cache_asset *a)
{
    platform_mutex_destroy(&a->open_lock);
    platform_free(a->url);
    platform_free(a);
}

/* After the asset stopped being live: it may now be evicted, and it no longer holds the cache. */
static void asset_retired(cache_asset *a)
{
    kth_cache *c = a->cache;
    asset_free(a);
    cache_evict_if_over_budget(c);
    cache_unref(c);
}

kth_status cache_asset_open(kth_cache *c, const char *url, cache_asset **out, char *err,
                            size_t errlen)
{
    if (!c || !url || !out)
        return KTH_ERR_INVALID_ARG;
    char key[CACHE_KEY_HEX];
    kth_status st = cache_key_of(url, key);
    if (st != KTH_OK)
        return st;
    platform_mutex_lock(&c->lock);
    if ((st = cache_protect_usable_locked(c, err, errlen)) != KTH_OK) {
        platform_mutex_unlock(&c->lock);
        return st;
    }
    for (cache_asset *a = c->live; a; a = a->next) {
        if (strcmp(a->key, key) == 0) {
            a->leases++;
            platform_mutex_unlock(&c->lock);
            *out = a;
            return KTH_OK;
        }
    }
    /* The lease is recorded in the index (with the asset, when new) in one transaction, so no
     * other process evicts the asset from here on; it is dropped when the asset retires. */
    int64_t id = 0;
    st = cache_index_lease_asset(c->index, key, url, cache_tick_locked(c), !c->offline, &c->holder,
                                 &id);
    if (st == KTH_ERR_NOT_FOUND && c->offline) {
        cache_set_error_locked(c, "offline: %s is not in the cache", url);
        if (err && errlen)
            snprintf(err, errlen, "%s", c->last_error);
        platform_mutex_unlock(&c->lock);
        return KTH_ERR_OFFLINE_MISS;
    }
    cache_asset *a = NULL;
    if (st == KTH_OK) {
        a = platform_calloc(1, sizeof *a);
        if (!a || !(a->url = platform_strdup(url)) ||
            platform_mutex_init(&a->open_lock) != KTH_OK) {
            if (a)
                platform_free(a->url);
            platform_free(a);
            a = NULL;
            st = KTH_ERR_NO_MEMORY;
            cache_index_drop_lease(c->index, id, &c->holder);
        }
    }
    if (st == KTH_OK) {
        a->cache = c;
        a->id = id;
        memcpy(a->key, key, sizeof key);
        a->leases = 1;
        a->next = c->live;
        if (c->live)
            c->live->prev = a;
        c->live = a;
        atomic_fetch_add(&c->refs, 1);
    } else {
        if (st == KTH_ERR_IO)
            cache_set_error_locked(c, "cache index: %s", cache_index_errmsg(c->index));
        else
            cache_set_error_locked(c, "cannot lease %s: %s", url, kth_strerror(st));
        if (err && errlen)
            snprintf(err, errlen, "%s", c->last_error);
    }
    platform_mutex_unlock(&c->lock);
    *out = a;
    return st;
}

void cache_asset_release(cache_asset *a)
{
    if (!a)
        return;
    kth_cache *c = a->cache;
    platform_mutex_lock(&c->lock);
    a->leases--;
    cache_index_touch_asset(c->index, a->id, cache_tick_locked(c));
    bool gone = a->leases == 0 && a->open_count == 0;
    if (gone)
        live_remove_locked(c, a);
    platform_mutex_unlock(&c->lock);
    if (gone)
        asset_retired(a);
}

const char *cache_asset_key(const cache_asset *a)
{
    return a ? a->key : NULL;
}

/* --- open resources --- */

static cache_resource *find_open_locked(cache_asset *a, const char *key)
{
    for (cache_resource *h = a->open; h; h = h->next)
        if (strcmp(h->key, key) == 0)
            return h;
    return NULL;
}

/* Finds the row of (a, key) when nothing of this process has it open; *row is the caller's to
 * free only on KTH_OK. Index lock held. */
static kth_status closed_row_locked(cache_asset *a, const char *key, cache_row *row)
{
    if (find_open_locked(a, key))
        return KTH_ERR_BUSY;
    return cache_index_find_resource(a->cache->index, a->id, key, row);
}

kth_status cache_asset_drop_resource(cache_asset *a, const char *key)
{
    if (!a || !key)
        return KTH_ERR_INVALID_ARG;
    kth_cache *c = a->cache;
    cache_victims v = {0};
    cache_row row;
    platform_mutex_lock(&a->open_lock); /* no open of it can start meanwhile */
    platform_mutex_lock(&c->lock);
    kth_status st = closed_row_locked(a, key, &row);
    platform_mutex_unlock(&c->lock);
    if (st == KTH_OK) {
        int64_t id = row.id;
        cache_row_free(&row);
        /* Another process writing it holds its lock; taking it keeps that one out meanwhile. */
        if (!cache_lock_resource(c, id)) {
            platform_mutex_unlock(&a->open_lock);
            return KTH_ERR_BUSY;
        }
        platform_mutex_lock(&c->lock);
        st = closed_row_locked(a, key, &row);
        if (st == KTH_OK) {
            if (row.id != id)
                st = KTH_ERR_BUSY; /* replaced meanwhile: leave the new one */
            else if ((st = cache_delete_resource_locked(c, &row, &v)) != KTH_OK)
                cache_set_error_locked(c, "cannot drop %s: %s", key, cache_index_errmsg(c->index));
            cache_row_free(&row);
        }
        platform_mutex_unlock(&c->lock);
        cache_unlock_resource(c, id);
    }
    platform_mutex_unlock(&a->open_lock);
    cache_victims_dispose(c, &v);
    return st;
}

kth_status cache_resource_get_info(cache_resource *h, cache_resource_info *info)
{
    if (!h || !info)
        return KTH_ERR_INVALID_ARG;
    memset(info, 0, sizeof *info);
    platform_mutex_lock(&h->lock);
    info->committed = storage_resource_state(h->storage) == STORAGE_COMMITTED;
    info->length_known = storage_resource_length(h->storage, &info->length);
    info->present_bytes = storage_resource_present_bytes(h->storage);
    memcpy(info->etag, h->etag, sizeof info->etag);
    memcpy(info->last_modified, h->last_modified, sizeof info->last_modified);
    memcpy(info->content_type, h->content_type, sizeof info->content_type);
    platform_mutex_unlock(&h->lock);
    return KTH_OK;
}

static kth_status open_error(kth_cache *c, kth_status st, char *err, size_t errlen, const char *fmt,
                             const char *key, const char *url)
{
    platform_mutex_lock(&c->lock);
    cache_set_error_locked(c, fmt, key, url);
    if (err && errlen)
        snprintf(err, errlen, "%s", c->last_error);
    platform_mutex_unlock(&c->lock);
    return st;
}

/* The index row of (a, key) into *row: found, or added when flags has CACHE_OPEN_CREATE and the
 * cache is online (*created then true; a row another process added meanwhile is taken as
 * found). KTH_ERR_NOT_FOUND when there is none to open, KTH_ERR_IO, KTH_ERR_NO_MEMORY; *row is
 * the caller's to free on KTH_OK. Index lock held. */
static kth_status find_row_locked(cache_asset *a, const char *key, int flags, cache_row *row,
                                  bool *created)
{
    kth_cache *c = a->cache;
    kth_status st = cache_index_find_resource(c->index, a->id, key, row);
    if (st != KTH_ERR_NOT_FOUND || c->offline || !(flags & CACHE_OPEN_CREATE))
        return st;
    memset(row, 0, sizeof *row);
    storage_range_set_init(&row->ranges);
    row->claims_valid = true;
    st = cache_new_file_name(a->key, key, row->file, sizeof row->file);
    if (st == KTH_OK)
        st = cache_index_add_resource(c->index, a->id, key, row->file, &row->id);
    *created = st == KTH_OK;
    /* Another process added the row since the look-up: open that one. */
    if (st == KTH_ERR_IO && cache_index_find_resource(c->index, a->id, key, row) == KTH_OK)
        st = KTH_OK;
    return st;
}

/* Makes the new handle h (of `row`) known: a memory resource not yet in the pool goes there, a
 * row that claimed more (or other) than its file backs records what was restored, and h joins
 * the asset's open handles with what the index holds for it. Takes the index lock. */
static kth_status list_handle(cache_asset *a, cache_resource *h, cache_row *row, bool pooled,
                              bool repaired)
{
    kth_cache *c = a->cache;
    uint64_t claimed = row->committed ? row->length : storage_range_set_total(&row->ranges);
    storage_resource *replaced = NULL;
    kth_status st = KTH_OK;
    platform_mutex_lock(&c->lock);
    if (c->memory_only && !pooled)
        st = cache_memory_put_locked(c, row->id, a->id, h->storage, &replaced);
    if (st == KTH_OK && !c->memory_only && !h->follower &&
        (repaired || claimed != row->stored_bytes)) {
        st = cache_index_record(c->index, row->id, &row->ranges, claimed, row->length_known,
                                row->length, row->committed, row->sums_known ? &row->sums : NULL);
        if (st == KTH_OK) {
            cache_set_total_locked(
                c, c->total_bytes -
                       (c->total_bytes < row->stored_bytes ? c->total_bytes : row->stored_bytes) +
                       claimed);
            row->stored_bytes = claimed;
            if (repaired)
                c->repaired++;
        } else {
            cache_set_error_locked(c, "cache index: %s", cache_index_errmsg(c->index));
        }
    }
    if (st == KTH_OK) {
        h->recorded_bytes = row->stored_bytes;
        h->recorded_committed = row->committed;
        h->recorded_length_known = row->length_known;
        h->recorded_length = row->length;
        h->recorded_sums = row->sums_known || c->memory_only;
        h->next = a->open;
        if (a->open)
            a->open->prev = h;
        a->open = h;
        a->open_count++;
    }
    platform_mutex_unlock(&c->lock);
    storage_resource_unref(replaced);
    return st;
}

/* The part of cache_resource_open that runs under the asset's open lock. */
static kth_status open_locked(cache_asset *a, const char *key, int flags, cache_resource **out,
                              bool *created, bool *repaired, char *err, size_t errlen)
{
    kth_cache *c = a->cache;
    platform_mutex_lock(&c->lock);
    cache_resource *h = find_open_locked(a, key);
    if (h) {
        h->refs++;
        platform_mutex_unlock(&c->lock);
        *out = h;
        return KTH_OK;
    }
    cache_row row;
    kth_status st = find_row_locked(a, key, flags, &row, created);
    if (st == KTH_ERR_NOT_FOUND) {
        platform_mutex_unlock(&c->lock);
        if (c->offline)
            return open_error(c, KTH_ERR_OFFLINE_MISS, err, errlen,
                              "offline: %s (of %s) is not in the cache", key, a->url);
        return open_error(c, KTH_ERR_NOT_FOUND, err, errlen, "%s (of %s) is not in the cache", key,
                          a->url);
    }
    storage_resource *memory = NULL;
    if (st == KTH_OK && c->memory_only)
        memory = storage_resource_ref(cache_memory_find_locked(c, row.id));
    if (st == KTH_ERR_IO)
        cache_set_error_locked(c, "cache index: %s", cache_index_errmsg(c->index));
    platform_mutex_unlock(&c->lock);
    if (st != KTH_OK) {
        if (st == KTH_ERR_IO && err && errlen)
            kth_cache_last_error(c, err, errlen);
        return st;
    }

    /* One writer per resource across processes: without the lock, another process writes it. */
    bool follower = !cache_lock_resource(c, row.id);
    storage_resource *r = memory;
    if (c->memory_only && !r)
        st = storage_resource_new_memory_in_pool(c->budget, c->pool, &r);
    else if (!c->memory_only)
        st = cache_restore_from_disk(c, a, key, &row, follower, &r, repaired, err, errlen);
    h = st == KTH_OK ? platform_calloc(1, sizeof *h) : NULL;
    if (st == KTH_OK &&
        (!h || !(h->key = platform_strdup(key)) || platform_mutex_init(&h->lock) != KTH_OK))
        st = KTH_ERR_NO_MEMORY;
    if (st != KTH_OK) {
        if (h)
            platform_free(h->key);
        platform_free(h);
        storage_resource_unref(r);
        if (!follower)
            cache_unlock_resource(c, row.id);
        cache_row_free(&row);
        return st;
    }
    h->asset = a;
    h->follower = follower;
    h->refs = 1;
    h->id = row.id;
    h->storage = r;
    memcpy(h->file, row.file, sizeof h->file);
    memcpy(h->etag, row.etag, sizeof h->etag);
    memcpy(h->last_modified, row.last_modified, sizeof h->last_modified);
    memcpy(h->content_type, row.content_type, sizeof h->content_type);
    h->last_checkpoint_ns = platform_monotonic_ns();

    st = list_handle(a, h, &row, memory != NULL, *repaired);
    cache_row_free(&row);
    if (st != KTH_OK) {
        if (!follower)
            cache_unlock_resource(c, h->id);
        platform_mutex_destroy(&h->lock);
        storage_resource_unref(h->storage);
        platform_free(h->key);
        platform_free(h);
        return st;
    }
    if (*repaired)
        platform_log(KTH_LOG_WARN, "cache",
                     "%s of %s: the index claimed bytes its data file lacks; refetching them", key,
                     a->url);
    *out = h;
    return KTH_OK;
}

kth_status cache_resource_open(cache_asset *a, const char *key, int flags, cache_resource **out,
                               cache_resource_info *info, char *err, size_t errlen)
{
    if (!a || !key || !out)
        return KTH_ERR_INVALID_ARG;
    *out = NULL;
    bool created = false, repaired = false;
    platform_mutex_lock(&a->open_lock);
    kth_status st = open_locked(a, key, flags, out, &created, &repaired, err, errlen);
    platform_mutex_unlock(&a->open_lock);
    if (st == KTH_OK && info) {
        cache_resource_get_info(*out, info);
        info->created = created;
        info->repaired = repaired;
    }
    return st;
}

/* --- recording progress --- */

/* What a snapshot lets the index claim: on disk, the pieces that have a sum (committed only
 * when that is all of it); in memory, every present byte. */
static kth_status claims_of(const kth_cache *c, const storage_snapshot *s, const storage_sums *sums,
                            storage_range_set *claims, bool *committed)
{
    *committed = s->state == STORAGE_COMMITTED;
    if (c->memory_only) {
        for (size_t i = 0; i < s->ranges.count; i++) {
            kth_status st = storage_range_set_add(claims, s->ranges.v[i].start, s->ranges.v[i].end);
            if (st != KTH_OK)
                return st;
        }
        return KTH_OK;
    }
    kth_status st = storage_sums_covered(sums, &s->ranges, claims);
    if (st == KTH_OK && *committed && storage_range_set_total(claims) != s->length)
        *committed = false; /* a block could not be summed (a failed read-back) */
    return st;
}

/* True when every byte the row claims is in `claims`. */
static bool covers(const storage_range_set *claims, const cache_row *row)
{
    if (row->committed)
        return storage_range_set_contains(claims, 0, row->length);
    for (size_t i = 0; i < row->ranges.count; i++)
        if (!storage_range_set_contains(claims, row->ranges.v[i].start, row->ranges.v[i].end))
            return false;
    return true;
}

/* A follower becomes the writer when the writer process is gone (its lock with it) and this
 * handle holds every byte the row claims in the same file: recording its claims then drops
 * nothing the other process recorded. Handle lock held. */
static bool take_over_locked(cache_resource *h, const storage_range_set *claims)
{
    kth_cache *c = h->asset->cache;
    if (!cache_lock_resource(c, h->id))
        return false;
    cache_row row;
    platform_mutex_lock(&c->lock);
    kth_status st = cache_index_find_resource(c->index, h->asset->id, h->key, &row);
    platform_mutex_unlock(&c->lock);
    bool ok = st == KTH_OK && strcmp(row.file, h->file) == 0 && covers(claims, &row);
    if (ok) {
        h->follower = false;
        h->recorded_bytes = row.stored_bytes;
        h->recorded_committed = row.committed;
        h->recorded_length_known = row.length_known;
        h->recorded_length = row.length;
        h->recorded_sums = row.sums_known;
    } else {
        cache_unlock_resource(c, h->id);
    }
    if (st == KTH_OK)
        cache_row_free(&row);
    return ok;
}

/* Seal, snapshot, sync, record (a follower records only once it takes over). Handle lock
 * held. */
static kth_status record_locked(cache_resource *h)
{
    kth_cache *c = h->asset->cache;
    h->unrecorded_writes = 0;
    h->last_checkpoint_ns = platform_monotonic_ns();
    if (h->detached)
        return KTH_OK;
    if (!c->memory_only)
        storage_resource_seal(h->storage); /* a block it cannot sum stays unclaimed */
    storage_snapshot s;
    storage_sums sums;
    storage_sums_init(&sums);
    storage_range_set claims;
    storage_range_set_init(&claims);
    bool committed = false;
    kth_status st = storage_resource_snapshot_sums(h->storage, &s, &sums);
    if (st == KTH_OK)
        st = claims_of(c, &s, &sums, &claims, &committed);
    uint64_t bytes = storage_range_set_total(&claims);
    if (st == KTH_OK && h->follower && !take_over_locked(h, &claims))
        goto out; /* another process writes and records it */
    if (st == KTH_OK && bytes == h->recorded_bytes && committed == h->recorded_committed &&
        s.length_known == h->recorded_length_known &&
        (!s.length_known || s.length == h->recorded_length) && h->recorded_sums) {
        st = KTH_OK; /* nothing new */
        goto out;
    }
    if (st == KTH_OK && c->durable && bytes > h->recorded_bytes &&
        storage_resource_sync(h->storage) != KTH_OK) {
        int e = storage_last_errno();
        platform_mutex_lock(&c->lock);
        cache_set_error_locked(c, "%s while syncing %s/%s", strerror(e), c->data_dir, h->file);
        platform_mutex_unlock(&c->lock);
        st = KTH_ERR_IO;
    }
    if (st == KTH_OK) {
        platform_mutex_lock(&c->lock);
        st = cache_index_record(c->index, h->id, &claims, bytes, s.length_known, s.length,
                                committed, c->memory_only ? NULL : &sums);
        if (st == KTH_OK) {
            uint64_t old = h->recorded_bytes < c->total_bytes ? h->recorded_bytes : c->total_bytes;
            cache_set_total_locked(c, c->total_bytes - old + bytes);
        } else {
            cache_set_error_locked(c, "cannot record %s: %s", h->key, cache_index_errmsg(c->index));
        }
        platform_mutex_unlock(&c->lock);
    }
    if (st == KTH_OK) {
        h->recorded_bytes = bytes;
        h->recorded_committed = committed;
        h->recorded_length_known = s.length_known;
        h->recorded_length = s.length;
        h->recorded_sums = true;
    }
out:
    storage_range_set_free(&s.ranges);
    storage_range_set_free(&claims);
    storage_sums_free(&sums);
    return st;
}

/* record_locked, and the bytes it took stop counting as pending only once the total holds
 * them, so the budget check never misses them in between. Handle lock held. */
static kth_status checkpoint_locked(cache_resource *h)
{
    uint64_t wrote = h->unrecorded_writes;
    kth_status st = record_locked(h);
    cache_budget_checkpointed(h->asset->cache, wrote);
    return st;
}

kth_status cache_resource_checkpoint(cache_resource *h)
{
    if (!h)
        return KTH_ERR_INVALID_ARG;
    platform_mutex_lock(&h->lock);
    kth_status st = checkpoint_locked(h);
    platform_mutex_unlock(&h->lock);
    cache_evict_if_over_budget(h->asset->cache);
    return st;
}

int64_t cache_resource_record_due(cache_resource *h)
{
    if (!h)
        return -1;
    kth_cache *c = h->asset->cache;
    platform_mutex_lock(&h->lock);
    int64_t wait = -1;
    if (h->unrecorded_writes > 0) {
        int64_t waited = platform_monotonic_ns() - h->last_checkpoint_ns;
        wait = waited >= c->checkpoint_ns ? 0 : c->checkpoint_ns - waited;
        if (wait == 0) {
            checkpoint_locked(h);
            wait = -1;
        }
    }
    platform_mutex_unlock(&h->lock);
    return wait;
}

/* Memory-only mode: evicts the least recently used unleased asset. True if one went. */
static bool evict_one(kth_cache *c)
{
    cache_victims v = {0};
    platform_mutex_lock(&c->lock);
    uint64_t before = c->evicted_assets;
    if (c->total_bytes > 0)
        cache_evict_locked(c, c->total_bytes - 1, &v);
    bool evicted = c->evicted_assets != before;
    platform_mutex_unlock(&c->lock);
    cache_victims_dispose(c, &v);
    return evicted;
}

kth_status cache_resource_write(cache_resource *h, uint64_t offset, const void *buf, size_t n)
{
    if (!h)
        return KTH_ERR_INVALID_ARG;
    kth_cache *c = h->asset->cache;
    bool checkpointed = false, over = false;
    platform_mutex_lock(&h->lock);
    kth_status st = storage_resource_write_at(h->storage, offset, buf, n);
    /* A full memory bound: make room from unleased assets, unless this resource alone would
     * pass the bound (then nothing can help). Bounded by the number of assets. */
    if (st == KTH_ERR_LIMIT && c->memory_only && offset <= c->budget && n <= c->budget - offset) {
        while (st == KTH_ERR_LIMIT && evict_one(c))
            st = storage_resource_write_at(h->storage, offset, buf, n);
    }
    if (st == KTH_ERR_LIMIT && c->memory_only) {
        platform_mutex_lock(&c->lock);
        cache_set_error_locked(c, "memory cache bound (%llu bytes) is full of data in use",
                               (unsigned long long)c->budget);
        platform_mutex_unlock(&c->lock);
    }
    if (st == KTH_ERR_IO && !c->memory_only) {
        int e = storage_last_errno();
        platform_mutex_lock(&c->lock);
        /* The cause first: a long URL and path may cut the end of a message. */
        cache_set_error_locked(c, "%s while writing %s/%s", strerror(e), c->data_dir, h->file);
        platform_mutex_unlock(&c->lock);
    }
    if (st == KTH_OK) {
        h->unrecorded_writes += n;
        h->unflushed_writes += n;
        over = cache_budget_wrote(c, n);
        /* Durable: start writing back every WRITEBACK_STEP, so the sync at the next
         * checkpoint finds little to do and stalls this (the downloader's) thread briefly. */
        if (c->durable && h->unflushed_writes >= WRITEBACK_STEP) {
            h->unflushed_writes = 0;
            storage_resource_start_writeback(h->storage, 0, 0);
        }
        if (h->unrecorded_writes >= c->checkpoint_bytes ||
            platform_monotonic_ns() - h->last_checkpoint_ns >= c->checkpoint_ns) {
            st = checkpoint_locked(h);
            checkpointed = true;
        }
    }
    platform_mutex_unlock(&h->lock);
    if (checkpointed || over)
        cache_evict_if_over_budget(c);
    return st;
}

size_t cache_resource_last_error(cache_resource *h, char *buf, size_t size)
{
    return h ? kth_cache_last_error(h->asset->cache, buf, size) : 0;
}

kth_status cache_resource_set_length(cache_resource *h, uint64_t length)
{
    if (!h)
        return KTH_ERR_INVALID_ARG;
    kth_cache *c = h->asset->cache;
    platform_mutex_lock(&h->lock);
    kth_status st = storage_resource_set_length(h->storage, length);
    if (st == KTH_OK && !h->detached && !h->follower &&
        (!h->recorded_length_known || h->recorded_length != length)) {
        platform_mutex_lock(&c->lock);
        st = cache_index_set_length(c->index, h->id, length);
        if (st != KTH_OK)
            cache_set_error_locked(c, "cannot record %s: %s", h->key, cache_index_errmsg(c->index));
        platform_mutex_unlock(&c->lock);
        if (st == KTH_OK) {
            h->recorded_length_known = true;
            h->recorded_length = length;
        }
    }
    platform_mutex_unlock(&h->lock);
    return st;
}

static const char *given(const char *s)
{
    return s && *s ? s : NULL;
}

static bool differs(const char *stored, const char *incoming)
{
    return incoming && stored[0] && strcmp(stored, incoming) != 0;
}

kth_status cache_resource_set_meta(cache_resource *h, const char *etag, const char *last_modified,
                                   const char *content_type)
{
    if (!h)
        return KTH_ERR_INVALID_ARG;
    etag = given(etag);
    last_modified = given(last_modified);
    content_type = given(content_type);
    if ((etag && strlen(etag) >= CACHE_TEXT_MAX) ||
        (last_modified && strlen(last_modified) >= CACHE_TEXT_MAX) ||
        (content_type && strlen(content_type) >= CACHE_TEXT_MAX))
        return KTH_ERR_LIMIT;
    kth_cache *c = h->asset->cache;
    kth_status st = KTH_OK;
    platform_mutex_lock(&h->lock);
    bool has_bytes = storage_resource_present_bytes(h->storage) > 0;
    if (has_bytes && (differs(h->etag, etag) || differs(h->last_modified, last_modified))) {
        st = KTH_ERR_CHANGED;
        platform_mutex_lock(&c->lock);
        cache_set_error_locked(c, "%s changed (validators differ from the cached bytes')", h->key);
        platform_mutex_unlock(&c->lock);
    } else if (!h->detached && !h->follower) {
        platform_mutex_lock(&c->lock);
        st = cache_index_set_meta(c->index, h->id, etag, last_modified, content_type);
        if (st != KTH_OK)
            cache_set_error_locked(c, "cannot record %s: %s", h->key, cache_index_errmsg(c->index));
        platform_mutex_unlock(&c->lock);
    }
    if (st == KTH_OK) {
        if (etag)
            snprintf(h->etag, sizeof h->etag, "%s", etag);
        if (last_modified)
            snprintf(h->last_modified, sizeof h->last_modified, "%s", last_modified);
        if (content_type)
            snprintf(h->content_type, sizeof h->content_type, "%s", content_type);
    }
    platform_mutex_unlock(&h->lock);
    return st;
}

kth_status cache_resource_commit(cache_resource *h, uint64_t length)
{
    if (!h)
        return KTH_ERR_INVALID_ARG;
    platform_mutex_lock(&h->lock);
    kth_status st = storage_resource_commit(h->storage, length);
    if (st == KTH_OK) /* protected small objects: their tag, synced with the bytes */
        st = storage_resource_write_tag(h->storage);
    if (st == KTH_OK)
        st = checkpoint_locked(h);
    platform_mutex_unlock(&h->lock);
    cache_evict_if_over_budget(h->asset->cache);
    return st;
}

/* The empty storage that replaces h's after an invalidation, for data file `file`: a memory
 * resource put in the pool (*replaced: the one it displaced), or a new data file (*old_path:
 * the file it replaces, to delete). Handle lock held. */
static kth_status fresh_storage(cache_resource *h, const char *file, storage_resource **fresh,
                                storage_resource **replaced, char **old_path)
{
    cache_asset *a = h->asset;
    kth_cache *c = a->cache;
    kth_status st;
    if (c->memory_only) {
        st = storage_resource_new_memory_in_pool(c->budget, c->pool, fresh);
        if (st == KTH_OK) {
            platform_mutex_lock(&c->lock);
            st = cache_memory_put_locked(c, h->id, a->id, *fresh, replaced);
            platform_mutex_unlock(&c->lock);
        }
        return st;
    }
    *old_path = cache_data_path(c, h->file);
    char *path = cache_data_path(c, file), err[256] = "";
    if (!*old_path || !path)
        st = KTH_ERR_NO_MEMORY;
    else
        st = cache_make_fanout_dirs(c, file)
                 ? storage_resource_open_file(path, STORAGE_FILE_TRUNCATE, fresh, err, sizeof err)
                 : KTH_ERR_IO;
    if (st == KTH_OK)
        st = cache_protect_file(c, file, *fresh);
    platform_free(path);
    if (st != KTH_OK) {
        int e = errno;
        platform_mutex_lock(&c->lock);
        cache_set_error_locked(c, "cannot create a data file for %s: %s", h->key,
                               err[0]                    ? err
                               : st == KTH_ERR_NO_MEMORY ? "out of memory"
                                                         : strerror(e));
        platform_mutex_unlock(&c->lock);
    }
    return st;
}

kth_status cache_resource_invalidate(cache_resource *h)
{
    if (!h)
        return KTH_ERR_INVALID_ARG;
    cache_asset *a = h->asset;
    kth_cache *c = a->cache;
    char file[CACHE_FILE_MAX], *old_path = NULL;
    storage_resource *fresh = NULL, *replaced = NULL;
    platform_mutex_lock(&h->lock);
    if (h->follower) {
        /* The file is another process's to start over: this handle gives up on it. */
        h->detached = true;
        storage_resource *r = storage_resource_ref(h->storage);
        platform_mutex_unlock(&h->lock);
        storage_resource_fail(r, KTH_ERR_CHANGED,
                              "the resource changed on the server while another process writes "
                              "its cached copy");
        storage_resource_unref(r);
        return KTH_ERR_CHANGED;
    }
    kth_status st = cache_new_file_name(a->key, h->key, file, sizeof file);
    /* Forget the claims first: from here on the index vouches for nothing of this resource. */
    platform_mutex_lock(&c->lock);
    if (st == KTH_OK)
        st = cache_index_reset_resource(c->index, h->id, file);
    if (st == KTH_OK) {
        uint64_t old = h->recorded_bytes < c->total_bytes ? h->recorded_bytes : c->total_bytes;
        cache_set_total_locked(c, c->total_bytes - old);
    } else {
        cache_set_error_locked(c, "cannot invalidate %s: %s", h->key, cache_index_errmsg(c->index));
    }
    platform_mutex_unlock(&c->lock);
    if (st != KTH_OK) {
        platform_mutex_unlock(&h->lock);
        return st;
    }
    h->recorded_bytes = 0;
    h->recorded_committed = h->recorded_length_known = false;
    h->recorded_length = 0;
    h->recorded_sums = true; /* the row claims nothing */
    h->etag[0] = h->last_modified[0] = h->content_type[0] = '\0';
    st = fresh_storage(h, file, &fresh, &replaced, &old_path);
    memcpy(h->file, file, sizeof h->file);
    storage_resource *old = h->storage;
    if (st == KTH_OK) {
        h->storage = fresh;
    } else {
        /* No new resource: the old one is failed below and this handle records nothing more;
         * the row (reset, pointing at a file that does not exist) claims nothing. */
        storage_resource_unref(fresh);
        h->storage = storage_resource_ref(old);
        h->detached = true;
    }
    platform_mutex_unlock(&h->lock);
    storage_resource_fail(old, KTH_ERR_CHANGED,
                          "the resource changed on the server; its cached bytes were dropped");
    if (old_path && unlink(old_path) != 0 && errno != ENOENT)
        platform_log(KTH_LOG_WARN, "cache", "cannot delete %s: %s", old_path, strerror(errno));
    platform_free(old_path);
    storage_resource_unref(old);
    storage_resource_unref(replaced);
    return st;
}

/* Copies the present bytes of `from` into the memory resource `to`. */
static kth_status copy_present(storage_resource *from, storage_resource *to,
                               const storage_range_set *ranges)
{
    uint8_t buf[16384];
    for (size_t i = 0; i < ranges->count; i++) {
        for (uint64_t off = ranges->v[i].start; off < ranges->v[i].end;) {
            uint64_t left = ranges->v[i].end - off;
            size_t got = 0;
            kth_status st = storage_resource_read_at(
                from, off, buf, left < sizeof buf ? (size_t)left : sizeof buf, &got);
            if (st == KTH_OK && got == 0)
                st = KTH_ERR_INTERNAL;
            if (st == KTH_OK)
                st = storage_resource_write_at(to, off, buf, got);
            if (st != KTH_OK)
                return st;
            off += got;
        }
    }
    return KTH_OK;
}

kth_status cache_resource_revive(cache_resource *h)
{
    if (!h)
        return KTH_ERR_INVALID_ARG;
    cache_asset *a = h->asset;
    kth_cache *c = a->cache;
    platform_mutex_lock(&h->lock);
    storage_state state = storage_resource_state(h->storage);
    if (state == STORAGE_ACTIVE || state == STORAGE_COMMITTED || h->detached) {
        platform_mutex_unlock(&h->lock);
        return KTH_OK;
    }
    kth_status st = checkpoint_locked(h);
    storage_snapshot s;
    storage_sums sums;
    storage_sums_init(&sums);
    if (st == KTH_OK)
        st = storage_resource_snapshot_sums(h->storage, &s, &sums);
    else
        storage_range_set_init(&s.ranges);
    storage_resource *fresh = NULL, *replaced = NULL;
    if (st == KTH_OK && c->memory_only) {
        st = storage_resource_new_memory_in_pool(c->budget, c->pool, &fresh);
        if (st == KTH_OK)
            st = copy_present(h->storage, fresh, &s.ranges);
    } else if (st == KTH_OK) {
        char *path = cache_data_path(c, h->file);
        st = path ? storage_resource_open_file(path, 0, &fresh, NULL, 0) : KTH_ERR_NO_MEMORY;
        platform_free(path);
        if (st == KTH_OK)
            st = cache_protect_file(c, h->file, fresh);
        if (st == KTH_OK)
            st = storage_resource_restore_ranges(fresh, s.ranges.v, s.ranges.count);
    }
    if (st == KTH_OK && s.length_known)
        st = storage_resource_set_length(fresh, s.length);
    /* The same bytes: its blocks are checked again on their first read. */
    if (st == KTH_OK && !c->memory_only)
        st = storage_resource_restore_sums(fresh, &sums, !c->offline, h->key);
    storage_sums_free(&sums);
    if (st == KTH_OK && c->memory_only) {
        platform_mutex_lock(&c->lock);
        st = cache_memory_put_locked(c, h->id, a->id, fresh, &replaced);
        platform_mutex_unlock(&c->lock);
    }
    storage_range_set_free(&s.ranges);
    storage_resource *old = NULL;
    if (st == KTH_OK) {
        old = h->storage;
        h->storage = fresh;
    } else {
        storage_resource_unref(fresh);
        platform_mutex_lock(&c->lock);
        cache_set_error_locked(c, "cannot revive %s: %s", h->key, kth_strerror(st));
        platform_mutex_unlock(&c->lock);
    }
    platform_mutex_unlock(&h->lock);
    storage_resource_unref(old);
    storage_resource_unref(replaced);
    return st;
}

/* True when another process holds the writer lock of h's row. */
static bool written_elsewhere(cache_resource *h)
{
    kth_cache *c = h->asset->cache;
    if (!cache_lock_resource(c, h->id))
        return true;
    cache_unlock_resource(c, h->id);
    return false;
}

/* True when every range of `held` is among the bytes the row claims. */
static bool within_row(const storage_range_set *held, const cache_row *row)
{
    for (size_t i = 0; i < held->count; i++) {
        const storage_range *r = &held->v[i];
        if (row->committed ? r->end > row->length
                           : !storage_range_set_contains(&row->ranges, r->start, r->end))
            return false;
    }
    return true;
}

/* The end of the last run of bytes the row claims and `held` lacks, 0 when there is none:
 * where the writer's newest recorded bytes end, which is where it fetches when it grows. */
static uint64_t newest_end(const storage_range_set *held, const cache_row *row)
{
    storage_range whole = {0, row->length};
    const storage_range *v = row->committed ? &whole : row->ranges.v;
    size_t n = row->committed ? 1 : row->ranges.count;
    for (size_t i = n; i-- > 0;) {
        uint64_t end = 0;
        storage_range gap;
        for (uint64_t from = v[i].start;
             from < v[i].end && storage_range_set_first_gap(held, from, v[i].end, &gap);
             from = gap.end)
            end = gap.end;
        if (end > 0)
            return end;
    }
    return 0;
}

/* Replaces h's storage by one restored from `row`, when the row claims bytes it lacks. A
 * storage that also holds bytes the row does not claim (this process fetched them) is kept:
 * a fresh one would lose them, and a reader there would see them fetched again at every
 * refresh; *diverged says so. A storage that failed or was cancelled is left to its owner.
 * Handle lock held; *old gets the replaced storage (the caller drops it after the lock). */
static kth_status refresh_locked(cache_resource *h, cache_row *row, cache_follow *out,
                                 storage_resource **old)
{
    kth_cache *c = h->asset->cache;
    storage_snapshot s;
    kth_status st = storage_resource_snapshot(h->storage, &s);
    if (st != KTH_OK)
        return st;
    bool open = s.state == STORAGE_ACTIVE || s.state == STORAGE_COMMITTED;
    bool lacks = !covers(&s.ranges, row) || (row->committed && s.state != STORAGE_COMMITTED);
    bool extra = !within_row(&s.ranges, row);
    out->newest_end = newest_end(&s.ranges, row);
    storage_range_set_free(&s.ranges);
    if (!lacks || !open)
        return KTH_OK;
    if (extra) {
        out->diverged = true;
        return KTH_OK;
    }
    storage_resource *fresh = NULL;
    bool repaired = false;
    st = cache_restore_from_disk(c, h->asset, h->key, row, true, &fresh, &repaired, NULL, 0);
    if (st != KTH_OK)
        return st;
    *old = h->storage;
    h->storage = fresh;
    out->refreshed = true;
    return KTH_OK;
}

/* The end of the last range the row claims (its length once committed). */
static uint64_t row_frontier(const cache_row *row)
{
    if (row->committed)
        return row->length;
    return row->ranges.count > 0 ? row->ranges.v[row->ranges.count - 1].end : 0;
}

kth_status cache_resource_follow(cache_resource *h, cache_follow *out)
{
    if (!h || !out)
        return KTH_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    kth_cache *c = h->asset->cache;
    out->interval_ns = c->checkpoint_ns;
    platform_mutex_lock(&h->lock);
    if (!h->follower || h->detached) {
        platform_mutex_unlock(&h->lock);
        return KTH_OK;
    }
    cache_row row;
    platform_mutex_lock(&c->lock);
    kth_status st = cache_index_find_resource(c->index, h->asset->id, h->key, &row);
    platform_mutex_unlock(&c->lock);
    storage_resource *old = NULL;
    if (st == KTH_OK) {
        /* Another file means the writer dropped the bytes this handle holds and started
         * again: nothing it records is about them, so the handle follows no more. */
        out->follower = strcmp(row.file, h->file) == 0;
        out->recorded = row.committed ? row.length : storage_range_set_total(&row.ranges);
        out->frontier = row_frontier(&row);
        if (out->follower)
            st = refresh_locked(h, &row, out, &old);
        cache_row_free(&row);
    }
    if (st == KTH_OK && out->follower && !written_elsewhere(h)) {
        /* The writer is gone: take over once this handle holds all it recorded. */
        storage_snapshot s;
        if (storage_resource_snapshot(h->storage, &s) == KTH_OK) {
            if (take_over_locked(h, &s.ranges))
                out->follower = false;
            storage_range_set_free(&s.ranges);
        }
    }
    platform_mutex_unlock(&h->lock);
    storage_resource_unref(old);
    return st;
}

/* --- the one writer --- */

kth_status cache_resource_claim_writer(cache_resource *h, const void *owner,
                                       platform_cancel **released)
{
    if (released)
        *released = NULL;
    if (!h || !owner)
        return KTH_ERR_INVALID_ARG;
    kth_status st = KTH_OK;
    platform_mutex_lock(&h->lock);
    if (h->writer == owner) {
        st = KTH_OK;
    } else if (h->writer) {
        st = KTH_ERR_BUSY;
        if (released)
            *released = platform_cancel_ref(h->released);
    } else if (storage_resource_state(h->storage) != STORAGE_ACTIVE) {
        st = KTH_ERR_STATE;
    } else if ((h->released = platform_cancel_new(NULL)) == NULL) {
        st = KTH_ERR_NO_MEMORY;
    } else {
        h->writer = owner;
    }
    platform_mutex_unlock(&h->lock);
    return st;
}

void cache_resource_release_writer(cache_resource *h, const void *owner)
{
    if (!h || !owner)
        return;
    platform_mutex_lock(&h->lock);
    platform_cancel *token = NULL;
    if (h->writer == owner) {
        token = h->released;
        h->writer = NULL;
        h->released = NULL;
    }
    platform_mutex_unlock(&h->lock);
    platform_cancel_cancel(token);
    platform_cancel_unref(token);
}

bool cache_resource_is_shared(cache_resource *h)
{
    if (!h)
        return false;
    kth_cache *c = h->asset->cache;
    platform_mutex_lock(&c->lock);
    bool shared = h->refs > 1;
    platform_mutex_unlock(&c->lock);
    return shared;
}

/* --- reading side --- */

storage_resource *cache_resource_storage(cache_resource *h)
{
    if (!h)
        return NULL;
    platform_mutex_lock(&h->lock);
    storage_resource *r = storage_resource_ref(h->storage);
    platform_mutex_unlock(&h->lock);
    return r;
}

kth_status cache_resource_check_range(cache_resource *h, uint64_t start, uint64_t end,
                                      storage_range *missing, char *err, size_t errlen)
{
    if (!h || end < start)
        return KTH_ERR_INVALID_ARG;
    storage_resource *r = cache_resource_storage(h);
    uint64_t length;
    if (storage_resource_length(r, &length)) {
        if (end > length)
            end = length;
        if (start > end)
            start = end;
    }
    storage_range gap = {0, 0};
    bool absent = end > start && storage_resource_first_gap(r, start, end, &gap);
    storage_resource_unref(r);
    if (!absent)
        return KTH_OK;
    if (missing)
        *missing = gap;
    kth_cache *c = h->asset->cache;
    if (!c->offline)
        return KTH_ERR_NOT_FOUND;
    platform_mutex_lock(&c->lock);
    cache_set_error_locked(c, "offline: bytes [%llu, %llu) of %s (of %s) are not in the cache",
                           (unsigned long long)gap.start, (unsigned long long)gap.end, h->key,
                           h->asset->url);
    if (err && errlen)
        snprintf(err, errlen, "%s", c->last_error);
    platform_mutex_unlock(&c->lock);
    return KTH_ERR_OFFLINE_MISS;
}

void cache_resource_close(cache_resource *h)
{
    if (!h)
        return;
    cache_asset *a = h->asset;
    kth_cache *c = a->cache;
    platform_mutex_lock(&h->lock);
    checkpoint_locked(h); /* a failure is in the last error; the bytes stay unclaimed */
    platform_mutex_unlock(&h->lock);

    platform_mutex_lock(&c->lock);
    bool last = --h->refs == 0;
    bool asset_gone = false;
    if (last) {
        if (h->prev)
            h->prev->next = h->next;
        else
            a->open = h->next;
        if (h->next)
            h->next->prev = h->prev;
        a->open_count--;
        asset_gone = a->leases == 0 && a->open_count == 0;
        if (asset_gone)
            live_remove_locked(c, a);
    }
    platform_mutex_unlock(&c->lock);
    if (last) {
        /* A claim outliving every user ends here, so nobody waits for that writer forever. */
        platform_cancel_cancel(h->released);
        platform_cancel_unref(h->released);
        if (!h->follower)
            cache_unlock_resource(c, h->id);
        storage_resource_unref(h->storage);
        platform_mutex_destroy(&h->lock);
        platform_free(h->key);
        platform_free(h);
    }
    if (asset_gone)
        asset_retired(a);
}
