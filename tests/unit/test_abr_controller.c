/*
 * test_abr_controller.c — the variant decision: start, rescue on a stalled fetch or an empty
 * buffer, up-switch after recovery, no flapping, manual / cap / seek-lock modes, the dwell,
 * the end of a session, spending rather than banking under the linear score, how far the
 * lookahead adapts to what a download shows, input validation and determinism.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <kithara/status.h>

#include "abr/controller.h"
#include "abr/estimator.h"
#include "abr/plan.h"

static const abr_variant ladder3[] = {
    {64000, 64000},
    {128000, 128000},
    {256000, 256000},
};

/* An input on the 64/128/256 kbit/s ladder, 4 s segments, 40 left, automatic. */
static abr_input input_with(double estimate_bps, double buffer_s, int has_previous, size_t prev)
{
    abr_input in;
    memset(&in, 0, sizeof in);
    in.ladder = ladder3;
    in.ladder_count = 3;
    in.estimate.bps = estimate_bps;
    in.estimate.long_bps = estimate_bps;
    in.estimate.ttfb_s = 0.08;
    in.estimate.samples = estimate_bps > 0.0 ? 8 : 0;
    in.estimate.error_count = estimate_bps > 0.0 ? 8 : 0; /* eight exact predictions */
    in.buffer_s = buffer_s;
    in.has_previous = has_previous;
    in.previous_level = prev;
    in.segment_s = 4.0;
    in.segments_left = 40;
    return in;
}

static abr_decision decide(abr_controller *c, const abr_input *in)
{
    abr_decision d;
    assert_int_equal(abr_controller_decide(c, in, &d), KTH_OK);
    assert_true(d.level < in->ladder_count);
    return d;
}

static void test_first_segment_without_estimate_is_lowest(void **state)
{
    (void)state;
    abr_controller c;
    abr_controller_init(&c, NULL);
    abr_input in = input_with(0.0, 0.0, 0, 0);
    abr_decision d = decide(&c, &in);
    assert_int_equal(d.level, 0);
    assert_int_equal(d.reason, ABR_REASON_START);
}

static void test_without_estimate_the_rung_is_kept(void **state)
{
    (void)state;
    abr_controller c;
    abr_controller_init(&c, NULL);
    abr_input in = input_with(0.0, 10.0, 1, 2);
    abr_decision d = decide(&c, &in);
    assert_int_equal(d.level, 2);
    assert_int_equal(d.reason, ABR_REASON_STAY_NO_ESTIMATE);
    in.controls.cap_bps = 130000; /* but a cap still applies */
    d = decide(&c, &in);
    assert_int_equal(d.level, 1);
    assert_int_equal(d.reason, ABR_REASON_CAP);
}

static void test_fast_link_climbs_straight_to_the_top(void **state)
{
    (void)state;
    abr_controller c;
    abr_controller_init(&c, NULL);
    abr_input in = input_with(2e6, 8.0, 1, 0);
    abr_decision d = decide(&c, &in);
    assert_int_equal(d.level, 2);
    assert_int_equal(d.reason, ABR_REASON_UP);
    assert_true(d.estimate_bps == 2e6 && d.buffer_s == 8.0);
}

static void test_slow_link_stays_on_the_lowest_rung(void **state)
{
    (void)state;
    abr_controller c;
    abr_controller_init(&c, NULL);
    abr_input in = input_with(50e3, 8.0, 1, 0);
    abr_decision d = decide(&c, &in);
    assert_int_equal(d.level, 0);
    assert_int_equal(d.reason, ABR_REASON_STAY_BEST);
}

static void test_stalled_fetch_with_little_buffer_is_rescued(void **state)
{
    (void)state;
    abr_controller c;
    abr_controller_init(&c, NULL);
    /* The estimate still says 2 Mbit/s: it knows nothing of the fetch that stopped. */
    abr_input in = input_with(2e6, 5.0, 1, 2);
    in.fetch_stalled = 1;
    in.since_progress_s = 3.0;
    abr_decision d = decide(&c, &in);
    assert_int_equal(d.level, 0);
    assert_int_equal(d.reason, ABR_REASON_URGENT_DOWN);

    /* A short hiccup, or one the buffer easily rides out, is not an emergency. */
    abr_controller_init(&c, NULL);
    in.since_progress_s = 1.0;
    d = decide(&c, &in);
    assert_int_equal(d.level, 2);
    abr_controller_init(&c, NULL);
    in.since_progress_s = 3.0;
    in.buffer_s = 40.0;
    d = decide(&c, &in);
    assert_int_equal(d.level, 2);
}

