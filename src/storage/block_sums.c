/*
 * block_sums.c — the table of piece checksums and the block arithmetic around it.
 *
 * Invariants: crc and have always cover exactly `count` blocks, and a block without its bit set
 * has no whole-block sum whatever crc[i] holds; parts are sorted, disjoint, each inside one
 * block, never a whole block, and never in a block that has a whole-block sum.
 */
#include "storage/block_sums.h"
#include "platform/mem.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK      STORAGE_BLOCK_SIZE
#define MAX_BLOCKS ((uint64_t)INT64_MAX / BLOCK + 1)

static size_t words_for(size_t blocks)
{
    return (blocks + 63) / 64;
}

static bool is_whole(uint64_t start, uint64_t end)
{
    return start % BLOCK == 0 && end - start == BLOCK;
}

void storage_sums_init(storage_sums *s)
{
    memset(s, 0, sizeof *s);
}

void storage_sums_free(storage_sums *s)
{
    platform_free(s->crc);
    platform_free(s->have);
    platform_free(s->part);
    storage_sums_init(s);
}

kth_status storage_sums_copy(storage_sums *dst, const storage_sums *src)
{
    storage_sums_free(dst);
    if (src->count > 0) {
        dst->crc = platform_malloc(src->count * sizeof *dst->crc);
        dst->have = platform_malloc(words_for(src->count) * sizeof *dst->have);
    }
    if (src->part_count > 0)
        dst->part = platform_malloc(src->part_count * sizeof *dst->part);
    if ((src->count > 0 && (!dst->crc || !dst->have)) || (src->part_count > 0 && !dst->part)) {
        storage_sums_free(dst);
        return KTH_ERR_NO_MEMORY;
    }
    if (src->count > 0) {
        memcpy(dst->crc, src->crc, src->count * sizeof *dst->crc);
        memcpy(dst->have, src->have, words_for(src->count) * sizeof *dst->have);
    }
    if (src->part_count > 0)
        memcpy(dst->part, src->part, src->part_count * sizeof *dst->part);
    dst->count = src->count;
    dst->part_count = dst->part_cap = src->part_count;
    return KTH_OK;
}

static bool whole_get(const storage_sums *s, uint64_t block, uint32_t *crc)
{
    if (block >= s->count || !((s->have[block / 64] >> (block % 64)) & 1))
        return false;
    if (crc)
        *crc = s->crc[block];
    return true;
}

