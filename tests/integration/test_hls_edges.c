/*
 * test_hls_edges.c — HLS playlists and moments that the fixture ladders do not have: a read at
 * the end right after SEEK_END, variant switches between variants whose segment boundaries
 * differ (by whole seconds, or drifting by a millisecond per segment), offline playback of a
 * long variant (file descriptors stay bounded), EXT-X-GAP segments, and one segment URI at
 * several positions. Synthetic segments carry the MPEG-TS-framed pattern (a sync byte every
 * 188 bytes), since a segment must begin like audio to be accepted.
 */
#include "test_hls_support.h"

#include <dirent.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static kth_stream *open_short(struct hls_env *e, const char *path, kth_cache *cache, int variant,
                              double buffer_s, int64_t timeout_ms)
{
    char url[512];
    kts_url(e->srv, path, url, sizeof url);
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = variant >= 0;
    h.initial_variant = variant;
    h.start_manual = variant >= 0;
    if (buffer_s > 0)
        h.buffer_target_s = buffer_s;
    kth_stream_options opts;
    kth_stream_options_init(&opts);
    opts.read_timeout_ms = timeout_ms;
    opts.bus = e->bus;
    opts.downloader = e->d;
    opts.cache = cache ? cache : e->cache;
    opts.hls = &h;
    kth_stream *s = NULL;
    char err[1024] = "";
    kth_status st = kth_stream_open(url, &opts, &s, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("open %s: %s (%s)", path, kth_strerror(st), err);
    if (variant >= 0)
        kth_stream_abr_set_manual(s, variant);
    return s;
}

/* SEEK_END straight after open, then read: EOF expected at once. */
static void test_read_at_end_after_seek_end(void **state)
{
    struct hls_env *e = *state;
    kth_stream *s = open_short(e, "/ts/master.m3u8", NULL, 0, 1.0, 4000);
    uint64_t end = 0;
    assert_int_equal(kth_stream_seek(s, 0, SEEK_END, &end), KTH_OK);
    uint8_t b;
    double t0 = now_s();
    int64_t n = kth_stream_read(s, &b, 1);
    assert_true(now_s() - t0 < 3.0); /* EOF is proven by fetching the end, not by a timeout */
    assert_int_equal(n, 0);
    kth_stream_close(s);
}

/* Variants whose segment boundaries are not aligned: a manual switch must not move the end
 *    of the period the reader is in before the reader's segment. */
#define A_SEG 10000
#define B_SEG 15000
static int b_count = 4;
static const char *b_dur = "3.0";
static void add_unaligned(struct hls_env *e)
{
    const char *master = "#EXTM3U\n"
                         "#EXT-X-STREAM-INF:BANDWIDTH=100000,CODECS=\"mp4a.40.2\"\n"
                         "a/index.m3u8\n"
                         "#EXT-X-STREAM-INF:BANDWIDTH=200000,CODECS=\"mp4a.40.2\"\n"
                         "b/index.m3u8\n";
    kts_add_body(e->srv, "/u/master.m3u8", master, strlen(master), NULL);
    char pl[4096];
    size_t len = (size_t)snprintf(pl, sizeof pl,
                                  "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n"
                                  "#EXT-X-PLAYLIST-TYPE:VOD\n");
    for (int i = 0; i < 6; i++)
        len += (size_t)snprintf(pl + len, sizeof pl - len, "#EXTINF:2.0,\nseg%d.ts\n", i);
    len += (size_t)snprintf(pl + len, sizeof pl - len, "#EXT-X-ENDLIST\n");
    kts_add_body(e->srv, "/u/a/index.m3u8", pl, len, NULL);
    len = (size_t)snprintf(pl, sizeof pl,
                           "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n"
                           "#EXT-X-PLAYLIST-TYPE:VOD\n");
    for (int i = 0; i < b_count; i++)
        len += (size_t)snprintf(pl + len, sizeof pl - len, "#EXTINF:%s,\nseg%d.ts\n", b_dur, i);
    len += (size_t)snprintf(pl + len, sizeof pl - len, "#EXT-X-ENDLIST\n");
    kts_add_body(e->srv, "/u/b/index.m3u8", pl, len, NULL);
    for (int i = 0; i < 6; i++) {
        char p[64];
        snprintf(p, sizeof p, "/u/a/seg%d.ts", i);
        kts_add_ts_synth(e->srv, p, A_SEG, (uint64_t)(1 + i), NULL);
    }
    for (int i = 0; i < b_count; i++) {
        char p[64];
        snprintf(p, sizeof p, "/u/b/seg%d.ts", i);
        kts_add_ts_synth(e->srv, p, B_SEG, (uint64_t)(101 + i), NULL);
    }
}

static void read_n(kth_stream *s, uint8_t *buf, size_t n)
{
    size_t have = 0;
    while (have < n) {
        int64_t r = kth_stream_read(s, buf + have, n - have);
        if (r <= 0)
            fail_msg("read at %llu: %lld %s", (unsigned long long)kth_stream_position(s),
                     (long long)r, kth_strerror((int)r));
        have += (size_t)r;
    }
}

static void test_unaligned_manual_switch_keeps_reader_segment(void **state)
{
    struct hls_env *e = *state;
    add_unaligned(e);
    kth_stream *s = open_short(e, "/u/master.m3u8", NULL, 0, 0, 5000);
    uint8_t buf[A_SEG];
    read_n(s, buf, A_SEG); /* segment 0 of a */
    assert_int_equal(kts_ts_synth_check(1, 0, buf, A_SEG), A_SEG);
    read_n(s, buf, 100); /* the start of segment 1 of a */
    assert_int_equal(kts_ts_synth_check(2, 0, buf, 100), 100);
    kth_hls_variant_info info;
    for (int i = 0; i < 2000; i++) {
        kth_stream_variant_info(s, 1, &info);
        if (info.usable)
            break;
        sleep_ms(2);
    }
    assert_true(info.usable);
    assert_int_equal(kth_stream_abr_set_manual(s, 1), KTH_OK);
    /* The rest of segment 1 of a, from the offset the reader is at. */
    int64_t n = kth_stream_read(s, buf, 1000);
    if (n == KTH_ERR_VARIANT_CHANGE) {
        assert_int_equal(kth_stream_clear_variant_fence(s), KTH_OK);
        n = kth_stream_read(s, buf, 1000);
        fail_msg("a fence in the middle of the segment the reader was reading");
    }
    assert_true(n > 0);
    assert_int_equal(kts_ts_synth_check(2, 100, buf, (size_t)n), (size_t)n);
    kth_stream_close(s);
}

static void test_drift_manual_switch_keeps_reader_segment(void **state)
{
    b_count = 6;
    b_dur = "2.0011"; /* 1.1 ms longer per segment than variant a: boundaries drift apart */
    test_unaligned_manual_switch_keeps_reader_segment(state);
}

/* Offline playback closes the cache handles (and file descriptors) of entries behind the
 * reader, as online playback does. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

/* Reads to the end, checking against `want`, and returns the largest growth of the open file
 * count seen along the way (sampled at every read). */
static int read_to_end_fd_growth(kth_stream *s, const bytes *want)
{
    int base = count_fds(), worst = 0;
    static uint8_t buf[64 * 1024];
    size_t have = 0;
    for (;;) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0)
            fail_msg("read at %zu: %s", have, kth_strerror((int)n));
        assert_true(have + (size_t)n <= want->len);
        assert_memory_equal(buf, want->data + have, (size_t)n);
        have += (size_t)n;
        int growth = count_fds() - base;
        if (growth > worst)
            worst = growth;
    }
    assert_int_equal(have, want->len);
    return worst;
}