static void test_empty_buffer_forces_a_rung_that_refills_it(void **state)
{
    (void)state;
    abr_controller c;
    abr_controller_init(&c, NULL);
    /* At face value 300 kbit/s sustains the top rung (0.08 + 1024/300 = 3.49 s per 4 s), but
     * with the buffer empty the rung must refill it even at 0.4 x 300 = 120 kbit/s: rung 0
     * (0.08 + 256/120 = 2.21 s) does, rung 1 (4.35 s) does not. */
    abr_input in = input_with(300e3, 0.0, 1, 2);
    abr_decision d = decide(&c, &in);
    assert_int_equal(d.level, 0);
    assert_int_equal(d.reason, ABR_REASON_URGENT_DOWN);

    /* On a fast link an empty buffer (a seek, say) is no reason to go down. */
    abr_controller_init(&c, NULL);
    in = input_with(5e6, 0.0, 1, 2);
    d = decide(&c, &in);
    assert_int_equal(d.level, 2);
    assert_int_not_equal(d.reason, ABR_REASON_URGENT_DOWN);
}

/* A closed loop: the estimator and the controller on a link whose rate changes per segment,
 * with the buffer model of the simulator. Returns the rungs in `levels`. */
static void run_loop(const double *rate_bps, size_t count, size_t *levels, double *stall_s)
{
    abr_estimator est;
    abr_estimator_init(&est, NULL);
    abr_controller c;
    abr_controller_init(&c, NULL);
    double buffer = 0.0;
    uint64_t now = 0;
    *stall_s = 0.0;
    for (size_t n = 0; n < count; n++) {
        abr_input in = input_with(0.0, buffer, n > 0, n > 0 ? levels[n - 1] : 0);
        abr_estimator_get(&est, &in.estimate);
        in.segments_left = count - n;
        in.now_ns = now;
        abr_decision d = decide(&c, &in);
        levels[n] = d.level;
        double bytes = (double)ladder3[d.level].bandwidth_bps * 4.0 / 8.0;
        double seconds = 0.08 + bytes * 8.0 / rate_bps[n];
        now += (uint64_t)(seconds * 1e9);
        abr_sample s = {(uint64_t)bytes, (uint64_t)(seconds * 1e9), 80000000u, now};
        abr_estimator_add_sample(&est, &s);
        if (n > 0 && seconds > buffer) {
            *stall_s += seconds - buffer;
        }
        buffer = n == 0 ? 4.0 : (buffer > seconds ? buffer - seconds : 0.0) + 4.0;
        buffer = buffer > 60.0 ? 60.0 : buffer;
    }
}

static void test_rescue_then_up_switch_after_recovery(void **state)
{
    (void)state;
    /* 2 Mbit/s for 12 segments, 40 kbit/s for 12 (below the lowest rung), 2 Mbit/s again. */
    double rates[40];
    for (size_t n = 0; n < 40; n++) {
        rates[n] = n >= 12 && n < 24 ? 40e3 : 2e6;
    }
    size_t levels[40];
    double stall = 0.0;
    run_loop(rates, 40, levels, &stall);
    assert_int_equal(levels[11], 2); /* on top before the drop */
    assert_int_equal(levels[23], 0); /* down to the lowest rung during it */
    /* Back on top within four segments of the recovery, and it stays there. */
    size_t back = 0;
    for (size_t n = 24; n < 40 && back == 0; n++) {
        if (levels[n] == 2) {
            back = n;
        }
    }
    assert_true(back >= 24 && back <= 27);
    for (size_t n = back; n < 40; n++) {
        assert_int_equal(levels[n], 2);
    }
}

