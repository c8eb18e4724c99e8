/*
 * decode_reference.h — FFmpeg's own decode of a file, for the decoder tests to compare with:
 * libavformat opens the file by path with its default options, libavcodec decodes every packet
 * of the best audio stream (trimming what the file declares, as it does by default), and
 * libswresample converts to interleaved samples, as the ffmpeg program does for `-f s16le` /
 * `-f f32le`.
 */
#ifndef KTH_TEST_DECODE_REFERENCE_H
#define KTH_TEST_DECODE_REFERENCE_H

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pcm_ref {
    uint8_t *data; /* interleaved frames */
    size_t frames;
    size_t frame_bytes;
    int rate;
    int channels;
} pcm_ref;

static inline int ref_append(pcm_ref *r, SwrContext *swr, const uint8_t **in, int nb)
{
    int max = swr_get_out_samples(swr, nb) + 1;
    uint8_t *p = realloc(r->data, (r->frames + (size_t)max) * r->frame_bytes);
    if (!p)
        return -1;
    r->data = p;
    uint8_t *out = p + r->frames * r->frame_bytes;
    int got = swr_convert(swr, &out, max, in, nb);
    if (got < 0)
        return -1;
    r->frames += (size_t)got;
    return got;
}

static inline int ref_take(pcm_ref *r, SwrContext **swr, AVFrame *f, enum AVSampleFormat fmt)
{
    if (!*swr) {
        r->rate = f->sample_rate;
        r->channels = f->ch_layout.nb_channels;
        r->frame_bytes = (size_t)r->channels * (size_t)av_get_bytes_per_sample(fmt);
        if (swr_alloc_set_opts2(swr, &f->ch_layout, fmt, f->sample_rate, &f->ch_layout, f->format,
                                f->sample_rate, 0, NULL) < 0 ||
            swr_init(*swr) < 0)
            return -1;
    }
    return ref_append(r, *swr, (const uint8_t **)f->extended_data, f->nb_samples) < 0 ? -1 : 0;
}

/* Decodes the file at `path` into *out as `fmt` (AV_SAMPLE_FMT_S16 or _FLT). Returns 0. */
static inline int decode_reference(const char *path, enum AVSampleFormat fmt, pcm_ref *out)
{
    memset(out, 0, sizeof *out);
    AVFormatContext *ic = NULL;
    if (avformat_open_input(&ic, path, NULL, NULL) < 0)
        return -1;
    int rc = -1;
    AVCodecContext *c = NULL;
    SwrContext *swr = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    if (avformat_find_stream_info(ic, NULL) < 0)
        goto done;
    int idx = av_find_best_stream(ic, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (idx < 0)
        goto done;
    const AVCodec *codec = avcodec_find_decoder(ic->streams[idx]->codecpar->codec_id);
    c = avcodec_alloc_context3(codec);
    avcodec_parameters_to_context(c, ic->streams[idx]->codecpar);
    c->pkt_timebase = ic->streams[idx]->time_base;
    if (avcodec_open2(c, codec, NULL) < 0)
        goto done;
    bool eof = false;
    while (!eof) {
        if (av_read_frame(ic, pkt) < 0) {
            avcodec_send_packet(c, NULL);
            eof = true;
        } else {
            if (pkt->stream_index == idx)
                avcodec_send_packet(c, pkt);
            av_packet_unref(pkt);
        }
        while (avcodec_receive_frame(c, f) == 0) {
            if (ref_take(out, &swr, f, fmt) < 0)
                goto done;
            av_frame_unref(f);
        }
    }
    while (swr && ref_append(out, swr, NULL, 0) > 0) {
    }
    rc = 0;
done:
    swr_free(&swr);
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&c);
    avformat_close_input(&ic);
    return rc;
}

/* Writes n bytes to a new temporary file and returns its path (caller frees and unlinks). */
static inline char *ref_temp_file(const void *data, size_t n, const char *suffix)
{
    char *path = malloc(256);
    snprintf(path, 256, "%s/kth-decode-ref-XXXXXX%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0) {
        free(path);
        return NULL;
    }
    FILE *f = fdopen(fd, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
    return path;
}

#endif
