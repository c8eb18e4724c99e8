/*
 * test_cache_faults.c — a cache whose disk fails: full (ENOSPC), a data file not permitted
 * (EACCES), a failing device (EIO on read, on sync). Each failure is a clear KTH_ERR_IO naming
 * its cause, the index never claims bytes the disk did not take, and once the disk recovers the
 * cache goes on with exact bytes. The failures come from the storage layer's fault hook, so
 * they do not depend on the machine (a test run as root ignores file permissions).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cache/cache.h"
#include "storage/faults.h"
#include "storage/resource.h"
#include "test_cache_support.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#define URL  "https://example.com/book.mp3"
#define KEY  "file"
#define SEED 11u

/* Which operation fails, with which errno, from which call of it on (1-based), and how often
 * it was asked. */
struct faults {
    storage_io_op op;
    int errnum;
    atomic_int from;
    atomic_int calls;
};

static int fail_op(void *user, storage_io_op op, const char *path)
{
    (void)path;
    struct faults *f = user;
    if (op != f->op)
        return 0;
    int n = atomic_fetch_add(&f->calls, 1) + 1;
    int from = atomic_load(&f->from);
    return from > 0 && n >= from ? f->errnum : 0;
}

static struct faults faults; /* static: the hook's user stays valid for good */

static void inject(storage_io_op op, int errnum, int from)
{
    faults.op = op;
    faults.errnum = errnum;
    atomic_store(&faults.calls, 0);
    atomic_store(&faults.from, from);
    storage_set_fault_hook(fail_op, &faults);
}

static void heal(void)
{
    atomic_store(&faults.from, 0);
}

static int setup(void **state)
{
    return tc_setup(state);
}

static int teardown(void **state)
{
    storage_set_fault_hook(NULL, NULL);
    return tc_teardown(state);
}

/* A full disk fails the write with its cause named; nothing it did not take is claimed, and
 * once there is room again the resource completes with the right bytes. */
static void test_a_full_disk_fails_the_write_and_claims_nothing_more(void **state)
{
    struct fixture *f = *state;
    struct tc_handles h;
    char err[512] = "";
    assert_int_equal(tc_open_handles(&f->opts, URL, KEY, CACHE_OPEN_CREATE, &h, err, sizeof err),
                     KTH_OK);
    assert_int_equal(tc_write_pattern(h.res, SEED, 0, 200000), KTH_OK);
    assert_int_equal(cache_resource_checkpoint(h.res), KTH_OK);
    inject(STORAGE_IO_WRITE, ENOSPC, 1);
    assert_int_equal(tc_write_pattern(h.res, SEED, 200000, 400000), KTH_ERR_IO);
    cache_resource_last_error(h.res, err, sizeof err);
    printf("%s\n", err);
    assert_non_null(strstr(err, strerror(ENOSPC)));
    assert_int_equal(cache_resource_checkpoint(h.res), KTH_OK);
    tc_close_handles(&h);

    /* What the index vouches for is the part the disk took. */
    assert_int_equal(tc_open_handles(&f->opts, URL, KEY, 0, &h, err, sizeof err), KTH_OK);
    assert_int_equal(h.info.present_bytes, 200000);
    heal();
    assert_int_equal(tc_write_pattern(h.res, SEED, 200000, 400000), KTH_OK);
    assert_int_equal(cache_resource_commit(h.res, 400000), KTH_OK);
    storage_resource *r = cache_resource_storage(h.res);
    uint64_t present = 0;
    assert_true(tc_present_bytes_match(r, SEED, &present));
    assert_int_equal(present, 400000);
    storage_resource_unref(r);
    tc_close_handles(&h);
}

/* A data file that may not be created is a clear failure naming the cause, not a crash or an
 * empty resource; the next open, permitted, creates it. */
static void test_a_data_file_not_permitted_fails_the_open(void **state)
{
    struct fixture *f = *state;
    struct tc_handles h;
    char err[512] = "";
    inject(STORAGE_IO_OPEN, EACCES, 1);
    assert_int_equal(tc_open_handles(&f->opts, URL, KEY, CACHE_OPEN_CREATE, &h, err, sizeof err),
                     KTH_ERR_IO);
    printf("%s\n", err);
    assert_null(h.res);
    assert_non_null(strstr(err, strerror(EACCES)));
    tc_close_handles(&h);
    heal();
    assert_int_equal(tc_open_handles(&f->opts, URL, KEY, CACHE_OPEN_CREATE, &h, err, sizeof err),
                     KTH_OK);
    assert_int_equal(tc_write_pattern(h.res, SEED, 0, 1000), KTH_OK);
    assert_int_equal(cache_resource_commit(h.res, 1000), KTH_OK);
    tc_close_handles(&h);
}

/* A device that fails a read is KTH_ERR_IO for that read, never other bytes. */
static void test_a_failing_read_is_an_error_not_bytes(void **state)
{
    struct fixture *f = *state;
    struct tc_handles h;
    char err[512] = "";
    assert_int_equal(tc_open_handles(&f->opts, URL, KEY, CACHE_OPEN_CREATE, &h, err, sizeof err),
                     KTH_OK);
    assert_int_equal(tc_write_pattern(h.res, SEED, 0, 100000), KTH_OK);
    assert_int_equal(cache_resource_commit(h.res, 100000), KTH_OK);
    storage_resource *r = cache_resource_storage(h.res);
    inject(STORAGE_IO_READ, EIO, 1);
    uint8_t buf[4096];
    memset(buf, 0xee, sizeof buf);
    size_t got = 0;
    assert_int_equal(storage_resource_read_at(r, 5000, buf, sizeof buf, &got), KTH_ERR_IO);
    assert_int_equal(got, 0);
    assert_int_equal(storage_last_errno(), EIO);
    heal();
    uint8_t want[4096];
    assert_int_equal(storage_resource_read_at(r, 5000, buf, sizeof buf, &got), KTH_OK);
    test_pattern_fill(SEED, 5000, want, got);
    assert_memory_equal(buf, want, got);
    storage_resource_unref(r);
    tc_close_handles(&h);
}

/* A durable cache whose sync fails does not record the bytes as kept: they are written again
 * by the next fetch. */
static void test_a_failing_sync_records_nothing(void **state)
{
    struct fixture *f = *state;
    kth_cache_options o = f->opts;
    o.no_sync = false;
    struct tc_handles h;
    char err[512] = "";
    assert_int_equal(tc_open_handles(&o, URL, KEY, CACHE_OPEN_CREATE, &h, err, sizeof err), KTH_OK);
    assert_int_equal(tc_write_pattern(h.res, SEED, 0, 50000), KTH_OK);
    inject(STORAGE_IO_SYNC, EIO, 1);
    assert_int_equal(cache_resource_commit(h.res, 50000), KTH_ERR_IO);
    cache_resource_last_error(h.res, err, sizeof err);
    printf("%s\n", err);
    assert_non_null(strstr(err, strerror(EIO)));
    tc_close_handles(&h); /* its checkpoint cannot sync either */
    heal();
    assert_int_equal(tc_open_handles(&f->opts, URL, KEY, 0, &h, err, sizeof err), KTH_OK);
    assert_false(h.info.committed);
    tc_close_handles(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_full_disk_fails_the_write_and_claims_nothing_more,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_data_file_not_permitted_fails_the_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_failing_read_is_an_error_not_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failing_sync_records_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
