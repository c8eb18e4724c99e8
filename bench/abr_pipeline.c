/*
 * bench/abr_pipeline.c — the real pipeline over the trace grid, in virtual time, against the
 * simulator.
 *
 * Every session of the grid of ../shared/traces/README.md (both trace sets x segment L in
 * {4, 6} s x scale in {0.15, 0.25}, ladder 64/128/256 kbit/s, 192 s) is played through the
 * whole library (tests/vplay: the test server behind a link shaped to the trace with 80 ms per
 * request, a downloader on a virtual clock, an HLS stream with ABR, a reader paced at the media
 * rate that reports its playback position), then scored as the simulator scores a session. Per
 * cell it prints the pipeline's mean QoE (lin and log), the simulator's kithara and RobustMPC
 * on the same traces and the ratios to them, then the start-up delay (mean, and its ratio to
 * the floor: the playlists and one lowest-rung segment fetched one after another on the trace's
 * first seconds), stall seconds, switches and the share of fetched bytes thrown away. Scale 1.0
 * is run as a sanity check (no stall after start-up, on the top rung).
 *
 * Targets (PASS/FAIL; exit status 1 when one fails, 2 on a usage or load error):
 *   - QoE >= 0.97 x the simulator's kithara in every cell, both scores (for a negative
 *     reference: no more than 3 % of its size below it);
 *   - the mean over the cells >= RobustMPC's simulated mean, both scores;
 *   - start-up <= 1.2 x the floor in every session;
 *   - bytes thrown away <= 2 % of the bytes played, in every cell.
 *
 * usage: abr_pipeline [TRACES_FOLDER] [--subset all|train|test] [--jobs N] [--limit K]
 *                     [--log TRACE_NAME] [--each] [--buffer-target S]
 * --jobs runs N sessions at once (default 2); --limit keeps the first K traces of each set;
 * --log writes the event log of every session of that trace to standard error; --each writes
 * a line of figures per session there; --buffer-target plays with that buffer target (seconds)
 * instead of the stream's default.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "algo.h"
#include "qoe.h"
#include "run.h"
#include "session.h"
#include "trace.h"
#include "vplay.h"

#ifndef KTH_SOURCE_DIR
#define KTH_SOURCE_DIR "."
#endif

#define SETS   2
#define CELLS  8 /* set x L x scale */
#define SANITY 4 /* set x L at scale 1.0 */

static const char *const set_names[SETS] = {"hsdpa", "fcc"};
static const double lengths[] = {4.0, 6.0};
static const double scales[] = {0.15, 0.25};
static const double ladder[] = {64.0, 128.0, 256.0};

/* One session's figures. */
typedef struct session {
    double qoe[2]; /* lin, log */
    double startup_s, floor_s, rebuffer_s, switches, top_share;
    double bytes_read, bytes_abandoned, real_s, session_s;
    int failed;
} session;

/* A cell: the traces of one set at one L and scale. */
typedef struct cell {
    size_t set;
    double segment_s, scale;
    session *runs;
    size_t count;
} cell;

typedef struct work {
    sim_trace_set sets[SETS];
    cell cells[CELLS + SANITY];
    size_t cell_count;
    atomic_size_t next; /* the next (cell, trace) to run, counted across the cells */
    size_t total;
    const char *log_trace;
    bool each;                  /* print every session's figures */
    const kth_hls_options *hls; /* NULL: the stream's defaults */
} work;

/* One line per session, beside the simulator's kithara on the same trace. */
static void print_session(const cell *c, const sim_trace *t, const double qoe[2],
                          const kvp_result *r)
{
    sim_setup setup = {.ladder_kbps = ladder,
                       .levels = 3,
                       .segment_s = c->segment_s,
                       .segments = r->segments,
                       .qoe = SIM_QOE_LIN};
    sim_session_summary sim[2] = {{0}};
    char err[128];
    for (int q = 0; q < 2; q++) {
        setup.qoe = (sim_qoe_kind)q;
        sim_session_run(&setup, c->scale, t, &sim_algo_kithara, NULL, &sim[q], err, sizeof err);
    }
    fprintf(stderr,
            "session %-5s %-28s L=%.0f x%.2f: lin %.3f (sim %.3f) log %.3f (sim %.3f) start %.2f "
            "(floor %.2f) stall %.2f (sim %.2f) switches %zu (sim %zu) %.0f kbit/s (sim %.0f) "
            "thrown %llu\n",
            set_names[c->set], t->name, c->segment_s, c->scale, qoe[0], sim[0].qoe, qoe[1],
            sim[1].qoe, r->startup_s, r->startup_floor_s, r->rebuffer_s, sim[0].rebuffer_s,
            r->switches, sim[0].switches, r->mean_kbps, sim[0].mean_kbps,
            (unsigned long long)r->stats.bytes_abandoned);
}

