/*
 * test_net_fetch.c — the downloader against the loopback server, one request at a time: plain
 * bodies, ranges, HEAD, redirects, validators, and every fault of the server's menu with the
 * outcome it must have (retried and byte-exact, or failed with the right status and message).
 */
#include "test_net_support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define SEED 7

static void add_fault(net_fixture *f, const char *path, kts_fault fault)
{
    assert_int_equal(kts_add_fault(f->srv, path, &fault), KTH_OK);
}

/* Submits spec and waits for its completion. */
static void run(net_fixture *f, net_fetch_spec *spec, rec *r)
{
    assert_int_equal(net_downloader_submit(f->d, spec, NULL), KTH_OK);
    assert_true(rec_wait(r, NET_WAIT_MS));
}

/* The whole synthetic body of `size` bytes at path was delivered, in order, exactly. */
static void assert_body_exact(rec *r, uint64_t seed, uint64_t offset, size_t size)
{
    assert_int_equal(r->completions, 1);
    assert_int_equal(r->result.status, KTH_OK);
    assert_false(r->discontiguous);
    assert_false(r->overflow);
    assert_int_equal(r->written, size);
    assert_int_equal(r->result.bytes, size);
    assert_int_equal(kts_synth_check(seed, offset, r->buf, size), size);
}

static void fetch_ok(net_fixture *f, const char *path, size_t size, rec *r)
{
    char url[512];
    rec_init(r, size, 0);
    net_fetch_spec s = rec_spec(r, net_url(f, path, url));
    run(f, &s, r);
    assert_body_exact(r, SEED, 0, size);
}

/* ---- plain requests ---------------------------------------------------------------------- */

static void test_whole_body_arrives_byte_exact_with_its_response(void **state)
{
    net_fixture *f = *state;
    const size_t size = 3 * 1024 * 1024 + 17;
    assert_int_equal(kts_add_synth(f->srv, "/a.bin", size, SEED, NULL), KTH_OK);
    rec r;
    fetch_ok(f, "/a.bin", size, &r);
    assert_int_equal(r.responses, 1);
    assert_int_equal(r.resp_status, 200);
    assert_true(r.resp_has_total);
    assert_int_equal(r.resp_total, size);
    assert_int_equal(r.resp_offset, 0);
    assert_true(r.resp_etag[0] == '"');
    assert_int_equal(r.result.http_status, 200);
    assert_int_equal(r.result.attempts, 1);
    assert_true(r.result.has_total_length);
    assert_int_equal(r.result.total_length, size);
    assert_string_equal(r.message, "");
    rec_free(&r);
}

static void test_range_request_delivers_exactly_the_range(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/r.bin", 100000, SEED, NULL), KTH_OK);
    char url[512];
    rec r;
    rec_init(&r, 5000, 1234);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/r.bin", url));
    s.has_range = true;
    s.range_start = 1234;
    s.range_end = 6234;
    run(f, &s, &r);
    assert_body_exact(&r, SEED, 1234, 5000);
    assert_int_equal(r.resp_status, 206);
    assert_int_equal(r.resp_offset, 1234);
    assert_int_equal(r.resp_total, 100000);
    kts_log_entry e;
    assert_int_equal(kts_log_find(f->srv, "/r.bin", 1, &e), KTH_OK);
    assert_string_equal(e.range, "bytes=1234-6233");
    rec_free(&r);
}

static void test_open_range_runs_to_the_end(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/o.bin", 70000, SEED, NULL), KTH_OK);
    char url[512];
    rec r;
    rec_init(&r, 70000 - 65000, 65000);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/o.bin", url));
    s.has_range = true;
    s.range_start = 65000;
    s.range_end = NET_RANGE_OPEN;
    run(f, &s, &r);
    assert_body_exact(&r, SEED, 65000, 5000);
    rec_free(&r);
}

