/*
 * convert.c — decoded frames into the caller's PCM format (libswresample), the buffer of
 * converted frames not yet returned, and the blend that joins a restarted codec decoder.
 *
 * The output format is fixed by the first decoded frame (and the caller's options) and never
 * changes; a source whose rate or channels change later gets a new resampler, after the old
 * one's delayed samples were flushed, so no frame is lost at the change.
 */
#include "decode/decode_internal.h"
#include "platform/mem.h"

#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

void convert_free(kth_decoder *d)
{
    swr_free(&d->swr);
    av_channel_layout_uninit(&d->swr_in_layout);
    av_channel_layout_uninit(&d->out_layout);
    platform_free(d->pcm);
    d->pcm = NULL;
}

void convert_reset(kth_decoder *d)
{
    swr_free(&d->swr);
    d->pcm_frames = d->pcm_off = 0;
    d->blend_next = false;
}

/* Fixes the output format from the caller's wishes and the first frame. */
static kth_status setup_output(kth_decoder *d, const AVFrame *f)
{
    d->out.sample_format =
        d->want.sample_format == KTH_SAMPLE_F32 ? KTH_SAMPLE_F32 : KTH_SAMPLE_S16;
    d->out_format = d->out.sample_format == KTH_SAMPLE_F32 ? AV_SAMPLE_FMT_FLT : AV_SAMPLE_FMT_S16;
    d->out.sample_rate = d->want.sample_rate ? d->want.sample_rate : (uint32_t)f->sample_rate;
    uint32_t src_ch = (uint32_t)f->ch_layout.nb_channels;
    d->out.channels = d->want.channels ? d->want.channels : src_ch;
    if (d->out.channels == 0 || d->out.channels > DECODE_MAX_CHANNELS || d->out.sample_rate == 0)
        return decode_fail(d, KTH_ERR_FORMAT, "the decoded audio has %u channels at %d Hz", src_ch,
                           f->sample_rate);
    if (d->out.channels == src_ch && f->ch_layout.order != AV_CHANNEL_ORDER_UNSPEC) {
        if (av_channel_layout_copy(&d->out_layout, &f->ch_layout) < 0)
            return decode_fail(d, KTH_ERR_NO_MEMORY, "out of memory");
    } else {
        av_channel_layout_default(&d->out_layout, (int)d->out.channels);
    }
    d->frame_bytes = d->out.channels * (size_t)av_get_bytes_per_sample(d->out_format);
    return KTH_OK;
}

/* A resampler for frames like f, replacing one made for another input format. */
static kth_status ensure_resampler(kth_decoder *d, const AVFrame *f)
{
    if (d->swr && d->swr_in_rate == f->sample_rate && d->swr_in_format == f->format &&
        av_channel_layout_compare(&d->swr_in_layout, &f->ch_layout) == 0)
        return KTH_OK;
    if (d->swr) {
        kth_status st = convert_flush(d);
        if (st != KTH_OK)
            return st;
        swr_free(&d->swr);
    }
    /* Zeroed: a copy into a layout first frees what the layout held. */
    AVChannelLayout in_layout = {0};
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&in_layout, f->ch_layout.nb_channels);
    else if (av_channel_layout_copy(&in_layout, &f->ch_layout) < 0)
        return decode_fail(d, KTH_ERR_NO_MEMORY, "out of memory");
    int r = swr_alloc_set_opts2(&d->swr, &d->out_layout, d->out_format, (int)d->out.sample_rate,
                                &in_layout, f->format, f->sample_rate, 0, NULL);
    av_channel_layout_uninit(&in_layout);
    if (r >= 0)
        r = swr_init(d->swr);
    if (r < 0)
        return decode_fail_av(d, r, "setting up the sample conversion");
    av_channel_layout_uninit(&d->swr_in_layout);
    av_channel_layout_copy(&d->swr_in_layout, &f->ch_layout);
    d->swr_in_rate = f->sample_rate;
    d->swr_in_format = f->format;
    return KTH_OK;
}

/* Room for `more` frames after those buffered, dropping the ones already returned. */
static kth_status reserve(kth_decoder *d, size_t more)
{
    if (d->pcm_off > 0) {
        memmove(d->pcm, d->pcm + d->pcm_off * d->frame_bytes,
                (d->pcm_frames - d->pcm_off) * d->frame_bytes);
        d->pcm_frames -= d->pcm_off;
        d->pcm_off = 0;
    }
    if (d->pcm_frames + more <= d->pcm_cap)
        return KTH_OK;
    size_t cap = d->pcm_cap ? d->pcm_cap : 4096;
    while (cap < d->pcm_frames + more)
        cap *= 2;
    uint8_t *p = platform_realloc(d->pcm, cap * d->frame_bytes);
    if (!p)
        return decode_fail(d, KTH_ERR_NO_MEMORY, "out of memory buffering PCM");
    d->pcm = p;
    d->pcm_cap = cap;
    return KTH_OK;
}

