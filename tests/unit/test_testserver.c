/*
 * test_testserver.c — the loopback test server serves what the networked tests rely on: content
 * (registered, synthetic, files), ranges and validators, counters, the request log and waits,
 * 200 concurrent connections, a prompt stop, and the standalone program. Its fault menu is
 * checked in test_testserver_faults.c.
 *
 * The client is libcurl (testclient.h; a multi handle for the concurrency test). Worker threads
 * only record results; assertions run on the main thread.
 */
#include "test_testserver_support.h"

#include <curl/curl.h>

#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- content ---------------------------------------------------------------------------- */

static void test_registered_body_has_length_type_and_validators(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    char v[256];

    assert_int_equal(kts_add_body(srv, "/v/index.m3u8", "#EXTM3U\n", 8, NULL), KTH_OK);
    get(srv, "/v/index.m3u8", NULL, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 8);
    assert_memory_equal(r.body, "#EXTM3U\n", 8);
    assert_true(ktc_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/vnd.apple.mpegurl");
    assert_true(ktc_header(&r, "Content-Length", v, sizeof v));
    assert_string_equal(v, "8");
    assert_true(ktc_header(&r, "ETag", v, sizeof v));
    assert_true(v[0] == '"' && v[strlen(v) - 1] == '"');
    assert_true(ktc_header(&r, "Last-Modified", v, sizeof v));
    assert_non_null(strstr(v, " GMT"));
    assert_true(ktc_header(&r, "Accept-Ranges", v, sizeof v));
    assert_string_equal(v, "bytes");
    ktc_response_free(&r);

    /* A replaced registration is new content with a new ETag. */
    get(srv, "/v/index.m3u8", NULL, &r);
    char etag1[256];
    assert_true(ktc_header(&r, "ETag", etag1, sizeof etag1));
    ktc_response_free(&r);
    assert_int_equal(kts_add_body(srv, "/v/index.m3u8", "#EXTM3U\n#", 9, "text/x"), KTH_OK);
    get(srv, "/v/index.m3u8", NULL, &r);
    assert_int_equal(r.len, 9);
    assert_true(ktc_header(&r, "ETag", v, sizeof v));
    assert_string_not_equal(v, etag1);
    assert_true(ktc_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "text/x");
    ktc_response_free(&r);

    /* An empty body is a complete 200 with Content-Length 0. */
    assert_int_equal(kts_add_body(srv, "/empty.txt", NULL, 0, NULL), KTH_OK);
    get(srv, "/empty.txt", NULL, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    assert_true(ktc_header(&r, "Content-Length", v, sizeof v));
    assert_string_equal(v, "0");
    ktc_response_free(&r);

    assert_int_equal(kts_remove_body(srv, "/v/index.m3u8"), KTH_OK);
    assert_int_equal(kts_remove_body(srv, "/v/index.m3u8"), KTH_ERR_NOT_FOUND);
    get(srv, "/v/index.m3u8", NULL, &r);
    assert_int_equal(r.status, 404);
    ktc_response_free(&r);
}

/* A document root in the working directory (the build tree), with one file inside and one
 * beside it that must stay out of reach. Removed by the teardown even when the test fails. */
typedef struct docroot {
    char root[32];
    char sub[64];
    char file[96];
    char outside[64];
    kts_server *srv;
} docroot;

static bool write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    bool ok = f != NULL && fputs(text, f) >= 0;
    return f != NULL && fclose(f) == 0 && ok;
}

static int docroot_up(void **state)
{
    docroot *d = calloc(1, sizeof *d);

    if (d == NULL) {
        return -1;
    }
    *state = d;
    snprintf(d->root, sizeof d->root, "kts-root-XXXXXX");
    if (mkdtemp(d->root) == NULL) {
        d->root[0] = '\0';
        return -1;
    }
    snprintf(d->sub, sizeof d->sub, "%s/sub", d->root);
    snprintf(d->file, sizeof d->file, "%s/sub/track.flac", d->root);
    snprintf(d->outside, sizeof d->outside, "%s-secret", d->root);
    if (mkdir(d->sub, 0700) != 0 || !write_file(d->file, "fLaC-data") ||
        !write_file(d->outside, "secret")) {
        return -1;
    }
    return kts_start(&(kts_config){.doc_root = d->root}, &d->srv) == KTH_OK ? 0 : -1;
}

static int docroot_down(void **state)
{
    docroot *d = *state;

    if (d != NULL) {
        kts_stop(d->srv);
        if (d->root[0] != '\0') {
            unlink(d->outside);
            unlink(d->file);
            rmdir(d->sub);
            rmdir(d->root);
        }
        free(d);
    }
    return 0;
}

static void test_files_are_served_from_document_root_only(void **state)
{
    docroot *d = *state;
    ktc_response r = {0};
    char v[256];
    char path[128];

    get(d->srv, "/sub/track.flac", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 9);
    assert_memory_equal(r.body, "fLaC-data", 9);
    assert_true(ktc_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "audio/flac");
    ktc_response_free(&r);

    get(d->srv, "/sub/missing.flac", NULL, &r);
    assert_int_equal(r.status, 404);
    ktc_response_free(&r);
    get(d->srv, "/sub", NULL, &r); /* a directory is not a file */
    assert_int_equal(r.status, 404);
    ktc_response_free(&r);
    snprintf(path, sizeof path, "/../%s", d->outside);
    get(d->srv, path, &(ktc_opts){.path_as_is = true}, &r);
    assert_int_equal(r.status, 404);
    ktc_response_free(&r);
}

static void test_synthetic_bodies_follow_the_exported_pattern(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    char v[256];

    get(srv, "/synth/100000.ts?seed=7", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 100000);
    assert_int_equal(kts_synth_check(7, 0, r.body, r.len), 100000);
    assert_int_not_equal(kts_synth_check(8, 0, r.body, r.len), 100000);
    assert_true(ktc_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "video/mp2t");
    ktc_response_free(&r);

    get(srv, "/synth/2k", NULL, &r);
    assert_int_equal(r.len, 2048);
    assert_int_equal(kts_synth_check(0, 0, r.body, r.len), 2048);
    ktc_response_free(&r);

    /* 256 MiB: announced in full, any part computable, nothing held. */
    get(srv, "/synth/256m.mp3", &(ktc_opts){.head = true}, &r);
    assert_true(ktc_header(&r, "Content-Length", v, sizeof v));
    assert_string_equal(v, "268435456");
    ktc_response_free(&r);
    get(srv, "/synth/256m.mp3", &(ktc_opts){.headers = {"Range: bytes=268435000-"}}, &r);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.len, 456);
    assert_int_equal(kts_synth_check(0, 268435000, r.body, r.len), 456);
    ktc_response_free(&r);

    assert_int_equal(kts_add_synth(srv, "/seg/3.aac", 5000, 42, NULL), KTH_OK);
    get(srv, "/seg/3.aac", NULL, &r);
    assert_int_equal(r.len, 5000);
    assert_int_equal(kts_synth_check(42, 0, r.body, r.len), 5000);
    assert_true(ktc_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "audio/aac");
    ktc_response_free(&r);

    get(srv, "/synth/12x", NULL, &r); /* not a synthetic path */
    assert_int_equal(r.status, 404);
    ktc_response_free(&r);
    get(srv, "/synth/12?seed=abc", NULL, &r);
    assert_int_equal(r.status, 400);
    ktc_response_free(&r);
}

