/*
 * bench/abr_grid.c — kithara's ABR controller against the four baselines on the whole grid.
 *
 * Grid of the simulation contract: both trace sets (hsdpa, fcc) x segment L in {4, 6} s x scale
 * in {0.15, 0.25}, ladder 64/128/256 kbit/s, 192 s sessions, scored with QoE_lin and QoE_log.
 * For each cell it prints every controller's mean QoE, kithara's ratio to the best baseline and
 * to RobustMPC, the rebuffer seconds of kithara and RobustMPC, the switches per minute of kithara
 * and BB; then the grid averages, the scale 1.0 sanity check, and PASS/FAIL per target:
 *   - QoE >= RobustMPC in every cell, both scores;
 *   - mean over the cells of QoE / RobustMPC >= 1.03, for each score;
 *   - rebuffer seconds <= RobustMPC's + 10 % in every cell;
 *   - fewer switches per minute than BB in every cell;
 *   - at scale 1.0 (both scores): no rebuffering after start-up, and on the top rung.
 *
 * RobustMPC runs under both readings of its tie rule (sim_mpc_ties in algo.h). The table is
 * against one of them (--mpc-ties, default last, the reference code's rule); a summary line gives
 * the grid means against the other, and every target is judged against both.
 *
 * usage: abr_grid [TRACES_FOLDER] [--subset all|train|test] [--mpc-ties last|first]
 * TRACES_FOLDER holds hsdpa/ and fcc/ (default: the traces folder beside the source tree).
 * --subset train keeps the files at even positions of each folder (sorted by name), test the
 * odd ones: tune on one half, check on the other. Exit status: 0 when every target passes
 * against the table's tie rule, 1 when one fails there, 2 on a usage or load error. (A target
 * failing only against the other rule is reported as FAIL but does not change the status.)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo.h"
#include "run.h"
#include "trace.h"

#ifndef KTH_SOURCE_DIR
#define KTH_SOURCE_DIR "."
#endif

#define SETS  2
#define QOES  2
#define CELLS 8

static const char *const set_names[SETS] = {"hsdpa", "fcc"};
static const double segment_lengths[] = {4.0, 6.0};
static const double scales[] = {0.15, 0.25};
static const double ladder[] = {64.0, 128.0, 256.0};

typedef sim_trace_set trace_set;

static int load_set(const char *root, const char *name, int subset, trace_set *out)
{
    char err[512];
    if (sim_trace_set_load(root, name, subset, out, err, sizeof err) != 0) {
        fprintf(stderr, "abr_grid: %s\n", err);
        return -1;
    }
    return 0;
}

static void free_set(trace_set *set)
{
    sim_trace_set_free(set);
}

static int run(const trace_set *set, double segment_s, double scale, sim_qoe_kind qoe,
               sim_mpc_ties ties, const sim_algo *algo, sim_aggregate *out)
{
    char err[512];
    sim_setup setup = {
        .ladder_kbps = ladder,
        .levels = 3,
        .segment_s = segment_s,
        .segments = (size_t)floor(192.0 / segment_s + 1e-9),
        .qoe = qoe,
        .mpc_ties = ties,
    };
    if (sim_run_traces(&setup, scale, set->traces, set->count, algo, NULL, out, err, sizeof err) !=
        0) {
        fprintf(stderr, "abr_grid: %s\n", err);
        return -1;
    }
    return 0;
}

static const char *verdict(int ok)
{
    return ok ? "PASS" : "FAIL";
}

/* Controllers run in every cell: kithara, the three other baselines, and RobustMPC under the
 * table's tie rule and under the other one. */
enum { K = 0, BB = 1, RB = 2, BOLA = 3, MPC = 4, MPC_OTHER = 5, RUNS = 6 };

/* Each target, judged against one RobustMPC variant. */
typedef struct targets {
    int beats_mpc;    /* QoE >= RobustMPC in every cell, both scores */
    int mpc_positive; /* ratios only mean something when the reference scores above 0 */
    double mean_ratio[QOES];
    int means_ok;
    int rebuffer_ok;
    int switches_ok;
    int cells_below; /* (cell, score) pairs where kithara scores below RobustMPC */
} targets;