static float sample_at(const kth_decoder *d, const uint8_t *frame, uint32_t c)
{
    if (d->out.sample_format == KTH_SAMPLE_F32) {
        float v;
        memcpy(&v, frame + c * sizeof v, sizeof v);
        return v;
    }
    int16_t v;
    memcpy(&v, frame + c * sizeof v, sizeof v);
    return (float)v;
}

static void set_sample(const kth_decoder *d, uint8_t *frame, uint32_t c, float v)
{
    if (d->out.sample_format == KTH_SAMPLE_F32) {
        memcpy(frame + c * sizeof v, &v, sizeof v);
        return;
    }
    float r = roundf(v);
    int16_t s = (int16_t)(r > 32767.f ? 32767.f : r < -32768.f ? -32768.f : r);
    memcpy(frame + c * sizeof s, &s, sizeof s);
}

/* Blends the first n frames at p from the last frame before them: the new decoder's first
 * codec frame rises from where the old one stopped, so the join has no step. */
static void blend_from_last(kth_decoder *d, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float w = (float)(i + 1) / (float)(n + 1);
        uint8_t *frame = p + i * d->frame_bytes;
        for (uint32_t c = 0; c < d->out.channels; c++)
            set_sample(d, frame, c, d->last_out[c] * (1.f - w) + sample_at(d, frame, c) * w);
    }
}

/* Appends what swr_convert gives for the input planes `in` (nb samples; NULL flushes). */
static kth_status convert_into_buffer(kth_decoder *d, const uint8_t **in, int nb)
{
    int max_out = swr_get_out_samples(d->swr, nb);
    if (max_out < 0)
        return decode_fail_av(d, max_out, "converting samples");
    kth_status st = reserve(d, (size_t)max_out + 1);
    if (st != KTH_OK)
        return st;
    uint8_t *out = d->pcm + d->pcm_frames * d->frame_bytes;
    int got = swr_convert(d->swr, &out, max_out + 1, in, nb);
    if (got < 0)
        return decode_fail_av(d, got, "converting samples");
    if (got == 0)
        return KTH_OK;
    if (d->blend_next && d->have_last_out) {
        blend_from_last(d, out, (size_t)got);
        d->blend_next = false;
    }
    const uint8_t *last = out + (size_t)(got - 1) * d->frame_bytes;
    for (uint32_t c = 0; c < d->out.channels; c++)
        d->last_out[c] = sample_at(d, last, c);
    d->have_last_out = true;
    d->pcm_frames += (size_t)got;
    return KTH_OK;
}

kth_status convert_append(kth_decoder *d, int skip, int nb)
{
    const AVFrame *f = d->frame;
    kth_status st = d->frame_bytes ? KTH_OK : setup_output(d, f);
    if (st == KTH_OK)
        st = ensure_resampler(d, f);
    if (st != KTH_OK)
        return st;
    const uint8_t *in[DECODE_MAX_CHANNELS];
    int bps = av_get_bytes_per_sample(f->format);
    int channels = f->ch_layout.nb_channels;
    if (channels <= 0 || channels > DECODE_MAX_CHANNELS)
        return decode_fail(d, KTH_ERR_FORMAT, "a decoded frame has %d channels", channels);
    if (av_sample_fmt_is_planar(f->format)) {
        for (int c = 0; c < channels; c++)
            in[c] = f->extended_data[c] + (size_t)skip * (size_t)bps;
    } else {
        in[0] = f->extended_data[0] + (size_t)skip * (size_t)bps * (size_t)channels;
    }
    return convert_into_buffer(d, in, nb);
}

kth_status convert_flush(kth_decoder *d)
{
    if (!d->swr)
        return KTH_OK;
    for (int guard = 0; guard < 64; guard++) {
        size_t before = d->pcm_frames - d->pcm_off;
        kth_status st = convert_into_buffer(d, NULL, 0);
        if (st != KTH_OK)
            return st;
        if (d->pcm_frames - d->pcm_off == before)
            break;
    }
    return KTH_OK;
}
