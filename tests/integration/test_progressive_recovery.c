/*
 * test_progressive_recovery.c — progressive files in the corners a player reaches: a reader
 * that never blocks (try_read without a timeout), SEEK_END on a body without Content-Length
 * and a small read-ahead, a download that failed and is tried again on a seek or a new stream,
 * a file whose every byte is cached but whose completion was never recorded, and the length
 * and media queries from another thread while the reader moves between generations, and
 * streams of one URL opened and closed from several threads at once.
 */
#include "test_progressive_support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"

static int setup(void **state)
{
    return env_setup(state, 0);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A player that polls with KTH_NO_WAIT (never blocks in the library) still gets the whole
 * file: a read that finds nothing asks the download to move. */
static void test_reader_that_never_waits_gets_every_byte(void **state)
{
    struct env *e = *state;
    const uint64_t size = 700 * 1000;
    kts_add_synth(e->srv, "/poll.mp3", size, 61, NULL);
    kth_stream *s = open_stream(e, "/poll.mp3", NULL, 128 * 1024, 20000);
    static uint8_t buf[32 * 1024];
    uint64_t pos = 0;
    bool eof = false;
    /* Bounded: 10 s of 1 ms naps at most. */
    for (int naps = 0; naps < 10000 && !eof;) {
        kth_read_outcome o;
        assert_int_equal(kth_stream_try_read(s, buf, sizeof buf, KTH_NO_WAIT, &o), KTH_OK);
        if (o.kind == KTH_READ_BYTES) {
            assert_int_equal(kts_synth_check(61, pos, buf, o.n), o.n);
            pos += o.n;
        } else if (o.kind == KTH_READ_EOF) {
            eof = true;
        } else {
            assert_int_equal(o.kind, KTH_READ_PENDING);
            sleep_ms(1);
            naps++;
        }
    }
    assert_true(eof);
    assert_int_equal(pos, size);
    kth_stream_close(s);
}

/* SEEK_END on a chunked body (no Content-Length) with a read-ahead far smaller than the file:
 * the download runs on to the end for it instead of pausing, so the seek is prompt. */
static void test_seek_end_without_content_length_does_not_wait_for_readahead(void **state)
{
    struct env *e = *state;
    const uint64_t size = 3 * 1000 * 1000;
    kts_add_synth(e->srv, "/chunked.mp3", size, 62, NULL);
    kts_add_fault(e->srv, "/chunked.mp3", &(kts_fault){.kind = KTS_FAULT_CHUNKED});
    /* A short read timeout: waiting for read-ahead that never moves would run into it. */
    kth_stream *s = open_stream(e, "/chunked.mp3", NULL, 64 * 1024, 8000);
    uint8_t head[1000];
    assert_true(kth_stream_read(s, head, sizeof head) > 0);
    uint64_t pos = 0;
    assert_int_equal(kth_stream_seek(s, -5000, SEEK_END, &pos), KTH_OK);
    assert_int_equal(pos, size - 5000);
    read_all_checked(s, 62, size);
    kth_stream_close(s);
}

/* A download that failed for good (a 403 here) is tried again when the reader seeks, and
 * when another stream opens the URL; the cached bytes are kept. */
static void test_failed_download_is_tried_again_on_seek_and_on_open(void **state)
{
    struct env *e = *state;
    const uint64_t size = 400 * 1000;
    kts_add_synth(e->srv, "/flaky.mp3", size, 63, NULL);
    kts_add_fault(e->srv, "/flaky.mp3",
                  &(kts_fault){.kind = KTS_FAULT_STATUS, .status = 403, .last_request = 1});
    kth_stream *s = open_stream(e, "/flaky.mp3", NULL, 0, 20000);
    uint8_t buf[1000];
    assert_int_equal(kth_stream_read(s, buf, sizeof buf), KTH_ERR_HTTP);
    assert_int_equal(kth_stream_seek(s, 0, SEEK_SET, NULL), KTH_OK);
    read_all_checked(s, 63, size);

    /* Again, and this time a second stream (opened while the first holds the download)
     * brings it back. */
    kts_add_synth(e->srv, "/flaky2.mp3", size, 64, NULL);
    kts_add_fault(e->srv, "/flaky2.mp3",
                  &(kts_fault){.kind = KTS_FAULT_STATUS, .status = 403, .last_request = 1});
    kth_stream *a = open_stream(e, "/flaky2.mp3", NULL, 0, 20000);
    assert_int_equal(kth_stream_read(a, buf, sizeof buf), KTH_ERR_HTTP);
    kth_stream *b = open_stream(e, "/flaky2.mp3", NULL, 0, 20000);
    read_all_checked(b, 64, size);
    kth_stream_close(b);
    kth_stream_close(a);
    kth_stream_close(s);
}

/* Every byte cached, the length known, the completion never recorded (a process killed
 * between the last write and the commit): the file plays without asking the server for a
 * range past its end. */
static void test_complete_but_unrecorded_file_plays_without_a_request(void **state)
{
    struct env *e = *state;
    const uint64_t size = 300 * 1000;
    kts_add_synth(e->srv, "/whole.mp3", size, 65, NULL);
    char url[512];
    kts_url(e->srv, "/whole.mp3", url, sizeof url);

    cache_asset *asset;
    cache_resource *res;
    char err[512];
    assert_int_equal(cache_asset_open(e->cache, url, &asset, err, sizeof err), KTH_OK);
    assert_int_equal(
        cache_resource_open(asset, url, CACHE_OPEN_CREATE, &res, NULL, err, sizeof err), KTH_OK);
    static uint8_t bytes[300 * 1000];
    kts_synth_fill(65, 0, bytes, size);
    assert_int_equal(cache_resource_write(res, 0, bytes, size), KTH_OK);
    assert_int_equal(cache_resource_set_length(res, size), KTH_OK);
    assert_int_equal(cache_resource_checkpoint(res), KTH_OK);
    cache_resource_close(res);
    cache_asset_release(asset);

    kts_reset(e->srv);
    kth_stream *s = open_stream(e, "/whole.mp3", NULL, 0, 20000);
    read_all_checked(s, 65, size);
    kth_stream_close(s);
    assert_int_equal(kts_request_count(e->srv, "/whole.mp3", "GET"), 0);
}

struct prober {
    kth_stream *s;
    atomic_bool stop;
    unsigned calls;
    pthread_barrier_t first_round; /* the prober's first queries are done before the reads */
};

static void probe_once(struct prober *p)
{
    uint64_t length;
    kth_media_info mi;
    char detail[256];
    (void)kth_stream_length(p->s, &length);
    kth_stream_media_info(p->s, &mi);
    kth_stream_last_error(p->s, detail, sizeof detail);
    p->calls++;
}

static void *probe_thread(void *arg)
{
    struct prober *p = arg;
    probe_once(p);
    pthread_barrier_wait(&p->first_round);
    while (!atomic_load(&p->stop))
        probe_once(p);
    return NULL;
}

/* The reader moves to a new storage (partly cached bytes get validated, so it leaves the
 * placeholder) while another thread asks for the length, media info and last error: no call
 * sees a freed source (ASan and TSan runs check this). */
static void test_queries_from_another_thread_while_the_reader_changes_storage(void **state)
{
    struct env *e = *state;
    const uint64_t size = 2 * 1000 * 1000;
    for (int round = 0; round < 8; round++) {
        char path[64];
        snprintf(path, sizeof path, "/moving%d.mp3", round);
        kts_add_synth(e->srv, path, size, 70 + (uint64_t)round, NULL);
        /* Cache a part, so the next open starts on the placeholder. */
        kth_stream *s = open_stream(e, path, NULL, 128 * 1024, 20000);
        uint8_t buf[50000];
        for (uint64_t got = 0; got < 200000;) {
            int64_t n = kth_stream_read(s, buf, sizeof buf);
            assert_true(n > 0);
            got += (uint64_t)n;
        }
        kth_stream_close(s);

        s = open_stream(e, path, NULL, 0, 20000);
        struct prober p = {.s = s};
        atomic_init(&p.stop, false);
        assert_int_equal(pthread_barrier_init(&p.first_round, NULL, 2), 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, probe_thread, &p), 0);
        /* The prober has queried once before the reader moves storage, whatever the schedule;
         * it goes on querying while the reader reads. */
        pthread_barrier_wait(&p.first_round);
        read_all_checked(s, 70 + (uint64_t)round, size);
        atomic_store(&p.stop, true);
        pthread_join(t, NULL);
        pthread_barrier_destroy(&p.first_round);
        assert_true(p.calls > 0);
        kth_stream_close(s);
    }
}

