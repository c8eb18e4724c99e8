/*
 * test_hls_live_variants.c — variant switches on a live HLS stream, in virtual time, against
 * two live variants of the test server under one master playlist (live_player.h). A switch
 * must keep the media sequence: the reader gets whole segments, each the one after the last
 * (of one variant or the other), never one twice or one skipped, and a fence at each change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <kithara/hls.h>
#include <kithara/kithara.h>

#include "live_player.h"

#define LO_SIZE 1880
#define HI_SIZE 3760

static kts_live low(void)
{
    return (kts_live){.window = 6, .target_duration = 2, .segment_size = LO_SIZE, .seed = 1000};
}

static kts_live high(void)
{
    return (kts_live){.window = 6, .target_duration = 2, .segment_size = HI_SIZE, .seed = 5000};
}

/* What the reader got, as segments. */
typedef struct walked {
    size_t segments, high, changes;
    uint64_t first_high; /* media sequence of the first segment of the high variant */
} walked;

/* Walks the reader's bytes as whole segments from media sequence `first` on: each must be the
 * segment with the next sequence, of the low or the high variant. Fails on anything else. */
static walked walk_segments(player *p, uint64_t first)
{
    walked w = {0};
    size_t at = 0;
    bool was_high = false;
    for (uint64_t seq = first; at < p->got_len; seq++) {
        size_t left = p->got_len - at;
        uint64_t lo_seed = kts_live_segment_seed(&p->c.cfg, seq, false);
        uint64_t hi_seed = kts_live_segment_seed(&p->c.hi_cfg, seq, false);
        bool is_low =
            left >= LO_SIZE && kts_ts_synth_check(lo_seed, 0, p->got + at, LO_SIZE) == LO_SIZE;
        bool is_high = !is_low && left >= HI_SIZE &&
                       kts_ts_synth_check(hi_seed, 0, p->got + at, HI_SIZE) == HI_SIZE;
        if (!is_low && !is_high) {
            if (left < HI_SIZE && (left < LO_SIZE || was_high))
                break; /* the reader stopped inside this segment */
            fail_msg("the bytes at %zu are not segment %llu of either variant", at,
                     (unsigned long long)seq);
        }
        if (w.segments > 0 && is_high != was_high)
            w.changes++;
        if (is_high && w.high++ == 0)
            w.first_high = seq;
        was_high = is_high;
        w.segments++;
        at += is_high ? HI_SIZE : LO_SIZE;
    }
    return w;
}

/* Plays until the reader has got `n` more segments' worth of bytes of the low variant. */
static void play_segments(player *p, size_t n)
{
    play_until(p, atomic_load(&p->progress), n * LO_SIZE);
}

/* Plays until the reader reads variant `v` (it has cleared the fence in front of it), then `n`
 * low segments' worth more. A switch lands at the first segment not fetched yet, or after the
 * reader's own: later when the reader lags behind what was fetched (a loaded machine). */
static void play_into_variant(player *p, int v, size_t n)
{
    for (int i = 0; i < 200 && kth_stream_current_variant(p->stream) != v; i++)
        play(p, 500, 1);
    assert_int_equal(kth_stream_current_variant(p->stream), v);
    play_segments(p, n);
}

/* ABR on a live stream: started on the high variant, it goes down to the low one once a cap
 * rules the high one out, at the same media sequence; the segments the high one no longer
 * plays leave the cache like those that left the window. */
static void test_abr_steps_down_on_a_live_stream_by_media_sequence(void **state)
{
    (void)state;
    player p;
    kts_live lo = low(), hi = high();
    kth_hls_options hls;
    kth_hls_options_init(&hls);
    hls.fixed_start = true;
    hls.initial_variant = 1;
    player_open_variants(&p, &lo, &hi, 3, &hls);
    play_until(&p, 0, 6 * HI_SIZE);
    assert_int_equal(kth_stream_abr_set_cap(p.stream, 100000), KTH_OK);
    uint64_t most = 0;
    size_t low_from = 0;
    for (int i = 0; i < 400; i++) {
        play(&p, 500, 1);
        kth_cache_stats cs;
        assert_int_equal(kth_cache_get_stats(p.cache, &cs), KTH_OK);
        most = cs.resources > most ? cs.resources : most;
        if (low_from == 0 && kth_stream_current_variant(p.stream) == 0)
            low_from = atomic_load(&p.progress);
        if (low_from > 0 && atomic_load(&p.progress) >= low_from + 12 * LO_SIZE)
            break;
    }
    stop_reading(&p);
    walked w = walk_segments(&p, 3);
    printf("%zu segments, %zu of the high variant, %zu changes, %u fences, cache at most %llu "
           "resources\n",
           w.segments, w.high, w.changes, p.fences, (unsigned long long)most);
    assert_int_equal(w.changes, 1);
    assert_true(w.high >= 6 && w.segments - w.high >= 11);
    assert_int_equal(p.fences, 1);
    kth_hls_stats st;
    assert_int_equal(kth_stream_hls_stats(p.stream, &st), KTH_OK);
    assert_int_equal(st.switches, 1);
    assert_int_equal(kth_stream_current_variant(p.stream), 0);
    /* Both windows (6 each), what the reader has not played, and what the release has not
     * reached yet: never the whole run. */
    if (most > 2 * 6 + 4)
        fail_msg("the cache held up to %llu segments", (unsigned long long)most);
    player_close(&p);
}