static void test_synth_functions_agree_at_any_offset(void **state)
{
    unsigned char buf[100];

    (void)state;
    for (uint64_t off = 0; off < 24; off++) {
        kts_synth_fill(3, off, buf, sizeof buf);
        for (size_t i = 0; i < sizeof buf; i++) {
            assert_int_equal(buf[i], kts_synth_byte(3, off + i));
        }
        assert_int_equal(kts_synth_check(3, off, buf, sizeof buf), sizeof buf);
    }
    buf[57] ^= 1;
    assert_int_equal(kts_synth_check(3, 23, buf, sizeof buf), 57);
    /* A shift by one byte is caught at once. */
    kts_synth_fill(3, 1000, buf, sizeof buf);
    assert_int_equal(kts_synth_check(3, 1001, buf, sizeof buf), 0);
}

static void test_content_type_follows_extension(void **state)
{
    static const char *const pairs[][2] = {
        {"/a.m3u8", "application/vnd.apple.mpegurl"},
        {"/a.ts", "video/mp2t"},
        {"/a.aac", "audio/aac"},
        {"/a.mp3", "audio/mpeg"},
        {"/a.m4a", "audio/mp4"},
        {"/a.mp4", "audio/mp4"},
        {"/a.flac", "audio/flac"},
        {"/a.wav", "audio/wav"},
        {"/a.ogg", "audio/ogg"},
        {"/k/x.key", "application/octet-stream"},
        {"/a.html", "text/html"},
        {"/a.bin", "application/octet-stream"},
        {"/dir.d/noext", "application/octet-stream"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        assert_string_equal(kts_content_type_for(pairs[i][0]), pairs[i][1]);
    }
}

/* ---- ranges and validators -------------------------------------------------------------- */

static void expect_range(kts_server *srv, const char *range, long status, uint64_t first,
                         size_t len, const char *content_range)
{
    char hdr[128];
    char v[256];
    ktc_response r = {0};

    snprintf(hdr, sizeof hdr, "Range: %s", range);
    get(srv, "/r.bin", &(ktc_opts){.headers = {hdr}}, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, status);
    if (status != 416) {
        assert_int_equal(r.len, len);
        assert_int_equal(kts_synth_check(5, first, r.body, r.len), len);
    }
    if (content_range != NULL) {
        assert_true(ktc_header(&r, "Content-Range", v, sizeof v));
        assert_string_equal(v, content_range);
    } else {
        assert_false(ktc_header(&r, "Content-Range", v, sizeof v));
    }
    ktc_response_free(&r);
}

static void test_single_ranges_get_206_with_content_range(void **state)
{
    kts_server *srv = *state;

    assert_int_equal(kts_add_synth(srv, "/r.bin", 1000, 5, NULL), KTH_OK);
    expect_range(srv, "bytes=10-19", 206, 10, 10, "bytes 10-19/1000");
    expect_range(srv, "bytes=990-", 206, 990, 10, "bytes 990-999/1000");
    expect_range(srv, "bytes=-100", 206, 900, 100, "bytes 900-999/1000");
    expect_range(srv, "bytes=-5000", 206, 0, 1000, "bytes 0-999/1000");
    expect_range(srv, "bytes=500-99999", 206, 500, 500, "bytes 500-999/1000");
    expect_range(srv, "bytes=0-0", 206, 0, 1, "bytes 0-0/1000");
}

static void test_unsatisfiable_ranges_get_416_with_length(void **state)
{
    kts_server *srv = *state;

    assert_int_equal(kts_add_synth(srv, "/r.bin", 1000, 5, NULL), KTH_OK);
    expect_range(srv, "bytes=1000-", 416, 0, 0, "bytes */1000");
    expect_range(srv, "bytes=5000-6000", 416, 0, 0, "bytes */1000");
    expect_range(srv, "bytes=-0", 416, 0, 0, "bytes */1000");
}

static void test_multi_and_malformed_ranges_get_whole_body(void **state)
{
    kts_server *srv = *state;

    assert_int_equal(kts_add_synth(srv, "/r.bin", 1000, 5, NULL), KTH_OK);
    expect_range(srv, "bytes=0-1,5-6", 200, 0, 1000, NULL);
    expect_range(srv, "bytes=9-2", 200, 0, 1000, NULL);
    expect_range(srv, "items=0-1", 200, 0, 1000, NULL);
    expect_range(srv, "bytes=x-", 200, 0, 1000, NULL);
    expect_range(srv, "bytes=99999999999999999999-", 200, 0, 1000, NULL);
}

static void test_head_announces_length_without_body(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    char v[256];

    assert_int_equal(kts_add_synth(srv, "/h.m4a", 4321, 1, NULL), KTH_OK);
    get(srv, "/h.m4a", &(ktc_opts){.head = true}, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    assert_true(ktc_header(&r, "Content-Length", v, sizeof v));
    assert_string_equal(v, "4321");
    assert_true(ktc_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "audio/mp4");
    ktc_response_free(&r);

    get(srv, "/h.m4a", &(ktc_opts){.head = true, .headers = {"Range: bytes=100-199"}}, &r);
    assert_int_equal(r.status, 206);
    assert_true(ktc_header(&r, "Content-Length", v, sizeof v));
    assert_string_equal(v, "100");
    ktc_response_free(&r);
    assert_int_equal(kts_wait_completed(srv, "/h.m4a", 2, WAIT_MS), KTH_OK);
    assert_int_equal(kts_request_count(srv, "/h.m4a", "HEAD"), 2);
}

static void test_if_range_and_if_none_match_use_validators(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    char etag[128];
    char date[128];
    char h1[256];
    char h2[256];

    assert_int_equal(kts_add_synth(srv, "/v.mp3", 1000, 9, NULL), KTH_OK);
    get(srv, "/v.mp3", &(ktc_opts){.head = true}, &r);
    assert_true(ktc_header(&r, "ETag", etag, sizeof etag));
    assert_true(ktc_header(&r, "Last-Modified", date, sizeof date));
    ktc_response_free(&r);

    snprintf(h1, sizeof h1, "If-Range: %s", etag);
    get(srv, "/v.mp3", &(ktc_opts){.headers = {"Range: bytes=100-", h1}}, &r);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.len, 900);
    ktc_response_free(&r);

    snprintf(h1, sizeof h1, "If-Range: %s", date);
    get(srv, "/v.mp3", &(ktc_opts){.headers = {"Range: bytes=100-", h1}}, &r);
    assert_int_equal(r.status, 206);
    ktc_response_free(&r);

    get(srv, "/v.mp3", &(ktc_opts){.headers = {"Range: bytes=100-", "If-Range: \"other\""}}, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 1000);
    assert_int_equal(kts_synth_check(9, 0, r.body, r.len), 1000);
    ktc_response_free(&r);

    snprintf(h1, sizeof h1, "If-Range: W/%s", etag); /* weak never matches If-Range */
    get(srv, "/v.mp3", &(ktc_opts){.headers = {"Range: bytes=100-", h1}}, &r);
    assert_int_equal(r.status, 200);
    ktc_response_free(&r);

    snprintf(h2, sizeof h2, "If-None-Match: \"x\", %s", etag);
    get(srv, "/v.mp3", &(ktc_opts){.headers = {h2}}, &r);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.len, 0);
    ktc_response_free(&r);
}