struct churner {
    struct env *e;
    int failures;
};

static void *churn_thread(void *arg)
{
    struct churner *c = arg;
    char url[512];
    kts_url(c->e->srv, "/churn.mp3", url, sizeof url);
    static _Thread_local uint8_t buf[16 * 1024];
    for (int round = 0; round < 15; round++) {
        kth_stream_options so;
        kth_stream_options_init(&so);
        so.downloader = c->e->d;
        so.cache = c->e->cache;
        so.read_timeout_ms = 20000;
        kth_stream *s;
        if (kth_stream_open(url, &so, &s, NULL, 0) != KTH_OK) {
            c->failures++;
            continue;
        }
        uint64_t start = (uint64_t)round * 7919 % 400000, pos = start;
        if (kth_stream_seek(s, (int64_t)start, SEEK_SET, NULL) != KTH_OK)
            c->failures++;
        while (pos < start + 60000) {
            int64_t n = kth_stream_read(s, buf, sizeof buf);
            if (n <= 0 || kts_synth_check(66, pos, buf, (size_t)n) != (size_t)n) {
                c->failures++;
                break;
            }
            pos += (uint64_t)n;
        }
        kth_stream_close(s);
    }
    return NULL;
}

/* Streams of one URL opened and closed from four threads at once: each sees the file's bytes,
 * and a stream opened while the last one of the URL is closing waits for its download to end
 * rather than starting a second writer beside it. */
static void test_streams_of_one_url_opened_and_closed_from_several_threads(void **state)
{
    struct env *e = *state;
    const uint64_t size = 500 * 1000;
    kts_add_synth(e->srv, "/churn.mp3", size, 66, NULL);
    kts_add_fault(e->srv, "/churn.mp3", &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = 4000000});
    struct churner c[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (struct churner){.e = e};
        assert_int_equal(pthread_create(&t[i], NULL, churn_thread, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(c[i].failures, 0);
    }
    kth_stream *s = open_stream(e, "/churn.mp3", NULL, 0, 20000);
    read_all_checked(s, 66, size);
    kth_stream_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reader_that_never_waits_gets_every_byte, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_seek_end_without_content_length_does_not_wait_for_readahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_download_is_tried_again_on_seek_and_on_open,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete_but_unrecorded_file_plays_without_a_request,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_queries_from_another_thread_while_the_reader_changes_storage, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_streams_of_one_url_opened_and_closed_from_several_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
