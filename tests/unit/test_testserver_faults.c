/*
 * test_testserver_faults.c — every fault of the test server's menu has the effect the
 * robustness tests rely on, on the requests it was set for and on no others.
 *
 * The client is libcurl (testclient.h). Time bounds are loose: they check that an effect exists
 * (a delay, a spread-out body), not its precision, so the test holds under sanitizers.
 */
#include "test_testserver_support.h"

#include <curl/curl.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* ---- faults ----------------------------------------------------------------------------- */

static void test_latency_delays_the_headers(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};

    add_fault(srv, "/slow.ts", (kts_fault){.kind = KTS_FAULT_LATENCY, .ms = 300});
    get(srv, "/synth/10.ts", NULL, &r);
    assert_true(r.seconds < 0.3); /* other paths are not delayed */
    ktc_response_free(&r);
    assert_int_equal(kts_add_synth(srv, "/slow.ts", 10, 0, NULL), KTH_OK);
    get(srv, "/slow.ts", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(r.seconds >= 0.295);
    ktc_response_free(&r);
}

static void test_rate_cap_spreads_the_body_over_time(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {.mark_bytes = 32768};
    char url[512];

    /* 64 KiB at 128 KiB/s: about half a second, and no burst at the start. */
    add_fault(srv, "/synth/64k", (kts_fault){.kind = KTS_FAULT_RATE, .bytes = 131072});
    ktc_fetch(url_of(srv, "/synth/64k", url), NULL, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.len, 65536);
    assert_int_equal(kts_synth_check(0, 0, r.body, r.len), 65536);
    assert_true(r.seconds >= 0.4);
    assert_true(r.seconds < 10.0);
    /* Smooth: the first half arrives well before the end, not in one late burst. */
    assert_true(r.mark_seconds >= 0.15);
    assert_true(r.mark_seconds <= 0.8 * r.seconds);
    ktc_response_free(&r);
}

static void test_trickle_sends_one_byte_per_period_after_the_fast_part(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {.mark_bytes = 20000};
    char url[512];

    /* 20000 bytes at once, then the last 10 one every 50 ms: about half a second. */
    add_fault(srv, "/synth/20010",
              (kts_fault){.kind = KTS_FAULT_TRICKLE, .bytes = 20000, .ms = 50});
    ktc_fetch(url_of(srv, "/synth/20010", url), NULL, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.len, 20010);
    assert_int_equal(kts_synth_check(0, 0, r.body, r.len), 20010);
    assert_true(r.mark_seconds < 0.4);
    assert_true(r.seconds - r.mark_seconds >= 0.4);
    assert_true(r.seconds < 10.0);
    kts_log_entry e;
    assert_int_equal(kts_log_find(srv, "/synth/20010", 1, &e), KTH_OK);
    assert_int_equal(e.body_bytes, 20010);
    ktc_response_free(&r);
}

static void test_status_fault_applies_to_chosen_requests_with_retry_after(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    char v[64];

    assert_int_equal(kts_add_synth(srv, "/seg1.ts", 100, 1, NULL), KTH_OK);
    add_fault(srv, "/seg1.ts",
              (kts_fault){.kind = KTS_FAULT_STATUS,
                          .status = 503,
                          .retry_after = "1",
                          .first_request = 1,
                          .last_request = 2});
    add_fault(srv, "/seg1.ts",
              (kts_fault){.kind = KTS_FAULT_STATUS, .status = 429, .first_request = 4});
    for (int i = 1; i <= 2; i++) {
        get(srv, "/seg1.ts", NULL, &r);
        assert_int_equal(r.status, 503);
        assert_true(ktc_header(&r, "Retry-After", v, sizeof v));
        assert_string_equal(v, "1");
        ktc_response_free(&r);
    }
    get(srv, "/seg1.ts", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 100);
    assert_false(ktc_header(&r, "Retry-After", v, sizeof v));
    ktc_response_free(&r);
    get(srv, "/seg1.ts", NULL, &r);
    assert_int_equal(r.status, 429);
    ktc_response_free(&r);
}

