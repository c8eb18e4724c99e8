/*
 * abr/controls.h — the ABR knobs a user may turn from any thread.
 *
 * Automatic or manual (a fixed rung), a bandwidth cap, and a lock held for the duration of a
 * seek. The owner of the decision (the peer) reads a snapshot at each segment boundary, so a
 * change takes effect at the next boundary. A change may also wake the peer (so a manual switch
 * is not ignored while the peer is idle): the wake callback is called after the controls' own
 * mutex is released, never under it.
 */
#ifndef KTH_ABR_CONTROLS_H
#define KTH_ABR_CONTROLS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef enum abr_mode { ABR_MODE_AUTO = 0, ABR_MODE_MANUAL } abr_mode;

/* A consistent copy of the controls. */
typedef struct abr_controls_state {
    abr_mode mode;
    size_t manual_level; /* the rung in manual mode (clamped to the ladder by the controller) */
    uint64_t cap_bps;    /* 0: no cap; else the highest BANDWIDTH allowed */
    unsigned seek_locks; /* > 0 while a seek is in progress */
    uint64_t generation; /* bumped by every change */
} abr_controls_state;

typedef void (*abr_wake_fn)(void *ctx);

typedef struct abr_controls {
    /* Protects every field below. A leaf lock: nothing else is taken while it is held, and no
     * callback is called under it. */
    pthread_mutex_t mutex;
    abr_controls_state state;
    abr_wake_fn wake;
    void *wake_ctx;
} abr_controls;

/* Returns KTH_OK, or KTH_ERR_NO_MEMORY when the mutex cannot be created. Starts automatic,
 * uncapped, unlocked, generation 0. Not thread-safe: call before sharing the controls. */
int abr_controls_init(abr_controls *controls);

/* Not thread-safe: call once no other thread uses the controls. */
void abr_controls_destroy(abr_controls *controls);

/* Sets (or clears, with NULL) the function called after each change, on the thread that made
 * the change, with no lock of the controls held. A change racing with the clearing may still
 * call the old function once, so `ctx` must outlive every thread that changes the controls
 * (or the wake must be cleared before those threads may change them). Any thread. */
void abr_controls_set_wake(abr_controls *controls, abr_wake_fn wake, void *ctx);

/* The setters below change the state, bump the generation and then wake. Any thread. */
void abr_controls_set_auto(abr_controls *controls);
/* `level` is clamped to the ladder by the controller, not here (the ladder may change). */
void abr_controls_set_manual(abr_controls *controls, size_t level);
/* The highest BANDWIDTH the automatic mode may pick; 0 removes the cap. */
void abr_controls_set_cap(abr_controls *controls, uint64_t cap_bps);
/* Seek lock: the rung stays put from begin to end, in any mode (the controller puts it first),
 * so the empty buffer and cut-short transfers of a seek cannot move it. Begin/end pairs may
 * nest and may come from different threads; an end without a begin does nothing. Both wake:
 * the end lets a decision that was held back be made. */
void abr_controls_seek_begin(abr_controls *controls);
void abr_controls_seek_end(abr_controls *controls);

/* Copies a consistent state out. Any thread; never blocks for longer than a setter holds the
 * mutex (a few stores). */
void abr_controls_snapshot(abr_controls *controls, abr_controls_state *out);

#endif /* KTH_ABR_CONTROLS_H */
