/*
 * test_cache_checksum.c — cached bytes carry checksums (one per piece: block_sums.h): they are
 * recorded with the claims, for the last partial block and the edges of partial resources too,
 * whether the writer wrote in order or not; a piece damaged on disk is caught the first time it
 * is read, reported offline (KTH_ERR_CORRUPT) and dropped for a refetch online; a resumed
 * download checks the restored part of the block it completes before summing the block; an
 * index of schema 1 is migrated and its bytes get sums; readers racing over damaged pieces
 * while a writer refills them never get a wrong byte; a checked read never hands out a piece
 * another reader dropped after its caller saw it present.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>

#include "platform/sync.h"
#include "storage/resource_internal.h"
#include "test_cache_support.h"

#define URL  "https://media.example/album/track.flac"
#define KEY  "https://media.example/album/track.flac"
#define SEED 29u
#define B    STORAGE_BLOCK_SIZE

/* Opens the test's resource through a cache with the fixture's options, offline or not. */
static void open_res(struct fixture *f, bool offline, int flags, struct tc_handles *o)
{
    kth_cache_options opts = f->opts;
    opts.offline = offline;
    assert_int_equal(tc_open_handles(&opts, URL, KEY, flags, o, NULL, 0), KTH_OK);
}

/* The single data file of the cache. */
static char data_file[4096];

static int find_data_file(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_F && S_ISREG(sb->st_mode) && strstr(path, "/data/"))
        snprintf(data_file, sizeof data_file, "%s", path);
    return 0;
}

/* Damages the data file: flips the byte at `offset` (len 0) or zeroes [offset, offset + len). */
static void damage(struct fixture *f, uint64_t offset, size_t len)
{
    data_file[0] = '\0';
    nftw(f->dir, find_data_file, 16, FTW_PHYS);
    assert_true(data_file[0] != '\0');
    int fd = open(data_file, O_RDWR);
    assert_true(fd >= 0);
    uint8_t buf[4096];
    size_t n = len ? len : 1;
    assert_true(n <= sizeof buf);
    assert_int_equal(pread(fd, buf, n, (off_t)offset), (ssize_t)n);
    for (size_t i = 0; i < n; i++)
        buf[i] = len ? 0 : (uint8_t)~buf[i];
    assert_int_equal(pwrite(fd, buf, n, (off_t)offset), (ssize_t)n);
    close(fd);
}

/* One read_at; checks the bytes it hands out against the pattern. */
static kth_status read_one(storage_resource *r, uint64_t offset, size_t n, size_t *got)
{
    static uint8_t buf[4 * 65536], want[4 * 65536];
    assert_true(n <= sizeof buf);
    kth_status st = storage_resource_read_at(r, offset, buf, n, got);
    if (st == KTH_OK) {
        test_pattern_fill(SEED, offset, want, *got);
        assert_memory_equal(buf, want, *got);
    }
    return st;
}

/* A committed resource of `size` bytes written in order in chunks of `chunk` bytes. */
static void make_committed(struct fixture *f, uint64_t size, size_t chunk)
{
    struct tc_handles o;
    open_res(f, false, CACHE_OPEN_CREATE, &o);
    for (uint64_t at = 0; at < size; at += chunk)
        assert_int_equal(tc_write_pattern(o.res, SEED, at, at + chunk < size ? at + chunk : size),
                         KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, size), KTH_OK);
    tc_close_handles(&o);
}

static void test_a_flipped_byte_in_the_last_partial_block_is_caught_offline(void **state)
{
    struct fixture *f = *state;
    const uint64_t size = 3 * B + 5000;
    make_committed(f, size, 10000);
    damage(f, 3 * B + 4000, 0);

    struct tc_handles o;
    open_res(f, true, 0, &o);
    assert_true(o.info.committed);
    assert_false(o.info.repaired); /* damage is found by reading, not by opening */
    size_t got = 0;
    assert_int_equal(read_one(o.r, 0, 3 * B, &got), KTH_OK);
    assert_int_equal(got, 3 * B);
    /* A read across the damaged piece hands out what lies before it, then the error. */
    assert_int_equal(read_one(o.r, 3 * B - 100, 10000, &got), KTH_OK);
    assert_int_equal(got, 100);
    assert_int_equal(read_one(o.r, 3 * B, 100, &got), KTH_ERR_CORRUPT);
    assert_int_equal(got, 0);
    assert_int_equal(read_one(o.r, 3 * B + 4500, 100, &got), KTH_ERR_CORRUPT); /* every time */
    tc_close_handles(&o);
}

