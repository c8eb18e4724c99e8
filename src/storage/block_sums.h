/*
 * block_sums.h — checksums of a resource's bytes, one per piece, and which bytes they cover.
 *
 * Bytes are summed in blocks of STORAGE_BLOCK_SIZE: block i is [i·B, (i+1)·B). The present
 * ranges of a resource, cut at block boundaries, are its pieces: most are whole blocks, and the
 * edges of ranges (the tail of a file, the part of a block before a seek target or after an
 * interrupted download) are parts of one. Each piece can have a sum, the CRC-32C (crc32c.h) of
 * exactly its bytes. Pieces follow from the ranges alone, so the ranges and one sum per piece,
 * in order, describe everything (that is how the cache index stores them).
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

/* The sum of a piece that is not a whole block. */
typedef struct storage_part_sum {
    uint64_t start, end; /* inside one block */
    uint32_t crc;
    bool pending; /* for the resource that holds it: restored, not checked yet */
} storage_part_sum;

typedef struct storage_sums {
    /* Whole blocks: crc[i] is block i's sum where bit i of `have` is set. */
    uint32_t *crc;
    uint64_t *have;
    size_t count; /* room for blocks [0, count) */
    /* Other pieces, sorted by start and disjoint. */
    storage_part_sum *part;
    size_t part_count, part_cap;
} storage_sums;

void storage_sums_init(storage_sums *s);
void storage_sums_free(storage_sums *s);

/* Replaces *dst with a copy of *src. KTH_ERR_NO_MEMORY leaves *dst empty. */
kth_status storage_sums_copy(storage_sums *dst, const storage_sums *src);

/* True and *crc (may be NULL) when piece [start, end) has a sum. */
bool storage_sums_get(const storage_sums *s, uint64_t start, uint64_t end, uint32_t *crc);

/* Records the sum of piece [start, end) (inside one block), replacing the sums of pieces of that
 * block it overlaps (a whole block replaces every part of it). KTH_ERR_NO_MEMORY (nothing
 * changed), KTH_ERR_INVALID_ARG for an empty range or one across a block boundary. */
kth_status storage_sums_set(storage_sums *s, uint64_t start, uint64_t end, uint32_t crc);

/* Forgets the sum of piece [start, end) (no effect when it has none). */
void storage_sums_clear(storage_sums *s, uint64_t start, uint64_t end);

/* The index of the first part that ends after `offset` (part_count when none). */
size_t storage_sums_part_at(const storage_sums *s, uint64_t offset);

/* Walks the pieces of a range set in order. */
typedef struct storage_piece_iter {
    const storage_range_set *ranges;
    size_t i;
    uint64_t at;
} storage_piece_iter;

void storage_piece_iter_init(storage_piece_iter *it, const storage_range_set *ranges);
/* The next piece into *piece; false at the end. */
bool storage_piece_next(storage_piece_iter *it, storage_range *piece);

/* The whole block `block` of a resource of `length` bytes (length_known false: no end yet),
 * cut at a known length. False when it lies at or past a known end. */
bool storage_block_extent(uint64_t block, bool length_known, uint64_t length, storage_range *out);

/* The pieces of `ranges` that have a sum, into *out (initialised by the caller; added to).
 * KTH_ERR_NO_MEMORY. */
kth_status storage_sums_covered(const storage_sums *s, const storage_range_set *ranges,
                                storage_range_set *out);

#endif
