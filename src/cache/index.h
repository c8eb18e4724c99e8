/*
 * index.h — the cache's SQLite index: assets, their resources, and what the disk holds of each.
 *
 * Pure bookkeeping over one SQLite connection: no files are touched here except the database.
 * The index has no lock of its own; its owner (the cache) holds the index lock around every
 * call, which is also what makes the single connection safe to share between threads.
 *
 * Schema (user_version 3; an older index is migrated when opened: schema 1 gains the sums
 * column, schemas 1 and 2 the setting table):
 *   asset(id, key UNIQUE, url, last_use, pinned, bytes)   bytes = SUM(resource.bytes), by triggers
 *   resource(id, asset_id, key, file UNIQUE, length NULL=unknown, committed, ranges BLOB,
 *            bytes, etag, last_modified, content_type, sums BLOB)   UNIQUE(asset_id, key)
 *   setting(name PRIMARY KEY, value BLOB)   whole-cache values ("secret_check": cache/protect.c)
 * `ranges` packs the byte ranges the disk is known to hold as little-endian (start, end) u64
 * pairs; `bytes` is their total (the length once committed). `sums` holds the CRC-32C of every
 * piece of those ranges (storage/block_sums.h: the ranges cut at 64 KiB block boundaries), in
 * order, as little-endian u32; NULL in rows recorded by schema 1. Rows read back are validated:
 * the database is a file on disk, so its contents are input, not truth.
 */
#ifndef KTH_CACHE_INDEX_H
#define KTH_CACHE_INDEX_H

#include <kithara/status.h>

#include "storage/block_sums.h"
#include "storage/range_set.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cache_index cache_index;

/* Text fields stored per resource (validators, content type) are at most this long. */
#define CACHE_TEXT_MAX 256
/* A data file's name relative to the data directory: "ab/cd/<64 hex>-<16 hex>". */
#define CACHE_FILE_MAX 96

/* Opens or creates the index at `path` (NULL: a private in-memory database). A file that is not
 * a usable database is deleted (with its WAL) and recreated empty; *rebuilt tells the caller.
 * Returns KTH_ERR_IO, KTH_ERR_UNSUPPORTED (a newer schema), KTH_ERR_LIMIT (path longer than
 * SQLite takes) or KTH_ERR_NO_MEMORY with a sentence in err. */
kth_status cache_index_open(const char *path, cache_index **out, bool *rebuilt, char *err,
                            size_t errlen);
void cache_index_close(cache_index *ix);

/* SQLite's message for the last failure on this connection. */
const char *cache_index_errmsg(cache_index *ix);

/* --- assets --- */

kth_status cache_index_find_asset(cache_index *ix, const char *key, int64_t *id);
kth_status cache_index_add_asset(cache_index *ix, const char *key, const char *url, int64_t now_ms,
                                 int64_t *id);
kth_status cache_index_touch_asset(cache_index *ix, int64_t id, int64_t now_ms);
kth_status cache_index_set_pinned(cache_index *ix, int64_t id, bool pinned);
/* Deletes the asset and all its resource rows in one transaction; KTH_ERR_BUSY, nothing deleted,
 * when some holder leases it (checked inside the transaction). */
kth_status cache_index_delete_asset(cache_index *ix, int64_t id);

/* Asset bytes: the sum of its resources' bytes (kept by triggers); *pinned may be NULL.
 * KTH_ERR_NOT_FOUND for an unknown id. */
kth_status cache_index_asset_bytes(cache_index *ix, int64_t id, uint64_t *bytes, bool *pinned);

/* Calls fn(arg, id, bytes) for every unpinned asset holding bytes, least recently used first,
 * until fn returns false. fn must not call into the index. */
kth_status cache_index_scan_evictable(cache_index *ix,
                                      bool (*fn)(void *arg, int64_t id, uint64_t bytes), void *arg);

/* An asset with its aggregates, as the listing scan reports it (strings valid during the
 * callback only). */
typedef struct cache_asset_row {
    int64_t id;
    const char *key;
    const char *url;
    int64_t last_use;
    bool pinned;
    uint64_t bytes;
    uint64_t known_length;
    uint32_t resources;
    uint32_t complete;
    uint32_t unknown_lengths;
    bool leased; /* some cache handle, of this process or another, leases it */
} cache_asset_row;

/* Calls fn for every asset, most recently used first, until fn returns false. fn must not call
 * into the index. */
kth_status cache_index_scan_assets(cache_index *ix,
                                   bool (*fn)(void *arg, const cache_asset_row *row), void *arg);

/* Calls fn(arg, resource id, file) for each resource of an asset; file is "" when the row's name
 * is not one the cache writes (a damaged row: nothing of ours to delete). fn must not call the
 * index. */
kth_status cache_index_scan_resources(cache_index *ix, int64_t asset_id,
                                      void (*fn)(void *arg, int64_t id, const char *file),
                                      void *arg);

