/*
 * abr/plan.c — how an automatic decision is made: a scenario lookahead with a fluid tail.
 *
 * The decision maximises the expected score the player is judged by, per segment
 * q(R) - mu * stall - |q(R) - q(R_prev)|, summed over the rest of the session. Four
 * observations shape it.
 *
 * 1. What a perfect-knowledge player does on recorded mobile traces: it climbs early, once or
 *    twice, and then almost never comes down. It builds buffer on a lower rung and lets that
 *    buffer carry the top rung through dips, and it spends the buffer towards the end, where
 *    buffer left over is worth nothing. A planner that looks only a few segments ahead (as
 *    RobustMPC does, five segments) cannot see either effect: it climbs when the last few
 *    downloads were fast and comes back down at the next dip, paying the switch twice. So the
 *    plan here covers the whole rest of the session: the next few segments exactly, and
 *    everything after them with a fluid model — what a buffer of B seconds and the play time
 *    of the remaining r segments can afford at the long-run rate. The best use of a download
 *    time budget over many segments is a linear program with one constraint whose optimum
 *    mixes at most two adjacent rungs; that value (with the switches it implies, and any
 *    shortfall below the lowest rung counted as stall) is the tail of every plan. It makes
 *    buffer valuable early in a long session, lets the end of the session spend it, and
 *    charges for the switch back down that a short-sighted climb would cost later.
 *
 * 2. The future is uncertain, and a single discounted prediction (RobustMPC divides by one
 *    plus the largest recent error) is either too timid on a steady link or too bold after a
 *    lucky stretch. Instead each plan is scored in a set of weighted throughput scenarios:
 *    the estimate multiplied by each of the estimator's recent relative errors (the empirical
 *    spread of its own predictions on this link), plus a prior spread that fades out as the
 *    session's own errors come in, plus a rare deep drop (outage_probability at
 *    outage_factor times the estimate) standing for what a short history has not shown yet —
 *    tunnels, handovers. Stalls are scored exactly in the explicit lookahead, so a rung is
 *    taken only when its expected gain outweighs the expected stall. The tail uses the lower
 *    of the short-term and the long-run rate (climbing on a lucky stretch is what a long-run
 *    view should prevent) with the spread shrunk, since an average over minutes varies less
 *    than one download does.
 *
 * 3. Download time is predicted as ttfb + bits / body rate, not from a rate that includes the
 *    first-byte wait: with audio segments of 20-200 KB the wait is a large, size-independent
 *    part of each download. Folded into a rate measured on a small segment, it makes a larger
 *    one look slower than it is (the climb from a low rung is put off), and the other way
 *    round a rate measured on a large segment makes a small one look faster.
 *
 * 4. The tail is a forecast, and it is counted at a discount (tail_weight, 0.9 of its value).
 *    Under the linear score quality is proportional to bitrate, hence to download time: one
 *    second of download buys the same quality on every rung, and the fluid tail values a
 *    second of buffer banked now exactly as much as a second spent now. Small terms — the
 *    first-byte wait, the deep-drop scenario, the reserve — then tip plan after plan towards
 *    staying low and spending the buffer "later": on a steady link that carries the middle
 *    rung, the controller could sit on the lowest one while the buffer grew to 40 s, and
 *    spend it late or not at all (the buffer is capped, and what is left at the end is worth
 *    nothing). What the tail promises is also realised less fully than what the exact
 *    lookahead scores download by download, since it is one smooth rate over minutes. So the
 *    plan prefers value at hand to the same value projected minutes ahead, which settles the
 *    near-tie in favour of spending. Under the log score the middle rung buys more quality
 *    per second than the top one, the tail was not indifferent, and the discount changes
 *    little there. With the discount making the tail itself more cautious, its reserve
 *    against unseen dips is 1 s.
 *
 * 5. Only the first rung of a plan is committed: the next decision is made after the first
 *    download, which shows something of which scenario holds. Scoring the whole lookahead as
 *    one commitment charges a bold first rung with the stalls of the bad scenarios as if the
 *    player would carry on regardless, so it keeps a player low on a link it could ride with
 *    the buffer it has. Each scenario's continuation is therefore chosen for that scenario,
 *    in part (see abr_plan_value_of). But how much the later choices can repair depends on
 *    the buffer: with little of it, a bad first download has already stalled by the time it
 *    shows, and nothing later undoes that. So the plan adapts only from adapt_buffer_s of
 *    buffer (15 s), fully from twice that, and is one commitment below.
 *
 * The lookahead is short (default 8 s of media, two 4 s segments): that is enough for the
 * exact stall accounting where it matters — the downloads the next decisions cannot undo —
 * while the tail carries the long view. Every candidate plan of the lookahead is enumerated
 * (rungs^horizon, bounded by PLAN_BUDGET for long ladders) and its first rung is applied;
 * the next decision plans again with what the download taught.
 *
 * How the numbers were chosen: the shape above was worked out on the recorded HSDPA and FCC
 * sessions as a whole, comparing with a perfect-knowledge planner; the numeric defaults
 * (controller.c) were then picked over the whole benchmark grid jointly — never per trace —
 * on half of the sessions (every other file by name), and checked on the other half, where
 * the gains held. The reference they were judged against is RobustMPC under both readings of
 * its tie rule (the bolder one, keeping the last of equally scored plans, is the harder). The
 * score is flat around most of them — halving or doubling one moves the grid mean by about
 * one per cent or less — so they are round values with the meaning given above. Two are not:
 * a shorter lookahead (4 s) scores higher but stalls more than RobustMPC in some cells, which
 * is why it is 8 s; and a deeper deep-drop scenario (a fifth of the estimate instead of 0.4)
 * makes every plan timid and costs several per cent. The tail discount and reserve were
 * chosen together (0.85-0.95 and 0.5-2 s score within half a per cent of each other). A
 * stronger discount (0.8 or less), or a rule that settles near-ties towards the higher rung
 * directly, fixed the steady sessions it was aimed at but stalled more on the others and
 * scored lower over the grid. Adapting at every buffer level (observation 5) raised both
 * grid means too, but stalled beyond RobustMPC's rebuffering + 10 % in the 3G cell with 6 s
 * segments at scale 0.15 (log score); weighting stalls above the score's penalty or a likelier
 * deep drop to stay within it gave the gain back. Gated by the buffer it stalls no more than
 * without adapting. The gate was picked on the first half of the sessions (10-20 s score
 * within half a per cent of each other, 8 s stalls too much; 15 s keeps away from that edge)
 * and the gain held on the second: QoE_lin /
 * RobustMPC 1.0252 -> 1.0275 on the first half, 1.0388 -> 1.0433 on the second; QoE_log
 * 1.0363 -> 1.0402 and 1.0689 -> 1.0787.
 */
