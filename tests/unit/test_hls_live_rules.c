/*
 * test_hls_live_rules.c — the rules of live and event playlists: the tags that place a client
 * (EXT-X-START, HOLD-BACK), the start segment, the reload delays, and what a reload means as a
 * window slides, stops, ends, restarts or jumps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "hls/live.h"
#include <kithara/alloc.h>
#include "hls_test_helpers.h"

#define S_NS 1000000000LL

/* A live window: `count` segments of `dur` seconds from media sequence `seq`, target 4 s,
 * with `extra` header lines and ENDLIST when `end`. */
static hls_playlist *window(uint64_t seq, size_t count, double dur, const char *extra, bool end)
{
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:%llu\n%s",
                     (unsigned long long)seq, extra ? extra : "");
    for (size_t i = 0; i < count; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "#EXTINF:%.9f,\nseg%llu.ts\n", dur,
                      (unsigned long long)(seq + i));
    if (end)
        snprintf(text + n, sizeof text - (size_t)n, "#EXT-X-ENDLIST\n");
    return hls_test_parse(text);
}

static void test_kinds(void **state)
{
    (void)state;
    hls_playlist *live = window(0, 3, 4, NULL, false);
    hls_playlist *event = window(0, 3, 4, "#EXT-X-PLAYLIST-TYPE:EVENT\n", false);
    hls_playlist *ended = window(0, 3, 4, "#EXT-X-PLAYLIST-TYPE:EVENT\n", true);
    hls_playlist *vod = window(0, 3, 4, "#EXT-X-PLAYLIST-TYPE:VOD\n", false);
    assert_string_equal(hls_live_kind_name(hls_live_kind_of(&live->media)), "live");
    assert_string_equal(hls_live_kind_name(hls_live_kind_of(&event->media)), "event");
    assert_string_equal(hls_live_kind_name(hls_live_kind_of(&ended->media)), "vod");
    assert_string_equal(hls_live_kind_name(hls_live_kind_of(&vod->media)), "vod");
    hls_playlist_free(live);
    hls_playlist_free(event);
    hls_playlist_free(ended);
    hls_playlist_free(vod);
}

static void test_start_and_server_control_tags_parse(void **state)
{
    (void)state;
    hls_playlist *pl = window(0, 2, 4,
                              "#EXT-X-START:TIME-OFFSET=-9.5,PRECISE=YES\n"
                              "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,HOLD-BACK=12.5\n",
                              false);
    assert_true(pl->has_start);
    assert_true(pl->start_offset == -9.5);
    assert_true(pl->start_precise);
    assert_true(pl->media.has_hold_back);
    assert_true(pl->media.hold_back == 12.5);
    hls_playlist_free(pl);
    hls_test_expect_error("#EXTM3U\n#EXT-X-START:PRECISE=YES\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-START has no TIME-OFFSET");
    hls_test_expect_error(
        "#EXTM3U\n#EXT-X-START:TIME-OFFSET=abc\n", KTH_ERR_FORMAT,
        "line 2: EXT-X-START attribute TIME-OFFSET 'abc' is not a decimal number");
    hls_test_expect_error("#EXTM3U\n#EXT-X-SERVER-CONTROL:HOLD-BACK=-1\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-SERVER-CONTROL HOLD-BACK is negative");
}

static void test_start_segment_rules(void **state)
{
    (void)state;
    /* 10 segments of 4 s: 40 s. Three target durations (12 s) before the end is t = 28, held
     * by segment 7 (28..32). */
    hls_playlist *pl = window(100, 10, 4, NULL, false);
    assert_int_equal(hls_live_start_segment(pl, NULL), 7);
    hls_playlist_free(pl);
    /* HOLD-BACK 6: t = 34, segment 8. */
    pl = window(100, 10, 4, "#EXT-X-SERVER-CONTROL:HOLD-BACK=6\n", false);
    assert_int_equal(hls_live_start_segment(pl, NULL), 8);
    hls_playlist_free(pl);
    /* EXT-X-START wins over HOLD-BACK; from the end (-17: t = 23, segment 5) or the start
     * (9: segment 2); out of range clamps. */
    pl = window(100, 10, 4, "#EXT-X-START:TIME-OFFSET=-17\n#EXT-X-SERVER-CONTROL:HOLD-BACK=6\n",
                false);
    assert_int_equal(hls_live_start_segment(pl, NULL), 5);
    hls_playlist_free(pl);
    pl = window(100, 10, 4, "#EXT-X-START:TIME-OFFSET=9\n", false);
    assert_int_equal(hls_live_start_segment(pl, NULL), 2);
    hls_playlist_free(pl);
    pl = window(100, 10, 4, "#EXT-X-START:TIME-OFFSET=-400\n", false);
    assert_int_equal(hls_live_start_segment(pl, NULL), 0);
    hls_playlist_free(pl);
    pl = window(100, 10, 4, "#EXT-X-START:TIME-OFFSET=400\n", false);
    assert_int_equal(hls_live_start_segment(pl, NULL), 9);
    hls_playlist_free(pl);
    /* The master's EXT-X-START applies when the media playlist has none. */
    hls_playlist *master = hls_test_parse("#EXTM3U\n#EXT-X-START:TIME-OFFSET=-5\n"
                                          "#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n");
    pl = window(100, 10, 4, NULL, false);
    assert_int_equal(hls_live_start_segment(pl, master), 8);
    hls_playlist_free(pl);
    hls_playlist_free(master);
    /* A short window starts at its first segment; a VOD playlist at 0. */
    pl = window(100, 2, 4, NULL, false);
    assert_int_equal(hls_live_start_segment(pl, NULL), 0);
    hls_playlist_free(pl);
    pl = window(100, 10, 4, NULL, true);
    assert_int_equal(hls_live_start_segment(pl, NULL), 0);
    hls_playlist_free(pl);
}

