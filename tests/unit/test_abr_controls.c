/*
 * test_abr_controls.c — the ABR controls shared between threads: each setter changes a
 * consistent snapshot, bumps the generation and wakes the peer after releasing the mutex;
 * seek locks nest, balance across threads and hold the controller's rung while a seek's empty
 * buffer and cut-short samples would move it; concurrent setters and readers never see a torn
 * state.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <kithara/status.h>

#include "abr/controller.h"
#include "abr/controls.h"
#include "abr/estimator.h"

typedef struct wake_probe {
    abr_controls *controls;
    int calls;
    int mutex_was_free; /* every call found the controls' mutex unlocked */
    abr_controls_state seen;
} wake_probe;

static void on_wake(void *ctx)
{
    wake_probe *p = ctx;
    p->calls++;
    if (pthread_mutex_trylock(&p->controls->mutex) == 0) {
        pthread_mutex_unlock(&p->controls->mutex);
    } else {
        p->mutex_was_free = 0;
    }
    /* A callback may read the controls (it would deadlock if called under the mutex). */
    abr_controls_snapshot(p->controls, &p->seen);
}

static void test_defaults_are_automatic_uncapped_unlocked(void **state)
{
    (void)state;
    abr_controls c;
    assert_int_equal(abr_controls_init(&c), KTH_OK);
    abr_controls_state s;
    abr_controls_snapshot(&c, &s);
    assert_int_equal(s.mode, ABR_MODE_AUTO);
    assert_int_equal(s.cap_bps, 0);
    assert_int_equal(s.seek_locks, 0);
    assert_int_equal(s.generation, 0);
    abr_controls_destroy(&c);
}

static void test_manual_switch_wakes_the_peer_outside_the_lock(void **state)
{
    (void)state;
    abr_controls c;
    assert_int_equal(abr_controls_init(&c), KTH_OK);
    wake_probe probe = {.controls = &c, .mutex_was_free = 1};
    abr_controls_set_wake(&c, on_wake, &probe);
    abr_controls_set_manual(&c, 2);
    assert_int_equal(probe.calls, 1);
    assert_true(probe.mutex_was_free);
    assert_int_equal(probe.seen.mode, ABR_MODE_MANUAL);
    assert_int_equal(probe.seen.manual_level, 2);
    assert_int_equal(probe.seen.generation, 1);

    abr_controls_set_cap(&c, 128000);
    abr_controls_set_auto(&c);
    assert_int_equal(probe.calls, 3);
    assert_int_equal(probe.seen.mode, ABR_MODE_AUTO);
    assert_int_equal(probe.seen.cap_bps, 128000);
    assert_int_equal(probe.seen.generation, 3);
    assert_true(probe.mutex_was_free);

    abr_controls_set_wake(&c, NULL, NULL);
    abr_controls_set_manual(&c, 0);
    assert_int_equal(probe.calls, 3); /* cleared: no more calls */
    abr_controls_destroy(&c);
}

static void test_seek_locks_nest(void **state)
{
    (void)state;
    abr_controls c;
    assert_int_equal(abr_controls_init(&c), KTH_OK);
    abr_controls_state s;
    abr_controls_seek_begin(&c);
    abr_controls_seek_begin(&c);
    abr_controls_seek_end(&c);
    abr_controls_snapshot(&c, &s);
    assert_int_equal(s.seek_locks, 1);
    abr_controls_seek_end(&c);
    abr_controls_seek_end(&c); /* unbalanced end: stays at zero */
    abr_controls_snapshot(&c, &s);
    assert_int_equal(s.seek_locks, 0);
    abr_controls_destroy(&c);
}

