/*
 * test_testserver_link.c — the shaped link (kts_link.h) delivers what its trace says, when it
 * says, shared among the bodies in progress, in link time only.
 *
 * Each case drives link time itself from event to event (kts_link_next_event), settling after
 * each move, and checks the bytes the server had handed to each connection (its log) against
 * the trace's own figures. Clients are real libcurl transfers on their own threads.
 */
#include "kts_link.h"
#include "test_testserver_support.h"

#include <curl/curl.h>

#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#define MS       INT64_C(1000000)
#define S        INT64_C(1000000000)
#define START_NS (5 * S) /* link time of the trace's start: not zero, to catch a mix-up */

/* Rates 1, 0.1 and 2 MB/s (8, 0.8 and 16 Mbit/s at scale 1) over one second each; at scale
 * 0.1: 100,000, 10,000 and 200,000 bytes per second. */
static const double trace_t[] = {0, 1, 2, 3};
static const double trace_mbps[] = {0, 8, 0.8, 16};

static kts_link_config config(uint32_t latency_ms)
{
    return (kts_link_config){.time_s = trace_t,
                             .mbps = trace_mbps,
                             .count = 4,
                             .scale = 0.1,
                             .latency_ms = latency_ms,
                             .start_ns = START_NS};
}

static void test_capacity_follows_the_trace_and_loops(void **state)
{
    (void)state;
    kts_link_config c = config(0);
    assert_float_equal(kts_link_capacity(&c, START_NS, START_NS + 1 * S), 100000, 1e-6);
    assert_float_equal(kts_link_capacity(&c, START_NS + 1 * S, START_NS + 2 * S), 10000, 1e-6);
    assert_float_equal(kts_link_capacity(&c, START_NS + 1500 * MS, START_NS + 2500 * MS),
                       5000 + 100000, 1e-6);
    /* A whole period is 310,000 bytes; the trace starts again after 3 s. */
    assert_float_equal(kts_link_capacity(&c, START_NS, START_NS + 3 * S), 310000, 1e-6);
    assert_float_equal(kts_link_capacity(&c, START_NS + 3 * S, START_NS + 4 * S), 100000, 1e-6);
    assert_float_equal(kts_link_capacity(&c, START_NS, START_NS + 7 * S), 720000, 1e-6);
    /* Before the start nothing is carried. */
    assert_float_equal(kts_link_capacity(&c, 0, START_NS), 0, 1e-9);
}

/* Bytes the server handed to request 1 of path. */
static uint64_t sent(kts_server *srv, const char *path)
{
    kts_log_entry e;
    return kts_log_find(srv, path, 1, &e) == KTH_OK ? e.body_bytes : 0;
}

static bool completed(kts_server *srv, const char *path)
{
    kts_log_entry e;
    return kts_log_find(srv, path, 1, &e) == KTH_OK && e.completed;
}

/* Moves the link to t, then waits until the bytes it allowed are with the sockets. */
static void move_to(kts_server *srv, int64_t t)
{
    assert_int_equal(kts_link_advance(srv, t), KTH_OK);
    assert_int_equal(kts_link_settle(srv, WAIT_MS), KTH_OK);
}

/* Waits (real time, bounded) until n requests have arrived and wait on the link. */
static void arrived(kts_server *srv, unsigned n)
{
    assert_int_equal(kts_wait_requests(srv, NULL, n, WAIT_MS), KTH_OK);
    assert_int_equal(kts_link_settle(srv, WAIT_MS), KTH_OK);
}

/* Moves from event to event until `path` has completed; returns the link time then. Checks at
 * every step that the bytes sent are what the link carried since `from` (one flow alone). */
static int64_t run_alone(kts_server *srv, const char *path, int64_t from, uint64_t size, int64_t t)
{
    kts_link_config c = config(80);
    for (int steps = 0; steps < 100 && !completed(srv, path); steps++) {
        int64_t next = kts_link_next_event(srv);
        assert_true(next != INT64_MAX);
        assert_true(next > t);
        t = next < t + 250 * MS ? next : t + 250 * MS; /* look in between too */
        move_to(srv, t);
        double want = kts_link_capacity(&c, from, t);
        uint64_t got = sent(srv, path);
        if (got < size)
            assert_true(fabs((double)got - want) <= 1.0);
        if (got == size && !completed(srv, path))
            assert_int_equal(kts_wait_completed(srv, path, 1, WAIT_MS), KTH_OK);
    }
    assert_true(completed(srv, path));
    return t;
}

