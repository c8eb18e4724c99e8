/*
 * abr/plan.h — the lookahead behind each automatic decision (private to the abr layer).
 *
 * A plan problem is the QoE model (quality per rung, stall penalty, switch cost), the rungs the
 * plan may use, the buffer, and a set of weighted throughput scenarios. The search returns the
 * first rung of the plan with the best expected score: an exact, exhaustive lookahead over the
 * next few segments, plus a fluid estimate of what the buffer left at the end of the lookahead
 * is worth over the rest of the session (see plan.c for why it is shaped so).
 */
#ifndef KTH_ABR_PLAN_H
#define KTH_ABR_PLAN_H

#include <stddef.h>

#include "abr/controller.h"

/* Recent errors, up to ABR_ESTIMATOR_HISTORY, plus the prior and outage scenarios. */
#define ABR_PLAN_MAX_SCENARIOS (ABR_ESTIMATOR_HISTORY + 8)

typedef struct abr_plan_problem {
    size_t ladder_count;            /* rungs with a quality below */
    size_t levels;                  /* the plan may use rungs [0, levels) */
    double quality[ABR_MAX_LEVELS]; /* q(R) of every rung */
    double bits[ABR_MAX_LEVELS];    /* bits of one segment of every rung */
    double mu;                      /* stall penalty per second */
    double segment_s;
    double ttfb_s; /* added to every download */
    size_t scenarios;
    double rate_bps[ABR_PLAN_MAX_SCENARIOS];      /* body rate over the lookahead */
    double tail_rate_bps[ABR_PLAN_MAX_SCENARIOS]; /* body rate over the rest */
    double weight[ABR_PLAN_MAX_SCENARIOS];        /* sum to 1 */
    size_t horizon;                               /* explicit lookahead in segments, >= 1 */
    size_t tail_segments;  /* segments after the lookahead that the fluid tail covers */
    double tail_reserve_s; /* buffer the tail keeps back against dips it cannot see */
    double tail_weight;    /* share of the tail's value a plan counts, in (0, 1] */
    double adapt;          /* in [0, 1]: how far later rungs are chosen per scenario */
    double buffer_s;
    size_t prev_level; /* < ladder_count */
} abr_plan_problem;

/* Fills `p` from the controller's configuration and the decision's input, for plans using
 * rungs [0, levels). The input must already be validated (non-empty ladder, estimate > 0). */
void abr_plan_build(const abr_controller_config *config, const abr_input *in, size_t levels,
                    abr_plan_problem *p);

/* The first rung of the best plan; `value` (may be NULL) receives its expected score. Ties go
 * to the lower rung. */
size_t abr_plan_best(const abr_plan_problem *p, double *value);

/* Expected score of downloading one segment at `level` and then following the best
 * continuation — chosen per scenario as far as p->adapt says (plan.c, observation 5) — the
 * quantity abr_plan_best maximises, exposed for tests and for explaining decisions. */
double abr_plan_value_of(const abr_plan_problem *p, size_t level);

#endif /* KTH_ABR_PLAN_H */
