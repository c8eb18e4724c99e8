/*
 * tools/abr_sim/session.h — one simulated listening session: a controller over a trace.
 *
 * Buffer model of the simulation contract: after segment 0 the buffer holds L seconds and its
 * download time is the start-up delay. For n >= 1 with download time d: rebuffer =
 * max(d - B, 0), B = max(B - d, 0) + L, and when B exceeds B_max the link idles by B - B_max and
 * B = B_max.
 */
#ifndef KTH_ABR_SIM_SESSION_H
#define KTH_ABR_SIM_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "algo.h"
#include "trace.h"

/* The largest buffer (seconds); above it the player stops fetching. */
#define SIM_BUFFER_MAX_S 60.0

/* What happened to one segment. */
typedef struct sim_segment {
    size_t level;
    double kbps;
    uint64_t bytes;
    double download_s; /* round trip included */
    double buffer_s;   /* after the segment arrived (and after any idling) */
    double rebuffer_s; /* stall before it arrived; 0 for segment 0 */
} sim_segment;

typedef struct sim_session_summary {
    double qoe;          /* mean score per segment n >= 1 */
    double mean_kbps;    /* mean bitrate over all N segments */
    double rebuffer_s;   /* total stall after start-up */
    size_t switches;     /* rung changes between consecutive segments */
    double startup_s;    /* download time of segment 0 */
    size_t top_segments; /* segments n >= 1 on the top rung */
} sim_session_summary;

/* N = floor(duration / L) (0 when the arguments make no sense). */
size_t sim_segment_count(double duration_s, double segment_s);

/* Bytes of a CBR segment: bitrate * L / 8. */
uint64_t sim_segment_bytes(double kbps, double segment_s);

/* Runs `algo` for setup->segments segments over `trace` scaled by `scale`. `segments` receives
 * setup->segments records when not NULL. Returns 0, or -1 when the controller could not be
 * opened or chose a rung outside the ladder (`err` says which). */
int sim_session_run(const sim_setup *setup, double scale, const sim_trace *trace,
                    const sim_algo *algo, sim_segment *segments, sim_session_summary *out,
                    char *err, size_t err_size);

#endif /* KTH_ABR_SIM_SESSION_H */
