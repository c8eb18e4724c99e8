/*
 * test_resource.c — storage resources: exact availability under out-of-order writes, the
 * writer's commit/fail/cancel, and every way a blocked wait_range ends (bytes, end, failure,
 * cancel token, resource cancel, interrupt epoch, deadline), for file and memory backends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>

#include "platform/sync.h"
#include "storage/resource.h"
#include "test_support.h"

enum backend { FILE_BACKED, MEMORY_BACKED };

struct fixture {
    char *dir;
    storage_resource *r;
};

static storage_resource *make_resource(struct fixture *f, enum backend b)
{
    storage_resource *r = NULL;
    if (b == FILE_BACKED) {
        char path[4096];
        snprintf(path, sizeof path, "%s/data", f->dir);
        char err[256];
        assert_int_equal(
            storage_resource_open_file(path, STORAGE_FILE_TRUNCATE, &r, err, sizeof err), KTH_OK);
    } else {
        assert_int_equal(storage_resource_new_memory(0, &r), KTH_OK);
    }
    return r;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = test_make_dir();
    *state = f;
    return f->dir ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    storage_resource_unref(f->r);
    test_remove_dir(f->dir);
    free(f);
    return 0;
}

static void out_of_order_writes(void **state, enum backend b)
{
    struct fixture *f = *state;
    storage_resource *r = f->r = make_resource(f, b);
    enum { SIZE = 200000 };
    uint8_t *data = malloc(SIZE);
    test_pattern_fill(7, 0, data, SIZE);
    /* Write pieces in a scrambled order with overlaps. */
    const uint64_t pieces[][2] = {{150000, 200000}, {0, 1000}, {500, 70000}, {69000, 151000}};
    uint8_t buf[4096];
    size_t got;
    for (size_t i = 0; i < 4; i++) {
        assert_false(storage_resource_contains(r, 0, SIZE));
        assert_int_equal(storage_resource_write_at(r, pieces[i][0], data + pieces[i][0],
                                                   (size_t)(pieces[i][1] - pieces[i][0])),
                         KTH_OK);
        assert_true(storage_resource_contains(r, pieces[i][0], pieces[i][1]));
        if (i == 1) {
            /* Between the two islands nothing can be read. */
            assert_int_equal(storage_resource_read_at(r, 1000, buf, sizeof buf, &got),
                             KTH_ERR_RETRY);
            assert_int_equal(got, 0);
            /* A read stops at the end of the present run. */
            assert_int_equal(storage_resource_read_at(r, 900, buf, sizeof buf, &got), KTH_OK);
            assert_int_equal(got, 100);
            assert_memory_equal(buf, data + 900, 100);
        }
    }
    assert_true(storage_resource_contains(r, 0, SIZE));
    assert_int_equal(storage_resource_present_bytes(r), SIZE);
    assert_int_equal(storage_resource_commit(r, SIZE), KTH_OK);
    for (uint64_t off = 0; off < SIZE; off += got) {
        assert_int_equal(storage_resource_read_at(r, off, buf, sizeof buf, &got), KTH_OK);
        assert_true(got > 0);
        assert_memory_equal(buf, data + off, got);
    }
    /* Proven end: read at the length gives 0 bytes and OK. */
    assert_int_equal(storage_resource_read_at(r, SIZE, buf, sizeof buf, &got), KTH_OK);
    assert_int_equal(got, 0);
    free(data);
}

static void test_file_out_of_order_overlapping_writes_read_back_exactly(void **state)
{
    out_of_order_writes(state, FILE_BACKED);
}

static void test_memory_out_of_order_overlapping_writes_read_back_exactly(void **state)
{
    out_of_order_writes(state, MEMORY_BACKED);
}