static void test_one_body_gets_the_whole_link_after_the_latency(void **state)
{
    kts_server *srv = *state;
    kts_link_config c = config(80);
    assert_int_equal(kts_link_attach(srv, &c), KTH_OK);
    assert_int_equal(kts_link_attach(srv, &c), KTH_ERR_STATE);
    assert_int_equal(kts_add_synth(srv, "/a.ts", 150000, 7, NULL), KTH_OK);
    ktc_async a;
    async_start(&a, srv, "/a.ts");
    arrived(srv, 1);
    /* Nothing before the latency ends, at 80 ms. */
    assert_int_equal(kts_link_next_event(srv), START_NS + 80 * MS);
    move_to(srv, START_NS + 79 * MS);
    assert_int_equal(sent(srv, "/a.ts"), 0);
    /* 92,000 bytes by 1 s, 102,000 by 2 s, the last 48,000 at 200,000 B/s: done at 2.24 s. */
    int64_t end = run_alone(srv, "/a.ts", START_NS + 80 * MS, 150000, START_NS + 79 * MS);
    assert_true(llabs(end - (START_NS + 2240 * MS)) < 1000);
    async_join(&a);
    assert_int_equal(a.r.rc, CURLE_OK);
    assert_int_equal(a.r.len, 150000);
    assert_int_equal(kts_synth_check(7, 0, a.r.body, a.r.len), 150000);
    kts_link_stats st;
    kts_link_get_stats(srv, &st);
    assert_int_equal(st.carried, 150000);
    assert_int_equal(st.now_ns, end);
    ktc_response_free(&a.r);
}

static void test_two_bodies_share_the_link_equally(void **state)
{
    kts_server *srv = *state;
    kts_link_config c = config(80);
    assert_int_equal(kts_link_attach(srv, &c), KTH_OK);
    assert_int_equal(kts_add_synth(srv, "/small.ts", 20000, 1, NULL), KTH_OK);
    assert_int_equal(kts_add_synth(srv, "/big.ts", 60000, 2, NULL), KTH_OK);
    ktc_async a, b;
    async_start(&a, srv, "/small.ts");
    async_start(&b, srv, "/big.ts");
    arrived(srv, 2);
    /* From 80 ms each gets 50,000 B/s: the small one ends at 0.48 s with 20,000 bytes each;
     * the big one then has the whole link: its other 40,000 bytes take 0.4 s, ending at 0.88 s. */
    int64_t t = START_NS;
    int64_t small_end = 0, big_end = 0;
    for (int steps = 0; steps < 100 && big_end == 0; steps++) {
        int64_t next = kts_link_next_event(srv);
        assert_true(next != INT64_MAX);
        t = t > START_NS && next > t + 100 * MS ? t + 100 * MS : next;
        move_to(srv, t);
        if (t > START_NS + 80 * MS && t <= START_NS + 480 * MS) {
            double each = kts_link_capacity(&c, START_NS + 80 * MS, t) / 2;
            assert_true(fabs((double)sent(srv, "/small.ts") - each) <= 1.0);
            assert_true(fabs((double)sent(srv, "/big.ts") - each) <= 1.0);
        }
        if (small_end == 0 && sent(srv, "/small.ts") == 20000) {
            assert_int_equal(kts_wait_completed(srv, "/small.ts", 1, WAIT_MS), KTH_OK);
            small_end = t;
        }
        if (sent(srv, "/big.ts") == 60000) {
            assert_int_equal(kts_wait_completed(srv, "/big.ts", 1, WAIT_MS), KTH_OK);
            big_end = t;
        }
    }
    assert_true(llabs(small_end - (START_NS + 480 * MS)) < 1000);
    assert_true(llabs(big_end - (START_NS + 880 * MS)) < 1000);
    async_join(&a);
    async_join(&b);
    assert_int_equal(kts_synth_check(1, 0, a.r.body, a.r.len), 20000);
    assert_int_equal(kts_synth_check(2, 0, b.r.body, b.r.len), 60000);
    ktc_response_free(&a.r);
    ktc_response_free(&b.r);
}

/* A raw connection that asks for path and reads nothing. */
static int raw_get(kts_server *srv, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(kts_port(srv))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    return fd;
}

