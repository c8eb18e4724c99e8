/*
 * tools/abr_sim/qoe.c — scoring a simulated session (see qoe.h for the formula).
 */
#include "qoe.h"

#include <math.h>

const char *sim_qoe_name(sim_qoe_kind kind)
{
    return kind == SIM_QOE_LOG ? "log" : "lin";
}

double sim_qoe_quality(sim_qoe_kind kind, const double *ladder_kbps, size_t levels, size_t level)
{
    if (kind == SIM_QOE_LOG) {
        return log(ladder_kbps[level] / ladder_kbps[0]);
    }
    return ladder_kbps[level] / ladder_kbps[levels - 1];
}

double sim_qoe_rebuffer_penalty(sim_qoe_kind kind, const double *ladder_kbps, size_t levels)
{
    if (kind == SIM_QOE_LOG) {
        return log(ladder_kbps[levels - 1] / ladder_kbps[0]);
    }
    return 1.0;
}

double sim_qoe_score(sim_qoe_kind kind, const double *ladder_kbps, size_t levels,
                     const size_t *level, const double *rebuffer_s, size_t count)
{
    if (count < 2) {
        return 0.0;
    }
    double mu = sim_qoe_rebuffer_penalty(kind, ladder_kbps, levels);
    double total = 0.0;
    double previous = sim_qoe_quality(kind, ladder_kbps, levels, level[0]);
    for (size_t n = 1; n < count; n++) {
        double q = sim_qoe_quality(kind, ladder_kbps, levels, level[n]);
        total += q - mu * rebuffer_s[n] - fabs(q - previous);
        previous = q;
    }
    return total / (double)(count - 1);
}
