/*
 * test_hls_live.c — the live playlist rules against the test server's live mode, in virtual
 * time: a client that reloads when hls_live_tracker says, over a window the test's clock
 * advances, takes every segment exactly once and byte-exact, in media sequence order, and
 * sees the stream end, stop (stuck), restart (reset) and break (discontinuity) when the server
 * does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kithara/hls.h>
#include <kithara/kithara.h>

#include <pthread.h>
#include <stdatomic.h>

#include "hls/live.h"
#include "hls/playlist.h"
#include "hls/session.h"
#include "kts_live.h"
#include "net/downloader.h"
#include "platform/clock.h"
#include "stream/source.h"
#include "test_support.h"
#include "live_player.h"
#include "testclient.h"
#include "testserver.h"

static hls_playlist *load(client *c)
{
    ktc_response r = {0};
    ktc_fetch(c->url, NULL, &r);
    assert_int_equal(r.status, 200);
    hls_playlist *pl = NULL;
    char err[256] = "";
    if (hls_playlist_parse(r.body, r.len, c->url, NULL, &pl, err, sizeof err) != KTH_OK)
        fail_msg("parse: %s", err);
    ktc_response_free(&r);
    return pl;
}

/* Fetches the segments the update says to append and checks each byte. */
static void take(client *c, const hls_playlist *pl, const hls_live_update *u)
{
    for (size_t i = u->first_new; i < u->first_new + u->new_count; i++) {
        const hls_segment seg_seg = hls_media_segment(&pl->media, i), *seg = &seg_seg;
        assert_int_equal(seg->sequence, c->next_expected);
        ktc_response r = {0};
        char *uri = hls_media_segment_uri(&pl->media, i);
        assert_non_null(uri);
        ktc_fetch(uri, NULL, &r);
        free(uri);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.len, c->cfg.segment_size);
        uint64_t seed = kts_live_segment_seed(&c->cfg, seg->sequence, c->reset_seen);
        assert_int_equal(kts_ts_synth_check(seed, 0, r.body, r.len), r.len);
        ktc_response_free(&r);
        c->next_expected++;
        c->taken++;
    }
}

/* The first load at time 0: *u says what to take and when to reload. */
static void first_load(client *c, hls_live_update *u)
{
    hls_playlist *pl = load(c);
    size_t start = hls_live_start_segment(pl, NULL);
    hls_live_tracker_start(&c->tracker, pl, start, 0, u);
    c->next_expected = hls_media_segment(&pl->media, start).sequence;
    take(c, pl, u);
    hls_playlist_free(pl);
}

/* Advances the server to the reload time u->next_reload_ns and reloads. */
static hls_playlist *reload(client *c, hls_live_update *u)
{
    int64_t at = u->next_reload_ns;
    assert_int_equal(kts_live_advance(c->ls, at / NS_PER_MS), KTH_OK);
    hls_playlist *pl = load(c);
    hls_live_tracker_update(&c->tracker, pl, at, u);
    return pl;
}

static void test_window_slides_every_segment_once(void **state)
{
    (void)state;
    client c;
    client_start(
        &c, &(kts_live){.window = 6, .target_duration = 4, .segment_size = 3000, .seed = 7}, NULL);
    hls_live_update u;
    first_load(&c, &u);
    /* 24 s of window, start 12 s before the end: segments 3, 4 and 5. */
    assert_int_equal(c.taken, 3);
    assert_int_equal(u.next_reload_ns, 4000 * NS_PER_MS);
    unsigned unchanged = 0;
    for (int i = 0; i < 40; i++) {
        hls_playlist *pl = reload(&c, &u);
        assert_false(u.reset || u.skipped || u.stuck || u.ended);
        unchanged += !u.changed;
        take(&c, pl, &u);
        hls_playlist_free(pl);
    }
    /* Reloads at the target duration keep pace with one segment per target duration. */
    assert_int_equal(unchanged, 0);
    assert_int_equal(c.taken, 3 + 40);
    /* A segment that left the window is gone from the server. */
    char old[512];
    kts_url(c.srv, "/tv/seg0.ts", old, sizeof old);
    ktc_response r = {0};
    ktc_fetch(old, NULL, &r);
    assert_int_equal(r.status, 404);
    ktc_response_free(&r);
    client_stop(&c);
}

static void test_endlist_ends_after_the_last_segment(void **state)
{
    (void)state;
    client c;
    client_start(&c,
                 &(kts_live){.window = 4,
                             .target_duration = 2,
                             .segment_size = 1880,
                             .seed = 11,
                             .mode = KTS_LIVE_ENDLIST,
                             .mode_at = 9},
                 NULL);
    hls_live_update u;
    first_load(&c, &u);
    int reloads = 0;
    while (!u.ended && reloads < 50) {
        hls_playlist *pl = reload(&c, &u);
        take(&c, pl, &u);
        hls_playlist_free(pl);
        reloads++;
    }
    assert_true(u.ended);
    assert_int_equal(c.next_expected, 9); /* ends after segment 8, the last produced */
    client_stop(&c);
}

static void test_stuck_playlist_is_reported(void **state)
{
    (void)state;
    client c;
    client_start(&c,
                 &(kts_live){.window = 3,
                             .target_duration = 2,
                             .segment_size = 188,
                             .seed = 3,
                             .mode = KTS_LIVE_STUCK,
                             .mode_at = 5},
                 NULL);
    hls_live_update u;
    first_load(&c, &u);
    int64_t last_change = 0, at = 0;
    int reloads = 0;
    while (!u.stuck && reloads < 50) {
        at = u.next_reload_ns;
        hls_playlist *pl = reload(&c, &u);
        if (u.changed)
            last_change = at;
        take(&c, pl, &u);
        hls_playlist_free(pl);
        reloads++;
    }
    assert_true(u.stuck);
    assert_int_equal(c.next_expected, 5);
    /* Said once the playlist had not changed for more than 3.5 target durations (7 s), and no
     * later than the next unchanged reload (half a target after). */
    assert_true(at - last_change > 7000 * NS_PER_MS);
    assert_true(at - last_change <= 8000 * NS_PER_MS);
    client_stop(&c);
}