size_t storage_sums_part_at(const storage_sums *s, uint64_t offset)
{
    size_t lo = 0, hi = s->part_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->part[mid].end <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool storage_sums_get(const storage_sums *s, uint64_t start, uint64_t end, uint32_t *crc)
{
    if (is_whole(start, end))
        return whole_get(s, start / BLOCK, crc);
    size_t i = storage_sums_part_at(s, start);
    if (i == s->part_count || s->part[i].start != start || s->part[i].end != end)
        return false;
    if (crc)
        *crc = s->part[i].crc;
    return true;
}

/* Makes room for blocks [0, need). */
static kth_status grow(storage_sums *s, size_t need)
{
    size_t count = s->count ? s->count : 16;
    while (count < need)
        count = count > SIZE_MAX / 2 ? need : count * 2;
    uint32_t *crc = platform_realloc(s->crc, count * sizeof *crc);
    if (!crc)
        return KTH_ERR_NO_MEMORY;
    s->crc = crc;
    size_t old_words = words_for(s->count), words = words_for(count);
    uint64_t *have = platform_realloc(s->have, words * sizeof *have);
    if (!have)
        return KTH_ERR_NO_MEMORY;
    memset(have + old_words, 0, (words - old_words) * sizeof *have);
    s->have = have;
    s->count = count;
    return KTH_OK;
}

/* Removes the parts in [i, j). */
static void remove_parts(storage_sums *s, size_t i, size_t j)
{
    if (j == i)
        return;
    memmove(s->part + i, s->part + j, (s->part_count - j) * sizeof *s->part);
    s->part_count -= j - i;
}

/* The parts overlapping [start, end): [*i, *j). */
static void parts_overlapping(const storage_sums *s, uint64_t start, uint64_t end, size_t *i,
                              size_t *j)
{
    *i = storage_sums_part_at(s, start);
    *j = *i;
    while (*j < s->part_count && s->part[*j].start < end)
        (*j)++;
}

kth_status storage_sums_set(storage_sums *s, uint64_t start, uint64_t end, uint32_t crc)
{
    uint64_t block = start / BLOCK;
    if (end <= start || block >= MAX_BLOCKS || (end - 1) / BLOCK != block)
        return KTH_ERR_INVALID_ARG;
    size_t i, j;
    if (is_whole(start, end)) {
        if (block >= s->count) {
            kth_status st = grow(s, (size_t)block + 1);
            if (st != KTH_OK)
                return st;
        }
        s->crc[block] = crc;
        s->have[block / 64] |= (uint64_t)1 << (block % 64);
        parts_overlapping(s, start, end, &i, &j);
        remove_parts(s, i, j);
        return KTH_OK;
    }
    if (s->part_count == s->part_cap) {
        size_t cap = s->part_cap ? 2 * s->part_cap : 8;
        storage_part_sum *v = platform_realloc(s->part, cap * sizeof *v);
        if (!v)
            return KTH_ERR_NO_MEMORY;
        s->part = v;
        s->part_cap = cap;
    }
    if (block < s->count)
        s->have[block / 64] &= ~((uint64_t)1 << (block % 64));
    parts_overlapping(s, start, end, &i, &j);
    remove_parts(s, i, j);
    if (i < s->part_count)
        memmove(s->part + i + 1, s->part + i, (s->part_count - i) * sizeof *s->part);
    s->part[i] = (storage_part_sum){start, end, crc, false};
    s->part_count++;
    return KTH_OK;
}

void storage_sums_clear(storage_sums *s, uint64_t start, uint64_t end)
{
    if (is_whole(start, end)) {
        uint64_t block = start / BLOCK;
        if (block < s->count)
            s->have[block / 64] &= ~((uint64_t)1 << (block % 64));
        return;
    }
    size_t i = storage_sums_part_at(s, start);
    if (i < s->part_count && s->part[i].start == start && s->part[i].end == end)
        remove_parts(s, i, i + 1);
}

void storage_piece_iter_init(storage_piece_iter *it, const storage_range_set *ranges)
{
    it->ranges = ranges;
    it->i = 0;
    it->at = ranges->count > 0 ? ranges->v[0].start : 0;
}

bool storage_piece_next(storage_piece_iter *it, storage_range *piece)
{
    if (it->i < it->ranges->count && it->at >= it->ranges->v[it->i].end) {
        it->i++;
        if (it->i < it->ranges->count)
            it->at = it->ranges->v[it->i].start;
    }
    if (it->i >= it->ranges->count)
        return false;
    uint64_t end = (it->at / BLOCK + 1) * BLOCK;
    if (end > it->ranges->v[it->i].end)
        end = it->ranges->v[it->i].end;
    piece->start = it->at;
    piece->end = end;
    it->at = end;
    return true;
}

bool storage_block_extent(uint64_t block, bool length_known, uint64_t length, storage_range *out)
{
    if (block >= MAX_BLOCKS)
        return false;
    uint64_t start = block * BLOCK;
    uint64_t end = start + BLOCK;
    if (length_known && end > length)
        end = length;
    if (end <= start)
        return false;
    out->start = start;
    out->end = end;
    return true;
}

kth_status storage_sums_covered(const storage_sums *s, const storage_range_set *ranges,
                                storage_range_set *out)
{
    storage_piece_iter it;
    storage_piece_iter_init(&it, ranges);
    storage_range p;
    while (storage_piece_next(&it, &p)) {
        if (!storage_sums_get(s, p.start, p.end, NULL))
            continue;
        kth_status st = storage_range_set_add(out, p.start, p.end);
        if (st != KTH_OK)
            return st;
    }
    return KTH_OK;
}
