/*
 * kithara/cache.h — the persistent asset cache: where streamed bytes are kept so a stream played
 * once plays again without the network.
 *
 * A cache is a directory (by default $XDG_CACHE_HOME/kithara, else $HOME/.cache/kithara) holding
 * a SQLite index and the data files, or, in memory-only mode, nothing on disk at all. What it
 * stores is organised as assets: one per stream URL (a progressive file, or an HLS presentation
 * with its playlists, keys and segments). The sources that fetch read and write through it;
 * this header is the handle itself plus the queries and upkeep the `kithara cache` command uses.
 *
 * Assets are named by their URL exactly as given (the caller's canonical form); the cache keys
 * them by the SHA-256 of that string, shown as 64 hex digits. Nothing from a URL ever becomes a
 * file name. Layout: dir/lock, dir/index.db (with its WAL), and dir/data/ab/cd/<hash>-<random
 * hex>, one data file per resource however small (keys and playlists too: one code path, and the
 * index stays small).
 *
 * Crash safety: the index only claims bytes already on disk (data is synced before it is
 * recorded, at checkpoints: see checkpoint_bytes; between them the kernel is asked to start
 * writing new data back, so a checkpoint's sync is short). After a crash or kill at any moment,
 * reopening serves only bytes that were really written, and partial downloads resume from what is
 * missing; a data file that is missing or shorter than the index says is repaired by dropping the
 * claim, never trusted.
 *
 * Size: the cache evicts whole assets, least recently used first, down to its byte budget as
 * writes take it there (counting bytes written and not yet recorded at a checkpoint, so the data
 * files never hold more than the budget while something may still be evicted), when an asset is
 * released or unpinned, and on kth_cache_gc. An asset in use by an open stream (leased) or
 * pinned with kth_cache_pin is never evicted, so the cache may grow above its budget while such
 * assets need the room: the streams writing into it are then told with
 * KTH_EVENT_CACHE_OVER_BUDGET (and KTH_EVENT_CACHE_WITHIN_BUDGET once it is back), and
 * kth_cache_get_stats reports by how much. This is deliberate: evicting bytes that the playing
 * stream is about to read would only make it fetch them again. Other processes' bytes count
 * once they record them (at their checkpoints).
 *
 * Protection: with a secret (kth_cache_options.secret) every data file is encrypted at rest and
 * the cache opens its entries only with that secret; see the option.
 *
 * Sharing: any number of processes (and kth_cache handles in one process) may open one cache
 * directory at once; `kithara cache ls` or `kithara info` runs beside a playing stream. The index
 * is shared through SQLite (WAL, with a busy timeout). A lease on an asset is recorded in the
 * index with its process (pid and start time), so no process evicts or removes what another
 * streams; the leases of a process that died (kill -9, a crash) are reclaimed by the next open
 * or eviction. Each resource has one writer across processes (a lock on dir/lock that dies with
 * its process): the others read what it recorded and fetch what they miss themselves, without
 * recording it, until the writer is gone. A kill -9 of any one process loses nothing another
 * recorded. Only turning protection on (a secret given to an unprotected cache, which deletes
 * what it held in the clear) needs the directory to itself: KTH_ERR_BUSY while another process
 * has it open.
 *
 * Threads: every function may be called from any thread, concurrently, except that
 * kth_cache_unref must not race another call with the same handle.
 */
#ifndef KITHARA_CACHE_H
#define KITHARA_CACHE_H

#include <kithara/status.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kth_cache kth_cache;

/* The default byte budget: 1 GiB. */
#define KTH_CACHE_DEFAULT_BUDGET ((uint64_t)1 << 30)
/* kth_cache_options.max_bytes for a cache without a budget. */
#define KTH_CACHE_UNBOUNDED UINT64_MAX

/* The size of a cache secret, in bytes. */
#define KTH_CACHE_SECRET_SIZE 32

/* Supplies the cache secret (for a secret kept in an OS keystore): writes exactly
 * KTH_CACHE_SECRET_SIZE bytes to `secret` and returns KTH_OK, or returns an error status (the
 * open then fails with KTH_ERR_PROTECTED, naming that status). Called once, on the thread that
 * calls kth_cache_open, before it returns. */
typedef kth_status (*kth_cache_secret_fn)(void *user, uint8_t secret[KTH_CACHE_SECRET_SIZE]);

/* Options. Every field left at zero takes its default, so `kth_cache_options o = {0};` (or
 * kth_cache_options_init) is the default cache. `size` is sizeof(kth_cache_options) as the
 * caller's header has it (kth_cache_options_init sets it; 0 stands for the fields of version 1,
 * all of those below), which lets a program built against an older header keep working when
 * fields are added at the end: what it does not have takes its default. */