static void test_server_reset_reanchors(void **state)
{
    (void)state;
    client c;
    client_start(&c,
                 &(kts_live){.window = 5,
                             .target_duration = 2,
                             .segment_size = 376,
                             .seed = 21,
                             .mode = KTS_LIVE_RESET,
                             .mode_at = 8},
                 NULL);
    hls_live_update u;
    first_load(&c, &u);
    int reloads = 0;
    while (!u.reset && reloads < 50) {
        hls_playlist *pl = reload(&c, &u);
        if (u.reset) {
            c.reset_seen = true;
            c.next_expected = hls_media_segment(&pl->media, u.first_new).sequence;
        }
        take(&c, pl, &u);
        hls_playlist_free(pl);
        reloads++;
    }
    assert_true(u.reset);
    /* After the restart, the new epoch's segments come in order from the new anchor. */
    for (int i = 0; i < 6; i++) {
        hls_playlist *pl = reload(&c, &u);
        assert_false(u.reset);
        take(&c, pl, &u);
        hls_playlist_free(pl);
    }
    client_stop(&c);
}

static void test_discontinuity_is_marked(void **state)
{
    (void)state;
    client c;
    client_start(&c,
                 &(kts_live){.window = 4,
                             .target_duration = 2,
                             .segment_size = 188,
                             .seed = 5,
                             .mode = KTS_LIVE_DISCONTINUITY,
                             .mode_at = 6},
                 NULL);
    hls_live_update u;
    first_load(&c, &u);
    bool seen = false;
    for (int i = 0; i < 10; i++) {
        hls_playlist *pl = reload(&c, &u);
        for (size_t k = u.first_new; k < u.first_new + u.new_count; k++) {
            const hls_segment seg_seg = hls_media_segment(&pl->media, k), *seg = &seg_seg;
            assert_int_equal(seg->discontinuity, seg->sequence == 6);
            seen |= seg->discontinuity;
        }
        take(&c, pl, &u);
        hls_playlist_free(pl);
    }
    assert_true(seen);
    client_stop(&c);
}

/* ---- a live stream played through kth_stream, in virtual time (live_player.h) ---- */

/* A live stream plays from three target durations before the live edge, follows the window
 * as it slides (reloads on the downloader's clock), and ends exactly after the last segment
 * once the playlist says EXT-X-ENDLIST: every byte once, in order, none missing. */
static void test_live_stream_plays_to_its_end(void **state)
{
    (void)state;
    player p;
    player_open(&p,
                &(kts_live){.window = 6,
                            .target_duration = 4,
                            .segment_size = 3760,
                            .seed = 7,
                            .mode = KTS_LIVE_ENDLIST,
                            .mode_at = 14},
                3, 0);
    uint64_t length;
    assert_false(kth_stream_length(p.stream, &length));
    kth_hls_playlist_info pi;
    assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    assert_string_equal(pi.kind, "live");
    assert_int_equal(pi.target_duration, 4);
    assert_true(pi.window_s == 24.0);
    assert_int_equal(pi.window_segments, 6);
    assert_false(pi.ended);
    play(&p, 500, 400);
    assert_true(atomic_load(&p.done));
    if (p.result != 0) /* a proven EOF */
        fail_msg("the read ended with %lld: %s", (long long)p.result, p.error);
    expect_segments(&p, 3, 14);
    assert_int_equal(p.fences, 0);
    assert_true(kth_stream_length(p.stream, &length));
    assert_int_equal(length, 11 * 3760);
    assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    assert_true(pi.ended);
    assert_true(count_events(&p, KTH_EVENT_HLS_LIVE_RELOADED) >= 1);
    /* Reloads came at the pace of the playlist: the server saw no more than one a target
     * duration while it changed (8 changes), and a few more (half a target each) around the
     * end; a reload that came late may have taken two changes at once. */
    unsigned reloads = kts_request_count(p.c.srv, "/tv/live.m3u8", NULL);
    if (reloads < 1 + 4 || reloads > 1 + 8 + 3)
        fail_msg("%u playlist requests", reloads);
    player_close(&p);
}

/* Once the playlist ended, a time seek before its last window still plays from the window's
 * first segment: the segments before it are gone from the server and were released by the
 * stream. It once went to the segment holding the time, which the stream could no longer
 * fetch: the read failed. */
static void test_live_time_seek_after_the_end_plays_the_window(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 4,
                    .target_duration = 2,
                    .segment_size = 1880,
                    .seed = 43,
                    .mode = KTS_LIVE_ENDLIST,
                    .mode_at = 16};
    player_open(&p, &cfg, 1, 4.0);
    play(&p, 500, 400);
    assert_true(atomic_load(&p.done));
    if (p.result != 0)
        fail_msg("the read ended with %lld: %s", (long long)p.result, p.error);
    expect_segments(&p, 1, 16);
    kth_hls_playlist_info pi;
    assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    assert_true(pi.ended);
    assert_true(pi.window_start_s == 24.0); /* segments 12 to 15 were listed last */
    kth_seek_anchor a;
    assert_int_equal(kth_stream_seek_time(p.stream, 0.0, &a), KTH_OK);
    assert_true(a.segment_start == 24.0);
    /* The reader thread has ended: this thread reads now. */
    unsigned char got[1880];
    size_t n = 0;
    while (n < sizeof got) {
        int64_t r = kth_stream_read(p.stream, got + n, sizeof got - n);
        if (r <= 0) {
            char why[256];
            kth_stream_last_error(p.stream, why, sizeof why);
            fail_msg("the read after the seek returned %lld: %s", (long long)r, why);
        }
        n += (size_t)r;
    }
    assert_int_equal(kts_ts_synth_check(kts_live_segment_seed(&cfg, 12, false), 0, got, sizeof got),
                     sizeof got);
    player_close(&p);
}

/* The segments the reader has played and the window has left are dropped from the cache: a
 * live stream's cache holds the window and what the reader has not played, however long it
 * runs. Checked after every step of a 40-segment run, and the bytes stay exact. */
