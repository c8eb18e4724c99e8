/*
 * tools/abr_sim/qoe.h — the QoE score of the simulation contract.
 *
 * For segments n >= 1: q(R_n) - mu * rebuffer_n - |q(R_n) - q(R_{n-1})|, averaged over the
 * N - 1 segments. QoE_lin: q(R) = R / R_max, mu = 1 per second. QoE_log: q(R) = ln(R / R_min),
 * mu = ln(R_max / R_min). Segment 0 counts only as the previous quality of segment 1.
 */
#ifndef KTH_ABR_SIM_QOE_H
#define KTH_ABR_SIM_QOE_H

#include <stddef.h>

typedef enum sim_qoe_kind {
    SIM_QOE_LIN = 0,
    SIM_QOE_LOG = 1,
} sim_qoe_kind;

/* "lin" or "log". */
const char *sim_qoe_name(sim_qoe_kind kind);

/* q(R) for rung `level` of an ascending ladder of `levels` rates (kbit/s). */
double sim_qoe_quality(sim_qoe_kind kind, const double *ladder_kbps, size_t levels, size_t level);

/* mu, the penalty per second of rebuffering. */
double sim_qoe_rebuffer_penalty(sim_qoe_kind kind, const double *ladder_kbps, size_t levels);

/* Mean score of a session of `count` (>= 2) segments from its chosen rungs and rebuffer times
 * (rebuffer_s[0] is ignored: segment 0's download is the start-up delay, not a stall). */
double sim_qoe_score(sim_qoe_kind kind, const double *ladder_kbps, size_t levels,
                     const size_t *level, const double *rebuffer_s, size_t count);

#endif /* KTH_ABR_SIM_QOE_H */
