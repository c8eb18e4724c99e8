/*
 * source.h — the interface every kind of source (local resource, progressive HTTP, HLS)
 * implements for the stream.
 *
 * A source answers two questions for the reader: "are the bytes at this offset there yet?"
 * (wait_range, which blocks on an event, never polls) and "give me the bytes at this offset"
 * (read_at, which never blocks). Offsets are the stream's byte offsets; a source that stitches
 * several resources together (HLS) translates them at its own boundary.
 *
 * Threads: read_at and wait_range are called from the reader thread only. notify_waiting,
 * set_position, length, media_info and last_error may be called from any thread. No op is ever
 * called with the stream's state lock held, so a source may take its own locks freely.
 */
#ifndef KTH_STREAM_SOURCE_H
#define KTH_STREAM_SOURCE_H

#include <kithara/media.h>
#include <kithara/status.h>
#include <kithara/stream.h>

#include "platform/cancel.h"
#include "stream/timeline.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct stream_source stream_source;

/* What ends a wait besides the awaited bytes: the deadline, the stream's cancel token, and a
 * move of the seek epoch away from `seen_epoch`. */
typedef struct stream_wait_ctx {
    int64_t deadline_ns; /* absolute monotonic; PLATFORM_NO_DEADLINE for none */
    platform_cancel *cancel;
    const _Atomic uint64_t *epoch;
    uint64_t seen_epoch;
} stream_wait_ctx;

typedef enum source_wait {
    SOURCE_WAIT_READY,       /* at least the first byte of the range can be read now */
    SOURCE_WAIT_EOF,         /* the range starts at or past the proven end */
    SOURCE_WAIT_INTERRUPTED, /* the seek epoch moved */
    SOURCE_WAIT_TIMEOUT,
    SOURCE_WAIT_CANCELLED,
    SOURCE_WAIT_ERROR, /* the source failed; *status has the reason, last_error the detail */
} source_wait;

/* The result of read_at: the same vocabulary as the public outcome. */
typedef struct source_read {
    kth_read_kind kind;        /* BYTES, PENDING, EOF or ERROR */
    size_t n;                  /* BYTES: bytes copied */
    kth_pending_reason reason; /* PENDING: NOT_READY, VARIANT_CHANGE or RETRY */
    kth_status status;         /* ERROR: the failure */
} source_read;

typedef struct stream_source_ops {
    const char *name;
    source_wait (*wait_range)(stream_source *src, uint64_t start, uint64_t end,
                              const stream_wait_ctx *ctx, kth_status *status);
    source_read (*read_at)(stream_source *src, uint64_t offset, void *buf, size_t n);
    bool (*length)(stream_source *src, uint64_t *length);
    source_wait (*wait_length)(stream_source *src, const stream_wait_ctx *ctx, kth_status *status);
    /* Wakes every reader blocked in wait_range so it re-checks its epoch and token. */
    void (*notify_waiting)(stream_source *src);
    /* Optional: the reader moved (a seek); fetching should follow. */
    void (*set_position)(stream_source *src, uint64_t position, uint64_t epoch);
    void (*media_info)(stream_source *src, kth_media_info *info);
    /* Optional: where time `seconds` lands (see kth_stream_seek_time). May block until ctx ends
     * when a size is unknown. Fills anchor->offset and the segment fields. */
    kth_status (*seek_time_anchor)(stream_source *src, double seconds, const stream_wait_ctx *ctx,
                                   kth_seek_anchor *anchor);
    /* Optional pair: the variant fence. */
    bool (*variant_change_pending)(stream_source *src);
    void (*clear_variant_fence)(stream_source *src);
    /* Copies the detail of the last failure; returns its length (snprintf-style). */
    size_t (*last_error)(stream_source *src, char *buf, size_t size);
    void (*destroy)(stream_source *src);
} stream_source_ops;

struct stream_source {
    const stream_source_ops *ops;
    /* Set by the stream when it adopts the source (borrowed, lives as long as the stream). */
    const stream_timeline *timeline;
};

/* Creates a stream that owns `source` (destroyed with the stream, or here on failure). `opts`
 * may be NULL. `description` (URL or path) is used for events. Any thread. */
kth_status stream_new(stream_source *source, const kth_stream_options *opts,
                      const char *description, kth_stream **out);

/* The stream's cancel token (borrowed), for sources created after the stream. */
platform_cancel *stream_cancel_token(kth_stream *stream);

/* The stream's source (borrowed), for controls that a kind of source adds (an HLS source's
 * variant controls check src->ops before use). Any thread. */
stream_source *stream_get_source(kth_stream *stream);

#endif