static void test_reload_delays(void **state)
{
    (void)state;
    hls_playlist *pl = window(0, 3, 4, NULL, false);
    assert_int_equal(hls_live_reload_delay_ns(&pl->media, true), 4 * S_NS);
    assert_int_equal(hls_live_reload_delay_ns(&pl->media, false), 2 * S_NS);
    hls_playlist_free(pl);
    pl = window(0, 3, 1.5, NULL, false); /* last segment shorter than the target */
    assert_int_equal(hls_live_reload_delay_ns(&pl->media, true), 1500000000LL);
    assert_int_equal(hls_live_reload_delay_ns(&pl->media, false), 2 * S_NS);
    hls_playlist_free(pl);
    pl = hls_test_parse("#EXTM3U\n#EXT-X-TARGETDURATION:0\n#EXTINF:0,\na.ts\n");
    assert_int_equal(hls_live_reload_delay_ns(&pl->media, false), 100000000LL);
    hls_playlist_free(pl);
}

/* Reloads the window [seq, seq + count) at time t seconds into the tracker. */
static hls_live_update reload(hls_live_tracker *t, uint64_t seq, size_t count, bool end, double at)
{
    hls_playlist *pl = window(seq, count, 4, NULL, end);
    hls_live_update u;
    hls_live_tracker_update(t, pl, (int64_t)(at * S_NS), &u);
    hls_playlist_free(pl);
    return u;
}

static void test_window_slides_and_ends(void **state)
{
    (void)state;
    hls_playlist *pl = window(10, 6, 4, NULL, false);
    hls_live_tracker t;
    hls_live_update u;
    hls_live_tracker_start(&t, pl, 3, 0, &u);
    hls_playlist_free(pl);
    assert_int_equal(u.first_new, 3);
    assert_int_equal(u.new_count, 3);
    assert_int_equal(u.next_reload_ns, 4 * S_NS);
    assert_int_equal(t.next_sequence, 16);
    /* Unchanged: nothing new, reload after half a target. */
    u = reload(&t, 10, 6, false, 4);
    assert_false(u.changed);
    assert_int_equal(u.new_count, 0);
    assert_int_equal(u.next_reload_ns, 6 * S_NS);
    /* Slid by two: the two new ones (16, 17) are appended, 10 and 11 left the window. */
    u = reload(&t, 12, 6, false, 6);
    assert_true(u.changed);
    assert_int_equal(u.first_new, 4);
    assert_int_equal(u.new_count, 2);
    assert_int_equal(u.window_first, 12);
    assert_int_equal(u.next_reload_ns, 10 * S_NS);
    assert_false(u.reset || u.skipped || u.stuck || u.ended);
    /* ENDLIST with one more segment: appended, and the stream ends. */
    u = reload(&t, 13, 6, true, 10);
    assert_true(u.ended);
    assert_int_equal(u.first_new, 5);
    assert_int_equal(u.new_count, 1);
    /* A playlist that only gains ENDLIST changed too. */
    pl = window(0, 2, 4, NULL, false);
    hls_live_tracker_start(&t, pl, 0, 0, &u);
    hls_playlist_free(pl);
    u = reload(&t, 0, 2, true, 4);
    assert_true(u.changed && u.ended);
    assert_int_equal(u.new_count, 0);
}

/* A playlist that lists no segment (a server that just restarted, say) says nothing of the
 * window: the reset or jump is judged on the next playlist that lists some. Taken as a reset
 * itself, it lost the fence (no segment to put it on) and the next playlist was taken as a
 * slide: the same numbers again gave segments 107 to 109 twice, a restart from 0 or a jump came
 * with no fence. */
static void test_an_empty_playlist_changes_nothing(void **state)
{
    (void)state;
    static const struct {
        uint64_t empty_seq, next_seq;
        size_t next_count;
        bool reset, skipped;
        size_t first_new, new_count;
    } cases[] = {
        {100, 100, 11, false, false, 10, 1}, /* the same numbers: one new segment, 110 */
        {0, 0, 2, true, false, 0, 2},        /* a restart from 0: a reset */
        {115, 115, 3, false, true, 0, 3},    /* a jump past 110: a skip */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        hls_playlist *pl = window(100, 10, 4, NULL, false);
        hls_live_tracker t;
        hls_live_update u;
        hls_live_tracker_start(&t, pl, 7, 0, &u); /* 107 to 109 taken */
        hls_playlist_free(pl);
        u = reload(&t, cases[c].empty_seq, 0, false, 4);
        assert_false(u.changed || u.reset || u.skipped);
        assert_int_equal(u.new_count, 0);
        assert_int_equal(u.window_first, 100);
        u = reload(&t, cases[c].next_seq, cases[c].next_count, false, 6);
        if (u.reset != cases[c].reset || u.skipped != cases[c].skipped ||
            u.first_new != cases[c].first_new || u.new_count != cases[c].new_count)
            fail_msg("case %zu: reset %d, skipped %d, first new %zu, %zu new", c, u.reset,
                     u.skipped, u.first_new, u.new_count);
    }
    /* An empty playlist that ends the stream ends it. */
    hls_playlist *pl = window(100, 10, 4, NULL, false);
    hls_live_tracker t;
    hls_live_update u;
    hls_live_tracker_start(&t, pl, 7, 0, &u);
    hls_playlist_free(pl);
    u = reload(&t, 110, 0, true, 4);
    assert_true(u.changed && u.ended);
    assert_int_equal(u.new_count, 0);
}

