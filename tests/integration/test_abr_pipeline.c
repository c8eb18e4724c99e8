/*
 * test_abr_pipeline.c — ABR as the whole pipeline plays, in virtual time (tests/vplay): the
 * test server behind a link shaped to a trace with 80 ms per request, a downloader on a virtual
 * clock, an HLS stream, and a reader paced at the media rate that checks every byte.
 *
 * These are the start-up and buffer rules as a player meets them: the stream starts on the
 * lowest rung when nothing is known, its start-up is close to the least the link allows, it
 * judges the link by what the link really carried (in the link's time, not the machine's), it
 * never climbs past a link that cannot carry a rung, on a fast link it reaches the top without
 * a stall and without throwing bytes away, segments share the link only where latency bounds
 * it, it steps down when the link drops and back up when it recovers, keeping the dwell
 * between switches, and a segment that trickles, stalls or stays silent on a fast link is
 * rescued by a switch down before the reader waits for it. The whole grid is
 * bench/abr_pipeline's.
 */
#include "vplay.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const double ladder[] = {64.0, 128.0, 256.0};

/* Plays the session c describes (its trace, segments, HLS options, bad segments and cap; the
 * ladder, the 80 ms latency, scale 1 and the played-time reports are filled in here), and
 * prints what happened. */
static kvp_result run_session(kvp_config c, const char *what)
{
    c.scale = 1.0;
    c.latency_ms = 80;
    c.ladder_kbps = ladder;
    c.levels = 3;
    c.report_played = true;
    kvp_result r;
    if (kvp_run(&c, &r) != 0)
        fail_msg("the session failed: %s", r.error);
    printf("%s: start %.3f s (floor %.3f s), stall %.3f s, %zu switches, %.1f kbit/s, "
           "%llu bytes read, %llu thrown away, at most %u fetches at once; %u moves in %.3f s\n",
           what, r.startup_s, r.startup_floor_s, r.rebuffer_s, r.switches, r.mean_kbps,
           (unsigned long long)r.bytes_read, (unsigned long long)r.stats.bytes_abandoned,
           r.most_fetches, r.steps, r.real_s);
    printf("rungs:");
    for (size_t n = 0; n < r.segments; n++)
        printf(" %zu", r.level[n]);
    printf("\n");
    for (size_t i = 0; i < r.change_count; i++)
        printf("switch %d -> %d (%s) in segment %zu, buffer %.2f s\n", r.changes[i].from,
               r.changes[i].to, r.changes[i].reason, r.changes[i].segment, r.changes[i].buffer_s);
    return r;
}

/* 4 s segments over the trace (rows t, mbps), nothing served badly, no cap. */
static kvp_result play(const double *t, const double *mbps, size_t rows, size_t segments,
                       const kth_hls_options *hls, const char *what)
{
    return run_session((kvp_config){.time_s = t,
                                    .mbps = mbps,
                                    .trace_rows = rows,
                                    .segment_s = 4.0,
                                    .segments = segments,
                                    .hls = hls},
                       what);
}

/* A constant link of `mbps` for the whole session. */
static kvp_result play_constant(double mbps, size_t segments)
{
    static const double t[] = {0, 1000};
    double rate[] = {0, mbps};
    char what[32];
    snprintf(what, sizeof what, "%.0f kbit/s", mbps * 1000);
    return play(t, rate, 2, segments, NULL, what);
}

/* A 10 Mbit/s link and 2 s segments, the stream started on the top rung with a 10 Mbit/s first
 * estimate (set in *h, on top of what the caller set there); c gives the rest. */
static kvp_result play_fast_from_the_top(kvp_config c, kth_hls_options *h, const char *what)
{
    static const double t[] = {0, 1000};
    static const double fast[] = {0, 10.0};
    h->fixed_start = true;
    h->initial_variant = 2;
    h->initial_estimate_bps = 10000000;
    c.time_s = t;
    c.mbps = fast;
    c.trace_rows = 2;
    c.segment_s = 2.0;
    c.hls = h;
    return run_session(c, what);
}

/* 100 kbit/s carries the lowest rung and nothing above it. The stream starts there, and a
 * segment's download is judged at the link's pace: before downloads were timed on the
 * downloader's clock, the first segment measured as tens of megabits (curl's real-time timers
 * saw it arrive in microseconds), and the stream jumped to the top rung and stalled. */
static void test_a_slow_link_starts_low_and_never_climbs_past_it(void **state)
{
    (void)state;
    kvp_result r = play_constant(0.1, 12);
    assert_true(r.finished);
    assert_int_equal(r.level[0], 0);
    for (size_t n = 0; n < r.segments; n++)
        assert_true(r.level[n] < 2);
    assert_true(r.rebuffer_s < 1.0);
    assert_true(r.startup_s <= 1.2 * r.startup_floor_s);
    kvp_result_free(&r);
}

/* 2 Mbit/s carries every rung many times over: the stream climbs to the top and stays, never
 * stalls, and throws nothing away. */