static void test_live_cache_keeps_only_the_window_and_what_is_unplayed(void **state)
{
    (void)state;
    player p;
    const uint64_t size = 3760;
    player_open(&p,
                &(kts_live){.window = 4,
                            .target_duration = 2,
                            .segment_size = size,
                            .seed = 11,
                            .mode = KTS_LIVE_ENDLIST,
                            .mode_at = 40},
                1, 0);
    uint64_t most = 0;
    for (int i = 0; i < 400 && !atomic_load(&p.done); i++) {
        play(&p, 500, 1);
        kth_cache_stats st;
        assert_int_equal(kth_cache_get_stats(p.cache, &st), KTH_OK);
        most = st.resources > most ? st.resources : most;
    }
    assert_true(atomic_load(&p.done));
    if (p.result != 0)
        fail_msg("the read ended with %lld: %s", (long long)p.result, p.error);
    expect_segments(&p, 1, 40);
    /* The window (4), the segment being read, one fetched ahead of it and one the release has
     * not reached yet (it runs at reloads). */
    if (most > 4 + 3)
        fail_msg("the cache held up to %llu segments of a 4-segment window",
                 (unsigned long long)most);
    player_close(&p);
}

/* The same after a server reset: the media sequence starts again from 0, while the stream's
 * model numbers on, and the segments before the reset all leave at once. */
static void test_live_cache_stays_flat_across_a_server_reset(void **state)
{
    (void)state;
    player p;
    const uint64_t size = 1880;
    kts_live cfg = {.window = 4, .target_duration = 2, .segment_size = size, .seed = 19};
    cfg.mode = KTS_LIVE_RESET;
    cfg.mode_at = 8;
    player_open(&p, &cfg, 1, 0);
    size_t want = (7 + 24) * size; /* segments 1..7, then r0.. */
    uint64_t most = 0;
    for (int i = 0; i < 400 && atomic_load(&p.progress) < want; i++) {
        play(&p, 500, 1);
        kth_cache_stats st;
        assert_int_equal(kth_cache_get_stats(p.cache, &st), KTH_OK);
        most = st.resources > most ? st.resources : most;
    }
    stop_reading(&p);
    assert_true(p.got_len >= want);
    assert_int_equal(p.fences, 1);
    if (most > 4 + 3)
        fail_msg("the cache held up to %llu segments of a 4-segment window",
                 (unsigned long long)most);
    player_close(&p);
}

/* A discontinuity in the live window reaches the reader as a fence at that segment, as a
 * variant switch does, and the bytes on both sides are exact. A window of 12 segments of 2 s
 * (wide, so that a reader scheduled late never falls behind it) starts the stream at segment
 * 9; the discontinuity is before segment `at`. The stream never ends: the reader reads through
 * segment at + 2 and stops. */
static void discontinuity_run(uint64_t at)
{
    player p;
    kts_live cfg = {.window = 12, .target_duration = 2, .segment_size = 1880, .seed = 9};
    cfg.mode = KTS_LIVE_DISCONTINUITY;
    cfg.mode_at = at;
    player_open(&p, &cfg, 9, 0);
    size_t want = (size_t)(at + 3 - 9) * 1880;
    for (int i = 0; i < 400 && atomic_load(&p.progress) < want; i++)
        play(&p, 500, 1);
    stop_reading(&p);
    assert_true(p.got_len >= want);
    assert_int_equal(p.fences, 1);
    expect_first_segments(&p, 9, at + 3);
    /* A discontinuity a reload brings is announced; one in the first playlist is not news. */
    assert_int_equal(count_events(&p, KTH_EVENT_HLS_LIVE_DISCONTINUITY), at >= 12 ? 1 : 0);
    player_close(&p);
}

/* The discontinuity comes with a reload. */
static void test_live_discontinuity_is_a_fence(void **state)
{
    (void)state;
    discontinuity_run(14);
}

/* The discontinuity is in the first playlist, after the start segment. */
static void test_live_discontinuity_in_first_playlist_is_a_fence(void **state)
{
    (void)state;
    discontinuity_run(11);
}

/* The periods the session keeps (under its lock). */
static size_t period_count(player *p)
{
    hls_session *s = (hls_session *)stream_get_source(p->stream);
    platform_mutex_lock(&s->lock);
    size_t n = s->period_count;
    platform_mutex_unlock(&s->lock);
    return n;
}

/* A stream that marks a discontinuity before every segment (each a fence, so each a period)
 * keeps its period table to what the reader may still read: the periods of released segments
 * go. It once kept every one, and at the table's cap (a few hours of such a stream) dropped
 * fences without a word. A window of 6 segments of 1 s starts the stream at segment 3; the
 * reader reads 100 segments, every one byte-exact behind its fence. */
static void test_live_periods_of_passed_fences_go(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 6, .target_duration = 1, .segment_size = 1880, .seed = 12};
    cfg.mode = KTS_LIVE_DISCONTINUITIES;
    cfg.mode_at = 1;
    player_open(&p, &cfg, 3, 0);
    size_t want = 100 * 1880, most = 0;
    for (int i = 0; i < 1000 && atomic_load(&p.progress) < want; i++) {
        play(&p, 500, 1);
        size_t n = period_count(&p);
        most = n > most ? n : most;
    }
    if (most > 2 * cfg.window)
        fail_msg("the session kept up to %zu periods for a window of %u segments", most,
                 cfg.window);
    /* A byte seek back into the periods that went fails clearly, as one into any segment the
     * stream released does. */
    pthread_mutex_lock(&p.lock);
    uint64_t back = p.reads.offset[0] + 7 * 1880; /* segment 10 */
    pthread_mutex_unlock(&p.lock);
    assert_int_equal(kth_stream_seek(p.stream, (int64_t)back, SEEK_SET, NULL), KTH_OK);
    for (int i = 0; i < 100 && !atomic_load(&p.done); i++) {
        play(&p, 500, 1);
        wait_done(&p, 50);
    }
    assert_true(atomic_load(&p.done));
    assert_int_equal(p.result, KTH_ERR_NOT_FOUND);
    if (!strstr(p.error, "left the live window and were released"))
        fail_msg("the read failed with: %s", p.error);
    assert_true(p.got_len >= want);
    /* Segments 4 .. 102 each opened behind a fence (3's tag came in the first playlist, where
     * the stream starts: no fence before the first byte). */
    assert_true(p.fences >= 99);
    expect_first_segments(&p, 3, 103);
    player_close(&p);
}