static void test_stuck_reset_and_skip(void **state)
{
    (void)state;
    hls_playlist *pl = window(50, 5, 4, NULL, false);
    hls_live_tracker t;
    hls_live_update u;
    hls_live_tracker_start(&t, pl, 2, 0, &u);
    hls_playlist_free(pl);
    /* Unchanged at 2, 4, …, 14 s: 14 s is exactly 3.5 targets, not more; 16 s is stuck. */
    for (int at = 2; at <= 14; at += 2) {
        u = reload(&t, 50, 5, false, at);
        assert_false(u.stuck);
    }
    u = reload(&t, 50, 5, false, 16);
    assert_true(u.stuck);
    /* A change clears it. */
    u = reload(&t, 51, 5, false, 17);
    assert_false(u.stuck);
    assert_int_equal(u.new_count, 1);
    /* The sequence goes backwards: a reset, taken again from the start position. */
    u = reload(&t, 0, 10, false, 20);
    assert_true(u.reset);
    assert_int_equal(u.first_new, 7);
    assert_int_equal(u.new_count, 3);
    assert_int_equal(t.next_sequence, 10);
    /* The window jumped past sequences 10..19 never listed: take the whole window, flagged. */
    u = reload(&t, 20, 4, false, 24);
    assert_true(u.skipped);
    assert_false(u.reset);
    assert_int_equal(u.first_new, 0);
    assert_int_equal(u.new_count, 4);
    assert_int_equal(t.next_sequence, 24);
}

/* The model a reload makes keeps the program dates of the played and the added segments. */
static void test_merge_keeps_program_dates(void **state)
{
    (void)state;
    const int64_t t = 1796527200000; /* 2026-12-06T03:20:00Z */
    hls_playlist *played =
        window(10, 2, 4, "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T03:20:00Z\n", false);
    hls_playlist *reloaded =
        window(11, 3, 4, "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T03:20:04.250+00:00\n", false);
    hls_playlist *merged = NULL;
    char err[256];
    assert_int_equal(hls_live_merge(played, 0, reloaded, 1, 2, false, "http://h/live.m3u8", &merged,
                                    err, sizeof err),
                     KTH_OK);
    const hls_media_playlist *m = &merged->media;
    assert_int_equal(m->segment_count, 4);
    assert_int_equal(hls_media_segment(m, 0).program_time_ms, t);
    assert_true(hls_media_segment(m, 0).date_tag);
    assert_int_equal(hls_media_segment(m, 1).program_time_ms, t + 4000);
    /* The reloaded playlist dated its first segment (sequence 11), not the first one added. */
    assert_int_equal(hls_media_segment(m, 2).program_time_ms, t + 4250 + 4000);
    assert_int_equal(hls_media_segment(m, 3).program_time_ms, t + 4250 + 8000);
    hls_playlist_free(merged);
    hls_playlist_free(played);
    hls_playlist_free(reloaded);
}

/* The window a live server that dates every segment lists: `count` segments of 4 s from media
 * sequence `seq`, all under one AES-128 key (with an explicit IV when `iv`), under one init
 * section when `map` (which needs that IV), segment n dated 4n seconds after
 * 2026-12-06T00:00:00Z. */
static hls_playlist *dated_window(uint64_t seq, size_t count, bool iv, bool map)
{
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:4\n"
                     "#EXT-X-MEDIA-SEQUENCE:%llu\n#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\"%s\n%s",
                     (unsigned long long)seq, iv ? ",IV=0x000102030405060708090a0b0c0d0e0f" : "",
                     map ? "#EXT-X-MAP:URI=\"init.mp4\"\n" : "");
    for (size_t i = 0; i < count; i++) {
        uint64_t s = seq + i, secs = 4 * s;
        n += snprintf(text + n, sizeof text - (size_t)n,
                      "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T%02llu:%02llu:%02lluZ\n"
                      "#EXTINF:4.000,\nseg%llu.ts\n",
                      (unsigned long long)(secs / 3600), (unsigned long long)(secs / 60 % 60),
                      (unsigned long long)(secs % 60), (unsigned long long)s);
    }
    return hls_test_parse(text);
}

/* One reload: `played` with the segments of `reloaded` from `first` to its end merged in,
 * segments [0, released) of `played` released. Frees both and returns the merged model. */