static void test_a_zeroed_run_is_dropped_online_and_filled_again(void **state)
{
    struct fixture *f = *state;
    const uint64_t size = 3 * B + 5000;
    make_committed(f, size, 10000);
    damage(f, B + 100, 1000);

    struct tc_handles o;
    open_res(f, false, 0, &o);
    size_t got = 0;
    assert_int_equal(read_one(o.r, 0, B, &got), KTH_OK);
    assert_int_equal(read_one(o.r, B, B, &got), KTH_ERR_RETRY);
    /* The damaged block left the resource, which waits for its writer again. */
    assert_int_equal(storage_resource_state(o.r), STORAGE_ACTIVE);
    storage_range gap;
    assert_true(storage_resource_first_gap(o.r, 0, size, &gap));
    assert_int_equal(gap.start, B);
    assert_int_equal(gap.end, 2 * B);
    uint64_t length = 0;
    assert_true(storage_resource_length(o.r, &length));
    assert_int_equal(length, size);
    /* The fetch refills it and completes the resource anew. */
    assert_int_equal(tc_write_pattern(o.res, SEED, B, 2 * B), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, size), KTH_OK);
    assert_int_equal(read_one(o.r, B, B, &got), KTH_OK);
    assert_int_equal(got, B);
    tc_close_handles(&o);

    /* Recorded complete again, with a sum for the new bytes. */
    open_res(f, true, 0, &o);
    assert_true(o.info.committed);
    uint64_t present = 0;
    assert_true(tc_present_bytes_match(o.r, SEED, &present));
    assert_int_equal(present, size);
    tc_close_handles(&o);
}

static void test_blocks_written_out_of_order_are_summed_by_reading_them_back(void **state)
{
    struct fixture *f = *state;
    const uint64_t size = 4 * B + 300;
    struct tc_handles o;
    open_res(f, false, CACHE_OPEN_CREATE, &o);
    /* Backwards, in chunks that never start a block at its first byte together with the rest. */
    for (uint64_t end = size; end > 0;) {
        uint64_t start = end > 7000 ? end - 7000 : 0;
        assert_int_equal(tc_write_pattern(o.res, SEED, start, end), KTH_OK);
        end = start;
    }
    assert_int_equal(cache_resource_commit(o.res, size), KTH_OK);
    tc_close_handles(&o);

    open_res(f, true, 0, &o);
    uint64_t present = 0;
    assert_true(tc_present_bytes_match(o.r, SEED, &present)); /* no false alarm */
    assert_int_equal(present, size);
    tc_close_handles(&o);

    damage(f, 2 * B + 17, 0);
    open_res(f, true, 0, &o);
    size_t got = 0;
    assert_int_equal(read_one(o.r, 2 * B, 4096, &got), KTH_ERR_CORRUPT);
    assert_int_equal(read_one(o.r, 4 * B, 300, &got), KTH_OK);
    tc_close_handles(&o);
}

static void test_a_partial_resource_claims_its_exact_ranges_and_checks_their_edges(void **state)
{
    struct fixture *f = *state;
    struct tc_handles o;
    open_res(f, false, CACHE_OPEN_CREATE, &o);
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 100000), KTH_OK);
    assert_int_equal(tc_write_pattern(o.res, SEED, 200000, 300000), KTH_OK);
    tc_close_handles(&o);

    open_res(f, true, 0, &o);
    assert_int_equal(o.info.present_bytes, 200000);
    assert_false(o.info.repaired);
    assert_true(tc_present_bytes_match(o.r, SEED, NULL));
    tc_close_handles(&o);

    /* The part of a block before a gap, and the part after one. */
    damage(f, 99999, 0);
    damage(f, 200001, 0);
    open_res(f, true, 0, &o);
    size_t got = 0;
    assert_int_equal(read_one(o.r, 0, 100000, &got), KTH_OK);
    assert_int_equal(got, B);
    assert_int_equal(read_one(o.r, B, 100, &got), KTH_ERR_CORRUPT);
    assert_int_equal(read_one(o.r, 200000, 100, &got), KTH_ERR_CORRUPT);
    assert_int_equal(read_one(o.r, 4 * B, 300000 - 4 * B, &got), KTH_OK);
    assert_int_equal(got, 300000 - 4 * B);
    tc_close_handles(&o);
}

