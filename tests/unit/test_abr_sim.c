/*
 * test_abr_sim.c — the simulator's contract on tiny hand-made traces: trace loading and its
 * errors, the network model (piecewise rates, looping, the 80 ms round trip, idling), the
 * buffer model (start-up, rebuffering, the 60 s cap), QoE scoring, folder expansion and the
 * command line's errors and log. Expected values are worked out by hand in the comments.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "abr_sim.h"
#include "algo.h"
#include "network.h"
#include "qoe.h"
#include "run.h"
#include "session.h"
#include "trace.h"

static void check_near(double actual, double expected, double epsilon, int line)
{
    if (!(fabs(actual - expected) <= epsilon)) {
        fail_msg("line %d: %.12g is not within %g of %.12g", line, actual, epsilon, expected);
    }
}
#define assert_near(a, b, epsilon) check_near((a), (b), (epsilon), __LINE__)

static sim_trace parse_ok(const char *text)
{
    sim_trace t;
    char err[256];
    if (sim_trace_parse(text, strlen(text), "t", &t, err, sizeof err) != 0) {
        fail_msg("parse failed: %s", err);
    }
    return t;
}

/* ---- traces ---- */

static void test_trace_skips_blank_and_bad_lines(void **state)
{
    (void)state;
    sim_trace t = parse_ok("time mbps\n0 1\n\n1 2\r\n# note\n2 3 4\n3 x\n-\n4 -1\n5 2.5\n");
    assert_int_equal(t.count, 3); /* (0,1) (1,2) (5,2.5): the rest is not two numbers >= 0 */
    assert_near(t.time_s[2], 5.0, 0.0);
    assert_near(t.mbps[2], 2.5, 0.0);
    assert_string_equal(t.name, "t");
    assert_near(sim_trace_period(&t), 5.0, 0.0);
    sim_trace_free(&t);
}

static void test_trace_skips_times_that_do_not_increase(void **state)
{
    (void)state;
    sim_trace t = parse_ok("0 1\n1 2\n1 3\n0.5 4\n2 5\n");
    assert_int_equal(t.count, 3);
    assert_near(t.time_s[1], 1.0, 0.0);
    assert_near(t.mbps[1], 2.0, 0.0);
    assert_near(t.time_s[2], 2.0, 0.0);
    sim_trace_free(&t);
}

static void test_trace_without_usable_lines_is_an_error(void **state)
{
    (void)state;
    const char *bad[] = {"", "hello\nworld\n", "0 1\n", "0 0\n1 0\n2 0\n"};
    const char *why[] = {"no usable", "no usable", "no usable", "every throughput is zero"};
    for (size_t i = 0; i < 4; i++) {
        sim_trace t;
        char err[256] = "";
        assert_int_equal(sim_trace_parse(bad[i], strlen(bad[i]), "x", &t, err, sizeof err), -1);
        assert_non_null(strstr(err, why[i]));
        assert_int_equal(t.count, 0);
        assert_null(t.time_s);
    }
}

static void test_missing_trace_file_is_an_error(void **state)
{
    (void)state;
    sim_trace t;
    char err[256] = "";
    assert_int_equal(sim_trace_load("no-such-trace-file", &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "no-such-trace-file"));
}

/* ---- network ---- */

/* [0,1) at 1 Mbit/s, [1,2) at 2, [2,3) at 0.5; row 0's rate (9) must be ignored. */
static const char *three_rates = "0 9\n1 1\n2 2\n3 0.5\n";

