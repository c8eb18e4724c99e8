/*
 * resource.h — a byte container filled by one writer and read by many readers.
 *
 * A resource holds the bytes of one remote object (a progressive file, a segment, a key) either
 * in a sparse file (pread/pwrite) or in memory. It knows exactly which byte ranges are present,
 * the total length once the writer learns it, and its state:
 *
 *   ACTIVE ──commit(len)──▶ COMMITTED   (every byte of [0, len) present; EOF at len is proven)
 *      ├────fail(status)──▶ FAILED      (no more bytes will come; present bytes stay readable)
 *      └────cancel()──────▶ CANCELLED
 *
 * Readers block in storage_resource_wait_range() on a condition variable; a wait ends when the
 * range is complete, the resource ends, the waiter's cancel token fires, its interrupt epoch
 * moves, or its deadline passes — never by polling. Bytes once present stay present and never
 * change for the life of the resource, with one exception: a block restored from disk whose
 * checksum no longer matches (see storage_resource_restore_sums) is dropped before any of its
 * bytes is read, and a COMMITTED resource then goes back to ACTIVE until it is complete again.
 *
 * File resources keep a checksum per block of STORAGE_BLOCK_SIZE bytes (block_sums.h): the
 * writer's bytes are summed as they are written, blocks completed out of order by
 * storage_resource_seal, and the owner persists them with the ranges (snapshot_sums).
 *
 * Threads: one writer at a time calls write_at / set_length / commit / fail; any thread may call
 * the rest. Lock order: stream state → resource → cache index; the resource lock is never held
 * while calling out.
 */
#ifndef KTH_STORAGE_RESOURCE_H
#define KTH_STORAGE_RESOURCE_H

#include <kithara/status.h>

#include "platform/cancel.h"
#include "storage/block_sums.h"
#include "storage/cipher.h"
#include "storage/range_set.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct storage_resource storage_resource;

typedef enum storage_state {
    STORAGE_ACTIVE,
    STORAGE_COMMITTED,
    STORAGE_FAILED,
    STORAGE_CANCELLED,
} storage_state;

typedef enum storage_wait {
    STORAGE_WAIT_READY,       /* the whole range (clipped to the final length) is present */
    STORAGE_WAIT_EOF,         /* committed, and the range starts at or past the end */
    STORAGE_WAIT_INTERRUPTED, /* the interrupt epoch moved (a seek) */
    STORAGE_WAIT_TIMEOUT,     /* the deadline passed */
    STORAGE_WAIT_FAILED,      /* the resource failed before the range arrived */
    STORAGE_WAIT_CANCELLED,   /* the resource or the waiter's token was cancelled */
} storage_wait;

/* Ends a wait when *epoch no longer equals `seen`, or *other_epoch no longer equals
 * `other_seen` (either pointer may be NULL: the stream's seek epoch, and one the waiter's source
 * keeps for reasons of its own). Whoever moves an epoch must then call
 * storage_resource_wake_waiters() (or the source's notify), so the waiter re-checks. */
typedef struct storage_interrupt {
    const _Atomic uint64_t *epoch;
    uint64_t seen;
    const _Atomic uint64_t *other_epoch;
    uint64_t other_seen;
} storage_interrupt;

/* Flags for storage_resource_open_file. */
enum {
    STORAGE_FILE_TRUNCATE = 1 << 0, /* start empty even if the file exists */
};

/* Opens or creates a writable sparse file at `path` as an ACTIVE resource with no bytes present.
 * On failure returns KTH_ERR_IO (or NO_MEMORY) and writes a message naming the path and errno
 * into err (may be NULL). The caller owns one reference. */
kth_status storage_resource_open_file(const char *path, int flags, storage_resource **out,
                                      char *err, size_t errlen);

/* Opens an existing file read-only as a COMMITTED resource whose bytes are all present. Errors
 * as above; KTH_ERR_NOT_FOUND when the path does not exist. */
kth_status storage_resource_open_complete_file(const char *path, storage_resource **out, char *err,
                                               size_t errlen);

/* An in-memory ACTIVE resource that accepts bytes only below `max_bytes` (0 = 1 GiB). */
kth_status storage_resource_new_memory(uint64_t max_bytes, storage_resource **out);

/* A byte budget shared by several memory resources (a memory-only cache): every 64 KiB chunk a
 * member allocates is charged to the pool and given back when the member is freed, and a write
 * that would take the pool past its limit fails with KTH_ERR_LIMIT. Refcounted; each member
 * holds a reference. Counters are atomic: any thread. */
typedef struct storage_memory_pool storage_memory_pool;

