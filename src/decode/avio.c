/*
 * avio.c — kth_avio: an FFmpeg AVIOContext over a kth_stream (kithara/ffmpeg.h).
 *
 * The one translation this file owns is between splice offsets (what the demuxer sees, from 0)
 * and stream offsets (splice start + splice offset). Everything else is kth_stream's: the
 * read callback is kth_stream_read, the seek callback kth_stream_seek.
 *
 * Invariants:
 * - A callback never reports a failure or a fence as bytes, and never reports a failure as
 *   EOF: EOF is either the proven end or a fence, and `status` says which.
 * - Each splice has its own AVIOContext, so no buffered byte of one splice is ever read as a
 *   byte of the next.
 */
#include <kithara/ffmpeg.h>
#include <kithara/hls.h>

#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/mem.h>

#include <stdio.h>
#include <stdlib.h>
#include "platform/mem.h"

#define DEFAULT_BUFFER (32 * 1024)
/* Bound on reads that return a transient outcome (a seek pending, bytes vanished) in a row. */
#define MAX_TRANSIENT 64

struct kth_avio {
    kth_stream *stream;
    AVIOContext *ctx;
    size_t buffer_size;
    uint64_t splice_start;
    uint64_t splice_read; /* bytes of this splice the read callback has returned */
    bool hls;
    kth_status status;
};

static int avio_error_of(kth_status st)
{
    return st == KTH_ERR_CANCELLED ? AVERROR_EXIT : AVERROR(EIO);
}

static int read_cb(void *opaque, uint8_t *buf, int size)
{
    kth_avio *a = opaque;
    if (size <= 0)
        return AVERROR(EINVAL);
    for (int transient = 0; transient < MAX_TRANSIENT; transient++) {
        int64_t n = kth_stream_read(a->stream, buf, (size_t)size);
        if (n > 0) {
            a->status = KTH_OK;
            a->splice_read += (uint64_t)n;
            return (int)n;
        }
        if (n == 0) {
            a->status = KTH_OK;
            return AVERROR_EOF;
        }
        if (n == KTH_ERR_VARIANT_CHANGE) {
            uint64_t pos = kth_stream_position(a->stream);
            if (pos == a->splice_start && a->splice_read == 0) {
                /* Before the first byte of a fresh splice: its demuxer is new anyway. */
                kth_status st = kth_stream_clear_variant_fence(a->stream);
                if (st != KTH_OK && st != KTH_ERR_STATE) {
                    a->status = st;
                    return avio_error_of(st);
                }
                continue;
            }
            a->status = KTH_ERR_VARIANT_CHANGE;
            return AVERROR_EOF;
        }
        if (n == KTH_ERR_SEEK_PENDING || n == KTH_ERR_RETRY)
            continue;
        a->status = (kth_status)n;
        return avio_error_of((kth_status)n);
    }
    a->status = KTH_ERR_RETRY;
    return AVERROR(EIO);
}

static int64_t seek_cb(void *opaque, int64_t offset, int whence)
{
    kth_avio *a = opaque;
    uint64_t length;
    /* An HLS splice may end at any fence, and a demuxer that reads the end of what it takes
     * for a file (mov looks for an index there) would fetch a segment nobody plays: HLS
     * reports no size. */
    bool known = !a->hls && kth_stream_length(a->stream, &length) && length >= a->splice_start;
    if (whence & AVSEEK_SIZE)
        return known ? (int64_t)(length - a->splice_start) : AVERROR(ENOSYS);
    whence &= ~AVSEEK_FORCE;
    int64_t target;
    if (whence == SEEK_SET)
        target = offset;
    else if (whence == SEEK_CUR)
        target = (int64_t)(kth_stream_position(a->stream) - a->splice_start) + offset;
    else if (whence == SEEK_END && known)
        target = (int64_t)(length - a->splice_start) + offset;
    else
        return AVERROR(EINVAL);
    if (target < 0 || (uint64_t)target > UINT64_MAX - a->splice_start)
        return AVERROR(EINVAL);
    uint64_t pos;
    kth_status st =
        kth_stream_seek(a->stream, (int64_t)(a->splice_start + (uint64_t)target), SEEK_SET, &pos);
    if (st != KTH_OK) {
        a->status = st;
        return st == KTH_ERR_OUT_OF_RANGE ? AVERROR(EINVAL) : avio_error_of(st);
    }
    return (int64_t)(pos - a->splice_start);
}

/* Replaces the AVIOContext with a fresh one for a splice starting at the stream position. */
static kth_status new_context(kth_avio *a)
{
    if (a->ctx) {
        av_freep(&a->ctx->buffer);
        avio_context_free(&a->ctx);
    }
    uint8_t *buf = av_malloc(a->buffer_size);
    if (!buf)
        return KTH_ERR_NO_MEMORY;
    a->ctx = avio_alloc_context(buf, (int)a->buffer_size, 0, a, read_cb, NULL, seek_cb);
    if (!a->ctx) {
        av_free(buf);
        return KTH_ERR_NO_MEMORY;
    }
    a->splice_start = kth_stream_position(a->stream);
    a->splice_read = 0;
    a->status = KTH_OK;
    return KTH_OK;
}

kth_status kth_avio_new(kth_stream *stream, size_t buffer_size, kth_avio **out)
{
    if (!stream || !out)
        return KTH_ERR_INVALID_ARG;
    *out = NULL;
    kth_avio *a = platform_calloc(1, sizeof *a);
    if (!a)
        return KTH_ERR_NO_MEMORY;
    a->stream = stream;
    a->hls = kth_stream_variant_count(stream) > 0;
    a->buffer_size = buffer_size > 0 && buffer_size < (1u << 30) ? buffer_size : DEFAULT_BUFFER;
    kth_status st = new_context(a);
    if (st != KTH_OK) {
        platform_free(a);
        return st;
    }
    *out = a;
    return KTH_OK;
}

void kth_avio_free(kth_avio *a)
{
    if (!a)
        return;
    if (a->ctx) {
        av_freep(&a->ctx->buffer);
        avio_context_free(&a->ctx);
    }
    platform_free(a);
}

AVIOContext *kth_avio_context(kth_avio *a)
{
    return a ? a->ctx : NULL;
}

kth_status kth_avio_status(kth_avio *a)
{
    return a ? a->status : KTH_ERR_INVALID_ARG;
}

kth_status kth_avio_next_splice(kth_avio *a)
{
    if (!a)
        return KTH_ERR_INVALID_ARG;
    kth_status st = kth_stream_clear_variant_fence(a->stream);
    if (st != KTH_OK && st != KTH_ERR_STATE)
        return st;
    return new_context(a);
}

kth_status kth_avio_splice_at(kth_avio *a, uint64_t offset)
{
    if (!a || offset > INT64_MAX)
        return KTH_ERR_INVALID_ARG;
    kth_status st = kth_stream_seek(a->stream, (int64_t)offset, SEEK_SET, NULL);
    if (st != KTH_OK)
        return st;
    return new_context(a);
}

uint64_t kth_avio_splice_start(kth_avio *a)
{
    return a ? a->splice_start : 0;
}