/* --- leases of processes --- */

/* Who holds a lease: a process (its pid and start time, which tells a reused pid apart) and a
 * cache handle inside it. */
typedef struct cache_holder {
    int64_t pid;
    int64_t started;
    int64_t handle;
} cache_holder;

/* In one transaction: finds the asset stored under `key` (adding it with `url` when absent and
 * `create`) and records a lease on it for `holder`, so no other process evicts it in between.
 * KTH_ERR_NOT_FOUND when absent and !create; KTH_ERR_IO, KTH_ERR_NO_MEMORY. */
kth_status cache_index_lease_asset(cache_index *ix, const char *key, const char *url,
                                   int64_t now_ms, bool create, const cache_holder *holder,
                                   int64_t *id);

/* Deletes holder's lease on the asset (no effect when it has none). */
kth_status cache_index_drop_lease(cache_index *ix, int64_t id, const cache_holder *holder);

/* *leased: whether any holder leases the asset. */
kth_status cache_index_asset_leased(cache_index *ix, int64_t id, bool *leased);

/* Deletes the leases of every holder for which alive(pid, started) is false (a process that
 * died without ending them), adding the number of leases deleted to *reclaimed (may be NULL).
 * alive must not call the index. At most 64 dead holders per call. */
kth_status cache_index_reclaim_leases(cache_index *ix, bool (*alive)(int64_t pid, int64_t started),
                                      uint64_t *reclaimed);

/* --- resources --- */

typedef struct cache_row {
    int64_t id;
    char file[CACHE_FILE_MAX];
    bool length_known;
    uint64_t length;
    bool committed;
    bool claims_valid;        /* false: the stored ranges were malformed and are ignored */
    storage_range_set ranges; /* owned: cache_row_free */
    uint64_t stored_bytes;    /* the row's bytes column (what asset.bytes counts for it) */
    /* Block sums (owned: cache_row_free). sums_known false: a row of schema 1, which has none;
     * malformed sums read as known and empty (the claims they should back are then dropped). */
    bool sums_known;
    storage_sums sums;
    char etag[CACHE_TEXT_MAX];
    char last_modified[CACHE_TEXT_MAX];
    char content_type[CACHE_TEXT_MAX];
} cache_row;

void cache_row_free(cache_row *row);

/* Fills *row for (asset, key); KTH_ERR_NOT_FOUND when there is none. */
kth_status cache_index_find_resource(cache_index *ix, int64_t asset_id, const char *key,
                                     cache_row *row);
kth_status cache_index_add_resource(cache_index *ix, int64_t asset_id, const char *key,
                                    const char *file, int64_t *id);

/* Records what the disk holds: `ranges` (total `bytes`; with committed, [0, length)), the length
 * if known, committed, and from `sums` the checksum of every piece of those ranges (each must
 * have one; KTH_ERR_INVALID_ARG otherwise). sums NULL records none (memory-only
 * caches, and rows of schema 1 that stay as they were). */
kth_status cache_index_record(cache_index *ix, int64_t id, const storage_range_set *ranges,
                              uint64_t bytes, bool length_known, uint64_t length, bool committed,
                              const storage_sums *sums);

/* Forgets everything about a resource's bytes (ranges, length, committed, validators, type) and
 * points it at a new data file. */
kth_status cache_index_reset_resource(cache_index *ix, int64_t id, const char *file);
/* Deletes resource row `id` (its asset's bytes follow, by trigger). */
kth_status cache_index_delete_resource(cache_index *ix, int64_t id);

/* Sets the fields that are not NULL. */
kth_status cache_index_set_meta(cache_index *ix, int64_t id, const char *etag,
                                const char *last_modified, const char *content_type);

/* Records a declared length (before the bytes are complete). */
kth_status cache_index_set_length(cache_index *ix, int64_t id, uint64_t length);

/* Whether some resource row uses `file`. */
kth_status cache_index_file_known(cache_index *ix, const char *file, bool *known);

/* Totals over the whole index (any pointer may be NULL); max_last_use is 0 when empty. */
kth_status cache_index_totals(cache_index *ix, uint64_t *bytes, uint64_t *assets,
                              uint64_t *resources, int64_t *max_last_use);

/* Bytes of pinned assets. */
kth_status cache_index_pinned_bytes(cache_index *ix, uint64_t *bytes);

/* --- settings --- */

/* Copies setting `name` into buf (at most size bytes) and its full length into *len.
 * KTH_ERR_NOT_FOUND when there is none, KTH_ERR_IO. */
kth_status cache_index_get_setting(cache_index *ix, const char *name, void *buf, size_t size,
                                   size_t *len);
/* Sets (or replaces) setting `name`. KTH_ERR_IO, KTH_ERR_NO_MEMORY. */
kth_status cache_index_put_setting(cache_index *ix, const char *name, const void *value,
                                   size_t len);

#endif