/* Opens `cfg` (1 s segments of 188 bytes, window 40) with a discontinuity before every
 * segment, reads three segments, then holds the reader still while more segments than the
 * period table holds come, and lets it go on. The server's log is kept small meanwhile. */
static void stand_still_past_the_period_table(player *p, kts_live cfg, bool count_only)
{
    cfg.window = 40;
    cfg.target_duration = 1;
    cfg.segment_size = 188;
    cfg.mode = KTS_LIVE_DISCONTINUITIES;
    cfg.mode_at = 1;
    live_player_set_log_capacity(64);
    player_open(p, &cfg, 37, 0);
    live_player_set_log_capacity(0);
    if (count_only)
        player_count_only(p);
    play_until(p, 0, 3 * 188);
    set_paused(p, true);
    /* Well past the table's HLS_MAX_PERIODS: one period a segment, 30 s a step. */
    play(p, 30000, (HLS_MAX_PERIODS + 600) / 30);
    set_paused(p, false);
}

/* Checks that every segment the reader got after the first came behind a fence. */
static void expect_a_fence_per_segment(player *p)
{
    assert_int_equal(p->got_len % 188, 0);
    if (p->fences < p->got_len / 188 - 1)
        fail_msg("%u fences for %zu segments", p->fences, p->got_len / 188);
}

/* A reader that stands still for longer than the period table holds, on a stream with a
 * discontinuity before every segment: the fences the table has no room for wait, and when the
 * reader goes on (it skips to the window's start) every segment it reads is behind its fence
 * (once the table was full, fences were dropped without a word; then the stream failed). The
 * fence after the pause may have been met before it. */
static void test_live_fences_wait_for_room_in_the_period_table(void **state)
{
    (void)state;
    player p;
    stand_still_past_the_period_table(&p, (kts_live){.seed = 47}, false);
    if (atomic_load(&p.done))
        fail_msg("the stream ended: %s", p.error);
    size_t before = atomic_load(&p.progress);
    /* Past what the buffer (60 s by default) held, into the skip, and 20 segments on. */
    for (int i = 0;
         i < 200 && !atomic_load(&p.done) && atomic_load(&p.progress) < before + 100 * 188; i++)
        play(&p, 500, 1);
    if (atomic_load(&p.done))
        fail_msg("the stream ended: %s", p.error);
    stop_reading(&p);
    assert_true(count_events(&p, KTH_EVENT_HLS_LIVE_SKIPPED) >= 1);
    expect_a_fence_per_segment(&p);
    player_close(&p);
}

/* The same on an event playlist, which drops no segment and here ends while the reader stands
 * still: nothing is skipped, no reload comes any more, and the reader, once it goes on, reads
 * its way into the segments whose fences waited (the table makes room by letting go of periods
 * far behind the reader, as the reader moves). Every segment is behind its fence, to the end. */
static void test_event_fences_wait_for_room_in_the_period_table(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.seed = 53, .event = true, .end_at = HLS_MAX_PERIODS + 250};
    stand_still_past_the_period_table(&p, cfg, true);
    for (int i = 0; i < 2000 && !atomic_load(&p.done); i++)
        play(&p, 1000, 1);
    assert_true(atomic_load(&p.done));
    if (p.result != 0)
        fail_msg("the read ended with %lld: %s", (long long)p.result, p.error);
    assert_int_equal(p.got_len, (cfg.end_at - 37) * 188);
    assert_int_equal(count_events(&p, KTH_EVENT_HLS_LIVE_SKIPPED), 0);
    expect_a_fence_per_segment(&p);
    assert_true(period_count(&p) <= HLS_MAX_PERIODS);
    player_close(&p);
}

/* A playlist that stops changing for more than 3.5 target durations fails the stream with a
 * clear sentence, once the reader has read every segment it listed. */
static void test_live_stuck_playlist_fails_the_stream(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 4, .target_duration = 2, .segment_size = 1880, .seed = 13};
    cfg.mode = KTS_LIVE_STUCK;
    cfg.mode_at = 6;
    player_open(&p, &cfg, 1, 0);
    play(&p, 500, 400);
    assert_true(atomic_load(&p.done));
    assert_int_equal(p.result, KTH_ERR_NETWORK);
    assert_non_null(strstr(p.error, "the stream is stuck"));
    expect_segments(&p, 1, 6);
    player_close(&p);
}

/* The server restarts its stream (the media sequence goes back to 0): the reader meets a fence
 * and goes on with the new stream's segments, each byte-exact, and the event says so. */
static void test_live_server_reset_reanchors_behind_a_fence(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 4, .target_duration = 2, .segment_size = 1880, .seed = 17};
    cfg.window = 8;
    cfg.mode = KTS_LIVE_RESET;
    cfg.mode_at = 12;
    player_open(&p, &cfg, 5, 0);
    size_t want = (7 + 3) * 1880; /* segments 5..11, then r0..r2 */
    for (int i = 0; i < 400 && atomic_load(&p.progress) < want; i++)
        play(&p, 500, 1);
    stop_reading(&p);
    assert_true(p.got_len >= want);
    assert_int_equal(p.fences, 1);
    for (uint64_t k = 0; k < 10; k++) {
        bool after = k >= 7;
        uint64_t seed = kts_live_segment_seed(&p.c.cfg, after ? k - 7 : k + 5, after);
        assert_int_equal(kts_ts_synth_check(seed, 0, p.got + k * 1880, 1880), 1880);
    }
    assert_int_equal(count_events(&p, KTH_EVENT_HLS_LIVE_RESET), 1);
    player_close(&p);
}

/* The next reload of the stream is answered with the playlist the server served at time `ms`
 * (once). Returns the count of playlist requests before it. */
static unsigned answer_next_reload_as_of(player *p, int64_t ms)
{
    char text[4096];
    size_t n = kts_live_playlist(&p->c.cfg, ms, text, sizeof text);
    assert_true(n > 0);
    unsigned asked = kts_request_count(p->c.srv, "/tv/live.m3u8", NULL);
    assert_int_equal(kts_add_fault(p->c.srv, "/tv/live.m3u8",
                                   &(kts_fault){.kind = KTS_FAULT_CHANGE_BODY,
                                                .body = text,
                                                .body_len = n,
                                                .first_request = asked + 1,
                                                .last_request = asked + 1}),
                     KTH_OK);
    return asked;
}

