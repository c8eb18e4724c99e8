/*
 * tools/abr_sim/run.h — one controller over a set of traces, averaged, optionally logged.
 */
#ifndef KTH_ABR_SIM_RUN_H
#define KTH_ABR_SIM_RUN_H

#include <stddef.h>
#include <stdio.h>

#include "session.h"

typedef struct sim_aggregate {
    size_t sessions;
    double qoe;              /* mean session score */
    double mean_kbps;        /* mean session bitrate */
    double rebuffer_s;       /* mean stall seconds per session (start-up excluded) */
    double switches;         /* mean switches per session */
    double switches_per_min; /* switches per minute of content */
    double startup_s;        /* mean start-up delay */
    double top_share;        /* share of segments n >= 1 on the top rung */
    size_t stalled_sessions; /* sessions with any stall after start-up */
} sim_aggregate;

/* Runs `algo` over every trace and averages. When `log` is not NULL, writes one JSON line per
 * segment: {"algo","qoe","scale","trace","segment","level","kbps","bytes","download_s",
 * "buffer_s","rebuffer_s"}. Returns 0, or -1 with a sentence in `err`. */
int sim_run_traces(const sim_setup *setup, double scale, const sim_trace *traces, size_t count,
                   const sim_algo *algo, FILE *log, sim_aggregate *out, char *err, size_t err_size);

#endif /* KTH_ABR_SIM_RUN_H */