static void test_no_flapping_on_an_oscillating_link(void **state)
{
    (void)state;
    /* The rate alternates every segment between 180 and 360 kbit/s, on both sides of the top
     * rung's 256 kbit/s: a rule that follows the last rate switches every segment (59 times).
     * On average (240 kbit/s for equal sizes) the top rung is not sustainable, so a good answer
     * is a slow cycle: the top rung while the buffer lasts, a few middle ones to refill it. */
    double rates[60];
    for (size_t n = 0; n < 60; n++) {
        rates[n] = n % 2 == 0 ? 180e3 : 360e3;
    }
    size_t levels[60];
    double stall = 0.0;
    run_loop(rates, 60, levels, &stall);
    size_t switches = 0;
    size_t run = 1;
    size_t last_down = 1000;
    for (size_t n = 1; n < 60; n++) {
        if (levels[n] == levels[n - 1]) {
            run++;
            continue;
        }
        switches++;
        assert_true(run >= 2); /* every rung is held for two segments at least */
        run = 1;
        if (levels[n] < levels[n - 1]) {
            last_down = n;
        } else if (last_down != 1000) {
            assert_true(n - last_down > 2); /* no up-switch within the dwell after a down */
        }
    }
    assert_true(switches <= 10);
    assert_true(stall == 0.0);
}

static void test_manual_mode_fixes_the_rung(void **state)
{
    (void)state;
    abr_controller c;
    abr_controller_init(&c, NULL);
    abr_input in = input_with(5e6, 30.0, 1, 2);
    in.controls.mode = ABR_MODE_MANUAL;
    in.controls.manual_level = 1;
    abr_decision d = decide(&c, &in);
    assert_int_equal(d.level, 1);
    assert_int_equal(d.reason, ABR_REASON_MANUAL);
    in.controls.manual_level = 7; /* beyond the ladder: its top */
    d = decide(&c, &in);
    assert_int_equal(d.level, 2);
    in.controls.mode = ABR_MODE_AUTO;
    in.previous_level = 0;
    in.estimate.bps = 30e3;
    in.estimate.long_bps = 30e3;
    d = decide(&c, &in);
    assert_int_equal(d.level, 0); /* back to automatic */
}

static void test_cap_limits_the_automatic_choice(void **state)
{
    (void)state;
    abr_controller c;
    abr_controller_init(&c, NULL);
    abr_input in = input_with(5e6, 30.0, 1, 1);
    in.controls.cap_bps = 200000;
    abr_decision d = decide(&c, &in);
    assert_int_equal(d.level, 1);
    assert_int_equal(d.reason, ABR_REASON_CAP);
    in.controls.cap_bps = 10000; /* below every rung: the lowest is always allowed */
    d = decide(&c, &in);
    assert_int_equal(d.level, 0);
    /* A cap the plan does not reach is not the reason. */
    in.controls.cap_bps = 200000;
    in.estimate.bps = 60e3;
    in.estimate.long_bps = 60e3;
    in.buffer_s = 4.0;
    in.previous_level = 0;
    d = decide(&c, &in);
    assert_int_equal(d.level, 0);
    assert_int_not_equal(d.reason, ABR_REASON_CAP);
}

static void test_seek_lock_holds_the_rung(void **state)
{
    (void)state;
    abr_controller c;
    abr_controller_init(&c, NULL);
    abr_input in = input_with(5e6, 30.0, 1, 1);
    in.controls.seek_locks = 1;
    abr_decision d = decide(&c, &in);
    assert_int_equal(d.level, 1);
    assert_int_equal(d.reason, ABR_REASON_STAY_SEEK_LOCK);
    in.controls.seek_locks = 0;
    d = decide(&c, &in);
    assert_int_equal(d.level, 2);
}