static void test_commit_requires_every_byte_and_matching_length(void **state)
{
    struct fixture *f = *state;
    storage_resource *r = f->r = make_resource(f, MEMORY_BACKED);
    uint8_t data[100];
    test_pattern_fill(1, 0, data, sizeof data);
    assert_int_equal(storage_resource_write_at(r, 0, data, 50), KTH_OK);
    assert_int_equal(storage_resource_write_at(r, 60, data + 60, 40), KTH_OK);
    assert_int_equal(storage_resource_commit(r, 100), KTH_ERR_STATE); /* hole at 50..60 */
    assert_int_equal(storage_resource_commit(r, 50), KTH_ERR_STATE);  /* bytes past 50 */
    assert_int_equal(storage_resource_state(r), STORAGE_ACTIVE);
    assert_int_equal(storage_resource_set_length(r, 100), KTH_OK);
    assert_int_equal(storage_resource_set_length(r, 99), KTH_ERR_STATE);
    assert_int_equal(storage_resource_write_at(r, 90, data, 20), KTH_ERR_OUT_OF_RANGE);
    assert_int_equal(storage_resource_write_at(r, 50, data + 50, 10), KTH_OK);
    assert_int_equal(storage_resource_commit(r, 101), KTH_ERR_STATE);
    assert_int_equal(storage_resource_commit(r, 100), KTH_OK);
    assert_int_equal(storage_resource_state(r), STORAGE_COMMITTED);
    assert_int_equal(storage_resource_write_at(r, 0, data, 1), KTH_ERR_STATE);
    assert_int_equal(storage_resource_write_at(r, UINT64_MAX - 1, data, 5), KTH_ERR_OUT_OF_RANGE);
}

static void test_memory_bound_is_enforced(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(storage_resource_new_memory(1000, &f->r), KTH_OK);
    uint8_t data[600] = {0};
    assert_int_equal(storage_resource_write_at(f->r, 0, data, 600), KTH_OK);
    assert_int_equal(storage_resource_write_at(f->r, 600, data, 600), KTH_ERR_LIMIT);
}

static void test_known_length_is_not_eof_until_commit(void **state)
{
    struct fixture *f = *state;
    storage_resource *r = f->r = make_resource(f, FILE_BACKED);
    uint8_t data[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    assert_int_equal(storage_resource_set_length(r, 10), KTH_OK);
    assert_int_equal(storage_resource_write_at(r, 0, data, 10), KTH_OK);
    /* All bytes present and the length declared, but nobody committed: no EOF yet. */
    assert_int_equal(
        storage_resource_wait_range(r, 10, 11, platform_deadline_after_ms(20), NULL, NULL),
        STORAGE_WAIT_TIMEOUT);
    uint8_t buf[4];
    size_t got;
    assert_int_equal(storage_resource_read_at(r, 10, buf, sizeof buf, &got), KTH_ERR_RETRY);
    assert_int_equal(storage_resource_commit(r, 10), KTH_OK);
    assert_int_equal(storage_resource_wait_range(r, 10, 11, PLATFORM_NO_DEADLINE, NULL, NULL),
                     STORAGE_WAIT_EOF);
    /* A range straddling the end is ready once committed (clipped to the length). */
    assert_int_equal(storage_resource_wait_range(r, 5, 50, PLATFORM_NO_DEADLINE, NULL, NULL),
                     STORAGE_WAIT_READY);
}

static void test_deadline_expiry_returns_timeout(void **state)
{
    struct fixture *f = *state;
    storage_resource *r = f->r = make_resource(f, MEMORY_BACKED);
    int64_t t0 = test_now_ms();
    assert_int_equal(
        storage_resource_wait_range(r, 0, 1, platform_deadline_after_ms(60), NULL, NULL),
        STORAGE_WAIT_TIMEOUT);
    int64_t elapsed = test_now_ms() - t0;
    assert_true(elapsed >= 59);
    assert_true(elapsed < 5000);
    assert_int_equal(storage_resource_wait_length(r, platform_deadline_after_ms(10), NULL, NULL),
                     STORAGE_WAIT_TIMEOUT);
}

/* ---- threaded: one waiter blocked while another thread acts ---- */

struct waiter {
    storage_resource *r;
    uint64_t start, end;
    platform_cancel *cancel;
    storage_interrupt *interrupt;
    pthread_barrier_t *ready;
    storage_wait result;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    pthread_barrier_wait(w->ready);
    /* The deadline only guards the test against a hang. */
    w->result = storage_resource_wait_range(
        w->r, w->start, w->end, platform_deadline_after_ms(10000), w->cancel, w->interrupt);
    return NULL;
}

enum action {
    WRITE_RANGE,
    COMMIT_SHORT,
    FAIL,
    CANCEL_RESOURCE,
    CANCEL_TOKEN,
    CANCEL_PARENT,
    MOVE_EPOCH,
    MOVE_OTHER_EPOCH
};

static storage_wait wait_while(struct fixture *f, enum action act)
{
    storage_resource *r = f->r = make_resource(f, FILE_BACKED);
    platform_cancel *parent = platform_cancel_new(NULL);
    platform_cancel *token = platform_cancel_new(parent);
    _Atomic uint64_t epoch = 3, other = 7;
    storage_interrupt in = {.epoch = &epoch, .seen = 3, .other_epoch = &other, .other_seen = 7};
    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, 2);
    struct waiter w = {r, 100, 200, token, &in, &ready, STORAGE_WAIT_TIMEOUT};
    pthread_t t;
    pthread_create(&t, NULL, waiter_main, &w);
    pthread_barrier_wait(&ready);
    int64_t t0 = test_now_ms();
    uint8_t data[100] = {0};
    switch (act) {
    case WRITE_RANGE:
        /* Two writes: the first leaves a hole, so only the second completes the range. */
        storage_resource_write_at(r, 100, data, 50);
        storage_resource_write_at(r, 150, data, 50);
        break;
    case COMMIT_SHORT:
        storage_resource_write_at(r, 0, data, 50);
        storage_resource_commit(r, 50);
        break;
    case FAIL:
        storage_resource_fail(r, KTH_ERR_HTTP, "GET http://127.0.0.1/x: HTTP 404");
        break;
    case CANCEL_RESOURCE:
        storage_resource_cancel(r);
        break;
    case CANCEL_TOKEN:
        platform_cancel_cancel(token);
        break;
    case CANCEL_PARENT:
        platform_cancel_cancel(parent);
        break;
    case MOVE_EPOCH:
        atomic_fetch_add(&epoch, 1);
        storage_resource_wake_waiters(r);
        break;
    case MOVE_OTHER_EPOCH:
        atomic_fetch_add(&other, 1);
        storage_resource_wake_waiters(r);
        break;
    }
    pthread_join(t, NULL);
    /* Every one of these ends the wait at once, far from the 10 s guard. */
    assert_true(test_now_ms() - t0 < 5000);
    pthread_barrier_destroy(&ready);
    platform_cancel_unref(token);
    platform_cancel_unref(parent);
    return w.result;
}