static void test_head_reports_the_length_without_a_body(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/h.bin", 4242, SEED, NULL), KTH_OK);
    char url[512];
    rec r;
    rec_init(&r, 16, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/h.bin", url));
    s.method = NET_HEAD;
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_OK);
    assert_int_equal(r.written, 0);
    assert_int_equal(r.responses, 1);
    assert_true(r.result.has_total_length);
    assert_int_equal(r.result.total_length, 4242);
    assert_int_equal(kts_request_count(f->srv, "/h.bin", "HEAD"), 1);
    rec_free(&r);
}

/* ---- permanent failures ------------------------------------------------------------------- */

static void expect_permanent(net_fixture *f, const char *path, int http, kth_status want)
{
    char url[512];
    rec r;
    rec_init(&r, 1024, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, path, url));
    run(f, &s, &r);
    assert_int_equal(r.result.status, want);
    assert_int_equal(r.result.http_status, http);
    assert_int_equal(r.result.attempts, 1);
    assert_false(r.result.retryable);
    assert_int_equal(r.written, 0);
    char code[16];
    snprintf(code, sizeof code, "%d", http);
    assert_non_null(strstr(r.message, url));
    assert_non_null(strstr(r.message, code));
    assert_int_equal(kts_request_count(f->srv, path, NULL), 1);
    rec_free(&r);
}

static void test_404_fails_at_once_naming_url_and_status(void **state)
{
    expect_permanent(*state, "/missing.bin", 404, KTH_ERR_NOT_FOUND);
}

static void test_403_and_other_4xx_fail_at_once(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/forbidden.key", 16, SEED, NULL), KTH_OK);
    add_fault(f, "/forbidden.key", (kts_fault){.kind = KTS_FAULT_STATUS, .status = 403});
    expect_permanent(f, "/forbidden.key", 403, KTH_ERR_HTTP);
    assert_int_equal(kts_add_synth(f->srv, "/gone.bin", 16, SEED, NULL), KTH_OK);
    add_fault(f, "/gone.bin", (kts_fault){.kind = KTS_FAULT_STATUS, .status = 400});
    expect_permanent(f, "/gone.bin", 400, KTH_ERR_HTTP);
}

static void test_range_past_the_end_fails_out_of_range(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/short.bin", 100, SEED, NULL), KTH_OK);
    char url[512];
    rec r;
    rec_init(&r, 16, 200);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/short.bin", url));
    s.has_range = true;
    s.range_start = 200;
    s.range_end = 300;
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_OUT_OF_RANGE);
    assert_int_equal(r.result.http_status, 416);
    assert_true(r.result.has_total_length);
    assert_int_equal(r.result.total_length, 100);
    rec_free(&r);
}

/* ---- transient failures ------------------------------------------------------------------- */

static void test_5xx_408_429_are_retried_then_succeed(void **state)
{
    net_fixture *f = *state;
    const size_t size = 50000;
    assert_int_equal(kts_add_synth(f->srv, "/flaky.bin", size, SEED, NULL), KTH_OK);
    add_fault(f, "/flaky.bin",
              (kts_fault){.kind = KTS_FAULT_STATUS, .status = 503, .last_request = 1});
    add_fault(f, "/flaky.bin",
              (kts_fault){
                  .kind = KTS_FAULT_STATUS, .status = 408, .first_request = 2, .last_request = 2});
    add_fault(f, "/flaky.bin",
              (kts_fault){
                  .kind = KTS_FAULT_STATUS, .status = 429, .first_request = 3, .last_request = 3});
    add_fault(f, "/flaky.bin",
              (kts_fault){
                  .kind = KTS_FAULT_STATUS, .status = 500, .first_request = 4, .last_request = 4});
    rec r;
    fetch_ok(f, "/flaky.bin", size, &r);
    assert_int_equal(r.result.attempts, 5);
    assert_int_equal(r.responses, 1);
    assert_int_equal(kts_request_count(f->srv, "/flaky.bin", "GET"), 5);
    rec_free(&r);
}

