/*
 * stream.c — kth_stream: the blocking read/seek byte stream over a source.
 *
 * Lock: stream->lock (the stream state lock) is first in the lock order (stream state →
 * resource → cache index). It guards the position/epoch updates as a pair and the last-error
 * text. It is never held while calling the source, so a blocked read holds nothing.
 *
 * Invariants:
 * - The position moves only by a seek, or by a read whose epoch is still current when it
 *   publishes its byte count; a read that raced a seek reports SEEK_PENDING and consumes
 *   nothing, so bytes of the old position never reach the caller as bytes of the new one.
 * - EOF is reported only when the source proves it.
 */
#include <kithara/stream.h>

#include "platform/sync.h"
#include "stream/file_time.h"
#include "stream/source.h"
#include "platform/mem.h"
#include "platform/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bound on consecutive "bytes vanished" retries inside one read, so a cache too small for the
 * reader's working set surfaces as KTH_ERR_RETRY instead of a silent refetch loop. */
#define MAX_RETRIES 8

struct kth_stream {
    platform_mutex lock; /* stream state lock: first in the lock order */
    stream_timeline timeline;
    stream_source *source;
    platform_cancel *cancel;
    kth_stream_options opts;
    uint64_t id;
    char last_error[1024]; /* a longer message keeps its head and tail (platform_excerpt) */
};

static _Atomic uint64_t next_stream_id = 1;

void kth_stream_options_init(kth_stream_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
}

static void publish(kth_stream *s, kth_event_kind kind, int status, const char *text)
{
    if (!s->opts.bus)
        return;
    kth_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.origin = s->id;
    ev.status = status;
    ev.payload.seek.position = stream_timeline_position(&s->timeline);
    ev.payload.seek.epoch = stream_timeline_epoch(&s->timeline);
    if (text)
        snprintf(ev.text, sizeof ev.text, "%s", text);
    kth_bus_publish(s->opts.bus, &ev);
}

kth_status stream_new(stream_source *source, const kth_stream_options *opts,
                      const char *description, kth_stream **out)
{
    if (!source || !out) {
        if (source)
            source->ops->destroy(source);
        return KTH_ERR_INVALID_ARG;
    }
    kth_stream *s = platform_calloc(1, sizeof *s);
    if (!s || platform_mutex_init(&s->lock) != KTH_OK) {
        platform_free(s);
        source->ops->destroy(source);
        return KTH_ERR_NO_MEMORY;
    }
    s->cancel = platform_cancel_new(NULL);
    if (!s->cancel) {
        platform_mutex_destroy(&s->lock);
        platform_free(s);
        source->ops->destroy(source);
        return KTH_ERR_NO_MEMORY;
    }
    if (opts)
        s->opts = *opts; /* read at its size by kth_stream_open */
    else
        kth_stream_options_init(&s->opts);
    s->opts.hls = NULL; /* read at open only; never kept */
    if (s->opts.read_timeout_ms == 0)
        s->opts.read_timeout_ms = KTH_STREAM_DEFAULT_READ_TIMEOUT_MS;
    kth_bus_ref(s->opts.bus);
    atomic_init(&s->timeline.position, 0);
    atomic_init(&s->timeline.epoch, 0);
    atomic_init(&s->timeline.flushing, false);
    s->source = source;
    source->timeline = &s->timeline;
    s->id = atomic_fetch_add(&next_stream_id, 1);
    *out = s;
    publish(s, KTH_EVENT_STREAM_OPENED, KTH_OK, description);
    return KTH_OK;
}

platform_cancel *stream_cancel_token(kth_stream *stream)
{
    return stream->cancel;
}

stream_source *stream_get_source(kth_stream *stream)
{
    return stream ? stream->source : NULL;
}

void kth_stream_close(kth_stream *s)
{
    if (!s)
        return;
    platform_cancel_cancel(s->cancel);
    publish(s, KTH_EVENT_STREAM_CLOSED, KTH_OK, NULL);
    s->source->ops->destroy(s->source);
    platform_cancel_unref(s->cancel);
    kth_bus_unref(s->opts.bus);
    platform_mutex_destroy(&s->lock);
    platform_free(s);
}