static void test_a_resumed_download_sums_the_block_it_completes(void **state)
{
    struct fixture *f = *state;
    struct tc_handles o;
    open_res(f, false, CACHE_OPEN_CREATE, &o);
    assert_int_equal(cache_resource_set_length(o.res, 300000), KTH_OK);
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 100000), KTH_OK);
    tc_close_handles(&o); /* interrupted */

    open_res(f, false, CACHE_OPEN_CREATE, &o);
    storage_range gap;
    assert_true(storage_resource_first_gap(o.r, 0, 300000, &gap));
    assert_int_equal(gap.start, 100000); /* resumes where it stopped */
    assert_int_equal(tc_write_pattern(o.res, SEED, 100000, 300000), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, 300000), KTH_OK);
    tc_close_handles(&o);

    open_res(f, true, 0, &o);
    assert_true(o.info.committed);
    assert_true(tc_present_bytes_match(o.r, SEED, NULL));
    tc_close_handles(&o);

    /* The block [B, 2B) was half restored, half written: its sum covers both halves. */
    damage(f, 70000, 0);
    open_res(f, true, 0, &o);
    size_t got = 0;
    assert_int_equal(read_one(o.r, B, 100, &got), KTH_ERR_CORRUPT);
    tc_close_handles(&o);
}

static void test_a_resume_over_a_damaged_restored_part_fetches_that_part_again(void **state)
{
    struct fixture *f = *state;
    struct tc_handles o;
    open_res(f, false, CACHE_OPEN_CREATE, &o);
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 100000), KTH_OK);
    tc_close_handles(&o);
    damage(f, 70000, 0); /* in [B, 100000), which the resumed writer completes without reading */

    open_res(f, false, CACHE_OPEN_CREATE, &o);
    assert_int_equal(tc_write_pattern(o.res, SEED, 100000, 300000), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, 300000), KTH_OK);
    /* Summing the completed block found the damage first: the bad part is to be fetched again
     * instead of being blessed with a new sum. */
    assert_int_equal(storage_resource_state(o.r), STORAGE_ACTIVE);
    storage_range gap;
    assert_true(storage_resource_first_gap(o.r, 0, 300000, &gap));
    assert_int_equal(gap.start, B);
    assert_int_equal(gap.end, 100000);
    assert_int_equal(tc_write_pattern(o.res, SEED, B, 100000), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, 300000), KTH_OK);
    tc_close_handles(&o);

    open_res(f, true, 0, &o);
    assert_true(o.info.committed);
    uint64_t present = 0;
    assert_true(tc_present_bytes_match(o.r, SEED, &present));
    assert_int_equal(present, 300000);
    tc_close_handles(&o);
}

static void test_the_writer_rewriting_restored_blocks_is_not_damage(void **state)
{
    struct fixture *f = *state;
    struct tc_handles o;
    open_res(f, false, CACHE_OPEN_CREATE, &o);
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 100000), KTH_OK);
    tc_close_handles(&o);

    /* A segment fetch starts over from its first byte and rewrites what is there. */
    open_res(f, false, CACHE_OPEN_CREATE, &o);
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 150000), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, 150000), KTH_OK);
    assert_int_equal(storage_resource_state(o.r), STORAGE_COMMITTED);
    uint64_t present = 0;
    assert_true(tc_present_bytes_match(o.r, SEED, &present));
    assert_int_equal(present, 150000);
    tc_close_handles(&o);
}

/* Turns the cache's index back into schema 1 (no sums column). */
static void downgrade_index(struct fixture *f)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/index.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "ALTER TABLE resource DROP COLUMN sums;"
                                  "PRAGMA user_version = 1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
}

/* user_version, and whether the one resource row has sums. */
static int index_state(struct fixture *f, bool *has_sums)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/index.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version >= 2) {
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT sums FROM resource", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        *has_sums = sqlite3_column_type(st, 0) != SQLITE_NULL;
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return version;
}

static void test_an_index_of_schema_1_is_migrated_and_its_bytes_get_sums(void **state)
{
    struct fixture *f = *state;
    const uint64_t size = 2 * B + 999;
    make_committed(f, size, 65536);
    downgrade_index(f);

    /* Bytes cached before sums existed still play (as they did), and get their sums. */
    struct tc_handles o;
    open_res(f, true, 0, &o);
    assert_true(o.info.committed);
    assert_false(o.info.repaired);
    assert_true(tc_present_bytes_match(o.r, SEED, NULL));
    bool has_sums = false;
    assert_int_equal(index_state(f, &has_sums), 4);
    assert_false(has_sums);
    tc_close_handles(&o);
    assert_int_equal(index_state(f, &has_sums), 4);
    assert_true(has_sums);

    damage(f, 2 * B + 5, 0);
    open_res(f, true, 0, &o);
    size_t got = 0;
    assert_int_equal(read_one(o.r, 0, 2 * B, &got), KTH_OK);
    assert_int_equal(read_one(o.r, 2 * B, 999, &got), KTH_ERR_CORRUPT);
    tc_close_handles(&o);
}