static void test_close_after_n_cuts_the_body(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    kts_log_entry e;

    add_fault(srv, "/synth/10000",
              (kts_fault){.kind = KTS_FAULT_CLOSE_AFTER, .bytes = 1000, .last_request = 1});
    get(srv, "/synth/10000", NULL, &r);
    assert_int_equal(r.rc, CURLE_PARTIAL_FILE);
    assert_int_equal(r.len, 1000);
    assert_int_equal(kts_synth_check(0, 0, r.body, r.len), 1000);
    ktc_response_free(&r);
    assert_int_equal(kts_wait_completed(srv, "/synth/10000", 1, WAIT_MS), KTH_OK);
    assert_int_equal(kts_log_find(srv, "/synth/10000", 1, &e), KTH_OK);
    assert_int_equal(e.status, 200);
    assert_int_equal(e.body_bytes, 1000);
    assert_true(e.cut);
    assert_true(e.completed);

    /* The fault was only for request 1; a resume from the cut point completes. */
    get(srv, "/synth/10000", &(ktc_opts){.headers = {"Range: bytes=1000-"}}, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 206);
    assert_int_equal(kts_synth_check(0, 1000, r.body, r.len), 9000);
    ktc_response_free(&r);
    assert_int_equal(kts_wait_completed(srv, "/synth/10000", 2, WAIT_MS), KTH_OK);
    assert_int_equal(kts_log_find(srv, "/synth/10000", 2, &e), KTH_OK);
    assert_false(e.cut);
    assert_int_equal(e.body_bytes, 9000);
}

static void test_timed_stall_pauses_then_completes(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};

    add_fault(srv, "/synth/5000",
              (kts_fault){.kind = KTS_FAULT_STALL_AFTER, .bytes = 1000, .ms = 300});
    get(srv, "/synth/5000", NULL, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.len, 5000);
    assert_int_equal(kts_synth_check(0, 0, r.body, r.len), 5000);
    assert_true(r.seconds >= 0.295);
    ktc_response_free(&r);
}

static void test_stall_holds_until_released(void **state)
{
    kts_server *srv = *state;
    ktc_async a;
    kts_log_entry e;

    add_fault(srv, "/synth/8000", (kts_fault){.kind = KTS_FAULT_STALL_AFTER, .bytes = 3000});
    async_start(&a, srv, "/synth/8000");
    assert_int_equal(kts_wait_stalled(srv, "/synth/8000", 1, WAIT_MS), KTH_OK);
    assert_int_equal(kts_log_find(srv, "/synth/8000", 1, &e), KTH_OK);
    assert_int_equal(e.body_bytes, 3000);
    assert_false(e.completed);
    assert_int_equal(kts_completed_count(srv, "/synth/8000"), 0);

    assert_int_equal(kts_stall_release(srv, "/synth/8000", 1), KTH_OK);
    async_join(&a);
    assert_int_equal(a.r.rc, CURLE_OK);
    assert_int_equal(a.r.len, 8000);
    assert_int_equal(kts_synth_check(0, 0, a.r.body, a.r.len), 8000);
    ktc_response_free(&a.r);
}