typedef struct kth_cache_options {
    size_t size;
    /* The cache directory (created if missing, with its parents). NULL or empty: the default
     * location above. Ignored in memory-only mode. The string is copied. */
    const char *dir;
    /* Keep everything in memory: no directory, no lock file, no data file; the cache dies with
     * the handle. max_bytes is then a hard bound on the memory its bytes take. */
    bool memory_only;
    /* Byte budget. 0: KTH_CACHE_DEFAULT_BUDGET. KTH_CACHE_UNBOUNDED: no budget, on disk only
     * (refused in memory-only mode with KTH_ERR_INVALID_ARG). */
    uint64_t max_bytes;
    /* Offline: answer only from what is cached. A missing asset, resource or byte range is
     * reported as KTH_ERR_OFFLINE_MISS naming what is missing, and nothing new is created. */
    bool offline;
    /* Durability: by default data is fdatasync'ed before the index records it, so even a power
     * loss cannot leave the index claiming bytes the disk lacks. With no_sync the cache never
     * syncs: a crashed process still leaves a correct cache (the kernel keeps what was
     * written) but a power loss may not. For throwaway caches and tests. Default false. */
    bool no_sync;
    /* How often a download in progress records which bytes it has, so a crash or kill loses at
     * most this much: after this many new bytes (default 16 MiB) or this much time (default
     * 1000 ms), whichever comes first, and always at commit and when the resource is closed.
     * 0 selects the default. */
    uint64_t checkpoint_bytes;
    int64_t checkpoint_ms;
    /* Protection at rest. With a secret (32 bytes: `secret`, copied; or, when it is NULL,
     * whatever secret_fn returns) the cache is protected: every data file (progressive files,
     * segments, playlists, keys) is encrypted with AES-256-CTR under a key derived from the
     * secret for that file (HKDF-SHA256), and small whole objects (keys, playlists: up to 1 MiB)
     * carry an HMAC-SHA256 tag checked before they are read. The index keeps a check value of
     * the secret (not the secret): opening with a different secret fails with
     * KTH_ERR_PROTECTED; opening without one succeeds, lists, pins, removes and collects
     * garbage, but opening a stream through it fails with KTH_ERR_PROTECTED. The first open of
     * an unprotected cache with a secret deletes what it held in the clear. Index rows (URLs,
     * sizes, validators) are not encrypted. Memory-only caches keep nothing at rest and ignore
     * the secret. The application owns the secret; losing it loses the cache, nothing else. */
    const uint8_t *secret;
    kth_cache_secret_fn secret_fn;
    void *secret_user; /* passed to secret_fn */
    /* Refuse to open without protection: no secret given (or the callback failed) is
     * KTH_ERR_PROTECTED rather than an unprotected cache. Ignored in memory-only mode. */
    bool require_protection;
} kth_cache_options;

/* Fills *opts with the defaults: all zero but size. Any thread. */
KTH_API void kth_cache_options_init(kth_cache_options *opts);

/* Opens (creating if needed) the cache described by `opts` (NULL: defaults; read only during
 * the call). A damaged index is
 * discarded and rebuilt empty (its data files are then swept by kth_cache_gc). On success *out
 * is a new handle the caller closes with kth_cache_unref. Returns KTH_ERR_INVALID_ARG (bad
 * options, a size smaller than a size_t, or no directory given and neither XDG_CACHE_HOME nor HOME
 * set), KTH_ERR_BUSY (a secret would turn protection on while another process has the directory
 * open), KTH_ERR_IO (the directory, lock file or index cannot be created or opened),
 * KTH_ERR_UNSUPPORTED (an index written by a newer kithara, or options of a newer header that set a
 * field this kithara lacks), KTH_ERR_PROTECTED (a secret that does not match the cache's, a failing
 * secret_fn, or require_protection without a secret), KTH_ERR_LIMIT (the directory's path is too
 * long for the index database: SQLite takes paths of about 500 bytes), KTH_ERR_NO_MEMORY. When it
 * fails and `err` is not NULL, a sentence naming the cause and the directory is written there. */
KTH_API kth_status kth_cache_open(const kth_cache_options *opts, kth_cache **out, char *err,
                                  size_t errlen);

/* The process default cache (default options: $XDG_CACHE_HOME/kithara, 1 GiB budget), opened
 * on first use by a stream whose options name no cache; borrowed — do not close it. NULL when
 * it cannot be opened (the reason is logged through the log hook and returned by the stream
 * open that needed it). Any thread. */
