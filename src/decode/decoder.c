/*
 * decoder.c — kth_decoder (kithara/decode.h): open, the decode loop, read, seek_time, close.
 *
 * The decode loop (produce) alternates between taking frames out of the codec decoder and
 * feeding it the next packet of the current splice; the end of a splice goes to join.c. Every
 * decoded frame passes through decode_take_frame, the one place that places frames on the
 * timeline and drops what a seek skips.
 *
 * Seek (sample-accurate): the stream (HLS: kth_stream_seek_time, nothing fetched before the
 * segment) or the demuxer (other streams, a little before the time) is moved to a point at or
 * before the time, the next frame's timestamp tells where the decode is, and samples are dropped
 * up to frame round(T × rate). A point found after the time (a segment that starts later than
 * its playlist says) is retried from an earlier one.
 */
#include "decode/decode_internal.h"
#include "platform/options.h"
#include "platform/mem.h"

#include <libavutil/avutil.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bound on decode-loop steps for one read (a seek target deep in a long segment needs many). */
#define MAX_STEPS    (1 << 24)
#define SEEK_RETRIES 4

kth_status decode_fail(kth_decoder *d, kth_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof d->error, fmt, ap);
    va_end(ap);
    d->failure = st;
    return st;
}

kth_status decode_fail_av(kth_decoder *d, int averr, const char *what)
{
    kth_status io = d->io ? kth_avio_status(d->io) : KTH_OK;
    uint64_t pos = kth_stream_position(d->stream);
    if (io != KTH_OK && io != KTH_ERR_VARIANT_CHANGE) {
        char detail[512];
        kth_stream_last_error(d->stream, detail, sizeof detail);
        return decode_fail(d, io, "%s at stream offset %llu: %s%s%s", what, (unsigned long long)pos,
                           kth_strerror(io), detail[0] ? ": " : "", detail);
    }
    if (averr == AVERROR(ENOMEM))
        return decode_fail(d, KTH_ERR_NO_MEMORY, "out of memory %s", what);
    char msg[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(averr, msg, sizeof msg);
    return decode_fail(d, KTH_ERR_FORMAT, "%s at stream offset %llu: %s", what,
                       (unsigned long long)pos, msg);
}

void decode_publish(kth_decoder *d, kth_event_kind kind, const kth_event_decode *payload)
{
    if (!d->bus)
        return;
    kth_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.payload.decode = *payload;
    if (d->codec)
        snprintf(ev.text, sizeof ev.text, "%s", avcodec_get_name(d->codec->codec_id));
    kth_bus_publish(d->bus, &ev);
}

kth_status decode_take_frame(kth_decoder *d)
{
    AVFrame *f = d->frame;
    int64_t pts = f->pts != AV_NOPTS_VALUE ? f->pts : f->best_effort_timestamp;
    if (!d->origin_known && pts != AV_NOPTS_VALUE) {
        d->origin_pts = pts;
        d->origin_tb = d->st->time_base;
        d->origin_known = true;
        d->src_next = 0;
        d->resync = false;
    } else if (d->resync && pts != AV_NOPTS_VALUE) {
        d->src_next = demux_frame_of(d, pts);
        d->resync = false;
        if (d->src_next > d->discard_to)
            d->overshoot = d->src_next - d->discard_to;
    }
    int nb = f->nb_samples;
    int skip = 0;
    if (d->discard_to > d->src_next)
        skip = d->discard_to - d->src_next >= nb ? nb : (int)(d->discard_to - d->src_next);
    d->src_next += nb;
    if (skip >= nb || d->overshoot)
        return KTH_OK;
    return convert_append(d, skip, nb - skip);
}

/* Trims declared delay once: a joined splice's first packets keep only their end padding. */
static void prepare_packet(kth_decoder *d)
{
    size_t size = 0;
    uint8_t *skip = av_packet_get_side_data(d->pkt, AV_PKT_DATA_SKIP_SAMPLES, &size);
    if (!skip || size < 8)
        return;
    uint32_t start = (uint32_t)skip[0] | (uint32_t)skip[1] << 8 | (uint32_t)skip[2] << 16 |
                     (uint32_t)skip[3] << 24;
    uint32_t end = (uint32_t)skip[4] | (uint32_t)skip[5] << 8 | (uint32_t)skip[6] << 16 |
                   (uint32_t)skip[7] << 24;
    if (d->joined && start > 0) {
        memset(skip, 0, 4);
        start = 0;
    }
    if (start == 0 && end == 0)
        return;
    kth_event_decode ev = {
        .from_variant = d->variant,
        .to_variant = d->variant,
        .frame = d->position + (d->pcm_frames - d->pcm_off),
        .frames = (uint64_t)start + end,
        .sample_rate = (uint32_t)d->codec->sample_rate,
        .channels = (uint32_t)d->codec->ch_layout.nb_channels,
    };
    decode_publish(d, KTH_EVENT_DECODER_TRIMMED, &ev);
}

/* Reads the next packet of the splice into the codec decoder (or ends the splice). */
static kth_status feed(kth_decoder *d)
{
    int r = av_read_frame(d->fmt, d->pkt);
    if (r == AVERROR_EOF)
        return join_end_of_splice(d);
    if (r < 0)
        return decode_fail_av(d, r, "reading a packet");
    if (d->pkt->stream_index != d->index) {
        av_packet_unref(d->pkt);
        return KTH_OK;
    }
    prepare_packet(d);
    r = avcodec_send_packet(d->codec, d->pkt);
    av_packet_unref(d->pkt);
    /* A damaged packet is skipped, as FFmpeg's own decode skips it. */
    if (r < 0 && r != AVERROR_INVALIDDATA)
        return decode_fail_av(d, r, "decoding");
    return KTH_OK;
}

/* Decodes until the PCM buffer holds frames, the decode has ended, or it failed. */
static kth_status produce(kth_decoder *d)
{
    for (long step = 0; step < MAX_STEPS; step++) {
        if (d->failure != KTH_OK)
            return d->failure;
        if (d->pcm_frames > d->pcm_off || d->ended || d->overshoot)
            return KTH_OK;
        int r = avcodec_receive_frame(d->codec, d->frame);
        if (r == 0) {
            kth_status st = decode_take_frame(d);
            av_frame_unref(d->frame);
            if (st != KTH_OK)
                return st;
            continue;
        }
        if (r == AVERROR_EOF && d->draining) {
            kth_status st = convert_flush(d);
            d->ended = true;
            return st;
        }
        if (r != AVERROR(EAGAIN))
            return decode_fail_av(d, r, "decoding");
        kth_status st = feed(d);
        if (st != KTH_OK)
            return st;
    }
    return decode_fail(d, KTH_ERR_FORMAT, "no audio came out of %d packets", MAX_STEPS);
}

void kth_decoder_options_init(kth_decoder_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
}

/* Reads the caller's options (NULL: defaults) at their own size into *o and checks them. */
static kth_status read_options(const kth_decoder_options *given, kth_decoder_options *o)
{
    kth_status st =
        platform_options_copy(o, sizeof *o, given, PLATFORM_OPTIONS_END(kth_decoder_options, bus));
    if (st != KTH_OK)
        return st;
    if (o->sample_format == KTH_SAMPLE_DEFAULT)
        o->sample_format = KTH_SAMPLE_S16;
    if (o->sample_format != KTH_SAMPLE_S16 && o->sample_format != KTH_SAMPLE_F32)
        return KTH_ERR_INVALID_ARG;
    if (o->channels > DECODE_MAX_CHANNELS || o->sample_rate > 768000)
        return KTH_ERR_INVALID_ARG;
    return KTH_OK;
}

static void copy_error(const kth_decoder *d, const char *url, char *err, size_t errlen)
{
    if (!err || errlen == 0)
        return;
    if (url && !strstr(d->error, url))
        snprintf(err, errlen, "%s: %s", url, d->error);
    else
        snprintf(err, errlen, "%s", d->error);
}

/* Opens the demuxer and the codec decoder and decodes the first frame. */
static kth_status start(kth_decoder *d)
{
    d->index = -1;
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (!d->pkt || !d->frame)
        return decode_fail(d, KTH_ERR_NO_MEMORY, "out of memory");
    kth_status st = kth_avio_new(d->stream, 0, &d->io);
    if (st != KTH_OK)
        return decode_fail(d, st, "out of memory");
    d->variant = kth_stream_current_variant(d->stream);
    st = demux_open(d);
    if (st == KTH_OK)
        st = demux_open_codec(d);
    if (st == KTH_OK)
        st = produce(d);
    if (st == KTH_OK && d->frame_bytes == 0)
        st = decode_fail(d, KTH_ERR_FORMAT, "the stream holds no decodable audio");
    return st;
}

static kth_status open_common(kth_stream *stream, bool owns, kth_bus *bus,
                              const kth_decoder_options *opts, const char *url, kth_decoder **out,
                              char *err, size_t errlen)
{
    kth_decoder *d = platform_calloc(1, sizeof *d);
    if (!d) {
        if (owns)
            kth_stream_close(stream);
        return KTH_ERR_NO_MEMORY;
    }
    d->stream = stream;
    d->owns_stream = owns;
    d->bus = kth_bus_ref(bus);
    d->want = *opts;
    kth_status st = start(d);
    if (st != KTH_OK) {
        copy_error(d, url, err, errlen);
        kth_decoder_close(d);
        return st;
    }
    *out = d;
    return KTH_OK;
}

kth_status kth_decoder_open(const char *url, const kth_stream_options *stream_opts,
                            const kth_decoder_options *opts, kth_decoder **out, char *err,
                            size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out || !url || !url[0])
        return KTH_ERR_INVALID_ARG;
    *out = NULL;
    kth_decoder_options want;
    kth_stream_options so;
    kth_status st = read_options(opts, &want);
    if (st == KTH_OK)
        st = platform_options_copy(&so, sizeof so, stream_opts,
                                   PLATFORM_OPTIONS_END(kth_stream_options, hls));
    if (st != KTH_OK)
        return st;
    kth_stream *s = NULL;
    st = kth_stream_open(url, stream_opts, &s, err, errlen);
    if (st != KTH_OK)
        return st;
    kth_bus *bus = want.bus ? want.bus : so.bus;
    return open_common(s, true, bus, &want, url, out, err, errlen);
}

