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
 *   - at scale 1.0: no rebuffering after start-up, and on the top rung.
 *
 * usage: abr_grid [TRACES_FOLDER] [--subset all|train|test]
 * TRACES_FOLDER holds hsdpa/ and fcc/ (default: the traces folder beside the source tree).
 * --subset train keeps the files at even positions of each folder (sorted by name), test the
 * odd ones: tune on one half, check on the other. Exit status: 0 when every target passes, 1
 * when one fails, 2 on a usage or load error.
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
#define ALGOS 5
#define QOES  2
#define CELLS 8

static const char *const set_names[SETS] = {"hsdpa", "fcc"};
static const double segment_lengths[] = {4.0, 6.0};
static const double scales[] = {0.15, 0.25};
static const double ladder[] = {64.0, 128.0, 256.0};

typedef struct trace_set {
    sim_trace *traces;
    size_t count;
} trace_set;

static int load_set(const char *root, const char *name, int subset, trace_set *out)
{
    char path[4096];
    char err[512];
    snprintf(path, sizeof path, "%s/%s", root, name);
    sim_path_list list = {0};
    if (sim_path_list_add(&list, path, err, sizeof err) != 0) {
        fprintf(stderr, "abr_grid: %s\n", err);
        return -1;
    }
    out->traces = calloc(list.count, sizeof *out->traces);
    out->count = 0;
    if (out->traces == NULL) {
        sim_path_list_free(&list);
        fprintf(stderr, "abr_grid: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < list.count; i++) {
        if (subset != 0 && (int)(i % 2) != subset - 1) {
            continue;
        }
        if (sim_trace_load(list.paths[i], &out->traces[out->count], err, sizeof err) != 0) {
            fprintf(stderr, "abr_grid: %s\n", err);
            sim_path_list_free(&list);
            return -1;
        }
        out->count++;
    }
    sim_path_list_free(&list);
    return 0;
}

static void free_set(trace_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        sim_trace_free(&set->traces[i]);
    }
    free(set->traces);
}

