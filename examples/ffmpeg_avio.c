/* ffmpeg_avio.c: a program with its own FFmpeg pipeline reading a kithara stream through
 * kithara/ffmpeg.h, with the pattern for HLS variant fences. Prints the frames decoded.
 * cc ffmpeg_avio.c $(pkg-config --cflags --libs kithara libavformat libavcodec libavutil) */
#include <kithara/ffmpeg.h>
#include <kithara/kithara.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <stdio.h>

/* Opens a demuxer on the AVIO's current splice; returns its audio stream index or < 0. */
static int open_splice(kth_avio *io, AVFormatContext **fmt)
{
    *fmt = avformat_alloc_context();
    (*fmt)->pb = kth_avio_context(io);
    /* IGNIDX: mov would otherwise walk every fragment of an HLS variant while opening (this
     * program never seeks through the demuxer). */
    (*fmt)->flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_IGNIDX;
    if (avformat_open_input(fmt, NULL, NULL, NULL) < 0 || avformat_find_stream_info(*fmt, NULL) < 0)
        return -1;
    return av_find_best_stream(*fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
}

static AVCodecContext *open_codec(const AVStream *st)
{
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    avcodec_parameters_to_context(c, st->codecpar);
    c->pkt_timebase = st->time_base;
    return avcodec_open2(c, codec, NULL) < 0 ? NULL : c;
}

int main(int argc, char **argv)
{
    kth_stream *s;
    kth_avio *io;
    char err[512];
    if (argc < 2)
        return fprintf(stderr, "usage: ffmpeg_avio URL\n"), 2;
    if (kth_stream_open(argv[1], NULL, &s, err, sizeof err) != KTH_OK)
        return fprintf(stderr, "%s\n", err), 1;
    if (kth_avio_new(s, 0, &io) != KTH_OK)
        return 1;
    AVFormatContext *fmt;
    int idx = open_splice(io, &fmt);
    AVCodecContext *dec = idx >= 0 ? open_codec(fmt->streams[idx]) : NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    long long frames = 0;
    int splices = 1, r = dec ? 0 : -1;
    while (r >= 0) {
        r = av_read_frame(fmt, pkt);
        if (r == AVERROR_EOF && kth_avio_status(io) == KTH_ERR_VARIANT_CHANGE) {
            /* A variant fence: the old splice is over; demux the new one from its byte 0. */
            avformat_close_input(&fmt);
            kth_avio_next_splice(io);
            idx = open_splice(io, &fmt);
            if (idx < 0)
                break;
            const AVCodecParameters *p = fmt->streams[idx]->codecpar;
            if (p->codec_id != dec->codec_id || p->sample_rate != dec->sample_rate ||
                p->ch_layout.nb_channels != dec->ch_layout.nb_channels) {
                /* Another configuration: drain the old decoder and open one for the new. */
                avcodec_send_packet(dec, NULL);
                while (avcodec_receive_frame(dec, frame) == 0)
                    frames += frame->nb_samples;
                avcodec_free_context(&dec);
                if (!(dec = open_codec(fmt->streams[idx])))
                    break;
            } /* else the same decoder goes on: no frame lost or doubled */
            splices++;
            r = 0;
            continue;
        }
        if (r >= 0 && pkt->stream_index != idx) {
            av_packet_unref(pkt);
            continue;
        }
        avcodec_send_packet(dec, r >= 0 ? pkt : NULL); /* NULL at the end drains */
        av_packet_unref(pkt);
        while (avcodec_receive_frame(dec, frame) == 0)
            frames += frame->nb_samples; /* hand the PCM to your output */
    }
    printf("%lld frames in %d splice(s)\n", frames, splices);
    int failed = r != AVERROR_EOF;
    if (failed)
        fprintf(stderr, "%s\n", kth_strerror(kth_avio_status(io)));
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    kth_avio_free(io);
    kth_stream_close(s);
    kth_shutdown();
    return failed;
}