static void test_persistent_5xx_gives_up_after_max_retries(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/down.bin", 100, SEED, NULL), KTH_OK);
    add_fault(f, "/down.bin", (kts_fault){.kind = KTS_FAULT_STATUS, .status = 502});
    char url[512];
    rec r;
    rec_init(&r, 100, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/down.bin", url));
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_HTTP);
    assert_true(r.result.retryable);
    assert_int_equal(r.result.attempts, 5); /* the first try and 4 retries */
    assert_int_equal(r.result.http_status, 502);
    assert_non_null(strstr(r.message, "502"));
    assert_non_null(strstr(r.message, url));
    assert_int_equal(kts_request_count(f->srv, "/down.bin", NULL), 5);
    assert_int_equal(r.written, 0);
    rec_free(&r);
}

static void test_retry_after_is_honoured(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/busy.bin", 1000, SEED, NULL), KTH_OK);
    add_fault(f, "/busy.bin",
              (kts_fault){
                  .kind = KTS_FAULT_STATUS, .status = 429, .retry_after = "1", .last_request = 1});
    rec r;
    int64_t t0 = net_test_now_ms();
    fetch_ok(f, "/busy.bin", 1000, &r);
    /* The back-off alone is at most 40 ms here; the server asked for a second. */
    assert_true(r.completed_ms - t0 >= 950);
    assert_int_equal(r.result.attempts, 2);
    rec_free(&r);
}

static void test_connect_failure_is_retried_then_fails_as_network(void **state)
{
    net_fixture *f = *state;
    kts_server *other = NULL;
    assert_int_equal(kts_start(NULL, &other), KTH_OK);
    char url[512];
    assert_non_null(kts_url(other, "/x.bin", url, sizeof url));
    kts_stop(other); /* nothing listens there any more */
    rec r;
    rec_init(&r, 16, 0);
    net_fetch_spec s = rec_spec(&r, url);
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_NETWORK);
    assert_true(r.result.retryable);
    assert_int_equal(r.result.attempts, 5);
    assert_int_equal(r.result.http_status, 0);
    assert_non_null(strstr(r.message, "x.bin"));
    rec_free(&r);
}

/* A host name with a label longer than 63 bytes cannot be resolved, and the resolver says so
 * without asking any name server. Each attempt fails before connecting; the retries must
 * report that cause, not a failure to set up the request (a reused curl handle once refused
 * an option after such a failure). */
static void test_unresolvable_host_is_retried_then_fails_as_network(void **state)
{
    net_fixture *f = *state;
    char url[160];
    snprintf(url, sizeof url, "http://%.70s.invalid/x.bin",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    rec r;
    rec_init(&r, 16, 0);
    net_fetch_spec s = rec_spec(&r, url);
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_NETWORK);
    assert_int_equal(r.result.attempts, 5);
    assert_non_null(strstr(r.message, "resolve"));
    assert_null(strstr(r.message, "set up"));
    rec_free(&r);
}

/* ---- resumption --------------------------------------------------------------------------- */

static void test_cut_body_resumes_with_a_range_and_loses_nothing(void **state)
{
    net_fixture *f = *state;
    const size_t size = 1000000;
    assert_int_equal(kts_add_synth(f->srv, "/cut.bin", size, SEED, NULL), KTH_OK);
    add_fault(f, "/cut.bin",
              (kts_fault){.kind = KTS_FAULT_CLOSE_AFTER, .bytes = 300000, .last_request = 1});
    add_fault(
        f, "/cut.bin",
        (kts_fault){
            .kind = KTS_FAULT_CLOSE_AFTER, .bytes = 250000, .first_request = 2, .last_request = 2});
    rec r;
    fetch_ok(f, "/cut.bin", size, &r);
    assert_int_equal(r.result.attempts, 3);
    kts_log_entry e;
    assert_int_equal(kts_log_find(f->srv, "/cut.bin", 1, &e), KTH_OK);
    assert_string_equal(e.range, "");
    assert_int_equal(kts_log_find(f->srv, "/cut.bin", 2, &e), KTH_OK);
    assert_string_equal(e.range, "bytes=300000-");
    assert_true(e.if_range[0] == '"'); /* validated against the ETag */
    assert_int_equal(kts_log_find(f->srv, "/cut.bin", 3, &e), KTH_OK);
    assert_string_equal(e.range, "bytes=550000-");
    assert_int_equal(r.responses, 1); /* resumed responses are checked, not re-announced */
    rec_free(&r);
}