kth_status storage_memory_pool_new(uint64_t limit, storage_memory_pool **out);
storage_memory_pool *storage_memory_pool_ref(storage_memory_pool *pool);
void storage_memory_pool_unref(storage_memory_pool *pool);
/* Bytes currently charged (whole chunks). */
uint64_t storage_memory_pool_used(const storage_memory_pool *pool);

/* As storage_resource_new_memory, charging its chunks to `pool` (the resource takes a
 * reference). */
kth_status storage_resource_new_memory_in_pool(uint64_t max_bytes, storage_memory_pool *pool,
                                               storage_resource **out);

storage_resource *storage_resource_ref(storage_resource *r);
void storage_resource_unref(storage_resource *r);

/* --- persistence (for the asset cache) --- */

/* Makes a file resource encrypted at rest (a protected cache): what it writes to the file is
 * `cipher`'s ciphertext, what it reads is decrypted before it is handed out, and its block sums
 * cover the ciphertext (so checking a block neither needs nor reveals the plaintext). Takes
 * ownership of `cipher` (also on failure). Only on a file resource nobody else has seen yet (no
 * byte present, nothing restored): KTH_ERR_STATE otherwise and for memory resources. */
kth_status storage_resource_set_cipher(storage_resource *r, storage_cipher *cipher);

/* Protected, committed file resources of at most STORAGE_TAG_MAX_LENGTH bytes carry a tag
 * (storage/cipher.h) in the file right after their last byte. write_tag computes it from the
 * file and writes it (the caller syncs); KTH_OK without doing anything for a resource that takes
 * no tag (unprotected, longer, not committed). KTH_ERR_IO, KTH_ERR_NO_MEMORY, KTH_ERR_INTERNAL. */
kth_status storage_resource_write_tag(storage_resource *r);

/* Checks the tag of a resource restored as committed that takes one: KTH_OK when it matches
 * (or the resource takes none), KTH_ERR_PROTECTED when it is missing or differs (the bytes were
 * altered, truncated or belong to another file: never hand them out), KTH_ERR_IO,
 * KTH_ERR_NO_MEMORY. Call before anyone else sees the resource. */
kth_status storage_resource_check_tag(storage_resource *r);

/* Declares ranges of a reopened file resource present, because its owner (the cache index)
 * vouches that those bytes are already in the file. Only valid on a file resource that nobody
 * else has seen yet: ACTIVE, no byte present, no length declared; KTH_ERR_STATE otherwise (and
 * for memory resources), KTH_ERR_INVALID_ARG for an empty or reversed range, KTH_ERR_NO_MEMORY.
 * On failure nothing is marked present. Follow with set_length / commit as the index says. */
kth_status storage_resource_restore_ranges(storage_resource *r, const storage_range *ranges,
                                           size_t count);

/* Gives a file resource reopened by restore_ranges (then set_length / commit as its owner
 * says) the checksums of its blocks, and turns checking on: every present, complete block that
 * has a sum in `sums` is checked against it the first time it is read, before any of its bytes
 * is handed out; a block that passes is not checked again by this resource. A block that fails
 * is damaged: with refetch_damaged it is dropped from the present ranges (a COMMITTED resource
 * becomes ACTIVE again, its length kept) so the writer fetches it anew while readers wait for
 * it (read_at answers KTH_ERR_RETRY); without, read_at answers KTH_ERR_CORRUPT for it each time.
 * label (copied; may be NULL) names the resource in the warning logged for a damaged block.
 * Call once, before anyone else sees the resource. KTH_ERR_STATE for a memory resource or a
 * second call, KTH_ERR_NO_MEMORY. */
kth_status storage_resource_restore_sums(storage_resource *r, const storage_sums *sums,
                                         bool refetch_damaged, const char *label);

/* Computes by reading them back the sums of complete blocks that have none (bytes written out of
 * order, or restored without sums). KTH_OK for memory resources; KTH_ERR_IO when a read fails
 * (the sums found so far stay); KTH_ERR_NO_MEMORY. Any thread; the reads run without the lock. */
kth_status storage_resource_seal(storage_resource *r);

/* One consistent view of what a resource holds. */
typedef struct storage_snapshot {
    storage_state state;
    bool length_known;
    uint64_t length;
    storage_range_set ranges; /* owned by the caller: storage_range_set_free */
} storage_snapshot;

/* Copies state, length and present ranges under one lock. KTH_ERR_NO_MEMORY leaves `out`
 * empty (and still safe to free). Any thread. */
kth_status storage_resource_snapshot(storage_resource *r, storage_snapshot *out);

/* As storage_resource_snapshot, and copies the block sums into *sums (initialised by the caller;
 * its old contents are freed) under the same lock. */