static void test_a_fast_link_climbs_to_the_top_without_a_stall(void **state)
{
    (void)state;
    kvp_result r = play_constant(2.0, 12);
    assert_true(r.finished);
    assert_int_equal(r.level[0], 0);
    assert_int_equal(r.level[r.segments - 1], 2);
    assert_true(r.rebuffer_s == 0);
    assert_int_equal(r.stats.bytes_abandoned, 0);
    assert_true(r.startup_s <= 1.2 * r.startup_floor_s);
    /* Every byte read was checked against its segment; each segment was read whole. */
    uint64_t want = 0;
    for (size_t n = 0; n < r.segments; n++)
        want += (uint64_t)(ladder[r.level[n]] * 1000 * 4.0 / 8);
    assert_int_equal(r.bytes_read, want);
    kvp_result_free(&r);
}

/* The same on a machine so loaded that the opening thread takes 300 ms of real time after
 * its last request: the stream's background requests (the other variants' playlists) are on
 * the link meanwhile, and the session's clock must not run on over the opener's own work (it
 * did: the first segment was asked for one latency late, start 0.454 s against a floor of
 * 0.370 s, seen under ASan and TSan in CI). */
static void test_a_slow_open_costs_no_link_time(void **state)
{
    (void)state;
    static const double t[] = {0, 1000};
    static const double rate[] = {0, 2.0};
    kvp_result r = run_session((kvp_config){.time_s = t,
                                            .mbps = rate,
                                            .trace_rows = 2,
                                            .segment_s = 4.0,
                                            .segments = 4,
                                            .opener_lag_ms = 300},
                               "2000 kbit/s, a slow open");
    assert_true(r.finished);
    assert_true(r.startup_s <= 1.2 * r.startup_floor_s);
    kvp_result_free(&r);
}

/* The segment the reader needs next never shares the link with ones it needs later when
 * sharing would slow it: at 500 kbit/s a segment's body takes 0.5 s or more, far longer than
 * the 80 ms wait for its first byte, so segments are fetched one at a time (three at once made
 * the next one three times slower, and the stall rescue then switched down). On a link where
 * the wait for the first byte is most of a download (50 Mbit/s: 5 to 20 ms of body), fetches
 * still run side by side. */
static void test_segments_share_the_link_only_where_latency_bounds_it(void **state)
{
    (void)state;
    kvp_result r = play_constant(0.5, 12);
    assert_true(r.finished);
    assert_int_equal(r.most_fetches, 1);
    assert_true(r.rebuffer_s == 0);
    assert_int_equal(r.stats.bytes_abandoned, 0);
    kvp_result_free(&r);
    r = play_constant(50.0, 12);
    assert_true(r.finished);
    assert_true(r.most_fetches >= 2);
    assert_true(r.rebuffer_s == 0);
    kvp_result_free(&r);
}

/* A link that drops below the middle rung and recovers: the stream, started on the middle
 * rung, steps down while audio is still buffered (or as a rescue), climbs back once the link
 * recovers, ends on the top rung, and never switches again sooner than the dwell allows
 * (min_segments_between_switches, 2 by default) unless it is rescuing a stall. 96 kbit/s for the
 * first 40 s, then 3.2 Mbit/s. */
static void test_abr_steps_down_when_the_link_drops_and_back_up_after(void **state)
{
    (void)state;
    static const double t[] = {0, 40, 1000};
    static const double rate[] = {0, 0.096, 3.2};
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = true;
    h.initial_variant = 1;
    kvp_result r = play(t, rate, 3, 24, &h, "96 kbit/s for 40 s, then 3.2 Mbit/s");
    assert_true(r.finished);
    assert_int_equal(r.level[0], 1);
    assert_int_equal(r.level[r.segments - 1], 2);
    bool down = false, up_after_down = false;
    for (size_t i = 0; i < r.change_count; i++) {
        const kvp_change *ch = &r.changes[i];
        if (ch->to < ch->from) {
            if (!down)
                assert_true(ch->buffer_s > 0 || strcmp(ch->reason, "urgent-down") == 0);
            down = true;
        } else if (down) {
            up_after_down = true;
        }
    }
    assert_true(down);
    assert_true(up_after_down);
    /* Every change of rung the reader met is one the stream announced, in order; a rung it
     * switched to lasted the dwell unless it was left by a rescue. */
    size_t run = 1, boundary = 0;
    for (size_t n = 1; n <= r.segments; n++) {
        if (n < r.segments && r.level[n] == r.level[n - 1]) {
            run++;
            continue;
        }
        if (n < r.segments) {
            assert_true(boundary < r.change_count);
            assert_int_equal(r.changes[boundary].to, (int)r.level[n]);
            bool rescued = strcmp(r.changes[boundary].reason, "urgent-down") == 0;
            if (boundary > 0 && run < 2 && !rescued)
                fail_msg("rung %zu lasted %zu segment(s) before segment %zu", r.level[n - 1], run,
                         n);
            boundary++;
        }
        run = 1;
    }
    /* The segments read show it too: a lower rung in the slow part, the top one at the end. */
    size_t lowest = 2;
    for (size_t n = 0; n < 10; n++)
        lowest = r.level[n] < lowest ? r.level[n] : lowest;
    assert_int_equal(lowest, 0);
    kvp_result_free(&r);
}

