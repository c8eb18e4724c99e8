/*
 * decode_internal.h — the parts of kth_decoder (kithara/decode.h) and how its files share them:
 *
 *   demux.c    opens a demuxer on the current splice with bounded probing, picks the audio
 *              stream, and opens codec decoders
 *   convert.c  libswresample into the output format, the PCM buffer, and the join blend
 *   join.c     what happens at the end of a splice: a variant fence (keep or restart the codec
 *              decoder), or the end of the stream (drain)
 *   decoder.c  the public API: open, read, seek_time, position, close
 *
 * Timeline: `src_next` is the index, in the source's frames of a whole decode, of the next
 * sample the codec decoder will produce. It is counted across joins (exact frame accounting),
 * and set from a frame's timestamp after a seek (`resync`), relative to `origin_pts`, the
 * timestamp of frame 0 of the whole decode.
 */
#ifndef KTH_DECODE_INTERNAL_H
#define KTH_DECODE_INTERNAL_H

#include <kithara/decode.h>
#include <kithara/ffmpeg.h>
#include <kithara/hls.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswresample/swresample.h>

#include <stdbool.h>
#include <stdint.h>

#define DECODE_ERR_MAX      768
#define DECODE_MAX_CHANNELS 64

struct kth_decoder {
    kth_stream *stream;
    bool owns_stream;
    kth_bus *bus;
    kth_avio *io;

    /* The demuxer of the current splice and its audio stream. */
    AVFormatContext *fmt;
    AVStream *st;
    int index;
    bool joined; /* this splice continues a decode: declared delay is not trimmed again */

    /* The codec decoder and the parameters it was opened with. */
    AVCodecContext *codec;
    AVCodecParameters *codec_par;
    AVPacket *pkt;
    AVFrame *frame;
    bool draining; /* the end of the stream was met: the codec decoder is being drained */
    bool ended;    /* everything decoded and converted */

    /* Conversion into the output format. */
    SwrContext *swr;
    int swr_in_rate;
    int swr_in_format;
    AVChannelLayout swr_in_layout;
    kth_decoder_options want; /* what the caller asked for (0: the source's) */
    kth_pcm_format out;       /* set from `want` and the first decoded frame */
    enum AVSampleFormat out_format;
    AVChannelLayout out_layout;
    size_t frame_bytes;
    uint8_t *pcm; /* converted frames not yet returned: [pcm_off, pcm_frames) */
    size_t pcm_cap;
    size_t pcm_frames;
    size_t pcm_off;
    bool blend_next;                     /* blend the next converted frames (a restart) */
    float last_out[DECODE_MAX_CHANNELS]; /* the last output frame, as float */
    bool have_last_out;

    /* Timeline. */
    uint64_t position;  /* output frames returned (or set by a seek) */
    int64_t src_next;   /* source frame index of the next decoded sample */
    bool resync;        /* src_next is to be taken from the next frame's timestamp */
    int64_t overshoot;  /* after a seek: frames the first decoded frame lies past the target */
    int64_t discard_to; /* decoded samples before this source index are dropped (a seek) */
    int64_t origin_pts; /* timestamp of frame 0 of the whole decode, in origin_tb */
    AVRational origin_tb;
    bool origin_known;
    int variant;

    kth_status failure;
    char error[DECODE_ERR_MAX];
};

/* Records a failure with a sentence (printf-style) and returns the status. */
kth_status decode_fail(kth_decoder *d, kth_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The kth_status for an FFmpeg error code met while demuxing or decoding: the AVIO's status
 * when the stream failed underneath, else KTH_ERR_FORMAT (with FFmpeg's sentence recorded). */
kth_status decode_fail_av(kth_decoder *d, int averr, const char *what);

/* decoder.c: places the decoded frame d->frame on the timeline, drops what a seek skips, and
 * converts the rest into the PCM buffer. */
kth_status decode_take_frame(kth_decoder *d);

/* Publishes a decoder event on the decoder's bus (if any). */
void decode_publish(kth_decoder *d, kth_event_kind kind, const kth_event_decode *payload);

/* demux.c: opens a demuxer on the AVIO's current splice (closing any previous one) and picks
 * its audio stream. */
kth_status demux_open(kth_decoder *d);
void demux_close(kth_decoder *d);
/* Opens a codec decoder for the current audio stream's parameters (replacing any). */
kth_status demux_open_codec(kth_decoder *d);
/* True when the current stream's parameters match those the codec decoder was opened with
 * (codec, sample rate, channels, extradata): it can go on decoding the new splice. */
bool demux_same_config(const kth_decoder *d);
/* Frames of the timestamp `pts` (stream time base) from frame 0 of the whole decode. */
int64_t demux_frame_of(const kth_decoder *d, int64_t pts);

/* convert.c: converts `nb` samples of frame d->frame from sample `skip` on and appends them to
 * the PCM buffer. The first call fixes the output format (d->want, else the frame's). */
kth_status convert_append(kth_decoder *d, int skip, int nb);
/* Flushes the resampler's delayed samples into the PCM buffer (at the end). */
kth_status convert_flush(kth_decoder *d);
/* Forgets what the resampler holds (after a seek). */
void convert_reset(kth_decoder *d);
void convert_free(kth_decoder *d);

/* join.c: handles the end of the current splice (av_read_frame returned AVERROR_EOF): a
 * variant fence continues into the next splice; the end of the stream starts the drain.
 * Returns KTH_OK or a failure. */
kth_status join_end_of_splice(kth_decoder *d);

#endif
