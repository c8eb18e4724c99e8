/*
 * test_net_policy.c — the downloader's pure parts, without a network: header parsing
 * (Content-Range, Retry-After, header lookup, pool keys), the retry policy (back-off bounds and
 * growth, which failures are transient), the slot queues and host counts, the HTML
 * validator, and the pace window the stall verdicts read.
 */
#include "net/downloader.h"
#include "net/http.h"
#include "net/pace.h"
#include "net/retry.h"
#include "net/schedule.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_content_range_is_parsed_and_checked(void **state)
{
    (void)state;
    uint64_t a, b, t;
    bool has;
    assert_true(net_parse_content_range("bytes 0-99/1000", &a, &b, &has, &t));
    assert_int_equal(a, 0);
    assert_int_equal(b, 99);
    assert_true(has);
    assert_int_equal(t, 1000);
    assert_true(net_parse_content_range("  BYTES  5-5/*\r\n", &a, &b, &has, &t));
    assert_false(has);
    assert_int_equal(a, 5);
    assert_false(net_parse_content_range("bytes 10-9/100", &a, &b, &has, &t));
    assert_false(net_parse_content_range("bytes 0-100/100", &a, &b, &has, &t));
    assert_false(net_parse_content_range("bytes -5/100", &a, &b, &has, &t));
    assert_false(net_parse_content_range("items 0-1/2", &a, &b, &has, &t));
    assert_false(net_parse_content_range("bytes 0-1/99999999999999999999999", &a, &b, &has, &t));
    assert_false(net_parse_content_range(NULL, &a, &b, &has, &t));
    assert_true(net_parse_unsatisfied_range("bytes */4096", &t));
    assert_int_equal(t, 4096);
    assert_false(net_parse_unsatisfied_range("bytes 0-1/4096", &t));
}

static void test_numbers_refuse_overflow_and_junk(void **state)
{
    (void)state;
    uint64_t v;
    assert_true(net_parse_u64("18446744073709551615", 20, &v));
    assert_int_equal(v, UINT64_MAX);
    assert_false(net_parse_u64("18446744073709551616", 20, &v));
    assert_false(net_parse_u64("12a", 3, &v));
    assert_false(net_parse_u64("", 0, &v));
    assert_false(net_parse_u64("-1", 2, &v));
}

static void test_retry_after_accepts_seconds_and_dates(void **state)
{
    (void)state;
    int64_t ms;
    assert_true(net_parse_retry_after("3", 0, &ms));
    assert_int_equal(ms, 3000);
    assert_true(net_parse_retry_after(" 0 ", 0, &ms));
    assert_int_equal(ms, 0);
    /* Thu, 01 Jan 1970 00:01:40 GMT is 100 s after the epoch. */
    assert_true(net_parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 40, &ms));
    assert_int_equal(ms, 60000);
    assert_true(net_parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 500, &ms));
    assert_int_equal(ms, 0); /* a date in the past: now */
    assert_false(net_parse_retry_after("soon", 0, &ms));
    assert_false(net_parse_retry_after("", 0, &ms));
    assert_true(net_parse_retry_after("99999999999999999999", 0, &ms) == false);
}

static void test_headers_are_found_case_insensitively_last_wins(void **state)
{
    (void)state;
    const char *block = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nETag: \"a\"\r\n"
                        "X-Two: 1\r\nx-two:   2  \r\n\r\n";
    char buf[64];
    assert_true(net_header_find(block, "Content-Type", buf, sizeof buf));
    assert_string_equal(buf, "text/plain");
    assert_true(net_header_find(block, "x-TWO", buf, sizeof buf));
    assert_string_equal(buf, "2");
    assert_false(net_header_find(block, "Content-Length", buf, sizeof buf));
    assert_false(net_header_find(block, "Content-Type", buf, 4)); /* does not fit */
    assert_true(net_etag_is_strong("\"a\""));
    assert_false(net_etag_is_strong("W/\"a\""));
    net_response resp = {.headers = block};
    assert_true(net_response_header(&resp, "etag", buf, sizeof buf));
    assert_string_equal(buf, "\"a\"");
}

static void test_host_keys_name_scheme_host_and_port(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"http://Example.COM/a/b?c", "http://example.com:80"},
        {"https://example.com:8443/", "https://example.com:8443"},
        {"http://127.0.0.1:5000/x", "http://127.0.0.1:5000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *k = NULL;
        assert_int_equal(net_host_key(cases[i][0], &k), KTH_OK);
        assert_string_equal(k, cases[i][1]);
        free(k);
    }
    char *k = (char *)"unchanged";
    assert_int_equal(net_host_key("ftp://example.com/x", &k), KTH_ERR_INVALID_ARG);
    assert_null(k);
    assert_int_equal(net_host_key("not a url", &k), KTH_ERR_INVALID_ARG);
    assert_null(k);
}