#include "abr/plan.h"

#include <math.h>
#include <string.h>

/* Most plans the exhaustive lookahead may enumerate; a long ladder gets a shorter horizon. */
#define PLAN_BUDGET 1024

/* Prior relative errors (natural log) that stand for the unknown spread before the session
 * has measured its own: from half the estimate to a little above it. */
static const double prior_log_errors[] = {-0.5, -0.25, 0.0, 0.15};

static double segment_rate(const abr_variant *v)
{
    uint64_t r = v->average_bandwidth_bps > 0 ? v->average_bandwidth_bps : v->bandwidth_bps;
    return (double)r;
}

/* Scenarios: recent errors (weight 1 each), the fading prior, the deep drop. Returns the
 * count; `log_err` and `weight` (summing to 1) receive them. */
static size_t build_scenarios(const abr_controller_config *config, const abr_estimate *e,
                              double *log_err, double *weight)
{
    size_t n_err = e->error_count < ABR_ESTIMATOR_HISTORY ? e->error_count : ABR_ESTIMATOR_HISTORY;
    size_t take = n_err < config->error_scenarios ? n_err : config->error_scenarios;
    size_t s = 0;
    for (size_t i = n_err - take; i < n_err; i++) {
        log_err[s] = e->log_errors[i];
        weight[s] = 1.0;
        s++;
    }
    double prior_total = config->prior_weight - (double)take;
    if (prior_total > 0.0 || s == 0) {
        size_t np = sizeof prior_log_errors / sizeof prior_log_errors[0];
        double each = (prior_total > 0.0 ? prior_total : 1.0) / (double)np;
        for (size_t i = 0; i < np; i++) {
            log_err[s] = prior_log_errors[i];
            weight[s] = each;
            s++;
        }
    }
    double total = 0.0;
    for (size_t i = 0; i < s; i++) {
        total += weight[i];
    }
    double keep = 1.0 - config->outage_probability;
    for (size_t i = 0; i < s; i++) {
        weight[i] = weight[i] / total * keep;
    }
    if (config->outage_probability > 0.0) {
        log_err[s] = log(config->outage_factor);
        weight[s] = config->outage_probability;
        s++;
    }
    return s;
}