static void test_cut_range_resumes_within_the_range(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/cutr.bin", 500000, SEED, NULL), KTH_OK);
    add_fault(f, "/cutr.bin",
              (kts_fault){.kind = KTS_FAULT_CLOSE_AFTER, .bytes = 1000, .last_request = 1});
    char url[512];
    rec r;
    rec_init(&r, 100000, 200000);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/cutr.bin", url));
    s.has_range = true;
    s.range_start = 200000;
    s.range_end = 300000;
    run(f, &s, &r);
    assert_body_exact(&r, SEED, 200000, 100000);
    kts_log_entry e;
    assert_int_equal(kts_log_find(f->srv, "/cutr.bin", 2, &e), KTH_OK);
    assert_string_equal(e.range, "bytes=201000-299999");
    rec_free(&r);
}

static void test_stalled_body_is_abandoned_and_resumed(void **state)
{
    net_fixture *f = *state;
    kth_downloader_options o;
    net_test_options(&o);
    o.stall_timeout_ms = 300;
    kth_downloader *d = NULL;
    assert_int_equal(kth_downloader_new(&o, &d, NULL, 0), KTH_OK);
    const size_t size = 400000;
    assert_int_equal(kts_add_synth(f->srv, "/stall.bin", size, SEED, NULL), KTH_OK);
    add_fault(f, "/stall.bin",
              (kts_fault){.kind = KTS_FAULT_STALL_AFTER, .bytes = 100000, .last_request = 1});
    char url[512];
    rec r;
    rec_init(&r, size, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/stall.bin", url));
    assert_int_equal(net_downloader_submit(d, &s, NULL), KTH_OK);
    assert_true(rec_wait(&r, NET_WAIT_MS));
    assert_body_exact(&r, SEED, 0, size);
    assert_int_equal(r.result.attempts, 2);
    kts_log_entry e;
    assert_int_equal(kts_log_find(f->srv, "/stall.bin", 2, &e), KTH_OK);
    assert_string_equal(e.range, "bytes=100000-");
    kth_downloader_unref(d);
    kts_stall_release(f->srv, "/stall.bin", KTS_RELEASE_ALL);
    rec_free(&r);
}

static void test_changed_etag_during_resume_fails_changed_never_spliced(void **state)
{
    net_fixture *f = *state;
    const size_t size = 200000;
    assert_int_equal(kts_add_synth(f->srv, "/chg.bin", size, SEED, NULL), KTH_OK);
    add_fault(f, "/chg.bin",
              (kts_fault){.kind = KTS_FAULT_CLOSE_AFTER, .bytes = 70000, .last_request = 1});
    add_fault(f, "/chg.bin",
              (kts_fault){.kind = KTS_FAULT_CHANGE_BODY, .seed = SEED + 1, .first_request = 2});
    char url[512];
    rec r;
    rec_init(&r, size, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/chg.bin", url));
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_CHANGED);
    assert_false(r.result.retryable);
    assert_int_equal(r.written, 70000);
    assert_int_equal(kts_synth_check(SEED, 0, r.buf, 70000), 70000); /* only the old bytes */
    assert_non_null(strstr(r.message, "changed"));
    rec_free(&r);
}

static void test_changed_etag_without_if_range_support_fails_changed(void **state)
{
    net_fixture *f = *state;
    /* The server ignores ranges: the resumed answer is a 200 of the new body. */
    const size_t size = 200000;
    assert_int_equal(kts_add_synth(f->srv, "/chg2.bin", size, SEED, NULL), KTH_OK);
    add_fault(f, "/chg2.bin",
              (kts_fault){.kind = KTS_FAULT_CLOSE_AFTER, .bytes = 9000, .last_request = 1});
    add_fault(f, "/chg2.bin",
              (kts_fault){.kind = KTS_FAULT_CHANGE_BODY, .seed = SEED + 3, .first_request = 2});
    add_fault(f, "/chg2.bin", (kts_fault){.kind = KTS_FAULT_IGNORE_RANGE});
    char url[512];
    rec r;
    rec_init(&r, size, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/chg2.bin", url));
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_CHANGED);
    assert_int_equal(r.written, 9000);
    assert_int_equal(kts_synth_check(SEED, 0, r.buf, 9000), 9000);
    rec_free(&r);
}

static void test_200_to_a_range_request_skips_the_prefix(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/norange.bin", 300000, SEED, NULL), KTH_OK);
    add_fault(f, "/norange.bin", (kts_fault){.kind = KTS_FAULT_IGNORE_RANGE});
    char url[512];
    rec r;
    rec_init(&r, 50000, 123456);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/norange.bin", url));
    s.has_range = true;
    s.range_start = 123456;
    s.range_end = 173456;
    run(f, &s, &r);
    assert_body_exact(&r, SEED, 123456, 50000);
    assert_int_equal(r.resp_status, 200);
    assert_int_equal(r.resp_offset, 123456);
    rec_free(&r);
}

static void test_resume_from_a_server_ignoring_ranges_skips_what_it_has(void **state)
{
    net_fixture *f = *state;
    const size_t size = 600000;
    assert_int_equal(kts_add_synth(f->srv, "/nr2.bin", size, SEED, NULL), KTH_OK);
    add_fault(f, "/nr2.bin", (kts_fault){.kind = KTS_FAULT_IGNORE_RANGE});
    add_fault(f, "/nr2.bin",
              (kts_fault){.kind = KTS_FAULT_CLOSE_AFTER, .bytes = 333333, .last_request = 1});
    rec r;
    fetch_ok(f, "/nr2.bin", size, &r);
    assert_int_equal(r.result.attempts, 2);
    kts_log_entry e;
    assert_int_equal(kts_log_find(f->srv, "/nr2.bin", 2, &e), KTH_OK);
    assert_string_equal(e.range, "bytes=333333-");
    assert_int_equal(e.status, 200);
    rec_free(&r);
}

static void test_chunked_bodies_complete_and_resume(void **state)
{
    net_fixture *f = *state;
    const size_t size = 300000;
    assert_int_equal(kts_add_synth(f->srv, "/chunk.bin", size, SEED, NULL), KTH_OK);
    add_fault(f, "/chunk.bin", (kts_fault){.kind = KTS_FAULT_CHUNKED});
    rec r;
    fetch_ok(f, "/chunk.bin", size, &r);
    assert_false(r.resp_has_total);
    rec_free(&r);
    assert_int_equal(kts_add_synth(f->srv, "/chunk2.bin", size, SEED, NULL), KTH_OK);
    add_fault(f, "/chunk2.bin", (kts_fault){.kind = KTS_FAULT_CHUNKED, .last_request = 1});
    add_fault(f, "/chunk2.bin",
              (kts_fault){.kind = KTS_FAULT_CLOSE_AFTER, .bytes = 100000, .last_request = 1});
    fetch_ok(f, "/chunk2.bin", size, &r);
    assert_int_equal(r.result.attempts, 2);
    rec_free(&r);
}

static void test_announced_length_too_long_ends_at_the_true_length(void **state)
{
    net_fixture *f = *state;
    const size_t size = 100000;
    assert_int_equal(kts_add_synth(f->srv, "/long.bin", size, SEED, NULL), KTH_OK);
    add_fault(f, "/long.bin",
              (kts_fault){.kind = KTS_FAULT_WRONG_LENGTH, .length_delta = 500, .last_request = 1});
    rec r;
    fetch_ok(f, "/long.bin", size, &r);
    assert_true(r.result.has_total_length);
    assert_int_equal(r.result.total_length, size);
    rec_free(&r);
}

static void test_short_range_body_is_resumed(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/lie.bin", 100000, SEED, NULL), KTH_OK);
    add_fault(f, "/lie.bin",
              (kts_fault){.kind = KTS_FAULT_WRONG_LENGTH, .length_delta = -400, .last_request = 1});
    char url[512];
    rec r;
    rec_init(&r, 10000, 5000);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/lie.bin", url));
    s.has_range = true;
    s.range_start = 5000;
    s.range_end = 15000;
    run(f, &s, &r);
    assert_body_exact(&r, SEED, 5000, 10000);
    assert_int_equal(r.result.attempts, 2);
    rec_free(&r);
}

static void test_latency_and_rate_limits_still_deliver_exactly(void **state)
{
    net_fixture *f = *state;
    const size_t size = 60000;
    assert_int_equal(kts_add_synth(f->srv, "/slow.bin", size, SEED, NULL), KTH_OK);
    add_fault(f, "/slow.bin", (kts_fault){.kind = KTS_FAULT_LATENCY, .ms = 100});
    add_fault(f, "/slow.bin", (kts_fault){.kind = KTS_FAULT_RATE, .bytes = 400000});
    rec r;
    int64_t t0 = net_test_now_ms();
    fetch_ok(f, "/slow.bin", size, &r);
    assert_true(r.completed_ms - t0 >= 100);
    rec_free(&r);
}

/* The loop gathers received pieces before handing them to the writer; bytes that arrived
 * before the server paused must still reach it during the pause, not when more come. */
static void test_bytes_before_a_pause_reach_the_writer_during_it(void **state)
{
    net_fixture *f = *state;
    const size_t size = 300000, before = 100000;
    assert_int_equal(kts_add_synth(f->srv, "/pause.bin", size, SEED, NULL), KTH_OK);
    add_fault(f, "/pause.bin", (kts_fault){.kind = KTS_FAULT_STALL_AFTER, .bytes = before});
    char url[512];
    rec r;
    rec_init(&r, size, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/pause.bin", url));
    assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_OK);
    assert_int_equal(kts_wait_stalled(f->srv, "/pause.bin", 1, NET_WAIT_MS), KTH_OK);
    uint64_t written = 0;
    for (int i = 0; i < 500 && written < before; i++) { /* bounded: 5 s */
        pthread_mutex_lock(&r.m);
        written = r.written;
        pthread_mutex_unlock(&r.m);
        if (written < before)
            nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    assert_int_equal(written, before);
    assert_int_equal(kts_stall_release(f->srv, "/pause.bin", KTS_RELEASE_ALL), KTH_OK);
    assert_true(rec_wait(&r, NET_WAIT_MS));
    assert_body_exact(&r, SEED, 0, size);
    assert_int_equal(r.result.attempts, 1);
    rec_free(&r);
}

/* ---- redirects and validators -------------------------------------------------------------- */

static void test_redirect_chain_is_followed_and_the_final_url_reported(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/moved.bin", 5000, SEED, NULL), KTH_OK);
    add_fault(f, "/moved.bin", (kts_fault){.kind = KTS_FAULT_REDIRECT, .hops = 10});
    rec r;
    fetch_ok(f, "/moved.bin", 5000, &r);
    assert_int_equal(r.resp_redirects, 10);
    assert_non_null(strstr(r.resp_url, "/moved.bin?kts_redirected=1"));
    assert_non_null(strstr(r.final_url, "/moved.bin?kts_redirected=1"));
    rec_free(&r);
}

static void test_more_than_ten_redirects_fail(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/loop.bin", 5000, SEED, NULL), KTH_OK);
    add_fault(f, "/loop.bin", (kts_fault){.kind = KTS_FAULT_REDIRECT, .hops = 11});
    char url[512];
    rec r;
    rec_init(&r, 5000, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/loop.bin", url));
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_HTTP);
    assert_false(r.result.retryable);
    assert_int_equal(r.result.attempts, 1);
    assert_non_null(strstr(r.message, "redirects"));
    assert_int_equal(r.written, 0);
    rec_free(&r);
}

static void test_html_page_served_with_200_is_rejected_by_the_validator(void **state)
{
    net_fixture *f = *state;
    static const char playlist[] = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg0.ts\n";
    assert_int_equal(kts_add_body(f->srv, "/list.m3u8", playlist, strlen(playlist), NULL), KTH_OK);
    char url[512];
    rec r;
    rec_init(&r, 4096, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/list.m3u8", url));
    s.validate = net_validate_not_html;
    s.accept_gzip = true;
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_OK); /* a short, real playlist passes */
    assert_int_equal(r.written, strlen(playlist));
    assert_memory_equal(r.buf, playlist, strlen(playlist));
    rec_free(&r);

    add_fault(f, "/list.m3u8", (kts_fault){.kind = KTS_FAULT_HTML_200});
    rec_init(&r, 4096, 0);
    s = rec_spec(&r, url);
    s.validate = net_validate_not_html;
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_FORMAT);
    assert_int_equal(r.result.http_status, 200);
    assert_int_equal(r.written, 0); /* not a byte of the page reached the writer */
    assert_non_null(strstr(r.message, "HTML"));
    assert_non_null(strstr(r.message, "list.m3u8"));
    rec_free(&r);

    /* A short body is judged at its end, still with the response's Content-Type at hand. */
    assert_int_equal(kts_add_body(f->srv, "/typed", playlist, strlen(playlist), "text/html"),
                     KTH_OK);
    rec_init(&r, 4096, 0);
    s = rec_spec(&r, net_url(f, "/typed", url));
    s.validate = net_validate_not_html;
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_FORMAT);
    assert_int_equal(r.written, 0);
    assert_non_null(strstr(r.message, "text/html"));
    rec_free(&r);
}

