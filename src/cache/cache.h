/*
 * cache.h — leases on cached assets and the resources inside them, for the sources that fetch
 * and read (progressive file, HLS).
 *
 * Vocabulary:
 * - An asset is what one stream URL stores: a progressive file has one resource; an HLS
 *   presentation has its playlists, keys, init segments and segments, each a resource named by
 *   its own key (its canonical URL, or any string the source chooses).
 * - A lease (cache_asset) pins an asset while a stream uses it: a leased asset is never
 *   evicted. A leased asset is also recorded in the index (a lease row naming the process by
 *   pid and start time), so other processes on the directory do not evict it either; the rows a
 *   dead process left are reclaimed at the next open or eviction, so a crash leaves no lasting
 *   pin behind.
 * - An open resource (cache_resource) is a storage_resource restored with exactly the byte
 *   ranges the index vouches for, plus the handle through which the writer records progress.
 *   Opening the same key twice (while the first is open) gives the same handle, so every reader
 *   and the one writer share one storage_resource.
 *
 * Across processes, the process that opens a resource first holds its writer lock; in the
 * others the handle is a follower: it serves what the index vouched for when it opened, takes in
 * what the writer records later (cache_resource_follow), and what it fetches and writes itself
 * lands in the same file but is not recorded, until the writer is gone (then it takes over, at a
 * checkpoint or when it follows, once it holds everything the writer recorded). A progressive
 * source leaves to the writer the bytes it is fetching, so each byte comes from the server once.
 * Within a process the claims below arbitrate between streams as before.
 *
 * Writer protocol (one writer per resource):
 *   open with CACHE_OPEN_CREATE; claim the resource with cache_resource_claim_writer (when
 *   another owner holds the claim, wait for its bytes instead, and for the claim's release token
 *   to learn when it gave up); compare the response's validators with info.etag /
 *   info.last_modified — on a mismatch call cache_resource_invalidate and start from zero;
 *   record validators and type with cache_resource_set_meta (it refuses to splice: KTH_ERR_CHANGED
 *   when they differ from those of bytes already held); write bytes with cache_resource_write
 *   (which checkpoints as it goes); declare the length with cache_resource_set_length; finish
 *   with cache_resource_commit, or just close (what was written stays, as a partial resource);
 *   release the claim (cache_resource_release_writer) before closing.
 *
 * Durability policy (what "the index vouches for" means):
 * - A checkpoint snapshots the resource's present ranges, fdatasyncs the data file, and only then
 *   records the ranges in the index. Checkpoints happen every checkpoint_bytes / checkpoint_ms
 *   of writing, at commit and at close. A commit's length and flag are recorded only after the
 *   data is synced.
 * - Dropping claims is recorded before the bytes go away (invalidate, evict, remove: index first,
 *   then unlink), and a resource that starts over gets a new file name.
 * - Reopening trusts a claim only if the data file exists and is long enough; the rest of the
 *   claim is dropped and the index repaired. Rows without files and files without rows never
 *   block anything: a missing file is recreated, an orphan file is swept by kth_cache_gc.
 * So after a kill at any instant the next open serves only bytes that were written, and a
 * partial resource resumes from the ranges it reports (storage_resource_first_gap).
 *
 * Eviction never takes bytes from a resource someone holds: only unleased assets are evicted,
 * and a storage_resource that outlives its lease keeps its open file (unlinked) or its memory.
 *
 * Threads and locks: every function may be called from any thread. Each open resource has a
 * handle lock (its storage pointer and checkpoint state); the cache has one index lock. Lock
 * order: stream state → handle → resource → cache index. The index lock is always last and
 * nothing is called out while it is held.
 */
#ifndef KTH_CACHE_CACHE_H
#define KTH_CACHE_CACHE_H

#include <kithara/cache.h>
#include <kithara/events.h>
#include <kithara/status.h>

#include "cache/index.h"
#include "platform/cancel.h"
#include "storage/resource.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cache_asset cache_asset;
typedef struct cache_resource cache_resource;

/* True when the cache answers only from what it holds. */
bool cache_is_offline(const kth_cache *cache);

/* Leases the asset stored under `url` (created if new). *out is the lease; its last use is
 * recorded when the lease ends (a leased asset is never evicted, so nothing needs it sooner).
 * Opening an asset already cached reads the index and writes nothing. cache_asset_release
 * ends the lease. Leasing an asset already leased returns the same object with one
 * more lease. Offline, an asset the cache does not know is KTH_ERR_OFFLINE_MISS ("offline: <url>
 * is not in the cache" in err). Other failures: KTH_ERR_INVALID_ARG, KTH_ERR_NO_MEMORY,
 * KTH_ERR_IO (the index). */
kth_status cache_asset_open(kth_cache *cache, const char *url, cache_asset **out, char *err,
                            size_t errlen);

/* Ends one lease (NULL-safe). The asset stays pinned while other leases or open resources of it
 * remain; then it becomes evictable and an eviction pass runs if the cache is over budget. */
void cache_asset_release(cache_asset *asset);

