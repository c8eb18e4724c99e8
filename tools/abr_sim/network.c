/*
 * tools/abr_sim/network.c — piecewise-constant link over a looping trace.
 *
 * Invariant: 1 <= row < count and t(row-1) <= cursor_s < t(row). Whole periods are skipped
 * arithmetically (a period always delivers bits_per_period > 0 bits, which the trace loader
 * guarantees), so a download or an idle never walks more than one period row by row.
 */
#include "network.h"

#include <math.h>

static double row_rate_bps(const sim_network *net, size_t row)
{
    return net->trace->mbps[row] * net->scale * 1e6;
}

/* Moves to the next interval, wrapping to the first one at the end of the trace. */
static void next_row(sim_network *net)
{
    net->row++;
    if (net->row >= net->trace->count) {
        net->row = 1;
        net->cursor_s = net->trace->time_s[0];
    } else {
        net->cursor_s = net->trace->time_s[net->row - 1];
    }
}

void sim_network_init(sim_network *net, const sim_trace *trace, double scale)
{
    net->trace = trace;
    net->scale = scale;
    net->period_s = sim_trace_period(trace);
    net->bits_per_period = 0.0;
    for (size_t i = 1; i < trace->count; i++) {
        net->bits_per_period += (trace->time_s[i] - trace->time_s[i - 1]) * trace->mbps[i];
    }
    net->bits_per_period *= scale * 1e6;
    net->row = 1;
    net->cursor_s = trace->time_s[0];
}

double sim_network_download(sim_network *net, uint64_t bytes)
{
    double bits = (double)bytes * 8.0;
    double elapsed = 0.0;
    if (bits <= 0.0) {
        return SIM_ROUND_TRIP_S;
    }
    /* Whole periods first: one period delivers the same bits wherever it starts. */
    if (bits > net->bits_per_period) {
        double periods = floor(bits / net->bits_per_period);
        if (periods >= 1.0) {
            /* Keep a remainder strictly positive so the walk below ends inside an interval. */
            if (bits - periods * net->bits_per_period <= 0.0) {
                periods -= 1.0;
            }
            bits -= periods * net->bits_per_period;
            elapsed += periods * net->period_s;
        }
    }
    for (;;) {
        double end = net->trace->time_s[net->row];
        double left = end - net->cursor_s;
        double rate = row_rate_bps(net, net->row);
        if (rate > 0.0 && rate * left >= bits) {
            double dt = bits / rate;
            elapsed += dt;
            net->cursor_s += dt;
            if (net->cursor_s >= end) {
                next_row(net);
            }
            break;
        }
        bits -= rate * left;
        elapsed += left;
        next_row(net);
    }
    return elapsed + SIM_ROUND_TRIP_S;
}

void sim_network_idle(sim_network *net, double seconds)
{
    if (!(seconds > 0.0)) {
        return;
    }
    if (seconds >= net->period_s) {
        seconds = fmod(seconds, net->period_s);
    }
    for (;;) {
        double end = net->trace->time_s[net->row];
        double left = end - net->cursor_s;
        if (seconds < left) {
            net->cursor_s += seconds;
            return;
        }
        seconds -= left;
        next_row(net);
    }
}