/* An older copy of the playlist (a CDN edge behind the origin answers a reload) goes back in
 * media sequence as a server restart does, but lists what the stream took in already, under
 * the same numbers and names: it is passed over, not taken as a reset (it was: the stream
 * re-anchored behind a fence and the reader got segments it had read again). */
static void test_live_older_copy_of_the_playlist_is_no_reset(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 6, .target_duration = 2, .segment_size = 1880, .seed = 43};
    player_open(&p, &cfg, 3, 0);
    play_until(&p, 0, 5 * 1880); /* segments 3..7 */
    /* The next reload gets the playlist of three segments ago. */
    int64_t now_ms = (platform_clock_now(&p.vc.base) - T0_NS) / NS_PER_MS;
    unsigned asked = answer_next_reload_as_of(&p, now_ms - 6000);
    play_until(&p, 0, 12 * 1880);
    assert_true(kts_request_count(p.c.srv, "/tv/live.m3u8", NULL) > asked);
    stop_reading(&p);
    assert_int_equal(count_events(&p, KTH_EVENT_HLS_LIVE_RESET), 0);
    assert_int_equal(p.fences, 0);
    expect_first_segments(&p, 3, 15);
    player_close(&p);
}

/* A playlist that goes back to numbers and names the stream still holds, but lists nothing of
 * the window the last reload listed, is a restart (a server that names its segments by their
 * numbers, restarted while the reader stood still), not an older copy: the stream re-anchors.
 * The reader stands at segment 5 while the window moves 20 s on; then a reload answers the
 * playlist of time 0 (segments 0 to 5). */
static void test_live_playlist_behind_the_window_is_a_reset(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 6, .target_duration = 2, .segment_size = 1880, .seed = 61};
    player_open(&p, &cfg, 3, 4.0);
    play_until(&p, 0, 2 * 1880);
    set_paused(&p, true);
    play(&p, 500, 40);
    unsigned asked = answer_next_reload_as_of(&p, 0);
    count_events(&p, KTH_EVENT_HLS_LIVE_RESET);
    play(&p, 500, 4);
    assert_true(kts_request_count(p.c.srv, "/tv/live.m3u8", NULL) > asked);
    assert_true(count_events(&p, KTH_EVENT_HLS_LIVE_RESET) >= 1);
    set_paused(&p, false);
    stop_reading(&p);
    player_close(&p);
}

/* After a server reset whose first playlist the stream sees already holds several segments
 * (the stream re-anchors three target durations before its end, so the first of them are
 * never in the model), the window the stream reports and seeks in starts at the reset's
 * segments, never at a segment from before it. A seek to the window's start then plays the
 * new epoch's segments with no fence (it put the window's start on a segment of the old epoch,
 * whose fetch failed). */
static void test_live_window_after_a_server_reset_holds_only_its_segments(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 8, .target_duration = 2, .segment_size = 1880, .seed = 29};
    cfg.mode = KTS_LIVE_RESET;
    cfg.mode_at = 12;
    player_open(&p, &cfg, 5, 0);
    play_until(&p, 0, 7 * 1880); /* segments 5..11, the last before the reset */
    play(&p, 8000, 1);           /* the next reload sees r0..r3: the stream takes r1..r3 */
    play(&p, 500, 8);            /* and r4, r5 */
    unsigned fences = p.fences;
    kth_hls_playlist_info pi;
    assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    kth_seek_anchor a;
    assert_int_equal(kth_stream_seek_time(p.stream, 0.0, &a), KTH_OK);
    play_from(&p, a.offset, 2 * 1880);
    stop_reading(&p);
    assert_int_equal(p.fences, fences); /* nothing failed after the seek */
    /* The bytes from the seek on are two segments of the new epoch, in order. */
    size_t mark = SIZE_MAX;
    for (size_t r = p.reads.n; r-- > 0 && mark == SIZE_MAX;)
        if (p.reads.offset[r] == a.offset)
            mark = p.reads.got_at[r];
    assert_true(mark != SIZE_MAX && p.got_len >= mark + 2 * 1880);
    uint64_t k = 0;
    while (k < 16 && kts_ts_synth_check(kts_live_segment_seed(&p.c.cfg, k, true), 0, p.got + mark,
                                        1880) != 1880)
        k++;
    if (k == 16)
        fail_msg("the seek to the window's start (%.1f s) did not land on a segment of the new "
                 "epoch",
                 pi.window_start_s);
    assert_int_equal(kts_ts_synth_check(kts_live_segment_seed(&p.c.cfg, k + 1, true), 0,
                                        p.got + mark + 1880, 1880),
                     1880);
    player_close(&p);
}

/* The media sequence of each segment the reader got, in order (*count of them), found by
 * their patterns: each is the one after the last, or a later one (a skip). */
static size_t sequences_got(player *p, uint64_t first, uint64_t *seq, size_t max)
{
    uint64_t size = p->c.cfg.segment_size;
    size_t count = p->got_len / size;
    assert_true(count <= max);
    uint64_t next = first;
    for (size_t k = 0; k < count; k++) {
        uint64_t s = next;
        while (s < next + 100 && kts_ts_synth_check(kts_live_segment_seed(&p->c.cfg, s, false), 0,
                                                    p->got + k * size, size) != size)
            s++;
        if (s == next + 100)
            fail_msg("segment %zu the reader got is no segment from %llu on", k,
                     (unsigned long long)next);
        seq[k] = s;
        next = s + 1;
    }
    return count;
}

/* True when the server answered a request for segment k with `status`. */
static bool served_status(player *p, uint64_t k, int status)
{
    char path[64];
    snprintf(path, sizeof path, "/tv/seg%llu.ts", (unsigned long long)k);
    size_t n = kts_log_count(p->c.srv);
    for (size_t i = 0; i < n; i++) {
        kts_log_entry e;
        if (kts_log_get(p->c.srv, i, &e) == KTH_OK && strcmp(e.path, path) == 0 &&
            e.status == status)
            return true;
    }
    return false;
}

/* Opens a stream of four 2 s segments, reads three segments, then pauses the reader for 20 s:
 * ten segments more, the window of four far past it. */
