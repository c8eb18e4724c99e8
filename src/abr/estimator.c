/*
 * abr/estimator.c — body-rate and time-to-first-byte estimation (see estimator.h for the why).
 *
 * Invariants: rate_count <= HISTORY; once a sample was accepted, 1 <= usable <= rate_count
 * and prediction_bps > 0; ttfb_s >= 0; long_bits and long_seconds are both zero or both
 * positive.
 */
#include "abr/estimator.h"

#include <math.h>
#include <string.h>

/* Weight of a new time-to-first-byte sample in its moving average. */
#define TTFB_GAIN 0.25

void abr_estimator_config_default(abr_estimator_config *config)
{
    config->min_bytes = 4 * 1024;
    config->window = 5;
    config->recovery_samples = 2;
    config->recovery_factor = 1.5;
    config->long_tau_s = 120.0;
}

void abr_estimator_init(abr_estimator *est, const abr_estimator_config *config)
{
    memset(est, 0, sizeof *est);
    if (config != NULL) {
        est->config = *config;
    } else {
        abr_estimator_config_default(&est->config);
    }
    abr_estimator_config *c = &est->config;
    if (c->window < 1) {
        c->window = 1;
    }
    if (c->window > ABR_ESTIMATOR_HISTORY) {
        c->window = ABR_ESTIMATOR_HISTORY;
    }
    if (c->recovery_samples < 1) {
        c->recovery_samples = 1;
    }
    if (!(c->recovery_factor >= 1.0)) {
        c->recovery_factor = 1.0;
    }
    if (!(c->long_tau_s >= 0.0)) {
        c->long_tau_s = 0.0;
    }
}

/* The i-th newest accepted rate (i = 0 is the newest). */
static double newest_rate(const abr_estimator *est, size_t i)
{
    size_t slot = (est->rate_head + ABR_ESTIMATOR_HISTORY - 1 - i) % ABR_ESTIMATOR_HISTORY;
    return est->rate_bps[slot];
}

static double harmonic_mean_of_newest(const abr_estimator *est, size_t k)
{
    double inverse_sum = 0.0;
    for (size_t i = 0; i < k; i++) {
        inverse_sum += 1.0 / newest_rate(est, i);
    }
    return (double)k / inverse_sum;
}

static void update_ttfb(abr_estimator *est, double ttfb_s)
{
    if (est->ttfb_samples == 0) {
        est->ttfb_s = ttfb_s;
    } else {
        est->ttfb_s += TTFB_GAIN * (ttfb_s - est->ttfb_s);
    }
    est->ttfb_samples++;
}

static void push_rate(abr_estimator *est, double rate)
{
    if (est->prediction_bps > 0.0) {
        est->log_error[est->error_head] = log(rate / est->prediction_bps);
        est->error_head = (est->error_head + 1) % ABR_ESTIMATOR_HISTORY;
        if (est->error_count < ABR_ESTIMATOR_HISTORY) {
            est->error_count++;
        }
    }
    est->rate_bps[est->rate_head] = rate;
    est->rate_head = (est->rate_head + 1) % ABR_ESTIMATOR_HISTORY;
    if (est->rate_count < ABR_ESTIMATOR_HISTORY) {
        est->rate_count++;
    }
    if (est->usable < est->config.window) {
        est->usable++;
    }
    if (est->usable > est->rate_count) {
        est->usable = est->rate_count;
    }
    /* Recovery: the harmonic mean is pulled down hard by one slow sample and would keep a
     * recovered link looking slow for a whole window. When the newest samples all clearly beat
     * the mean of the window, the link has changed: keep only those. */
    size_t k = est->config.recovery_samples;
    if (est->usable > k) {
        double mean = harmonic_mean_of_newest(est, est->usable);
        int recovered = 1;
        for (size_t i = 0; i < k; i++) {
            if (!(newest_rate(est, i) >= mean * est->config.recovery_factor)) {
                recovered = 0;
            }
        }
        if (recovered) {
            est->usable = k;
        }
    }
    est->prediction_bps = harmonic_mean_of_newest(est, est->usable);
}

int abr_estimator_add_sample(abr_estimator *est, const abr_sample *sample)
{
    if (sample->duration_ns == 0) {
        return 0;
    }
    double duration_s = (double)sample->duration_ns * 1e-9;
    int has_ttfb = sample->ttfb_ns > 0;
    /* The first byte cannot come after the last: a clock oddity is clamped. */
    double ttfb_s =
        sample->ttfb_ns < sample->duration_ns ? (double)sample->ttfb_ns * 1e-9 : duration_s;
    if (sample->bytes < est->config.min_bytes) {
        /* Too small to measure a rate, but nearly all latency: it informs the first-byte
         * estimate. Its rate, poor as it is, stands in until a real sample arrives, so a
         * stream whose every transfer is small is never left without an estimate. */
        update_ttfb(est, has_ttfb ? ttfb_s : duration_s);
        double body_s = has_ttfb ? duration_s - ttfb_s : duration_s;
        if (body_s > 0.0 && sample->bytes > 0) {
            est->tiny_bits += (double)sample->bytes * 8.0;
            est->tiny_seconds += body_s;
        }
        return 0;
    }
    double body_s;
    if (has_ttfb) {
        update_ttfb(est, ttfb_s);
        body_s = duration_s - ttfb_s;
    } else {
        /* No first-byte time from the caller: take the estimate off, but never more than half
         * of the transfer, so one bad latency guess cannot inflate a rate without bound. */
        double latency = est->ttfb_s < duration_s * 0.5 ? est->ttfb_s : duration_s * 0.5;
        body_s = duration_s - latency;
    }
    if (!(body_s > 0.0)) {
        return 0;
    }
    double bits = (double)sample->bytes * 8.0;
    push_rate(est, bits / body_s);

    if (est->config.long_tau_s > 0.0 && est->samples > 0 && sample->now_ns > est->last_sample_ns) {
        double gap_s = (double)(sample->now_ns - est->last_sample_ns) * 1e-9;
        double keep = exp(-gap_s / est->config.long_tau_s);
        est->long_bits *= keep;
        est->long_seconds *= keep;
    }
    est->long_bits += bits;
    est->long_seconds += body_s;
    est->samples++;
    est->last_sample_ns = sample->now_ns;
    return 1;
}

void abr_estimator_get(const abr_estimator *est, abr_estimate *out)
{
    memset(out, 0, sizeof *out);
    out->bps = est->prediction_bps;
    if (!(out->bps > 0.0) && est->tiny_seconds > 0.0) {
        out->bps = est->tiny_bits / est->tiny_seconds;
    }
    out->long_bps = est->long_seconds > 0.0 ? est->long_bits / est->long_seconds : 0.0;
    out->ttfb_s = est->ttfb_s;
    out->samples = est->samples;
    out->error_count = est->error_count;
    for (size_t i = 0; i < est->error_count; i++) {
        size_t slot = (est->error_head + ABR_ESTIMATOR_HISTORY - est->error_count + i) %
                      ABR_ESTIMATOR_HISTORY;
        out->log_errors[i] = est->log_error[slot];
    }
}
