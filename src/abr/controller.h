/*
 * abr/controller.h — the variant decision: which rung the next segment comes from, and why.
 *
 * The caller (the HLS peer on the downloader thread, or the simulator) asks at each segment
 * boundary, and again while a fetch makes no progress. It passes everything the decision may
 * depend on in one abr_input — the estimate, the seconds buffered ahead of the reader, the
 * ladder, the segment duration, the segments left, a snapshot of the controls, the time — and
 * gets back an abr_decision (rung, reason, and the estimate and buffer it was based on) that it
 * publishes as an event. The controller takes no lock, does no I/O, allocates nothing and reads
 * no clock: the same inputs always give the same decision, in the player and in the simulator.
 * So a decision never holds any stream lock while calling out; it calls nothing.
 *
 * An abr_controller belongs to the one thread that asks. Only abr_controls (controls.h) is
 * shared between threads; the caller snapshots it into the input.
 *
 * How the automatic decision is made is explained at the top of plan.c.
 */
#ifndef KTH_ABR_CONTROLLER_H
#define KTH_ABR_CONTROLLER_H

#include <stddef.h>
#include <stdint.h>

#include "abr/controls.h"
#include "abr/estimator.h"

/* The most rungs a ladder may have. */
#define ABR_MAX_LEVELS 16
/* The longest exact lookahead, in segments. */
#define ABR_MAX_HORIZON 8

typedef enum abr_reason {
    ABR_REASON_START = 0,       /* nothing measured yet and no previous rung: the lowest */
    ABR_REASON_UP,              /* the plan is better on a higher rung */
    ABR_REASON_DOWN,            /* the plan is better on a lower rung */
    ABR_REASON_URGENT_DOWN,     /* rescue: the fetch stalled or the buffer ran dry */
    ABR_REASON_MANUAL,          /* manual mode: the rung the user chose */
    ABR_REASON_CAP,             /* the bandwidth cap holds the rung below the plan's choice */
    ABR_REASON_STAY_BEST,       /* staying: the current rung is the plan's best */
    ABR_REASON_STAY_DWELL,      /* staying: going back up so soon after going down would flap */
    ABR_REASON_STAY_SEEK_LOCK,  /* staying: a seek is in progress */
    ABR_REASON_STAY_NO_ESTIMATE /* staying: nothing measured yet */
} abr_reason;

/* "start", "up", "down", "urgent-down", "manual", "cap", "stay-best", "stay-dwell",
 * "stay-seek-lock", "stay-no-estimate"; "unknown" for any other value. Static storage; any
 * thread. */
const char *abr_reason_name(abr_reason reason);

typedef struct abr_variant {
    uint64_t bandwidth_bps;         /* BANDWIDTH: peak rate; ranks the rungs' quality */
    uint64_t average_bandwidth_bps; /* AVERAGE-BANDWIDTH, 0 when absent; sizes segments */
} abr_variant;

/* The score the plan maximises, per segment: q(R) - mu * stall_seconds - |q(R) - q(R_prev)|. */
typedef enum abr_utility {
    ABR_UTILITY_LOG = 0, /* q(R) = ln(R / R_min), mu = ln(R_max / R_min) per second */
    ABR_UTILITY_LINEAR   /* q(R) = R / R_max, mu = 1 per second */
} abr_utility;

typedef struct abr_controller_config {
    abr_utility utility;
    /* The exact lookahead covers at least this many seconds of media (at least one segment,
     * at most ABR_MAX_HORIZON); a fluid estimate covers the rest of the session. */
    double lookahead_s;
    /* How many of the estimator's recent prediction errors become scenarios. */
    size_t error_scenarios;
    /* Pseudo-count of the prior scenarios, which fade out as the session's own errors come. */
    double prior_weight;
    /* Probability and depth (rate factor) of the deep-drop scenario: a drop the recent errors
     * have not shown yet. */
    double outage_probability;
    double outage_factor;
    /* How much of the scenarios' spread applies to the rest of the session (0: none, 1: as
     * much as to the next segment): a long-run average varies less than one download. */
    double tail_shrink;
    /* Buffer seconds the fluid tail keeps back against dips it cannot see. */
    double tail_reserve_s;
    /* Share of the fluid tail's value a plan counts, in (0, 1]: the tail is a smooth forecast
     * over minutes, and less of what it promises is realised than of the exact lookahead. */
    double tail_weight;
    /* From this many buffered seconds on, the plan credits the later rungs of its lookahead
     * with adapting to what the first download shows, fully from twice as many; below it, the
     * whole lookahead is one commitment. 0: always adapting. */
    double adapt_buffer_s;
    /* Session length the tail assumes when the number of segments left is unknown. */
    double unknown_tail_s;
    /* After a down-switch, up-switches are held for this many segments. */
    unsigned dwell_segments;
    /* A fetch that has delivered nothing for stall_after_s while less than rescue_buffer_s
     * is buffered is rescued to the lowest rung. */
    double stall_after_s;
    double rescue_buffer_s;
    /* Below this many buffered seconds the buffer counts as empty: the rung must then be one
     * that refills it even at outage_factor times the estimate. */
    double empty_buffer_s;
} abr_controller_config;

typedef struct abr_input {
    const abr_variant *ladder; /* ascending by bandwidth; borrowed for the call */
    size_t ladder_count;       /* 1..ABR_MAX_LEVELS */
    abr_estimate estimate;
    double buffer_s;         /* media seconds buffered ahead of the reader */
    int has_previous;        /* 0 before the first segment (or after a reset) */
    size_t previous_level;   /* rung of the segment before this one */
    double segment_s;        /* duration of the next segments, > 0 */
    size_t segments_left;    /* segments to the end, this one included; 0 when unknown */
    int fetch_stalled;       /* asked mid-fetch because the current fetch stopped progressing */
    double since_progress_s; /* how long the current fetch has delivered nothing */
    uint64_t now_ns;         /* the caller's monotonic clock (or the simulated one) */
    abr_controls_state controls;
} abr_input;

typedef struct abr_decision {
    size_t level;
    abr_reason reason;
    double estimate_bps; /* the short-term estimate the decision used */
    double buffer_s;     /* the buffer level it used */
} abr_decision;

/* Plain data so it can be embedded; use only through the functions below. */
typedef struct abr_controller {
    abr_controller_config config;
    size_t last_level;
    int has_last;
    int last_direction; /* +1 up, -1 down, 0 none yet */
    unsigned segments_since_switch;
} abr_controller;

/* Fills `config` with the defaults (log utility; see controller.c for the values and why). */
void abr_controller_config_default(abr_controller_config *config);

/* `config` may be NULL for the defaults; out-of-range fields are brought into range. */
void abr_controller_init(abr_controller *c, const abr_controller_config *config);

/* Decides the rung of the next segment. Returns KTH_OK, or KTH_ERR_INVALID_ARG for a NULL
 * argument, an empty or oversized ladder, a segment duration that is not positive, or a
 * previous level outside the ladder (then `out` and the controller are left untouched). */
int abr_controller_decide(abr_controller *c, const abr_input *in, abr_decision *out);

#endif /* KTH_ABR_CONTROLLER_H */