/* ---- counters, log, waits --------------------------------------------------------------- */

static void test_counters_and_log_record_each_request(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    kts_log_entry e;

    assert_int_equal(kts_wait_requests(srv, "/n.ts", 1, 50), KTH_ERR_TIMEOUT);
    assert_int_equal(kts_add_synth(srv, "/n.ts", 100, 0, NULL), KTH_OK);
    get(srv, "/n.ts", NULL, &r);
    ktc_response_free(&r);
    get(srv, "/n.ts", &(ktc_opts){.headers = {"Range: bytes=10-19", "If-Range: \"abc\""}}, &r);
    ktc_response_free(&r);
    get(srv, "/n.ts", &(ktc_opts){.head = true}, &r);
    ktc_response_free(&r);
    get(srv, "/missing", NULL, &r);
    ktc_response_free(&r);
    assert_int_equal(kts_wait_completed(srv, NULL, 4, WAIT_MS), KTH_OK);
    assert_int_equal(kts_wait_requests(srv, "/n.ts", 3, WAIT_MS), KTH_OK);

    assert_int_equal(kts_request_count(srv, "/n.ts", NULL), 3);
    assert_int_equal(kts_request_count(srv, "/n.ts", "GET"), 2);
    assert_int_equal(kts_request_count(srv, "/n.ts", "HEAD"), 1);
    assert_int_equal(kts_request_count(srv, "/n.ts", "POST"), 0);
    assert_int_equal(kts_request_count(srv, NULL, NULL), 4);
    assert_int_equal(kts_request_count(srv, NULL, "GET"), 3);
    assert_int_equal(kts_completed_count(srv, "/n.ts"), 3);
    assert_int_equal(kts_request_count(srv, "/never", NULL), 0);

    assert_int_equal(kts_log_count(srv), 4);
    assert_int_equal(kts_log_get(srv, 1, &e), KTH_OK);
    assert_int_equal(e.seq, 1);
    assert_int_equal(e.number, 2);
    assert_string_equal(e.method, "GET");
    assert_string_equal(e.path, "/n.ts");
    assert_string_equal(e.range, "bytes=10-19");
    assert_string_equal(e.if_range, "\"abc\"");
    assert_int_equal(e.status, 200); /* the If-Range did not match */
    assert_int_equal(e.body_bytes, 100);
    assert_false(e.cut);
    assert_true(e.completed);
    assert_int_equal(kts_log_get(srv, 2, &e), KTH_OK);
    assert_string_equal(e.method, "HEAD");
    assert_int_equal(e.body_bytes, 0);
    assert_int_equal(kts_log_get(srv, 3, &e), KTH_OK);
    assert_int_equal(e.status, 404);
    assert_string_equal(e.range, "");
    assert_int_equal(kts_log_get(srv, 4, &e), KTH_ERR_NOT_FOUND);

    kts_reset(srv);
    assert_int_equal(kts_log_count(srv), 0);
    assert_int_equal(kts_request_count(srv, NULL, NULL), 0);
    assert_int_equal(kts_completed_count(srv, "/n.ts"), 0);
    get(srv, "/n.ts", NULL, &r);
    ktc_response_free(&r);
    assert_int_equal(kts_wait_completed(srv, "/n.ts", 1, WAIT_MS), KTH_OK);
    assert_int_equal(kts_log_get(srv, 0, &e), KTH_OK);
    assert_int_equal(e.seq, 0);
    assert_int_equal(e.number, 1); /* numbering restarted */
}

