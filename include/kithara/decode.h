/*
 * kithara/decode.h — PCM out of any kithara stream: kth_decoder.
 *
 * A decoder opens a URL (or takes an open kth_stream), demuxes and decodes it with FFmpeg and
 * returns interleaved PCM in the caller's format: 16-bit signed or 32-bit float samples, at the
 * source's rate and channel count or at ones the caller fixes (libswresample converts). The
 * output format is fixed when the decoder opens and never changes afterwards, whatever the
 * stream does.
 *
 * It hides every variant fence and splice of the stream:
 * - At an HLS variant switch whose new variant has the same codec configuration (codec, sample
 *   rate, channels, extradata), the codec decoder is kept and fed the new variant's packets:
 *   the PCM before the switch is the old variant's own decode, the PCM from two codec frames
 *   after it the new variant's own decode, and no frame is lost or doubled.
 * - Otherwise a new codec decoder is started at the switch; the frame count stays exact, and
 *   its first codec frame is blended from the last sample before the join, so the join has no
 *   step.
 * - Encoder delay and padding that the file declares (LAME/Xing, iTunSMPB, MP4 edit lists) are
 *   trimmed, as FFmpeg's own decode trims them; joins and seeks do not trim again.
 * - kth_decoder_seek_time(T) makes the next frame returned frame round(T × rate) of a whole
 *   decode.
 *
 * Events (on the bus of the decoder options, else of the stream's options when the decoder
 * opened the URL): KTH_EVENT_DECODER_KEPT / KTH_EVENT_DECODER_RESTARTED at each switch,
 * KTH_EVENT_DECODER_FORMAT when the source's format changes, KTH_EVENT_DECODER_TRIMMED when
 * declared delay or padding was dropped (payload.decode).
 *
 * Available when kithara was built with FFmpeg (its pkg-config file then requires libavformat,
 * libavcodec, libswresample and libavutil).
 *
 * Threads: one thread reads (kth_decoder_read, kth_decoder_seek_time and the other calls);
 * kth_decoder_cancel may be called from any thread. kth_decoder_close must not race another
 * call: cancel, join the reader, then close.
 */
#ifndef KITHARA_DECODE_H
#define KITHARA_DECODE_H

#include <kithara/events.h>
#include <kithara/status.h>
#include <kithara/stream.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kth_decoder kth_decoder;

/* Sample formats of the PCM a decoder returns (interleaved, native byte order). */
typedef enum kth_sample_format {
    KTH_SAMPLE_DEFAULT = 0, /* in options: KTH_SAMPLE_S16 */
    KTH_SAMPLE_S16 = 1,     /* int16_t */
    KTH_SAMPLE_F32 = 2,     /* float, nominally in [-1, 1] */
} kth_sample_format;

/* The PCM a decoder returns. One frame is one sample for each channel. */
typedef struct kth_pcm_format {
    kth_sample_format sample_format;
    uint32_t sample_rate; /* Hz */
    uint32_t channels;
} kth_pcm_format;

/* Options. Every field left at zero takes its default, so `kth_decoder_options o = {0};` (or
 * kth_decoder_options_init) decodes to s16 at the source's rate and channel count. `size` is
 * sizeof(kth_decoder_options) as the caller's header has it (kth_decoder_options_init sets it;
 * 0 stands for the fields of version 1, all of those below), so a program built against an
 * older header keeps working when fields are added at the end. */
typedef struct kth_decoder_options {
    size_t size;
    kth_sample_format sample_format; /* 0 (KTH_SAMPLE_DEFAULT): KTH_SAMPLE_S16 */
    /* 0: the source's (the first decoded frame's); else the rate PCM is converted to. */
    uint32_t sample_rate;
    /* 0: the source's; else the channel count (default layout of that count) to mix to. */
    uint32_t channels;
    /* The bus for the decoder's events (borrowed; the decoder takes a reference). NULL: the
     * stream options' bus when kth_decoder_open opens the stream, else none. */
    kth_bus *bus;
} kth_decoder_options;

/* Fills *opts with the defaults: all zero but size. Any thread. */
KTH_API void kth_decoder_options_init(kth_decoder_options *opts);