static void run_one(work *w, cell *c, size_t i)
{
    const sim_trace *t = &w->sets[c->set].traces[i];
    size_t segments = (size_t)floor(192.0 / c->segment_s + 1e-9);
    kvp_config cfg = {.time_s = t->time_s,
                      .mbps = t->mbps,
                      .trace_rows = t->count,
                      .scale = c->scale,
                      .latency_ms = 80,
                      .ladder_kbps = ladder,
                      .levels = 3,
                      .segment_s = c->segment_s,
                      .segments = segments,
                      .report_played = true,
                      .hls = w->hls,
                      .log = w->log_trace && strcmp(w->log_trace, t->name) == 0 ? stderr : NULL};
    kvp_result r;
    session *s = &c->runs[i];
    if (kvp_run(&cfg, &r) != 0) {
        fprintf(stderr, "abr_pipeline: %s L=%.0f x%.2f: %s\n", t->name, c->segment_s, c->scale,
                r.error);
        s->failed = 1;
        kvp_result_free(&r);
        return;
    }
    double qoe[2];
    for (int q = 0; q < 2; q++)
        qoe[q] = sim_qoe_score((sim_qoe_kind)q, ladder, 3, r.level, r.rebuffer, r.segments);
    size_t top = 0;
    for (size_t n = 1; n < r.segments; n++)
        top += r.level[n] == 2;
    *s = (session){.qoe = {qoe[0], qoe[1]},
                   .startup_s = r.startup_s,
                   .floor_s = r.startup_floor_s,
                   .rebuffer_s = r.rebuffer_s,
                   .switches = (double)r.switches,
                   .top_share = (double)top / (double)(r.segments - 1),
                   .bytes_read = (double)r.bytes_read,
                   .bytes_abandoned = (double)r.stats.bytes_abandoned,
                   .real_s = r.real_s,
                   .session_s = r.session_s};
    if (w->each)
        print_session(c, t, qoe, &r);
    kvp_result_free(&r);
}

static void *worker(void *arg)
{
    work *w = arg;
    for (;;) {
        size_t k = atomic_fetch_add(&w->next, 1);
        if (k >= w->total)
            return NULL;
        for (size_t c = 0; c < w->cell_count; c++) {
            if (k < w->cells[c].count) {
                run_one(w, &w->cells[c], k);
                break;
            }
            k -= w->cells[c].count;
        }
    }
}

/* The simulator's mean QoE of `algo` on the cell's traces. */
static double simulated(const work *w, const cell *c, const sim_algo *algo, sim_qoe_kind q)
{
    sim_setup setup = {.ladder_kbps = ladder,
                       .levels = 3,
                       .segment_s = c->segment_s,
                       .segments = (size_t)floor(192.0 / c->segment_s + 1e-9),
                       .qoe = q,
                       .mpc_ties = SIM_MPC_TIES_LAST};
    sim_aggregate agg;
    char err[256];
    const sim_trace_set *set = &w->sets[c->set];
    if (sim_run_traces(&setup, c->scale, set->traces, c->count, algo, NULL, &agg, err,
                       sizeof err) != 0) {
        fprintf(stderr, "abr_pipeline: simulator: %s\n", err);
        return NAN;
    }
    return agg.qoe;
}

/* Means of a cell's sessions. */
typedef struct summary {
    double qoe[2], startup_s, startup_ratio, startup_ratio_max, rebuffer_s, switches, top_share;
    double wasted, real_s, session_s;
    int failed;
} summary;