static void test_wait_ends_when_writer_completes_range(void **state)
{
    assert_int_equal(wait_while(*state, WRITE_RANGE), STORAGE_WAIT_READY);
}

static void test_wait_ends_with_eof_when_commit_ends_before_range(void **state)
{
    assert_int_equal(wait_while(*state, COMMIT_SHORT), STORAGE_WAIT_EOF);
}

static void test_wait_ends_with_failed_and_message(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(wait_while(f, FAIL), STORAGE_WAIT_FAILED);
    char msg[128];
    assert_int_equal(storage_resource_error(f->r, msg, sizeof msg), KTH_ERR_HTTP);
    assert_string_equal(msg, "GET http://127.0.0.1/x: HTTP 404");
}

static void test_wait_ends_when_resource_cancelled(void **state)
{
    assert_int_equal(wait_while(*state, CANCEL_RESOURCE), STORAGE_WAIT_CANCELLED);
}

static void test_wait_ends_when_waiter_token_cancelled(void **state)
{
    assert_int_equal(wait_while(*state, CANCEL_TOKEN), STORAGE_WAIT_CANCELLED);
}

static void test_wait_ends_when_ancestor_token_cancelled(void **state)
{
    assert_int_equal(wait_while(*state, CANCEL_PARENT), STORAGE_WAIT_CANCELLED);
}

static void test_wait_ends_when_seek_epoch_moves(void **state)
{
    assert_int_equal(wait_while(*state, MOVE_EPOCH), STORAGE_WAIT_INTERRUPTED);
}

/* The source's own epoch (an HLS session that failed while its reader waits on a resource
 * another stream is still writing) ends the wait the same way. */
static void test_wait_ends_when_the_other_epoch_moves(void **state)
{
    assert_int_equal(wait_while(*state, MOVE_OTHER_EPOCH), STORAGE_WAIT_INTERRUPTED);
}

