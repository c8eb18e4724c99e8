/*
 * tools/abr_sim/network.h — the simulated link of the simulation contract.
 *
 * The link replays a trace: interval [t(i-1), t(i)) carries mbps(i) * scale Mbit/s, and the
 * trace loops from its start when it runs out. A download of S bytes starts at the cursor, lasts
 * as long as the piecewise rate needs to deliver S * 8 bits, and moves the cursor by that time;
 * the fixed round trip is then added to the reported download time without moving the cursor.
 * Idling moves the cursor without delivering anything.
 */
#ifndef KTH_ABR_SIM_NETWORK_H
#define KTH_ABR_SIM_NETWORK_H

#include <stdint.h>

#include "trace.h"

/* The fixed round trip added to every download (seconds). */
#define SIM_ROUND_TRIP_S 0.080

typedef struct sim_network {
    const sim_trace *trace; /* borrowed */
    double scale;           /* multiplies every rate; > 0 */
    double bits_per_period; /* bits one full period delivers at this scale */
    double period_s;
    size_t row;      /* the cursor lies in [t(row-1), t(row)), 1 <= row < count */
    double cursor_s; /* absolute trace time of the cursor, in [t(0), t(last)) */
} sim_network;

/* Starts the cursor at the trace's first time. `scale` must be positive. */
void sim_network_init(sim_network *net, const sim_trace *trace, double scale);

/* Downloads `bytes` and returns the download time in seconds, round trip included. */
double sim_network_download(sim_network *net, uint64_t bytes);

/* Moves the cursor forward by `seconds` (>= 0) with nothing delivered. */
void sim_network_idle(sim_network *net, double seconds);

#endif /* KTH_ABR_SIM_NETWORK_H */