static void test_network_follows_piecewise_rates_and_adds_round_trip(void **state)
{
    (void)state;
    sim_trace t = parse_ok(three_rates);
    sim_network net;
    sim_network_init(&net, &t, 1.0);
    /* 0.5 Mbit at 1 Mbit/s: 0.5 s, + 0.08. Cursor 0.5. */
    assert_near(sim_network_download(&net, 62500), 0.58, 1e-9);
    /* 2 Mbit: 0.5 Mbit in [0.5,1), then 1.5 Mbit at 2 Mbit/s = 0.75 s: 1.25 s. Cursor 1.75. */
    assert_near(sim_network_download(&net, 250000), 1.33, 1e-9);
    /* 1 Mbit: 0.5 Mbit in [1.75,2), 0.5 Mbit at 0.5 Mbit/s = 1 s: 1.25 s; cursor wraps to 0. */
    assert_near(sim_network_download(&net, 125000), 1.33, 1e-9);
    /* Idle 0.5 s, then 0.5 Mbit from 0.5 at 1 Mbit/s. */
    sim_network_idle(&net, 0.5);
    assert_near(sim_network_download(&net, 62500), 0.58, 1e-9);
    /* Cursor 1.0. 7.5 Mbit = two whole periods (3.5 Mbit, 3 s each) + 0.5 Mbit at 2 Mbit/s. */
    assert_near(sim_network_download(&net, 937500), 6.0 + 0.25 + 0.08, 1e-9);
    /* A long idle wraps too: 1.25 + 30.25 = 31.5 = 10 periods + 1.5 -> at 2 Mbit/s. */
    sim_network_idle(&net, 30.25);
    assert_near(sim_network_download(&net, 12500), 0.05 + 0.08, 1e-9);
    sim_trace_free(&t);
}

static void test_network_scale_multiplies_rates(void **state)
{
    (void)state;
    sim_trace t = parse_ok(three_rates);
    sim_network net;
    sim_network_init(&net, &t, 0.5);
    /* 0.5 Mbit at 0.5 Mbit/s: 1 s. */
    assert_near(sim_network_download(&net, 62500), 1.08, 1e-9);
    sim_trace_free(&t);
}

/* ---- sessions ---- */

static const size_t *fixed_levels;

static void *open_fixed(const sim_setup *setup)
{
    (void)setup;
    return (void *)&fixed_levels;
}

static size_t choose_fixed(void *state, const sim_view *view)
{
    (void)state;
    return fixed_levels[view->segment];
}

static void close_fixed(void *state)
{
    (void)state;
}

static const sim_algo fixed_algo = {"fixed", open_fixed, choose_fixed, close_fixed};

static void test_buffer_model_rebuffers_by_hand(void **state)
{
    (void)state;
    /* 1 Mbit/s constant, ladder 250/500/1000, L = 4 s, 16 s -> N = 4, rungs 0, 2, 2, 1.
     * seg0: 1 Mbit -> 1.08 s (start-up), B = 4.
     * seg1: 4 Mbit -> 4.08 s: stall 0.08, B = 4.     seg2: the same.
     * seg3: 2 Mbit -> 2.08 s: no stall, B = 4 - 2.08 + 4 = 5.92. */
    sim_trace t = parse_ok("0 1\n1000 1\n");
    static const double ladder[] = {250, 500, 1000};
    static const size_t path[] = {0, 2, 2, 1};
    fixed_levels = path;
    sim_setup setup = {ladder,           3, 4.0, sim_segment_count(16.0, 4.0), SIM_QOE_LIN,
                       SIM_MPC_TIES_LAST};
    assert_int_equal(setup.segments, 4);
    sim_segment seg[4];
    sim_session_summary sum;
    char err[128];
    assert_int_equal(sim_session_run(&setup, 1.0, &t, &fixed_algo, seg, &sum, err, sizeof err), 0);
    assert_near(sum.startup_s, 1.08, 1e-9);
    assert_near(seg[1].rebuffer_s, 0.08, 1e-9);
    assert_near(seg[2].rebuffer_s, 0.08, 1e-9);
    assert_near(seg[3].rebuffer_s, 0.0, 0.0);
    assert_near(seg[3].buffer_s, 5.92, 1e-9);
    assert_near(sum.rebuffer_s, 0.16, 1e-9);
    assert_int_equal(sum.switches, 2);
    assert_int_equal(sum.top_segments, 2);
    assert_int_equal(seg[2].bytes, 500000);
    assert_near(sum.mean_kbps, 687.5, 1e-9);
    /* QoE_lin: q = 0.25, 1, 1, 0.5.
     * (1 - 0.08 - 0.75) + (1 - 0.08 - 0) + (0.5 - 0 - 0.5) = 0.17 + 0.92 + 0 = 1.09; / 3. */
    assert_near(sum.qoe, 1.09 / 3.0, 1e-9);
    /* QoE_log: q = 0, ln 4, ln 4, ln 2, mu = ln 4.
     * (ln4 - 0.08 ln4 - ln4) + (ln4 - 0.08 ln4) + (ln2 - ln2) = ln4 (1 - 0.16); / 3. */
    setup.qoe = SIM_QOE_LOG;
    assert_int_equal(sim_session_run(&setup, 1.0, &t, &fixed_algo, seg, &sum, err, sizeof err), 0);
    assert_near(sum.qoe, log(4.0) * 0.84 / 3.0, 1e-9);
    sim_trace_free(&t);
}