/* A manual choice on a live stream takes effect at the next segment boundary, at the same
 * media sequence in the other variant, up and back down. The high variant's playlist is older
 * than the boundary when the choice comes (it was loaded once, at the start): the switch
 * fetches it afresh first. */
static void test_manual_switches_on_a_live_stream_keep_the_sequence(void **state)
{
    (void)state;
    player p;
    kts_live lo = low(), hi = high();
    player_open_variants(&p, &lo, &hi, 3, NULL);
    assert_int_equal(kth_stream_abr_set_manual(p.stream, 0), KTH_OK);
    play_segments(&p, 8); /* the window has moved on past what the high playlist listed */
    assert_int_equal(kth_stream_abr_set_manual(p.stream, 1), KTH_OK);
    play_into_variant(&p, 1, 4);
    assert_int_equal(kth_stream_abr_set_manual(p.stream, 0), KTH_OK);
    play_into_variant(&p, 0, 4);
    stop_reading(&p);
    walked w = walk_segments(&p, 3);
    printf("%zu segments, %zu of the high variant from media sequence %llu, %zu changes\n",
           w.segments, w.high, (unsigned long long)w.first_high, w.changes);
    assert_int_equal(w.changes, 2);
    assert_int_equal(p.fences, 2);
    assert_true(w.first_high >= 3 + 8);
    assert_true(kts_request_count(p.c.srv, "/tv/hi/live.m3u8", NULL) >= 2);
    player_close(&p);
}

/* Both variants' server restarts its numbering while the stream plays the low one; then the
 * high one is chosen. Its playlist from before the restart holds the old numbering: the switch
 * took that window for a newer one and never matched, so the stream stayed on the low variant.
 * It now fetches a fresh high playlist and plays the high segments of the new numbering (never
 * one of the old). */
static void test_a_switch_after_a_server_reset_plays_the_new_numbering(void **state)
{
    (void)state;
    player p;
    kts_live lo = low(), hi = high();
    lo.mode = hi.mode = KTS_LIVE_RESET;
    lo.mode_at = hi.mode_at = 12;
    player_open_variants(&p, &lo, &hi, 3, NULL);
    assert_int_equal(kth_stream_abr_set_manual(p.stream, 0), KTH_OK);
    unsigned resets = 0; /* count_events takes the events it counts */
    for (int i = 0; i < 200 && resets == 0; i++) {
        play(&p, 500, 1);
        resets += count_events(&p, KTH_EVENT_HLS_LIVE_RESET);
    }
    assert_int_equal(resets, 1);
    play_segments(&p, 2);
    assert_int_equal(kth_stream_abr_set_manual(p.stream, 1), KTH_OK);
    play_into_variant(&p, 1, 4);
    stop_reading(&p);
    /* Whole segments of 1880 bytes (low) and 3760 (high): every high one is of the new
     * numbering. */
    assert_int_equal(p.got_len % LO_SIZE, 0);
    size_t new_high = 0;
    for (size_t at = 0; at + HI_SIZE <= p.got_len; at += LO_SIZE)
        for (uint64_t seq = 0; seq < 64; seq++) {
            const unsigned char *b = p.got + at;
            if (kts_ts_synth_check(kts_live_segment_seed(&hi, seq, false), 0, b, HI_SIZE) ==
                HI_SIZE)
                fail_msg("high segment %llu of the old numbering at %zu", (unsigned long long)seq,
                         at);
            new_high +=
                kts_ts_synth_check(kts_live_segment_seed(&hi, seq, true), 0, b, HI_SIZE) == HI_SIZE;
        }
    assert_true(new_high >= 2);
    player_close(&p);
}

/* The playlist of the variant being played stops changing: the stream leaves it for the other
 * variant after the last segment it listed, at the next media sequence, with an event, instead
 * of failing. ABR is capped to the low variant, so only the rescue can leave it. */