static void record_source_error(kth_stream *s, kth_status status)
{
    char detail[sizeof s->last_error];
    detail[0] = '\0';
    if (s->source->ops->last_error)
        s->source->ops->last_error(s->source, detail, sizeof detail);
    platform_mutex_lock(&s->lock);
    platform_excerpt(detail[0] ? detail : kth_strerror(status), s->last_error,
                     sizeof s->last_error);
    platform_mutex_unlock(&s->lock);
    publish(s, KTH_EVENT_STREAM_ERROR, status, detail[0] ? detail : NULL);
}

static kth_status finish(kth_read_outcome *out, kth_read_kind kind, kth_pending_reason reason,
                         kth_status cause, kth_status status, uint64_t position)
{
    out->kind = kind;
    out->n = 0;
    out->reason = reason;
    out->cause = cause;
    out->status = status;
    out->position = position;
    return status;
}

kth_status kth_stream_try_read(kth_stream *s, void *buf, size_t n, int64_t timeout_ms,
                               kth_read_outcome *out)
{
    if (!s || !out || !buf || n == 0) {
        if (out)
            finish(out, KTH_READ_ERROR, KTH_PENDING_NONE, KTH_OK, KTH_ERR_INVALID_ARG, 0);
        return KTH_ERR_INVALID_ARG;
    }
    const stream_source_ops *ops = s->source->ops;
    uint64_t epoch = stream_timeline_epoch(&s->timeline);
    uint64_t pos = stream_timeline_position(&s->timeline);
    if (platform_cancel_is_cancelled(s->cancel))
        return finish(out, KTH_READ_ERROR, KTH_PENDING_NONE, KTH_OK, KTH_ERR_CANCELLED, pos);

    stream_wait_ctx ctx = {
        .deadline_ns = platform_deadline_after_ms(timeout_ms),
        .cancel = s->cancel,
        .epoch = &s->timeline.epoch,
        .seen_epoch = epoch,
    };
    int retries = 0;
    for (;;) {
        source_read r = ops->read_at(s->source, pos, buf, n);
        if (r.kind == KTH_READ_BYTES || r.kind == KTH_READ_EOF) {
            platform_mutex_lock(&s->lock);
            bool current = stream_timeline_epoch(&s->timeline) == epoch;
            if (current && r.kind == KTH_READ_BYTES) {
                atomic_store(&s->timeline.position, pos + r.n);
                atomic_store(&s->timeline.flushing, false);
            }
            platform_mutex_unlock(&s->lock);
            if (!current)
                return finish(out, KTH_READ_PENDING, KTH_PENDING_SEEK, KTH_OK, KTH_OK,
                              stream_timeline_position(&s->timeline));
            if (r.kind == KTH_READ_EOF)
                return finish(out, KTH_READ_EOF, KTH_PENDING_NONE, KTH_OK, KTH_OK, pos);
            finish(out, KTH_READ_BYTES, KTH_PENDING_NONE, KTH_OK, KTH_OK, pos + r.n);
            out->n = r.n;
            return KTH_OK;
        }
        if (r.kind == KTH_READ_ERROR) {
            record_source_error(s, r.status);
            return finish(out, KTH_READ_ERROR, KTH_PENDING_NONE, KTH_OK, r.status, pos);
        }
        /* PENDING. */
        if (r.reason == KTH_PENDING_VARIANT_CHANGE || r.reason == KTH_PENDING_SEEK)
            return finish(out, KTH_READ_PENDING, r.reason, KTH_OK, KTH_OK, pos);
        if (r.reason == KTH_PENDING_RETRY && ++retries > MAX_RETRIES)
            return finish(out, KTH_READ_PENDING, KTH_PENDING_RETRY, KTH_OK, KTH_OK, pos);
        if (timeout_ms == 0)
            return finish(out, KTH_READ_PENDING, KTH_PENDING_NOT_READY, KTH_OK, KTH_OK, pos);

        kth_status wait_status = KTH_OK;
        /* Any bytes at pos end the wait: a read returns what is there, as read(2) does. */
        source_wait w = ops->wait_range(s->source, pos, pos + 1, &ctx, &wait_status);
        switch (w) {
        case SOURCE_WAIT_READY:
        case SOURCE_WAIT_EOF:
            continue; /* read_at now has bytes or proves the end */
        case SOURCE_WAIT_INTERRUPTED:
            return finish(out, KTH_READ_PENDING, KTH_PENDING_SEEK, KTH_OK, KTH_OK,
                          stream_timeline_position(&s->timeline));
        case SOURCE_WAIT_TIMEOUT:
            return finish(out, KTH_READ_PENDING, KTH_PENDING_NOT_READY, KTH_ERR_TIMEOUT, KTH_OK,
                          pos);
        case SOURCE_WAIT_CANCELLED:
            return finish(out, KTH_READ_ERROR, KTH_PENDING_NONE, KTH_OK, KTH_ERR_CANCELLED, pos);
        case SOURCE_WAIT_ERROR:
            if (wait_status == KTH_OK)
                wait_status = KTH_ERR_INTERNAL;
            record_source_error(s, wait_status);
            return finish(out, KTH_READ_ERROR, KTH_PENDING_NONE, KTH_OK, wait_status, pos);
        }
    }
}