static void test_up_switch_is_held_right_after_a_down_switch(void **state)
{
    (void)state;
    abr_controller c;
    abr_controller_init(&c, NULL);
    abr_input in = input_with(5e6, 20.0, 1, 2);
    decide(&c, &in); /* on top */
    in = input_with(60e3, 20.0, 1, 2);
    abr_decision d = decide(&c, &in);
    assert_true(d.level < 2);
    assert_int_equal(d.reason, ABR_REASON_DOWN);
    size_t low = d.level;
    in = input_with(5e6, 20.0, 1, low);
    d = decide(&c, &in);
    assert_int_equal(d.level, low);
    assert_int_equal(d.reason, ABR_REASON_STAY_DWELL);
    d = decide(&c, &in);
    assert_int_equal(d.reason, ABR_REASON_STAY_DWELL);
    d = decide(&c, &in);
    assert_int_equal(d.level, 2);
    assert_int_equal(d.reason, ABR_REASON_UP);
}

static void test_end_of_session_spends_the_buffer(void **state)
{
    (void)state;
    /* 200 kbit/s cannot sustain the top rung (5.2 s per 4 s segment). With 40 s buffered and
     * three segments left, the buffer is worth nothing afterwards: take the top. */
    abr_controller c;
    abr_controller_init(&c, NULL);
    abr_input in = input_with(200e3, 40.0, 1, 1);
    in.segments_left = 3;
    abr_decision d = decide(&c, &in);
    assert_int_equal(d.level, 2);
    /* With 200 segments to go, climbing now only means coming back down later. */
    abr_controller_init(&c, NULL);
    in.segments_left = 200;
    d = decide(&c, &in);
    assert_int_equal(d.level, 1);
}

static void test_linear_score_spends_rather_than_banks_on_a_steady_link(void **state)
{
    (void)state;
    /* A steady 165 kbit/s link carries the middle rung (0.08 + 512 / 165 = 3.2 s per 4 s
     * segment) but not the top one. Under the linear score a second of download buys the same
     * quality on every rung, so an undiscounted tail is as happy to bank buffer on the lowest
     * rung "for later" as to spend it now, and the small terms tip it to banking — at 16 s
     * buffered as at 40 s. Counting the tail at a discount makes the plan take the middle rung
     * once a safe buffer is in hand. */
    abr_controller_config config;
    abr_controller_config_default(&config);
    config.utility = ABR_UTILITY_LINEAR;
    abr_input in = input_with(165e3, 16.0, 1, 0);
    in.segments_left = 43;
    abr_controller c;
    abr_controller_init(&c, &config);
    abr_decision d = decide(&c, &in);
    assert_int_equal(d.level, 1);
    assert_int_equal(d.reason, ABR_REASON_UP);
    /* The same decisions with the tail counted in full (and a 2 s reserve) bank. */
    config.tail_weight = 1.0;
    config.tail_reserve_s = 2.0;
    abr_controller_init(&c, &config);
    d = decide(&c, &in);
    assert_int_equal(d.level, 0);
    in.buffer_s = 40.0;
    d = decide(&c, &in);
    assert_int_equal(d.level, 0);
}

static void test_out_of_range_tail_weight_counts_the_tail_in_full(void **state)
{
    (void)state;
    abr_controller_config config;
    abr_controller_config_default(&config);
    assert_true(config.tail_weight > 0.0 && config.tail_weight <= 1.0);
    const double bad[] = {0.0, -0.5, 1.5, NAN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config.tail_weight = bad[i];
        abr_controller c;
        abr_controller_init(&c, &config);
        assert_true(c.config.tail_weight == 1.0);
    }
    config.tail_weight = 0.75;
    abr_controller c;
    abr_controller_init(&c, &config);
    assert_true(c.config.tail_weight == 0.75);
}

/* How far the lookahead's later rungs adapt to what the first download shows follows the
 * buffer: not at all below adapt_buffer_s, fully from twice that. */
static void test_later_rungs_adapt_once_the_buffer_allows(void **state)
{
    (void)state;
    abr_controller_config k;
    abr_controller_config_default(&k);
    k.adapt_buffer_s = 10.0;
    const double buffers[] = {5.0, 10.0, 15.0, 20.0, 40.0};
    const double adapt[] = {0.0, 0.0, 0.5, 1.0, 1.0};
    for (size_t i = 0; i < 5; i++) {
        abr_input in = input_with(180000.0, buffers[i], 1, 1);
        abr_plan_problem p;
        abr_plan_build(&k, &in, 3, &p);
        assert_true(fabs(p.adapt - adapt[i]) < 1e-9);
    }
    k.adapt_buffer_s = 0.0; /* always */
    abr_input in = input_with(180000.0, 2.0, 1, 1);
    abr_plan_problem p;
    abr_plan_build(&k, &in, 3, &p);
    assert_true(p.adapt == 1.0);
}

