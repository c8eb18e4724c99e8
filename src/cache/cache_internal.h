/*
 * cache_internal.h — the cache's objects, shared by cache.c (the handle, queries, eviction) and
 * asset.c (leases and open resources).
 *
 * Object graph: a kth_cache is referenced by its user and by each live asset object; a live
 * asset (leased, or with open resources) is in the cache's list; each open resource handle is
 * in its asset's list and counts as one pin of the asset. An asset is freed when its last lease
 * and last open resource are gone.
 *
 * Locks, in order: asset open lock (cache_asset.open_lock) → handle lock (cache_resource.lock)
 * → storage resource lock → index lock (kth_cache.lock). The index lock guards the SQLite
 * connection and every field marked "index lock"; it is the last lock taken and no callback, wait
 * or other lock happens under it.
 */
#ifndef KTH_CACHE_INTERNAL_H
#define KTH_CACHE_INTERNAL_H

#include "cache/cache.h"
#include "cache/index.h"
#include "cache/naming.h"
#include "platform/sync.h"
#include "storage/resource.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* One memory-only resource's bytes, kept by the cache between uses. */
typedef struct cache_memory_entry {
    int64_t resource_id;
    int64_t asset_id;
    storage_resource *storage; /* one reference, owned by the table */
} cache_memory_entry;

struct kth_cache {
    atomic_int refs;
    platform_mutex lock; /* the index lock; see the file comment */

    /* Fixed at open. */
    char *dir;           /* NULL in memory-only mode */
    char *data_dir;      /* dir/data */
    int lock_fd;         /* holds a shared flock on dir/lock; -1 in memory-only mode */
    cache_holder holder; /* this handle, as the holder of the leases it records in the index */
    bool memory_only, offline, durable;
    uint64_t budget; /* 0: unbounded */
    uint64_t checkpoint_bytes;
    int64_t checkpoint_ns;
    storage_memory_pool *pool; /* memory-only mode */
    /* Protection (protect.c): `protect` with the secret, or `locked` (protected, no secret:
     * its entries cannot be opened). */
    bool protect, locked;
    uint8_t secret[KTH_CACHE_SECRET_SIZE];

    /* Index lock. */
    cache_index *index;
    uint64_t total_bytes; /* == SUM(asset.bytes) */
    int64_t clock_ms;     /* last last_use handed out; strictly increasing */
    cache_asset *live;    /* leased assets and assets with open resources */
    cache_memory_entry *memory;
    size_t memory_count, memory_cap;
    uint64_t evicted_assets, evicted_bytes, repaired, reclaimed_leases;
    char last_error[512];

    /* The budget between checkpoints (budget.c): atomics, read by every write without a lock;
     * kept only when there is a budget. */
    atomic_uint_fast64_t pending;  /* bytes written through open handles, not yet recorded */
    atomic_uint_fast64_t recorded; /* total_bytes as last set (cache_set_total_locked) */
    atomic_uint_fast64_t check_at; /* recorded + pending level where a write runs a pass */
    /* 2 * episode + 1 while the last pass left the cache over its budget with nothing it may
     * evict; 2 * episode once a pass brought it back. over_bytes: recorded + pending then. */
    atomic_uint_fast64_t over_state, over_bytes;
};

struct cache_asset {
    kth_cache *cache;
    cache_asset *prev, *next; /* in cache->live; index lock */
    int64_t id;
    char key[CACHE_KEY_HEX];
    char *url;
    /* Held for the whole of cache_resource_open, so two openers never restore or repair the
     * same row at once. Order: before every other cache lock. */
    platform_mutex open_lock;
    int leases;           /* index lock */
    int open_count;       /* distinct open resource handles; index lock */
    cache_resource *open; /* those handles; index lock */
};

struct cache_resource {
    cache_asset *asset;
    cache_resource *prev, *next; /* in asset->open; index lock */
    int refs;                    /* index lock */
    int64_t id;
    char *key;