static void test_html_error_page_is_served_with_200(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    char v[128];

    assert_int_equal(kts_add_body(srv, "/live.m3u8", "#EXTM3U\n", 8, NULL), KTH_OK);
    add_fault(srv, "/live.m3u8", (kts_fault){.kind = KTS_FAULT_HTML_200});
    get(srv, "/live.m3u8", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(ktc_header(&r, "Content-Type", v, sizeof v));
    assert_non_null(strstr(v, "text/html"));
    assert_true(r.len > 20);
    assert_memory_equal(r.body, "<!DOCTYPE html>", 15);
    ktc_response_free(&r);
}

static void test_redirect_chain_ends_at_the_real_path(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    char v[512];

    assert_int_equal(kts_add_synth(srv, "/a/r.mp3", 3000, 4, NULL), KTH_OK);
    add_fault(srv, "/a/r.mp3", (kts_fault){.kind = KTS_FAULT_REDIRECT, .hops = 3});
    get(srv, "/a/r.mp3", &(ktc_opts){.follow = true}, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.redirects, 3);
    assert_non_null(strstr(r.url, "/a/r.mp3?kts_redirected=1"));
    assert_int_equal(kts_synth_check(4, 0, r.body, r.len), 3000);
    ktc_response_free(&r);
    assert_int_equal(kts_wait_completed(srv, "/a/r.mp3", 2, WAIT_MS), KTH_OK);
    assert_int_equal(kts_request_count(srv, "/a/r.mp3", "GET"), 2);

    /* Not followed: the client sees a 302 with a Location. */
    get(srv, "/a/r.mp3", NULL, &r);
    assert_int_equal(r.status, 302);
    assert_true(ktc_header(&r, "Location", v, sizeof v));
    assert_non_null(strstr(v, kts_base_url(srv)));
    ktc_response_free(&r);

    /* With a target: the chain ends elsewhere, at exactly that path. */
    assert_int_equal(kts_add_synth(srv, "/b/moved.mp3", 10, 1, NULL), KTH_OK);
    add_fault(srv, "/b/old.mp3",
              (kts_fault){.kind = KTS_FAULT_REDIRECT, .hops = 2, .target = "/b/moved.mp3"});
    get(srv, "/b/old.mp3", &(ktc_opts){.follow = true}, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.redirects, 2);
    char expect[512];
    assert_string_equal(r.url, url_of(srv, "/b/moved.mp3", expect));
    ktc_response_free(&r);
}

static void test_changed_body_gets_new_content_and_etag(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    char etag1[128];
    char etag2[128];
    char date1[128];
    char date2[128];
    char h[256];

    assert_int_equal(kts_add_synth(srv, "/c.ts", 2000, 1, NULL), KTH_OK);
    add_fault(srv, "/c.ts",
              (kts_fault){.kind = KTS_FAULT_CHANGE_BODY, .seed = 99, .first_request = 2});
    get(srv, "/c.ts", NULL, &r);
    assert_int_equal(kts_synth_check(1, 0, r.body, r.len), 2000);
    assert_true(ktc_header(&r, "ETag", etag1, sizeof etag1));
    assert_true(ktc_header(&r, "Last-Modified", date1, sizeof date1));
    ktc_response_free(&r);

    get(srv, "/c.ts", NULL, &r);
    assert_int_equal(r.len, 2000);
    assert_int_equal(kts_synth_check(99, 0, r.body, r.len), 2000);
    assert_true(ktc_header(&r, "ETag", etag2, sizeof etag2));
    assert_true(ktc_header(&r, "Last-Modified", date2, sizeof date2));
    assert_string_not_equal(etag1, etag2);
    assert_string_not_equal(date1, date2);
    ktc_response_free(&r);

    /* A resume validated against the old ETag gets the whole new body. */
    snprintf(h, sizeof h, "If-Range: %s", etag1);
    get(srv, "/c.ts", &(ktc_opts){.headers = {"Range: bytes=1000-", h}}, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(kts_synth_check(99, 0, r.body, r.len), 2000);
    ktc_response_free(&r);

    /* Explicit new bytes. */
    assert_int_equal(kts_add_body(srv, "/k.key", "0123456789abcdef", 16, NULL), KTH_OK);
    add_fault(
        srv, "/k.key",
        (kts_fault){
            .kind = KTS_FAULT_CHANGE_BODY, .body = "NEWKEY", .body_len = 6, .first_request = 2});
    get(srv, "/k.key", NULL, &r);
    assert_int_equal(r.len, 16);
    ktc_response_free(&r);
    get(srv, "/k.key", NULL, &r);
    assert_int_equal(r.len, 6);
    assert_memory_equal(r.body, "NEWKEY", 6);
    ktc_response_free(&r);
}

static void test_gate_holds_the_response_until_released(void **state)
{
    kts_server *srv = *state;
    ktc_async a;
    ktc_response r = {0};
    kts_log_entry e;

    assert_int_equal(kts_add_synth(srv, "/g.ts", 500, 3, NULL), KTH_OK);
    add_fault(srv, "/g.ts", (kts_fault){.kind = KTS_FAULT_GATE, .last_request = 3});
    async_start(&a, srv, "/g.ts");
    assert_int_equal(kts_wait_gated(srv, "/g.ts", 1, WAIT_MS), KTH_OK);
    assert_int_equal(kts_log_find(srv, "/g.ts", 1, &e), KTH_OK);
    assert_int_equal(e.status, 0);
    assert_false(e.completed);
    assert_int_equal(kts_gate_release(srv, "/g.ts", 1), KTH_OK);
    async_join(&a);
    assert_int_equal(a.r.status, 200);
    assert_int_equal(kts_synth_check(3, 0, a.r.body, a.r.len), 500);
    ktc_response_free(&a.r);

    /* The release was used up: request 2 waits again. */
    async_start(&a, srv, "/g.ts");
    assert_int_equal(kts_wait_gated(srv, "/g.ts", 1, WAIT_MS), KTH_OK);
    /* Request 1's completion is recorded on its own connection's thread, after its body. */
    assert_int_equal(kts_wait_completed(srv, "/g.ts", 1, WAIT_MS), KTH_OK);
    assert_int_equal(kts_completed_count(srv, "/g.ts"), 1);
    assert_int_equal(kts_gate_release(srv, "/g.ts", 1), KTH_OK);
    async_join(&a);
    assert_int_equal(a.r.status, 200);
    ktc_response_free(&a.r);

    /* A release granted in advance lets the next gated request pass without waiting. */
    assert_int_equal(kts_gate_release(srv, "/g.ts", 1), KTH_OK);
    get(srv, "/g.ts", NULL, &r);
    assert_int_equal(r.status, 200);
    ktc_response_free(&r);
    /* Request 4 is past the fault's span. */
    get(srv, "/g.ts", NULL, &r);
    assert_int_equal(r.status, 200);
    ktc_response_free(&r);
    assert_int_equal(kts_wait_gated(srv, "/g.ts", 1, 50), KTH_ERR_TIMEOUT);
}

static void test_wrong_content_length_in_both_directions(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    char v[64];

    assert_int_equal(kts_add_synth(srv, "/w.mp3", 1000, 2, NULL), KTH_OK);
    add_fault(srv, "/w.mp3",
              (kts_fault){.kind = KTS_FAULT_WRONG_LENGTH, .length_delta = 500, .last_request = 1});
    add_fault(
        srv, "/w.mp3",
        (kts_fault){.kind = KTS_FAULT_WRONG_LENGTH, .length_delta = -400, .first_request = 2});
    get(srv, "/w.mp3", NULL, &r);
    assert_int_equal(r.rc, CURLE_PARTIAL_FILE);
    assert_int_equal(r.len, 1000);
    assert_int_equal(kts_synth_check(2, 0, r.body, r.len), 1000);
    ktc_response_free(&r);

    get(srv, "/w.mp3", NULL, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_true(ktc_header(&r, "Content-Length", v, sizeof v));
    assert_string_equal(v, "600");
    assert_int_equal(r.len, 600);
    assert_int_equal(kts_synth_check(2, 0, r.body, r.len), 600);
    ktc_response_free(&r);
}

static void test_ignore_range_answers_200_with_whole_body(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    char v[64];

    add_fault(srv, "/synth/3000", (kts_fault){.kind = KTS_FAULT_IGNORE_RANGE});
    get(srv, "/synth/3000", &(ktc_opts){.headers = {"Range: bytes=100-199"}}, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 3000);
    assert_int_equal(kts_synth_check(0, 0, r.body, r.len), 3000);
    assert_false(ktc_header(&r, "Accept-Ranges", v, sizeof v));
    assert_false(ktc_header(&r, "Content-Range", v, sizeof v));
    ktc_response_free(&r);
}

static void test_chunked_body_has_no_content_length(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    char v[64];

    add_fault(srv, "/synth/70000", (kts_fault){.kind = KTS_FAULT_CHUNKED});
    get(srv, "/synth/70000", NULL, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_false(ktc_header(&r, "Content-Length", v, sizeof v));
    assert_true(ktc_header(&r, "Transfer-Encoding", v, sizeof v));
    assert_string_equal(v, "chunked");
    assert_int_equal(r.len, 70000);
    assert_int_equal(kts_synth_check(0, 0, r.body, r.len), 70000);
    ktc_response_free(&r);
}

/* GZIP: the body on the wire is a gzip stream (unasked for), with its own length and ETag, and
 * a decoder gets the content back byte for byte. */
static void test_gzip_sends_an_encoded_body_nobody_asked_for(void **state)
{
    kts_server *srv = *state;
    ktc_response plain = {0}, raw = {0}, decoded = {0};
    char v[128], etag[128];
    char url[512];
    struct curl_slist *list = NULL;

    get(srv, "/synth/200000.mp3", NULL, &plain);
    assert_true(ktc_header(&plain, "ETag", etag, sizeof etag));
    add_fault(srv, "/synth/200000.mp3", (kts_fault){.kind = KTS_FAULT_GZIP});
    get(srv, "/synth/200000.mp3", NULL, &raw);
    assert_int_equal(raw.status, 200);
    assert_true(ktc_header(&raw, "Content-Encoding", v, sizeof v));
    assert_string_equal(v, "gzip");
    assert_true(ktc_header(&raw, "Content-Type", v, sizeof v));
    assert_string_equal(v, "audio/mpeg");
    assert_true(ktc_header(&raw, "ETag", v, sizeof v));
    assert_string_not_equal(v, etag);
    /* 10 header bytes, 4 stored blocks of 5 header bytes each, the content, 8 trailer bytes */
    assert_int_equal(raw.len, 10 + 4 * 5 + 200000 + 8);
    assert_int_equal(raw.body[0], 0x1f);
    assert_int_equal(raw.body[1], 0x8b);

    CURL *c = ktc_easy_new(url_of(srv, "/synth/200000.mp3", url), NULL, &decoded, &list);
    assert_non_null(c);
    assert_int_equal(curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip"), CURLE_OK);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    ktc_easy_finish(c, &decoded);
    curl_easy_cleanup(c);
    curl_slist_free_all(list);
    assert_int_equal(decoded.len, 200000);
    assert_int_equal(kts_synth_check(0, 0, decoded.body, decoded.len), 200000);

    /* A range is a range of the encoded bytes. */
    ktc_response part = {0};
    get(srv, "/synth/200000.mp3", &(ktc_opts){.headers = {"Range: bytes=0-9"}}, &part);
    assert_int_equal(part.status, 206);
    assert_int_equal(part.len, 10);
    assert_memory_equal(part.body, raw.body, 10);
    ktc_response_free(&part);
    ktc_response_free(&plain);
    ktc_response_free(&raw);
    ktc_response_free(&decoded);
}

/* The MPEG-TS-framed pattern: a sync byte every 188 bytes, the pattern elsewhere; registered or
 * asked for in the URL, with an ETag of its own. */
static void test_ts_framed_pattern_has_a_sync_byte_every_packet(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0}, plain = {0};
    char etag[128], v[128];

    assert_int_equal(kts_add_ts_synth(srv, "/seg.ts", 1000, 9, NULL), KTH_OK);
    get(srv, "/seg.ts", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 1000);
    for (size_t at = 0; at < 1000; at += 188)
        assert_int_equal(r.body[at], 0x47);
    assert_int_equal(kts_ts_synth_check(9, 0, r.body, r.len), 1000);
    assert_int_equal(kts_ts_synth_check(9, 100, r.body + 100, 900), 900);
    assert_true(kts_synth_check(9, 0, r.body, r.len) < 1000);
    assert_true(ktc_header(&r, "ETag", etag, sizeof etag));
    ktc_response_free(&r);

    get(srv, "/synth/1000.ts?seed=9&framing=ts", NULL, &r);
    assert_int_equal(r.len, 1000);
    assert_int_equal(kts_ts_synth_check(9, 0, r.body, r.len), 1000);
    get(srv, "/synth/1000.ts?seed=9", NULL, &plain);
    assert_int_equal(kts_synth_check(9, 0, plain.body, plain.len), 1000);
    assert_true(ktc_header(&plain, "ETag", v, sizeof v));
    assert_true(ktc_header(&r, "ETag", etag, sizeof etag));
    assert_string_not_equal(v, etag);
    ktc_response_free(&r);
    ktc_response_free(&plain);
    get(srv, "/synth/1000.ts?framing=mp4", NULL, &r);
    assert_int_equal(r.status, 400);
    ktc_response_free(&r);
}

static void test_every_path_faults_and_fault_arguments(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};

    add_fault(srv, "*", (kts_fault){.kind = KTS_FAULT_STATUS, .status = 500});
    add_fault(srv, "/ok", (kts_fault){.kind = KTS_FAULT_STATUS, .status = 404});
    get(srv, "/synth/1", NULL, &r);
    assert_int_equal(r.status, 500);
    ktc_response_free(&r);
    get(srv, "/ok", NULL, &r); /* the path's own fault is applied after the "*" one */
    assert_int_equal(r.status, 404);
    ktc_response_free(&r);
    assert_int_equal(kts_clear_faults(srv, NULL), KTH_OK);
    get(srv, "/synth/1", NULL, &r);
    assert_int_equal(r.status, 200);
    ktc_response_free(&r);

    kts_fault bad[] = {
        {.kind = KTS_FAULT_RATE},
        {.kind = KTS_FAULT_STATUS, .status = 99},
        {.kind = KTS_FAULT_STATUS, .status = 503, .retry_after = "1\r\nX: y"},
        {.kind = KTS_FAULT_REDIRECT},
        {.kind = KTS_FAULT_REDIRECT, .hops = 1, .target = "relative"},
        {.kind = KTS_FAULT_WRONG_LENGTH},
        {.kind = KTS_FAULT_LATENCY, .first_request = 3, .last_request = 2},
        {.kind = (kts_fault_kind)0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(kts_add_fault(srv, "/x", &bad[i]), KTH_ERR_INVALID_ARG);
    }
    assert_int_equal(kts_add_fault(srv, "x", &(kts_fault){.kind = KTS_FAULT_GATE}),
                     KTH_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_latency_delays_the_headers, server_up, server_down),
        cmocka_unit_test_setup_teardown(test_rate_cap_spreads_the_body_over_time, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_trickle_sends_one_byte_per_period_after_the_fast_part,
                                        server_up, server_down),
        cmocka_unit_test_setup_teardown(
            test_status_fault_applies_to_chosen_requests_with_retry_after, server_up, server_down),
        cmocka_unit_test_setup_teardown(test_close_after_n_cuts_the_body, server_up, server_down),
        cmocka_unit_test_setup_teardown(test_timed_stall_pauses_then_completes, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_stall_holds_until_released, server_up, server_down),
        cmocka_unit_test_setup_teardown(test_html_error_page_is_served_with_200, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_redirect_chain_ends_at_the_real_path, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_changed_body_gets_new_content_and_etag, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_gate_holds_the_response_until_released, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_wrong_content_length_in_both_directions, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_ignore_range_answers_200_with_whole_body, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_chunked_body_has_no_content_length, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_gzip_sends_an_encoded_body_nobody_asked_for, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_ts_framed_pattern_has_a_sync_byte_every_packet,
                                        server_up, server_down),
        cmocka_unit_test_setup_teardown(test_every_path_faults_and_fault_arguments, server_up,
                                        server_down),
    };
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