static void test_malformed_sums_back_no_claim(void **state)
{
    struct fixture *f = *state;
    make_committed(f, 2 * B, 65536);
    char path[4200];
    snprintf(path, sizeof path, "%s/index.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE resource SET sums = x'0102030405'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    struct tc_handles o;
    open_res(f, true, 0, &o);
    assert_true(o.info.repaired);
    assert_false(o.info.committed);
    assert_int_equal(o.info.present_bytes, 0);
    tc_close_handles(&o);
}

/* ---- readers racing over damaged pieces while a writer refills them ---- */

enum { RACE_READERS = 4, RACE_BLOCKS = 16 };

struct race {
    struct tc_handles o;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int wakes;             /* readers that found a piece missing (the writer's work list) */
    int finished;          /* readers done */
    int wrong;             /* reads that handed out bytes differing from the pattern */
    int failures;          /* reads or waits with another outcome than expected */
    int first_read_status; /* the first unexpected read status, 0 when none */
    int first_wait_result; /* the first unexpected wait result (+1), 0 when none */
    uint64_t first_failure_at;
};

static void *race_reader(void *arg)
{
    struct race *rc = arg;
    static _Thread_local uint8_t buf[3 * 65536 / 2], want[3 * 65536 / 2];
    uint64_t size = RACE_BLOCKS * B;
    /* 1.5-block reads: every read spans pieces partly, so edges go through the scratch path. */
    for (uint64_t pos = 0, rounds = 0; pos < size && rounds < 10000; rounds++) {
        size_t got = 0;
        size_t n = pos + sizeof buf <= size ? sizeof buf : (size_t)(size - pos);
        kth_status st = storage_resource_read_at(rc->o.r, pos, buf, n, &got);
        if (st == KTH_OK) {
            test_pattern_fill(SEED, pos, want, got);
            if (memcmp(buf, want, got) != 0) {
                pthread_mutex_lock(&rc->lock);
                rc->wrong++;
                pthread_mutex_unlock(&rc->lock);
            }
            pos += got;
            continue;
        }
        pthread_mutex_lock(&rc->lock);
        rc->wakes++;
        rc->failures += st != KTH_ERR_RETRY;
        if (st != KTH_ERR_RETRY && !rc->first_read_status && !rc->first_wait_result) {
            rc->first_read_status = st;
            rc->first_failure_at = pos;
        }
        pthread_cond_broadcast(&rc->cond);
        pthread_mutex_unlock(&rc->lock);
        if (st != KTH_ERR_RETRY)
            break;
        storage_wait w = storage_resource_wait_range(rc->o.r, pos, pos + 1,
                                                     platform_deadline_after_ms(20000), NULL, NULL);
        if (w != STORAGE_WAIT_READY) {
            pthread_mutex_lock(&rc->lock);
            rc->failures++;
            if (!rc->first_read_status && !rc->first_wait_result) {
                rc->first_wait_result = (int)w + 1;
                rc->first_failure_at = pos;
            }
            pthread_mutex_unlock(&rc->lock);
            break;
        }
    }
    pthread_mutex_lock(&rc->lock);
    rc->finished++;
    pthread_cond_broadcast(&rc->cond);
    pthread_mutex_unlock(&rc->lock);
    return NULL;
}

static void test_concurrent_readers_never_see_damaged_bytes(void **state)
{
    struct fixture *f = *state;
    make_committed(f, RACE_BLOCKS * B, 65536);
    for (uint64_t b = 1; b < RACE_BLOCKS; b += 3)
        damage(f, b * B + 1000 * b, b % 2 ? 0 : 700);

    struct race rc;
    memset(&rc, 0, sizeof rc);
    pthread_mutex_init(&rc.lock, NULL);
    pthread_cond_init(&rc.cond, NULL);
    open_res(f, false, 0, &rc.o);
    pthread_t t[RACE_READERS];
    for (int i = 0; i < RACE_READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race_reader, &rc), 0);
    /* The writer: refills what readers found missing, as a fetch would. */
    pthread_mutex_lock(&rc.lock);
    int64_t deadline = platform_deadline_after_ms(30000);
    while (rc.finished < RACE_READERS && platform_monotonic_ns() < deadline) {
        if (rc.wakes == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1; /* a guard against a lost wake-up, not a pace */
            pthread_cond_timedwait(&rc.cond, &rc.lock, &ts);
            continue;
        }
        rc.wakes = 0;
        pthread_mutex_unlock(&rc.lock);
        storage_range gap;
        while (storage_resource_first_gap(rc.o.r, 0, RACE_BLOCKS * B, &gap))
            assert_int_equal(tc_write_pattern(rc.o.res, SEED, gap.start, gap.end), KTH_OK);
        /* KTH_ERR_STATE: a reader dropped another piece meanwhile; it asks again. */
        if (storage_resource_state(rc.o.r) == STORAGE_ACTIVE) {
            kth_status st = cache_resource_commit(rc.o.res, RACE_BLOCKS * B);
            assert_true(st == KTH_OK || st == KTH_ERR_STATE);
        }
        pthread_mutex_lock(&rc.lock);
    }
    int finished = rc.finished, wrong = rc.wrong, failures = rc.failures;
    pthread_mutex_unlock(&rc.lock);

    for (int i = 0; i < RACE_READERS; i++)
        pthread_join(t[i], NULL);
    if (failures)
        fail_msg("%d failures; the first at %llu: read status %d, wait result %d", failures,
                 (unsigned long long)rc.first_failure_at, rc.first_read_status,
                 rc.first_wait_result - 1);
    assert_int_equal(finished, RACE_READERS);
    assert_int_equal(wrong, 0);
    assert_int_equal(failures, 0);
    tc_close_handles(&rc.o);

    /* Every damaged piece was replaced: all of it checks out now. */
    open_res(f, true, 0, &rc.o);
    assert_true(rc.o.info.committed);
    uint64_t present = 0;
    assert_true(tc_present_bytes_match(rc.o.r, SEED, &present));
    assert_int_equal(present, RACE_BLOCKS * B);
    tc_close_handles(&rc.o);
    pthread_cond_destroy(&rc.cond);
    pthread_mutex_destroy(&rc.lock);
}

