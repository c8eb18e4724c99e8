/*
 * bench_icy.c — internet radio against the test server's station mode over loopback:
 *
 * 1. Title latency: a 128 kbit/s station (paced by the server) with a title in every block;
 *    the time from the reader getting the last audio byte before a block to the RADIO_TITLE
 *    event of that block, against the metaint interval (one block of audio, 1 s here).
 * 2. Reconnect latency: a station that drops its connection every 64 KiB; the time from each
 *    RADIO_DROPPED to the RADIO_RECONNECTED that follows, against the time a fresh stream takes
 *    from open to its first byte (the same requests, measured in this process).
 * 3. A 24-hour session in compressed time: 24 h of 128 kbit/s audio (1.38 GB) sent at 200 MB/s
 *    and read to the end; RSS and cache size at 5 % and at the end, against the window kept.
 */
#include <kithara/kithara.h>

#include "testserver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

typedef struct bench_env {
    kts_server *srv;
    kth_cache *cache;
    kth_bus *bus;
    kth_subscription *sub;
    char dir[4096];
} bench_env;

static kth_stream *open_radio(bench_env *b, const char *path, uint64_t window)
{
    char url[512], err[512];
    kts_url(b->srv, path, url, sizeof url);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = b->cache;
    so.bus = b->bus;
    so.readahead_bytes = window;
    kth_stream *s = NULL;
    if (kth_stream_open(url, &so, &s, err, sizeof err) != KTH_OK)
        fprintf(stderr, "open %s: %s\n", url, err);
    return s;
}

/* Reads n bytes (fences cleared); false on an error. *first_ns: when the first byte came. */
static bool read_n(kth_stream *s, uint64_t n, int64_t *first_ns)
{
    static unsigned char buf[256 * 1024];
    for (uint64_t got = 0; got < n;) {
        int64_t k = kth_stream_read(s, buf, n - got < sizeof buf ? (size_t)(n - got) : sizeof buf);
        if (k == KTH_ERR_VARIANT_CHANGE && kth_stream_clear_variant_fence(s) == KTH_OK)
            continue;
        if (k <= 0) {
            fprintf(stderr, "read: %s\n", kth_strerror((int)k));
            return false;
        }
        if (got == 0 && first_ns)
            *first_ns = now_ns();
        got += (uint64_t)k;
    }
    return true;
}

static void title_latency(bench_env *b)
{
    enum { METAINT = 16000, BLOCKS = 8 };
    kts_icy_title titles[BLOCKS];
    for (int i = 0; i < BLOCKS; i++)
        titles[i] = (kts_icy_title){.block = (uint64_t)i, .text = "StreamTitle='Now playing';"};
    kts_icy icy = {.metaint = METAINT, .seed = 1, .titles = titles, .title_count = BLOCKS};
    kts_add_icy(b->srv, "/titles", &icy);
    kts_add_fault(b->srv, "/titles", &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = 16032});
    kth_stream *s = open_radio(b, "/titles", 0);
    if (!s)
        return;
    double worst = 0, sum = 0;
    int seen = 0;
    for (int blk = 0; blk < BLOCKS - 1; blk++) {
        int64_t t_audio = 0;
        /* The byte before block blk, then the block's event. */
        uint64_t target = (uint64_t)(blk + 1) * METAINT;
        uint64_t pos = kth_stream_position(s);
        if (!read_n(s, target - pos - 1, NULL) || !read_n(s, 1, &t_audio))
            break;
        kth_event ev;
        while (kth_events_next(b->sub, &ev, 5000) == KTH_OK) {
            if (ev.kind == KTH_EVENT_RADIO_TITLE && ev.payload.radio.offset == target) {
                double ms = (double)(ev.time_ns - t_audio) / 1e6;
                sum += ms;
                worst = ms > worst ? ms : worst;
                seen++;
                break;
            }
        }
    }
    kth_stream_close(s);
    double interval_ms = 1000.0 * METAINT / 16000.0;
    printf("title latency: %d titles, mean %.2f ms, worst %.2f ms after the audio before their "
           "block; metaint interval %.0f ms (worst/interval %.4f)\n",
           seen, seen ? sum / seen : 0.0, worst, interval_ms, worst / interval_ms);
}

