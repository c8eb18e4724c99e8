/*
 * test_crc32c.c — the CRC-32C of cached blocks: published check values, every implementation
 * this machine runs agreeing with the table on random lengths, offsets and starting values,
 * checksums extended piece by piece, and the pieces and their sums (block_sums.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storage/block_sums.h"
#include "storage/crc32c.h"

static void test_check_values(void **state)
{
    (void)state;
    /* The CRC catalogue's check value, and the iSCSI test vectors (RFC 3720, B.4). */
    assert_int_equal(storage_crc32c(0, "123456789", 9), 0xE3069283u);
    uint8_t v[32];
    memset(v, 0, sizeof v);
    assert_int_equal(storage_crc32c(0, v, sizeof v), 0x8A9136AAu);
    memset(v, 0xff, sizeof v);
    assert_int_equal(storage_crc32c(0, v, sizeof v), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        v[i] = (uint8_t)i;
    assert_int_equal(storage_crc32c(0, v, sizeof v), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        v[i] = (uint8_t)(31 - i);
    assert_int_equal(storage_crc32c(0, v, sizeof v), 0x113FDB5Cu);
    assert_int_equal(storage_crc32c(0x1234u, NULL, 0), 0x1234u);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_every_implementation_agrees_with_the_table(void **state)
{
    (void)state;
    enum { SIZE = 300 * 1024 };
    uint8_t *buf = malloc(SIZE);
    assert_non_null(buf);
    for (size_t i = 0; i < SIZE; i++)
        buf[i] = (uint8_t)next();
    size_t impls = storage_crc32c_impl_count();
    assert_true(impls >= 1);
    assert_string_equal(storage_crc32c_impl_name(0), "table");
    for (int round = 0; round < 3000; round++) {
        /* Short lengths around the fold thresholds, and whole blocks and more. */
        size_t n = round < 1200 ? (size_t)round : (size_t)(next() % (SIZE - 64));
        size_t off = (size_t)(next() % 64);
        uint32_t init = round % 3 == 0 ? 0 : (uint32_t)next();
        uint32_t want = storage_crc32c_with(0, init, buf + off, n);
        for (size_t i = 1; i < impls; i++)
            if (storage_crc32c_with(i, init, buf + off, n) != want)
                fail_msg("%s differs from the table at length %zu, offset %zu",
                         storage_crc32c_impl_name(i), n, off);
        assert_int_equal(storage_crc32c(init, buf + off, n), want);
    }
    free(buf);
}

static void test_extending_piece_by_piece_equals_one_pass(void **state)
{
    (void)state;
    enum { SIZE = 200 * 1024 };
    uint8_t *buf = malloc(SIZE);
    assert_non_null(buf);
    for (size_t i = 0; i < SIZE; i++)
        buf[i] = (uint8_t)next();
    uint32_t whole = storage_crc32c(0, buf, SIZE);
    for (int round = 0; round < 50; round++) {
        uint32_t crc = 0;
        for (size_t at = 0; at < SIZE;) {
            size_t n = 1 + (size_t)(next() % 20000);
            if (n > SIZE - at)
                n = SIZE - at;
            crc = storage_crc32c(crc, buf + at, n);
            at += n;
        }
        assert_int_equal(crc, whole);
    }
    free(buf);
}

static void test_pieces_cut_ranges_at_block_boundaries(void **state)
{
    (void)state;
    const uint64_t B = STORAGE_BLOCK_SIZE;
    storage_range_set present;
    storage_range_set_init(&present);
    assert_int_equal(storage_range_set_add(&present, 100, 2 * B + 100), KTH_OK);
    assert_int_equal(storage_range_set_add(&present, 3 * B, 4 * B), KTH_OK);
    const storage_range want[] = {{100, B}, {B, 2 * B}, {2 * B, 2 * B + 100}, {3 * B, 4 * B}};
    storage_piece_iter it;
    storage_piece_iter_init(&it, &present);
    storage_range p;
    size_t n = 0;
    while (storage_piece_next(&it, &p)) {
        assert_true(n < 4);
        assert_int_equal(p.start, want[n].start);
        assert_int_equal(p.end, want[n].end);
        n++;
    }
    assert_int_equal(n, 4);

    storage_range e;
    assert_true(storage_block_extent(2, true, 2 * B + 100, &e));
    assert_int_equal(e.start, 2 * B);
    assert_int_equal(e.end, 2 * B + 100);
    assert_false(storage_block_extent(3, true, 2 * B + 100, &e));
    storage_range_set_free(&present);
}

static void test_sums_of_whole_blocks_and_parts(void **state)
{
    (void)state;
    const uint64_t B = STORAGE_BLOCK_SIZE;
    storage_sums sums;
    storage_sums_init(&sums);
    assert_int_equal(storage_sums_set(&sums, B, 2 * B, 11), KTH_OK);
    assert_int_equal(storage_sums_set(&sums, 100, B, 10), KTH_OK);
    assert_int_equal(storage_sums_set(&sums, 2 * B, 2 * B + 50, 12), KTH_OK);
    assert_int_equal(storage_sums_set(&sums, B - 1, B + 1, 0), KTH_ERR_INVALID_ARG);
    uint32_t crc = 0;
    assert_true(storage_sums_get(&sums, B, 2 * B, &crc));
    assert_int_equal(crc, 11);
    assert_true(storage_sums_get(&sums, 100, B, &crc));
    assert_int_equal(crc, 10);
    assert_false(storage_sums_get(&sums, 100, B - 1, NULL)); /* exact pieces only */

    /* A part that grew replaces the smaller one; a whole block replaces its parts. */
    assert_int_equal(storage_sums_set(&sums, 2 * B, 2 * B + 100, 13), KTH_OK);
    assert_false(storage_sums_get(&sums, 2 * B, 2 * B + 50, NULL));
    assert_true(storage_sums_get(&sums, 2 * B, 2 * B + 100, &crc));
    assert_int_equal(crc, 13);
    assert_int_equal(storage_sums_set(&sums, 0, B, 9), KTH_OK);
    assert_false(storage_sums_get(&sums, 100, B, NULL));
    assert_int_equal(sums.part_count, 1);

    /* Only pieces that have a sum are covered. */
    storage_range_set present, covered;
    storage_range_set_init(&present);
    storage_range_set_init(&covered);
    assert_int_equal(storage_range_set_add(&present, 0, 3 * B), KTH_OK);
    assert_int_equal(storage_sums_covered(&sums, &present, &covered), KTH_OK);
    assert_int_equal(covered.count, 1);
    assert_int_equal(covered.v[0].start, 0);
    assert_int_equal(covered.v[0].end, 2 * B);

    storage_sums copy;
    storage_sums_init(&copy);
    assert_int_equal(storage_sums_copy(&copy, &sums), KTH_OK);
    storage_sums_clear(&sums, B, 2 * B);
    storage_sums_clear(&sums, 2 * B, 2 * B + 100);
    assert_false(storage_sums_get(&sums, B, 2 * B, NULL));
    assert_int_equal(sums.part_count, 0);
    assert_true(storage_sums_get(&copy, B, 2 * B, NULL));
    assert_true(storage_sums_get(&copy, 2 * B, 2 * B + 100, NULL));
    storage_range_set_free(&covered);
    storage_range_set_free(&present);
    storage_sums_free(&sums);
    storage_sums_free(&copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_every_implementation_agrees_with_the_table),
        cmocka_unit_test(test_extending_piece_by_piece_equals_one_pass),
        cmocka_unit_test(test_pieces_cut_ranges_at_block_boundaries),
        cmocka_unit_test(test_sums_of_whole_blocks_and_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
