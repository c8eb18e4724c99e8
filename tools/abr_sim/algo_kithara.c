/*
 * tools/abr_sim/algo_kithara.c — kithara's own controller (src/abr) inside the simulator.
 *
 * It is driven exactly as the player drives it, through the same calls: one abr_sample per
 * finished segment, then abr_controller_decide with the buffer level, the ladder, the segment
 * duration and the segments left. The sample holds what the player's downloader reports: the
 * bytes, the whole download time (round trip included, as the contract defines it) and the
 * time to first byte, which on the simulated link is its fixed round trip — a property of the
 * link, not of the trace's future. The clock is the simulated one: download times plus the
 * idle time the buffer model imposes, which the controller could have observed itself.
 */
#include <stdlib.h>

#include "abr/controller.h"
#include "abr/estimator.h"
#include "algo.h"
#include "network.h"
#include "session.h"

typedef struct kithara_state {
    abr_estimator estimator;
    abr_controller controller;
    abr_variant ladder[ABR_MAX_LEVELS];
    size_t levels;
    double clock_s;         /* simulated time since the session started */
    double previous_buffer; /* buffer level seen at the previous decision */
} kithara_state;

static void *open_kithara(const sim_setup *setup)
{
    if (setup->levels == 0 || setup->levels > ABR_MAX_LEVELS) {
        return NULL;
    }
    kithara_state *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    abr_estimator_init(&s->estimator, NULL);
    abr_controller_config config;
    abr_controller_config_default(&config);
    config.utility = setup->qoe == SIM_QOE_LOG ? ABR_UTILITY_LOG : ABR_UTILITY_LINEAR;
    abr_controller_init(&s->controller, &config);
    for (size_t m = 0; m < setup->levels; m++) {
        uint64_t bps = (uint64_t)(setup->ladder_kbps[m] * 1000.0 + 0.5);
        s->ladder[m].bandwidth_bps = bps;
        s->ladder[m].average_bandwidth_bps = bps;
    }
    s->levels = setup->levels;
    return s;
}

/* Feeds the segment that just finished and advances the simulated clock past it. */
static void observe(kithara_state *s, const sim_view *view)
{
    size_t k = view->segment - 1;
    double d = view->download_s[k];
    /* The buffer model: it idled by whatever exceeded the maximum after this segment. */
    double L = view->setup->segment_s;
    double raw = k == 0 ? L : (s->previous_buffer > d ? s->previous_buffer - d : 0.0) + L;
    double idle = raw > SIM_BUFFER_MAX_S ? raw - SIM_BUFFER_MAX_S : 0.0;
    s->clock_s += d;
    abr_sample sample = {
        .bytes = view->bytes[k],
        .duration_ns = (uint64_t)(d * 1e9 + 0.5),
        .ttfb_ns = (uint64_t)(SIM_ROUND_TRIP_S * 1e9 + 0.5),
        .now_ns = (uint64_t)(s->clock_s * 1e9 + 0.5),
    };
    abr_estimator_add_sample(&s->estimator, &sample);
    s->clock_s += idle;
}

static size_t choose_kithara(void *opaque, const sim_view *view)
{
    kithara_state *s = opaque;
    if (view->segment > 0) {
        observe(s, view);
    }
    s->previous_buffer = view->buffer_s;
    abr_input in = {
        .ladder = s->ladder,
        .ladder_count = s->levels,
        .buffer_s = view->buffer_s,
        .has_previous = view->segment > 0,
        .previous_level = view->prev_level,
        .segment_s = view->setup->segment_s,
        .segments_left = view->segments_left,
        .now_ns = (uint64_t)(s->clock_s * 1e9 + 0.5),
    };
    abr_estimator_get(&s->estimator, &in.estimate);
    abr_decision d;
    if (abr_controller_decide(&s->controller, &in, &d) != 0) {
        return view->setup->levels; /* the session reports it as an invalid choice */
    }
    return d.level;
}

static void close_kithara(void *state)
{
    free(state);
}

const sim_algo sim_algo_kithara = {"kithara", open_kithara, choose_kithara, close_kithara};