static void test_offline_playback_fds_bounded(void **state)
{
    struct hls_env *e = *state;
    kth_stream *s = hls_open_variant(e, "/abr/master.m3u8", 0);
    bytes online = read_to_end(s, false);
    kth_stream_close(s);
    kth_cache_unref(e->cache);
    e->cache = hls_open_cache(e->dir, true);
    s = hls_open_variant(e, "/abr/master.m3u8", 0);
    /* 31 segments: one open file each if entries behind the reader were never closed. */
    assert_true(read_to_end_fd_growth(s, &online) < 8);
    kth_stream_close(s);
    free(online.data);
}

/* EXT-X-GAP segments are "never fetched" (layout.h): playback must get past them. */
static void test_gap_segment_not_fetched(void **state)
{
    struct hls_env *e = *state;
    const char *pl = "#EXTM3U\n#EXT-X-VERSION:8\n#EXT-X-TARGETDURATION:2\n"
                     "#EXT-X-PLAYLIST-TYPE:VOD\n"
                     "#EXTINF:2.0,\nseg0.ts\n"
                     "#EXT-X-GAP\n#EXTINF:2.0,\nmissing.ts\n"
                     "#EXTINF:2.0,\nseg2.ts\n#EXT-X-ENDLIST\n";
    kts_add_body(e->srv, "/g/index.m3u8", pl, strlen(pl), NULL);
    kts_add_ts_synth(e->srv, "/g/seg0.ts", 5000, 1, NULL);
    kts_add_ts_synth(e->srv, "/g/seg2.ts", 5000, 3, NULL);
    kth_stream *s = open_short(e, "/g/index.m3u8", NULL, -1, 0, 4000);
    uint8_t buf[12000];
    size_t have = 0;
    int64_t n;
    while ((n = kth_stream_read(s, buf + have, sizeof buf - have)) > 0)
        have += (size_t)n;
    if (n < 0) {
        char detail[512] = "";
        kth_stream_last_error(s, detail, sizeof detail);
        fail_msg("read at %zu: %s (%s)", have, kth_strerror((int)n), detail);
    }
    assert_int_equal(n, 0);
    assert_int_equal(have, 10000);
    assert_int_equal(kts_ts_synth_check(1, 0, buf, 5000), 5000);
    assert_int_equal(kts_ts_synth_check(3, 0, buf + 5000, 5000), 5000);
    assert_int_equal(kts_request_count(e->srv, "/g/missing.ts", "GET"), 0);
    kth_stream_close(s);
}