/* A host name of any length keys whole: never cut to a buffer, never refused. */
static void test_host_key_of_a_long_host_is_whole(void **state)
{
    (void)state;
    char host[2001];
    for (size_t i = 0; i < 2000; i++)
        host[i] = i % 64 == 63 ? '.' : 'h';
    host[2000] = '\0';
    char url[2100], want[2100];
    snprintf(url, sizeof url, "https://%s/path?q", host);
    snprintf(want, sizeof want, "https://%s:443", host);
    char *k = NULL;
    assert_int_equal(net_host_key(url, &k), KTH_OK);
    assert_string_equal(k, want);
    free(k);
}

static void test_backoff_grows_to_the_cap_with_full_jitter(void **state)
{
    (void)state;
    const int64_t base = 250000000, cap = 8000000000;
    assert_int_equal(net_backoff_ns(1, base, cap, 0.5), 125000000);
    assert_int_equal(net_backoff_ns(2, base, cap, 0.5), 250000000);
    assert_int_equal(net_backoff_ns(3, base, cap, 0.5), 500000000);
    assert_int_equal(net_backoff_ns(6, base, cap, 0.5), 4000000000);
    assert_int_equal(net_backoff_ns(7, base, cap, 0.5), 4000000000); /* capped at 8 s */
    assert_int_equal(net_backoff_ns(500, base, cap, 0.5), 4000000000);
    assert_int_equal(net_backoff_ns(3, base, cap, 0.0), 0);
    assert_int_equal(net_backoff_ns(0, base, cap, 0.5), 0);
    /* Never above the cap, whatever the random source says. */
    uint64_t state64 = 42;
    for (unsigned n = 1; n < 80; n++) {
        int64_t d = net_backoff_ns(n, base, cap, net_random_next(&state64));
        assert_true(d >= 0 && d < cap);
        int64_t ceiling = n >= 6 ? cap : base << (n - 1);
        assert_true(d < ceiling);
    }
    assert_true(net_backoff_ns(4, base, cap, 7.0) < cap);
    assert_true(net_backoff_ns(4, base, cap, -1.0) == 0);
}