    platform_mutex lock; /* the handle lock: everything below; before resource and index */
    storage_resource *storage;
    bool detached; /* invalidate could not create a new file: record nothing more */
    /* Another process holds the row's writer lock (cache_lock_resource): this handle reads the
     * bytes it restored and writes the (same) bytes it fetches into the shared file, but records
     * nothing, never truncates or replaces the file, until it takes the lock itself
     * (checkpoint_locked tries each time). Without it, this handle holds the lock. */
    bool follower;
    /* The one writer's claim (cache_resource_claim_writer): its owner, and the token cancelled
     * when it ends (both NULL without a claim). */
    const void *writer;
    platform_cancel *released;
    char file[CACHE_FILE_MAX];
    /* What the index row says now. recorded_sums: it holds the block sums of its claims (false
     * for a row of schema 1, whose sums the next checkpoint computes and records). */
    uint64_t recorded_bytes;
    bool recorded_committed, recorded_length_known, recorded_sums;
    uint64_t recorded_length;
    /* Checkpoint pacing. */
    uint64_t unrecorded_writes;
    uint64_t unflushed_writes; /* since writeback was last started (durable caches) */
    int64_t last_checkpoint_ns;
    char etag[CACHE_TEXT_MAX];
    char last_modified[CACHE_TEXT_MAX];
    char content_type[CACHE_TEXT_MAX];
};

/* This process and cache handle number `handle` as a lease holder (holder.c). */
void cache_holder_self(cache_holder *out, int64_t handle);

/* False when the process that recorded (pid, started) is gone: no such pid, or a pid reused by
 * a process started at another time. True when it cannot tell. */
bool cache_holder_alive(int64_t pid, int64_t started);

/* Takes the writer lock of resource row `id` for this cache handle, without waiting: true when
 * it holds it now (always, in memory-only mode), false when another process (or cache handle)
 * holds it. Released with cache_unlock_resource, or by the process's death. */
bool cache_lock_resource(const kth_cache *c, int64_t id);
void cache_unlock_resource(const kth_cache *c, int64_t id);

/* Drops the leases that processes which died left in the index. Index lock held. */
void cache_reclaim_leases_locked(kth_cache *c);

/* Re-reads total_bytes from the index, which other processes change too. Index lock held. */
kth_status cache_refresh_total_locked(kth_cache *c);

/* Sets total_bytes and its mirror for the budget check of cache_budget_wrote. Index lock held. */
void cache_set_total_locked(kth_cache *c, uint64_t total);

/* A handle wrote n more bytes it has not recorded: true when they take the cache past the level
 * where an eviction pass is due (cache_evict_if_over_budget, called without any lock). Any
 * thread, no lock needed. */
bool cache_budget_wrote(kth_cache *c, uint64_t n);

/* A handle's checkpoint took n unrecorded bytes (recorded now, or given up). Any thread. */
void cache_budget_checkpointed(kth_cache *c, uint64_t n);

/* After an eviction pass: sets the next check level and the over-budget state from
 * total_bytes and the pending bytes. Index lock held. */
void cache_budget_passed_locked(kth_cache *c);

/* Makes this handle's flock on dir/lock exclusive (without waiting: false when another process
 * uses the directory) or shared again (waits). Disk caches only. */
bool cache_lock_directory(kth_cache *c, bool exclusive);

/* Drops a reference; the last one closes the index and unlocks the directory. */
void cache_unref(kth_cache *c);