static hls_playlist *merge_one(hls_playlist *played, hls_playlist *reloaded, size_t released,
                               size_t first)
{
    hls_playlist *merged = NULL;
    char err[256];
    kth_status st =
        hls_live_merge(played, released, reloaded, first, reloaded->media.segment_count - first,
                       false, "http://h/live.m3u8", &merged, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("reload to %zu segments: %s (%s)", played->media.segment_count + 1,
                 kth_strerror(st), err);
    hls_playlist_free(played);
    hls_playlist_free(reloaded);
    return merged;
}

/* A live stream reloads every few seconds for days: what each reload adds to the model must be
 * its segments' durations alone. A key or an init section the server declares again, unchanged,
 * in every playlist, and a date on every segment that the durations already give, were kept as
 * a new key, a new run and a new date per reload (over 200 bytes a reload on an encrypted
 * stream). The dates, keys and IVs the segments get stay those the server gave. */
static void test_merge_keeps_a_running_stream_flat(void **state)
{
    (void)state;
    enum { RELOADS = 300, WINDOW = 6 };
    const int64_t t0 = 1796515200000; /* 2026-12-06T00:00:00Z */
    for (int profile = 0; profile < 2; profile++) {
        bool iv = profile == 1, map = profile == 1;
        hls_playlist *played = dated_window(0, WINDOW, iv, map);
        for (uint64_t r = 1; r <= RELOADS; r++)
            played = merge_one(played, dated_window(r, WINDOW, iv, map), 0, WINDOW - 1);
        const hls_media_playlist *m = &played->media;
        assert_int_equal(m->segment_count, RELOADS + WINDOW);
        assert_int_equal(m->key_count, 1);
        assert_int_equal(m->map_count, map ? 1 : 0);
        assert_true(m->run_count_ <= 2);
        assert_int_equal(m->date_count_, 1);
        for (size_t i = 0; i < m->segment_count; i++) {
            hls_segment seg = hls_media_segment(m, i);
            assert_int_equal(seg.program_time_ms, t0 + 4000 * (int64_t)i);
            assert_int_equal(seg.key, 0);
            uint8_t got[16], want[16] = {0};
            assert_int_equal(hls_playlist_segment_iv(played, i, got), KTH_OK);
            for (int b = 0; b < 16; b++)
                want[b] = (uint8_t)(iv ? (size_t)b : b >= 8 ? i >> (8 * (15 - b)) : 0);
            assert_memory_equal(got, want, 16);
        }
        assert_string_equal(m->keys[0].uri, "https://cdn.example.com/path/to/k.bin");
        hls_playlist_free(played);
    }
}

/* A window of `count` 4 s segments from media sequence `seq` named by a hash of their sequence
 * (no number counts up from one name to the next), each with a title, the first dated (segment
 * n starts 4n seconds after 2026-12-06T00:00:00Z). */
static hls_playlist *hashed_window(uint64_t seq, size_t count)
{
    char text[4096];
    uint64_t secs = 4 * seq; /* the date of its first segment, from 2026-12-06T00:00:00Z */
    int n = snprintf(text, sizeof text,
                     "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:%llu\n"
                     "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T%02llu:%02llu:%02lluZ\n",
                     (unsigned long long)seq, (unsigned long long)(secs / 3600),
                     (unsigned long long)(secs / 60 % 60), (unsigned long long)(secs % 60));
    for (size_t i = 0; i < count; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "#EXTINF:4.000,song %llu\n%016llx.ts\n",
                      (unsigned long long)(seq + i),
                      (unsigned long long)((seq + i + 1) * 0x9e3779b97f4a7c15ull));
    return hls_test_parse(text);
}

/* Segments a live stream released are kept without their URIs and titles: a day of segments
 * named by a hash held about 75 bytes each of names in the model. They keep their sequence,
 * time and date; the ones not released keep their names. */
static void test_merge_keeps_no_uri_of_a_released_segment(void **state)
{
    (void)state;
    enum { RELOADS = 300, WINDOW = 6 };
    hls_playlist *played = hashed_window(0, WINDOW);
    for (uint64_t r = 1; r <= RELOADS; r++) /* all but the window are released */
        played = merge_one(played, hashed_window(r, WINDOW),
                           played->media.segment_count - (WINDOW - 1), WINDOW - 1);
    const hls_media_playlist *m = &played->media;
    size_t count = RELOADS + WINDOW, released = count - 1 - (WINDOW - 1);
    assert_int_equal(m->segment_count, count);
    assert_true(m->uri_count_ <= WINDOW + 2);
    assert_true(m->title_count_ <= WINDOW + 1);
    for (size_t i = 0; i < count; i++) {
        hls_segment seg = hls_media_segment(m, i);
        assert_int_equal(seg.sequence, i);
        assert_true(seg.start == 4.0 * (double)i);
        assert_int_equal(seg.program_time_ms, 1796515200000 + 4000 * (int64_t)i);
        char *uri = hls_media_segment_uri(m, i), want[96];
        if (i < released)
            snprintf(want, sizeof want, HLS_LIVE_RELEASED_URI "%zu", i);
        else
            snprintf(want, sizeof want, "https://cdn.example.com/path/to/%016llx.ts",
                     (unsigned long long)((i + 1) * 0x9e3779b97f4a7c15ull));
        assert_string_equal(uri, want);
        free(uri);
        assert_true(i < released ? seg.title == NULL : seg.title != NULL);
    }
    /* More released segments than played ones is a caller's error. */
    hls_playlist *reloaded = hashed_window(RELOADS + 1, WINDOW), *merged = NULL;
    char err[64];
    assert_int_equal(hls_live_merge(played, count + 1, reloaded, WINDOW - 1, 1, false,
                                    "http://h/live.m3u8", &merged, err, sizeof err),
                     KTH_ERR_INVALID_ARG);
    assert_null(merged);
    hls_playlist_free(reloaded);
    hls_playlist_free(played);
}

/* A window of `count` segments from media sequence `seq` of a server that declares its key
 * again before every even media sequence number (identical each time): the parser makes a key
 * of each declaration. */
static hls_playlist *rekeyed_window(uint64_t seq, size_t count)
{
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:%llu\n",
                     (unsigned long long)seq);
    for (size_t i = 0; i < count; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%s#EXTINF:4.000,\nseg%llu.ts\n",
                      (seq + i) % 2 == 0 || i == 0 ? "#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\"\n"
                                                   : "",
                      (unsigned long long)(seq + i));
    return hls_test_parse(text);
}

/* A server that declares the same key again within its window: the played model has a key
 * per declaration, which the merge keeps as they are (the layout holds indices of the model's
 * maps, which name their keys by index), while a key the reload adds that says what the one in
 * force says adds nothing. Merging once dropped the played model's repeats and then refused
 * the result as not keeping the played segments' keys. */
static void test_merge_keeps_a_played_key_declared_twice(void **state)
{
    (void)state;
    enum { RELOADS = 100, WINDOW = 6 };
    hls_playlist *played = rekeyed_window(0, WINDOW);
    size_t keys = played->media.key_count;
    assert_int_equal(keys, 3);
    for (uint64_t r = 1; r <= RELOADS; r++)
        played = merge_one(played, rekeyed_window(r, WINDOW), 0, WINDOW - 1);
    const hls_media_playlist *m = &played->media;
    assert_int_equal(m->segment_count, RELOADS + WINDOW);
    assert_int_equal(m->key_count, keys);
    for (size_t i = 0; i < m->segment_count; i++) {
        uint8_t got[16], want[16] = {0};
        assert_int_equal(hls_playlist_segment_iv(played, i, got), KTH_OK);
        want[15] = (uint8_t)i;
        want[14] = (uint8_t)(i >> 8);
        assert_memory_equal(got, want, 16);
        assert_string_equal(m->keys[hls_media_segment(m, i).key].uri,
                            "https://cdn.example.com/path/to/k.bin");
    }
    hls_playlist_free(played);
}