static void test_random_source_stays_in_the_unit_interval(void **state)
{
    (void)state;
    uint64_t s = 1;
    double lo = 1, hi = 0;
    for (int i = 0; i < 10000; i++) {
        double u = net_random_next(&s);
        assert_true(u >= 0.0 && u < 1.0);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    assert_true(lo < 0.01 && hi > 0.99);
}

static void test_transient_and_permanent_failures_are_told_apart(void **state)
{
    (void)state;
    assert_true(net_http_status_transient(500));
    assert_true(net_http_status_transient(503));
    assert_true(net_http_status_transient(599));
    assert_true(net_http_status_transient(408));
    assert_true(net_http_status_transient(429));
    assert_false(net_http_status_transient(404));
    assert_false(net_http_status_transient(403));
    assert_false(net_http_status_transient(416));
    assert_int_equal(net_http_status_error(404), KTH_ERR_NOT_FOUND);
    assert_int_equal(net_http_status_error(410), KTH_ERR_NOT_FOUND);
    assert_int_equal(net_http_status_error(403), KTH_ERR_HTTP);
    assert_true(net_curl_code_transient(CURLE_COULDNT_CONNECT));
    assert_true(net_curl_code_transient(CURLE_OPERATION_TIMEDOUT));
    assert_true(net_curl_code_transient(CURLE_PARTIAL_FILE));
    assert_true(net_curl_code_transient(CURLE_RECV_ERROR));
    assert_false(net_curl_code_transient(CURLE_PEER_FAILED_VERIFICATION));
    assert_false(net_curl_code_transient(CURLE_TOO_MANY_REDIRECTS));
    assert_int_equal(net_curl_code_error(CURLE_COULDNT_CONNECT), KTH_ERR_NETWORK);
    assert_int_equal(net_curl_code_error(CURLE_OPERATION_TIMEDOUT), KTH_ERR_TIMEOUT);
}

/* --- slots -------------------------------------------------------------------------------- */

typedef struct item {
    net_sched_node node;
    const char *host;
    int name;
} item;

static bool host_free(void *ctx, net_sched_node *n)
{
    const char *busy = ctx;
    return !busy || strcmp(((item *)n)->host, busy) != 0;
}

static int pick_name(net_sched *s, const char *busy)
{
    net_sched_node *n = net_sched_pick(s, host_free, (void *)busy);
    return n ? ((item *)n)->name : -1;
}

static void test_slots_pick_urgent_first_and_fifo(void **state)
{
    (void)state;
    assert_int_equal(net_sched_slot(NET_PEER_FOREGROUND, NET_FETCH_HIGH), 0);
    assert_int_equal(net_sched_slot(NET_PEER_FOREGROUND, NET_FETCH_LOW), 1);
    assert_int_equal(net_sched_slot(NET_PEER_BACKGROUND, NET_FETCH_HIGH), 2);
    assert_int_equal(net_sched_slot(NET_PEER_BACKGROUND, NET_FETCH_LOW), 3);
    assert_int_equal(net_sched_slot(99, -5), 2); /* clamped */
    net_sched s;
    net_sched_init(&s);
    item it[6];
    const int slots[6] = {3, 1, 0, 1, 3, 0};
    for (int i = 0; i < 6; i++) {
        it[i] = (item){.host = i == 2 ? "b" : "a", .name = i};
        it[i].node.seq = (uint64_t)i;
        it[i].node.slot = -1;
        net_sched_push(&s, &it[i].node, slots[i]);
    }
    assert_int_equal(s.count, 6);
    assert_int_equal(pick_name(&s, "b"), 5); /* 2 is first in slot 0 but its host is full */
    assert_int_equal(pick_name(&s, NULL), 2);
    assert_int_equal(pick_name(&s, NULL), 1);
    assert_int_equal(pick_name(&s, NULL), 3);
    assert_int_equal(pick_name(&s, "a"), -1); /* all left are for a busy host */
    assert_int_equal(s.count, 2);
    net_sched_remove(&s, &it[0].node);
    net_sched_remove(&s, &it[0].node); /* not queued any more: no effect */
    assert_int_equal(s.count, 1);
    assert_int_equal(pick_name(&s, NULL), 4);
    assert_int_equal(pick_name(&s, NULL), -1);
}

static void test_requeued_nodes_keep_their_place(void **state)
{
    (void)state;
    net_sched s;
    net_sched_init(&s);
    item it[4];
    for (int i = 0; i < 4; i++) {
        it[i] = (item){.host = "a", .name = i};
        it[i].node.seq = (uint64_t)i * 10;
        it[i].node.slot = -1;
    }
    net_sched_push(&s, &it[0].node, 2);
    net_sched_push(&s, &it[2].node, 2);
    net_sched_push(&s, &it[3].node, 2);
    net_sched_push(&s, &it[1].node, 2); /* back from a retry: goes before 2 and 3 */
    int order[4];
    int k = 0;
    for (net_sched_node *n = net_sched_first(&s, 2); n; n = net_sched_next(&s, n))
        order[k++] = ((item *)n)->name;
    assert_int_equal(k, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(order[i], i);
    /* Moving to another slot (a priority change) keeps the acceptance order there too. */
    item late = {.host = "a", .name = 9};
    late.node.seq = 25;
    late.node.slot = -1;
    net_sched_push(&s, &late.node, 0);
    net_sched_remove(&s, &it[3].node);
    net_sched_push(&s, &it[3].node, 0);
    net_sched_remove(&s, &it[0].node);
    net_sched_push(&s, &it[0].node, 0);
    assert_int_equal(pick_name(&s, NULL), 0);
    assert_int_equal(pick_name(&s, NULL), 9);
    assert_int_equal(pick_name(&s, NULL), 3);
    assert_int_equal(pick_name(&s, NULL), 1);
}

static void test_host_counts_come_and_go(void **state)
{
    (void)state;
    net_hosts h;
    net_hosts_init(&h);
    assert_int_equal(net_hosts_running(&h, "x"), 0);
    assert_true(net_hosts_acquire(&h, "x"));
    assert_true(net_hosts_acquire(&h, "x"));
    assert_true(net_hosts_acquire(&h, "y"));
    assert_int_equal(net_hosts_running(&h, "x"), 2);
    net_hosts_release(&h, "x");
    net_hosts_release(&h, "x");
    net_hosts_release(&h, "x"); /* one too many: ignored */
    assert_int_equal(net_hosts_running(&h, "x"), 0);
    assert_int_equal(net_hosts_running(&h, "y"), 1);
    assert_int_equal(h.n, 1);
    for (int i = 0; i < 40; i++) {
        char key[16];
        snprintf(key, sizeof key, "h%d", i);
        assert_true(net_hosts_acquire(&h, key));
    }
    assert_int_equal(h.n, 41);
    net_hosts_free(&h);
}

/* --- validator ---------------------------------------------------------------------------- */

static void test_html_is_recognised_by_type_or_by_its_first_bytes(void **state)
{
    (void)state;
    char msg[256];
    net_response plain = {.content_type = "application/vnd.apple.mpegurl"};
    const char *m3u = "#EXTM3U\n";
    assert_int_equal(net_validate_not_html(NULL, &plain, m3u, strlen(m3u), msg, sizeof msg),
                     KTH_OK);
    net_response html = {.content_type = "text/html; charset=utf-8"};
    assert_int_equal(net_validate_not_html(NULL, &html, m3u, strlen(m3u), msg, sizeof msg),
                     KTH_ERR_FORMAT);
    assert_non_null(strstr(msg, "HTML"));
    const char *page = "\xEF\xBB\xBF  \n<!DOCTYPE html><html>";
    assert_int_equal(net_validate_not_html(NULL, &plain, page, strlen(page), msg, sizeof msg),
                     KTH_ERR_FORMAT);
    const char *page2 = "<HTML><body>";
    assert_int_equal(net_validate_not_html(NULL, &plain, page2, strlen(page2), msg, sizeof msg),
                     KTH_ERR_FORMAT);
    const unsigned char key[16] = {'<', 'h', 't', 'm', 0x01};
    assert_int_equal(net_validate_not_html(NULL, &plain, key, sizeof key, msg, sizeof msg),
                     KTH_OK); /* a binary key that merely starts with '<' */
    assert_int_equal(net_validate_not_html(NULL, &plain, "", 0, msg, sizeof msg), KTH_OK);
}

#define S 1000000000LL /* one second in ns */

/* The window slides: bytes leave the count a window after they came, a full window ending
 * never resets it, and the next check is due at the earlier of the next slice boundary and a
 * window after the newest byte. */
static void test_pace_window_slides_and_says_when_to_look_again(void **state)
{
    (void)state;
    net_pace p;
    int64_t t0 = 100 * S;
    net_pace_start(&p, t0, 8 * S); /* slices of 1 s */
    assert_false(net_pace_full(&p, t0));
    assert_int_equal(net_pace_next_check(&p, t0), t0 + 8 * S);
    net_pace_add(&p, t0 + S / 2, 1000);       /* slice 0 */
    net_pace_add(&p, t0 + 3 * S + S / 2, 50); /* slice 3 */
    assert_int_equal(net_pace_bytes(&p, t0 + 4 * S), 1050);
    assert_false(net_pace_full(&p, t0 + 8 * S - 1));
    assert_true(net_pace_full(&p, t0 + 8 * S));
    /* At 8 s the count covers slices 0..8 (8 s); slice 0 drops out at 9 s. */
    assert_int_equal(net_pace_bytes(&p, t0 + 8 * S), 1050);
    assert_int_equal(net_pace_span_ns(&p, t0 + 8 * S), 8 * S);
    assert_int_equal(net_pace_next_check(&p, t0 + 8 * S), t0 + 9 * S);
    assert_int_equal(net_pace_next_check(&p, t0 + 8 * S + S / 2), t0 + 9 * S);
    assert_int_equal(net_pace_bytes(&p, t0 + 9 * S), 50);
    assert_int_equal(net_pace_span_ns(&p, t0 + 9 * S + S / 2), 8 * S + S / 2);
    /* Quiet since 3.5 s: a window after the newest byte comes before the next boundary. */
    assert_int_equal(net_pace_next_check(&p, t0 + 11 * S + S / 5), t0 + 11 * S + S / 2);
    assert_int_equal(net_pace_bytes(&p, t0 + 12 * S), 0);
    /* A long silence empties every slice, however many it skips. */
    net_pace_add(&p, t0 + 500 * S, 7);
    assert_int_equal(net_pace_bytes(&p, t0 + 500 * S), 7);
    assert_int_equal(p.last_byte_ns, t0 + 500 * S);
    assert_int_equal(net_pace_bytes(&p, t0 + 509 * S), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_range_is_parsed_and_checked),
        cmocka_unit_test(test_numbers_refuse_overflow_and_junk),
        cmocka_unit_test(test_retry_after_accepts_seconds_and_dates),
        cmocka_unit_test(test_headers_are_found_case_insensitively_last_wins),
        cmocka_unit_test(test_host_keys_name_scheme_host_and_port),
        cmocka_unit_test(test_host_key_of_a_long_host_is_whole),
        cmocka_unit_test(test_backoff_grows_to_the_cap_with_full_jitter),
        cmocka_unit_test(test_random_source_stays_in_the_unit_interval),
        cmocka_unit_test(test_transient_and_permanent_failures_are_told_apart),
        cmocka_unit_test(test_slots_pick_urgent_first_and_fifo),
        cmocka_unit_test(test_requeued_nodes_keep_their_place),
        cmocka_unit_test(test_host_counts_come_and_go),
        cmocka_unit_test(test_html_is_recognised_by_type_or_by_its_first_bytes),
        cmocka_unit_test(test_pace_window_slides_and_says_when_to_look_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
