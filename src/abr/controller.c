/*
 * abr/controller.c — modes, rescue, dwell and reasons around the plan search (plan.c).
 *
 * Order of precedence, and why:
 *   1. seek lock: while a seek resolves positions, the variant must not move under it;
 *   2. manual mode: the user's rung, exactly (the cap is an automatic-mode limit);
 *   3. no estimate: the lowest rung at the start, else stay — never guess upwards;
 *   4. rescue: a fetch stalled with little buffer left goes to the lowest rung at once, and an
 *      empty buffer allows only a rung that refills it even if the link is much worse than
 *      estimated — these escape hatches never wait for a dwell;
 *   5. the plan, limited by the cap; an up-switch right after a down-switch is held for a few
 *      segments (dwell), so an estimate hovering between two rungs cannot make them flap. A
 *      down-switch is never held: holding it is how players stall.
 * Invariants: a decision's level is inside the ladder; the controller state changes only on a
 * successful decision; nothing here blocks, allocates or reads a clock.
 */
#include "abr/controller.h"

#include <math.h>
#include <string.h>

#include <kithara/status.h>

#include "abr/plan.h"

const char *abr_reason_name(abr_reason reason)
{
    switch (reason) {
    case ABR_REASON_START:
        return "start";
    case ABR_REASON_UP:
        return "up";
    case ABR_REASON_DOWN:
        return "down";
    case ABR_REASON_URGENT_DOWN:
        return "urgent-down";
    case ABR_REASON_MANUAL:
        return "manual";
    case ABR_REASON_CAP:
        return "cap";
    case ABR_REASON_STAY_BEST:
        return "stay-best";
    case ABR_REASON_STAY_DWELL:
        return "stay-dwell";
    case ABR_REASON_STAY_SEEK_LOCK:
        return "stay-seek-lock";
    case ABR_REASON_STAY_NO_ESTIMATE:
        return "stay-no-estimate";
    }
    return "unknown";
}

/* The meaning of each value is in controller.h and plan.c; how they were set is in plan.c. */
void abr_controller_config_default(abr_controller_config *config)
{
    config->utility = ABR_UTILITY_LOG;
    config->lookahead_s = 8.0;
    config->error_scenarios = 8;
    config->prior_weight = 4.0;
    config->outage_probability = 0.03;
    config->outage_factor = 0.4;
    config->tail_shrink = 0.5;
    config->tail_reserve_s = 1.0;
    config->tail_weight = 0.9;
    config->adapt_buffer_s = 15.0;
    config->unknown_tail_s = 120.0;
    config->dwell_segments = 2;
    config->stall_after_s = 2.0;
    config->rescue_buffer_s = 10.0;
    config->empty_buffer_s = 0.5;
}

static double at_least(double v, double floor)
{
    return v >= floor ? v : floor; /* also maps NaN to floor */
}

void abr_controller_init(abr_controller *c, const abr_controller_config *config)
{
    memset(c, 0, sizeof *c);
    if (config != NULL) {
        c->config = *config;
    } else {
        abr_controller_config_default(&c->config);
    }
    abr_controller_config *k = &c->config;
    if (k->utility != ABR_UTILITY_LINEAR) {
        k->utility = ABR_UTILITY_LOG;
    }
    k->lookahead_s = at_least(k->lookahead_s, 0.0);
    if (k->error_scenarios > ABR_ESTIMATOR_HISTORY) {
        k->error_scenarios = ABR_ESTIMATOR_HISTORY;
    }
    k->prior_weight = at_least(k->prior_weight, 0.0);
    if (!(k->outage_probability >= 0.0 && k->outage_probability < 1.0)) {
        k->outage_probability = 0.0;
    }
    if (!(k->outage_factor > 0.0 && k->outage_factor <= 1.0)) {
        k->outage_factor = 1.0;
    }
    k->tail_shrink = at_least(k->tail_shrink, 0.0);
    k->tail_reserve_s = at_least(k->tail_reserve_s, 0.0);
    if (!(k->tail_weight > 0.0 && k->tail_weight <= 1.0)) {
        k->tail_weight = 1.0;
    }
    k->adapt_buffer_s = at_least(k->adapt_buffer_s, 0.0);
    k->unknown_tail_s = at_least(k->unknown_tail_s, 0.0);
    k->stall_after_s = at_least(k->stall_after_s, 0.0);
    k->rescue_buffer_s = at_least(k->rescue_buffer_s, 0.0);
    k->empty_buffer_s = at_least(k->empty_buffer_s, 0.0);
}