static void test_seek_lock_changes_wake_the_peer_outside_the_lock(void **state)
{
    (void)state;
    abr_controls c;
    assert_int_equal(abr_controls_init(&c), KTH_OK);
    wake_probe probe = {.controls = &c, .mutex_was_free = 1};
    abr_controls_set_wake(&c, on_wake, &probe);
    abr_controls_seek_begin(&c);
    assert_int_equal(probe.calls, 1);
    assert_int_equal(probe.seen.seek_locks, 1);
    assert_int_equal(probe.seen.generation, 1);
    /* The end wakes too: a decision held back by the lock may be made now. */
    abr_controls_seek_end(&c);
    assert_int_equal(probe.calls, 2);
    assert_int_equal(probe.seen.seek_locks, 0);
    assert_int_equal(probe.seen.generation, 2);
    assert_true(probe.mutex_was_free);
    abr_controls_set_wake(&c, NULL, NULL);
    abr_controls_destroy(&c);
}

#define LOCKERS     4
#define LOCK_ROUNDS 5000

typedef struct lockers {
    abr_controls *controls;
    pthread_barrier_t *start;
    int over; /* a snapshot saw more locks than threads can hold */
} lockers;

static void *locker(void *arg)
{
    lockers *l = arg;
    pthread_barrier_wait(l->start);
    for (int i = 0; i < LOCK_ROUNDS; i++) {
        abr_controls_seek_begin(l->controls);
        abr_controls_state s;
        abr_controls_snapshot(l->controls, &s);
        if (s.seek_locks < 1 || s.seek_locks > LOCKERS)
            l->over = 1;
        abr_controls_seek_end(l->controls);
    }
    return NULL;
}

static void test_seek_locks_from_many_threads_balance(void **state)
{
    (void)state;
    abr_controls c;
    assert_int_equal(abr_controls_init(&c), KTH_OK);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, LOCKERS);
    lockers l[LOCKERS];
    pthread_t t[LOCKERS];
    for (int i = 0; i < LOCKERS; i++) {
        l[i] = (lockers){.controls = &c, .start = &start};
        assert_int_equal(pthread_create(&t[i], NULL, locker, &l[i]), 0);
    }
    for (int i = 0; i < LOCKERS; i++) {
        pthread_join(t[i], NULL);
        assert_false(l[i].over);
    }
    pthread_barrier_destroy(&start);
    abr_controls_state s;
    abr_controls_snapshot(&c, &s);
    assert_int_equal(s.seek_locks, 0);
    assert_int_equal(s.generation, 2 * (uint64_t)LOCKERS * LOCK_ROUNDS);
    abr_controls_destroy(&c);
}

/* A seek's aftermath as the controller sees it: nothing buffered at the new position, and the
 * estimate dragged down by a transfer the seek cut short. */
static void seek_aftermath(abr_estimator *est, abr_input *in, const abr_variant *ladder)
{
    abr_estimator_init(est, NULL);
    uint64_t now = 1000000000;
    for (int i = 0; i < 5; i++) { /* a fast link before the seek */
        abr_sample fast = {.bytes = 200000,
                           .duration_ns = 100000000,
                           .ttfb_ns = 10000000,
                           .now_ns = now += 1000000000};
        abr_estimator_add_sample(est, &fast);
    }
    abr_sample cut = {
        .bytes = 5000, .duration_ns = 2000000000, .ttfb_ns = 10000000, .now_ns = now += 100000000};
    abr_estimator_add_sample(est, &cut);
    memset(in, 0, sizeof *in);
    in->ladder = ladder;
    in->ladder_count = 3;
    abr_estimator_get(est, &in->estimate);
    in->buffer_s = 0;
    in->has_previous = 1;
    in->previous_level = 2;
    in->segment_s = 1.0;
    in->segments_left = 20;
    in->now_ns = now;
}