static void test_a_body_whose_client_went_gives_up_its_share(void **state)
{
    kts_server *srv = *state;
    kts_link_config c = config(80);
    assert_int_equal(kts_link_attach(srv, &c), KTH_OK);
    assert_int_equal(kts_add_synth(srv, "/gone.ts", 200000, 3, NULL), KTH_OK);
    assert_int_equal(kts_add_synth(srv, "/kept.ts", 150000, 4, NULL), KTH_OK);
    int fd = raw_get(srv, "/gone.ts");
    ktc_async a;
    async_start(&a, srv, "/kept.ts");
    arrived(srv, 2);
    move_to(srv, START_NS + 80 * MS);
    move_to(srv, START_NS + 280 * MS); /* 20,000 bytes carried: 10,000 each */
    assert_true(fabs((double)sent(srv, "/kept.ts") - 10000) <= 1.0);
    close(fd);
    /* From here the kept body has the link alone: 140,000 more bytes, done where a body
     * alone from 0.38 s would be (the 10,000 bytes it lost to the other one). */
    move_to(srv, START_NS + 281 * MS); /* the move after the close finds the client gone */
    kts_link_stats st;
    kts_link_get_stats(srv, &st);
    assert_int_equal(st.gone, 1);
    int64_t end = run_alone(srv, "/kept.ts", START_NS + 180 * MS, 150000, START_NS + 281 * MS);
    (void)end;
    async_join(&a);
    assert_int_equal(kts_synth_check(4, 0, a.r.body, a.r.len), 150000);
    ktc_response_free(&a.r);
}

/* A limit holds one path's bodies on an otherwise healthy link: the stalled one stops at its
 * limit point for good, the trickling one gets its own pace past it, and the other body has
 * the rest of the link. */
static void test_a_limit_stalls_or_trickles_one_path(void **state)
{
    kts_server *srv = *state;
    kts_link_config c = config(0);
    assert_int_equal(kts_link_attach(srv, &c), KTH_OK);
    assert_int_equal(kts_link_limit(srv, "/stalls.ts", 10000, 0), KTH_OK);
    assert_int_equal(kts_link_limit(srv, "/trickles.ts", 10000, 100), KTH_OK);
    assert_int_equal(kts_link_limit(srv, "no-slash", 0, 1), KTH_ERR_INVALID_ARG);
    assert_int_equal(kts_add_synth(srv, "/stalls.ts", 50000, 5, NULL), KTH_OK);
    assert_int_equal(kts_add_synth(srv, "/trickles.ts", 50000, 6, NULL), KTH_OK);
    assert_int_equal(kts_add_synth(srv, "/free.ts", 100000, 7, NULL), KTH_OK);
    int stalls = raw_get(srv, "/stalls.ts"), trickles = raw_get(srv, "/trickles.ts");
    ktc_async a;
    async_start(&a, srv, "/free.ts");
    arrived(srv, 3);
    /* Three ways for 300 ms (30,000 bytes): 10,000 each; the two limited ones reach their
     * limit point exactly then. */
    move_to(srv, START_NS + 300 * MS);
    assert_true(fabs((double)sent(srv, "/free.ts") - 10000) <= 1.0);
    assert_int_equal(sent(srv, "/stalls.ts"), 10000);
    assert_int_equal(sent(srv, "/trickles.ts"), 10000);
    /* The next 500 ms carry 50,000 bytes: 50 to the trickle, none to the stall, the rest to the
     * free body. */
    move_to(srv, START_NS + 800 * MS);
    assert_int_equal(sent(srv, "/stalls.ts"), 10000);
    assert_true(fabs((double)sent(srv, "/trickles.ts") - 10050) <= 1.0);
    assert_true(fabs((double)sent(srv, "/free.ts") - (10000 + 50000 - 50)) <= 1.0);
    close(stalls);
    close(trickles);
    for (int i = 0; i < 100 && !completed(srv, "/free.ts"); i++)
        move_to(srv, kts_link_next_event(srv) < INT64_MAX ? kts_link_next_event(srv)
                                                          : START_NS + (int64_t)(i + 9) * S);
    async_join(&a);
    assert_int_equal(kts_synth_check(7, 0, a.r.body, a.r.len), 100000);
    ktc_response_free(&a.r);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_follows_the_trace_and_loops),
        cmocka_unit_test_setup_teardown(test_one_body_gets_the_whole_link_after_the_latency,
                                        server_up, server_down),
        cmocka_unit_test_setup_teardown(test_two_bodies_share_the_link_equally, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_a_body_whose_client_went_gives_up_its_share, server_up,
                                        server_down),
        cmocka_unit_test_setup_teardown(test_a_limit_stalls_or_trickles_one_path, server_up,
                                        server_down),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