/* Runs curl_easy_perform on a handle from another thread. */
typedef struct perform_job {
    pthread_t thread;
    CURL *easy;
    CURLcode rc;
} perform_job;

static void *perform_main(void *arg)
{
    perform_job *job = arg;
    job->rc = curl_easy_perform(job->easy);
    return NULL;
}

static void test_reset_does_not_count_requests_already_in_progress(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    struct curl_slist *list;
    char url[512];
    perform_job job = {0};
    long connects = -1;

    job.easy = ktc_easy_new(url_of(srv, "/synth/64", url), NULL, &r, &list);
    add_fault(srv, "/synth/64", (kts_fault){.kind = KTS_FAULT_GATE, .last_request = 1});
    assert_int_equal(pthread_create(&job.thread, NULL, perform_main, &job), 0);
    assert_int_equal(kts_wait_gated(srv, "/synth/64", 1, WAIT_MS), KTH_OK);

    kts_reset(srv);
    assert_int_equal(kts_clear_faults(srv, "/synth/64"), KTH_OK);
    add_fault(srv, "/synth/64", (kts_fault){.kind = KTS_FAULT_STALL_AFTER, .last_request = 1});
    assert_int_equal(kts_gate_release(srv, "/synth/64", 1), KTH_OK);
    assert_int_equal(pthread_join(job.thread, NULL), 0);
    assert_int_equal(job.rc, CURLE_OK);

    /* The next request rides the same connection, so the server has finished the first one
     * before this one arrives; it then stalls, so it cannot have completed either. */
    assert_int_equal(pthread_create(&job.thread, NULL, perform_main, &job), 0);
    assert_int_equal(kts_wait_stalled(srv, "/synth/64", 1, WAIT_MS), KTH_OK);
    assert_int_equal(kts_completed_count(srv, "/synth/64"), 0);
    assert_int_equal(kts_completed_count(srv, NULL), 0);
    assert_int_equal(kts_request_count(srv, "/synth/64", NULL), 1);
    assert_int_equal(kts_stall_release(srv, "/synth/64", 1), KTH_OK);
    assert_int_equal(pthread_join(job.thread, NULL), 0);
    assert_int_equal(job.rc, CURLE_OK);
    curl_easy_getinfo(job.easy, CURLINFO_NUM_CONNECTS, &connects);
    assert_int_equal(connects, 0);
    assert_int_equal(kts_wait_completed(srv, "/synth/64", 1, WAIT_MS), KTH_OK);
    assert_int_equal(kts_log_count(srv), 1);

    curl_easy_cleanup(job.easy);
    curl_slist_free_all(list);
    ktc_response_free(&r);
}