static void test_a_stuck_variant_is_left_for_one_that_moves(void **state)
{
    (void)state;
    player p;
    kts_live lo = low(), hi = high();
    lo.mode = KTS_LIVE_STUCK;
    lo.mode_at = 12;
    player_open_variants(&p, &lo, &hi, 3, NULL);
    assert_int_equal(kth_stream_abr_set_cap(p.stream, 100000), KTH_OK);
    for (int i = 0; i < 200 && atomic_load(&p.progress) < 9 * LO_SIZE + 6 * HI_SIZE; i++)
        play(&p, 500, 1);
    stop_reading(&p);
    walked w = walk_segments(&p, 3);
    printf("%zu segments, %zu of the high variant from media sequence %llu\n", w.segments, w.high,
           (unsigned long long)w.first_high);
    assert_int_equal(w.changes, 1);
    assert_int_equal(w.first_high, 12); /* right after the last segment the stuck one listed */
    assert_true(w.high >= 6);
    assert_int_equal(p.fences, 1);
    assert_int_equal(count_events(&p, KTH_EVENT_VARIANT_CHANGED), 1);
    player_close(&p);
}

/* When every variant's playlist is stuck, the stream fails clearly once the reader has read
 * every segment listed. */
static void test_every_variant_stuck_fails_the_stream(void **state)
{
    (void)state;
    player p;
    kts_live lo = low(), hi = high();
    lo.mode = hi.mode = KTS_LIVE_STUCK;
    lo.mode_at = hi.mode_at = 10;
    player_open_variants(&p, &lo, &hi, 3, NULL);
    assert_int_equal(kth_stream_abr_set_manual(p.stream, 0), KTH_OK);
    play(&p, 500, 200);
    assert_true(atomic_load(&p.done));
    assert_int_equal(p.result, KTH_ERR_NETWORK);
    assert_non_null(strstr(p.error, "the stream is stuck"));
    walked w = walk_segments(&p, 3);
    assert_int_equal(w.segments, 10 - 3);
    player_close(&p);
}

/* Once the playlist ended, no fresh playlist of another variant comes: a choice of a variant
 * whose last playlist is older than the next boundary is not waited for. (Waiting held every
 * fetch, and the reader never reached the end.) The stream plays its own variant to its end.
 * The high variant lists two segments at a time, so its one playlist, loaded at the start,
 * lists no segment after the first two. */
static void test_a_choice_after_the_end_does_not_wait_for_a_playlist(void **state)
{
    (void)state;
    player p;
    kts_live lo = low(), hi = high();
    lo.window = 10;
    lo.mode = KTS_LIVE_ENDLIST;
    lo.mode_at = 12; /* segments 0 to 11; the playlist ends at 4 s; the stream starts at 7 */
    hi.window = 2;
    kth_hls_options hls;
    kth_hls_options_init(&hls);
    hls.buffer_target_s = 2.0;
    player_open_variants(&p, &lo, &hi, 7, &hls);
    assert_int_equal(kth_stream_abr_set_manual(p.stream, 0), KTH_OK);
    set_paused(&p, true); /* after segment 7 at most: 8 comes ahead, 9 on are not fetched */
    kth_hls_playlist_info pi = {0};
    for (int i = 0; i < 40 && !pi.ended; i++) {
        play(&p, 500, 1);
        assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    }
    assert_true(pi.ended);
    assert_true(kts_request_count(p.c.srv, "/tv/seg10.ts", NULL) == 0);
    assert_int_equal(kth_stream_abr_set_manual(p.stream, 1), KTH_OK);
    set_paused(&p, false);
    for (int i = 0; i < 100 && !atomic_load(&p.done); i++)
        play(&p, 500, 1);
    if (!atomic_load(&p.done))
        fail_msg("the reader did not reach the end: %zu bytes", atomic_load(&p.progress));
    if (p.result != 0)
        fail_msg("the read ended with %lld: %s", (long long)p.result, p.error);
    walked w = walk_segments(&p, 7);
    assert_int_equal(w.segments, 5);
    assert_int_equal(w.changes, 0);
    assert_int_equal(p.fences, 0);
    player_close(&p);
}

/* The variant a manual choice names stops answering (its playlist is a 404 from then on): the
 * stream asks for that playlist a few times, at most every half target duration, then gives it
 * up and stays on the variant it plays, which the reader goes on reading. (Each failed fetch
 * was asked again at once, and the segment the reader needed waited for it, forever.) */
static void test_a_variant_whose_playlist_fails_is_given_up(void **state)
{
    (void)state;
    player p;
    kts_live lo = low(), hi = high();
    player_open_variants(&p, &lo, &hi, 3, NULL);
    assert_int_equal(kth_stream_abr_set_manual(p.stream, 0), KTH_OK);
    play_segments(&p, 4);
    kts_live_free(p.c.hi); /* from now on /tv/hi/ answers 404 */
    p.c.hi = NULL;
    unsigned asked = kts_request_count(p.c.srv, "/tv/hi/live.m3u8", NULL);
    assert_int_equal(kth_stream_abr_set_manual(p.stream, 1), KTH_OK);
    play_segments(&p, 10);
    stop_reading(&p);
    walked w = walk_segments(&p, 3);
    unsigned again = kts_request_count(p.c.srv, "/tv/hi/live.m3u8", NULL) - asked;
    printf("%zu segments, %zu changes; the failing playlist asked for %u times\n", w.segments,
           w.changes, again);
    assert_int_equal(w.changes, 0);
    assert_true(w.segments >= 14);
    assert_true(again >= 1 && again <= 3);
    player_close(&p);
}