static void
test_a_checked_read_never_hands_out_a_piece_dropped_since_its_caller_looked(void **state)
{
    struct fixture *f = *state;
    make_committed(f, 3 * B, 65536);
    damage(f, B + 1000, 0);

    struct tc_handles o;
    open_res(f, false, 0, &o);
    size_t got = 0;
    /* Another reader finds block 1 damaged and drops it... */
    assert_int_equal(read_one(o.r, B, B, &got), KTH_ERR_RETRY);
    /* ...while this one had seen [0, 1.5 blocks) present and goes on to check what it reads:
     * block 0 is handed out, the dropped bytes are not. */
    static uint8_t buf[B + B / 2], want[B + B / 2];
    assert_int_equal(storage_read_checked(o.r, 0, buf, sizeof buf, &got), KTH_OK);
    assert_int_equal(got, B);
    test_pattern_fill(SEED, 0, want, got);
    assert_memory_equal(buf, want, got);
    assert_int_equal(storage_read_checked(o.r, B, buf, 100, &got), KTH_ERR_RETRY);
    assert_int_equal(got, 0);
    tc_close_handles(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_flipped_byte_in_the_last_partial_block_is_caught_offline, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_a_zeroed_run_is_dropped_online_and_filled_again,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(
            test_blocks_written_out_of_order_are_summed_by_reading_them_back, tc_setup,
            tc_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_partial_resource_claims_its_exact_ranges_and_checks_their_edges, tc_setup,
            tc_teardown),
        cmocka_unit_test_setup_teardown(test_a_resumed_download_sums_the_block_it_completes,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_resume_over_a_damaged_restored_part_fetches_that_part_again, tc_setup,
            tc_teardown),
        cmocka_unit_test_setup_teardown(test_the_writer_rewriting_restored_blocks_is_not_damage,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(
            test_an_index_of_schema_1_is_migrated_and_its_bytes_get_sums, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_sums_back_no_claim, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_readers_never_see_damaged_bytes, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_checked_read_never_hands_out_a_piece_dropped_since_its_caller_looked, tc_setup,
            tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
