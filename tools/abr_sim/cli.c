/*
 * tools/abr_sim/cli.c — option parsing and the result table of `kithara abr-sim`.
 *
 * Every trace named on the command line (a folder stands for the files in it, sorted by name)
 * is loaded before anything runs, so a bad argument fails at once with one line on stderr.
 */
#include "abr_sim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo.h"
#include "run.h"
#include "trace.h"

typedef struct cli_options {
    const sim_algo *algos[16];
    size_t algo_count;
    double ladder_kbps[SIM_MAX_LEVELS];
    size_t levels;
    double segment_s;
    double duration_s;
    double scale;
    int qoe_lin;
    int qoe_log;
    sim_mpc_ties mpc_ties;
    const char *log_path;
    sim_path_list paths;
} cli_options;

static void usage(FILE *f)
{
    fputs("usage: kithara abr-sim [options] TRACE_FILE_OR_FOLDER...\n"
          "  --algo NAME[,NAME]  kithara, bb, rb, bola, robustmpc (repeatable; default all)\n"
          "  --ladder K1,K2,...  ascending bitrates in kbit/s (default 64,128,256)\n"
          "  --segment SECONDS   segment duration L (default 4)\n"
          "  --duration SECONDS  session length; N = floor(duration / L) (default 192)\n"
          "  --scale FACTOR      multiplies every trace throughput (default 1.0)\n"
          "  --qoe lin|log|both  score(s) to report (default both)\n"
          "  --mpc-ties last|first\n"
          "                      which of RobustMPC's equally scored plans wins: the last\n"
          "                      (higher rungs; the reference code's rule, default) or the first\n"
          "  --log FILE          one JSON line per simulated segment\n",
          f);
}

static int fail_usage(const char *fmt, const char *arg)
{
    fputs("abr-sim: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (see --help)\n", stderr);
    return 2;
}

static int parse_positive(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(v) || !(v > 0.0)) {
        return -1;
    }
    *out = v;
    return 0;
}

static int add_algos(cli_options *o, const char *list)
{
    char buf[256];
    if (strlen(list) >= sizeof buf) {
        return fail_usage("--algo: list too long: %s", list);
    }
    strcpy(buf, list);
    char *save = NULL;
    for (char *name = strtok_r(buf, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
        const sim_algo *a = sim_algo_find(name);
        if (a == NULL) {
            return fail_usage("--algo: unknown controller '%s'", name);
        }
        int seen = 0;
        for (size_t i = 0; i < o->algo_count; i++) {
            seen |= o->algos[i] == a;
        }
        if (!seen && o->algo_count < sizeof o->algos / sizeof o->algos[0]) {
            o->algos[o->algo_count++] = a;
        }
    }
    if (o->algo_count == 0) {
        return fail_usage("--algo: no controller named in '%s'", list);
    }
    return 0;
}

static int parse_ladder(cli_options *o, const char *list)
{
    char buf[256];
    if (strlen(list) >= sizeof buf) {
        return fail_usage("--ladder: list too long: %s", list);
    }
    strcpy(buf, list);
    o->levels = 0;
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        double v = 0.0;
        if (parse_positive(item, &v) != 0) {
            return fail_usage("--ladder: not a positive bitrate: '%s'", item);
        }
        if (o->levels == SIM_MAX_LEVELS) {
            return fail_usage("--ladder: more than 12 rungs in '%s'", list);
        }
        if (o->levels > 0 && !(v > o->ladder_kbps[o->levels - 1])) {
            return fail_usage("--ladder: rates must be ascending: '%s'", list);
        }
        o->ladder_kbps[o->levels++] = v;
    }
    if (o->levels == 0) {
        return fail_usage("--ladder: empty ladder '%s'", list);
    }
    return 0;
}

/* Splits "--name=value" or takes the next argument; NULL when missing. */
static const char *option_value(int argc, char **argv, int *i, const char *arg, size_t name_len)
{
    if (arg[name_len] == '=') {
        return arg + name_len + 1;
    }
    if (*i + 1 >= argc) {
        return NULL;
    }
    return argv[++*i];
}

