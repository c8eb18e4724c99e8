/*
 * range_set.h — a set of byte ranges kept as sorted, disjoint, non-adjacent half-open intervals.
 *
 * This is how a resource knows exactly which bytes it holds: writes may arrive out of order and
 * overlap, and the set merges them. Not thread-safe by itself; the owner locks.
 */
#ifndef KTH_STORAGE_RANGE_SET_H
#define KTH_STORAGE_RANGE_SET_H

#include <kithara/status.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct storage_range {
    uint64_t start; /* first byte */
    uint64_t end;   /* one past the last byte; start < end */
} storage_range;

typedef struct storage_range_set {
    storage_range *v; /* sorted by start; v[i].end < v[i+1].start */
    size_t count, cap;
} storage_range_set;

void storage_range_set_init(storage_range_set *s);
void storage_range_set_free(storage_range_set *s);
void storage_range_set_clear(storage_range_set *s);

/* Adds [start, end); merges with overlapping and adjacent ranges. An empty range is a no-op.
 * Returns KTH_ERR_NO_MEMORY (set unchanged) or KTH_ERR_INVALID_ARG when start > end. */
kth_status storage_range_set_add(storage_range_set *s, uint64_t start, uint64_t end);

/* Removes [start, end) (may split a range). Returns KTH_ERR_NO_MEMORY (set unchanged). */
kth_status storage_range_set_remove(storage_range_set *s, uint64_t start, uint64_t end);

/* True when every byte of [start, end) is in the set (an empty range is contained). */
bool storage_range_set_contains(const storage_range_set *s, uint64_t start, uint64_t end);

/* The end of the run of present bytes that begins at `offset`, or `offset` itself when the byte
 * at `offset` is absent. */
uint64_t storage_range_set_run_end(const storage_range_set *s, uint64_t offset);

/* The first absent range at or after `from` and before `limit`: true and *gap filled, or false
 * when [from, limit) is fully present. */
bool storage_range_set_first_gap(const storage_range_set *s, uint64_t from, uint64_t limit,
                                 storage_range *gap);

/* Total number of bytes present. */
uint64_t storage_range_set_total(const storage_range_set *s);

#endif
