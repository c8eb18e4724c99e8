/*
 * test_abr_estimator.c — the throughput estimator: tiny transfers, the first-byte estimate,
 * the reaction to a drop and the speed of recovery, the recorded prediction errors, and the
 * long-run rate. Every expected value is worked out by hand in the comments.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "abr/estimator.h"

#define MS 1000000ull

static void check_near(double actual, double expected, double epsilon, int line)
{
    if (!(fabs(actual - expected) <= epsilon)) {
        fail_msg("line %d: %.12g is not within %g of %.12g", line, actual, epsilon, expected);
    }
}
#define assert_near(a, b, epsilon) check_near((a), (b), (epsilon), __LINE__)

static uint64_t clock_ns;

/* A transfer of `bytes` whose body arrives at `rate_bps` after an 80 ms first-byte wait. */
static abr_sample sample_at(double rate_bps, uint64_t bytes)
{
    uint64_t body_ns = (uint64_t)llround((double)bytes * 8.0 / rate_bps * 1e9);
    clock_ns += 80 * MS + body_ns;
    return (abr_sample){
        .bytes = bytes, .duration_ns = 80 * MS + body_ns, .ttfb_ns = 80 * MS, .now_ns = clock_ns};
}

static int feed(abr_estimator *est, double rate_bps, uint64_t bytes)
{
    abr_sample s = sample_at(rate_bps, bytes);
    return abr_estimator_add_sample(est, &s);
}

static double estimate_bps(const abr_estimator *est)
{
    abr_estimate e;
    abr_estimator_get(est, &e);
    return e.bps;
}

static void test_body_rate_excludes_time_to_first_byte(void **state)
{
    (void)state;
    abr_estimator est;
    abr_estimator_init(&est, NULL);
    /* 100000 bytes = 800000 bits in 1.08 s of which 0.08 s wait: 800 kbit/s, not 740.7. */
    abr_sample s = {.bytes = 100000, .duration_ns = 1080 * MS, .ttfb_ns = 80 * MS, .now_ns = 1};
    assert_int_equal(abr_estimator_add_sample(&est, &s), 1);
    abr_estimate e;
    abr_estimator_get(&est, &e);
    assert_near(e.bps, 800000.0, 1e-6);
    assert_near(e.ttfb_s, 0.080, 1e-12);
    assert_int_equal(e.samples, 1);
    assert_int_equal(e.error_count, 0); /* no prediction existed before the first sample */
}

static void test_tiny_transfers_do_not_move_the_rate(void **state)
{
    (void)state;
    abr_estimator est;
    abr_estimator_init(&est, NULL);
    assert_int_equal(feed(&est, 1e6, 100000), 1);
    /* A 600-byte key at a dismal 10 kbit/s: too small to measure anything but latency. */
    abr_sample key = {.bytes = 600, .duration_ns = 560 * MS, .ttfb_ns = 80 * MS, .now_ns = 2};
    assert_int_equal(abr_estimator_add_sample(&est, &key), 0);
    assert_near(estimate_bps(&est), 1e6, 1.0);
    abr_estimate e;
    abr_estimator_get(&est, &e);
    assert_int_equal(e.samples, 1);
    assert_int_equal(e.error_count, 0);
}

static void test_tiny_transfers_feed_the_first_byte_estimate(void **state)
{
    (void)state;
    abr_estimator est;
    abr_estimator_init(&est, NULL);
    /* No first-byte time given: a tiny transfer is nearly all latency, 200 ms. */
    abr_sample a = {.bytes = 300, .duration_ns = 200 * MS, .ttfb_ns = 0, .now_ns = 1};
    abr_estimator_add_sample(&est, &a);
    abr_estimate e;
    abr_estimator_get(&est, &e);
    assert_near(e.ttfb_s, 0.200, 1e-12);
    /* The next one moves the average by a quarter of the difference: 0.2 + 0.25 * (0.1 - 0.2). */
    abr_sample b = {.bytes = 300, .duration_ns = 150 * MS, .ttfb_ns = 100 * MS, .now_ns = 2};
    abr_estimator_add_sample(&est, &b);
    abr_estimator_get(&est, &e);
    assert_near(e.ttfb_s, 0.175, 1e-12);
}