static void open_and_fall_behind(player *p)
{
    kts_live cfg = {.window = 4, .target_duration = 2, .segment_size = 1880, .seed = 23};
    player_open(p, &cfg, 1, 4.0);
    for (int i = 0; i < 100 && atomic_load(&p->progress) < 3 * 1880; i++)
        play(p, 500, 1);
    set_paused(p, true);
    play(p, 500, 40);
}

/* A reader that pauses for longer than the window falls behind it: the segments it had not
 * got left the playlist, and the server answers 404 for them. The stream goes on at the first
 * segment still listed, behind a fence, with an event; every byte on both sides is exact. */
static void test_live_reader_behind_the_window_goes_on_at_its_start(void **state)
{
    (void)state;
    player p;
    open_and_fall_behind(&p);
    set_paused(&p, false);
    size_t before = atomic_load(&p.progress);
    for (int i = 0; i < 200 && atomic_load(&p.progress) < before + 8 * 1880; i++)
        play(&p, 500, 1);
    stop_reading(&p);
    assert_int_equal(p.got_len % 1880, 0);
    uint64_t seq[256];
    size_t n = sequences_got(&p, 1, seq, 256);
    size_t skips = 0;
    for (size_t k = 1; k < n; k++)
        skips += seq[k] != seq[k - 1] + 1;
    /* Usually one skip. A second is right when the window moved on again between the skip and
     * the fetch of the segment it went to (the skip knows the window of the last reload): seen
     * about once in 16 runs with four test processes at once. Each skip is one fence and one
     * event; when the reader got no byte between the two, both show as one jump in the
     * sequences (seen once in 64 such runs). */
    unsigned events = count_events(&p, KTH_EVENT_HLS_LIVE_SKIPPED);
    assert_true(skips >= 1 && events >= skips && events <= 2);
    assert_int_equal(p.fences, events);
    player_close(&p);
}

/* The same on a stream with a discontinuity before every segment, so that the segment that
 * left is not in the stream's last period (each discontinuity started one after it): the
 * stream went on failing with its 404. The reader is held at the end of segment 3 while the
 * window moves far past it, with 4 and 5 in its buffer; one byte into 4, the fetch of 6 meets
 * the 404. The stream goes on at the window's start after 4 and 5, every segment behind its
 * fence (a skip whose gone segment opens its period spliced at the reader, dropping 4 and 5). */
static void test_live_reader_behind_a_window_of_discontinuities_goes_on(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 4,
                    .target_duration = 2,
                    .segment_size = 1880,
                    .seed = 23,
                    .mode = KTS_LIVE_DISCONTINUITIES,
                    .mode_at = 1};
    player_open(&p, &cfg, 1, 4.0);
    hold_reader_at(&p, 3 * 1880);
    play_until(&p, 0, 3 * 1880);
    play(&p, 500, 40);
    assert_true(served_status(&p, 4, 200) && served_status(&p, 5, 200));
    hold_reader_at(&p, 4 * 1880 + 1);
    play(&p, 500, 2);
    assert_true(served_status(&p, 6, 404));
    /* Asked for once: the skip ended the stream's bytes before it (a skip that let the period
     * before run on over it asked again, and skipped a second time). */
    assert_int_equal(kts_request_count(p.c.srv, "/tv/seg6.ts", NULL), 1);
    /* One skip, or two when the segment it went to (the first the last reload listed) left
     * too before its fetch. */
    unsigned skips = count_events(&p, KTH_EVENT_HLS_LIVE_SKIPPED);
    assert_true(skips >= 1 && skips <= 2);
    hold_reader_at(&p, 0);
    for (int i = 0; i < 200 && !atomic_load(&p.done) && atomic_load(&p.progress) < 11 * 1880; i++)
        play(&p, 500, 1);
    if (atomic_load(&p.done))
        fail_msg("the stream ended: %s", p.error);
    stop_reading(&p);
    assert_int_equal(p.got_len % 1880, 0);
    uint64_t seq[256];
    size_t n = sequences_got(&p, 1, seq, 256);
    for (size_t k = 0; k < 5; k++)
        assert_int_equal(seq[k], k + 1);
    assert_true(seq[5] >= 10);
    assert_true(skips + count_events(&p, KTH_EVENT_HLS_LIVE_SKIPPED) <= 2);
    /* Every segment after the first came behind a fence, its discontinuity's or a skip's (a
     * second skip, when the window moved on again, adds one with no byte between). */
    assert_true(p.fences >= n - 1);
    player_close(&p);
}

/* The same, when the server's window moved on after the client's last reload: the segment
 * the skip goes to (the first the last reload listed) has left the server too. Its 404 is one
 * more skip, not a failure of the stream (it was: "HTTP status 404" after one skip, in five
 * runs of five). */
static void test_live_skip_past_a_window_that_moved_since_the_reload(void **state)
{
    (void)state;
    player p;
    open_and_fall_behind(&p);
    /* The server one target duration ahead of what the client reloaded last. */
    int64_t now_ms = (platform_clock_now(&p.vc.base) - T0_NS) / NS_PER_MS;
    assert_int_equal(client_advance(&p.c, now_ms + 2000), KTH_OK);
    size_t before = atomic_load(&p.progress);
    set_paused(&p, false);
    settle(&p); /* the reader meets the moved window before the next reload */
    platform_virtual_clock_advance(&p.vc, 2000 * NS_PER_MS); /* the client catches up */
    net_downloader_wake(p.d);
    settle(&p);
    for (int i = 0;
         i < 200 && !atomic_load(&p.done) && atomic_load(&p.progress) < before + 6 * 1880; i++)
        play(&p, 500, 1);
    if (atomic_load(&p.done))
        fail_msg("the stream ended: %s", p.error);
    stop_reading(&p);
    assert_int_equal(p.got_len % 1880, 0);
    /* A fence for each skip, except that two skips with no byte read between them (the
     * segment the first went to had left too) are met as one (seen once in 25 runs). */
    unsigned events = count_events(&p, KTH_EVENT_HLS_LIVE_SKIPPED);
    assert_true(events >= 1 && events <= 3);
    assert_true(p.fences >= 1 && p.fences <= events);
    player_close(&p);
}