int64_t kth_stream_read(kth_stream *s, void *buf, size_t n)
{
    if (!s || !buf || n == 0)
        return KTH_ERR_INVALID_ARG;
    kth_read_outcome o;
    kth_stream_try_read(s, buf, n, s->opts.read_timeout_ms, &o);
    switch (o.kind) {
    case KTH_READ_BYTES:
        return (int64_t)o.n;
    case KTH_READ_EOF:
        return 0;
    case KTH_READ_ERROR:
        return o.status;
    case KTH_READ_PENDING:
        break;
    }
    switch (o.reason) {
    case KTH_PENDING_SEEK:
        return KTH_ERR_SEEK_PENDING;
    case KTH_PENDING_VARIANT_CHANGE:
        return KTH_ERR_VARIANT_CHANGE;
    case KTH_PENDING_RETRY:
        return KTH_ERR_RETRY;
    case KTH_PENDING_NOT_READY:
    case KTH_PENDING_NONE:
        break;
    }
    return KTH_ERR_TIMEOUT;
}

/* Waits for the total length (for SEEK_END). Never called with the stream lock held. */
static kth_status wait_for_length(kth_stream *s, uint64_t *length)
{
    const stream_source_ops *ops = s->source->ops;
    if (ops->length(s->source, length))
        return KTH_OK;
    stream_wait_ctx ctx = {
        .deadline_ns = platform_deadline_after_ms(s->opts.read_timeout_ms),
        .cancel = s->cancel,
        .epoch = NULL,
        .seen_epoch = 0,
    };
    kth_status status = KTH_OK;
    switch (ops->wait_length(s->source, &ctx, &status)) {
    case SOURCE_WAIT_READY:
    case SOURCE_WAIT_EOF:
        return ops->length(s->source, length) ? KTH_OK : KTH_ERR_INTERNAL;
    case SOURCE_WAIT_TIMEOUT:
        return KTH_ERR_TIMEOUT;
    case SOURCE_WAIT_CANCELLED:
    case SOURCE_WAIT_INTERRUPTED:
        return KTH_ERR_CANCELLED;
    case SOURCE_WAIT_ERROR:
        record_source_error(s, status);
        return status == KTH_OK ? KTH_ERR_INTERNAL : status;
    }
    return KTH_ERR_INTERNAL;
}

/* Sets the position to `target` and bumps the epoch. Stream lock held. Returns the epoch.
 * Flushing is set first: a source's peer reads these without the lock, and one that saw the
 * new position or epoch before the flag would judge the spot just sought to as a reader's
 * (with an empty buffer) instead of a seek's. */
static uint64_t set_position_locked(kth_stream *s, uint64_t target)
{
    atomic_store(&s->timeline.flushing, true);
    atomic_store(&s->timeline.position, target);
    return atomic_fetch_add(&s->timeline.epoch, 1) + 1;
}