/* Forgets one resource of a leased asset and deletes its bytes (a live stream's segment that
 * left the window and the reader). Returns KTH_OK, KTH_ERR_NOT_FOUND (nothing stored under
 * key), KTH_ERR_BUSY (open in this process, or written by another one: kept), KTH_ERR_IO (the
 * index). Any thread; no lock of the caller's that a cache call may wait on held. */
kth_status cache_asset_drop_resource(cache_asset *asset, const char *key);

/* The asset's key: 64 hex digits (borrowed; valid while leased). */
const char *cache_asset_key(const cache_asset *asset);

enum {
    CACHE_OPEN_CREATE = 1 << 0, /* create the resource when the index has none */
};

typedef struct cache_resource_info {
    bool created;   /* there was nothing: a new, empty resource */
    bool committed; /* every byte is present and the length is final */
    bool length_known;
    uint64_t length;
    uint64_t present_bytes; /* bytes present now (restored or written since) */
    bool repaired;          /* the index claimed bytes the file lacked; the claims were dropped */
    char etag[CACHE_TEXT_MAX];          /* "" when unknown */
    char last_modified[CACHE_TEXT_MAX]; /* "" when unknown */
    char content_type[CACHE_TEXT_MAX];  /* "" when unknown */
} cache_resource_info;

/* Opens resource `key` of a leased asset. *out is a handle (close with cache_resource_close)
 * and *info (may be NULL) describes what it holds. Without CACHE_OPEN_CREATE a resource the
 * index lacks is KTH_ERR_NOT_FOUND; offline it is KTH_ERR_OFFLINE_MISS either way, with err
 * naming the key and the asset's URL. KTH_ERR_IO when the data file cannot be created. */
kth_status cache_resource_open(cache_asset *asset, const char *key, int flags, cache_resource **out,
                               cache_resource_info *info, char *err, size_t errlen);

/* Records what was written (a checkpoint) and drops this handle (NULL-safe). The storage
 * resource stays valid for whoever holds references to it. */
void cache_resource_close(cache_resource *res);

/* The storage resource behind the handle: a new reference the caller releases with
 * storage_resource_unref. After cache_resource_invalidate this is a different resource. */
storage_resource *cache_resource_storage(cache_resource *res);

/* Fills *info from the handle's current state. */
kth_status cache_resource_get_info(cache_resource *res, cache_resource_info *info);

/* Writes bytes (storage_resource_write_at) and checkpoints when one is due; runs an eviction
 * pass when the bytes take the cache past its budget (cache_resource_budget_news then tells
 * whether it could not get back under it). In memory-only mode
 * a write the cache's bound cannot hold evicts unleased assets first; KTH_ERR_LIMIT when what
 * is leased fills the bound. Other statuses as storage_resource_write_at, or KTH_ERR_IO from the
 * checkpoint (the bytes were written and are readable; only their record failed). */
kth_status cache_resource_write(cache_resource *res, uint64_t offset, const void *buf, size_t n);

/* Declares the total length (storage_resource_set_length) and records it. */
kth_status cache_resource_set_length(cache_resource *res, uint64_t length);

/* Records validators and content type; a NULL field is left as it is. KTH_ERR_CHANGED, nothing
 * recorded, when the resource holds bytes and a given validator differs from the stored one
 * (the caller must invalidate first: bytes of two versions are never spliced). KTH_ERR_LIMIT
 * for a value of CACHE_TEXT_MAX bytes or more. */
kth_status cache_resource_set_meta(cache_resource *res, const char *etag, const char *last_modified,
                                   const char *content_type);

/* One writer per resource: claims the right to fetch and write the resource for `owner` (any
 * pointer unique to the fetch; the same owner claiming again keeps its claim). Claims belong to
 * the open handle, so every stream of the process that opened the key sees them; they are
 * advisory (writes are not checked against them) and live in memory only.
 * Returns KTH_OK when owner holds the claim; KTH_ERR_STATE when the storage is not ACTIVE
 * (committed: nothing is left to write); KTH_ERR_BUSY when another owner holds it: the bytes
 * come from that writer, and *released (when `released` is not NULL) receives a reference to
 * a token that is cancelled when that claim ends, whether the writer completed the resource or
 * gave up (then the caller may claim it and fetch what is missing itself). Register a waker on
 * the token (platform_cancel_add_waker; it refuses when the claim has already ended) and
 * release the reference with platform_cancel_unref. KTH_ERR_NO_MEMORY. Any thread. */
kth_status cache_resource_claim_writer(cache_resource *res, const void *owner,
                                       platform_cancel **released);

/* Ends owner's claim (no effect when owner does not hold it) and cancels its release token,
 * which runs the wakers registered on it on this thread, after the handle lock is released.
 * Call it with no lock of the caller held that a waker may take. A handle whose last user
 * closes it while a claim is held ends the claim the same way. */
void cache_resource_release_writer(cache_resource *res, const void *owner);

/* True when the handle is open more than once: another user (another stream of the same URL,
 * or another entry of the same resource) may be waiting for its bytes. A snapshot; any thread. */