/* The same segment URI twice in a row (e.g. a repeated silence slate). */
static void test_repeated_segment_uri(void **state)
{
    struct hls_env *e = *state;
    const char *pl = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
                     "#EXT-X-PLAYLIST-TYPE:VOD\n"
                     "#EXTINF:2.0,\nseg0.ts\n#EXTINF:2.0,\nsilence.ts\n#EXTINF:2.0,\nsilence.ts\n"
                     "#EXTINF:2.0,\nsilence.ts\n#EXTINF:2.0,\nseg4.ts\n#EXT-X-ENDLIST\n";
    kts_add_body(e->srv, "/r/index.m3u8", pl, strlen(pl), NULL);
    kts_add_ts_synth(e->srv, "/r/seg0.ts", 4000, 1, NULL);
    kts_add_ts_synth(e->srv, "/r/silence.ts", 300000, 2, NULL);
    kts_add_ts_synth(e->srv, "/r/seg4.ts", 4000, 5, NULL);
    kts_add_fault(e->srv, "/r/silence.ts", &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = 2000000});
    kth_stream *s = open_short(e, "/r/index.m3u8", NULL, -1, 0, 8000);
    static uint8_t buf[1000000];
    size_t have = 0;
    int64_t n;
    while ((n = kth_stream_read(s, buf + have, sizeof buf - have)) > 0)
        have += (size_t)n;
    if (n < 0) {
        char detail[512] = "";
        kth_stream_last_error(s, detail, sizeof detail);
        fail_msg("read at %zu: %s (%s)", have, kth_strerror((int)n), detail);
    }
    assert_int_equal(n, 0);
    assert_int_equal(have, 4000 + 3 * 300000 + 4000);
    kth_stream_close(s);
}

/* A segment that fails ends the stream where the reader reaches it: the bytes before it,
 * which arrived before the failure, are read first, however soon the failure comes. Here it
 * comes once the reader has read one byte (segment 1's fetch starts when segment 0 is in). */
static void test_a_failed_segment_ends_the_stream_after_the_bytes_before_it(void **state)
{
    struct hls_env *e = *state;
    const char *pl = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
                     "#EXT-X-PLAYLIST-TYPE:VOD\n"
                     "#EXTINF:2.0,\nseg0.ts\n#EXTINF:2.0,\nseg1.ts\n#EXT-X-ENDLIST\n";
    kts_add_body(e->srv, "/f/index.m3u8", pl, strlen(pl), NULL);
    kts_add_ts_synth(e->srv, "/f/seg0.ts", 5000, 1, NULL); /* seg1.ts: 404 */
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe(e->bus, 256, &sub), KTH_OK);
    kth_stream *s = hls_open(e, "/f/index.m3u8", NULL, NULL);
    uint8_t buf[8000];
    assert_int_equal(kth_stream_read(s, buf, 1), 1);
    /* The stream has taken the 404 in once it tells of the failed fetch. */
    kth_event ev;
    bool failed = false;
    while (!failed && kth_events_next(sub, &ev, 10000) == KTH_OK)
        failed = ev.kind == KTH_EVENT_HLS_SEGMENT_COMPLETED && ev.status != KTH_OK;
    assert_true(failed);
    kth_subscription_free(sub);
    size_t have = 1;
    int64_t n;
    while ((n = kth_stream_read(s, buf + have, sizeof buf - have)) > 0)
        have += (size_t)n;
    assert_int_equal(have, 5000);
    assert_int_equal(kts_ts_synth_check(1, 0, buf, 5000), 5000);
    assert_int_equal(n, KTH_ERR_NOT_FOUND);
    char detail[512] = "";
    kth_stream_last_error(s, detail, sizeof detail);
    assert_non_null(strstr(detail, "404"));
    kth_stream_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_at_end_after_seek_end, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_unaligned_manual_switch_keeps_reader_segment,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_drift_manual_switch_keeps_reader_segment, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_offline_playback_fds_bounded, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_gap_segment_not_fetched, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_repeated_segment_uri, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_failed_segment_ends_the_stream_after_the_bytes_before_it, hls_setup,
            hls_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