/* Every added segment keeps the date its server gave it. A reloaded playlist's segment whose
 * tag that playlist derives from an earlier tag was once left to the merged model to derive,
 * from other tags, and rounding to the millisecond made it 12.189 s where the server said
 * 12.188 s. */
static void test_merge_keeps_every_date_the_server_gave(void **state)
{
    (void)state;
    const int64_t t0 = 1796515200000; /* 2026-12-06T00:00:00Z */
    hls_playlist *played = hls_test_parse("#EXTM3U\n#EXT-X-TARGETDURATION:5\n"
                                          "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T00:00:00.000Z\n"
                                          "#EXTINF:4.0625,\nseg0.ts\n"
                                          "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T00:00:04.063Z\n"
                                          "#EXTINF:4.0625,\nseg1.ts\n");
    hls_playlist *reloaded = hls_test_parse("#EXTM3U\n#EXT-X-TARGETDURATION:5\n"
                                            "#EXT-X-MEDIA-SEQUENCE:1\n"
                                            "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T00:00:04.063Z\n"
                                            "#EXTINF:4.0625,\nseg1.ts\n"
                                            "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T00:00:08.126Z\n"
                                            "#EXTINF:4.0625,\nseg2.ts\n"
                                            "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T00:00:12.188Z\n"
                                            "#EXTINF:4.0625,\nseg3.ts\n");
    played = merge_one(played, reloaded, 0, 1);
    const hls_media_playlist *m = &played->media;
    static const int64_t said[] = {0, 4063, 8126, 12188};
    assert_int_equal(m->segment_count, 4);
    for (size_t i = 0; i < 4; i++)
        if (hls_media_segment(m, i).program_time_ms != t0 + said[i])
            fail_msg("segment %zu dated %lld ms after the first, the server said %lld", i,
                     (long long)(hls_media_segment(m, i).program_time_ms - t0), (long long)said[i]);
    hls_playlist_free(played);
}

/* A duration the server wrote with more than six decimals stays the double the server's text
 * gave, merge after merge, and so does every start: the merge wrote six decimals, so each
 * segment after the first merge lasted 0.33 us more. */
static void test_merge_keeps_durations_exact(void **state)
{
    (void)state;
    enum { RELOADS = 50, WINDOW = 6 };
    const double aac_s = 5.994666667; /* 281 AAC frames at 48 kHz, as a server writes it */
    hls_playlist *played = window(0, WINDOW, aac_s, NULL, false);
    const double d = hls_media_segment(&played->media, 0).duration;
    for (uint64_t r = 1; r <= RELOADS; r++)
        played = merge_one(played, window(r, WINDOW, aac_s, NULL, false), 0, WINDOW - 1);
    const hls_media_playlist *m = &played->media;
    double start = 0;
    for (size_t i = 0; i < m->segment_count; i++) {
        hls_segment seg = hls_media_segment(m, i);
        assert_true(seg.duration == d);
        assert_true(seg.start == start);
        start += d;
    }
    hls_playlist_free(played);
}

/* An init section keeps the key it was declared under, merge after merge, whatever the order
 * of EXT-X-MAP and EXT-X-KEY: a clear one declared before its segments' key (which has no IV:
 * an init section could not be under it) stays clear; one declared under a key stays under it.
 * The merge wrote a segment's key before its init section: the first case was refused at the
 * first reload, the second put a clear init section under the segments' key, the third moved
 * the played keys. */
static void test_merge_keeps_each_init_section_under_its_own_key(void **state)
{
    (void)state;
    enum { RELOADS = 20, WINDOW = 4 };
    static const char *const heads[] = {
        "#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\"\n",
        "#EXT-X-MAP:URI=\"init.mp4\"\n"
        "#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\",IV=0x0102030405060708090a0b0c0d0e0f10\n",
        "#EXT-X-KEY:METHOD=AES-128,URI=\"k1.bin\",IV=0x0102030405060708090a0b0c0d0e0f10\n"
        "#EXT-X-MAP:URI=\"init.mp4\"\n"
        "#EXT-X-KEY:METHOD=AES-128,URI=\"k2.bin\",IV=0x0102030405060708090a0b0c0d0e0f10\n",
    };
    for (size_t h = 0; h < sizeof heads / sizeof heads[0]; h++) {
        hls_playlist *played = window(0, WINDOW, 4, heads[h], false);
        const hls_media_playlist *first = &played->media;
        size_t map_key = first->maps[0].key, seg_key = hls_media_segment(first, 0).key;
        size_t keys = first->key_count;
        for (uint64_t r = 1; r <= RELOADS; r++)
            played = merge_one(played, window(r, WINDOW, 4, heads[h], false), 0, WINDOW - 1);
        const hls_media_playlist *m = &played->media;
        assert_int_equal(m->segment_count, RELOADS + WINDOW);
        assert_int_equal(m->map_count, 1);
        assert_int_equal(m->key_count, keys);
        assert_int_equal(m->maps[0].key, map_key);
        for (size_t i = 0; i < m->segment_count; i++)
            assert_int_equal(hls_media_segment(m, i).key, seg_key);
        hls_playlist_free(played);
    }
}