/* A reader behind the window of segments much shorter than the target duration (1 s, target
 * 4 s), while reloads fail for a while: the segments leave at their own pace, so the count of
 * those that may have left since the last reload goes by the durations the playlist lists. By
 * the target, one 4 s after the reload counted one; the 404 of the second segment gone since
 * failed the stream. */
static void test_live_skip_past_short_segments_gone_since_the_reload(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {
        .window = 8, .target_duration = 4, .segment_ms = 1000, .segment_size = 1880, .seed = 37};
    player_open(&p, &cfg, 0, 2.0);
    for (int i = 0; i < 100 && atomic_load(&p.progress) < 3 * 1880; i++)
        play(&p, 500, 1);
    set_paused(&p, true);
    play(&p, 500, 30); /* 15 s: the window of 8 s far past the reader */
    /* The next two reloads fail (the next try is half a target later): 5 s without one. */
    unsigned asked = kts_request_count(p.c.srv, "/tv/live.m3u8", NULL);
    assert_int_equal(kts_add_fault(p.c.srv, "/tv/live.m3u8",
                                   &(kts_fault){.kind = KTS_FAULT_STATUS,
                                                .status = 404,
                                                .first_request = asked + 1,
                                                .last_request = asked + 2}),
                     KTH_OK);
    play(&p, 500, 7);
    assert_int_equal(kts_request_count(p.c.srv, "/tv/live.m3u8", NULL), asked + 2);
    size_t before = atomic_load(&p.progress);
    set_paused(&p, false);
    settle(&p); /* the reader meets the gone segments before the next reload */
    for (int i = 0;
         i < 200 && !atomic_load(&p.done) && atomic_load(&p.progress) < before + 6 * 1880; i++)
        play(&p, 500, 1);
    if (atomic_load(&p.done))
        fail_msg("the stream ended: %s", p.error);
    stop_reading(&p);
    assert_int_equal(p.got_len % 1880, 0);
    /* A skip for each segment found gone (the reader may get no byte between two: one fence). */
    unsigned events = count_events(&p, KTH_EVENT_HLS_LIVE_SKIPPED);
    assert_true(events >= 1 && p.fences >= 1 && p.fences <= events);
    player_close(&p);
}

/* An EVENT playlist drops no segment: a 404 of one it lists is the server's failure, reported
 * as such, not a reader behind the window to skip (the skip of a listed segment the server may
 * have dropped since the last reload took it for one, and went on past segment 0). */
static void test_event_segment_not_found_fails_clearly(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {
        .window = 3, .target_duration = 2, .segment_size = 1880, .seed = 29, .event = true};
    player_open_faulted(&p, &cfg, 0, "/tv/seg0.ts",
                        &(kts_fault){.kind = KTS_FAULT_STATUS, .status = 404});
    for (int i = 0; i < 40 && !atomic_load(&p.done); i++)
        play(&p, 500, 1);
    assert_true(atomic_load(&p.done));
    if (p.result != KTH_ERR_NOT_FOUND || !strstr(p.error, "HTTP status 404"))
        fail_msg("the read ended with %d: %s", (int)p.result, p.error);
    assert_int_equal(count_events(&p, KTH_EVENT_HLS_LIVE_SKIPPED), 0);
    assert_int_equal(p.got_len, 0);
    player_close(&p);
}

/* A byte seek back to a segment the stream played long ago: it left the window, its cached
 * bytes were dropped and its model no longer holds its URI (hls_live_merge releases it). Its
 * bytes had a meaning the stream can no longer give (a time seek is how a live stream goes
 * back, within the window): the read fails, saying so, and nothing is asked of the server for
 * it (before the release, the segment was asked for again and the server answered 404). */
static void test_live_seek_back_to_a_released_segment_fails_clearly(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 4, .target_duration = 2, .segment_size = 1880, .seed = 41};
    player_open(&p, &cfg, 1, 4.0);
    play_until(&p, 0, 12 * 1880); /* segments 1 to 12: the window lists 9 to 12 or later */
    /* Reloads release what the reader passed and the window left, from the first on: once the
     * cache holds no more than the window and three, segment 2 is released. */
    size_t cached = SIZE_MAX, total = 0;
    for (int i = 0; i < 40 && cached > cfg.window + 3; i++) {
        play(&p, 500, 1);
        assert_int_equal(kth_stream_variant_cached(p.stream, 0, &cached, &total), KTH_OK);
    }
    assert_true(cached <= cfg.window + 3);
    pthread_mutex_lock(&p.lock);
    uint64_t first = p.reads.offset[0]; /* where segment 1 starts */
    pthread_mutex_unlock(&p.lock);
    unsigned asked = kts_request_count(p.c.srv, "/tv/seg2.ts", NULL);
    assert_int_equal(kth_stream_seek(p.stream, (int64_t)first + 1880, SEEK_SET, NULL), KTH_OK);
    /* The reader's thread gets the failure in its own time: wait for it (bounded). */
    for (int i = 0; i < 100 && !atomic_load(&p.done); i++) {
        play(&p, 500, 1);
        wait_done(&p, 50);
    }
    assert_true(atomic_load(&p.done));
    assert_int_equal(p.result, KTH_ERR_NOT_FOUND);
    if (!strstr(p.error, "segment 2 of variant 0 left the live window and was released"))
        fail_msg("the read failed with: %s", p.error);
    assert_int_equal(kts_request_count(p.c.srv, "/tv/seg2.ts", NULL), asked);
    player_close(&p);
}

/* Checks that the reader got, from the last read that started at stream offset `offset` (a
 * seek's anchor) on, `count` whole segments from media sequence `first` on, in order. */
static void expect_from(player *p, uint64_t offset, uint64_t first, size_t count)
{
    uint64_t size = p->c.cfg.segment_size;
    size_t bad = count, mark = SIZE_MAX;
    pthread_mutex_lock(&p->lock); /* the reader is still reading */
    for (size_t r = p->reads.n; r-- > 0 && mark == SIZE_MAX;)
        if (p->reads.offset[r] == offset)
            mark = p->reads.got_at[r];
    bool enough = mark != SIZE_MAX && p->got_len >= mark + count * size;
    for (size_t k = 0; enough && bad == count && k < count; k++) {
        uint64_t seed = kts_live_segment_seed(&p->c.cfg, first + k, false);
        if (kts_ts_synth_check(seed, 0, p->got + mark + k * size, size) != size)
            bad = k;
    }
    pthread_mutex_unlock(&p->lock);
    assert_true(enough);
    if (bad < count)
        fail_msg("segment %zu after the seek is not segment %llu", bad,
                 (unsigned long long)(first + bad));
}