/* Tells the source and blocked readers about a move to `target` made at `epoch`. Called
 * without the stream lock. */
static void announce_move(kth_stream *s, uint64_t target, uint64_t epoch)
{
    if (s->source->ops->set_position)
        s->source->ops->set_position(s->source, target, epoch);
    s->source->ops->notify_waiting(s->source);
    publish(s, KTH_EVENT_STREAM_SEEK, KTH_OK, NULL);
}

/* Moves the position to `target` and announces it. Called without the stream lock. */
static void move_to(kth_stream *s, uint64_t target)
{
    platform_mutex_lock(&s->lock);
    uint64_t epoch = set_position_locked(s, target);
    platform_mutex_unlock(&s->lock);
    announce_move(s, target, epoch);
}

kth_status kth_stream_seek(kth_stream *s, int64_t offset, int whence, uint64_t *new_pos)
{
    if (!s || (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END))
        return KTH_ERR_INVALID_ARG;
    if (platform_cancel_is_cancelled(s->cancel))
        return KTH_ERR_CANCELLED;
    uint64_t length = 0;
    bool length_known;
    if (whence == SEEK_END) {
        kth_status st = wait_for_length(s, &length);
        if (st != KTH_OK)
            return st;
        length_known = true;
    } else {
        length_known = s->source->ops->length(s->source, &length);
    }

    platform_mutex_lock(&s->lock);
    uint64_t base = whence == SEEK_SET   ? 0
                    : whence == SEEK_CUR ? stream_timeline_position(&s->timeline)
                                         : length;
    uint64_t target;
    bool ok;
    if (offset >= 0) {
        ok = base <= UINT64_MAX - (uint64_t)offset;
        target = base + (uint64_t)offset;
    } else {
        uint64_t back = (uint64_t)(-(offset + 1)) + 1; /* |offset| without overflow */
        ok = back <= base;
        target = base - back;
    }
    if (!ok || (length_known && target > length) || target > (uint64_t)INT64_MAX) {
        platform_mutex_unlock(&s->lock);
        return KTH_ERR_OUT_OF_RANGE;
    }
    /* In the same critical section as reading the base, so SEEK_CUR from two threads does not
     * lose one of the moves. */
    uint64_t epoch = set_position_locked(s, target);
    platform_mutex_unlock(&s->lock);
    announce_move(s, target, epoch);
    if (new_pos)
        *new_pos = target;
    return KTH_OK;
}

/* Reads for file_time.c through the source, waiting for bytes that are not there yet. */
typedef struct time_reader {
    stream_source *src;
    const stream_wait_ctx *ctx;
    uint64_t length; /* the file's length, 0 when the source does not know it */
} time_reader;

static kth_status status_of_wait(source_wait w, kth_status st)
{
    switch (w) {
    case SOURCE_WAIT_TIMEOUT:
        return KTH_ERR_TIMEOUT;
    case SOURCE_WAIT_CANCELLED:
        return KTH_ERR_CANCELLED;
    case SOURCE_WAIT_ERROR:
        return st != KTH_OK ? st : KTH_ERR_IO;
    default:
        return KTH_OK;
    }
}

static kth_status read_for_time(void *c, uint64_t off, uint8_t *buf, size_t n, size_t *got)
{
    time_reader *t = c;
    const stream_source_ops *ops = t->src->ops;
    *got = 0;
    if (t->length > 0) {
        /* Nothing past the end is waited for: it never comes. */
        if (off >= t->length)
            return KTH_OK;
        if (n > t->length - off)
            n = (size_t)(t->length - off);
    }
    /* Each pass either copies bytes or waits (bounded by the deadline); a source that keeps
     * saying "ready" without giving bytes ends the lookup. */
    for (int idle = 0; *got < n && idle < 64;) {
        source_read r = ops->read_at(t->src, off + *got, buf + *got, n - *got);
        if (r.kind == KTH_READ_BYTES) {
            *got += r.n;
            idle = 0;
            continue;
        }
        if (r.kind == KTH_READ_EOF)
            return KTH_OK;
        if (r.kind == KTH_READ_ERROR)
            return r.status;
        kth_status st = KTH_OK;
        source_wait w = ops->wait_range(t->src, off + *got, off + n, t->ctx, &st);
        if (w == SOURCE_WAIT_EOF)
            return KTH_OK;
        if ((st = status_of_wait(w, st)) != KTH_OK)
            return st;
        idle++;
    }
    return *got == n ? KTH_OK : KTH_ERR_RETRY;
}

