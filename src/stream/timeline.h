/*
 * timeline.h — where the reader is: byte position, seek epoch and the flushing flag.
 *
 * The stream owns one timeline and hands its sources a pointer to it, so a source (and the
 * peer that fetches for it) can read the reader's position and epoch from any thread without a
 * lock. Only the stream writes it, under the stream's state lock; readers of the atomics see a
 * consistent value of each field, not a snapshot of all three.
 */
#ifndef KTH_STREAM_TIMELINE_H
#define KTH_STREAM_TIMELINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct stream_timeline {
    _Atomic uint64_t position; /* next byte the reader will read */
    _Atomic uint64_t epoch;    /* number of seeks so far */
    atomic_bool flushing;      /* set by a seek, cleared by the first bytes read after it */
} stream_timeline;

static inline uint64_t stream_timeline_position(const stream_timeline *t)
{
    return atomic_load(&((stream_timeline *)t)->position);
}

static inline uint64_t stream_timeline_epoch(const stream_timeline *t)
{
    return atomic_load(&((stream_timeline *)t)->epoch);
}

static inline bool stream_timeline_flushing(const stream_timeline *t)
{
    return atomic_load(&((stream_timeline *)t)->flushing);
}

#endif