/* The highest rung the cap allows (the lowest rung is always allowed). */
static size_t cap_level_of(const abr_input *in)
{
    if (in->controls.cap_bps == 0) {
        return in->ladder_count - 1;
    }
    size_t level = 0;
    for (size_t l = 0; l < in->ladder_count; l++) {
        if (in->ladder[l].bandwidth_bps <= in->controls.cap_bps) {
            level = l;
        }
    }
    return level;
}

/* The highest rung (<= cap) whose segment downloads within its own duration at `rate`. */
static size_t refilling_level(const abr_input *in, size_t cap, double rate)
{
    size_t level = 0;
    for (size_t l = 0; l <= cap; l++) {
        const abr_variant *v = &in->ladder[l];
        double bps =
            (double)(v->average_bandwidth_bps > 0 ? v->average_bandwidth_bps : v->bandwidth_bps);
        double seconds = in->estimate.ttfb_s + bps * in->segment_s / rate;
        if (seconds <= in->segment_s) {
            level = l;
        }
    }
    return level;
}

static void decide_auto(const abr_controller *c, const abr_input *in, abr_decision *d)
{
    const abr_controller_config *k = &c->config;
    size_t prev = in->has_previous ? in->previous_level : 0;
    size_t cap = cap_level_of(in);
    if (!(in->estimate.bps > 0.0)) {
        if (!in->has_previous) {
            d->level = 0;
            d->reason = ABR_REASON_START;
        } else {
            d->level = prev < cap ? prev : cap;
            d->reason = prev <= cap ? ABR_REASON_STAY_NO_ESTIMATE : ABR_REASON_CAP;
        }
        return;
    }
    if (in->has_previous && prev > 0 && in->fetch_stalled &&
        in->since_progress_s >= k->stall_after_s && in->buffer_s < k->rescue_buffer_s) {
        d->level = 0;
        d->reason = ABR_REASON_URGENT_DOWN;
        return;
    }

    abr_plan_problem p;
    abr_plan_build(k, in, cap + 1, &p);
    size_t best = abr_plan_best(&p, NULL);
    d->level = best;
    d->reason = best > prev ? ABR_REASON_UP : best < prev ? ABR_REASON_DOWN : ABR_REASON_STAY_BEST;
    if (cap + 1 < in->ladder_count && best == cap) {
        /* Would the plan have gone higher without the cap? Then the cap is the reason. */
        abr_plan_problem uncapped;
        abr_plan_build(k, in, in->ladder_count, &uncapped);
        if (abr_plan_best(&uncapped, NULL) > cap) {
            d->reason = ABR_REASON_CAP;
        }
    }
    if (in->has_previous && in->buffer_s < k->empty_buffer_s) {
        size_t safe = refilling_level(in, cap, in->estimate.bps * k->outage_factor);
        if (d->level > safe) {
            d->level = safe;
        }
        if (d->level < prev) {
            d->reason = ABR_REASON_URGENT_DOWN;
        }
        return; /* an empty buffer is no time for a dwell to hold anything */
    }
    if (d->reason == ABR_REASON_UP && c->has_last && c->last_direction < 0 &&
        c->segments_since_switch < k->dwell_segments) {
        d->level = prev;
        d->reason = ABR_REASON_STAY_DWELL;
    }
}

static void remember(abr_controller *c, size_t level)
{
    if (c->has_last && level != c->last_level) {
        c->last_direction = level > c->last_level ? 1 : -1;
        c->segments_since_switch = 0;
    } else if (c->segments_since_switch < UINT32_MAX) {
        c->segments_since_switch++;
    }
    c->last_level = level;
    c->has_last = 1;
}

int abr_controller_decide(abr_controller *c, const abr_input *in, abr_decision *out)
{
    if (c == NULL || in == NULL || out == NULL || in->ladder == NULL || in->ladder_count == 0 ||
        in->ladder_count > ABR_MAX_LEVELS || !(in->segment_s > 0.0) || !isfinite(in->segment_s) ||
        (in->has_previous && in->previous_level >= in->ladder_count)) {
        return KTH_ERR_INVALID_ARG;
    }
    abr_decision d = {
        .level = in->has_previous ? in->previous_level : 0,
        .reason = ABR_REASON_STAY_BEST,
        .estimate_bps = in->estimate.bps,
        .buffer_s = in->buffer_s,
    };
    if (in->has_previous && in->controls.seek_locks > 0) {
        d.reason = ABR_REASON_STAY_SEEK_LOCK;
    } else if (in->controls.mode == ABR_MODE_MANUAL) {
        size_t top = in->ladder_count - 1;
        d.level = in->controls.manual_level < top ? in->controls.manual_level : top;
        d.reason = ABR_REASON_MANUAL;
    } else {
        decide_auto(c, in, &d);
    }
    remember(c, d.level);
    *out = d;
    return KTH_OK;
}