/* A source without a playlist: the file's own headers place the time (file_time.h). */
static kth_status file_seek_time_anchor(kth_stream *s, double seconds, const stream_wait_ctx *ctx,
                                        kth_seek_anchor *a)
{
    stream_source *src = s->source;
    time_reader reader = {src, ctx, 0};
    file_time_source fts = {.read = read_for_time, .ctx = &reader};
    if (!src->ops->length(src, &fts.length)) {
        kth_status st = KTH_OK;
        source_wait w = src->ops->wait_length(src, ctx, &st);
        if ((st = status_of_wait(w, st)) != KTH_OK)
            return st;
        if (!src->ops->length(src, &fts.length))
            fts.length = 0;
    }
    reader.length = fts.length;
    return file_time_anchor(&fts, seconds, a);
}

kth_status kth_stream_seek_time(kth_stream *s, double seconds, kth_seek_anchor *anchor)
{
    if (!s || seconds != seconds)
        return KTH_ERR_INVALID_ARG;
    if (platform_cancel_is_cancelled(s->cancel))
        return KTH_ERR_CANCELLED;
    stream_wait_ctx ctx = {
        .deadline_ns = platform_deadline_after_ms(s->opts.read_timeout_ms),
        .cancel = s->cancel,
        .epoch = NULL,
        .seen_epoch = 0,
    };
    kth_seek_anchor a;
    memset(&a, 0, sizeof a);
    a.requested = seconds;
    a.variant = -1;
    kth_status st = s->source->ops->seek_time_anchor
                        ? s->source->ops->seek_time_anchor(s->source, seconds, &ctx, &a)
                        : file_seek_time_anchor(s, seconds, &ctx, &a);
    if (st != KTH_OK) {
        record_source_error(s, st);
        return st;
    }
    move_to(s, a.offset);
    if (anchor)
        *anchor = a;
    return KTH_OK;
}

uint64_t kth_stream_position(kth_stream *s)
{
    return s ? stream_timeline_position(&s->timeline) : 0;
}

uint64_t kth_stream_seek_epoch(kth_stream *s)
{
    return s ? stream_timeline_epoch(&s->timeline) : 0;
}

bool kth_stream_length(kth_stream *s, uint64_t *length)
{
    return s && s->source->ops->length(s->source, length);
}

kth_status kth_stream_media_info(kth_stream *s, kth_media_info *info)
{
    if (!s || !info)
        return KTH_ERR_INVALID_ARG;
    memset(info, 0, sizeof *info);
    info->variant = -1;
    if (s->source->ops->media_info)
        s->source->ops->media_info(s->source, info);
    return KTH_OK;
}

kth_status kth_stream_clear_variant_fence(kth_stream *s)
{
    if (!s)
        return KTH_ERR_INVALID_ARG;
    const stream_source_ops *ops = s->source->ops;
    if (!ops->variant_change_pending || !ops->variant_change_pending(s->source))
        return KTH_ERR_STATE;
    ops->clear_variant_fence(s->source);
    return KTH_OK;
}

void kth_stream_cancel(kth_stream *s)
{
    if (!s)
        return;
    platform_cancel_cancel(s->cancel);
    s->source->ops->notify_waiting(s->source);
}

size_t kth_stream_last_error(kth_stream *s, char *buf, size_t size)
{
    if (!s)
        return 0;
    platform_mutex_lock(&s->lock);
    size_t n = strlen(s->last_error);
    if (buf)
        platform_excerpt(s->last_error, buf, size);
    platform_mutex_unlock(&s->lock);
    return n;
}