/* Choosing the later rungs per scenario can only add value: each scenario may keep the
 * continuation all scenarios share. With one scenario it changes nothing. */
static void test_adapting_never_lowers_a_plans_value(void **state)
{
    (void)state;
    abr_controller_config k;
    abr_controller_config_default(&k);
    const double spread[] = {-0.6, -0.2, 0.0, 0.1, 0.3, -0.4, 0.2, -0.1};
    for (int b = 0; b < 4; b++) {
        abr_input in = input_with(150000.0 + 40000.0 * b, 4.0 + 8.0 * b, 1, (size_t)(b % 3));
        memcpy(in.estimate.log_errors, spread, sizeof spread);
        in.estimate.error_count = 8;
        abr_plan_problem p;
        abr_plan_build(&k, &in, 3, &p);
        assert_true(p.scenarios > 1);
        for (size_t level = 0; level < 3; level++) {
            p.adapt = 0.0;
            double committed = abr_plan_value_of(&p, level);
            p.adapt = 0.5;
            double half = abr_plan_value_of(&p, level);
            p.adapt = 1.0;
            double adapting = abr_plan_value_of(&p, level);
            assert_true(half >= committed - 1e-9);
            assert_true(adapting >= half - 1e-9);
        }
        p.scenarios = 1;
        p.weight[0] = 1.0;
        p.adapt = 0.0;
        double one_committed = abr_plan_value_of(&p, 2);
        p.adapt = 1.0;
        assert_true(fabs(abr_plan_value_of(&p, 2) - one_committed) < 1e-9);
    }
}

static void test_average_bandwidth_sizes_the_segments(void **state)
{
    (void)state;
    /* A top rung whose peak is 512 kbit/s but average 200 kbit/s: at 300 kbit/s its segment
     * takes 0.08 + 800/300 = 2.75 s, not 6.9 s. */
    const abr_variant with_average[] = {{64000, 0}, {128000, 0}, {512000, 200000}};
    const abr_variant peak_only[] = {{64000, 0}, {128000, 0}, {512000, 0}};
    abr_controller c;
    abr_controller_init(&c, NULL);
    abr_input in = input_with(300e3, 6.0, 1, 1);
    in.ladder = with_average;
    assert_int_equal(decide(&c, &in).level, 2);
    abr_controller_init(&c, NULL);
    in.ladder = peak_only;
    assert_true(decide(&c, &in).level < 2);
}

static void test_one_rung_ladder_always_gives_it(void **state)
{
    (void)state;
    abr_controller c;
    abr_controller_init(&c, NULL);
    abr_input in = input_with(10e3, 0.0, 1, 0);
    in.ladder_count = 1;
    assert_int_equal(decide(&c, &in).level, 0);
    in.estimate.bps = 10e6;
    in.buffer_s = 30.0;
    assert_int_equal(decide(&c, &in).level, 0);
}

static void test_invalid_input_is_rejected_and_changes_nothing(void **state)
{
    (void)state;
    abr_controller c;
    abr_controller_init(&c, NULL);
    abr_decision d = {.level = 99};
    abr_input in = input_with(1e6, 10.0, 1, 1);
    in.ladder = NULL;
    assert_int_equal(abr_controller_decide(&c, &in, &d), KTH_ERR_INVALID_ARG);
    in = input_with(1e6, 10.0, 1, 1);
    in.ladder_count = 0;
    assert_int_equal(abr_controller_decide(&c, &in, &d), KTH_ERR_INVALID_ARG);
    in.ladder_count = ABR_MAX_LEVELS + 1;
    assert_int_equal(abr_controller_decide(&c, &in, &d), KTH_ERR_INVALID_ARG);
    in = input_with(1e6, 10.0, 1, 3);
    assert_int_equal(abr_controller_decide(&c, &in, &d), KTH_ERR_INVALID_ARG);
    in = input_with(1e6, 10.0, 1, 1);
    in.segment_s = 0.0;
    assert_int_equal(abr_controller_decide(&c, &in, &d), KTH_ERR_INVALID_ARG);
    in.segment_s = NAN;
    assert_int_equal(abr_controller_decide(&c, &in, &d), KTH_ERR_INVALID_ARG);
    assert_int_equal(abr_controller_decide(&c, NULL, &d), KTH_ERR_INVALID_ARG);
    assert_int_equal(d.level, 99);
    assert_int_equal(c.has_last, 0);
}

