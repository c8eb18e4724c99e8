/*
 * resource_internal.h — the storage resource's fields, shared by resource.c (bytes, ranges,
 * state, waiting) and resource_sums.c (block checksums: recording them as bytes are written,
 * and checking restored blocks on their first read).
 *
 * Lock: `lock` guards every field below except refs, file, cipher and the memory pool pointer,
 * which are fixed at creation (the cipher before anyone else sees the resource) (see resource.c for
 * its place in the lock order).
 */
#ifndef KTH_STORAGE_RESOURCE_INTERNAL_H
#define KTH_STORAGE_RESOURCE_INTERNAL_H

#include "platform/sync.h"
#include "storage/block_sums.h"
#include "storage/cipher.h"
#include "storage/file_handles.h"
#include "storage/resource.h"

/* The writer's running checksum within one block: valid while the bytes [start, pos) of block
 * `block` came from the writer as one ascending run. */
typedef struct storage_block_acc {
    bool valid;
    uint64_t block, start, pos;
    uint32_t crc;
} storage_block_acc;

struct storage_resource {
    atomic_int refs;
    platform_mutex lock; /* see resource.c for what it guards and its lock order */
    platform_cond cond;  /* broadcast on every change a waiter may be waiting for */
    storage_range_set ranges;
    storage_state state;
    bool length_known;
    uint64_t length;
    kth_status fail_status;
    char fail_message[1024]; /* a longer message keeps its head and tail (platform_excerpt) */

    storage_file *file; /* NULL for a memory resource; its descriptor opened while used */
    /* Protected file: the file holds ciphertext, and so do the sums; NULL: plaintext. */
    storage_cipher *cipher;
    uint8_t **chunks;
    size_t chunk_count;
    uint64_t max_bytes;
    storage_memory_pool *pool; /* NULL unless made by new_memory_in_pool */
    uint64_t charged;          /* bytes charged to the pool (whole chunks) */

    /* Piece checksums (file resources only; resource_sums.c). */
    storage_sums sums;
    storage_block_acc acc;
    /* Pieces restored from disk whose bytes have not been checked yet: whole blocks in this
     * bitset over [0, pending_blocks), parts by their `pending` flag; pending_left counts both. */
    uint64_t *pending;
    uint64_t pending_blocks, pending_left;
    bool sums_restored;   /* restore_sums was called */
    bool refetch_damaged; /* a damaged block is dropped (else reported as KTH_ERR_CORRUPT) */
    char *label;          /* names the resource in log messages; may be NULL */
};

/* Writes n bytes of a file resource at offset, publishes them as present and records the sums
 * of the blocks they complete. No lock held by the caller. Statuses as storage_resource_write_at.
 */
kth_status storage_write_file_summed(storage_resource *r, uint64_t offset, const uint8_t *src,
                                     size_t n);

/* Records the sum of the last block when the writer's run ends exactly at the (now known)
 * length. Lock held. */
void storage_finish_tail_locked(storage_resource *r);

/* True when a block overlapping [start, end) waits for its first check. Lock held. */
bool storage_pending_locked(const storage_resource *r, uint64_t start, uint64_t end);

/* Reads up to k bytes of a file resource at offset into buf, checking the blocks that wait for
 * their first check. The caller saw the k bytes present; what is no longer present when this
 * looks (another reader dropped it meanwhile) is not handed out. *got receives the bytes handed
 * out (fewer than k when a later block is damaged or gone). KTH_ERR_RETRY when the first block
 * was damaged and dropped (or changed while it was read, or was gone already), KTH_ERR_CORRUPT when
 * it is damaged and stays (refetch_damaged false), KTH_ERR_IO, KTH_ERR_NO_MEMORY. No lock held by
 * the caller. */
kth_status storage_read_checked(storage_resource *r, uint64_t offset, uint8_t *buf, size_t k,
                                size_t *got);

/* Frees the checksum state. */
void storage_sums_state_free(storage_resource *r);

#endif
