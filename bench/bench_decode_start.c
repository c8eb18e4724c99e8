/*
 * bench_decode_start.c — open → first PCM frame of an HLS master, cold, on a loopback server
 * that adds a fixed latency to every response (default 50 ms):
 *   - kth_decoder over a kth_stream with a fresh cache each run, against its round-trip floor:
 *     master, the started variant's media playlist and its first segment, each fetched alone on
 *     a warm connection (what the start cannot avoid). Goal: ≤ 1.1× the floor.
 *   - FFmpeg's own HLS demuxer opening the same URL (avformat_open_input, stream info, decode to
 *     the first frame), as a program without kithara would start.
 * Median of 7 runs each. A fresh downloader each run, so every start is a first start (no
 * throughput remembered from the run before).
 *
 * usage: bench_decode_start [latency ms]
 */
#include <kithara/decode.h>
#include <kithara/hls.h>
#include <kithara/kithara.h>

#include "testserver.h"

#include <curl/curl.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 7

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p;
    (void)user;
    return size * n;
}

/* One GET on the warm handle; its time in ms. */
static double get_ms(CURL *h, const char *url)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    double t0 = now_ms();
    if (curl_easy_perform(h) != CURLE_OK) {
        fprintf(stderr, "GET %s failed\n", url);
        exit(1);
    }
    return now_ms() - t0;
}

/* kth_decoder from open to its first frame; *variant gets the variant it started on. */
static double kithara_start_ms(const char *url, int *variant)
{
    kth_downloader *d = NULL;
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.memory_only = true;
    kth_cache *c = NULL;
    char err[512];
    if (kth_downloader_new(NULL, &d, err, sizeof err) != KTH_OK ||
        kth_cache_open(&co, &c, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.downloader = d;
    so.cache = c;
    double t0 = now_ms();
    kth_stream *s = NULL;
    kth_decoder *dec = NULL;
    if (kth_stream_open(url, &so, &s, err, sizeof err) != KTH_OK ||
        kth_decoder_open_stream(s, NULL, &dec, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    static int16_t pcm[4096 * 8];
    if (kth_decoder_read(dec, pcm, 4096) <= 0) {
        fprintf(stderr, "%s: no first frame\n", url);
        exit(1);
    }
    double took = now_ms() - t0;
    *variant = kth_stream_current_variant(s);
    kth_decoder_close(dec);
    kth_stream_close(s);
    kth_cache_unref(c);
    kth_downloader_unref(d);
    return took;
}

/* FFmpeg's HLS demuxer from open to its first decoded frame. */
static double ffmpeg_start_ms(const char *url)
{
    double t0 = now_ms();
    AVFormatContext *ic = NULL;
    if (avformat_open_input(&ic, url, NULL, NULL) < 0 || avformat_find_stream_info(ic, NULL) < 0) {
        fprintf(stderr, "ffmpeg could not open %s\n", url);
        exit(1);
    }
    int idx = av_find_best_stream(ic, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    const AVCodec *codec =
        idx >= 0 ? avcodec_find_decoder(ic->streams[idx]->codecpar->codec_id) : NULL;
    AVCodecContext *cc = codec ? avcodec_alloc_context3(codec) : NULL;
    if (!cc || avcodec_parameters_to_context(cc, ic->streams[idx]->codecpar) < 0 ||
        avcodec_open2(cc, codec, NULL) < 0)
        exit(1);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    bool got = false;
    while (!got && av_read_frame(ic, pkt) >= 0) {
        if (pkt->stream_index == idx && avcodec_send_packet(cc, pkt) >= 0)
            got = avcodec_receive_frame(cc, f) == 0;
        av_packet_unref(pkt);
    }
    double took = now_ms() - t0;
    if (!got)
        exit(1);
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&cc);
    avformat_close_input(&ic);
    return took;
}

int main(int argc, char **argv)
{
    int latency = argc > 1 ? atoi(argv[1]) : 50;
    av_log_set_level(AV_LOG_ERROR);
    kts_config cfg = {.doc_root = KTH_SOURCE_DIR "/tests/fixtures/hls"};
    kts_server *srv = NULL;
    if (kts_start(&cfg, &srv) != KTH_OK)
        return 1;
    kts_add_fault(srv, "*", &(kts_fault){.kind = KTS_FAULT_LATENCY, .ms = (unsigned)latency});
    char url[512];
    kts_url(srv, "/ts/master.m3u8", url, sizeof url);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    double ours[RUNS], floor[RUNS], theirs[RUNS];
    int variant = 0;
    for (int r = 0; r < RUNS; r++) {
        ours[r] = kithara_start_ms(url, &variant);
        theirs[r] = ffmpeg_start_ms(url);
        static const char *const dirs[] = {"v64", "v128", "v256"};
        char media[512], seg[512];
        snprintf(media, sizeof media, "%s/ts/%s/index.m3u8", kts_base_url(srv), dirs[variant]);
        snprintf(seg, sizeof seg, "%s/ts/%s/seg0.ts", kts_base_url(srv), dirs[variant]);
        get_ms(h, url); /* warms the connection */
        floor[r] = get_ms(h, url) + get_ms(h, media) + get_ms(h, seg);
    }
    qsort(ours, RUNS, sizeof ours[0], compare);
    qsort(floor, RUNS, sizeof floor[0], compare);
    qsort(theirs, RUNS, sizeof theirs[0], compare);
    double o = ours[RUNS / 2], f = floor[RUNS / 2], t = theirs[RUNS / 2];
    printf("latency added to every response: %d ms; cold start of /ts/master.m3u8 to the first "
           "PCM frame, median of %d:\n",
           latency, RUNS);
    printf("  kithara decoder (started on variant %d)  %8.1f ms\n", variant, o);
    printf("  floor: master + media playlist + first segment alone  %8.1f ms   ratio %.3f "
           "(goal <= 1.1)\n",
           f, o / f);
    printf("  FFmpeg's own HLS demuxer                  %8.1f ms   kithara / FFmpeg %.3f\n", t,
           o / t);
    curl_easy_cleanup(h);
    kts_stop(srv);
    kth_shutdown();
    return 0;
}