static void test_full_buffer_idles_the_link(void **state)
{
    (void)state;
    /* 10 Mbit/s on [0,8), 1 on [8,20), 10 after; one rung of 1000 kbit/s, L = 40 s, N = 3.
     * seg0: 40 Mbit in 4 s (4.08), B = 40.   seg1: 40 Mbit in [4,8): 4.08, B = 75.92 -> the
     * link idles 15.92 s (cursor 8 -> 23.92) and B = 60.   seg2 starts at 23.92, at 10 Mbit/s:
     * 4.08 s (without the idle it would start at 8 and take 14.8 s). */
    sim_trace t = parse_ok("0 0\n8 10\n20 1\n1000 10\n");
    static const double ladder[] = {1000};
    static const size_t path[] = {0, 0, 0};
    fixed_levels = path;
    sim_setup setup = {ladder, 1, 40.0, 3, SIM_QOE_LIN, SIM_MPC_TIES_LAST};
    sim_segment seg[3];
    sim_session_summary sum;
    char err[128];
    assert_int_equal(sim_session_run(&setup, 1.0, &t, &fixed_algo, seg, &sum, err, sizeof err), 0);
    assert_near(seg[1].download_s, 4.08, 1e-9);
    assert_near(seg[1].buffer_s, 60.0, 0.0);
    assert_near(seg[2].download_s, 4.08, 1e-9);
    assert_near(seg[2].buffer_s, 60.0, 0.0);
    assert_near(sum.rebuffer_s, 0.0, 0.0);
    sim_trace_free(&t);
}

static void test_rung_outside_the_ladder_is_reported(void **state)
{
    (void)state;
    sim_trace t = parse_ok("0 1\n1000 1\n");
    static const double ladder[] = {100, 200};
    static const size_t path[] = {0, 5};
    fixed_levels = path;
    sim_setup setup = {ladder, 2, 4.0, 2, SIM_QOE_LIN, SIM_MPC_TIES_LAST};
    sim_session_summary sum;
    char err[128] = "";
    assert_int_equal(sim_session_run(&setup, 1.0, &t, &fixed_algo, NULL, &sum, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "rung 5"));
    sim_trace_free(&t);
}

static void test_segment_count_and_size(void **state)
{
    (void)state;
    assert_int_equal(sim_segment_count(192.0, 4.0), 48);
    assert_int_equal(sim_segment_count(192.0, 6.0), 32);
    assert_int_equal(sim_segment_count(192.0, 5.0), 38);
    assert_int_equal(sim_segment_count(0.0, 4.0), 0);
    assert_int_equal(sim_segment_bytes(64.0, 4.0), 32000);
    assert_int_equal(sim_segment_bytes(256.0, 6.0), 192000);
}

static void test_qoe_by_hand(void **state)
{
    (void)state;
    static const double ladder[] = {64, 128, 256};
    /* lin: q = 0.25, 0.5, 1. Rungs 0, 2, 1, 1 and a 0.5 s stall before the third:
     * (1 - 0.75) + (0.5 - 0.5 - 0.5) + (0.5) = 0.25 - 0.5 + 0.5 = 0.25; / 3. */
    static const size_t levels[] = {0, 2, 1, 1};
    static const double stalls[] = {9.0, 0.0, 0.5, 0.0}; /* segment 0's value is ignored */
    assert_near(sim_qoe_score(SIM_QOE_LIN, ladder, 3, levels, stalls, 4), 0.25 / 3.0, 1e-12);
    /* log: q = 0, ln2, 2 ln2; mu = 2 ln2.
     * (2ln2 - 2ln2) + (ln2 - ln2 - ln2) + ln2 = 0; / 3. */
    assert_near(sim_qoe_score(SIM_QOE_LOG, ladder, 3, levels, stalls, 4), 0.0, 1e-12);
    assert_near(sim_qoe_rebuffer_penalty(SIM_QOE_LOG, ladder, 3), log(4.0), 1e-12);
    assert_near(sim_qoe_rebuffer_penalty(SIM_QOE_LIN, ladder, 3), 1.0, 0.0);
}

