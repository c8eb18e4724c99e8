/*
 * demux.c — a demuxer per splice, with bounded probing, and the codec decoder for its audio
 * stream.
 *
 * Fast start: format detection and stream-info discovery read at most PROBE_BYTES and
 * ANALYZE_US of media, and stream-info discovery (which decodes a few packets ahead) is skipped
 * when the container's header already says everything the codec decoder needs.
 */
#include "decode/decode_internal.h"

#include <libavutil/avutil.h>
#include <libavutil/mem.h>

#include <string.h>

#define PROBE_BYTES (64 * 1024)
#define ANALYZE_US  500000

void demux_close(kth_decoder *d)
{
    if (d->fmt)
        avformat_close_input(&d->fmt);
    d->st = NULL;
    d->index = -1;
}

/* True when the header gave what a codec decoder needs without looking at packets. */
static bool params_complete(const AVCodecParameters *p)
{
    if (p->codec_id == AV_CODEC_ID_NONE || p->sample_rate <= 0 || p->ch_layout.nb_channels <= 0)
        return false;
    /* AAC and FLAC need their configuration (AudioSpecificConfig, STREAMINFO) unless the
     * bitstream carries it in every frame (ADTS, which has no extradata). */
    if ((p->codec_id == AV_CODEC_ID_FLAC || p->codec_id == AV_CODEC_ID_ALAC) &&
        p->extradata_size == 0)
        return false;
    return true;
}

static kth_status pick_audio_stream(kth_decoder *d)
{
    int idx = av_find_best_stream(d->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (idx < 0)
        return decode_fail(d, KTH_ERR_FORMAT, "no audio stream in the bytes at stream offset %llu",
                           (unsigned long long)kth_avio_splice_start(d->io));
    for (unsigned i = 0; i < d->fmt->nb_streams; i++)
        if ((int)i != idx)
            d->fmt->streams[i]->discard = AVDISCARD_ALL;
    d->index = idx;
    d->st = d->fmt->streams[idx];
    return KTH_OK;
}

/* The containers a decoder may meet in a kithara stream. Playlist and concatenation demuxers
 * (hls, concat, ...) are left out: they would open further files named by remote bytes. */
static const char *const allowed_formats =
    "mov,mpegts,aac,mp3,flac,wav,ogg,caf,matroska,ac3,eac3,aiff,w64,loas";

/* The audio stream, with stream-info discovery only when the header does not say enough. */
static kth_status find_audio(kth_decoder *d)
{
    d->index = av_find_best_stream(d->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (d->index >= 0 && params_complete(d->fmt->streams[d->index]->codecpar))
        return pick_audio_stream(d);
    int r = avformat_find_stream_info(d->fmt, NULL);
    if (r < 0)
        return decode_fail_av(d, r, "reading the stream parameters");
    return pick_audio_stream(d);
}

kth_status demux_open(kth_decoder *d)
{
    demux_close(d);
    AVFormatContext *fmt = avformat_alloc_context();
    if (!fmt || !(fmt->format_whitelist = av_strdup(allowed_formats))) {
        avformat_free_context(fmt);
        return decode_fail(d, KTH_ERR_NO_MEMORY, "out of memory opening a demuxer");
    }
    fmt->pb = kth_avio_context(d->io);
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    fmt->probesize = PROBE_BYTES;
    fmt->format_probesize = PROBE_BYTES;
    fmt->max_analyze_duration = ANALYZE_US;
    /* HLS moves by kth_stream_seek_time, never through the demuxer's index: without one, mov
     * reads the splice as it plays instead of walking every fragment while it opens (which
     * would fetch the whole variant before the first frame). */
    if (kth_stream_variant_count(d->stream) > 0)
        fmt->flags |= AVFMT_FLAG_IGNIDX;
    int r = avformat_open_input(&fmt, NULL, NULL, NULL);
    if (r < 0)
        return decode_fail_av(d, r, "opening the demuxer");
    d->fmt = fmt;
    return find_audio(d);
}

kth_status demux_open_codec(kth_decoder *d)
{
    const AVCodecParameters *par = d->st->codecpar;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec)
        return decode_fail(d, KTH_ERR_UNSUPPORTED, "no decoder for codec %s",
                           avcodec_get_name(par->codec_id));
    avcodec_free_context(&d->codec);
    if (!d->codec_par)
        d->codec_par = avcodec_parameters_alloc();
    d->codec = avcodec_alloc_context3(codec);
    if (!d->codec || !d->codec_par)
        return decode_fail(d, KTH_ERR_NO_MEMORY, "out of memory opening a decoder");
    int r = avcodec_parameters_to_context(d->codec, par);
    if (r >= 0)
        r = avcodec_parameters_copy(d->codec_par, par);
    if (r < 0)
        return decode_fail_av(d, r, "configuring the decoder");
    d->codec->pkt_timebase = d->st->time_base;
    d->codec->thread_count = 1;
    r = avcodec_open2(d->codec, codec, NULL);
    if (r < 0)
        return decode_fail_av(d, r, "opening the decoder");
    return KTH_OK;
}

bool demux_same_config(const kth_decoder *d)
{
    const AVCodecParameters *a = d->codec_par, *b = d->st->codecpar;
    if (!a || a->codec_id != b->codec_id || a->sample_rate != b->sample_rate ||
        a->ch_layout.nb_channels != b->ch_layout.nb_channels ||
        a->extradata_size != b->extradata_size)
        return false;
    return a->extradata_size == 0 ||
           memcmp(a->extradata, b->extradata, (size_t)a->extradata_size) == 0;
}

int64_t demux_frame_of(const kth_decoder *d, int64_t pts)
{
    AVRational tb = d->st->time_base;
    AVRational frames = {1, d->codec->sample_rate};
    int64_t origin = av_rescale_q(d->origin_pts, d->origin_tb, tb);
    return av_rescale_q_rnd(pts - origin, tb, frames, AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
}