static void test_decisions_are_deterministic(void **state)
{
    (void)state;
    abr_input in = input_with(230e3, 13.0, 1, 1);
    in.estimate.log_errors[0] = -0.7;
    in.estimate.log_errors[3] = 0.4;
    abr_controller a;
    abr_controller b;
    abr_controller_init(&a, NULL);
    abr_controller_init(&b, NULL);
    abr_decision da = decide(&a, &in);
    abr_decision db = decide(&b, &in);
    assert_memory_equal(&da, &db, sizeof da);
}

static void test_reasons_have_names(void **state)
{
    (void)state;
    assert_string_equal(abr_reason_name(ABR_REASON_START), "start");
    assert_string_equal(abr_reason_name(ABR_REASON_UP), "up");
    assert_string_equal(abr_reason_name(ABR_REASON_DOWN), "down");
    assert_string_equal(abr_reason_name(ABR_REASON_URGENT_DOWN), "urgent-down");
    assert_string_equal(abr_reason_name(ABR_REASON_MANUAL), "manual");
    assert_string_equal(abr_reason_name(ABR_REASON_CAP), "cap");
    assert_string_equal(abr_reason_name(ABR_REASON_STAY_BEST), "stay-best");
    assert_string_equal(abr_reason_name(ABR_REASON_STAY_DWELL), "stay-dwell");
    assert_string_equal(abr_reason_name(ABR_REASON_STAY_SEEK_LOCK), "stay-seek-lock");
    assert_string_equal(abr_reason_name(ABR_REASON_STAY_NO_ESTIMATE), "stay-no-estimate");
    assert_string_equal(abr_reason_name((abr_reason)1234), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_segment_without_estimate_is_lowest),
        cmocka_unit_test(test_without_estimate_the_rung_is_kept),
        cmocka_unit_test(test_fast_link_climbs_straight_to_the_top),
        cmocka_unit_test(test_slow_link_stays_on_the_lowest_rung),
        cmocka_unit_test(test_stalled_fetch_with_little_buffer_is_rescued),
        cmocka_unit_test(test_empty_buffer_forces_a_rung_that_refills_it),
        cmocka_unit_test(test_rescue_then_up_switch_after_recovery),
        cmocka_unit_test(test_no_flapping_on_an_oscillating_link),
        cmocka_unit_test(test_manual_mode_fixes_the_rung),
        cmocka_unit_test(test_cap_limits_the_automatic_choice),
        cmocka_unit_test(test_seek_lock_holds_the_rung),
        cmocka_unit_test(test_up_switch_is_held_right_after_a_down_switch),
        cmocka_unit_test(test_end_of_session_spends_the_buffer),
        cmocka_unit_test(test_linear_score_spends_rather_than_banks_on_a_steady_link),
        cmocka_unit_test(test_out_of_range_tail_weight_counts_the_tail_in_full),
        cmocka_unit_test(test_later_rungs_adapt_once_the_buffer_allows),
        cmocka_unit_test(test_adapting_never_lowers_a_plans_value),
        cmocka_unit_test(test_average_bandwidth_sizes_the_segments),
        cmocka_unit_test(test_one_rung_ladder_always_gives_it),
        cmocka_unit_test(test_invalid_input_is_rejected_and_changes_nothing),
        cmocka_unit_test(test_decisions_are_deterministic),
        cmocka_unit_test(test_reasons_have_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