void abr_plan_build(const abr_controller_config *config, const abr_input *in, size_t levels,
                    abr_plan_problem *p)
{
    memset(p, 0, sizeof *p);
    p->ladder_count = in->ladder_count;
    p->levels = levels;
    double r_min = (double)in->ladder[0].bandwidth_bps;
    double r_max = (double)in->ladder[in->ladder_count - 1].bandwidth_bps;
    if (!(r_min > 0.0)) {
        r_min = 1.0;
    }
    if (r_max < r_min) {
        r_max = r_min;
    }
    for (size_t l = 0; l < in->ladder_count; l++) {
        double r = (double)in->ladder[l].bandwidth_bps;
        r = r < r_min ? r_min : r;
        p->quality[l] = config->utility == ABR_UTILITY_LOG ? log(r / r_min) : r / r_max;
        p->bits[l] = segment_rate(&in->ladder[l]) * in->segment_s;
    }
    p->mu = config->utility == ABR_UTILITY_LOG ? log(r_max / r_min) : 1.0;
    if (!(p->mu > 0.0)) {
        p->mu = 1.0; /* a one-rung ladder: any positive penalty gives the same choice */
    }
    p->segment_s = in->segment_s;
    p->ttfb_s = in->estimate.ttfb_s > 0.0 ? in->estimate.ttfb_s : 0.0;
    p->buffer_s = in->buffer_s > 0.0 ? in->buffer_s : 0.0;
    p->prev_level = in->has_previous ? in->previous_level : 0;

    double short_bps = in->estimate.bps;
    double long_bps = in->estimate.long_bps;
    double tail_bps = long_bps > 0.0 && long_bps < short_bps ? long_bps : short_bps;
    double log_err[ABR_PLAN_MAX_SCENARIOS];
    double weight[ABR_PLAN_MAX_SCENARIOS];
    p->scenarios = build_scenarios(config, &in->estimate, log_err, weight);
    for (size_t i = 0; i < p->scenarios; i++) {
        p->rate_bps[i] = short_bps * exp(log_err[i]);
        p->tail_rate_bps[i] = tail_bps * exp(config->tail_shrink * log_err[i]);
        p->weight[i] = weight[i];
    }

    size_t h = (size_t)ceil(config->lookahead_s / in->segment_s - 1e-9);
    h = h < 1 ? 1 : h > ABR_MAX_HORIZON ? ABR_MAX_HORIZON : h;
    if (in->segments_left > 0 && in->segments_left < h) {
        h = in->segments_left;
    }
    double plans = 1.0;
    size_t fit = 0;
    while (fit < h && plans * (double)levels <= PLAN_BUDGET) {
        plans *= (double)levels;
        fit++;
    }
    p->horizon = fit > 0 ? fit : 1;
    if (in->segments_left > 0) {
        p->tail_segments = in->segments_left > p->horizon ? in->segments_left - p->horizon : 0;
    } else {
        p->tail_segments = (size_t)ceil(config->unknown_tail_s / in->segment_s);
    }
    p->tail_reserve_s = config->tail_reserve_s;
    p->tail_weight = config->tail_weight;
    if (config->adapt_buffer_s > 0.0) {
        double a = (p->buffer_s - config->adapt_buffer_s) / config->adapt_buffer_s;
        p->adapt = a < 0.0 ? 0.0 : a > 1.0 ? 1.0 : a;
    } else {
        p->adapt = 1.0;
    }
}

/*
 * Fluid value of the rest of the session: `tail_segments` segments after the lookahead, from
 * `buffer` after a segment at `end_level`, all at `rate`. The download time the session can
 * afford without stalling is the buffer plus the play time of all but the last segment, less
 * the reserve; a mix of rungs a and a+1 spends it exactly, and below the lowest rung the
 * shortfall is stalled. The switch into the tail and the one inside a mix are charged. The
 * caller counts the result at tail_weight (observation 4 above).
 */