bool cache_resource_is_shared(cache_resource *res);

/* The cache's last error sentence (kth_cache_last_error of the handle's cache): after a call
 * on the handle failed, usually why. Returns its length. Any thread. */
size_t cache_resource_last_error(cache_resource *res, char *buf, size_t size);

/* Records the present ranges now (sync first). */
kth_status cache_resource_checkpoint(cache_resource *res);

/* Records the bytes written and not yet recorded once the checkpoint interval (checkpoint_ms)
 * has passed since the last record. Writes record on their own only when they go on; a writer
 * that pauses (a stalled download) calls this from a timer, so what it wrote becomes visible
 * to other processes and survives a crash within that interval. Returns the nanoseconds until
 * such a record is due, or -1 when nothing waits (after recording, too). A failed record keeps
 * its sentence for cache_resource_last_error and returns -1. Any thread. */
int64_t cache_resource_record_due(cache_resource *res);

/* What changed in the cache's budget state since *seen (a stream's own marker, starting at 0):
 * KTH_EVENT_CACHE_OVER_BUDGET or KTH_EVENT_CACHE_WITHIN_BUDGET with *ev filled for the stream's
 * bus, or KTH_EVENT_NONE (nothing to tell; *ev untouched). Updates *seen, so each change is
 * told once per marker even when several threads ask. For writers, after a write; any thread,
 * no lock needed. */
kth_event_kind cache_resource_budget_news(cache_resource *res, atomic_uint_fast64_t *seen,
                                          kth_event *ev);

/* Commits the resource at `length` (storage_resource_commit), syncs, and records it complete.
 * Statuses as storage_resource_commit, or KTH_ERR_IO when the data could not be synced or
 * recorded (readers already see the resource committed; only its persistence failed). */
kth_status cache_resource_commit(cache_resource *res, uint64_t length);

/* The bytes changed on the server: forgets every byte, validator and the length, and gives the
 * handle a fresh, empty storage resource (new data file). The old storage resource fails with
 * KTH_ERR_CHANGED, so its readers stop and reopen via cache_resource_storage. */
kth_status cache_resource_invalidate(cache_resource *res);

/* After a fetch gave up (the storage resource ended FAILED or CANCELLED), lets the resource be
 * fetched again without losing what it holds: records the present ranges, then gives the
 * handle a fresh ACTIVE storage resource with the same bytes (the same data file; copied in
 * memory-only mode, KTH_ERR_LIMIT if the bound cannot hold both for a moment). KTH_OK and no
 * change when the storage is ACTIVE or COMMITTED. Readers of the old resource see it ended and
 * take the new one from cache_resource_storage. */
kth_status cache_resource_revive(cache_resource *res);

/* What a handle learnt from following the writer of its resource in another process. */
typedef struct cache_follow {
    /* Another process writes the resource (holds its writer lock) into the same data file as
     * this handle's; false too when it started another file (it dropped these bytes). */
    bool follower;
    bool refreshed; /* the handle has a fresh storage resource (cache_resource_storage) */
    /* The writer recorded bytes the handle lacks, but the handle also holds bytes it fetched
     * itself that the writer did not record: no refresh (it would lose them); the handle's
     * process fetches what it needs. */
    bool diverged;
    uint64_t recorded; /* bytes the writer has recorded in the index */
    uint64_t frontier; /* the end of the last range it recorded */
    /* The end of the last run of recorded bytes the handle lacked before this call (0: none):
     * it recorded them since the handle last looked (or before the handle opened). */
    uint64_t newest_end;
    int64_t interval_ns; /* how often a writer records while it writes (checkpoint_ms) */
} cache_follow;

/* For a handle that is a follower (another process writes its resource): takes in what the
 * writer has recorded in the index since this handle opened or last followed. When the index
 * claims bytes the handle's storage does not hold, and the storage holds nothing the index does
 * not claim, the handle gets a fresh storage resource restored from the index (the same data
 * file, its blocks checked against their sums on their first read), and readers of the old one
 * move to it as after cache_resource_revive; otherwise `diverged`. When the writer is gone and
 * the handle holds all it recorded, the handle takes over as the writer (follower false). A
 * handle that is no follower learns nothing (follower false). A storage that failed or was
 * cancelled is not refreshed. KTH_ERR_INVALID_ARG for a NULL argument (out untouched),
 * KTH_ERR_NOT_FOUND when the row is gone, KTH_ERR_NO_MEMORY, KTH_ERR_IO. Any thread; it reads
 * the index. */
kth_status cache_resource_follow(cache_resource *res, cache_follow *out);

/* Is [start, end) present (clipped to the length when known)? KTH_OK when it is. Otherwise
 * *missing (may be NULL) receives the first absent range and the status is KTH_ERR_OFFLINE_MISS
 * in offline mode (err names the resource, the asset and the range) or KTH_ERR_NOT_FOUND
 * online, meaning "fetch it". */
kth_status cache_resource_check_range(cache_resource *res, uint64_t start, uint64_t end,
                                      storage_range *missing, char *err, size_t errlen);

#endif