/* Segment 6 of the top rung is served badly on an otherwise fast link (10 Mbit/s, 2 s
 * segments): after `after` of its 64,000 bytes it trickles at `rate` bytes/s or (rate 0) stops
 * for good, with or without a length. The stream, on the top rung with a 4 s buffer target and
 * one fetch at a time, must rescue it with a switch down at segment 6 before the reader waits:
 * no stall, segments 0-5 from the top rung and segment 6 from a lower one, the bad download
 * given up with what it had (not retried), and no segment fetched twice. */
static void rescue_of_top_segment_6(uint64_t after, double rate, bool chunked, const char *what)
{
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.buffer_target_s = 4;
    h.max_fetches = 1;
    kvp_limit bad = {
        .level = 2, .segment = 6, .after = after, .bytes_per_s = rate, .chunked = chunked};
    kvp_result r = play_fast_from_the_top(
        (kvp_config){.segments = 12, .limits = &bad, .limit_count = 1}, &h, what);
    assert_true(r.finished);
    assert_true(r.rebuffer_s == 0);
    for (size_t n = 0; n < 6; n++)
        assert_int_equal(r.level[n], 2);
    assert_true(r.level[6] < 2);
    bool rescued = false;
    for (size_t i = 0; i < r.change_count && !rescued; i++) {
        if (r.changes[i].from != 2)
            continue;
        assert_string_equal(r.changes[i].reason, "urgent-down");
        assert_true(r.changes[i].buffer_s < h.buffer_target_s);
        rescued = true;
    }
    assert_true(rescued);
    assert_true(r.stats.fetches_abandoned >= 1 && r.stats.bytes_abandoned >= after);
    /* Given up, not retried; its replacement fetched once; nothing else twice. */
    assert_int_equal(r.fetches[2 * r.segments + 6], 1);
    assert_int_equal(r.fetches[0 * r.segments + 6] + r.fetches[1 * r.segments + 6], 1);
    for (size_t i = 0; i < 3 * r.segments; i++)
        assert_true(r.fetches[i] <= 1);
    kvp_result_free(&r);
}

/* A fifth of the segment, then 10 bytes per second: progress all the time, at a pace that
 * never ends it. */
static void test_a_trickling_segment_is_rescued_before_the_reader_waits_for_it(void **state)
{
    (void)state;
    rescue_of_top_segment_6(12800, 10, false, "trickle after 12,800 bytes");
}

/* The same without a Content-Length: its pace is judged against what the variant's bandwidth
 * says a segment holds. */
static void test_a_trickling_segment_without_length_is_rescued(void **state)
{
    (void)state;
    rescue_of_top_segment_6(12800, 10, true, "trickle after 12,800 bytes, no length");
}

/* Some bytes, then nothing: at that pace it would end after the buffer runs out. */
static void test_a_stalled_segment_is_rescued_before_the_reader_waits_for_it(void **state)
{
    (void)state;
    rescue_of_top_segment_6(8000, 0, false, "stall after 8,000 bytes");
}

/* Headers, then nothing: no progress for a second with under a segment buffered. */
static void test_a_silent_segment_is_rescued_before_the_reader_waits_for_it(void **state)
{
    (void)state;
    rescue_of_top_segment_6(0, 0, false, "silent");
}

/* A cap below the top rung holds ABR's choice under it on a link that carries every rung: the
 * stream, started on the top rung with a high first estimate, plays every segment after the
 * first from the one rung under 100 kbit/s. */
static void test_a_bandwidth_cap_holds_the_automatic_choice_below_it(void **state)
{
    (void)state;
    kth_hls_options h;
    kth_hls_options_init(&h);
    kvp_result r = play_fast_from_the_top((kvp_config){.segments = 10, .cap_bps = 100000}, &h,
                                          "10 Mbit/s, capped at 100 kbit/s");
    assert_true(r.finished);
    for (size_t n = 1; n < r.segments; n++)
        assert_int_equal(r.level[n], 0);
    kvp_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_slow_link_starts_low_and_never_climbs_past_it),
        cmocka_unit_test(test_a_fast_link_climbs_to_the_top_without_a_stall),
        cmocka_unit_test(test_a_slow_open_costs_no_link_time),
        cmocka_unit_test(test_segments_share_the_link_only_where_latency_bounds_it),
        cmocka_unit_test(test_abr_steps_down_when_the_link_drops_and_back_up_after),
        cmocka_unit_test(test_a_trickling_segment_is_rescued_before_the_reader_waits_for_it),
        cmocka_unit_test(test_a_trickling_segment_without_length_is_rescued),
        cmocka_unit_test(test_a_stalled_segment_is_rescued_before_the_reader_waits_for_it),
        cmocka_unit_test(test_a_silent_segment_is_rescued_before_the_reader_waits_for_it),
        cmocka_unit_test(test_a_bandwidth_cap_holds_the_automatic_choice_below_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