static void reconnect_latency(bench_env *b)
{
    enum { DROPS = 20 };
    kts_icy icy = {.metaint = 8192, .seed = 2, .length = 65536 + 65536 / 8192 * 1};
    kts_add_icy(b->srv, "/drops", &icy);
    /* Reference: a fresh stream, open to first byte. */
    double ref_ms = 0;
    for (int i = 0; i < 5; i++) {
        int64_t t0 = now_ns(), t1 = 0;
        kth_stream *s = open_radio(b, "/drops", 0);
        if (!s || !read_n(s, 1, &t1))
            return;
        ref_ms += (double)(t1 - t0) / 1e6 / 5;
        kth_stream_close(s);
    }
    kth_event ev;
    while (kth_events_next(b->sub, &ev, 0) == KTH_OK) {
    }
    kth_stream *s = open_radio(b, "/drops", 16 << 20);
    if (!s || !read_n(s, 1, NULL))
        return;
    int64_t dropped_at = 0;
    double worst = 0, sum = 0;
    int n = 0;
    while (n < DROPS && kth_events_next(b->sub, &ev, 5000) == KTH_OK) {
        if (ev.kind == KTH_EVENT_RADIO_DROPPED)
            dropped_at = ev.time_ns;
        if (ev.kind == KTH_EVENT_RADIO_RECONNECTED && dropped_at) {
            double ms = (double)(ev.time_ns - dropped_at) / 1e6;
            sum += ms;
            worst = ms > worst ? ms : worst;
            n++;
        }
    }
    kth_stream_close(s);
    printf("reconnect latency: %d drops, mean %.2f ms, worst %.2f ms from drop to the next "
           "connection's headers; fresh open to first byte %.2f ms (mean/fresh %.2f)\n",
           n, n ? sum / n : 0.0, worst, ref_ms, ref_ms > 0 ? (n ? sum / n : 0.0) / ref_ms : 0.0);
}

static void long_run(bench_env *b)
{
    const uint64_t total = (uint64_t)24 * 3600 * 128000 / 8; /* 24 h at 128 kbit/s */
    const uint64_t window = 2 << 20;
    kts_icy_title titles[] = {{.block = 0, .text = "StreamTitle='Day';"}};
    kts_icy icy = {.metaint = 16000, .seed = 3, .titles = titles, .title_count = 1};
    kts_add_icy(b->srv, "/day", &icy);
    kts_add_fault(b->srv, "/day", &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = 200000000});
    kth_stream *s = open_radio(b, "/day", window);
    if (!s)
        return;
    int64_t t0 = now_ns();
    long rss_early = 0;
    kth_cache_stats early = {0}, late = {0};
    bool ok = read_n(s, total / 20, NULL);
    rss_early = rss_kib();
    kth_cache_get_stats(b->cache, &early);
    ok = ok && read_n(s, total - total / 20, NULL);
    long rss_late = rss_kib();
    kth_cache_get_stats(b->cache, &late);
    double secs = (double)(now_ns() - t0) / 1e9;
    kth_stream_close(s);
    printf("24 h at 128 kbit/s in %.1f s (%s): RSS %ld KiB at 5 %%, %ld KiB at the end "
           "(growth %ld KiB; window %llu KiB, growth/window %.3f); cache %llu bytes at 5 %%, "
           "%llu at the end\n",
           secs, ok ? "read whole" : "FAILED", rss_early, rss_late, rss_late - rss_early,
           (unsigned long long)(window >> 10),
           (double)(rss_late - rss_early) / (double)(window >> 10),
           (unsigned long long)early.total_bytes, (unsigned long long)late.total_bytes);
}

int main(void)
{
    bench_env b;
    memset(&b, 0, sizeof b);
    const char *tmp = getenv("TMPDIR");
    snprintf(b.dir, sizeof b.dir, "%s/kithara-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = mkdtemp(b.dir);
    co.no_sync = true;
    char err[512];
    if (!co.dir || kts_start(NULL, &b.srv) != 0 ||
        kth_cache_open(&co, &b.cache, err, sizeof err) != KTH_OK || kth_bus_new(&b.bus) != KTH_OK ||
        kth_bus_subscribe(b.bus, 65536, &b.sub) != KTH_OK) {
        fprintf(stderr, "bench_icy: setup failed\n");
        return 1;
    }
    title_latency(&b);
    reconnect_latency(&b);
    long_run(&b);
    kth_subscription_free(b.sub);
    kth_bus_unref(b.bus);
    kth_cache_unref(b.cache);
    kts_stop(b.srv);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", b.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", b.dir);
    kth_shutdown();
    return 0;
}