static void judge(sim_aggregate results[CELLS][QOES][RUNS], size_t mpc, targets *t)
{
    *t = (targets){.beats_mpc = 1, .mpc_positive = 1, .rebuffer_ok = 1, .switches_ok = 1};
    for (size_t c = 0; c < CELLS; c++) {
        for (int q = 0; q < QOES; q++) {
            const sim_aggregate *a = results[c][q];
            t->mpc_positive &= a[mpc].qoe > 0.0;
            t->mean_ratio[q] += a[K].qoe / a[mpc].qoe / (double)CELLS;
            if (!(a[K].qoe >= a[mpc].qoe)) {
                t->beats_mpc = 0;
                t->cells_below++;
            }
            t->rebuffer_ok &= a[K].rebuffer_s <= a[mpc].rebuffer_s * 1.10;
            t->switches_ok &= a[K].switches_per_min < a[BB].switches_per_min;
        }
    }
    t->means_ok =
        t->mpc_positive && t->mean_ratio[SIM_QOE_LIN] >= 1.03 && t->mean_ratio[SIM_QOE_LOG] >= 1.03;
}

int main(int argc, char **argv)
{
    const char *root = KTH_SOURCE_DIR "/../shared/traces";
    int subset = 0;
    sim_mpc_ties ties = SIM_MPC_TIES_LAST;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--subset") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "all") == 0) {
                subset = 0;
            } else if (strcmp(v, "train") == 0) {
                subset = 1;
            } else if (strcmp(v, "test") == 0) {
                subset = 2;
            } else {
                fprintf(stderr, "abr_grid: --subset takes all, train or test\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--mpc-ties") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "last") == 0) {
                ties = SIM_MPC_TIES_LAST;
            } else if (strcmp(v, "first") == 0) {
                ties = SIM_MPC_TIES_FIRST;
            } else {
                fprintf(stderr, "abr_grid: --mpc-ties takes last or first\n");
                return 2;
            }
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: abr_grid [TRACES_FOLDER] [--subset all|train|test] "
                            "[--mpc-ties last|first]\n");
            return 2;
        } else {
            root = argv[i];
        }
    }
    sim_mpc_ties other = ties == SIM_MPC_TIES_LAST ? SIM_MPC_TIES_FIRST : SIM_MPC_TIES_LAST;
    trace_set sets[SETS] = {{0}};
    for (size_t s = 0; s < SETS; s++) {
        if (load_set(root, set_names[s], subset, &sets[s]) != 0) {
            for (size_t k = 0; k < s; k++) {
                free_set(&sets[k]);
            }
            return 2;
        }
    }
    const sim_algo *algos[RUNS] = {&sim_algo_kithara, &sim_algo_bb,        &sim_algo_rb,
                                   &sim_algo_bola,    &sim_algo_robustmpc, &sim_algo_robustmpc};
    const sim_mpc_ties run_ties[RUNS] = {ties, ties, ties, ties, ties, other};

    printf("ABR grid: ladder 64,128,256 kbit/s, 192 s sessions, traces %s (subset %s: %zu "
           "hsdpa, %zu fcc), RobustMPC ties: %s\n\n",
           root,
           subset == 0   ? "all"
           : subset == 1 ? "train"
                         : "test",
           sets[0].count, sets[1].count, sim_mpc_ties_name(ties));
    printf("QoE: mean per session. /best, /mpc: kithara's QoE over the best baseline's and over\n"
           "RobustMPC's. rebufK, rebufM: mean stall seconds per session (start-up excluded) of\n"
           "kithara and RobustMPC. swK/m, swBB/m: switches per minute of kithara and BB.\n\n");
    printf("%-5s %2s %5s %3s | %8s %8s %8s %8s %9s | %7s %7s | %6s %6s | %6s %6s\n", "set", "L",
           "scale", "qoe", "kithara", "bb", "rb", "bola", "robustmpc", "/best", "/mpc", "rebufK",
           "rebufM", "swK/m", "swBB/m");

    static sim_aggregate results[CELLS][QOES][RUNS];
    size_t cells = 0;
    int rc = 0;
    for (size_t s = 0; s < SETS && rc == 0; s++) {
        for (size_t li = 0; li < 2 && rc == 0; li++) {
            for (size_t si = 0; si < 2 && rc == 0; si++) {
                for (int q = 0; q < QOES && rc == 0; q++) {
                    sim_aggregate *agg = results[cells][q];
                    for (size_t a = 0; a < RUNS && rc == 0; a++) {
                        rc = run(&sets[s], segment_lengths[li], scales[si], (sim_qoe_kind)q,
                                 run_ties[a], algos[a], &agg[a]);
                    }
                    if (rc != 0) {
                        break;
                    }
                    double best = agg[BB].qoe;
                    for (size_t a = RB; a <= MPC; a++) {
                        best = agg[a].qoe > best ? agg[a].qoe : best;
                    }
                    printf("%-5s %2g %5.2f %3s | %8.4f %8.4f %8.4f %8.4f %9.4f | %7.4f %7.4f | "
                           "%6.3f %6.3f | %6.3f %6.3f\n",
                           set_names[s], segment_lengths[li], scales[si],
                           sim_qoe_name((sim_qoe_kind)q), agg[K].qoe, agg[BB].qoe, agg[RB].qoe,
                           agg[BOLA].qoe, agg[MPC].qoe, agg[K].qoe / best,
                           agg[K].qoe / agg[MPC].qoe, agg[K].rebuffer_s, agg[MPC].rebuffer_s,
                           agg[K].switches_per_min, agg[BB].switches_per_min);
                }
                cells++;
            }
        }
    }
    if (rc != 0) {
        for (size_t s = 0; s < SETS; s++) {
            free_set(&sets[s]);
        }
        return 2;
    }

    /* Sanity: at full scale the networks are far faster than the ladder. */
    int sane = 1;
    printf("\nscale 1.0, kithara:\n");
    for (size_t s = 0; s < SETS && rc == 0; s++) {
        for (size_t li = 0; li < 2 && rc == 0; li++) {
            for (int q = 0; q < QOES && rc == 0; q++) {
                sim_aggregate agg;
                rc = run(&sets[s], segment_lengths[li], 1.0, (sim_qoe_kind)q, ties,
                         &sim_algo_kithara, &agg);
                if (rc == 0) {
                    printf("  %-5s L=%g QoE_%s: %.2f %% of segments after the first on the top "
                           "rung, %.3f s rebuffering per session\n",
                           set_names[s], segment_lengths[li], sim_qoe_name((sim_qoe_kind)q),
                           100.0 * agg.top_share, agg.rebuffer_s);
                    sane &= agg.rebuffer_s == 0.0 && agg.top_share >= 0.97;
                }
            }
        }
    }
    for (size_t s = 0; s < SETS; s++) {
        free_set(&sets[s]);
    }
    if (rc != 0) {
        return 2;
    }

    targets main_t;
    targets other_t;
    judge(results, MPC, &main_t);
    judge(results, MPC_OTHER, &other_t);
    const char *main_name = sim_mpc_ties_name(ties);
    const char *other_name = sim_mpc_ties_name(other);
    printf("\ngrid mean of kithara / RobustMPC (ties %s): QoE_lin %.4f, QoE_log %.4f, both "
           "%.4f\n",
           main_name, main_t.mean_ratio[SIM_QOE_LIN], main_t.mean_ratio[SIM_QOE_LOG],
           (main_t.mean_ratio[SIM_QOE_LIN] + main_t.mean_ratio[SIM_QOE_LOG]) / 2.0);
    printf("grid mean of kithara / RobustMPC (ties %s): QoE_lin %.4f, QoE_log %.4f, both "
           "%.4f; kithara below it in %d of %d cells\n",
           other_name, other_t.mean_ratio[SIM_QOE_LIN], other_t.mean_ratio[SIM_QOE_LOG],
           (other_t.mean_ratio[SIM_QOE_LIN] + other_t.mean_ratio[SIM_QOE_LOG]) / 2.0,
           other_t.cells_below, CELLS * QOES);
    if (!main_t.mpc_positive || !other_t.mpc_positive) {
        printf(
            "note: a reference QoE is not positive in some cell, so ratios are not meaningful\n");
    }
    printf("\ntargets, judged against RobustMPC with each tie rule (the table's first):\n");
    printf("  %-5s %-5s\n", main_name, other_name);
    printf("  %s  %s  QoE >= RobustMPC in every cell (lin and log)\n", verdict(main_t.beats_mpc),
           verdict(other_t.beats_mpc));
    printf("  %s  %s  grid mean ratio to RobustMPC >= 1.03 (lin and log)\n",
           verdict(main_t.means_ok), verdict(other_t.means_ok));
    printf("  %s  %s  rebuffer seconds <= RobustMPC + 10 %% in every cell\n",
           verdict(main_t.rebuffer_ok), verdict(other_t.rebuffer_ok));
    printf("  %s  %s  fewer switches per minute than BB in every cell\n",
           verdict(main_t.switches_ok), verdict(other_t.switches_ok));
    printf("  %s  %s  scale 1.0: no rebuffering after start-up, top rung >= 97 %% of segments\n",
           verdict(sane), verdict(sane));
    int pass =
        main_t.beats_mpc && main_t.means_ok && main_t.rebuffer_ok && main_t.switches_ok && sane;
    return pass ? 0 : 1;
}