static void test_failed_resource_keeps_present_bytes_readable(void **state)
{
    struct fixture *f = *state;
    storage_resource *r = f->r = make_resource(f, MEMORY_BACKED);
    uint8_t data[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    storage_resource_write_at(r, 0, data, 10);
    storage_resource_fail(r, KTH_ERR_NETWORK, NULL);
    storage_resource_fail(r, KTH_ERR_IO, "second failure is ignored");
    assert_int_equal(storage_resource_wait_range(r, 0, 10, PLATFORM_NO_DEADLINE, NULL, NULL),
                     STORAGE_WAIT_READY);
    assert_int_equal(storage_resource_wait_range(r, 5, 11, PLATFORM_NO_DEADLINE, NULL, NULL),
                     STORAGE_WAIT_FAILED);
    uint8_t buf[10];
    size_t got;
    assert_int_equal(storage_resource_read_at(r, 0, buf, 10, &got), KTH_OK);
    assert_memory_equal(buf, data, 10);
    /* Asking for nothing is an error, never a zero count that would read as EOF. */
    assert_int_equal(storage_resource_read_at(r, 0, buf, 0, &got), KTH_ERR_INVALID_ARG);
    assert_int_equal(got, 0);
    assert_int_equal(storage_resource_error(r, NULL, 0), KTH_ERR_NETWORK);
}

/* A slow writer and a reader that follows it closely, blocking on every chunk it reaches
 * first; every byte must come out exactly. */
struct stream_pair {
    storage_resource *r;
    uint64_t size;
    size_t chunk;
};

static void *slow_writer_main(void *arg)
{
    struct stream_pair *p = arg;
    uint8_t *buf = malloc(p->chunk);
    for (uint64_t off = 0; off < p->size; off += p->chunk) {
        size_t k = p->size - off < p->chunk ? (size_t)(p->size - off) : p->chunk;
        test_pattern_fill(99, off, buf, k);
        storage_resource_write_at(p->r, off, buf, k);
        struct timespec pause = {0, 200000}; /* 0.2 ms: the writer is slower than the reader */
        nanosleep(&pause, NULL);
    }
    storage_resource_commit(p->r, p->size);
    free(buf);
    return NULL;
}

static void test_reader_follows_slow_writer_byte_exact(void **state)
{
    struct fixture *f = *state;
    for (int b = FILE_BACKED; b <= MEMORY_BACKED; b++) {
        storage_resource_unref(f->r);
        storage_resource *r = f->r = make_resource(f, (enum backend)b);
        struct stream_pair p = {r, 3 * 1000 * 1000 + 17, 7919};
        pthread_t t;
        pthread_create(&t, NULL, slow_writer_main, &p);
        uint8_t buf[10000], expect[10000];
        uint64_t off = 0;
        for (;;) {
            storage_wait w = storage_resource_wait_range(
                r, off, off + 1, platform_deadline_after_ms(10000), NULL, NULL);
            if (w == STORAGE_WAIT_EOF)
                break;
            assert_int_equal(w, STORAGE_WAIT_READY);
            size_t got;
            assert_int_equal(storage_resource_read_at(r, off, buf, sizeof buf, &got), KTH_OK);
            assert_true(got > 0);
            test_pattern_fill(99, off, expect, got);
            assert_memory_equal(buf, expect, got);
            off += got;
        }
        assert_int_equal(off, p.size);
        pthread_join(t, NULL);
    }
}

static void test_open_complete_file_reports_missing_path(void **state)
{
    (void)state;
    storage_resource *r = NULL;
    char err[256];
    assert_int_equal(
        storage_resource_open_complete_file("/nonexistent/kithara/file", &r, err, sizeof err),
        KTH_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "/nonexistent/kithara/file"));
    assert_null(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_out_of_order_overlapping_writes_read_back_exactly,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_memory_out_of_order_overlapping_writes_read_back_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_requires_every_byte_and_matching_length, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_memory_bound_is_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_length_is_not_eof_until_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_expiry_returns_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_ends_when_writer_completes_range, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_ends_with_eof_when_commit_ends_before_range,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_ends_with_failed_and_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_ends_when_resource_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_ends_when_waiter_token_cancelled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_ends_when_ancestor_token_cancelled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_ends_when_seek_epoch_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_ends_when_the_other_epoch_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_resource_keeps_present_bytes_readable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reader_follows_slow_writer_byte_exact, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_complete_file_reports_missing_path, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