/* A live stream runs for days: the model a reload makes outgrows the bounds a fetched playlist
 * is held to (16 MiB of text, 200,000 segments), and the merge still joins it. One second
 * segments with 90-byte URIs reach both in about two days. */
static void test_merge_outgrows_the_bounds_of_a_fetched_playlist(void **state)
{
    (void)state;
    enum { PLAYED = 200000 };
    const char *uri = "http://cdn.example/live/channel-one/audio/hls/aac-128k/segment_";
    size_t cap = (size_t)PLAYED * 110 + 256, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)snprintf(text, cap, "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n");
    for (size_t i = 0; i < PLAYED; i++)
        n += (size_t)snprintf(text + n, cap - n, "#EXTINF:1.000,\n%s%zu.ts\n", uri, i);
    hls_parse_limits big = {.max_segments = 2 * PLAYED, .max_playlist_bytes = 2 * cap};
    hls_playlist *played = NULL;
    char err[256];
    assert_int_equal(hls_playlist_parse((const uint8_t *)text, n, "http://cdn.example/live.m3u8",
                                        &big, &played, err, sizeof err),
                     KTH_OK);
    free(text);
    char window_text[512];
    snprintf(window_text, sizeof window_text,
             "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:%d\n"
             "#EXTINF:1.000,\n%s%d.ts\n#EXTINF:1.000,\n%s%d.ts\n",
             PLAYED - 1, uri, PLAYED - 1, uri, PLAYED);
    hls_playlist *reloaded = hls_test_parse(window_text);
    hls_playlist *merged = NULL;
    kth_status st = hls_live_merge(played, 0, reloaded, 1, 1, false, "http://cdn.example/live.m3u8",
                                   &merged, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("merge: %s (%s)", kth_strerror(st), err);
    assert_int_equal(merged->media.segment_count, PLAYED + 1);
    char *last = hls_media_segment_uri(&merged->media, PLAYED);
    char want[128];
    snprintf(want, sizeof want, "%s%d.ts", uri, PLAYED);
    assert_string_equal(last, want);
    free(last);
    hls_playlist_free(merged);
    hls_playlist_free(played);
    hls_playlist_free(reloaded);
}

/* The window of a live server with a little of everything, `count` segments from media
 * sequence `seq`, each segment's tags a function of its sequence number s: a key epoch of 8
 * segments (clear, key 1, key 2; both keys with an IV), an init section that changes every 16
 * (declared under the key in force), a date on every segment that jumps 2.5 s at every 29th,
 * a title on every 5th, a discontinuity before every 13th, three durations in turn, and names
 * numbered for 30 segments in 40 and hashed for the other 10. */
static hls_playlist *assorted_window(uint64_t seq, size_t count)
{
    static const double durations[] = {4.0, 3.96, 5.994666667};
    char text[8192];
    int n = snprintf(text, sizeof text,
                     "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:6\n"
                     "#EXT-X-MEDIA-SEQUENCE:%llu\n#EXT-X-DISCONTINUITY-SEQUENCE:%llu\n",
                     (unsigned long long)seq, (unsigned long long)(seq / 13));
    double when = 0; /* seconds after 2026-12-06T00:00:00Z of segment 0, then of segment s */
    for (uint64_t s = 0; s < seq; s++)
        when += durations[s % 3] + ((s + 1) % 29 == 0 ? 2.5 : 0);
    for (uint64_t s = seq; s < seq + count; s++) {
        bool first = s == seq;
        uint64_t epoch = s / 8 % 3, map = s / 16 % 2;
        if (first || s % 8 == 0) {
            if (epoch == 0 && !first)
                n += snprintf(text + n, sizeof text - (size_t)n, "#EXT-X-KEY:METHOD=NONE\n");
            else if (epoch > 0)
                n += snprintf(text + n, sizeof text - (size_t)n,
                              "#EXT-X-KEY:METHOD=AES-128,URI=\"k%llu.bin\","
                              "IV=0x0102030405060708090a0b0c0d0e0f%02llx\n",
                              (unsigned long long)epoch, (unsigned long long)epoch);
        }
        if (first || s % 16 == 0)
            n += snprintf(text + n, sizeof text - (size_t)n, "#EXT-X-MAP:URI=\"init%llu.mp4\"\n",
                          (unsigned long long)map);
        if (s % 13 == 0 && s > 0)
            n += snprintf(text + n, sizeof text - (size_t)n, "#EXT-X-DISCONTINUITY\n");
        long long ms = (long long)(when * 1000.0 + 0.5);
        n += snprintf(text + n, sizeof text - (size_t)n,
                      "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T%02lld:%02lld:%02lld.%03lldZ\n"
                      "#EXTINF:%.9f,%s\n",
                      ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, ms % 1000, durations[s % 3],
                      s % 5 == 0 ? "a title" : "");
        if (s % 40 < 30)
            n +=
                snprintf(text + n, sizeof text - (size_t)n, "seg%llu.m4s\n", (unsigned long long)s);
        else
            n += snprintf(text + n, sizeof text - (size_t)n, "%016llx.m4s\n",
                          (unsigned long long)((s + 1) * 0x9e3779b97f4a7c15ull));
        when += durations[s % 3] + ((s + 1) % 29 == 0 ? 2.5 : 0);
    }
    return hls_test_parse(text);
}

/* One reload merged both ways: segments [first, first + count) of `reloaded` into `played`,
 * segments [0, released) of it released. Fails the test (naming `what`) unless the merge and
 * the merge that writes everything make the same model. Frees both and returns the merged
 * model. */
