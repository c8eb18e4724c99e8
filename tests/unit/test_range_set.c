/*
 * test_range_set.c — the range-set algebra, checked by hand-picked cases and against a bitmap
 * model under random out-of-order, overlapping adds and removes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storage/range_set.h"

static void assert_ranges(const storage_range_set *s, const uint64_t *pairs, size_t n)
{
    assert_int_equal(s->count, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(s->v[i].start, pairs[2 * i]);
        assert_int_equal(s->v[i].end, pairs[2 * i + 1]);
    }
}

static void test_adjacent_and_overlapping_adds_merge(void **state)
{
    (void)state;
    storage_range_set s;
    storage_range_set_init(&s);
    assert_int_equal(storage_range_set_add(&s, 10, 20), KTH_OK);
    assert_int_equal(storage_range_set_add(&s, 30, 40), KTH_OK);
    assert_int_equal(storage_range_set_add(&s, 0, 5), KTH_OK);
    assert_ranges(&s, (uint64_t[]){0, 5, 10, 20, 30, 40}, 3);
    assert_int_equal(storage_range_set_add(&s, 20, 30), KTH_OK); /* adjacent on both sides */
    assert_ranges(&s, (uint64_t[]){0, 5, 10, 40}, 2);
    assert_int_equal(storage_range_set_add(&s, 3, 12), KTH_OK); /* overlaps both */
    assert_ranges(&s, (uint64_t[]){0, 40}, 1);
    assert_int_equal(storage_range_set_add(&s, 5, 5), KTH_OK); /* empty: no-op */
    assert_ranges(&s, (uint64_t[]){0, 40}, 1);
    assert_int_equal(storage_range_set_add(&s, 9, 3), KTH_ERR_INVALID_ARG);
    assert_int_equal(storage_range_set_total(&s), 40);
    storage_range_set_free(&s);
}

static void test_contains_run_end_and_gaps(void **state)
{
    (void)state;
    storage_range_set s;
    storage_range_set_init(&s);
    storage_range_set_add(&s, 100, 200);
    storage_range_set_add(&s, 300, 400);
    assert_true(storage_range_set_contains(&s, 100, 200));
    assert_true(storage_range_set_contains(&s, 150, 151));
    assert_false(storage_range_set_contains(&s, 99, 101));
    assert_false(storage_range_set_contains(&s, 150, 301));
    assert_true(storage_range_set_contains(&s, 7, 7)); /* empty range */
    assert_int_equal(storage_range_set_run_end(&s, 150), 200);
    assert_int_equal(storage_range_set_run_end(&s, 200), 200); /* absent byte */
    assert_int_equal(storage_range_set_run_end(&s, 99), 99);
    storage_range gap;
    assert_true(storage_range_set_first_gap(&s, 0, 1000, &gap));
    assert_int_equal(gap.start, 0);
    assert_int_equal(gap.end, 100);
    assert_true(storage_range_set_first_gap(&s, 120, 1000, &gap));
    assert_int_equal(gap.start, 200);
    assert_int_equal(gap.end, 300);
    assert_true(storage_range_set_first_gap(&s, 350, 1000, &gap));
    assert_int_equal(gap.start, 400);
    assert_int_equal(gap.end, 1000);
    assert_false(storage_range_set_first_gap(&s, 310, 390, &gap));
    storage_range_set_free(&s);
}

static void test_remove_splits_trims_and_drops(void **state)
{
    (void)state;
    storage_range_set s;
    storage_range_set_init(&s);
    storage_range_set_add(&s, 0, 100);
    assert_int_equal(storage_range_set_remove(&s, 40, 60), KTH_OK); /* split */
    assert_ranges(&s, (uint64_t[]){0, 40, 60, 100}, 2);
    storage_range_set_add(&s, 200, 300);
    assert_int_equal(storage_range_set_remove(&s, 30, 250), KTH_OK); /* trim, drop, trim */
    assert_ranges(&s, (uint64_t[]){0, 30, 250, 300}, 2);
    assert_int_equal(storage_range_set_remove(&s, 30, 250), KTH_OK); /* nothing there */
    assert_ranges(&s, (uint64_t[]){0, 30, 250, 300}, 2);
    assert_int_equal(storage_range_set_remove(&s, 0, 1000), KTH_OK);
    assert_int_equal(s.count, 0);
    storage_range_set_free(&s);
}

/* Random adds and removes (writes arriving out of order, overlapping) checked byte by byte
 * against a bitmap. Deterministic seed; bounded count. */
static void test_random_operations_match_bitmap_model(void **state)
{
    (void)state;
    enum { SPACE = 4096, ROUNDS = 4000 };
    unsigned char model[SPACE];
    memset(model, 0, sizeof model);
    storage_range_set s;
    storage_range_set_init(&s);
    unsigned seed = 12345;
    for (int round = 0; round < ROUNDS; round++) {
        seed = seed * 1103515245u + 12345u;
        uint64_t a = (seed >> 8) % SPACE;
        seed = seed * 1103515245u + 12345u;
        uint64_t len = (seed >> 8) % 200;
        uint64_t b = a + len > SPACE ? SPACE : a + len;
        bool add = (seed >> 4) % 3 != 0;
        if (add) {
            assert_int_equal(storage_range_set_add(&s, a, b), KTH_OK);
            memset(model + a, 1, (size_t)(b - a));
        } else {
            assert_int_equal(storage_range_set_remove(&s, a, b), KTH_OK);
            memset(model + a, 0, (size_t)(b - a));
        }
        /* Canonical form. */
        for (size_t i = 0; i + 1 < s.count; i++)
            assert_true(s.v[i].end < s.v[i + 1].start);
        for (size_t i = 0; i < s.count; i++)
            assert_true(s.v[i].start < s.v[i].end);
        if (round % 50 == 0) {
            for (uint64_t x = 0; x < SPACE; x++)
                assert_int_equal(storage_range_set_contains(&s, x, x + 1), model[x]);
        }
    }
    uint64_t total = 0;
    for (size_t x = 0; x < SPACE; x++)
        total += model[x];
    assert_int_equal(storage_range_set_total(&s), total);
    storage_range_set_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adjacent_and_overlapping_adds_merge),
        cmocka_unit_test(test_contains_run_end_and_gaps),
        cmocka_unit_test(test_remove_splits_trims_and_drops),
        cmocka_unit_test(test_random_operations_match_bitmap_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