kth_status storage_resource_snapshot_sums(storage_resource *r, storage_snapshot *out,
                                          storage_sums *sums);

/* Makes every byte published so far durable (fdatasync of a file; nothing to do in memory), so
 * a later snapshot's ranges may be recorded as on disk. KTH_ERR_IO when the sync fails. Any
 * thread; does not take the resource lock. */
kth_status storage_resource_sync(storage_resource *r);

/* Asks the kernel to start writing [offset, offset + len) of the file (len 0: to its end) back
 * to disk without waiting for it (Linux sync_file_range; nothing elsewhere or in memory), so that a
 * later storage_resource_sync has little left to do. Best effort: failures are ignored. Any thread;
 * does not take the resource lock. */
void storage_resource_start_writeback(storage_resource *r, uint64_t offset, uint64_t len);

/* --- writer side --- */

/* Stores `n` bytes at `offset` and wakes readers. Returns KTH_ERR_STATE unless ACTIVE,
 * KTH_ERR_OUT_OF_RANGE past a known length or on offset overflow, KTH_ERR_LIMIT past a memory
 * resource's bound, KTH_ERR_IO when the file write fails (the resource stays ACTIVE; the writer
 * decides whether to fail it). Rewriting present bytes is allowed (they must be equal). */
kth_status storage_resource_write_at(storage_resource *r, uint64_t offset, const void *buf,
                                     size_t n);

/* Declares the total length (from Content-Length, Content-Range, a playlist). This is not EOF:
 * EOF is proven only by commit. Returns KTH_ERR_STATE if a different length was declared or
 * bytes already lie past it. */
kth_status storage_resource_set_length(storage_resource *r, uint64_t length);

/* Marks the resource complete with `length` bytes. Returns KTH_ERR_STATE when not ACTIVE, when
 * a different length was declared, or when a byte of [0, length) is missing or one lies past it
 * (the resource is left ACTIVE). */
kth_status storage_resource_commit(storage_resource *r, uint64_t length);

/* Ends an ACTIVE resource as FAILED with `status` and a message (copied; may be NULL). Waiters
 * whose range is not present get STORAGE_WAIT_FAILED. No effect once ended. */
void storage_resource_fail(storage_resource *r, kth_status status, const char *message);

/* Ends an ACTIVE resource as CANCELLED. No effect once ended. Any thread. */
void storage_resource_cancel(storage_resource *r);

/* --- reader side --- */

/* Waits until [start, end) is present (clipped to the length once committed). `cancel` and
 * `interrupt` may be NULL. deadline_ns is absolute monotonic (PLATFORM_NO_DEADLINE: none). */
storage_wait storage_resource_wait_range(storage_resource *r, uint64_t start, uint64_t end,
                                         int64_t deadline_ns, platform_cancel *cancel,
                                         const storage_interrupt *interrupt);

/* Waits until the total length is known; STORAGE_WAIT_READY then. */
storage_wait storage_resource_wait_length(storage_resource *r, int64_t deadline_ns,
                                          platform_cancel *cancel,
                                          const storage_interrupt *interrupt);

/* Copies up to `n` present bytes starting at `offset` into buf; *got receives the count (the
 * contiguous present run, capped at n; less when a later block failed its checksum). Returns
 * KTH_OK with *got = 0 only at proven EOF (committed and offset >= length); KTH_ERR_RETRY when
 * the byte at offset is not present (or its block failed its checksum and was dropped: wait for
 * it again); KTH_ERR_CORRUPT when its block failed its checksum and is kept (restore_sums);
 * KTH_ERR_IO when the file read fails; KTH_ERR_INVALID_ARG for NULL arguments or n == 0.
 * Never blocks on the writer. */
kth_status storage_resource_read_at(storage_resource *r, uint64_t offset, void *buf, size_t n,
                                    size_t *got);

/* Wakes every waiter so it re-checks its interrupt epoch. Any thread. */
void storage_resource_wake_waiters(storage_resource *r);

/* Queries (any thread; a snapshot that may be stale by the time it is used). */
storage_state storage_resource_state(storage_resource *r);
bool storage_resource_length(storage_resource *r, uint64_t *length);
bool storage_resource_contains(storage_resource *r, uint64_t start, uint64_t end);
uint64_t storage_resource_present_bytes(storage_resource *r);
bool storage_resource_first_gap(storage_resource *r, uint64_t from, uint64_t limit,
                                storage_range *gap);
/* The failure status (KTH_OK while not failed; KTH_ERR_CANCELLED once cancelled) and its
 * message copied into buf (may be NULL). */
kth_status storage_resource_error(storage_resource *r, char *buf, size_t buflen);

#endif
