/*
 * tools/abr_sim/algo.h — what a simulated controller sees and how the simulator calls it.
 *
 * Before each segment n the simulator shows the controller exactly what the simulation contract
 * allows: the buffer level, the previous rung, the bytes, download time and throughput of every
 * earlier segment, the ladder, the segment duration and the number of segments left. Nothing of
 * the trace's future. A controller keeps its own state between calls (opened per session).
 */
#ifndef KTH_ABR_SIM_ALGO_H
#define KTH_ABR_SIM_ALGO_H

#include <stddef.h>
#include <stdint.h>

#include "qoe.h"

/* The most rungs a simulated ladder may have (RobustMPC's exhaustive search grows as
 * rungs^horizon). */
#define SIM_MAX_LEVELS 12

/*
 * How RobustMPC's exhaustive search breaks a tie between plans of equal score — a detail the
 * simulation contract leaves open, and one that matters (baselines.c says how much). Plans are
 * enumerated in lexicographic order, lowest rungs first. LAST, the default, keeps the last of
 * the tied plans (a `>=` comparison, as the reference code published with the literature's
 * simulator does), which leans to higher rungs; FIRST keeps the first (`>`), the lower rungs.
 */
typedef enum sim_mpc_ties {
    SIM_MPC_TIES_LAST = 0,
    SIM_MPC_TIES_FIRST = 1,
} sim_mpc_ties;

/* "last" or "first". */
const char *sim_mpc_ties_name(sim_mpc_ties ties);

typedef struct sim_setup {
    const double *ladder_kbps; /* ascending, `levels` entries; borrowed */
    size_t levels;
    double segment_s;
    size_t segments;       /* N, the number of segments of the session */
    sim_qoe_kind qoe;      /* the score the session is judged by */
    sim_mpc_ties mpc_ties; /* RobustMPC's tie rule (only RobustMPC reads it) */
} sim_setup;

typedef struct sim_view {
    const sim_setup *setup;
    size_t segment;       /* n, the segment to choose a rung for */
    size_t segments_left; /* N - n, this one included */
    double buffer_s;      /* seconds buffered ahead of the playhead */
    size_t prev_level;    /* rung of segment n - 1 (meaningless when n == 0) */
    /* Per earlier segment k < n: */
    const uint64_t *bytes;
    const double *download_s;     /* round trip included */
    const double *throughput_bps; /* bytes * 8 / download_s */
} sim_view;

typedef struct sim_algo {
    const char *name;
    /* A fresh state for one session; NULL when out of memory. */
    void *(*open)(const sim_setup *setup);
    /* The rung for segment view->segment, in [0, levels). */
    size_t (*choose)(void *state, const sim_view *view);
    void (*close)(void *state);
} sim_algo;

/* The controllers the simulator knows, in their display order: kithara, bb, rb, bola,
 * robustmpc. */
const sim_algo *const *sim_algos(size_t *count);

/* The controller named `name`, or NULL. */
const sim_algo *sim_algo_find(const char *name);

/* Defined by the controllers' files. */
extern const sim_algo sim_algo_kithara;
extern const sim_algo sim_algo_bb;
extern const sim_algo sim_algo_rb;
extern const sim_algo sim_algo_bola;
extern const sim_algo sim_algo_robustmpc;

#endif /* KTH_ABR_SIM_ALGO_H */
