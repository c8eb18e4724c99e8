/*
 * bench_seek.c — cold seek by time in a long HLS presentation, against its round-trip floor
 * (DESIGN.md §6: "cold seek by time, any depth").
 *
 * A 24-hour media playlist of 4 s MPEG-TS segments (21,600 of them, 64,000 bytes each,
 * synthetic bytes the in-process loopback server computes on the fly), and an AES-128 copy of
 * it, are served with a fixed latency added to every response. For each depth (1 min, 10 min,
 * 1 h, 12 h) a fresh stream over a fresh memory cache opens the playlist (not timed), then
 * kth_stream_seek_time moves to the depth and the first read returns its first byte: that time
 * is the figure, with the requests the server saw meanwhile: the target (and key), the
 * read-ahead that starts after the target, and any for a segment before the target (none
 * should be). Its floor is what the seek cannot avoid, each request made alone through
 * the same downloader: the target segment, plus the key for the AES-128 copy. Target: ≤ 1.2 ×
 * the floor at every depth.
 *
 * Then the seek into cached audio: kth_stream_seek_time to each depth again plus a 4 KiB read,
 * 2,000 times, once those segments are cached. Target: p99 < 1 ms.
 *
 * Usage: bench_seek [latency ms]   (default 50)
 */
#include <kithara/hls.h>
#include <kithara/kithara.h>

#include "hls/session.h"
#include "testserver.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    SEGMENTS = 21600, /* 24 h of 4 s segments */
    SEGMENT_BYTES = 64000,
    RUNS = 5,
    AHEAD = 12, /* encrypted segments served after each target (the read-ahead) */
    CACHED_SEEKS = 2000,
};
#define SEGMENT_S 4.0

static const double depths[] = {60, 600, 3600, 12 * 3600};
#define DEPTHS (sizeof depths / sizeof depths[0])

static const uint8_t key[16] = {0x6b, 0x69, 0x74, 0x68, 0x61, 0x72, 0x61, 0x2d,
                                0x62, 0x65, 0x6e, 0x63, 0x68, 0x6b, 0x65, 0x79};

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

static void die(const char *what)
{
    fprintf(stderr, "bench_seek: %s\n", what);
    exit(1);
}

static size_t segment_at(double seconds)
{
    return (size_t)(seconds / SEGMENT_S);
}

/* Registers the playlist /<dir>/index.m3u8: every segment /<dir>/seg<i>.ts, encrypted with
 * one key and IV when `encrypted`. */
static void add_playlist(kts_server *srv, const char *dir, bool encrypted)
{
    size_t cap = 256 + (size_t)SEGMENTS * 48;
    char *text = malloc(cap);
    if (!text)
        die("out of memory");
    size_t n = (size_t)snprintf(text, cap,
                                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n"
                                "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    if (encrypted)
        n += (size_t)snprintf(text + n, cap - n,
                              "#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\","
                              "IV=0x00000000000000000000000000000001\n");
    for (int i = 0; i < SEGMENTS; i++)
        n += (size_t)snprintf(text + n, cap - n, "#EXTINF:%.3f,\nseg%d.ts\n", SEGMENT_S, i);
    n += (size_t)snprintf(text + n, cap - n, "#EXT-X-ENDLIST\n");
    char path[64];
    snprintf(path, sizeof path, "/%s/index.m3u8", dir);
    if (n >= cap || kts_add_body(srv, path, text, n, "application/vnd.apple.mpegurl") != KTH_OK)
        die("cannot register a playlist");
    free(text);
}

/* The clear copy: every segment a TS-framed synthetic body of its own. */
static void add_clear(kts_server *srv)
{
    add_playlist(srv, "clear", false);
    for (int i = 0; i < SEGMENTS; i++) {
        char path[64];
        snprintf(path, sizeof path, "/clear/seg%d.ts", i);
        if (kts_add_ts_synth(srv, path, SEGMENT_BYTES, (uint64_t)i + 1, "video/mp2t") != KTH_OK)
            die("cannot register a segment");
    }
}

/* The AES-128 copy: the key, and the segments a seek reaches (each target and the read-ahead
 * after it), the TS-framed pattern encrypted; the rest is never asked for. */
static void add_encrypted(kts_server *srv)
{
    add_playlist(srv, "aes", true);
    if (kts_add_body(srv, "/aes/key.bin", key, sizeof key, "application/octet-stream") != KTH_OK)
        die("cannot register the key");
    uint8_t iv[16] = {0};
    iv[15] = 1;
    static uint8_t plain[SEGMENT_BYTES], sealed[SEGMENT_BYTES + 16];
    kts_ts_synth_fill(7, 0, plain, sizeof plain);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int a = 0, b = 0;
    if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv) != 1 ||
        EVP_EncryptUpdate(ctx, sealed, &a, plain, (int)sizeof plain) != 1 ||
        EVP_EncryptFinal_ex(ctx, sealed + a, &b) != 1)
        die("cannot encrypt");
    EVP_CIPHER_CTX_free(ctx);
    for (size_t d = 0; d < DEPTHS; d++) {
        for (size_t i = segment_at(depths[d]); i <= segment_at(depths[d]) + AHEAD; i++) {
            char path[64];
            snprintf(path, sizeof path, "/aes/seg%zu.ts", i);
            if (kts_add_body(srv, path, sealed, (size_t)(a + b), "video/mp2t") != KTH_OK)
                die("cannot register a segment");
        }
    }
    if (kts_add_body(srv, "/floor/sealed.ts", sealed, (size_t)(a + b), "video/mp2t") != KTH_OK)
        die("cannot register the floor segment");
}