static void test_log_keeps_the_newest_entries_up_to_capacity(void **state)
{
    kts_config cfg = {.log_capacity = 3};
    kts_server *srv = NULL;
    ktc_response r = {0};
    kts_log_entry e;

    (void)state;
    assert_int_equal(kts_start(&cfg, &srv), KTH_OK);
    for (int i = 0; i < 5; i++) {
        get(srv, "/synth/1", NULL, &r);
        ktc_response_free(&r);
    }
    assert_int_equal(kts_wait_completed(srv, NULL, 5, WAIT_MS), KTH_OK);
    assert_int_equal(kts_log_count(srv), 3);
    assert_int_equal(kts_log_get(srv, 0, &e), KTH_OK);
    assert_int_equal(e.number, 3);
    assert_int_equal(kts_log_get(srv, 2, &e), KTH_OK);
    assert_int_equal(e.number, 5);
    assert_int_equal(kts_log_find(srv, "/synth/1", 1, &e), KTH_ERR_NOT_FOUND);
    assert_int_equal(kts_request_count(srv, "/synth/1", NULL), 5);
    kts_stop(srv);
}

static void test_keep_alive_reuses_the_connection(void **state)
{
    kts_server *srv = *state;
    ktc_response r = {0};
    struct curl_slist *list;
    char url[512];
    long connects = -1;
    CURL *c = ktc_easy_new(url_of(srv, "/synth/100", url), NULL, &r, &list);

    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    assert_int_equal(connects, 0);
    assert_int_equal(r.len, 200);
    curl_easy_cleanup(c);
    ktc_response_free(&r);
}