/* ---- ABR at the live edge, in real time ---- */

typedef struct ticker {
    client *c;
    double t0;
    atomic_bool stop;
} ticker;

static double real_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Moves the live streams on to the real time every 10 ms. */
static void *tick(void *arg)
{
    ticker *t = arg;
    while (!atomic_load(&t->stop)) {
        client_advance(t->c, (int64_t)((real_s() - t->t0) * 1000.0));
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return NULL;
}

/* A player at the live edge, paced at the media rate (at most one segment read ahead of what
 * it has played, which it reports as a decoder does), on a loopback link far faster than the
 * high variant (150 and 300 kbit/s): ABR goes up. It stayed on the lowest rung for good: told that
 * the session ended with the playlist's last listed segment, one or two segments away, the plan
 * never found a switch worth its cost. Real time (1 s segments, about 5 s): the estimate needs real
 * transfers. Every byte is checked, and the media sequence holds across the switch. */
static void test_abr_climbs_at_the_live_edge(void **state)
{
    (void)state;
    kts_live lo = low(), hi = high();
    lo.target_duration = hi.target_duration = 1;
    lo.segment_size = 10 * LO_SIZE; /* 150 kbit/s: a sample the estimator takes */
    hi.segment_size = 10 * HI_SIZE;
    client c;
    client_start(&c, &lo, &hi);
    ticker t = {.c = &c, .t0 = real_s()};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, tick, &t), 0);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.read_timeout_ms = 20000; /* hang guard only */
    kth_stream *s = NULL;
    char err[512] = "";
    if (kth_stream_open(c.url, &so, &s, err, sizeof err) != KTH_OK)
        fail_msg("open: %s", err);
    const kts_live *cfg[2] = {&lo, &hi};
    uint64_t seg = 3, off = 0; /* three targets before the edge of the first playlist */
    int var = kth_stream_current_variant(s);
    unsigned got[2] = {0, 0}, changes = 0;
    static unsigned char buf[HI_SIZE];
    double start = 0;
    while (got[1] < 2 && got[0] + got[1] < 12) {
        double played = start > 0 ? real_s() - start : 0;
        kth_stream_abr_report_played(s, 3.0 + played);
        double read_s = (double)(seg - 3) + (double)off / (double)cfg[var]->segment_size;
        if (read_s >= played + 1.0) {
            nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
            continue;
        }
        size_t want = (size_t)(cfg[var]->segment_size - off);
        int64_t n = kth_stream_read(s, buf, want < sizeof buf ? want : sizeof buf);
        if (n == KTH_ERR_VARIANT_CHANGE && off == 0) {
            kth_stream_clear_variant_fence(s);
            int now = kth_stream_current_variant(s);
            changes += now != var;
            var = now;
            continue;
        }
        if (n <= 0) {
            kth_stream_last_error(s, err, sizeof err);
            fail_msg("read at segment %llu: %s (%s)", (unsigned long long)seg, kth_strerror((int)n),
                     err);
        }
        uint64_t seed = kts_live_segment_seed(cfg[var], seg, false);
        assert_int_equal(kts_ts_synth_check(seed, off, buf, (size_t)n), (size_t)n);
        if (start == 0)
            start = real_s();
        off += (uint64_t)n;
        if (off == cfg[var]->segment_size) {
            got[var]++;
            seg++;
            off = 0;
        }
    }
    printf("%u segments of the low variant, %u of the high one, %u changes\n", got[0], got[1],
           changes);
    assert_true(got[1] >= 2);
    assert_int_equal(changes, 1);
    kth_stream_close(s);
    atomic_store(&t.stop, true);
    pthread_join(th, NULL);
    client_stop(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abr_steps_down_on_a_live_stream_by_media_sequence),
        cmocka_unit_test(test_manual_switches_on_a_live_stream_keep_the_sequence),
        cmocka_unit_test(test_a_switch_after_a_server_reset_plays_the_new_numbering),
        cmocka_unit_test(test_a_stuck_variant_is_left_for_one_that_moves),
        cmocka_unit_test(test_every_variant_stuck_fails_the_stream),
        cmocka_unit_test(test_a_variant_whose_playlist_fails_is_given_up),
        cmocka_unit_test(test_a_choice_after_the_end_does_not_wait_for_a_playlist),
        cmocka_unit_test(test_abr_climbs_at_the_live_edge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