/* ---- folders and the command line ---- */

static char workdir[64];

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", workdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup_workdir(void **state)
{
    (void)state;
    /* Relative to the test's working directory (the build tree). */
    snprintf(workdir, sizeof workdir, "abr_sim_test_XXXXXX");
    if (mkdtemp(workdir) == NULL) {
        return -1;
    }
    char sub[128];
    snprintf(sub, sizeof sub, "%s/set", workdir);
    mkdir(sub, 0700);
    snprintf(sub, sizeof sub, "%s/empty", workdir);
    mkdir(sub, 0700);
    write_file("set/b_trace", "0 1\n1 1\n");
    write_file("set/a_trace", "0 2\n1 2\n");
    write_file("set/.hidden", "not a trace\n");
    write_file("bad_trace", "nothing useful\n");
    return 0;
}

static int teardown_workdir(void **state)
{
    (void)state;
    const char *files[] = {"set/b_trace", "set/a_trace", "set/.hidden", "bad_trace",
                           "log.json",    "set",         "empty"};
    char path[256];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", workdir, files[i]);
        remove(path);
    }
    return rmdir(workdir);
}

static void test_folder_expands_to_its_files_sorted_by_name(void **state)
{
    (void)state;
    sim_path_list list = {0};
    char err[256];
    char path[128];
    snprintf(path, sizeof path, "%s/set", workdir);
    assert_int_equal(sim_path_list_add(&list, path, err, sizeof err), 0);
    assert_int_equal(list.count, 2);
    assert_non_null(strstr(list.paths[0], "/a_trace"));
    assert_non_null(strstr(list.paths[1], "/b_trace"));
    snprintf(path, sizeof path, "%s/empty", workdir);
    assert_int_equal(sim_path_list_add(&list, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "no trace file"));
    assert_int_equal(sim_path_list_add(&list, "no-such-folder", err, sizeof err), -1);
    sim_path_list_free(&list);
}

static int run_cli(int count, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, count);
    argv[0] = "abr-sim";
    for (int i = 0; i < count; i++) {
        argv[i + 1] = va_arg(ap, char *);
    }
    va_end(ap);
    argv[count + 1] = NULL;
    return abr_sim_main(count + 1, argv);
}

static void test_command_line_errors_exit_non_zero(void **state)
{
    (void)state;
    char set[128];
    char empty[128];
    char bad[128];
    snprintf(set, sizeof set, "%s/set", workdir);
    snprintf(empty, sizeof empty, "%s/empty", workdir);
    snprintf(bad, sizeof bad, "%s/bad_trace", workdir);
    assert_int_equal(run_cli(0), 2);                            /* no trace */
    assert_int_equal(run_cli(2, "--frobnicate", set), 2);       /* unknown option */
    assert_int_equal(run_cli(3, "--algo", "magic", set), 2);    /* unknown controller */
    assert_int_equal(run_cli(3, "--ladder", "256,64", set), 2); /* not ascending */
    assert_int_equal(run_cli(3, "--segment", "-4", set), 2);
    assert_int_equal(run_cli(3, "--scale", "zero", set), 2);
    assert_int_equal(run_cli(3, "--qoe", "cubic", set), 2);
    assert_int_equal(run_cli(3, "--mpc-ties", "middle", set), 2);
    assert_int_equal(run_cli(3, "--duration", "4", set), 2); /* one segment cannot be scored */
    assert_int_equal(run_cli(1, "--segment"), 2);            /* missing value */
    assert_int_equal(run_cli(1, empty), 1);                  /* empty folder */
    assert_int_equal(run_cli(1, "no-such-trace"), 1);        /* unreadable */
    assert_int_equal(run_cli(1, bad), 1);                    /* no usable line */
}