/* ---- concurrency and stop --------------------------------------------------------------- */

#define CONCURRENT 200

typedef struct multi_job {
    kts_server *srv;
    ktc_response r[CONCURRENT];
    bool finished;
} multi_job;

static void *multi_main(void *arg)
{
    multi_job *job = arg;
    CURLM *m = curl_multi_init();
    CURL *easy[CONCURRENT];
    struct curl_slist *lists[CONCURRENT];
    char url[512];
    int running = 1;
    double deadline = ktc_now() + 60;

    for (int i = 0; i < CONCURRENT; i++) {
        char path[64];
        snprintf(path, sizeof path, "/conc/%d.ts", i);
        easy[i] = ktc_easy_new(url_of(job->srv, path, url), NULL, &job->r[i], &lists[i]);
        curl_multi_add_handle(m, easy[i]);
    }
    while (running > 0 && ktc_now() < deadline) {
        curl_multi_perform(m, &running);
        if (running > 0) {
            curl_multi_poll(m, NULL, 0, 1000, NULL);
        }
    }
    for (CURLMsg *msg; (msg = curl_multi_info_read(m, &running)) != NULL;) {
        if (msg->msg == CURLMSG_DONE) {
            for (int i = 0; i < CONCURRENT; i++) {
                if (easy[i] == msg->easy_handle) {
                    job->r[i].rc = msg->data.result;
                }
            }
        }
    }
    for (int i = 0; i < CONCURRENT; i++) {
        ktc_easy_finish(easy[i], &job->r[i]);
        curl_multi_remove_handle(m, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    curl_multi_cleanup(m);
    job->finished = true;
    return NULL;
}

static void test_two_hundred_concurrent_requests_are_served(void **state)
{
    kts_server *srv = *state;
    multi_job *job = calloc(1, sizeof *job);
    pthread_t thread;

    assert_non_null(job);
    job->srv = srv;
    for (int i = 0; i < CONCURRENT; i++) {
        char path[64];
        snprintf(path, sizeof path, "/conc/%d.ts", i);
        assert_int_equal(kts_add_synth(srv, path, 20000, (uint64_t)i, NULL), KTH_OK);
        add_fault(srv, path, (kts_fault){.kind = KTS_FAULT_GATE});
    }
    assert_int_equal(pthread_create(&thread, NULL, multi_main, job), 0);
    /* All of them are inside the server at the same time before any is answered. */
    for (int i = 0; i < CONCURRENT; i++) {
        char path[64];
        snprintf(path, sizeof path, "/conc/%d.ts", i);
        assert_int_equal(kts_wait_gated(srv, path, 1, 30000), KTH_OK);
    }
    for (int i = 0; i < CONCURRENT; i++) {
        char path[64];
        snprintf(path, sizeof path, "/conc/%d.ts", i);
        assert_int_equal(kts_gate_release(srv, path, KTS_RELEASE_ALL), KTH_OK);
    }
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_true(job->finished);
    for (int i = 0; i < CONCURRENT; i++) {
        assert_int_equal(job->r[i].rc, CURLE_OK);
        assert_int_equal(job->r[i].status, 200);
        assert_int_equal(kts_synth_check((uint64_t)i, 0, job->r[i].body, job->r[i].len), 20000);
        assert_int_equal(job->r[i].len, 20000);
        ktc_response_free(&job->r[i]);
    }
    free(job);
}

static void test_stop_is_prompt_while_requests_are_held(void **state)
{
    kts_server *srv = NULL;
    ktc_async stalled;
    ktc_async gated;
    ktc_async throttled;
    ktc_async delayed;
    double t0;

    (void)state;
    assert_int_equal(kts_start(NULL, &srv), KTH_OK);
    add_fault(srv, "/synth/9000", (kts_fault){.kind = KTS_FAULT_STALL_AFTER, .bytes = 1000});
    add_fault(srv, "/synth/10", (kts_fault){.kind = KTS_FAULT_GATE});
    add_fault(srv, "/synth/1m", (kts_fault){.kind = KTS_FAULT_RATE, .bytes = 1000});
    add_fault(srv, "/synth/20", (kts_fault){.kind = KTS_FAULT_LATENCY, .ms = 60000});
    async_start(&stalled, srv, "/synth/9000");
    async_start(&gated, srv, "/synth/10");
    async_start(&throttled, srv, "/synth/1m");
    async_start(&delayed, srv, "/synth/20");
    assert_int_equal(kts_wait_stalled(srv, "/synth/9000", 1, WAIT_MS), KTH_OK);
    assert_int_equal(kts_wait_gated(srv, "/synth/10", 1, WAIT_MS), KTH_OK);
    assert_int_equal(kts_wait_requests(srv, "/synth/1m", 1, WAIT_MS), KTH_OK);
    assert_int_equal(kts_wait_requests(srv, "/synth/20", 1, WAIT_MS), KTH_OK);

    /* An idle keep-alive connection, still held by its client, must not delay the stop. */
    ktc_response idle_r = {0};
    struct curl_slist *idle_list;
    char url[512];
    CURL *idle = ktc_easy_new(url_of(srv, "/synth/30", url), NULL, &idle_r, &idle_list);
    assert_int_equal(curl_easy_perform(idle), CURLE_OK);

    t0 = ktc_now();
    kts_stop(srv);
    assert_true(ktc_now() - t0 < 3.0);
    curl_easy_cleanup(idle);
    ktc_response_free(&idle_r);

    async_join(&stalled);
    async_join(&gated);
    async_join(&throttled);
    async_join(&delayed);
    assert_int_not_equal(stalled.r.rc, CURLE_OK);
    assert_int_equal(stalled.r.len, 1000);
    assert_int_not_equal(gated.r.rc, CURLE_OK);
    assert_int_not_equal(throttled.r.rc, CURLE_OK);
    assert_true(throttled.r.len < 1024 * 1024);
    assert_int_not_equal(delayed.r.rc, CURLE_OK);
    assert_true(delayed.r.seconds < 30.0);
    ktc_response_free(&stalled.r);
    ktc_response_free(&gated.r);
    ktc_response_free(&throttled.r);
    ktc_response_free(&delayed.r);
}

static void test_start_refuses_non_loopback_and_bad_root(void **state)
{
    kts_server *srv = (kts_server *)(uintptr_t)1;

    (void)state;
    assert_int_equal(kts_start(&(kts_config){.bind_address = "0.0.0.0"}, &srv),
                     KTH_ERR_INVALID_ARG);
    assert_null(srv);
    assert_int_equal(kts_start(&(kts_config){.bind_address = "::"}, &srv), KTH_ERR_INVALID_ARG);
    assert_int_equal(kts_start(&(kts_config){.bind_address = "example.org"}, &srv),
                     KTH_ERR_INVALID_ARG);
    assert_int_equal(kts_start(&(kts_config){.doc_root = "no-such-dir-for-kts"}, &srv), KTH_ERR_IO);
    assert_int_equal(kts_start(&(kts_config){.bind_address = "127.0.0.2"}, &srv), KTH_OK);
    assert_non_null(strstr(kts_base_url(srv), "http://127.0.0.2:"));
    assert_true(kts_port(srv) != 0);
    kts_stop(srv);
    kts_stop(NULL);
}

/* ---- the standalone program ------------------------------------------------------------- */

/* Runs the program with args; returns its pid and stores its stdout's read end in *out_fd. */
static pid_t spawn(char *const args[], int *out_fd)
{
    int fds[2];
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(args[0], args);
        _exit(127);
    }
    close(fds[1]);
    *out_fd = fds[0];
    return pid;
}

/* Reads one line from fd within WAIT_MS; false on timeout or end of file. */
static bool read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    double deadline = ktc_now() + WAIT_MS / 1000.0;

    while (n + 1 < size && ktc_now() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) <= 0) {
            continue;
        }
        if (read(fd, buf + n, 1) != 1) {
            break;
        }
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return true;
        }
        n++;
    }
    return false;
}