/* Records a failure message for kth_cache_last_error. Index lock held. */
void cache_set_error_locked(kth_cache *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A last_use value: the wall clock in ms, forced strictly increasing. Index lock held. */
int64_t cache_tick_locked(kth_cache *c);

/* True when the asset is leased or has open resources. Index lock held. */
bool cache_asset_is_live_locked(kth_cache *c, int64_t asset_id);

/* Whatever an eviction frees, to be disposed of after the index lock is released. */
typedef struct cache_victims {
    char (*files)[CACHE_FILE_MAX];
    size_t file_count, file_cap;
    storage_resource **storage;
    size_t storage_count, storage_cap;
    bool truncated; /* out of memory while collecting: some files stay as orphans */
} cache_victims;

/* Deletes asset `id` (not live) from the index and collects its files / memory resources.
 * `bytes` is its asset.bytes. Index lock held. */
kth_status cache_delete_asset_locked(kth_cache *c, int64_t id, uint64_t bytes, cache_victims *v);

/* Deletes one resource row (not open in this process, its writer lock held) from the index and
 * collects its file / memory resource. Index lock held. */
kth_status cache_delete_resource_locked(kth_cache *c, const cache_row *row, cache_victims *v);

/* Evicts unleased, unpinned assets, least recently used first, until total_bytes <= target or
 * nothing evictable is left. Index lock held. */
kth_status cache_evict_locked(kth_cache *c, uint64_t target, cache_victims *v);

/* Unlinks the collected files and releases the collected memory resources. No lock held. */
void cache_victims_dispose(kth_cache *c, cache_victims *v);

/* Deletes the data files no index row knows (left by a crash), in data/ab/cd/; returns how
 * many. Scans the directory. No lock held (it takes the index lock per file). */
uint64_t cache_sweep_orphans(kth_cache *c);

/* Runs an eviction pass when the cache is over its budget. No lock held. */
void cache_evict_if_over_budget(kth_cache *c);

/* data_dir/file as a new string the caller frees; NULL when memory runs out. */
char *cache_data_path(const kth_cache *c, const char *file);

/* Creates data/ab and data/ab/cd for a file name "ab/cd/...". */
bool cache_make_fanout_dirs(const kth_cache *c, const char *file);

/* Opens the row's data file as a storage resource holding exactly what the row claims, after
 * shrinking the claims to what the file backs (*repaired is then set; the row in memory is
 * updated, the caller records it). A row whose file cannot be used is pointed at a new, empty
 * file (recorded here, under the index lock). A follower (another process writes the row)
 * changes neither the row nor the file: it never truncates, and a file it cannot use is
 * KTH_ERR_IO. No lock held by the caller. */
kth_status cache_restore_from_disk(kth_cache *c, cache_asset *a, const char *key, cache_row *row,
                                   bool follower, storage_resource **out, bool *repaired, char *err,
                                   size_t errlen);

/* Memory-only mode: the stored resource for a row (borrowed), or NULL. Index lock held. */
storage_resource *cache_memory_find_locked(kth_cache *c, int64_t resource_id);
/* Stores one reference to `r` for the row (replacing and returning any previous one through
 * *old, for the caller to release after unlocking). Index lock held. */
kth_status cache_memory_put_locked(kth_cache *c, int64_t resource_id, int64_t asset_id,
                                   storage_resource *r, storage_resource **old);

/* Settles protection at open, after the index is open (protect.c): takes the secret from the
 * options, checks it against the cache's check value (recording it, and deleting what the cache
 * held in the clear, the first time). KTH_ERR_PROTECTED with a sentence in err, KTH_ERR_IO,
 * KTH_ERR_NO_MEMORY. No lock held; nobody else sees the cache yet. */
kth_status cache_protect_open(kth_cache *c, const kth_cache_options *opts, char *err,
                              size_t errlen);

/* KTH_ERR_PROTECTED, with the reason in the last error and err, when the cache's entries may
 * not be opened (protected, no secret). Index lock held. */
kth_status cache_protect_usable_locked(kth_cache *c, char *err, size_t errlen);

/* Makes the data file resource `r` (named `file`, just opened and empty or about to be
 * restored) encrypt at rest when the cache is protected; KTH_OK and nothing done otherwise.
 * KTH_ERR_NO_MEMORY, KTH_ERR_INTERNAL (OpenSSL). */
kth_status cache_protect_file(const kth_cache *c, const char *file, storage_resource *r);

#endif
