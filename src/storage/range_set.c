/*
 * range_set.c — sorted disjoint interval set with binary search.
 *
 * Invariant after every call: v[0..count) sorted by start, each non-empty, and separated by at
 * least one absent byte (v[i].end < v[i+1].start), so each byte has one canonical range.
 */
#include "storage/range_set.h"
#include "platform/mem.h"

#include <stdlib.h>
#include <string.h>

void storage_range_set_init(storage_range_set *s)
{
    s->v = NULL;
    s->count = s->cap = 0;
}

void storage_range_set_free(storage_range_set *s)
{
    platform_free(s->v);
    storage_range_set_init(s);
}

void storage_range_set_clear(storage_range_set *s)
{
    s->count = 0;
}

/* Index of the first range whose end >= offset (i.e. that contains, touches or follows it). */
static size_t first_reaching(const storage_range_set *s, uint64_t offset)
{
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->v[mid].end < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static kth_status reserve(storage_range_set *s, size_t need)
{
    if (need <= s->cap)
        return KTH_OK;
    size_t cap = s->cap ? s->cap * 2 : 8;
    while (cap < need)
        cap *= 2;
    storage_range *v = platform_realloc(s->v, cap * sizeof *v);
    if (!v)
        return KTH_ERR_NO_MEMORY;
    s->v = v;
    s->cap = cap;
    return KTH_OK;
}

kth_status storage_range_set_add(storage_range_set *s, uint64_t start, uint64_t end)
{
    if (start > end)
        return KTH_ERR_INVALID_ARG;
    if (start == end)
        return KTH_OK;
    /* Ranges [i, j) touch or overlap [start, end) and merge into one. */
    size_t i = first_reaching(s, start);
    size_t j = i;
    while (j < s->count && s->v[j].start <= end)
        j++;
    if (i == j) {
        if (reserve(s, s->count + 1) != KTH_OK)
            return KTH_ERR_NO_MEMORY;
        memmove(&s->v[i + 1], &s->v[i], (s->count - i) * sizeof *s->v);
        s->v[i].start = start;
        s->v[i].end = end;
        s->count++;
        return KTH_OK;
    }
    uint64_t new_start = s->v[i].start < start ? s->v[i].start : start;
    uint64_t new_end = s->v[j - 1].end > end ? s->v[j - 1].end : end;
    s->v[i].start = new_start;
    s->v[i].end = new_end;
    memmove(&s->v[i + 1], &s->v[j], (s->count - j) * sizeof *s->v);
    s->count -= j - i - 1;
    return KTH_OK;
}

kth_status storage_range_set_remove(storage_range_set *s, uint64_t start, uint64_t end)
{
    if (start >= end)
        return KTH_OK;
    size_t i = first_reaching(s, start);
    if (i < s->count && s->v[i].end == start)
        i++; /* touching at its end only: not affected */
    if (i < s->count && s->v[i].start < start && s->v[i].end > end) {
        /* Split one range into two. */
        if (reserve(s, s->count + 1) != KTH_OK)
            return KTH_ERR_NO_MEMORY;
        memmove(&s->v[i + 1], &s->v[i], (s->count - i) * sizeof *s->v);
        s->v[i].end = start;
        s->v[i + 1].start = end;
        s->count++;
        return KTH_OK;
    }
    size_t j = i;
    size_t keep_from = i; /* first index to keep after the removed block */
    while (j < s->count && s->v[j].start < end) {
        if (s->v[j].start < start) {
            s->v[j].end = start; /* trim the tail of a range that starts before */
            keep_from = j + 1;
        } else if (s->v[j].end > end) {
            s->v[j].start = end; /* trim the head of a range that ends after */
            break;
        }
        j++;
    }
    /* Ranges in [keep_from, j) are fully inside [start, end): drop them. */
    if (j > keep_from) {
        memmove(&s->v[keep_from], &s->v[j], (s->count - j) * sizeof *s->v);
        s->count -= j - keep_from;
    }
    return KTH_OK;
}

bool storage_range_set_contains(const storage_range_set *s, uint64_t start, uint64_t end)
{
    if (start >= end)
        return true;
    size_t i = first_reaching(s, start + 1);
    return i < s->count && s->v[i].start <= start && s->v[i].end >= end;
}

uint64_t storage_range_set_run_end(const storage_range_set *s, uint64_t offset)
{
    if (offset == UINT64_MAX)
        return offset;
    size_t i = first_reaching(s, offset + 1);
    if (i < s->count && s->v[i].start <= offset)
        return s->v[i].end;
    return offset;
}

bool storage_range_set_first_gap(const storage_range_set *s, uint64_t from, uint64_t limit,
                                 storage_range *gap)
{
    uint64_t pos = from;
    size_t i = first_reaching(s, from);
    while (pos < limit) {
        if (i >= s->count || s->v[i].start > pos) {
            uint64_t gap_end = (i < s->count && s->v[i].start < limit) ? s->v[i].start : limit;
            gap->start = pos;
            gap->end = gap_end;
            return true;
        }
        if (s->v[i].end > pos)
            pos = s->v[i].end;
        i++;
    }
    return false;
}

uint64_t storage_range_set_total(const storage_range_set *s)
{
    uint64_t total = 0;
    for (size_t i = 0; i < s->count; i++)
        total += s->v[i].end - s->v[i].start;
    return total;
}
