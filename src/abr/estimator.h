/*
 * abr/estimator.h — throughput and time-to-first-byte estimates from download samples.
 *
 * The downloader reports one sample per finished (or abandoned) transfer: the body bytes, the
 * whole duration from request to last byte, and the time to first byte when it knows it. The
 * estimator keeps:
 *   - a time-to-first-byte estimate, fed by every transfer, tiny ones included (a playlist or
 *     a key is almost all latency), so that a download time is predicted as ttfb + bits / rate
 *     instead of from a rate that mixes both — which matters for audio, where a 20 KB segment
 *     may spend as long waiting for its first byte as receiving its body;
 *   - a short-term body rate: the harmonic mean of the last few body rates, which one slow
 *     sample pulls down at once (safe after a drop) and a recovery rule that forgets the slow
 *     past as soon as consecutive samples show the link is fast again;
 *   - a long-run body rate: bits over body seconds, decayed with time, so a big segment counts
 *     in proportion to its size;
 *   - the recent errors of its own predictions, ln(actual / predicted), which the controller
 *     uses as the spread of what the next downloads may see.
 * Transfers below min_bytes are too small to measure a rate (slow start and timer granularity
 * dominate); they feed only the first-byte estimate and a stand-in rate used until the first
 * real sample arrives.
 *
 * Pure logic: the caller's clock comes in with each sample, nothing is allocated, nothing is
 * locked. One owner thread feeds and reads an estimator; abr_estimator_get copies a snapshot
 * that may be handed to another thread.
 */
#ifndef KTH_ABR_ESTIMATOR_H
#define KTH_ABR_ESTIMATOR_H

#include <stddef.h>
#include <stdint.h>

/* How many accepted samples and prediction errors are remembered. */
#define ABR_ESTIMATOR_HISTORY 16

typedef struct abr_sample {
    uint64_t bytes;       /* body bytes delivered */
    uint64_t duration_ns; /* request sent to last byte, time to first byte included */
    uint64_t ttfb_ns;     /* request sent to first body byte; 0 when unknown */
    uint64_t now_ns;      /* completion time on the caller's monotonic clock */
} abr_sample;

typedef struct abr_estimator_config {
    /* Transfers below this many bytes do not feed the rate estimate (default 4 KiB). */
    uint64_t min_bytes;
    /* How many recent body rates the short-term estimate averages (1..HISTORY, default 5). */
    size_t window;
    /* Recovery: when the newest `recovery_samples` rates all exceed the short-term estimate by
     * `recovery_factor`, older samples are forgotten (defaults 2 and 1.5). */
    size_t recovery_samples;
    double recovery_factor;
    /* Time constant of the long-run estimate's decay, in seconds (default 120; 0: never). */
    double long_tau_s;
} abr_estimator_config;

/* A snapshot to decide from. */
typedef struct abr_estimate {
    double bps;       /* short-term body rate in bit/s; 0 when nothing was measured */
    double long_bps;  /* long-run body rate in bit/s; 0 when no real sample yet */
    double ttfb_s;    /* expected time to first byte in seconds; 0 when unknown */
    unsigned samples; /* samples that fed the rate estimate so far */
    /* ln(actual / predicted) of the most recent predictions, oldest first. */
    double log_errors[ABR_ESTIMATOR_HISTORY];
    size_t error_count;
} abr_estimate;

/* Plain data so it can be embedded; use only through the functions below. */
typedef struct abr_estimator {
    abr_estimator_config config;
    double rate_bps[ABR_ESTIMATOR_HISTORY]; /* ring of accepted body rates */
    size_t rate_head;                       /* next slot to write */
    size_t rate_count;                      /* valid entries */
    size_t usable; /* newest entries the short-term estimate uses (recovery shrinks it) */
    double log_error[ABR_ESTIMATOR_HISTORY];
    size_t error_head;
    size_t error_count;
    double prediction_bps; /* short-term estimate; 0 before the first accepted sample */
    double long_bits;      /* decayed sums behind the long-run estimate */
    double long_seconds;
    double tiny_bits; /* tiny transfers: the stand-in rate before any accepted sample */
    double tiny_seconds;
    double ttfb_s;
    unsigned ttfb_samples;
    unsigned samples;
    uint64_t last_sample_ns;
} abr_estimator;

/* Fills `config` with the defaults. */
void abr_estimator_config_default(abr_estimator_config *config);

/* Empties the estimator. `config` may be NULL for the defaults; out-of-range fields are
 * brought to the nearest valid value. */
void abr_estimator_init(abr_estimator *est, const abr_estimator_config *config);

/* Adds one sample. Returns 1 when it fed the rate estimate, 0 when it was too small (it then
 * updated only the first-byte estimate) or carried no usable duration. */
int abr_estimator_add_sample(abr_estimator *est, const abr_sample *sample);

/* Copies the current estimate out. */
void abr_estimator_get(const abr_estimator *est, abr_estimate *out);

#endif /* KTH_ABR_ESTIMATOR_H */