static kth_cache *memory_cache(void)
{
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.memory_only = true;
    co.max_bytes = (uint64_t)256 << 20;
    kth_cache *c = NULL;
    char err[256];
    if (kth_cache_open(&co, &c, err, sizeof err) != KTH_OK)
        die(err);
    return c;
}

static kth_stream *open_stream(kth_downloader *d, kth_cache *c, const char *url)
{
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = c;
    so.downloader = d;
    kth_stream *s = NULL;
    char err[1024];
    if (kth_stream_open(url, &so, &s, err, sizeof err) != KTH_OK)
        die(err);
    return s;
}

/* One request alone through the downloader: the floor of one round trip. */
static double one_request_ms(kth_downloader *d, const char *url)
{
    hls_body body;
    double t0 = now_ms();
    kth_status st = hls_fetch_blocking(d, url, NET_GET, false, 0, 0, NULL, false, 1 << 20,
                                       PLATFORM_NO_DEADLINE, NULL, &body);
    double took = now_ms() - t0;
    hls_body_free(&body);
    if (st != KTH_OK)
        die(url);
    return took;
}

/* What the server saw between two points of its log. */
typedef struct seen {
    unsigned requests;   /* all */
    unsigned needed;     /* the target segment and the key */
    unsigned read_ahead; /* segments after the target */
    unsigned earlier;    /* segments before the target */
} seen;

static seen requests_since(kts_server *srv, size_t from, size_t target)
{
    seen r = {0, 0, 0, 0};
    size_t to = kts_log_count(srv);
    for (size_t i = from; i < to; i++) {
        kts_log_entry le;
        if (kts_log_get(srv, i, &le) != 0)
            continue;
        r.requests++;
        const char *seg = strstr(le.path, "/seg");
        size_t index = seg ? (size_t)strtoul(seg + 4, NULL, 10) : target;
        if (index < target)
            r.earlier++;
        else if (index > target)
            r.read_ahead++;
        else
            r.needed++;
    }
    return r;
}

/* Cold seeks to every depth in the copy under `dir`; prints a line per depth. True when every
 * depth is within 1.2 × its floor. */
static bool cold_seeks(kts_server *srv, kth_downloader *d, const char *dir, const char *label,
                       const char *floor_segment, bool with_key)
{
    char url[512], floor_url[512], key_url[512];
    char path[64];
    snprintf(path, sizeof path, "/%s/index.m3u8", dir);
    kts_url(srv, path, url, sizeof url);
    kts_url(srv, floor_segment, floor_url, sizeof floor_url);
    kts_url(srv, "/aes/key.bin", key_url, sizeof key_url);
    bool pass = true;
    for (size_t k = 0; k < DEPTHS; k++) {
        double took[RUNS], floor[RUNS];
        seen last = {0, 0, 0, 0};
        for (int r = 0; r < RUNS; r++) {
            kth_cache *c = memory_cache();
            kth_stream *s = open_stream(d, c, url);
            size_t from = kts_log_count(srv);
            uint8_t buf[4096];
            double t0 = now_ms();
            kth_seek_anchor a;
            if (kth_stream_seek_time(s, depths[k], &a) != KTH_OK ||
                kth_stream_read(s, buf, sizeof buf) <= 0)
                die("cold seek failed");
            took[r] = now_ms() - t0;
            seen now = requests_since(srv, from, segment_at(depths[k]));
            if (r == 0 || now.requests > last.requests)
                last = now;
            kth_stream_close(s);
            kth_cache_unref(c);
            floor[r] = one_request_ms(d, floor_url) + (with_key ? one_request_ms(d, key_url) : 0);
        }
        qsort(took, RUNS, sizeof took[0], compare);
        qsort(floor, RUNS, sizeof floor[0], compare);
        double ratio = took[RUNS / 2] / floor[RUNS / 2];
        if (ratio > 1.2)
            pass = false;
        printf("cold seek %-7s to %5.0f s: first byte %6.1f ms  floor (%s) %6.1f ms  ratio %.3f  "
               "requests by the first byte: %u = %u target%s + %u read-ahead + %u earlier\n",
               label, depths[k], took[RUNS / 2], with_key ? "key + segment" : "segment",
               floor[RUNS / 2], ratio, last.requests, last.needed, with_key ? " and key" : "",
               last.read_ahead, last.earlier);
    }
    return pass;
}

