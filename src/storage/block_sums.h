/*
 * block_sums.h — checksums of a resource's bytes, one per block, and which bytes they cover.
 *
 * Bytes are summed in blocks of STORAGE_BLOCK_SIZE: block i is [i·B, (i+1)·B), cut at the
 * resource's length. A block can have a sum once it is complete: every byte of it is present and
 * its end is certain (a full-size block, or the last block once the length is known). The sum is
 * the CRC-32C of the block's bytes (crc32c.h).
 *
 * Why 64 KiB: it is the read size of players and of our benchmarks, so a first read of a block
 * is checked in the reader's own buffer without reading anything twice; the index holds 4 bytes
 * per 64 KiB (64 KiB of sums for a 1 GiB file); a damaged block costs one 64 KiB refetch; and an
 * HLS audio segment (tens to hundreds of KiB) spans one to a few blocks.
 *
 * Not thread-safe by itself; the owner locks.
 */
#ifndef KTH_STORAGE_BLOCK_SUMS_H
#define KTH_STORAGE_BLOCK_SUMS_H

#include <kithara/status.h>

#include "storage/range_set.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORAGE_BLOCK_SIZE ((uint64_t)64 * 1024)

typedef struct storage_sums {
    uint32_t *crc;  /* crc[i]: block i's checksum, where bit i of `have` is set */
    uint64_t *have; /* bitset over [0, count) */
    size_t count;   /* room for blocks [0, count) */
} storage_sums;

void storage_sums_init(storage_sums *s);
void storage_sums_free(storage_sums *s);

/* True and *crc (may be NULL) when block `block` has a sum. */
bool storage_sums_get(const storage_sums *s, uint64_t block, uint32_t *crc);

/* Records block `block`'s sum, growing the table. KTH_ERR_NO_MEMORY (nothing recorded), or
 * KTH_ERR_OUT_OF_RANGE for a block no byte offset can reach. */
kth_status storage_sums_set(storage_sums *s, uint64_t block, uint32_t crc);

/* Forgets block `block`'s sum (no effect when it has none). */
void storage_sums_clear(storage_sums *s, uint64_t block);

/* Replaces *dst with a copy of *src. KTH_ERR_NO_MEMORY leaves *dst empty. */
kth_status storage_sums_copy(storage_sums *dst, const storage_sums *src);

/* The bytes of block `block` in a resource of `length` bytes (length_known false: no end yet).
 * False when the block lies at or past a known end. */
bool storage_block_extent(uint64_t block, bool length_known, uint64_t length, storage_range *out);

/* True when block `block` is complete given the present `ranges` (see the file comment). */
bool storage_block_complete(const storage_range_set *ranges, uint64_t block, bool length_known,
                            uint64_t length);

/* The bytes of `ranges` that sums vouch for: the union of the complete blocks that have a sum.
 * *out (initialised by the caller) receives them. KTH_ERR_NO_MEMORY. */
kth_status storage_sums_covered(const storage_sums *s, const storage_range_set *ranges,
                                bool length_known, uint64_t length, storage_range_set *out);

#endif