static void test_a_held_seek_lock_keeps_the_rung_through_a_seeks_aftermath(void **state)
{
    (void)state;
    static const abr_variant ladder[] = {{80000, 0}, {150000, 0}, {290000, 0}};
    abr_controls c;
    assert_int_equal(abr_controls_init(&c), KTH_OK);
    abr_estimator est;
    abr_input in;
    abr_controller ctl;
    abr_decision d;

    /* Unlocked, the aftermath moves the rung down. */
    seek_aftermath(&est, &in, ladder);
    abr_controls_snapshot(&c, &in.controls);
    abr_controller_init(&ctl, NULL);
    assert_int_equal(abr_controller_decide(&ctl, &in, &d), KTH_OK);
    assert_true(d.level < 2);

    /* Locked (from another thread's point of view: the snapshot the peer takes), it stays. */
    abr_controls_seek_begin(&c);
    seek_aftermath(&est, &in, ladder);
    abr_controls_snapshot(&c, &in.controls);
    abr_controller_init(&ctl, NULL);
    assert_int_equal(abr_controller_decide(&ctl, &in, &d), KTH_OK);
    assert_int_equal(d.level, 2);
    assert_int_equal(d.reason, ABR_REASON_STAY_SEEK_LOCK);
    /* Also in manual mode: the lock comes first. */
    abr_controls_set_manual(&c, 0);
    abr_controls_snapshot(&c, &in.controls);
    assert_int_equal(abr_controller_decide(&ctl, &in, &d), KTH_OK);
    assert_int_equal(d.level, 2);

    abr_controls_seek_end(&c);
    abr_controls_snapshot(&c, &in.controls);
    assert_int_equal(abr_controller_decide(&ctl, &in, &d), KTH_OK);
    assert_int_equal(d.level, 0);
    assert_int_equal(d.reason, ABR_REASON_MANUAL);
    abr_controls_destroy(&c);
}

#define WRITES 20000

typedef struct race {
    abr_controls *controls;
    pthread_barrier_t *start;
    int torn; /* a reader saw manual_level and cap_bps from different writes */
} race;

/* Each write sets manual_level = k and cap_bps = 1000 * k in two steps under one lock each:
 * the pair is written by set_manual then set_cap, so a reader may see (k, 1000*(k-1)) between
 * them but never a level and a cap further apart. */
static void *writer(void *arg)
{
    race *r = arg;
    pthread_barrier_wait(r->start);
    for (size_t k = 1; k <= WRITES; k++) {
        abr_controls_set_manual(r->controls, k);
        abr_controls_set_cap(r->controls, 1000 * (uint64_t)k);
    }
    return NULL;
}

static void *reader(void *arg)
{
    race *r = arg;
    pthread_barrier_wait(r->start);
    uint64_t last_generation = 0;
    for (size_t i = 0; i < WRITES; i++) {
        abr_controls_state s;
        abr_controls_snapshot(r->controls, &s);
        uint64_t level_k = s.manual_level;
        uint64_t cap_k = s.cap_bps / 1000;
        if (s.generation < last_generation || !(cap_k == level_k || cap_k + 1 == level_k)) {
            r->torn = 1;
        }
        last_generation = s.generation;
    }
    return NULL;
}

static void test_concurrent_changes_and_snapshots_stay_consistent(void **state)
{
    (void)state;
    abr_controls c;
    assert_int_equal(abr_controls_init(&c), KTH_OK);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 3);
    race r = {.controls = &c, .start = &start};
    pthread_t w;
    pthread_t rd;
    assert_int_equal(pthread_create(&w, NULL, writer, &r), 0);
    assert_int_equal(pthread_create(&rd, NULL, reader, &r), 0);
    pthread_barrier_wait(&start); /* the test thread is the third party: all start together */
    pthread_join(w, NULL);
    pthread_join(rd, NULL);
    pthread_barrier_destroy(&start);
    assert_false(r.torn);
    abr_controls_state s;
    abr_controls_snapshot(&c, &s);
    assert_int_equal(s.manual_level, WRITES);
    assert_int_equal(s.cap_bps, 1000 * (uint64_t)WRITES);
    assert_int_equal(s.generation, 2 * (uint64_t)WRITES);
    abr_controls_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_automatic_uncapped_unlocked),
        cmocka_unit_test(test_manual_switch_wakes_the_peer_outside_the_lock),
        cmocka_unit_test(test_seek_locks_nest),
        cmocka_unit_test(test_seek_lock_changes_wake_the_peer_outside_the_lock),
        cmocka_unit_test(test_seek_locks_from_many_threads_balance),
        cmocka_unit_test(test_a_held_seek_lock_keeps_the_rung_through_a_seeks_aftermath),
        cmocka_unit_test(test_concurrent_changes_and_snapshots_stay_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
