/*
 * abr/controls.c — thread-safe ABR knobs.
 *
 * Every setter changes the state and bumps the generation under the mutex, copies the wake
 * callback, releases the mutex and only then calls the callback. So a callback may take any
 * other lock (the downloader's, a stream's) without an ordering problem, and may even call back
 * into these controls.
 */
#include "abr/controls.h"

#include <string.h>

#include <kithara/status.h>

int abr_controls_init(abr_controls *controls)
{
    memset(controls, 0, sizeof *controls);
    if (pthread_mutex_init(&controls->mutex, NULL) != 0) {
        return KTH_ERR_NO_MEMORY;
    }
    controls->state.mode = ABR_MODE_AUTO;
    return KTH_OK;
}

void abr_controls_destroy(abr_controls *controls)
{
    pthread_mutex_destroy(&controls->mutex);
}

void abr_controls_set_wake(abr_controls *controls, abr_wake_fn wake, void *ctx)
{
    pthread_mutex_lock(&controls->mutex);
    controls->wake = wake;
    controls->wake_ctx = ctx;
    pthread_mutex_unlock(&controls->mutex);
}

/* Ends a change started by locking: bumps the generation, unlocks, then wakes. */
static void finish_change(abr_controls *controls)
{
    controls->state.generation++;
    abr_wake_fn wake = controls->wake;
    void *ctx = controls->wake_ctx;
    pthread_mutex_unlock(&controls->mutex);
    if (wake != NULL) {
        wake(ctx);
    }
}

void abr_controls_set_auto(abr_controls *controls)
{
    pthread_mutex_lock(&controls->mutex);
    controls->state.mode = ABR_MODE_AUTO;
    finish_change(controls);
}

void abr_controls_set_manual(abr_controls *controls, size_t level)
{
    pthread_mutex_lock(&controls->mutex);
    controls->state.mode = ABR_MODE_MANUAL;
    controls->state.manual_level = level;
    finish_change(controls);
}

void abr_controls_set_cap(abr_controls *controls, uint64_t cap_bps)
{
    pthread_mutex_lock(&controls->mutex);
    controls->state.cap_bps = cap_bps;
    finish_change(controls);
}

void abr_controls_seek_begin(abr_controls *controls)
{
    pthread_mutex_lock(&controls->mutex);
    controls->state.seek_locks++;
    finish_change(controls);
}

void abr_controls_seek_end(abr_controls *controls)
{
    pthread_mutex_lock(&controls->mutex);
    if (controls->state.seek_locks > 0) {
        controls->state.seek_locks--;
    }
    finish_change(controls);
}

void abr_controls_snapshot(abr_controls *controls, abr_controls_state *out)
{
    pthread_mutex_lock(&controls->mutex);
    *out = controls->state;
    pthread_mutex_unlock(&controls->mutex);
}