/* Seeks the live stream of 2 s segments to `t`, checks it lands on the segment starting at
 * `want_start`, and that the reader then gets `count` segments from there, byte-exact. */
static void seek_and_expect(player *p, double t, double want_start, size_t count)
{
    kth_seek_anchor a;
    assert_int_equal(kth_stream_seek_time(p->stream, t, &a), KTH_OK);
    if (a.segment_start != want_start)
        fail_msg("a seek to %.1f s landed at %.1f s, not %.1f s", t, a.segment_start, want_start);
    play_from(p, a.offset, count * 1880);
    expect_from(p, a.offset, (uint64_t)(want_start / 2.0), count); /* n starts at 2n s */
}

/* DVR: a time seek on a live stream moves within the window the server lists (a time before
 * it plays from its first segment) and to the live edge (a time past it); nothing else moves,
 * no fence, and the bytes are the segments of those times. */
static void test_live_seek_by_time_moves_within_the_window_and_to_the_edge(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 6, .target_duration = 2, .segment_size = 1880, .seed = 31};
    player_open(&p, &cfg, 3, 4.0);
    play_until(&p, 0, 5 * 1880); /* segments 3 to 7: the window lists 2 to 7 by then */
    kth_hls_playlist_info pi;
    assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    printf("window from %.1f s, live edge %.1f s\n", pi.window_start_s, pi.live_edge_s);
    assert_true(pi.window_start_s > 0 && pi.live_edge_s > pi.window_start_s);
    /* Into the window: the segment holding the time, from its start. */
    seek_and_expect(&p, pi.window_start_s + 2.5, pi.window_start_s + 2.0, 3);
    /* Before the window (it has moved on since): its first segment. */
    play(&p, 500, 8);
    assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    seek_and_expect(&p, 0.0, pi.window_start_s, 2);
    /* Past the edge: the live edge. */
    assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    seek_and_expect(&p, 1e9, pi.live_edge_s, 2);
    stop_reading(&p);
    if (p.fences != 0) { /* say what put the fence there */
        kth_event ev;
        while (kth_events_next(p.sub, &ev, 0) == KTH_OK)
            fprintf(stderr, "event %s: %s\n", kth_event_kind_name(ev.kind), ev.text);
        dump_log(&p);
    }
    assert_int_equal(p.fences, 0);
    player_close(&p);
}

/* A time seek to segments nobody fetched starts a new period there (a splice), and the
 * periods after it go: the discontinuities after the seek's segment are fenced again (they
 * were not: the reader went on across them unwarned). A stream with a discontinuity before
 * every segment; the reader, paused for 10 s behind a 2 s buffer, seeks to the live edge. */
static void test_live_time_seek_keeps_the_fences_after_it(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 12, .target_duration = 2, .segment_size = 1880, .seed = 59};
    cfg.mode = KTS_LIVE_DISCONTINUITIES;
    cfg.mode_at = 1;
    player_open(&p, &cfg, 9, 2.0);
    play_until(&p, 0, 2 * 1880);
    set_paused(&p, true);
    play(&p, 500, 20);
    kth_seek_anchor a;
    assert_int_equal(kth_stream_seek_time(p.stream, 1e9, &a), KTH_OK);
    unsigned fences = p.fences;
    set_paused(&p, false);
    play_from(&p, a.offset, 3 * 1880);
    stop_reading(&p);
    expect_from(&p, a.offset, a.segment_index, 3); /* model segment n is media sequence n */
    if (p.fences - fences < 2)
        fail_msg("%u fences across the 3 segments after the seek", p.fences - fences);
    player_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_slides_every_segment_once),
        cmocka_unit_test(test_live_reader_behind_the_window_goes_on_at_its_start),
        cmocka_unit_test(test_live_reader_behind_a_window_of_discontinuities_goes_on),
        cmocka_unit_test(test_live_skip_past_a_window_that_moved_since_the_reload),
        cmocka_unit_test(test_live_skip_past_short_segments_gone_since_the_reload),
        cmocka_unit_test(test_event_segment_not_found_fails_clearly),
        cmocka_unit_test(test_live_seek_by_time_moves_within_the_window_and_to_the_edge),
        cmocka_unit_test(test_live_seek_back_to_a_released_segment_fails_clearly),
        cmocka_unit_test(test_live_time_seek_keeps_the_fences_after_it),
        cmocka_unit_test(test_endlist_ends_after_the_last_segment),
        cmocka_unit_test(test_stuck_playlist_is_reported),
        cmocka_unit_test(test_server_reset_reanchors),
        cmocka_unit_test(test_discontinuity_is_marked),
        cmocka_unit_test(test_live_stream_plays_to_its_end),
        cmocka_unit_test(test_live_time_seek_after_the_end_plays_the_window),
        cmocka_unit_test(test_live_cache_keeps_only_the_window_and_what_is_unplayed),
        cmocka_unit_test(test_live_cache_stays_flat_across_a_server_reset),
        cmocka_unit_test(test_live_discontinuity_is_a_fence),
        cmocka_unit_test(test_live_discontinuity_in_first_playlist_is_a_fence),
        cmocka_unit_test(test_live_periods_of_passed_fences_go),
        cmocka_unit_test(test_live_fences_wait_for_room_in_the_period_table),
        cmocka_unit_test(test_event_fences_wait_for_room_in_the_period_table),
        cmocka_unit_test(test_live_stuck_playlist_fails_the_stream),
        cmocka_unit_test(test_live_server_reset_reanchors_behind_a_fence),
        cmocka_unit_test(test_live_window_after_a_server_reset_holds_only_its_segments),
        cmocka_unit_test(test_live_older_copy_of_the_playlist_is_no_reset),
        cmocka_unit_test(test_live_playlist_behind_the_window_is_a_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
