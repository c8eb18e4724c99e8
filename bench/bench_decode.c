/*
 * bench_decode.c — the decoder's figures: CPU time to decode a 90 s AAC stream read through
 * kithara (a local file, as a cached stream reads) against the ffmpeg program decoding the same
 * file to s16le and against libav called directly (ratio ≤ 1.05 is the goal), and the time
 * from kth_decoder_open to the first PCM frame. Needs the ffmpeg program to make its input.
 *
 * usage: bench_decode [WORK_DIR]
 */
#include <kithara/kithara.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define ROUNDS 5

static double cpu_of(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Decodes the file through kth_decoder (s16); returns the frames. */
static long long decode_kithara(const char *path, double *first_pcm_s)
{
    kth_decoder_options o;
    kth_decoder_options_init(&o);
    kth_decoder *d;
    char err[512];
    double t0 = now_s();
    if (kth_decoder_open(path, NULL, &o, &d, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    static int16_t buf[8192 * 2];
    long long frames = 0;
    int64_t n = kth_decoder_read(d, buf, 8192);
    if (first_pcm_s)
        *first_pcm_s = now_s() - t0;
    while (n > 0) {
        frames += n;
        n = kth_decoder_read(d, buf, 8192);
    }
    kth_decoder_close(d);
    return frames;
}

/* Decodes the file with libav directly (no conversion: what the codec gives). */
static long long decode_libav(const char *path)
{
    AVFormatContext *ic = NULL;
    if (avformat_open_input(&ic, path, NULL, NULL) < 0 || avformat_find_stream_info(ic, NULL) < 0)
        exit(1);
    int idx = av_find_best_stream(ic, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    const AVCodec *codec = avcodec_find_decoder(ic->streams[idx]->codecpar->codec_id);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    avcodec_parameters_to_context(c, ic->streams[idx]->codecpar);
    avcodec_open2(c, codec, NULL);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    long long frames = 0;
    while (av_read_frame(ic, pkt) >= 0) {
        if (pkt->stream_index == idx && avcodec_send_packet(c, pkt) >= 0)
            while (avcodec_receive_frame(c, f) == 0)
                frames += f->nb_samples;
        av_packet_unref(pkt);
    }
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&c);
    avformat_close_input(&ic);
    return frames;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    char path[1024], cmd[4096];
    snprintf(path, sizeof path, "%s/kth-bench-decode-90s.ts", dir);
    snprintf(cmd, sizeof cmd,
             "ffmpeg -hide_banner -loglevel error -y -f lavfi -i "
             "'sine=frequency=440:duration=90:sample_rate=44100' -ac 2 -c:a aac -b:a 128k %s",
             path);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_decode: the ffmpeg program is needed to make the input\n");
        return 1;
    }
    av_log_set_level(AV_LOG_ERROR);
    decode_kithara(path, NULL); /* warm the page cache */
    double best_ours = 1e9, best_ff = 1e9, best_lib = 1e9, first_best = 1e9, first_sum = 0;
    long long frames = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double c0 = cpu_of(RUSAGE_SELF), first;
        frames = decode_kithara(path, &first);
        double ours = cpu_of(RUSAGE_SELF) - c0;
        c0 = cpu_of(RUSAGE_SELF);
        decode_libav(path);
        double lib = cpu_of(RUSAGE_SELF) - c0;
        snprintf(cmd, sizeof cmd, "ffmpeg -hide_banner -loglevel error -i %s -f s16le - >/dev/null",
                 path);
        c0 = cpu_of(RUSAGE_CHILDREN);
        if (system(cmd) != 0)
            return 1;
        double ff = cpu_of(RUSAGE_CHILDREN) - c0;
        best_ours = ours < best_ours ? ours : best_ours;
        best_lib = lib < best_lib ? lib : best_lib;
        best_ff = ff < best_ff ? ff : best_ff;
        first_best = first < first_best ? first : first_best;
        first_sum += first;
    }
    printf("decode of 90 s AAC (%lld frames), best CPU of %d rounds:\n", frames, ROUNDS);
    printf("  kithara decoder (s16)        %.3f s\n", best_ours);
    printf("  ffmpeg -f s16le (program)    %.3f s  ratio %.3f (goal <= 1.05)\n", best_ff,
           best_ours / best_ff);
    printf("  libav decode, no conversion  %.3f s  ratio %.3f\n", best_lib, best_ours / best_lib);
    printf("open -> first PCM, cached local file: best %.2f ms, mean %.2f ms (goal < 30 ms)\n",
           first_best * 1e3, first_sum / ROUNDS * 1e3);
    remove(path);
    kth_shutdown();
    return 0;
}