kth_status kth_decoder_open_stream(kth_stream *stream, const kth_decoder_options *opts,
                                   kth_decoder **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out || !stream)
        return KTH_ERR_INVALID_ARG;
    *out = NULL;
    kth_decoder_options want;
    kth_status st = read_options(opts, &want);
    if (st != KTH_OK)
        return st;
    return open_common(stream, false, want.bus, &want, NULL, out, err, errlen);
}

void kth_decoder_close(kth_decoder *d)
{
    if (!d)
        return;
    demux_close(d);
    avcodec_free_context(&d->codec);
    avcodec_parameters_free(&d->codec_par);
    av_packet_free(&d->pkt);
    av_frame_free(&d->frame);
    convert_free(d);
    kth_avio_free(d->io);
    if (d->owns_stream)
        kth_stream_close(d->stream);
    kth_bus_unref(d->bus);
    platform_free(d);
}

int64_t kth_decoder_read(kth_decoder *d, void *buf, size_t frames)
{
    if (!d || !buf || frames == 0)
        return KTH_ERR_INVALID_ARG;
    if (d->pcm_frames == d->pcm_off && !d->ended) {
        if (d->failure != KTH_OK)
            return d->failure;
        kth_status st = produce(d);
        if (st != KTH_OK && d->pcm_frames == d->pcm_off)
            return st;
    }
    size_t n = d->pcm_frames - d->pcm_off;
    if (n == 0)
        return 0; /* ended */
    if (n > frames)
        n = frames;
    memcpy(buf, d->pcm + d->pcm_off * d->frame_bytes, n * d->frame_bytes);
    d->pcm_off += n;
    d->position += n;
    /* What was handed out is played, as far as the decoder knows: ABR judges the buffer from
     * here, not from the bytes the demuxer read ahead (nothing to tell a single file). */
    if (d->out.sample_rate)
        (void)kth_stream_abr_report_played(d->stream, (double)d->position / d->out.sample_rate);
    return (int64_t)n;
}