static int run(const trace_set *set, double segment_s, double scale, sim_qoe_kind qoe,
               const sim_algo *algo, sim_aggregate *out)
{
    char err[512];
    sim_setup setup = {
        .ladder_kbps = ladder,
        .levels = 3,
        .segment_s = segment_s,
        .segments = (size_t)floor(192.0 / segment_s + 1e-9),
        .qoe = qoe,
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

int main(int argc, char **argv)
{
    const char *root = KTH_SOURCE_DIR "/../shared/traces";
    int subset = 0;
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
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: abr_grid [TRACES_FOLDER] [--subset all|train|test]\n");
            return 2;
        } else {
            root = argv[i];
        }
    }
    trace_set sets[SETS] = {{0}};
    for (size_t s = 0; s < SETS; s++) {
        if (load_set(root, set_names[s], subset, &sets[s]) != 0) {
            for (size_t k = 0; k < s; k++) {
                free_set(&sets[k]);
            }
            return 2;
        }
    }
    const sim_algo *algos[ALGOS] = {&sim_algo_kithara, &sim_algo_bb, &sim_algo_rb, &sim_algo_bola,
                                    &sim_algo_robustmpc};
    enum { K = 0, BB = 1, MPC = 4 };

    printf("ABR grid: ladder 64,128,256 kbit/s, 192 s sessions, traces %s (subset %s: %zu "
           "hsdpa, %zu fcc)\n\n",
           root,
           subset == 0   ? "all"
           : subset == 1 ? "train"
                         : "test",
           sets[0].count, sets[1].count);
    printf("QoE: mean per session. /best, /mpc: kithara's QoE over the best baseline's and over\n"
           "RobustMPC's. rebufK, rebufM: mean stall seconds per session (start-up excluded) of\n"
           "kithara and RobustMPC. swK/m, swBB/m: switches per minute of kithara and BB.\n\n");
    printf("%-5s %2s %5s %3s | %8s %8s %8s %8s %9s | %7s %7s | %6s %6s | %6s %6s\n", "set", "L",
           "scale", "qoe", "kithara", "bb", "rb", "bola", "robustmpc", "/best", "/mpc", "rebufK",
           "rebufM", "swK/m", "swBB/m");

    int all_cells_beat_mpc = 1;
    int mpc_positive = 1; /* ratios only mean something when the reference scores above 0 */
    int rebuffer_ok = 1;
    int switches_ok = 1;
    double ratio_sum[QOES] = {0};
    size_t cells = 0;
    int rc = 0;
    for (size_t s = 0; s < SETS && rc == 0; s++) {
        for (size_t li = 0; li < 2 && rc == 0; li++) {
            for (size_t si = 0; si < 2 && rc == 0; si++) {
                for (int q = 0; q < QOES && rc == 0; q++) {
                    sim_aggregate agg[ALGOS];
                    for (size_t a = 0; a < ALGOS && rc == 0; a++) {
                        rc = run(&sets[s], segment_lengths[li], scales[si], (sim_qoe_kind)q,
                                 algos[a], &agg[a]);
                    }
                    if (rc != 0) {
                        break;
                    }
                    double best = agg[1].qoe;
                    for (size_t a = 2; a < ALGOS; a++) {
                        best = agg[a].qoe > best ? agg[a].qoe : best;
                    }
                    mpc_positive &= agg[MPC].qoe > 0.0 && best > 0.0;
                    double to_best = agg[K].qoe / best;
                    double to_mpc = agg[K].qoe / agg[MPC].qoe;
                    ratio_sum[q] += to_mpc;
                    all_cells_beat_mpc &= agg[K].qoe >= agg[MPC].qoe;
                    rebuffer_ok &= agg[K].rebuffer_s <= agg[MPC].rebuffer_s * 1.10;
                    switches_ok &= agg[K].switches_per_min < agg[BB].switches_per_min;
                    printf("%-5s %2g %5.2f %3s | %8.4f %8.4f %8.4f %8.4f %9.4f | %7.4f %7.4f | "
                           "%6.3f %6.3f | %6.3f %6.3f\n",
                           set_names[s], segment_lengths[li], scales[si],
                           sim_qoe_name((sim_qoe_kind)q), agg[K].qoe, agg[1].qoe, agg[2].qoe,
                           agg[3].qoe, agg[MPC].qoe, to_best, to_mpc, agg[K].rebuffer_s,
                           agg[MPC].rebuffer_s, agg[K].switches_per_min, agg[BB].switches_per_min);
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
    printf("\nscale 1.0, kithara (QoE_log):\n");
    for (size_t s = 0; s < SETS && rc == 0; s++) {
        for (size_t li = 0; li < 2 && rc == 0; li++) {
            sim_aggregate agg;
            rc = run(&sets[s], segment_lengths[li], 1.0, SIM_QOE_LOG, &sim_algo_kithara, &agg);
            if (rc == 0) {
                printf("  %-5s L=%g: %.2f %% of segments after the first on the top rung, "
                       "%.3f s rebuffering per session\n",
                       set_names[s], segment_lengths[li], 100.0 * agg.top_share, agg.rebuffer_s);
                sane &= agg.rebuffer_s == 0.0 && agg.top_share >= 0.97;
            }
        }
    }
    printf("\n");
    double mean_lin = ratio_sum[SIM_QOE_LIN] / (double)cells;
    double mean_log = ratio_sum[SIM_QOE_LOG] / (double)cells;
    printf("grid mean of kithara / RobustMPC: QoE_lin %.4f, QoE_log %.4f, both %.4f\n", mean_lin,
           mean_log, (mean_lin + mean_log) / 2.0);
    int averages_ok = mpc_positive && mean_lin >= 1.03 && mean_log >= 1.03;
    if (!mpc_positive) {
        printf(
            "note: a reference QoE is not positive in some cell, so ratios are not meaningful\n");
    }
    printf("%s  QoE >= RobustMPC in every cell (lin and log)\n", verdict(all_cells_beat_mpc));
    printf("%s  grid mean ratio to RobustMPC >= 1.03 (lin and log)\n", verdict(averages_ok));
    printf("%s  rebuffer seconds <= RobustMPC + 10 %% in every cell\n", verdict(rebuffer_ok));
    printf("%s  fewer switches per minute than BB in every cell\n", verdict(switches_ok));
    printf("%s  scale 1.0: no rebuffering after start-up, top rung >= 97 %% of segments\n",
           verdict(sane));
    for (size_t s = 0; s < SETS; s++) {
        free_set(&sets[s]);
    }
    int pass = all_cells_beat_mpc && averages_ok && rebuffer_ok && switches_ok && sane;
    return rc != 0 ? 2 : pass ? 0 : 1;
}