static void test_writer_failure_aborts_with_its_status(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/w.bin", 2000000, SEED, NULL), KTH_OK);
    char url[512];
    rec r;
    rec_init(&r, 2000000, 0);
    r.write_result = KTH_ERR_IO;
    r.fail_after = 100000;
    net_fetch_spec s = rec_spec(&r, net_url(f, "/w.bin", url));
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_IO);
    assert_false(r.result.retryable);
    assert_int_equal(r.result.attempts, 1);
    assert_true(r.written <= 100000);
    assert_non_null(strstr(r.message, "writer"));
    rec_free(&r);
}

static void test_bad_specs_are_refused_without_completion(void **state)
{
    net_fixture *f = *state;
    rec r;
    rec_init(&r, 0, 0);
    net_fetch_spec s = rec_spec(&r, "ftp://127.0.0.1/x");
    assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_ERR_UNSUPPORTED);
    s.url = "not a url";
    assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_ERR_INVALID_ARG);
    char url[512];
    s.url = net_url(f, "/x", url);
    s.has_range = true;
    s.range_start = 10;
    s.range_end = 10;
    assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_ERR_INVALID_ARG);
    s.range_end = 20;
    s.accept_gzip = true; /* compressed ranges have no meaningful offsets */
    assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_ERR_INVALID_ARG);
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    assert_int_equal(r.completions, 0);
    rec_free(&r);
}