/* Moves the stream (HLS) or the demuxer (a single file, whose demuxer knows its own timeline
 * and must not lose the header it read) to a point at or before `seconds`. */
static kth_status move_to(kth_decoder *d, double seconds)
{
    kth_seek_anchor a;
    kth_status st = KTH_ERR_UNSUPPORTED;
    if (kth_stream_current_variant(d->stream) >= 0)
        st = kth_stream_seek_time(d->stream, seconds, &a);
    if (st == KTH_OK) {
        st = kth_avio_splice_at(d->io, a.offset);
        if (st != KTH_OK)
            return decode_fail(d, st, "moving to stream offset %llu", (unsigned long long)a.offset);
        st = demux_open(d);
        if (st != KTH_OK)
            return st;
        d->variant = kth_stream_current_variant(d->stream);
        if (!demux_same_config(d))
            return demux_open_codec(d);
        avcodec_flush_buffers(d->codec);
        return KTH_OK;
    }
    if (st != KTH_ERR_UNSUPPORTED)
        return decode_fail(d, st, "seeking to %.3f s: %s", seconds, kth_strerror(st));
    int rate = d->codec->sample_rate;
    int64_t ts = av_rescale_q(d->origin_pts, d->origin_tb, d->st->time_base) +
                 av_rescale_q(llround(seconds * rate), (AVRational){1, rate}, d->st->time_base);
    int r = av_seek_frame(d->fmt, d->index, ts, AVSEEK_FLAG_BACKWARD);
    if (r < 0)
        return decode_fail_av(d, r, "seeking");
    avcodec_flush_buffers(d->codec);
    return KTH_OK;
}