static void test_only_tiny_transfers_still_give_an_estimate(void **state)
{
    (void)state;
    abr_estimator est;
    abr_estimator_init(&est, NULL);
    assert_near(estimate_bps(&est), 0.0, 0.0);
    /* 2000 bytes = 16000 bits, body 0.1 s (0.18 s - 0.08 s): a stand-in of 160 kbit/s, so a
     * stream of small segments is never left without an estimate. */
    abr_sample s = {.bytes = 2000, .duration_ns = 180 * MS, .ttfb_ns = 80 * MS, .now_ns = 1};
    assert_int_equal(abr_estimator_add_sample(&est, &s), 0);
    assert_near(estimate_bps(&est), 160000.0, 1e-6);
    /* The first real sample replaces the stand-in. */
    feed(&est, 1e6, 50000);
    assert_near(estimate_bps(&est), 1e6, 1.0);
}

static void test_unknown_first_byte_time_is_taken_from_the_estimate(void **state)
{
    (void)state;
    abr_estimator est;
    abr_estimator_init(&est, NULL);
    abr_sample latency = {.bytes = 100, .duration_ns = 100 * MS, .ttfb_ns = 0, .now_ns = 1};
    abr_estimator_add_sample(&est, &latency); /* ttfb estimate: 0.1 s */
    /* 50000 bytes = 400000 bits in 0.5 s, no ttfb: body = 0.5 - 0.1 = 0.4 s -> 1 Mbit/s. */
    abr_sample s = {.bytes = 50000, .duration_ns = 500 * MS, .ttfb_ns = 0, .now_ns = 2};
    assert_int_equal(abr_estimator_add_sample(&est, &s), 1);
    assert_near(estimate_bps(&est), 1e6, 1e-3);
}

static void test_zero_duration_is_ignored(void **state)
{
    (void)state;
    abr_estimator est;
    abr_estimator_init(&est, NULL);
    abr_sample s = {.bytes = 100000, .duration_ns = 0, .ttfb_ns = 0, .now_ns = 1};
    assert_int_equal(abr_estimator_add_sample(&est, &s), 0);
    abr_sample all_wait = {.bytes = 100000, .duration_ns = 80 * MS, .ttfb_ns = 80 * MS};
    assert_int_equal(abr_estimator_add_sample(&est, &all_wait), 0);
    assert_near(estimate_bps(&est), 0.0, 0.0);
}

static void test_short_term_estimate_is_harmonic_mean_of_window(void **state)
{
    (void)state;
    abr_estimator est;
    abr_estimator_init(&est, NULL); /* window 5 */
    double rates[] = {400e3, 800e3, 200e3, 400e3, 400e3};
    for (size_t i = 0; i < 5; i++) {
        feed(&est, rates[i], 100000);
    }
    /* 5 / (1/400 + 1/800 + 1/200 + 2/400) per kbit/s = 5 / 0.01375 = 363.636 kbit/s. (No
     * recovery on the way: the newest two never both reach 1.5 x the mean.) */
    assert_near(estimate_bps(&est), 5.0 / 0.01375 * 1000.0, 0.5);
    /* The window slides: 800, 200, 400, 400, 100 -> 5 / 0.02125 = 235.294 kbit/s. */
    feed(&est, 100e3, 100000);
    assert_near(estimate_bps(&est), 5.0 / 0.02125 * 1000.0, 0.5);
}

static void test_a_drop_is_felt_at_once(void **state)
{
    (void)state;
    abr_estimator est;
    abr_estimator_init(&est, NULL);
    for (int i = 0; i < 5; i++) {
        feed(&est, 1e6, 100000);
    }
    feed(&est, 100e3, 100000);
    /* 5 / (4/1000 + 1/100) = 357.1 kbit/s: one slow sample takes away two thirds. */
    assert_near(estimate_bps(&est), 5.0 / 0.014 * 1000.0, 0.5);
}

static void test_recovery_takes_two_samples(void **state)
{
    (void)state;
    abr_estimator est;
    abr_estimator_init(&est, NULL);
    for (int i = 0; i < 5; i++) {
        feed(&est, 100e3, 100000);
    }
    feed(&est, 1e6, 100000);
    /* One fast sample could be luck: 5 / (4/100 + 1/1000) = 121.95 kbit/s. */
    assert_near(estimate_bps(&est), 5.0 / 0.041 * 1000.0, 0.5);
    feed(&est, 1e6, 100000);
    /* Two in a row, both >= 1.5 x the window mean (156.25 kbit/s): the slow past is dropped
     * and the estimate is the link's new rate, where a plain harmonic mean would still say
     * 156.25 kbit/s and need three more segments. */
    assert_near(estimate_bps(&est), 1e6, 1.0);
    /* The window then grows back with new samples. */
    feed(&est, 500e3, 100000);
    assert_near(estimate_bps(&est), 3.0 / (1.0 / 1000 + 1.0 / 1000 + 1.0 / 500) * 1000.0, 0.5);
}