/* ---- what the requests carry ----------------------------------------------------------- */

/* The user agent, cookies and a command's extra headers reach the server; a playlist fetch
 * (accept_gzip) asks for gzip and a ranged media fetch does not. */
static void test_user_agent_cookies_headers_and_encodings_are_sent(void **state)
{
    net_fixture *f = *state;
    kth_downloader_unref(f->d);
    kth_downloader_options o;
    net_test_options(&o);
    o.user_agent = "kithara-test/1.0";
    o.cookies = "session=abc; lang=en";
    char err[256];
    assert_int_equal(kth_downloader_new(&o, &f->d, err, sizeof err), KTH_OK);
    assert_int_equal(kts_add_synth(f->srv, "/p.m3u8", 3000, SEED, NULL), KTH_OK);
    assert_int_equal(kts_add_synth(f->srv, "/m.ts", 3000, SEED, NULL), KTH_OK);

    static const char *const extra[] = {"X-Kithara-Test: yes", NULL};
    char url[512];
    rec r;
    rec_init(&r, 3000, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/p.m3u8", url));
    s.headers = extra;
    s.accept_gzip = true;
    run(f, &s, &r);
    assert_body_exact(&r, SEED, 0, 3000);
    rec_free(&r);

    rec_init(&r, 1000, 1000);
    s = rec_spec(&r, net_url(f, "/m.ts", url));
    s.has_range = true;
    s.range_start = 1000;
    s.range_end = 2000;
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_OK);
    rec_free(&r);

    kts_log_entry pl, media;
    assert_int_equal(kts_log_find(f->srv, "/p.m3u8", 1, &pl), KTH_OK);
    assert_int_equal(kts_log_find(f->srv, "/m.ts", 1, &media), KTH_OK);
    assert_non_null(strstr(pl.headers, "User-Agent: kithara-test/1.0\n"));
    assert_non_null(strstr(pl.headers, "Cookie: session=abc; lang=en\n"));
    assert_non_null(strstr(pl.headers, "X-Kithara-Test: yes\n"));
    assert_non_null(strstr(pl.headers, "Accept-Encoding: gzip"));
    assert_non_null(strstr(media.headers, "User-Agent: kithara-test/1.0\n"));
    assert_null(strstr(media.headers, "gzip"));
    assert_null(strstr(media.headers, "X-Kithara-Test"));
}