static summary summarise(const cell *c)
{
    summary m = {0};
    double read = 0, abandoned = 0;
    for (size_t i = 0; i < c->count; i++) {
        const session *s = &c->runs[i];
        m.failed += s->failed;
        double ratio = s->floor_s > 0 ? s->startup_s / s->floor_s : 0;
        for (int q = 0; q < 2; q++)
            m.qoe[q] += s->qoe[q] / (double)c->count;
        m.startup_s += s->startup_s / (double)c->count;
        m.startup_ratio += ratio / (double)c->count;
        m.startup_ratio_max = ratio > m.startup_ratio_max ? ratio : m.startup_ratio_max;
        m.rebuffer_s += s->rebuffer_s / (double)c->count;
        m.switches += s->switches / (double)c->count;
        m.top_share += s->top_share / (double)c->count;
        m.real_s += s->real_s;
        m.session_s += s->session_s;
        read += s->bytes_read;
        abandoned += s->bytes_abandoned;
    }
    m.wasted = read > 0 ? abandoned / read : 0;
    return m;
}

static const char *verdict(int ok)
{
    return ok ? "PASS" : "FAIL";
}

static int close_enough(double got, double ref)
{
    return got >= ref - 0.03 * fabs(ref);
}

static int report(work *w)
{
    int ok_sim = 1, ok_start = 1, ok_waste = 1, failed = 0;
    double mean_pipe[2] = {0}, mean_mpc[2] = {0}, real = 0, played = 0;
    printf("%-5s %2s %5s | %-38s | %-38s | %-22s %7s %6s %6s\n", "set", "L", "scale",
           "QoE_lin: pipeline sim MPC  /sim /MPC", "QoE_log: pipeline sim MPC  /sim /MPC",
           "start s  /floor (max)", "stall s", "switch", "waste%");
    for (size_t k = 0; k < CELLS; k++) {
        cell *c = &w->cells[k];
        summary m = summarise(c);
        double sim[2], mpc[2];
        printf("%-5s %2.0f %5.2f |", set_names[c->set], c->segment_s, c->scale);
        for (int q = 0; q < 2; q++) {
            sim[q] = simulated(w, c, &sim_algo_kithara, (sim_qoe_kind)q);
            mpc[q] = simulated(w, c, &sim_algo_robustmpc, (sim_qoe_kind)q);
            ok_sim &= close_enough(m.qoe[q], sim[q]);
            mean_pipe[q] += m.qoe[q] / CELLS;
            mean_mpc[q] += mpc[q] / CELLS;
            printf(" %8.3f %6.3f %6.3f %5.2f %5.2f |", m.qoe[q], sim[q], mpc[q], m.qoe[q] / sim[q],
                   m.qoe[q] / mpc[q]);
        }
        printf(" %6.2f %6.2f (%5.2f) %7.2f %6.2f %6.2f\n", m.startup_s, m.startup_ratio,
               m.startup_ratio_max, m.rebuffer_s, m.switches, 100 * m.wasted);
        ok_start &= m.startup_ratio_max <= 1.2;
        ok_waste &= m.wasted <= 0.02;
        failed += m.failed;
        real += m.real_s;
        played += m.session_s;
    }
    int ok_mean = mean_pipe[0] >= mean_mpc[0] && mean_pipe[1] >= mean_mpc[1];
    printf("mean over the cells: pipeline %.3f / %.3f, RobustMPC (simulated) %.3f / %.3f "
           "(lin / log)\n",
           mean_pipe[0], mean_pipe[1], mean_mpc[0], mean_mpc[1]);
    int sane = 1;
    for (size_t k = CELLS; k < w->cell_count; k++) {
        cell *c = &w->cells[k];
        summary m = summarise(c);
        printf("sanity %-5s L=%.0f x1.00: stall %.2f s per session, top rung %.1f %% of "
               "segments, start %.2f s (%.2f of the floor)\n",
               set_names[c->set], c->segment_s, m.rebuffer_s, 100 * m.top_share, m.startup_s,
               m.startup_ratio);
        sane &= m.rebuffer_s == 0;
        failed += m.failed;
        real += m.real_s;
        played += m.session_s;
    }
    printf("%.0f s of sessions played in %.1f s of session threads (%.0fx real time)\n", played,
           real, real > 0 ? played / real : 0);
    printf("%s  QoE >= 0.97 x the simulator's kithara in every cell\n", verdict(ok_sim));
    printf("%s  mean QoE >= RobustMPC's simulated mean\n", verdict(ok_mean));
    printf("%s  start-up <= 1.2 x the floor in every session\n", verdict(ok_start));
    printf("%s  bytes thrown away <= 2 %% of the bytes played in every cell\n", verdict(ok_waste));
    printf("%s  scale 1.0: no stall after start-up\n", verdict(sane));
    printf("%s  every session played to its end (%d failed)\n", verdict(failed == 0), failed);
    return ok_sim && ok_mean && ok_start && ok_waste && sane && failed == 0 ? 0 : 1;
}

