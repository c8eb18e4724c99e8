/*
 * tools/abr_sim/baselines.h — the four reference controllers of the simulation contract.
 *
 * Exposed beyond their sim_algo entries so the unit tests can pin each rule on hand-made
 * inputs. Every baseline takes segment 0 at the lowest rung.
 */
#ifndef KTH_ABR_SIM_BASELINES_H
#define KTH_ABR_SIM_BASELINES_H

#include <stddef.h>

#include "algo.h"

/* BB: reservoir and cushion in seconds. */
#define SIM_BB_RESERVOIR_S 5.0
#define SIM_BB_CUSHION_S   10.0
/* RB and RobustMPC: how many past throughputs the harmonic mean uses. */
#define SIM_HARMONIC_WINDOW 5
/* BOLA. */
#define SIM_BOLA_GAMMA_P 5.0
#define SIM_BOLA_Q_MAX_S 25.0
/* RobustMPC: lookahead in segments, and how many past errors bound the discount. */
#define SIM_MPC_HORIZON      5
#define SIM_MPC_ERROR_WINDOW 5

/* BB's rung for a buffer level: floor((levels - 1) * (B - reservoir) / cushion), clamped. */
size_t sim_bb_level(double buffer_s, size_t levels);

/* Harmonic mean of the last min(window, count) throughputs ending at index count - 1; 0 when
 * count is 0. */
double sim_harmonic_mean(const double *throughput_bps, size_t count, size_t window);

/* RB's rung: the highest rung whose rate is not above `estimate_bps`, else the lowest. */
size_t sim_rb_level(double estimate_bps, const double *ladder_kbps, size_t levels);

/* BOLA's rung for a buffer level. */
size_t sim_bola_level(double buffer_s, const double *ladder_kbps, size_t levels, double segment_s);

/* RobustMPC's search: the first rung of the plan of `horizon` segments (horizon >= 1) that
 * maximises the contract's score when every segment downloads at `predicted_bps`, starting from
 * `buffer_s` after a segment at `prev_level`. Among plans of equal score, `ties` picks the last
 * or the first in lexicographic order (algo.h). No buffer cap applies inside the lookahead. */
size_t sim_mpc_search(sim_qoe_kind qoe, const double *ladder_kbps, size_t levels, double segment_s,
                      double buffer_s, size_t prev_level, double predicted_bps, size_t horizon,
                      sim_mpc_ties ties);

#endif /* KTH_ABR_SIM_BASELINES_H */