KTH_API kth_cache *kth_cache_default(void);

/* Releases the caller's handle (NULL-safe). Streams still using the cache keep it alive; the
 * index is closed and the directory unlocked when the last of them is gone. Must not race
 * another call with this handle. */
KTH_API void kth_cache_unref(kth_cache *cache);

/* The cache directory (absolute as given or resolved; borrowed, valid while the handle lives),
 * or NULL in memory-only mode. */
KTH_API const char *kth_cache_dir(const kth_cache *cache);

/* Copies the last failure's detail into buf and returns its length (like snprintf). */
KTH_API size_t kth_cache_last_error(kth_cache *cache, char *buf, size_t size);

typedef struct kth_cache_stats {
    uint64_t total_bytes;    /* bytes the index vouches for, all assets */
    uint64_t budget_bytes;   /* the byte budget (KTH_CACHE_UNBOUNDED: none) */
    uint64_t over_budget;    /* total_bytes beyond the budget, held by leased/pinned assets */
    uint64_t in_use_bytes;   /* bytes of leased or pinned assets (never evicted) */
    uint64_t assets;         /* assets in the index */
    uint64_t resources;      /* resources in the index */
    uint64_t leased_assets;  /* assets with an open lease now */
    uint64_t evicted_assets; /* evicted since this handle was opened */
    uint64_t evicted_bytes;  /* their bytes */
    uint64_t repaired;       /* index claims dropped because the data file lacked the bytes */
    uint64_t memory_in_use;  /* memory-only mode: bytes of memory holding cached data */
    bool memory_only;
    bool offline;
} kth_cache_stats;

/* Fills *out. Returns KTH_ERR_INVALID_ARG or KTH_ERR_IO (the index failed). */
KTH_API kth_status kth_cache_get_stats(kth_cache *cache, kth_cache_stats *out);

/* One asset, as kth_cache_list reports it. */
typedef struct kth_cache_asset {
    char key[65];          /* SHA-256 of the URL, lowercase hex ("" for a damaged index row) */
    char *url;             /* the URL the asset was stored under (owned by the list) */
    uint64_t bytes;        /* bytes held */
    uint64_t known_length; /* sum of the lengths of its resources whose length is known */
    bool lengths_known;    /* every resource's length is known (complete fraction is exact) */
    uint32_t resources;    /* resources stored */
    uint32_t complete;     /* of which committed (every byte present) */
    int64_t last_use_ms;   /* when it was created or last released, Unix time in ms */
    bool leased;           /* in use by an open stream now, of this process or another */
    bool pinned;           /* kth_cache_pin'ed: never evicted */
} kth_cache_asset;

/* Lists every asset, most recently used first, into a new array (*out, *count) the caller
 * frees with kth_cache_list_free. Returns KTH_ERR_INVALID_ARG, KTH_ERR_NO_MEMORY, KTH_ERR_IO. */
KTH_API kth_status kth_cache_list(kth_cache *cache, kth_cache_asset **out, size_t *count);

/* Frees a list from kth_cache_list (NULL-safe). */
KTH_API void kth_cache_list_free(kth_cache_asset *list, size_t count);

/* Removes one asset and its data files. `url_or_key` is the asset's URL, or the 64-hex key
 * kth_cache_list shows. Returns KTH_ERR_NOT_FOUND, KTH_ERR_BUSY (a stream of this or another
 * process is using it), KTH_ERR_IO. */
KTH_API kth_status kth_cache_remove(kth_cache *cache, const char *url_or_key);

/* Pins (or unpins) an asset: a pinned asset is never evicted, across restarts (a "keep for
 * offline" mark). Returns KTH_ERR_NOT_FOUND for an unknown asset, KTH_ERR_IO. */
KTH_API kth_status kth_cache_pin(kth_cache *cache, const char *url_or_key, bool pinned);

typedef struct kth_cache_gc_result {
    uint64_t evicted_assets;
    uint64_t evicted_bytes;
    uint64_t orphan_files; /* data files no index row knows (left by a crash), deleted */
} kth_cache_gc_result;

/* Evicts least recently used assets down to the budget, forgets assets that stored nothing,
 * then deletes orphan data files (this is the one call that scans the directory). `result` may
 * be NULL. Returns KTH_ERR_IO when the index fails; a file that cannot be deleted is skipped and
 * named in the last error. */
KTH_API kth_status kth_cache_gc(kth_cache *cache, kth_cache_gc_result *result);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_CACHE_H */