/* A proxy set in the options carries every request: the server, acting as the proxy, receives
 * the absolute URL of a host that is never resolved. */
static void test_requests_go_through_the_configured_proxy(void **state)
{
    net_fixture *f = *state;
    kth_downloader_unref(f->d);
    kth_downloader_options o;
    net_test_options(&o);
    char proxy[512];
    kts_url(f->srv, "", proxy, sizeof proxy);
    o.proxy = proxy;
    char err[256];
    assert_int_equal(kth_downloader_new(&o, &f->d, err, sizeof err), KTH_OK);
    rec r;
    rec_init(&r, 100, 0);
    net_fetch_spec s = rec_spec(&r, "http://media.invalid/show/track.mp3");
    run(f, &s, &r);
    /* The test server serves no such path: a 404 from it, not a name-resolution failure. */
    assert_int_equal(r.result.status, KTH_ERR_NOT_FOUND);
    assert_int_equal(r.result.http_status, 404);
    assert_int_equal(kts_log_count(f->srv), 1);
    rec_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, net_fixture_up, net_fixture_down)
        T(test_user_agent_cookies_headers_and_encodings_are_sent),
        T(test_requests_go_through_the_configured_proxy),
        T(test_whole_body_arrives_byte_exact_with_its_response),
        T(test_range_request_delivers_exactly_the_range),
        T(test_open_range_runs_to_the_end),
        T(test_head_reports_the_length_without_a_body),
        T(test_404_fails_at_once_naming_url_and_status),
        T(test_403_and_other_4xx_fail_at_once),
        T(test_range_past_the_end_fails_out_of_range),
        T(test_5xx_408_429_are_retried_then_succeed),
        T(test_persistent_5xx_gives_up_after_max_retries),
        T(test_retry_after_is_honoured),
        T(test_connect_failure_is_retried_then_fails_as_network),
        T(test_unresolvable_host_is_retried_then_fails_as_network),
        T(test_cut_body_resumes_with_a_range_and_loses_nothing),
        T(test_cut_range_resumes_within_the_range),
        T(test_stalled_body_is_abandoned_and_resumed),
        T(test_changed_etag_during_resume_fails_changed_never_spliced),
        T(test_changed_etag_without_if_range_support_fails_changed),
        T(test_200_to_a_range_request_skips_the_prefix),
        T(test_resume_from_a_server_ignoring_ranges_skips_what_it_has),
        T(test_chunked_bodies_complete_and_resume),
        T(test_announced_length_too_long_ends_at_the_true_length),
        T(test_short_range_body_is_resumed),
        T(test_latency_and_rate_limits_still_deliver_exactly),
        T(test_bytes_before_a_pause_reach_the_writer_during_it),
        T(test_redirect_chain_is_followed_and_the_final_url_reported),
        T(test_more_than_ten_redirects_fail),
        T(test_html_page_served_with_200_is_rejected_by_the_validator),
        T(test_writer_failure_aborts_with_its_status),
        T(test_bad_specs_are_refused_without_completion),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