static int parse_args(int argc, char **argv, const char **root, int *subset, int *jobs,
                      size_t *limit, const char **log, bool *each, double *buffer_s)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--subset") == 0 && v) {
            *subset = strcmp(v, "train") == 0 ? 1 : strcmp(v, "test") == 0 ? 2 : 0;
            if (*subset == 0 && strcmp(v, "all") != 0)
                return -1;
            i++;
        } else if (strcmp(a, "--jobs") == 0 && v && atoi(v) > 0) {
            *jobs = atoi(v);
            i++;
        } else if (strcmp(a, "--limit") == 0 && v && atoi(v) > 0) {
            *limit = (size_t)atoi(v);
            i++;
        } else if (strcmp(a, "--log") == 0 && v) {
            *log = v;
            i++;
        } else if (strcmp(a, "--each") == 0) {
            *each = true;
        } else if (strcmp(a, "--buffer-target") == 0 && v && atof(v) > 0) {
            *buffer_s = atof(v);
            i++;
        } else if (a[0] == '-') {
            return -1;
        } else {
            *root = a;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *root = KTH_SOURCE_DIR "/../shared/traces";
    int subset = 0, jobs = 2;
    size_t limit = SIZE_MAX;
    work w = {.log_trace = NULL};
    double buffer_s = 0;
    if (parse_args(argc, argv, &root, &subset, &jobs, &limit, &w.log_trace, &w.each, &buffer_s) !=
        0) {
        fprintf(stderr, "usage: abr_pipeline [TRACES_FOLDER] [--subset all|train|test] "
                        "[--jobs N] [--limit K] [--log TRACE_NAME] [--each] "
                        "[--buffer-target S]\n");
        return 2;
    }
    for (size_t s = 0; s < SETS; s++) {
        char err[512];
        if (sim_trace_set_load(root, set_names[s], subset, &w.sets[s], err, sizeof err) != 0) {
            fprintf(stderr, "abr_pipeline: %s\n", err);
            return 2;
        }
    }
    for (size_t s = 0; s < SETS; s++)
        for (size_t l = 0; l < 2; l++)
            for (size_t k = 0; k < 3; k++) {
                cell *c = &w.cells[k < 2 ? s * 4 + l * 2 + k : CELLS + s * 2 + l];
                size_t n = w.sets[s].count < limit ? w.sets[s].count : limit;
                *c = (cell){.set = s,
                            .segment_s = lengths[l],
                            .scale = k < 2 ? scales[k] : 1.0,
                            .runs = calloc(n, sizeof(session)),
                            .count = n};
                if (!c->runs) {
                    fprintf(stderr, "abr_pipeline: out of memory\n");
                    return 2;
                }
                w.total += n;
            }
    w.cell_count = CELLS + SANITY;
    atomic_init(&w.next, 0);
    kth_hls_options hls;
    kth_hls_options_init(&hls);
    if (buffer_s > 0) {
        hls.buffer_target_s = buffer_s;
        w.hls = &hls;
    }
    pthread_t threads[64];
    int started = 0;
    for (; started < jobs && started < 64; started++)
        if (pthread_create(&threads[started], NULL, worker, &w) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    int rc = started > 0 ? report(&w) : 2;
    for (size_t k = 0; k < w.cell_count; k++)
        free(w.cells[k].runs);
    for (size_t s = 0; s < SETS; s++)
        sim_trace_set_free(&w.sets[s]);
    return rc;
}
