/*
 * test_abr_real_trace.c — kithara's controller and the baselines on two recorded sessions of
 * the HSDPA trace set, when the trace folder beside the source tree is present (skipped
 * otherwise). A fast session: kithara climbs once and stays on top. A slow one (a tram, scaled
 * to 15 %): kithara never stalls where the buffer-only rules (BB, BOLA) do, and scores above
 * them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "algo.h"
#include "session.h"
#include "trace.h"

#define TRACES KTH_SOURCE_DIR "/../shared/traces/hsdpa/"

static const double ladder[] = {64, 128, 256};

/* Loads a trace, or skips the test when the trace folder is absent. */
static void load_or_skip(const char *name, sim_trace *t)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s", TRACES, name);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        skip();
    }
    fclose(f);
    char err[256];
    if (sim_trace_load(path, t, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
}

static sim_session_summary run(const sim_algo *algo, const sim_trace *t, double segment_s,
                               double scale, sim_qoe_kind qoe, sim_segment *seg)
{
    sim_setup setup = {ladder,           3, segment_s, sim_segment_count(192.0, segment_s), qoe,
                       SIM_MPC_TIES_LAST};
    sim_session_summary sum;
    char err[256];
    if (sim_session_run(&setup, scale, t, algo, seg, &sum, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    return sum;
}

static void test_fast_session_climbs_once_and_stays_on_top(void **state)
{
    (void)state;
    sim_trace t;
    load_or_skip("norway_bus_1", &t);
    sim_segment seg[48];
    for (int q = 0; q < 2; q++) {
        sim_session_summary s = run(&sim_algo_kithara, &t, 4.0, 0.25, (sim_qoe_kind)q, seg);
        assert_int_equal(s.switches, 1);
        assert_int_equal(s.top_segments, 47);
        assert_true(s.rebuffer_s == 0.0);
    }
    sim_trace_free(&t);
}

static void test_slow_session_does_not_stall_where_buffer_rules_do(void **state)
{
    (void)state;
    sim_trace t;
    load_or_skip("norway_tram_3", &t);
    sim_segment seg[32];
    for (int q = 0; q < 2; q++) {
        sim_session_summary k = run(&sim_algo_kithara, &t, 6.0, 0.15, (sim_qoe_kind)q, seg);
        sim_session_summary bb = run(&sim_algo_bb, &t, 6.0, 0.15, (sim_qoe_kind)q, seg);
        sim_session_summary bola = run(&sim_algo_bola, &t, 6.0, 0.15, (sim_qoe_kind)q, seg);
        assert_true(k.rebuffer_s == 0.0);
        assert_true(bb.rebuffer_s > 0.0 && bola.rebuffer_s > 0.0);
        assert_true(k.qoe > bb.qoe && k.qoe > bola.qoe);
    }
    sim_trace_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_session_climbs_once_and_stays_on_top),
        cmocka_unit_test(test_slow_session_does_not_stall_where_buffer_rules_do),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
