/*
 * test_abr_pipeline.c — ABR as the whole pipeline plays, in virtual time (tests/vplay): the
 * test server behind a link shaped to a trace with 80 ms per request, a downloader on a virtual
 * clock, an HLS stream, and a reader paced at the media rate that checks every byte.
 *
 * These are the start-up and buffer rules as a player meets them: the stream starts on the
 * lowest rung when nothing is known, its start-up is close to the least the link allows, it
 * judges the link by what the link really carried (in the link's time, not the machine's), it
 * never climbs past a link that cannot carry a rung, and on a fast link it reaches the top
 * without a stall and without throwing bytes away. The whole grid is bench/abr_pipeline's.
 */
#include "vplay.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

static const double ladder[] = {64.0, 128.0, 256.0};

/* A constant link of `mbps` for the whole session. */
static kvp_result play_constant(double mbps, size_t segments)
{
    static const double t[] = {0, 1000};
    double rate[] = {0, mbps};
    kvp_config c = {.time_s = t,
                    .mbps = rate,
                    .trace_rows = 2,
                    .scale = 1.0,
                    .latency_ms = 80,
                    .ladder_kbps = ladder,
                    .levels = 3,
                    .segment_s = 4.0,
                    .segments = segments,
                    .report_played = true};
    kvp_result r;
    if (kvp_run(&c, &r) != 0)
        fail_msg("the session failed: %s", r.error);
    printf("%.0f kbit/s: start %.3f s (floor %.3f s), stall %.3f s, %zu switches, %.1f kbit/s, "
           "%llu bytes read, %llu thrown away, at most %u fetches at once; %u moves in %.3f s\n",
           mbps * 1000, r.startup_s, r.startup_floor_s, r.rebuffer_s, r.switches, r.mean_kbps,
           (unsigned long long)r.bytes_read, (unsigned long long)r.stats.bytes_abandoned,
           r.most_fetches, r.steps, r.real_s);
    printf("rungs:");
    for (size_t n = 0; n < r.segments; n++)
        printf(" %zu", r.level[n]);
    printf("\n");
    return r;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_slow_link_starts_low_and_never_climbs_past_it),
        cmocka_unit_test(test_a_fast_link_climbs_to_the_top_without_a_stall),
        cmocka_unit_test(test_segments_share_the_link_only_where_latency_bounds_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