static void test_command_line_log_has_one_line_per_segment(void **state)
{
    (void)state;
    char set[128];
    char log[128];
    snprintf(set, sizeof set, "%s/set", workdir);
    snprintf(log, sizeof log, "%s/log.json", workdir);
    /* Two traces x two controllers x one score x (16 / 4 = 4) segments = 16 lines. */
    assert_int_equal(run_cli(10, "--algo", "bb,kithara", "--duration=16", "--qoe", "lin", "--log",
                             log, "--scale", "0.5", set),
                     0);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[512];
    int lines = 0;
    int first_ok = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (lines == 0) {
            first_ok = strstr(line, "\"algo\":\"bb\"") != NULL &&
                       strstr(line, "\"trace\":\"a_trace\"") != NULL &&
                       strstr(line, "\"segment\":0,") != NULL &&
                       strstr(line, "\"bytes\":32000,") != NULL;
        }
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 16);
    assert_true(first_ok);
}

/* Counts the log's lines for segment 1 and how many of those are on rung `level`. */
static void count_segment_one(const char *log, size_t level, int *lines, int *on_level)
{
    char want[32];
    snprintf(want, sizeof want, "\"level\":%zu,", level);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[512];
    *lines = 0;
    *on_level = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, "\"segment\":1,") != NULL) {
            (*lines)++;
            *on_level += strstr(line, want) != NULL;
        }
    }
    fclose(f);
}

static void test_command_line_mpc_ties_reach_robustmpc(void **state)
{
    (void)state;
    char set[128];
    char log[128];
    snprintf(set, sizeof set, "%s/set", workdir);
    snprintf(log, sizeof log, "%s/log.json", workdir);
    /* Two segments of 4 s at half the traces' rates (1 and 0.5 Mbit/s). Before segment 1 the
     * buffer holds 4 s, one segment is left (horizon 1) and RobustMPC predicts the rate of
     * segment 0, at least 432 kbit/s: every rung downloads within the buffer, and from rung 0
     * all three score 0.25 in QoE_lin (0.25; 0.5 - 0.25; 1 - 0.75). The last tied plan is the
     * top rung, the first the lowest — on both traces. */
    int lines = 0;
    int on_level = 0;
    assert_int_equal(run_cli(11, "--algo", "robustmpc", "--duration", "8", "--qoe", "lin",
                             "--scale", "0.5", "--log", log, set),
                     0);
    count_segment_one(log, 2, &lines, &on_level); /* the default is last */
    assert_int_equal(lines, 2);
    assert_int_equal(on_level, 2);
    assert_int_equal(run_cli(13, "--algo", "robustmpc", "--duration", "8", "--qoe", "lin",
                             "--scale", "0.5", "--mpc-ties", "first", "--log", log, set),
                     0);
    count_segment_one(log, 0, &lines, &on_level);
    assert_int_equal(lines, 2);
    assert_int_equal(on_level, 2);
    assert_int_equal(run_cli(12, "--algo", "robustmpc", "--duration", "8", "--qoe", "lin",
                             "--scale", "0.5", "--mpc-ties=last", "--log", log, set),
                     0);
    count_segment_one(log, 2, &lines, &on_level);
    assert_int_equal(lines, 2);
    assert_int_equal(on_level, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_skips_blank_and_bad_lines),
        cmocka_unit_test(test_trace_skips_times_that_do_not_increase),
        cmocka_unit_test(test_trace_without_usable_lines_is_an_error),
        cmocka_unit_test(test_missing_trace_file_is_an_error),
        cmocka_unit_test(test_network_follows_piecewise_rates_and_adds_round_trip),
        cmocka_unit_test(test_network_scale_multiplies_rates),
        cmocka_unit_test(test_buffer_model_rebuffers_by_hand),
        cmocka_unit_test(test_full_buffer_idles_the_link),
        cmocka_unit_test(test_rung_outside_the_ladder_is_reported),
        cmocka_unit_test(test_segment_count_and_size),
        cmocka_unit_test(test_qoe_by_hand),
        cmocka_unit_test(test_folder_expands_to_its_files_sorted_by_name),
        cmocka_unit_test(test_command_line_errors_exit_non_zero),
        cmocka_unit_test(test_command_line_log_has_one_line_per_segment),
        cmocka_unit_test(test_command_line_mpc_ties_reach_robustmpc),
    };
    return cmocka_run_group_tests(tests, setup_workdir, teardown_workdir);
}