static int wait_exit(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_standalone_program_serves_until_signalled(void **state)
{
    char *args[] = {KTS_CLI_PATH, ".", "--port", "0", "--latency", "200", NULL};
    char *bad[] = {KTS_CLI_PATH, ".", "--bind", "0.0.0.0", NULL};
    char line[256];
    char url[512];
    ktc_response r = {0};
    int fd;
    pid_t pid;

    (void)state;
    pid = spawn(args, &fd);
    assert_true(read_line(fd, line, sizeof line));
    assert_memory_equal(line, "http://127.0.0.1:", 17);
    snprintf(url, sizeof url, "%s/synth/4k.mp3?seed=11", line);
    ktc_fetch(url, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(kts_synth_check(11, 0, r.body, r.len), 4096);
    assert_true(r.seconds >= 0.195);
    ktc_response_free(&r);
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(wait_exit(pid), 0);
    close(fd);

    pid = spawn(bad, &fd);
    assert_false(read_line(fd, line, sizeof line));
    assert_int_equal(wait_exit(pid), 2);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registered_body_has_length_type_and_validators,
                                        server_up, server_down),
        cmocka_unit_test_setup_teardown(test_files_are_served_from_document_root_only, docroot_up,
                                        docroot_down),
        cmocka_unit_test_setup_teardown(test_synthetic_bodies_follow_the_exported_pattern,
                                        server_up, server_down),
        cmocka_unit_test(test_synth_functions_agree_at_any_offset),
        cmocka_unit_test(test_content_type_follows_extension),
        cmocka_unit_test_setup_teardown(test_single_ranges_get_206_with_content_range, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_unsatisfiable_ranges_get_416_with_length, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_multi_and_malformed_ranges_get_whole_body, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_head_announces_length_without_body, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_if_range_and_if_none_match_use_validators, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_counters_and_log_record_each_request, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_reset_does_not_count_requests_already_in_progress,
                                        server_up, server_down),
        cmocka_unit_test(test_log_keeps_the_newest_entries_up_to_capacity),
        cmocka_unit_test_setup_teardown(test_keep_alive_reuses_the_connection, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_two_hundred_concurrent_requests_are_served, server_up,
                                        server_down),
        cmocka_unit_test(test_stop_is_prompt_while_requests_are_held),
        cmocka_unit_test(test_start_refuses_non_loopback_and_bad_root),
        cmocka_unit_test(test_standalone_program_serves_until_signalled),
    };
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
