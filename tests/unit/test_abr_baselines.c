/*
 * test_abr_baselines.c — the four reference controllers pinned on hand-made inputs and tiny
 * constant traces, with every expected choice worked out by hand in the comments. Ladder
 * 64/128/256 kbit/s unless said otherwise.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "algo.h"
#include "baselines.h"
#include "session.h"
#include "trace.h"

static const double ladder[] = {64, 128, 256};

static void check_near(double actual, double expected, double epsilon, int line)
{
    if (!(fabs(actual - expected) <= epsilon)) {
        fail_msg("line %d: %.12g is not within %g of %.12g", line, actual, epsilon, expected);
    }
}
#define assert_near(a, b, epsilon) check_near((a), (b), (epsilon), __LINE__)

/* Runs `algo` for `n` segments of 4 s over a constant link and returns the rungs. */
static void run_constant(const sim_algo *algo, const char *trace_text, size_t n, size_t *levels)
{
    sim_trace t;
    char err[256];
    assert_int_equal(sim_trace_parse(trace_text, strlen(trace_text), "c", &t, err, sizeof err), 0);
    sim_setup setup = {ladder, 3, 4.0, n, SIM_QOE_LIN, SIM_MPC_TIES_LAST};
    sim_segment seg[16];
    sim_session_summary sum;
    assert_true(n <= 16);
    assert_int_equal(sim_session_run(&setup, 1.0, &t, algo, seg, &sum, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++) {
        levels[i] = seg[i].level;
    }
    sim_trace_free(&t);
}

/* ---- BB: reservoir 5 s, cushion 10 s, floor((levels - 1) (B - 5) / 10) ---- */

static void test_bb_maps_buffer_linearly_onto_the_ladder(void **state)
{
    (void)state;
    assert_int_equal(sim_bb_level(4.9, 3), 0);  /* below the reservoir */
    assert_int_equal(sim_bb_level(9.99, 3), 0); /* floor(2 * 4.99 / 10) = floor(0.998) */
    assert_int_equal(sim_bb_level(10.0, 3), 1); /* floor(2 * 5 / 10) */
    assert_int_equal(sim_bb_level(14.9, 3), 1); /* floor(1.98) */
    assert_int_equal(sim_bb_level(15.0, 3), 2); /* reservoir + cushion */
    assert_int_equal(sim_bb_level(60.0, 3), 2);
    assert_int_equal(sim_bb_level(7.0, 6), 1);  /* floor(5 * 2 / 10) */
    assert_int_equal(sim_bb_level(12.0, 6), 3); /* floor(5 * 7 / 10) */
}

static void test_bb_on_a_constant_link(void **state)
{
    (void)state;
    /* 1 Mbit/s: rung 0 takes 0.256 + 0.08 = 0.336 s, rung 1 0.592 s, rung 2 1.104 s.
     * B after seg0 = 4 -> rung 0; B = 4 - 0.336 + 4 = 7.664 -> 0; 11.328 -> floor(1.2656) = 1;
     * 11.328 - 0.592 + 4 = 14.736 -> floor(1.9472) = 1; 18.144 -> 2. */
    size_t levels[6];
    run_constant(&sim_algo_bb, "0 1\n1000 1\n", 6, levels);
    static const size_t expected[] = {0, 0, 0, 1, 1, 2};
    assert_memory_equal(levels, expected, sizeof expected);
}

/* ---- RB: harmonic mean of the last 5 throughputs, highest rung not above it ---- */

static void test_rb_takes_highest_rung_not_above_harmonic_mean(void **state)
{
    (void)state;
    double thr[] = {100e3, 200e3, 400e3, 400e3, 400e3, 800e3};
    /* Last five: 5 / (1/200 + 3/400 + 1/800) kbit/s = 363.64 kbit/s -> rung 2. */
    double hm = sim_harmonic_mean(thr, 6, 5);
    assert_near(hm, 5.0 / 0.01375 * 1000.0, 1e-6);
    assert_int_equal(sim_rb_level(hm, ladder, 3), 2);
    /* 100, 150: 2 / (1/100 + 1/150) = 120 kbit/s -> rung 0 (128 is above). */
    assert_near(sim_harmonic_mean((double[]){100e3, 150e3}, 2, 5), 120e3, 1e-6);
    assert_int_equal(sim_rb_level(120e3, ladder, 3), 0);
    assert_int_equal(sim_rb_level(128e3, ladder, 3), 1); /* exactly equal is not above */
    assert_int_equal(sim_rb_level(10e3, ladder, 3), 0);  /* below every rung: the lowest */
    assert_near(sim_harmonic_mean(thr, 0, 5), 0.0, 0.0);
}

static void test_rb_on_a_constant_link(void **state)
{
    (void)state;
    /* 200 kbit/s: seg0 256 kbit in 1.28 + 0.08 = 1.36 s -> 188.2 kbit/s -> rung 1; then
     * 512 kbit in 2.64 s -> 193.9 kbit/s; harmonic means stay in [128, 256) -> rung 1. */
    size_t levels[5];
    run_constant(&sim_algo_rb, "0 0.2\n1000 0.2\n", 5, levels);
    static const size_t expected[] = {0, 1, 1, 1, 1};
    assert_memory_equal(levels, expected, sizeof expected);
}

/* ---- BOLA: V = (25 - L) / (ln 4 + 5), argmax (V (v_m + 5) - B) / R_m ---- */

static void test_bola_thresholds_by_hand(void **state)
{
    (void)state;
    /* L = 4: V = 21 / 6.386294 = 3.288290. Scores (16.4414 - B)/64, (18.7207 - B)/128,
     * (21 - B)/256. Rung 1 beats rung 0 above B = 2 * 16.4414 - 18.7207 = 14.162; rung 2
     * beats rung 1 above B = 2 * 18.7207 - 21 = 16.441. */
    assert_int_equal(sim_bola_level(4.0, ladder, 3, 4.0), 0);
    assert_int_equal(sim_bola_level(14.1, ladder, 3, 4.0), 0);
    assert_int_equal(sim_bola_level(14.2, ladder, 3, 4.0), 1);
    assert_int_equal(sim_bola_level(16.4, ladder, 3, 4.0), 1);
    assert_int_equal(sim_bola_level(16.5, ladder, 3, 4.0), 2);
    /* All scores negative (B = 30): the least negative is the top rung's. */
    assert_int_equal(sim_bola_level(30.0, ladder, 3, 4.0), 2);
}

static void test_bola_on_a_constant_link(void **state)
{
    (void)state;
    /* 1 Mbit/s: B = 4, 7.664, 11.328, 14.992 (rung 0 each: +3.664 per segment); 14.992 is past
     * 14.162 -> rung 1 (0.592 s): B = 18.4 -> rung 2. */
    size_t levels[6];
    run_constant(&sim_algo_bola, "0 1\n1000 1\n", 6, levels);
    static const size_t expected[] = {0, 0, 0, 0, 1, 2};
    assert_memory_equal(levels, expected, sizeof expected);
}

/* ---- RobustMPC ---- */

static void test_mpc_search_by_hand(void **state)
{
    (void)state;
    /* No ties in these cases: both rules agree. */
    for (int t = 0; t < 2; t++) {
        sim_mpc_ties ties = t == 0 ? SIM_MPC_TIES_LAST : SIM_MPC_TIES_FIRST;
        /* B = 4, from rung 0, 1 Mbit/s, horizon 2: (2,2) scores 0.25 + 1 = 1.25, the best
         * ((1,2): 0.25 + 0.5; (2,1): 0.25 + 0). */
        assert_int_equal(sim_mpc_search(SIM_QOE_LIN, ladder, 3, 4.0, 4.0, 0, 1e6, 2, ties), 2);
        /* From rung 2 at 200 kbit/s, B = 4: downloads 1.28 / 2.56 / 5.12 s. Horizon 1:
         * rung 0: 0.25 - 0.75 = -0.5; rung 1: 0.5 - 0.5 = 0; rung 2: 1 - 1.12 (stall) =
         * -0.12. */
        assert_int_equal(sim_mpc_search(SIM_QOE_LIN, ladder, 3, 4.0, 4.0, 2, 200e3, 1, ties), 1);
        /* Log score, same case: q = 0, ln2, 2ln2, mu = 2ln2: rung 0: -2ln2; rung 1: ln2 - ln2 =
         * 0; rung 2: 2ln2 - 2ln2 * 1.12 < 0 -> rung 1. */
        assert_int_equal(sim_mpc_search(SIM_QOE_LOG, ladder, 3, 4.0, 4.0, 2, 200e3, 1, ties), 1);
    }
}

static void test_mpc_ties_keep_the_last_or_the_first_equal_plan(void **state)
{
    (void)state;
    /* B = 4, from rung 0, 1 Mbit/s, horizon 1, lin: no stall anywhere and every rung scores
     * 0.25 (0.25; 0.5 - 0.25; 1 - 0.75). LAST keeps rung 2, FIRST rung 0. */
    assert_int_equal(sim_mpc_search(SIM_QOE_LIN, ladder, 3, 4.0, 4.0, 0, 1e6, 1, SIM_MPC_TIES_LAST),
                     2);
    assert_int_equal(
        sim_mpc_search(SIM_QOE_LIN, ladder, 3, 4.0, 4.0, 0, 1e6, 1, SIM_MPC_TIES_FIRST), 0);
    /* From rung 0 at 200 kbit/s, B = 4, horizon 1: rung 0 scores 0.25, rung 1 0.5 - 0.25 =
     * 0.25, rung 2 stalls (5.12 s > 4 s): 1 - 1.12 - 0.75. LAST is the last of the TIED plans
     * (rung 1), not the highest rung. */
    assert_int_equal(
        sim_mpc_search(SIM_QOE_LIN, ladder, 3, 4.0, 4.0, 0, 200e3, 1, SIM_MPC_TIES_LAST), 1);
    assert_int_equal(
        sim_mpc_search(SIM_QOE_LIN, ladder, 3, 4.0, 4.0, 0, 200e3, 1, SIM_MPC_TIES_FIRST), 0);
    /* Two segments, log score (q = 0, ln2, 2ln2; mu = 2ln2), from rung 0 with B = 0.5 at
     * 512 kbit/s: downloads 0.5 / 1 / 2 s. (0,0), (0,1), (0,2), (1,1) and (1,2) all score 0 —
     * e.g. (1,2): ln2 - 2ln2 * 0.5 (stall) - ln2, then B = 4: 2ln2 - ln2 — and every plan
     * starting on rung 2 stalls 1.5 s and scores below. LAST applies the first rung of (1,2),
     * FIRST that of (0,0). */
    assert_int_equal(
        sim_mpc_search(SIM_QOE_LOG, ladder, 3, 4.0, 0.5, 0, 512e3, 2, SIM_MPC_TIES_LAST), 1);
    assert_int_equal(
        sim_mpc_search(SIM_QOE_LOG, ladder, 3, 4.0, 0.5, 0, 512e3, 2, SIM_MPC_TIES_FIRST), 0);
}

static size_t mpc_choose(void *s, size_t n, const double *thr, double buffer, size_t prev,
                         size_t left, sim_mpc_ties ties)
{
    sim_setup setup = {ladder, 3, 4.0, 48, SIM_QOE_LIN, ties};
    uint64_t bytes[8] = {0};
    double download[8] = {0};
    sim_view v = {&setup, n, left, buffer, prev, bytes, download, thr};
    return sim_algo_robustmpc.choose(s, &v);
}

static void test_mpc_discounts_by_the_largest_recent_error(void **state)
{
    (void)state;
    void *s = sim_algo_robustmpc.open(NULL);
    assert_non_null(s);
    double thr[] = {300e3, 100e3};
    const sim_mpc_ties last = SIM_MPC_TIES_LAST;
    assert_int_equal(mpc_choose(s, 0, thr, 0.0, 0, 48, last), 0); /* segment 0: the lowest */
    /* n = 1: no earlier prediction, error 0; prediction = 300 kbit/s (recorded). */
    size_t first = mpc_choose(s, 1, thr, 4.0, 0, 47, last);
    assert_int_equal(first, sim_mpc_search(SIM_QOE_LIN, ladder, 3, 4.0, 4.0, 0, 300e3, 5, last));
    /* n = 2: actual 100 vs predicted 300 -> error |300 - 100| / 100 = 2. Harmonic mean of
     * 300 and 100 = 150 kbit/s, discounted: 150 / (1 + 2) = 50 kbit/s. */
    size_t second = mpc_choose(s, 2, thr, 6.0, 2, 46, last);
    size_t with_discount = sim_mpc_search(SIM_QOE_LIN, ladder, 3, 4.0, 6.0, 2, 50e3, 5, last);
    size_t without = sim_mpc_search(SIM_QOE_LIN, ladder, 3, 4.0, 6.0, 2, 150e3, 5, last);
    assert_int_not_equal(with_discount, without); /* the case tells the two apart */
    assert_int_equal(second, with_discount);
    sim_algo_robustmpc.close(s);
}

static void test_mpc_horizon_shrinks_at_the_end(void **state)
{
    (void)state;
    /* From rung 0 with 40 s buffered at 200 kbit/s and one segment left: horizon 1, the top
     * rung's 5.12 s download fits the buffer: 1 - 0.75 = 0.25 against 0.25 (rung 1: 0.5 - 0.25)
     * and 0.25 (rung 0) — a three-way tie, so the setup's tie rule decides: the top rung (last)
     * or the lowest (first). With two segments left (2, 2) scores 0.25 + 1, alone. */
    double thr[] = {200e3};
    void *s = sim_algo_robustmpc.open(NULL);
    assert_int_equal(mpc_choose(s, 1, thr, 40.0, 0, 1, SIM_MPC_TIES_FIRST), 0);
    sim_algo_robustmpc.close(s);
    s = sim_algo_robustmpc.open(NULL);
    assert_int_equal(mpc_choose(s, 1, thr, 40.0, 0, 1, SIM_MPC_TIES_LAST), 2);
    sim_algo_robustmpc.close(s);
    for (int t = 0; t < 2; t++) {
        s = sim_algo_robustmpc.open(NULL);
        assert_int_equal(
            mpc_choose(s, 1, thr, 40.0, 0, 2, t == 0 ? SIM_MPC_TIES_LAST : SIM_MPC_TIES_FIRST), 2);
        sim_algo_robustmpc.close(s);
    }
}

static void test_every_baseline_starts_on_the_lowest_rung(void **state)
{
    (void)state;
    const sim_algo *algos[] = {&sim_algo_bb, &sim_algo_rb, &sim_algo_bola, &sim_algo_robustmpc};
    for (size_t i = 0; i < 4; i++) {
        size_t levels[2];
        run_constant(algos[i], "0 50\n1000 50\n", 2, levels);
        assert_int_equal(levels[0], 0);
    }
}

static void test_algorithms_are_found_by_name(void **state)
{
    (void)state;
    size_t count = 0;
    const sim_algo *const *all = sim_algos(&count);
    assert_int_equal(count, 5);
    const char *names[] = {"kithara", "bb", "rb", "bola", "robustmpc"};
    for (size_t i = 0; i < count; i++) {
        assert_string_equal(all[i]->name, names[i]);
        assert_ptr_equal(sim_algo_find(names[i]), all[i]);
    }
    assert_null(sim_algo_find("mpc"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bb_maps_buffer_linearly_onto_the_ladder),
        cmocka_unit_test(test_bb_on_a_constant_link),
        cmocka_unit_test(test_rb_takes_highest_rung_not_above_harmonic_mean),
        cmocka_unit_test(test_rb_on_a_constant_link),
        cmocka_unit_test(test_bola_thresholds_by_hand),
        cmocka_unit_test(test_bola_on_a_constant_link),
        cmocka_unit_test(test_mpc_search_by_hand),
        cmocka_unit_test(test_mpc_ties_keep_the_last_or_the_first_equal_plan),
        cmocka_unit_test(test_mpc_discounts_by_the_largest_recent_error),
        cmocka_unit_test(test_mpc_horizon_shrinks_at_the_end),
        cmocka_unit_test(test_every_baseline_starts_on_the_lowest_rung),
        cmocka_unit_test(test_algorithms_are_found_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