/* Opens `url` as kth_stream_open does (stream_opts may be NULL: defaults), opens a demuxer and
 * a codec decoder on it and decodes the first frame, so the output format is known when this
 * returns. `opts` may be NULL (defaults; read only during the call). On success *out is a new
 * decoder that owns the stream; close it with kth_decoder_close. Returns kth_stream_open's
 * failures, KTH_ERR_FORMAT (no audio stream, or FFmpeg cannot demux or decode it),
 * KTH_ERR_UNSUPPORTED (no decoder for the codec; options of a newer header that set a field
 * this kithara lacks), KTH_ERR_INVALID_ARG (a bad option, an options size smaller than a
 * size_t), KTH_ERR_NO_MEMORY, or the stream's failure while reading the first bytes. When it fails
 * and `err` is not NULL, a sentence naming the URL and the cause is written there (truncated to
 * errlen). Any thread. */
KTH_API kth_status kth_decoder_open(const char *url, const kth_stream_options *stream_opts,
                                    const kth_decoder_options *opts, kth_decoder **out, char *err,
                                    size_t errlen);

/* Like kth_decoder_open over an open stream (borrowed: it must outlive the decoder, and nothing
 * else may read or seek it meanwhile). Decoding starts at the stream's current position. */
KTH_API kth_status kth_decoder_open_stream(kth_stream *stream, const kth_decoder_options *opts,
                                           kth_decoder **out, char *err, size_t errlen);

/* Closes the decoder (and its stream when it opened it); NULL-safe. */
KTH_API void kth_decoder_close(kth_decoder *dec);

/* Decodes up to `frames` frames into buf (room for frames × channels samples of the output
 * format), blocking until at least one frame, the end, or a failure. Returns the number of
 * frames (> 0), 0 at the end of the stream, or a negative kth_status: KTH_ERR_CANCELLED,
 * KTH_ERR_TIMEOUT, the stream's failure (KTH_ERR_HTTP, KTH_ERR_NETWORK, KTH_ERR_DECRYPT, ...),
 * KTH_ERR_FORMAT (the bytes do not decode), KTH_ERR_INVALID_ARG (NULL, frames == 0). Frames
 * decoded before a failure are returned first; a failure is then returned by every later
 * read. Reader thread. */
KTH_API int64_t kth_decoder_read(kth_decoder *dec, void *buf, size_t frames);

/* Moves so that the next frame read is frame round(seconds × rate) of a whole decode (rate:
 * the output rate). HLS streams move with kth_stream_seek_time (nothing before the segment is
 * fetched); other streams through the demuxer's index. A time past the end leaves the decoder
 * at the end (the next read returns 0). Returns KTH_OK, KTH_ERR_INVALID_ARG (negative or NaN),
 * the stream's failure, KTH_ERR_FORMAT (the demuxer could not seek), KTH_ERR_CANCELLED.
 * Reader thread. */
KTH_API kth_status kth_decoder_seek_time(kth_decoder *dec, double seconds);

/* The position: frames returned since the start of the media (a seek sets it). Reader thread. */
KTH_API uint64_t kth_decoder_position(kth_decoder *dec);

/* The position in seconds (position / output rate). Reader thread. */
KTH_API double kth_decoder_position_seconds(kth_decoder *dec);

/* The output format. Returns KTH_OK or KTH_ERR_INVALID_ARG. Any thread. */
KTH_API kth_status kth_decoder_format(kth_decoder *dec, kth_pcm_format *format);

/* Bytes per output frame (channels × sample size). Any thread. */
KTH_API size_t kth_decoder_frame_bytes(kth_decoder *dec);

/* The stream the decoder reads (borrowed), e.g. for kth_stream_abr_set_manual. Any thread. */
KTH_API kth_stream *kth_decoder_stream(kth_decoder *dec);

/* Cancels the decoder: a blocked read returns KTH_ERR_CANCELLED promptly, and so does every
 * later read (it cancels the stream). Idempotent. Any thread. */
KTH_API void kth_decoder_cancel(kth_decoder *dec);

/* Copies the last failure's detail (URL, offset, what FFmpeg said) into buf and returns the
 * length it has (like snprintf). Empty when nothing failed. Reader thread. */
KTH_API size_t kth_decoder_last_error(kth_decoder *dec, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_DECODE_H */