/* A frame count of preroll before a demuxer seek: what a codec needs to settle (the MP3 bit
 * reservoir, the AAC overlap). */
static double preroll_seconds(const kth_decoder *d)
{
    int frame = d->codec->frame_size > 0 ? d->codec->frame_size : 2048;
    return 2.0 * frame / d->codec->sample_rate;
}

kth_status kth_decoder_seek_time(kth_decoder *d, double seconds)
{
    if (!d || !(seconds >= 0) || seconds > 1e9)
        return KTH_ERR_INVALID_ARG;
    if (d->failure != KTH_OK)
        return d->failure;
    bool hls = kth_stream_variant_count(d->stream) > 0;
    int rate = d->codec->sample_rate;
    double at = hls ? seconds : seconds - preroll_seconds(d);
    for (int attempt = 0; attempt < SEEK_RETRIES; attempt++) {
        convert_reset(d);
        d->ended = d->draining = false;
        d->joined = false;
        d->resync = true;
        d->overshoot = 0;
        d->discard_to = llround(seconds * rate);
        kth_status st = move_to(d, at > 0 ? at : 0);
        if (st == KTH_OK)
            st = produce(d);
        if (st != KTH_OK)
            return st;
        if (!d->overshoot || at <= 0)
            break;
        /* The point was after the time: start earlier by what it overshot, and a little. */
        at -= (double)d->overshoot / rate + (hls ? 0.5 : preroll_seconds(d));
    }
    if (d->overshoot) {
        /* Even the start is later than the time: play from where the media begins. */
        d->overshoot = 0;
        d->discard_to = d->src_next;
    }
    d->position = (uint64_t)llround(seconds * d->out.sample_rate);
    return KTH_OK;
}

uint64_t kth_decoder_position(kth_decoder *d)
{
    return d ? d->position : 0;
}

double kth_decoder_position_seconds(kth_decoder *d)
{
    return d && d->out.sample_rate ? (double)d->position / d->out.sample_rate : 0.0;
}

kth_status kth_decoder_format(kth_decoder *d, kth_pcm_format *format)
{
    if (!d || !format)
        return KTH_ERR_INVALID_ARG;
    *format = d->out;
    return KTH_OK;
}

size_t kth_decoder_frame_bytes(kth_decoder *d)
{
    return d ? d->frame_bytes : 0;
}

kth_stream *kth_decoder_stream(kth_decoder *d)
{
    return d ? d->stream : NULL;
}

void kth_decoder_cancel(kth_decoder *d)
{
    if (d)
        kth_stream_cancel(d->stream);
}

size_t kth_decoder_last_error(kth_decoder *d, char *buf, size_t size)
{
    if (!d)
        return 0;
    int n = snprintf(buf, size, "%s", d->failure != KTH_OK ? d->error : "");
    return n > 0 ? (size_t)n : 0;
}