/* Seeks among the depths once their segments are cached. True when p99 < 1 ms. */
static bool cached_seeks(kts_server *srv, kth_downloader *d)
{
    char url[512];
    kts_url(srv, "/clear/index.m3u8", url, sizeof url);
    kth_cache *c = memory_cache();
    kth_stream *s = open_stream(d, c, url);
    uint8_t buf[4096];
    for (size_t k = 0; k < DEPTHS; k++) {
        kth_seek_anchor a;
        if (kth_stream_seek_time(s, depths[k] + 1.0, &a) != KTH_OK)
            die("seek failed");
        /* Read the whole target segment, so it is cached. */
        for (uint64_t got = 0; got < SEGMENT_BYTES;) {
            int64_t n = kth_stream_read(s, buf, sizeof buf);
            if (n <= 0)
                die("read failed");
            got += (uint64_t)n;
        }
    }
    static double took[CACHED_SEEKS];
    for (int i = 0; i < CACHED_SEEKS; i++) {
        double t = depths[(size_t)i % DEPTHS] + (double)(i % 4);
        double t0 = now_ms();
        kth_seek_anchor a;
        if (kth_stream_seek_time(s, t, &a) != KTH_OK || kth_stream_read(s, buf, sizeof buf) <= 0)
            die("cached seek failed");
        took[i] = now_ms() - t0;
    }
    qsort(took, CACHED_SEEKS, sizeof took[0], compare);
    double p99 = took[CACHED_SEEKS * 99 / 100];
    printf("seek_time + first 4 KiB read, cached (%d seeks over the four depths): median %.4f ms  "
           "p99 %.4f ms  max %.4f ms (target p99 < 1 ms)\n",
           CACHED_SEEKS, took[CACHED_SEEKS / 2], p99, took[CACHED_SEEKS - 1]);
    kth_stream_close(s);
    kth_cache_unref(c);
    return p99 < 1.0;
}

int main(int argc, char **argv)
{
    unsigned latency = argc > 1 ? (unsigned)atoi(argv[1]) : 50;
    kts_config cfg = {.log_capacity = 1 << 16};
    kts_server *srv = NULL;
    if (kts_start(&cfg, &srv) != KTH_OK)
        die("server failed");
    add_clear(srv);
    add_encrypted(srv);
    if (kts_add_ts_synth(srv, "/floor/clear.ts", SEGMENT_BYTES, 99, "video/mp2t") != KTH_OK)
        die("cannot register the floor segment");
    kth_downloader *d = NULL;
    char err[256];
    if (kth_downloader_new(NULL, &d, err, sizeof err) != KTH_OK)
        die(err);
    kts_add_fault(srv, "*", &(kts_fault){.kind = KTS_FAULT_LATENCY, .ms = latency});
    printf("24 h presentation, %d segments of %.0f s (%d bytes), latency added to every "
           "response: %u ms\n",
           SEGMENTS, SEGMENT_S, SEGMENT_BYTES, latency);
    bool pass = cold_seeks(srv, d, "clear", "MPEG-TS", "/floor/clear.ts", false);
    pass = cold_seeks(srv, d, "aes", "AES-128", "/floor/sealed.ts", true) && pass;
    kts_clear_faults(srv, NULL);
    pass = cached_seeks(srv, d) && pass;
    printf("target: cold seek <= 1.2 x its floor at every depth, cached p99 < 1 ms: %s\n",
           pass ? "PASS" : "FAIL");
    kth_downloader_unref(d);
    kts_stop(srv);
    return pass ? 0 : 1;
}
