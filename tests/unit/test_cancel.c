/*
 * test_cancel.c — cancel-token trees and their wakers, and the virtual clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "platform/cancel.h"
#include "platform/clock.h"
#include "platform/sync.h"

static void count_wake(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_cancelling_a_node_cancels_its_subtree_only(void **state)
{
    (void)state;
    platform_cancel *root = platform_cancel_new(NULL);
    platform_cancel *a = platform_cancel_new(root);
    platform_cancel *b = platform_cancel_new(root);
    platform_cancel *a1 = platform_cancel_new(a);
    platform_cancel *a2 = platform_cancel_new(a);
    platform_cancel *a1x = platform_cancel_new(a1);
    platform_cancel_cancel(a);
    assert_true(platform_cancel_is_cancelled(a));
    assert_true(platform_cancel_is_cancelled(a1));
    assert_true(platform_cancel_is_cancelled(a2));
    assert_true(platform_cancel_is_cancelled(a1x));
    assert_false(platform_cancel_is_cancelled(root));
    assert_false(platform_cancel_is_cancelled(b));
    /* A child born under a cancelled parent is cancelled. */
    platform_cancel *late = platform_cancel_new(a1);
    assert_true(platform_cancel_is_cancelled(late));
    platform_cancel_cancel(a); /* idempotent */
    platform_cancel_cancel(root);
    assert_true(platform_cancel_is_cancelled(b));
    assert_false(platform_cancel_is_cancelled(NULL));
    /* Release in an order that frees parents before children's owners let go. */
    platform_cancel_unref(root);
    platform_cancel_unref(a);
    platform_cancel_unref(b);
    platform_cancel_unref(a1);
    platform_cancel_unref(a2);
    platform_cancel_unref(a1x);
    platform_cancel_unref(late);
}

static void test_wakers_of_every_cancelled_node_fire_once(void **state)
{
    (void)state;
    platform_cancel *root = platform_cancel_new(NULL);
    platform_cancel *child = platform_cancel_new(root);
    platform_cancel *other = platform_cancel_new(NULL);
    atomic_int fired_root = 0, fired_child = 0, fired_other = 0;
    platform_cancel_waker w1, w2, w3, w4;
    assert_true(platform_cancel_add_waker(root, &w1, count_wake, &fired_root));
    assert_true(platform_cancel_add_waker(child, &w2, count_wake, &fired_child));
    assert_true(platform_cancel_add_waker(child, &w3, count_wake, &fired_child));
    assert_true(platform_cancel_add_waker(other, &w4, count_wake, &fired_other));
    platform_cancel_cancel(root);
    platform_cancel_cancel(child);
    assert_int_equal(atomic_load(&fired_root), 1);
    assert_int_equal(atomic_load(&fired_child), 2);
    assert_int_equal(atomic_load(&fired_other), 0);
    /* Adding a waker to a cancelled token is refused. */
    platform_cancel_waker w5;
    assert_false(platform_cancel_add_waker(child, &w5, count_wake, &fired_child));
    platform_cancel_remove_waker(&w5);
    platform_cancel_remove_waker(&w1);
    platform_cancel_remove_waker(&w2);
    platform_cancel_remove_waker(&w3);
    platform_cancel_remove_waker(&w4); /* never fired: unlinks */
    platform_cancel_cancel(other);
    assert_int_equal(atomic_load(&fired_other), 0);
    platform_cancel_unref(child);
    platform_cancel_unref(root);
    platform_cancel_unref(other);
}

/* Many threads register and remove wakers while others cancel: each registered waker fires at
 * most once, none fires after removal returns (its counter is checked after), no race. */
struct storm {
    platform_cancel *root;
    pthread_barrier_t *go;
    int rounds;
};

static void *storm_main(void *arg)
{
    struct storm *s = arg;
    pthread_barrier_wait(s->go);
    for (int i = 0; i < s->rounds; i++) {
        platform_cancel *t = platform_cancel_new(s->root);
        atomic_int fired = 0;
        platform_cancel_waker w;
        bool registered = platform_cancel_add_waker(t, &w, count_wake, &fired);
        if (i % 3 == 0)
            platform_cancel_cancel(t);
        platform_cancel_remove_waker(&w);
        int after = atomic_load(&fired);
        assert_true(after <= 1);
        assert_true(registered || after == 0);
        if (i % 3 == 0 && registered)
            assert_int_equal(after, 1);
        platform_cancel_unref(t);
    }
    return NULL;
}

static void test_waker_storm_is_race_free(void **state)
{
    (void)state;
    enum { THREADS = 4 };
    platform_cancel *root = platform_cancel_new(NULL);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, THREADS);
    struct storm s = {root, &go, 2000};
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, storm_main, &s);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    platform_cancel_unref(root);
}

static void test_deep_tree_cancels_without_recursion(void **state)
{
    (void)state;
    enum { DEPTH = 100000 };
    platform_cancel **chain = malloc(DEPTH * sizeof *chain);
    chain[0] = platform_cancel_new(NULL);
    for (int i = 1; i < DEPTH; i++)
        chain[i] = platform_cancel_new(chain[i - 1]);
    platform_cancel_cancel(chain[0]);
    assert_true(platform_cancel_is_cancelled(chain[DEPTH - 1]));
    for (int i = 0; i < DEPTH; i++)
        platform_cancel_unref(chain[i]);
    free(chain);
}

static void test_virtual_clock_moves_only_when_told(void **state)
{
    (void)state;
    platform_virtual_clock vc;
    platform_virtual_clock_init(&vc, 1000);
    assert_int_equal(platform_clock_now(&vc.base), 1000);
    platform_virtual_clock_advance(&vc, 500);
    assert_int_equal(platform_clock_now(&vc.base), 1500);
    platform_virtual_clock_set(&vc, 42);
    assert_int_equal(platform_clock_now(&vc.base), 42);
    int64_t a = platform_clock_now(NULL);
    int64_t b = platform_clock_now(platform_clock_system());
    assert_true(b >= a);
}

static void test_deadline_helpers_saturate(void **state)
{
    (void)state;
    assert_int_equal(platform_deadline_after_ms(-1), PLATFORM_NO_DEADLINE);
    assert_int_equal(platform_deadline_after_ms(INT64_MAX), PLATFORM_NO_DEADLINE);
    int64_t now = platform_monotonic_ns();
    int64_t d = platform_deadline_after_ms(1000);
    assert_true(d >= now + 1000 * 1000000LL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancelling_a_node_cancels_its_subtree_only),
        cmocka_unit_test(test_wakers_of_every_cancelled_node_fire_once),
        cmocka_unit_test(test_waker_storm_is_race_free),
        cmocka_unit_test(test_deep_tree_cancels_without_recursion),
        cmocka_unit_test(test_virtual_clock_moves_only_when_told),
        cmocka_unit_test(test_deadline_helpers_saturate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