static void test_prediction_errors_are_recorded_oldest_first(void **state)
{
    (void)state;
    abr_estimator est;
    abr_estimator_init(&est, NULL);
    feed(&est, 400e3, 100000); /* prediction becomes 400 */
    feed(&est, 200e3, 100000); /* error ln(200/400); prediction 2/(1/400+1/200) = 266.67 */
    feed(&est, 800e3, 100000); /* error ln(800/266.67) = ln 3 */
    abr_estimate e;
    abr_estimator_get(&est, &e);
    assert_int_equal(e.error_count, 2);
    assert_near(e.log_errors[0], log(0.5), 1e-6);
    assert_near(e.log_errors[1], log(3.0), 1e-6);
    /* The ring keeps the last HISTORY errors. */
    for (int i = 0; i < 40; i++) {
        feed(&est, 400e3, 100000);
    }
    abr_estimator_get(&est, &e);
    assert_int_equal(e.error_count, ABR_ESTIMATOR_HISTORY);
    assert_near(e.log_errors[ABR_ESTIMATOR_HISTORY - 1], 0.0, 1e-6);
}

static void test_long_run_rate_weights_by_size_and_decays(void **state)
{
    (void)state;
    abr_estimator_config config;
    abr_estimator_config_default(&config);
    config.long_tau_s = 0.0; /* no decay first */
    abr_estimator est;
    abr_estimator_init(&est, &config);
    feed(&est, 1e6, 250000);  /* 2 Mbit in 2 s */
    feed(&est, 100e3, 25000); /* 0.2 Mbit in 2 s */
    abr_estimate e;
    abr_estimator_get(&est, &e);
    /* Bits over body seconds: 2.2 Mbit / 4 s = 550 kbit/s (the harmonic mean would be 181.8). */
    assert_near(e.long_bps, 550000.0, 1e-3);

    config.long_tau_s = 10.0;
    abr_estimator_init(&est, &config);
    abr_sample a = {.bytes = 250000, .duration_ns = 2000 * MS, .ttfb_ns = 0, .now_ns = 0};
    abr_sample b = {.bytes = 25000, .duration_ns = 2000 * MS, .ttfb_ns = 0, .now_ns = 10000 * MS};
    abr_estimator_add_sample(&est, &a);
    abr_estimator_add_sample(&est, &b);
    abr_estimator_get(&est, &e);
    /* Ten seconds later the first sample weighs e^-1: (2e6/e + 2e5) / (2/e + 2). */
    double k = exp(-1.0);
    assert_near(e.long_bps, (2e6 * k + 2e5) / (2.0 * k + 2.0), 1e-3);
}

static void test_config_is_clamped(void **state)
{
    (void)state;
    abr_estimator_config config = {.min_bytes = 0,
                                   .window = 0,
                                   .recovery_samples = 0,
                                   .recovery_factor = 0.5,
                                   .long_tau_s = -1.0};
    abr_estimator est;
    abr_estimator_init(&est, &config);
    assert_int_equal(est.config.window, 1);
    assert_int_equal(est.config.recovery_samples, 1);
    assert_near(est.config.recovery_factor, 1.0, 0.0);
    assert_near(est.config.long_tau_s, 0.0, 0.0);
    config.window = 1000;
    abr_estimator_init(&est, &config);
    assert_int_equal(est.config.window, ABR_ESTIMATOR_HISTORY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_rate_excludes_time_to_first_byte),
        cmocka_unit_test(test_tiny_transfers_do_not_move_the_rate),
        cmocka_unit_test(test_tiny_transfers_feed_the_first_byte_estimate),
        cmocka_unit_test(test_only_tiny_transfers_still_give_an_estimate),
        cmocka_unit_test(test_unknown_first_byte_time_is_taken_from_the_estimate),
        cmocka_unit_test(test_zero_duration_is_ignored),
        cmocka_unit_test(test_short_term_estimate_is_harmonic_mean_of_window),
        cmocka_unit_test(test_a_drop_is_felt_at_once),
        cmocka_unit_test(test_recovery_takes_two_samples),
        cmocka_unit_test(test_prediction_errors_are_recorded_oldest_first),
        cmocka_unit_test(test_long_run_rate_weights_by_size_and_decays),
        cmocka_unit_test(test_config_is_clamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