static hls_playlist *merge_checked(hls_playlist *played, hls_playlist *reloaded, size_t released,
                                   size_t first, size_t count, bool fence, const char *what)
{
    hls_playlist *fast = NULL, *whole = NULL;
    char err[256];
    kth_status st = hls_live_merge(played, released, reloaded, first, count, fence,
                                   "http://h/live.m3u8", &fast, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("%s: %s (%s)", what, kth_strerror(st), err);
    st = hls_live_merge_whole(played, released, reloaded, first, count, fence, "http://h/live.m3u8",
                              &whole, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("%s, whole: %s (%s)", what, kth_strerror(st), err);
    hls_test_same_media(&whole->media, &fast->media, what);
    hls_playlist_free(whole);
    hls_playlist_free(reloaded);
    hls_playlist_free(played);
    return fast;
}

/* A merge copies the segments an earlier merge released instead of writing and parsing them
 * again, and makes the model the merge that writes everything makes: reload after reload, with
 * one or three new segments, the released point moving by zero to several segments, and now
 * and then a fence. */
static void test_merge_after_released_segments_equals_the_whole_merge(void **state)
{
    (void)state;
    enum { RELOADS = 400, WINDOW = 6 };
    hls_playlist *played = assorted_window(0, WINDOW);
    for (size_t r = 1; r <= RELOADS; r++) {
        size_t add = r % 7 == 0 ? 3 : 1, have = played->media.segment_count;
        size_t lag = WINDOW - 1 + r % 5, released = have > lag ? have - lag : 0;
        char what[64];
        snprintf(what, sizeof what, "reload %zu", r);
        played = merge_checked(played, assorted_window(have + add - WINDOW, WINDOW), released,
                               WINDOW - add, add, r % 17 == 0, what);
    }
    assert_true(played->media.key_count >= 2);
    assert_true(played->media.map_count >= 2);
    hls_playlist_free(played);
}

/* Bytes kithara asks its allocator for (alloc and resize), counted while `counting`; main()
 * gives kithara this allocator before anything is allocated. */
static size_t asked;
static bool counting;

static void *count_alloc(void *user, size_t size)
{
    (void)user;
    asked += counting ? size : 0;
    return malloc(size);
}

static void *count_resize(void *user, void *ptr, size_t size)
{
    (void)user;
    asked += counting ? size : 0;
    return realloc(ptr, size);
}

static void count_release(void *user, void *ptr)
{
    (void)user;
    free(ptr);
}

/* A reload of a stream that has run for long costs what its window holds: a model of 50,000
 * played segments, all but the window released, is merged with a few bytes a segment asked
 * for (the copied tables: a byte of duration index, a share of the start marks), where writing
 * and parsing it all asks for tens. */
static void test_a_reload_does_not_write_out_the_released_segments(void **state)
{
    (void)state;
    enum { PLAYED = 50000, WINDOW = 6 };
    hls_playlist *played = window(0, WINDOW, 1.0, NULL, false);
    char *text = malloc((size_t)PLAYED * 40 + 256);
    assert_non_null(text);
    int n = sprintf(text, "#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
    for (size_t i = 0; i < PLAYED; i++)
        n += sprintf(text + n, "#EXTINF:1.000,\nseg%zu.ts\n", i);
    hls_playlist_free(played);
    hls_parse_limits big = {.max_segments = PLAYED, .max_playlist_bytes = (size_t)n};
    char err[256];
    assert_int_equal(hls_playlist_parse((const uint8_t *)text, (size_t)n, "http://h/live.m3u8",
                                        &big, &played, err, sizeof err),
                     KTH_OK);
    free(text);
    size_t each[2]; /* asked for by the merge, then by the whole merge */
    for (int reload = 0; reload < 3; reload++) {
        size_t have = played->media.segment_count;
        hls_playlist *reloaded = window(have + 1 - WINDOW, WINDOW, 1.0, NULL, false);
        hls_playlist *merged = NULL, *whole = NULL;
        asked = 0;
        counting = true;
        kth_status st = hls_live_merge(played, have - WINDOW, reloaded, WINDOW - 1, 1, false,
                                       "http://h/live.m3u8", &merged, err, sizeof err);
        counting = false;
        each[0] = asked;
        assert_int_equal(st, KTH_OK);
        asked = 0;
        counting = true;
        st = hls_live_merge_whole(played, have - WINDOW, reloaded, WINDOW - 1, 1, false,
                                  "http://h/live.m3u8", &whole, err, sizeof err);
        counting = false;
        each[1] = asked;
        assert_int_equal(st, KTH_OK);
        hls_test_same_media(&whole->media, &merged->media, "a long stream");
        /* The first reload writes out every segment (none was released before); the next
         * ones copy them. */
        print_message("reload %d: %.1f bytes a segment asked for, %.1f by the whole merge\n",
                      reload, (double)each[0] / PLAYED, (double)each[1] / PLAYED);
        if (reload > 0 && each[0] > (size_t)PLAYED * 4)
            fail_msg("reload %d asked for %zu bytes, %.1f a played segment", reload, each[0],
                     (double)each[0] / PLAYED);
        assert_true(each[1] > (size_t)PLAYED * 20);
        hls_playlist_free(whole);
        hls_playlist_free(reloaded);
        hls_playlist_free(played);
        played = merged;
    }
    hls_playlist_free(played);
}

/* A live stream whose segments last 3 ms more each, 300 distinct durations in all: reloads
 * after the released segments held 64 distinct durations never returned (the table that finds
 * a duration's index was sized for 64 at the first new one). */
static void test_merge_after_many_distinct_durations(void **state)
{
    (void)state;
    enum { RELOADS = 300, WINDOW = 6 };
    hls_playlist *played = NULL;
    for (size_t r = 0; r <= RELOADS; r++) {
        char text[1024];
        int n = snprintf(text, sizeof text,
                         "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:%zu\n", r);
        for (size_t s = r; s < r + WINDOW; s++)
            n += snprintf(text + n, sizeof text - (size_t)n, "#EXTINF:4.%03zu,\nseg%zu.ts\n",
                          s * 3 % 1000, s);
        hls_playlist *reloaded = hls_test_parse(text);
        if (played == NULL) {
            played = reloaded;
            continue;
        }
        size_t have = played->media.segment_count;
        char what[64];
        snprintf(what, sizeof what, "reload %zu", r);
        played = merge_checked(played, reloaded, have - (WINDOW - 1), WINDOW - 1, 1, false, what);
    }
    assert_int_equal(played->media.duration_count_, RELOADS + WINDOW);
    hls_playlist_free(played);
}

/* Two EXT-X-DISCONTINUITY tags in front of one segment count as two: the merge wrote one, and
 * every segment after it lost one from its discontinuity sequence. */
static void test_merge_keeps_a_double_discontinuity(void **state)
{
    (void)state;
    hls_playlist *played = hls_test_parse("#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
                                          "#EXTINF:4,\nseg0.ts\n#EXT-X-DISCONTINUITY\n"
                                          "#EXT-X-DISCONTINUITY\n#EXTINF:4,\nseg1.ts\n"
                                          "#EXTINF:4,\nseg2.ts\n");
    assert_int_equal(hls_media_segment(&played->media, 2).discontinuity_sequence, 2);
    for (uint64_t r = 1; r <= 3; r++) {
        char text[512];
        snprintf(text, sizeof text,
                 "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:%llu\n"
                 "#EXT-X-DISCONTINUITY-SEQUENCE:2\n#EXTINF:4,\nseg%llu.ts\n"
                 "#EXTINF:4,\nseg%llu.ts\n",
                 (unsigned long long)(r + 1), (unsigned long long)(r + 1),
                 (unsigned long long)(r + 2));
        played = merge_one(played, hls_test_parse(text), r, 1);
    }
    const hls_media_playlist *m = &played->media;
    assert_int_equal(m->segment_count, 6);
    for (size_t i = 0; i < m->segment_count; i++)
        assert_int_equal(hls_media_segment(m, i).discontinuity_sequence, i == 0 ? 0 : 2);
    hls_playlist_free(played);
}

/* A live stream cut from one growing resource by byte ranges: its released segments keep
 * neither a name nor a range, so the model holds a string and a range only for the segments
 * not released. Each released segment kept its stand-in name as a string of its own (a ranged
 * segment never joins a run of names) and a 16-byte range: about 40 bytes a segment. */
static void test_merge_keeps_no_range_of_a_released_segment(void **state)
{
    (void)state;
    enum { RELOADS = 300, WINDOW = 6 };
    hls_playlist *played = NULL;
    for (uint64_t r = 0; r <= RELOADS; r++) {
        char text[2048];
        int n = snprintf(text, sizeof text,
                         "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:%llu\n",
                         (unsigned long long)r);
        for (uint64_t s = r; s < r + WINDOW; s++)
            n += snprintf(text + n, sizeof text - (size_t)n,
                          "#EXT-X-BYTERANGE:1000@%llu\n#EXTINF:4,\nlive.aac\n",
                          (unsigned long long)(s * 1000));
        hls_playlist *reloaded = hls_test_parse(text);
        if (played == NULL) {
            played = reloaded;
            continue;
        }
        size_t released = played->media.segment_count - (WINDOW - 1);
        played = merge_checked(played, reloaded, released, WINDOW - 1, 1, false, "a ranged stream");
    }
    const hls_media_playlist *m = &played->media;
    size_t released = m->segment_count - 1 - (WINDOW - 1);
    assert_int_equal(m->segment_count, RELOADS + WINDOW);
    assert_true(m->uri_count_ <= 3);
    assert_non_null(m->ranges_);
    assert_true(m->segment_count - m->ranges_first_ <= WINDOW + 1);
    for (size_t i = 0; i < m->segment_count; i++) {
        hls_segment seg = hls_media_segment(m, i);
        assert_true(seg.start == 4.0 * (double)i);
        assert_int_equal(seg.range.present, i >= released);
        if (i >= released) {
            assert_int_equal(seg.range.offset, 1000 * i);
            assert_int_equal(seg.range.length, 1000);
            hls_test_segment_uri(m, i, "https://cdn.example.com/path/to/live.aac");
        }
    }
    hls_playlist_free(played);
}

int main(void)
{
    const kth_allocator counter = {count_alloc, count_resize, count_release, NULL};
    if (kth_set_allocator(&counter) != KTH_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_start_and_server_control_tags_parse),
        cmocka_unit_test(test_start_segment_rules),
        cmocka_unit_test(test_reload_delays),
        cmocka_unit_test(test_window_slides_and_ends),
        cmocka_unit_test(test_stuck_reset_and_skip),
        cmocka_unit_test(test_an_empty_playlist_changes_nothing),
        cmocka_unit_test(test_merge_keeps_program_dates),
        cmocka_unit_test(test_merge_outgrows_the_bounds_of_a_fetched_playlist),
        cmocka_unit_test(test_merge_keeps_a_running_stream_flat),
        cmocka_unit_test(test_merge_keeps_no_uri_of_a_released_segment),
        cmocka_unit_test(test_merge_keeps_a_played_key_declared_twice),
        cmocka_unit_test(test_merge_keeps_every_date_the_server_gave),
        cmocka_unit_test(test_merge_keeps_durations_exact),
        cmocka_unit_test(test_merge_keeps_each_init_section_under_its_own_key),
        cmocka_unit_test(test_merge_after_released_segments_equals_the_whole_merge),
        cmocka_unit_test(test_a_reload_does_not_write_out_the_released_segments),
        cmocka_unit_test(test_merge_after_many_distinct_durations),
        cmocka_unit_test(test_merge_keeps_a_double_discontinuity),
        cmocka_unit_test(test_merge_keeps_no_range_of_a_released_segment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
