/*
 * block_sums.c — the table of per-block checksums and the block arithmetic around it.
 *
 * Invariant: crc and have always cover exactly `count` blocks; a block without its bit set has
 * no sum whatever crc[i] holds.
 */
#include "storage/block_sums.h"

#include <stdlib.h>
#include <string.h>

#define MAX_BLOCKS ((uint64_t)INT64_MAX / STORAGE_BLOCK_SIZE + 1)

static size_t words_for(size_t blocks)
{
    return (blocks + 63) / 64;
}

void storage_sums_init(storage_sums *s)
{
    s->crc = NULL;
    s->have = NULL;
    s->count = 0;
}

void storage_sums_free(storage_sums *s)
{
    free(s->crc);
    free(s->have);
    storage_sums_init(s);
}

bool storage_sums_get(const storage_sums *s, uint64_t block, uint32_t *crc)
{
    if (block >= s->count || !((s->have[block / 64] >> (block % 64)) & 1))
        return false;
    if (crc)
        *crc = s->crc[block];
    return true;
}

/* Makes room for blocks [0, need). */
static kth_status grow(storage_sums *s, size_t need)
{
    size_t count = s->count ? s->count : 16;
    while (count < need)
        count = count > SIZE_MAX / 2 ? need : count * 2;
    uint32_t *crc = realloc(s->crc, count * sizeof *crc);
    if (!crc)
        return KTH_ERR_NO_MEMORY;
    s->crc = crc;
    size_t old_words = words_for(s->count), words = words_for(count);
    uint64_t *have = realloc(s->have, words * sizeof *have);
    if (!have)
        return KTH_ERR_NO_MEMORY;
    memset(have + old_words, 0, (words - old_words) * sizeof *have);
    s->have = have;
    s->count = count;
    return KTH_OK;
}

kth_status storage_sums_set(storage_sums *s, uint64_t block, uint32_t crc)
{
    if (block >= MAX_BLOCKS)
        return KTH_ERR_OUT_OF_RANGE;
    if (block >= s->count) {
        kth_status st = grow(s, (size_t)block + 1);
        if (st != KTH_OK)
            return st;
    }
    s->crc[block] = crc;
    s->have[block / 64] |= (uint64_t)1 << (block % 64);
    return KTH_OK;
}

void storage_sums_clear(storage_sums *s, uint64_t block)
{
    if (block < s->count)
        s->have[block / 64] &= ~((uint64_t)1 << (block % 64));
}

kth_status storage_sums_copy(storage_sums *dst, const storage_sums *src)
{
    storage_sums_free(dst);
    if (src->count == 0)
        return KTH_OK;
    dst->crc = malloc(src->count * sizeof *dst->crc);
    dst->have = malloc(words_for(src->count) * sizeof *dst->have);
    if (!dst->crc || !dst->have) {
        storage_sums_free(dst);
        return KTH_ERR_NO_MEMORY;
    }
    memcpy(dst->crc, src->crc, src->count * sizeof *dst->crc);
    memcpy(dst->have, src->have, words_for(src->count) * sizeof *dst->have);
    dst->count = src->count;
    return KTH_OK;
}

bool storage_block_extent(uint64_t block, bool length_known, uint64_t length, storage_range *out)
{
    if (block >= MAX_BLOCKS)
        return false;
    uint64_t start = block * STORAGE_BLOCK_SIZE;
    uint64_t end = start + STORAGE_BLOCK_SIZE;
    if (length_known && end > length)
        end = length;
    if (end <= start)
        return false;
    out->start = start;
    out->end = end;
    return true;
}

bool storage_block_complete(const storage_range_set *ranges, uint64_t block, bool length_known,
                            uint64_t length)
{
    storage_range b;
    return storage_block_extent(block, length_known, length, &b) &&
           storage_range_set_contains(ranges, b.start, b.end);
}

kth_status storage_sums_covered(const storage_sums *s, const storage_range_set *ranges,
                                bool length_known, uint64_t length, storage_range_set *out)
{
    for (size_t i = 0; i < ranges->count; i++) {
        /* Only blocks that start inside this range can lie wholly inside it. */
        uint64_t first = (ranges->v[i].start + STORAGE_BLOCK_SIZE - 1) / STORAGE_BLOCK_SIZE;
        for (uint64_t b = first; b < s->count; b++) {
            storage_range e;
            if (!storage_block_extent(b, length_known, length, &e) || e.start >= ranges->v[i].end)
                break;
            if (e.end > ranges->v[i].end || !storage_sums_get(s, b, NULL))
                continue;
            kth_status st = storage_range_set_add(out, e.start, e.end);
            if (st != KTH_OK)
                return st;
        }
    }
    return KTH_OK;
}