static int parse_options(int argc, char **argv, cli_options *o)
{
    static const char *const names[] = {"--algo",  "--ladder", "--segment",  "--duration",
                                        "--scale", "--qoe",    "--mpc-ties", "--log"};
    int only_paths = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_paths || arg[0] != '-' || strcmp(arg, "-") == 0) {
            char err[512];
            if (sim_path_list_add(&o->paths, arg, err, sizeof err) != 0) {
                fprintf(stderr, "abr-sim: %s\n", err);
                return 1;
            }
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_paths = 1;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            return -1;
        }
        size_t which = sizeof names / sizeof names[0];
        size_t name_len = 0;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            size_t len = strlen(names[k]);
            if (strncmp(arg, names[k], len) == 0 && (arg[len] == '\0' || arg[len] == '=')) {
                which = k;
                name_len = len;
            }
        }
        if (which == sizeof names / sizeof names[0]) {
            return fail_usage("unknown option '%s'", arg);
        }
        const char *value = option_value(argc, argv, &i, arg, name_len);
        if (value == NULL) {
            return fail_usage("%s needs a value", names[which]);
        }
        int rc = 0;
        switch (which) {
        case 0:
            rc = add_algos(o, value);
            break;
        case 1:
            rc = parse_ladder(o, value);
            break;
        case 2:
            if (parse_positive(value, &o->segment_s) != 0) {
                rc = fail_usage("--segment: not a positive number of seconds: '%s'", value);
            }
            break;
        case 3:
            if (parse_positive(value, &o->duration_s) != 0) {
                rc = fail_usage("--duration: not a positive number of seconds: '%s'", value);
            }
            break;
        case 4:
            if (parse_positive(value, &o->scale) != 0) {
                rc = fail_usage("--scale: not a positive factor: '%s'", value);
            }
            break;
        case 5:
            if (strcmp(value, "lin") == 0) {
                o->qoe_lin = 1;
                o->qoe_log = 0;
            } else if (strcmp(value, "log") == 0) {
                o->qoe_lin = 0;
                o->qoe_log = 1;
            } else if (strcmp(value, "both") == 0) {
                o->qoe_lin = 1;
                o->qoe_log = 1;
            } else {
                rc = fail_usage("--qoe: expected lin, log or both, not '%s'", value);
            }
            break;
        case 6:
            if (strcmp(value, "last") == 0) {
                o->mpc_ties = SIM_MPC_TIES_LAST;
            } else if (strcmp(value, "first") == 0) {
                o->mpc_ties = SIM_MPC_TIES_FIRST;
            } else {
                rc = fail_usage("--mpc-ties: expected last or first, not '%s'", value);
            }
            break;
        default:
            o->log_path = value;
            break;
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static void print_header(const cli_options *o, size_t traces, size_t segments)
{
    printf("abr-sim: %zu trace%s, ladder ", traces, traces == 1 ? "" : "s");
    for (size_t m = 0; m < o->levels; m++) {
        printf("%s%g", m ? "," : "", o->ladder_kbps[m]);
    }
    printf(" kbit/s, segment %g s, %zu segments, scale %g, RobustMPC ties: %s\n", o->segment_s,
           segments, o->scale, sim_mpc_ties_name(o->mpc_ties));
    printf("(means per session; rebuf_s excludes start-up; sw/min per minute of media; top = "
           "share of segments after the first on the top rung)\n");
}

static void print_row(const char *algo, const sim_aggregate *a)
{
    printf("  %-10s %9.4f %8.1f %9.3f %9.2f %7.3f %9.3f %6.3f\n", algo, a->qoe, a->mean_kbps,
           a->rebuffer_s, a->switches, a->switches_per_min, a->startup_s, a->top_share);
}

int abr_sim_main(int argc, char **argv)
{
    cli_options o = {
        .levels = 3,
        .ladder_kbps = {64, 128, 256},
        .segment_s = 4.0,
        .duration_s = 192.0,
        .scale = 1.0,
        .qoe_lin = 1,
        .qoe_log = 1,
        .mpc_ties = SIM_MPC_TIES_LAST,
    };
    int rc = parse_options(argc, argv, &o);
    if (rc != 0) {
        sim_path_list_free(&o.paths);
        return rc < 0 ? 0 : rc;
    }
    if (o.paths.count == 0) {
        sim_path_list_free(&o.paths);
        return fail_usage("no trace file or folder given%s", "");
    }
    size_t segments = sim_segment_count(o.duration_s, o.segment_s);
    if (segments < 2) {
        sim_path_list_free(&o.paths);
        fprintf(stderr, "abr-sim: --duration %g with --segment %g gives fewer than 2 segments\n",
                o.duration_s, o.segment_s);
        return 2;
    }
    if (o.algo_count == 0) {
        size_t count = 0;
        const sim_algo *const *all = sim_algos(&count);
        for (size_t i = 0; i < count; i++) {
            o.algos[o.algo_count++] = all[i];
        }
    }

    char err[512];
    sim_trace *traces = calloc(o.paths.count, sizeof *traces);
    size_t loaded = 0;
    FILE *log = NULL;
    rc = 1;
    if (traces == NULL) {
        fprintf(stderr, "abr-sim: out of memory\n");
        goto done;
    }
    for (; loaded < o.paths.count; loaded++) {
        if (sim_trace_load(o.paths.paths[loaded], &traces[loaded], err, sizeof err) != 0) {
            fprintf(stderr, "abr-sim: %s\n", err);
            goto done;
        }
    }
    if (o.log_path != NULL) {
        log = fopen(o.log_path, "w");
        if (log == NULL) {
            fprintf(stderr, "abr-sim: %s: cannot open for writing: %s\n", o.log_path,
                    strerror(errno));
            goto done;
        }
    }

    print_header(&o, loaded, segments);
    for (int kind = 0; kind < 2; kind++) {
        if ((kind == SIM_QOE_LIN && !o.qoe_lin) || (kind == SIM_QOE_LOG && !o.qoe_log)) {
            continue;
        }
        sim_setup setup = {
            .ladder_kbps = o.ladder_kbps,
            .levels = o.levels,
            .segment_s = o.segment_s,
            .segments = segments,
            .qoe = (sim_qoe_kind)kind,
            .mpc_ties = o.mpc_ties,
        };
        printf("QoE_%s\n  %-10s %9s %8s %9s %9s %7s %9s %6s\n", sim_qoe_name(setup.qoe), "algo",
               "mean_qoe", "kbps", "rebuf_s", "switches", "sw/min", "startup_s", "top");
        for (size_t a = 0; a < o.algo_count; a++) {
            sim_aggregate agg;
            if (sim_run_traces(&setup, o.scale, traces, loaded, o.algos[a], log, &agg, err,
                               sizeof err) != 0) {
                fprintf(stderr, "abr-sim: %s\n", err);
                goto done;
            }
            print_row(o.algos[a]->name, &agg);
        }
    }
    rc = 0;

done:
    if (log != NULL && fclose(log) != 0 && rc == 0) {
        fprintf(stderr, "abr-sim: %s: cannot write the log\n", o.log_path);
        rc = 1;
    }
    for (size_t i = 0; i < loaded; i++) {
        sim_trace_free(&traces[i]);
    }
    free(traces);
    sim_path_list_free(&o.paths);
    return rc;
}