static double tail_value(const abr_plan_problem *p, double rate, double buffer, size_t end_level)
{
    double r = (double)p->tail_segments;
    if (r <= 0.0) {
        return 0.0;
    }
    double budget = buffer + (r - 1.0) * p->segment_s - p->tail_reserve_s;
    double d[ABR_MAX_LEVELS];
    for (size_t l = 0; l < p->levels; l++) {
        d[l] = p->ttfb_s + p->bits[l] / rate;
    }
    double q_end = p->quality[end_level];
    double best = -INFINITY;
    for (size_t a = 0; a < p->levels; a++) {
        double need = r * d[a];
        double stall = need > budget ? need - budget : 0.0;
        double single = r * p->quality[a] - p->mu * stall - fabs(p->quality[a] - q_end);
        if (single > best) {
            best = single;
        }
        if (a + 1 < p->levels && need < budget && d[a + 1] > d[a]) {
            size_t b = a + 1;
            double n_b = (budget - need) / (d[b] - d[a]);
            if (n_b < r) {
                double enter_low = fabs(p->quality[a] - q_end);
                double enter_high = fabs(p->quality[b] - q_end);
                double switches = fabs(p->quality[b] - p->quality[a]) +
                                  (enter_low < enter_high ? enter_low : enter_high);
                double mix = (r - n_b) * p->quality[a] + n_b * p->quality[b] - switches;
                if (mix > best) {
                    best = mix;
                }
            }
        }
    }
    return best;
}

/* Score of one plan of `horizon` rungs, tail included, in each scenario. */
static void plan_scores(const abr_plan_problem *p, const size_t *plan, double *out)
{
    for (size_t s = 0; s < p->scenarios; s++) {
        double buffer = p->buffer_s;
        double score = 0.0;
        double previous = p->quality[p->prev_level];
        for (size_t k = 0; k < p->horizon; k++) {
            size_t l = plan[k];
            double d = p->ttfb_s + p->bits[l] / p->rate_bps[s];
            double stall = d > buffer ? d - buffer : 0.0;
            buffer = (buffer > d ? buffer - d : 0.0) + p->segment_s;
            score += p->quality[l] - p->mu * stall - fabs(p->quality[l] - previous);
            previous = p->quality[l];
        }
        out[s] = score +
                 p->tail_weight * tail_value(p, p->tail_rate_bps[s], buffer, plan[p->horizon - 1]);
    }
}

/*
 * The first rung is committed; the later ones of the lookahead are chosen again after the
 * first download, which shows something of which scenario holds. Each scenario's
 * continuation is the one best for a mix of that scenario (share p->adapt) and all of them:
 * at 0 one continuation serves every scenario (the lookahead is one commitment), at 1 each
 * scenario gets its own. Continuations are scored in lexicographic order and the first best
 * wins.
 */
double abr_plan_value_of(const abr_plan_problem *p, size_t level)
{
    double best_mix[ABR_PLAN_MAX_SCENARIOS];
    double best_own[ABR_PLAN_MAX_SCENARIOS];
    double own[ABR_PLAN_MAX_SCENARIOS];
    for (size_t s = 0; s < p->scenarios; s++) {
        best_mix[s] = -INFINITY;
        best_own[s] = -INFINITY;
    }
    size_t plan[ABR_MAX_HORIZON] = {0};
    plan[0] = level;
    for (;;) {
        plan_scores(p, plan, own);
        double expected = 0.0;
        for (size_t s = 0; s < p->scenarios; s++) {
            expected += p->weight[s] * own[s];
        }
        for (size_t s = 0; s < p->scenarios; s++) {
            double mix = p->adapt * own[s] + (1.0 - p->adapt) * expected;
            if (mix > best_mix[s]) {
                best_mix[s] = mix;
                best_own[s] = own[s];
            }
        }
        /* Next continuation: rungs 1..horizon-1 in lexicographic order. */
        size_t k = p->horizon;
        for (;;) {
            if (k <= 1) {
                double value = 0.0;
                for (size_t s = 0; s < p->scenarios; s++) {
                    value += p->weight[s] * best_own[s];
                }
                return value;
            }
            k--;
            if (++plan[k] < p->levels) {
                break;
            }
            plan[k] = 0;
        }
    }
}

size_t abr_plan_best(const abr_plan_problem *p, double *value)
{
    size_t best_level = 0;
    double best = -INFINITY;
    for (size_t a = 0; a < p->levels; a++) {
        double v = abr_plan_value_of(p, a);
        if (v > best) {
            best = v;
            best_level = a;
        }
    }
    if (value != NULL) {
        *value = best;
    }
    return best_level;
}
