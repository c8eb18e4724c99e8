/*
 * test_net_peers.c — peers and scheduling: peers are pulled (polled when registered, woken or
 * when a fetch of theirs ends, never in a loop), slots are served urgent first and FIFO within a
 * slot under a concurrency limit, a priority change moves queued commands, the per-host limit
 * holds, unregistration waits for the last callback, and bandwidth samples reach listeners.
 *
 * Order is forced with the server's gates: the first request waits at a gate while the others
 * queue behind the limit; the server's request log then shows the order they were sent in.
 */
#include "test_net_support.h"

#include <stdatomic.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define SEED 11
#define MAXC 8

typedef struct tpeer {
    net_peer *peer;
    char urls[MAXC][512];
    int prios[MAXC];
    unsigned n;
    rec recs[MAXC];
    bool added;
    atomic_uint polls;
    atomic_uint samples;
    atomic_ullong sample_bytes;
    bool add_on_every_wake; /* add command `polls - 1` on each poll */
} tpeer;

static net_poll_result tpeer_poll(void *user, net_batch *b)
{
    tpeer *p = user;
    unsigned poll = atomic_fetch_add(&p->polls, 1);
    if (p->add_on_every_wake) {
        if (poll < p->n) {
            net_fetch_spec s = rec_spec(&p->recs[poll], p->urls[poll]);
            assert_int_equal(net_batch_add(b, &s, NULL), KTH_OK);
        }
        return NET_POLL_IDLE;
    }
    if (!p->added) {
        p->added = true;
        for (unsigned i = 0; i < p->n; i++) {
            net_fetch_spec s = rec_spec(&p->recs[i], p->urls[i]);
            s.priority = p->prios[i];
            uint64_t id = 0;
            assert_int_equal(net_batch_add(b, &s, &id), KTH_OK);
            assert_true(id > 0);
        }
    }
    return NET_POLL_IDLE;
}

static void tpeer_sample(void *user, const net_sample *s)
{
    tpeer *p = user;
    atomic_fetch_add(&p->samples, 1);
    atomic_fetch_add(&p->sample_bytes, s->bytes);
}

static void tpeer_init(tpeer *p, net_fixture *f, const char *const *paths, const int *prios,
                       unsigned n, size_t body)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    for (unsigned i = 0; i < n; i++) {
        net_url(f, paths[i], p->urls[i]);
        p->prios[i] = prios ? prios[i] : NET_FETCH_HIGH;
        rec_init(&p->recs[i], body, 0);
    }
}

static void tpeer_register(tpeer *p, kth_downloader *d, int priority)
{
    net_peer_ops ops = {.poll_next = tpeer_poll, .on_sample = tpeer_sample};
    assert_int_equal(net_peer_register(d, &ops, p, priority, NULL, &p->peer), KTH_OK);
}

static void tpeer_free(tpeer *p)
{
    for (unsigned i = 0; i < p->n; i++)
        rec_free(&p->recs[i]);
}

static int limit_one_up(void **state)
{
    kth_downloader_options o;
    net_test_options(&o);
    o.max_in_flight = 1;
    return net_fixture_up_with(state, &o);
}

/* The paths of the GET requests the server saw, in arrival order, joined by spaces. */
static void log_order(net_fixture *f, char *out, size_t size)
{
    out[0] = '\0';
    size_t n = kts_log_count(f->srv);
    for (size_t i = 0; i < n; i++) {
        kts_log_entry e;
        assert_int_equal(kts_log_get(f->srv, i, &e), KTH_OK);
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", len ? " " : "", e.path);
    }
}

static void gate_first(net_fixture *f, rec *r, char *url)
{
    assert_int_equal(kts_add_synth(f->srv, "/gate", 10, SEED, NULL), KTH_OK);
    kts_fault g = {.kind = KTS_FAULT_GATE};
    assert_int_equal(kts_add_fault(f->srv, "/gate", &g), KTH_OK);
    rec_init(r, 10, 0);
    net_fetch_spec s = rec_spec(r, net_url(f, "/gate", url));
    assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_OK);
    assert_int_equal(kts_wait_gated(f->srv, "/gate", 1, NET_WAIT_MS), KTH_OK);
}

static void wait_all(tpeer *p)
{
    for (unsigned i = 0; i < p->n; i++) {
        assert_true(rec_wait(&p->recs[i], NET_WAIT_MS));
        assert_int_equal(p->recs[i].result.status, KTH_OK);
        assert_int_equal(p->recs[i].completions, 1);
    }
}

static void test_slots_are_served_urgent_first_fifo_within_a_slot(void **state)
{
    net_fixture *f = *state;
    char gurl[512];
    rec gate;
    gate_first(f, &gate, gurl);

    /* Paths with distinct names so the log tells them apart. */
    static const char *const ap[] = {"/a-low", "/a-high"};
    static const char *const bp[] = {"/b-low", "/b-high"};
    static const int prios[] = {NET_FETCH_LOW, NET_FETCH_HIGH};
    const char *all[] = {"/a-low", "/a-high", "/b-low", "/b-high", "/one-off"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(kts_add_synth(f->srv, all[i], 10, SEED, NULL), KTH_OK);
    tpeer a, b;
    tpeer_init(&a, f, ap, prios, 2, 10);
    tpeer_init(&b, f, bp, prios, 2, 10);
    tpeer_register(&a, f->d, NET_PEER_BACKGROUND);
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    tpeer_register(&b, f->d, NET_PEER_FOREGROUND);
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    char url[512];
    rec one;
    rec_init(&one, 10, 0);
    net_fetch_spec s = rec_spec(&one, net_url(f, "/one-off", url));
    assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_OK);
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    kth_downloader_stats st;
    kth_downloader_get_stats(f->d, &st);
    assert_int_equal(st.queued, 5);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.peers, 2);

    assert_int_equal(kts_gate_release(f->srv, "/gate", 1), KTH_OK);
    wait_all(&a);
    wait_all(&b);
    assert_true(rec_wait(&one, NET_WAIT_MS));
    char order[256];
    log_order(f, order, sizeof order);
    /* foreground-high (b-high, then the one-off accepted later), foreground-low,
     * background-high, background-low */
    assert_string_equal(order, "/gate /b-high /one-off /b-low /a-high /a-low");

    assert_int_equal(net_peer_unregister(a.peer), KTH_OK);
    assert_int_equal(net_peer_unregister(b.peer), KTH_OK);
    tpeer_free(&a);
    tpeer_free(&b);
    rec_free(&one);
    rec_free(&gate);
}

static void test_priority_change_moves_queued_commands(void **state)
{
    net_fixture *f = *state;
    char gurl[512];
    rec gate;
    gate_first(f, &gate, gurl);
    static const char *const ap[] = {"/a-low", "/a-high"};
    static const char *const bp[] = {"/b-low", "/b-high"};
    static const int prios[] = {NET_FETCH_LOW, NET_FETCH_HIGH};
    const char *all[] = {"/a-low", "/a-high", "/b-low", "/b-high"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(kts_add_synth(f->srv, all[i], 10, SEED, NULL), KTH_OK);
    tpeer a, b;
    tpeer_init(&a, f, ap, prios, 2, 10);
    tpeer_init(&b, f, bp, prios, 2, 10);
    tpeer_register(&a, f->d, NET_PEER_BACKGROUND);
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    tpeer_register(&b, f->d, NET_PEER_FOREGROUND);
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);

    net_peer_set_priority(a.peer, NET_PEER_FOREGROUND); /* a starts playing */
    net_peer_set_priority(b.peer, NET_PEER_BACKGROUND); /* b is now preloading */
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    assert_int_equal(kts_gate_release(f->srv, "/gate", 1), KTH_OK);
    wait_all(&a);
    wait_all(&b);
    char order[256];
    log_order(f, order, sizeof order);
    assert_string_equal(order, "/gate /a-high /a-low /b-high /b-low");
    assert_int_equal(net_peer_unregister(a.peer), KTH_OK);
    assert_int_equal(net_peer_unregister(b.peer), KTH_OK);
    tpeer_free(&a);
    tpeer_free(&b);
    rec_free(&gate);
}

static void test_per_host_limit_holds_while_other_hosts_proceed(void **state)
{
    (void)state;
    kth_downloader_options o;
    net_test_options(&o);
    o.max_in_flight = 4;
    o.max_per_host = 1;
    kth_downloader *d = NULL;
    assert_int_equal(kth_downloader_new(&o, &d, NULL, 0), KTH_OK);
    kts_server *s1 = NULL, *s2 = NULL;
    assert_int_equal(kts_start(NULL, &s1), KTH_OK);
    assert_int_equal(kts_start(NULL, &s2), KTH_OK);
    kts_fault g = {.kind = KTS_FAULT_GATE};
    assert_int_equal(kts_add_fault(s1, "*", &g), KTH_OK);
    assert_int_equal(kts_add_fault(s2, "*", &g), KTH_OK);
    char urls[3][512];
    kts_url(s1, "/synth/100", urls[0], 512);
    kts_url(s1, "/synth/200", urls[1], 512);
    kts_url(s2, "/synth/300", urls[2], 512);
    rec r[3];
    for (int i = 0; i < 3; i++) {
        rec_init(&r[i], 300, 0);
        net_fetch_spec s = rec_spec(&r[i], urls[i]);
        assert_int_equal(net_downloader_submit(d, &s, NULL), KTH_OK);
    }
    assert_int_equal(kts_wait_gated(s1, "/synth/100", 1, NET_WAIT_MS), KTH_OK);
    assert_int_equal(kts_wait_gated(s2, "/synth/300", 1, NET_WAIT_MS), KTH_OK);
    assert_int_equal(net_downloader_barrier(d, NET_WAIT_MS), KTH_OK);
    assert_int_equal(kts_request_count(s1, NULL, NULL), 1); /* the second waits for the host */
    kth_downloader_stats st;
    kth_downloader_get_stats(d, &st);
    assert_int_equal(st.running, 2);
    assert_int_equal(st.queued, 1);
    assert_int_equal(kts_gate_release(s1, "/synth/100", KTS_RELEASE_ALL), KTH_OK);
    assert_int_equal(kts_gate_release(s1, "/synth/200", KTS_RELEASE_ALL), KTH_OK);
    assert_int_equal(kts_gate_release(s2, "/synth/300", KTS_RELEASE_ALL), KTH_OK);
    for (int i = 0; i < 3; i++) {
        assert_true(rec_wait(&r[i], NET_WAIT_MS));
        assert_int_equal(r[i].result.status, KTH_OK);
    }
    kth_downloader_unref(d);
    kts_stop(s1);
    kts_stop(s2);
    for (int i = 0; i < 3; i++)
        rec_free(&r[i]);
}

static void test_peer_is_polled_when_woken_and_after_its_completions_only(void **state)
{
    net_fixture *f = *state;
    static const char *const paths[] = {"/synth/100?seed=1", "/synth/100?seed=2"};
    tpeer p;
    tpeer_init(&p, f, paths, NULL, 2, 100);
    p.add_on_every_wake = true;
    tpeer_register(&p, f->d, NET_PEER_FOREGROUND);
    /* Registration polls once (adds command 0); its completion polls again (adds 1); that
     * one's completion polls a third time (adds nothing). */
    assert_true(rec_wait(&p.recs[0], NET_WAIT_MS));
    assert_true(rec_wait(&p.recs[1], NET_WAIT_MS));
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    assert_int_equal(atomic_load(&p.polls), 3);
    /* Idle: turns of the loop do not poll it. */
    net_downloader_wake(f->d);
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    assert_int_equal(atomic_load(&p.polls), 3);
    /* A wake does, once however many wakes coalesce. */
    net_peer_wake(p.peer);
    net_peer_wake(p.peer);
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    unsigned polls = atomic_load(&p.polls);
    assert_true(polls == 4 || polls == 5);
    assert_int_equal(net_peer_unregister(p.peer), KTH_OK);
    assert_int_equal(atomic_load(&p.samples), 2);
    assert_int_equal(atomic_load(&p.sample_bytes), 200);
    tpeer_free(&p);
}

typedef struct listener_state {
    atomic_uint calls;
    atomic_ullong bytes;
    atomic_llong max_ttfb_ns;
    atomic_llong min_duration_ns;
    atomic_llong last_duration_ns;
} listener_state;

static void on_sample(void *user, const net_sample *s)
{
    listener_state *ls = user;
    atomic_fetch_add(&ls->calls, 1);
    atomic_fetch_add(&ls->bytes, s->bytes);
    if (s->ttfb_ns > atomic_load(&ls->max_ttfb_ns))
        atomic_store(&ls->max_ttfb_ns, s->ttfb_ns);
    atomic_store(&ls->last_duration_ns, s->duration_ns);
    if (s->duration_ns < s->ttfb_ns || s->ttfb_ns <= 0)
        atomic_store(&ls->min_duration_ns, -1); /* flags an impossible sample */
}

static void test_bandwidth_samples_reach_listeners(void **state)
{
    net_fixture *f = *state;
    listener_state ls;
    memset(&ls, 0, sizeof ls);
    net_listener *l = NULL;
    assert_int_equal(net_downloader_add_listener(f->d, on_sample, &ls, &l), KTH_OK);
    assert_int_equal(kts_add_synth(f->srv, "/bw.bin", 500000, SEED, NULL), KTH_OK);
    kts_fault lat = {.kind = KTS_FAULT_LATENCY, .ms = 50};
    assert_int_equal(kts_add_fault(f->srv, "/bw.bin", &lat), KTH_OK);
    char url[512];
    rec r;
    rec_init(&r, 500000, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/bw.bin", url));
    assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_OK);
    assert_true(rec_wait(&r, NET_WAIT_MS));
    assert_int_equal(r.result.status, KTH_OK);
    assert_int_equal(atomic_load(&ls.calls), 1);
    assert_int_equal(atomic_load(&ls.bytes), 500000);
    assert_true(atomic_load(&ls.max_ttfb_ns) >= 50 * 1000000LL); /* the latency is in TTFB */
    assert_true(atomic_load(&ls.min_duration_ns) == 0);
    net_downloader_remove_listener(f->d, l);
    rec_free(&r);
    rec_init(&r, 100, 0);
    s = rec_spec(&r, net_url(f, "/synth/100", url));
    assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_OK);
    assert_true(rec_wait(&r, NET_WAIT_MS));
    assert_int_equal(atomic_load(&ls.calls), 1); /* removed: not called again */
    rec_free(&r);
}

/* A downloader of the test's options (no watchdog) on the virtual clock vc, set to 1 s. */
static kth_downloader *virtual_downloader(platform_virtual_clock *vc)
{
    platform_virtual_clock_init(vc, 1000000000);
    net_downloader_hooks hooks = {.clock = &vc->base};
    kth_downloader_options o;
    net_test_options(&o);
    o.watchdog_ms = -1;
    kth_downloader *d = NULL;
    assert_int_equal(net_downloader_new(&o, &hooks, &d, NULL, 0), KTH_OK);
    return d;
}

/* A sample's times are read on the downloader's clock, as everything that judges the link is:
 * with a virtual clock, a transfer held 2 s (virtual) before its headers and 3 s in the middle
 * of its body took exactly that, whatever the real time was. */
static void test_bandwidth_samples_are_timed_on_the_downloaders_clock(void **state)
{
    net_fixture *f = *state;
    platform_virtual_clock vc;
    kth_downloader *d = virtual_downloader(&vc);
    listener_state ls;
    memset(&ls, 0, sizeof ls);
    net_listener *l = NULL;
    assert_int_equal(net_downloader_add_listener(d, on_sample, &ls, &l), KTH_OK);
    assert_int_equal(kts_add_synth(f->srv, "/held.bin", 100000, SEED, NULL), KTH_OK);
    assert_int_equal(kts_add_fault(f->srv, "/held.bin", &(kts_fault){.kind = KTS_FAULT_GATE}),
                     KTH_OK);
    assert_int_equal(
        kts_add_fault(f->srv, "/held.bin",
                      &(kts_fault){.kind = KTS_FAULT_STALL_AFTER, .bytes = 50000, .ms = 0}),
        KTH_OK);
    char url[512];
    rec r;
    rec_init(&r, 100000, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/held.bin", url));
    assert_int_equal(net_downloader_submit(d, &s, NULL), KTH_OK);
    assert_int_equal(kts_wait_gated(f->srv, "/held.bin", 1, NET_WAIT_MS), KTH_OK);
    platform_virtual_clock_advance(&vc, 2000000000);
    assert_int_equal(kts_gate_release(f->srv, "/held.bin", 1), KTH_OK);
    assert_int_equal(kts_wait_stalled(f->srv, "/held.bin", 1, NET_WAIT_MS), KTH_OK);
    /* The bytes before the stall are in before the clock moves on (bounded). */
    uint64_t written = 0;
    for (int i = 0; i < 2000 && written < 50000; i++) {
        assert_int_equal(net_downloader_barrier(d, NET_WAIT_MS), KTH_OK);
        pthread_mutex_lock(&r.m);
        written = r.written;
        pthread_mutex_unlock(&r.m);
    }
    assert_int_equal(written, 50000);
    platform_virtual_clock_advance(&vc, 3000000000);
    assert_int_equal(kts_stall_release(f->srv, "/held.bin", 1), KTH_OK);
    assert_true(rec_wait(&r, NET_WAIT_MS));
    assert_int_equal(r.result.status, KTH_OK);
    assert_int_equal(atomic_load(&ls.calls), 1);
    assert_int_equal(atomic_load(&ls.max_ttfb_ns), 2000000000);
    assert_int_equal(atomic_load(&ls.last_duration_ns), 5000000000);
    net_downloader_remove_listener(d, l);
    rec_free(&r);
    kth_downloader_unref(d);
}

/* --- unregistration ------------------------------------------------------------------------- */

static void test_unregister_with_fetches_in_flight_returns_after_the_last_callback(void **state)
{
    net_fixture *f = *state;
    kts_fault g = {.kind = KTS_FAULT_GATE};
    assert_int_equal(kts_add_fault(f->srv, "/held", &g), KTH_OK);
    assert_int_equal(kts_add_synth(f->srv, "/held", 1000, SEED, NULL), KTH_OK);
    static const char *const paths[] = {"/held", "/held", "/held", "/held",
                                        "/held", "/held", "/held", "/held"};
    tpeer *p = calloc(1, sizeof *p); /* freed right after unregistering: ASan checks */
    tpeer_init(p, f, paths, NULL, 8, 1000);
    tpeer_register(p, f->d, NET_PEER_FOREGROUND);
    assert_int_equal(kts_wait_gated(f->srv, "/held", 6, NET_WAIT_MS), KTH_OK);
    assert_int_equal(net_peer_unregister(p->peer), KTH_OK);
    for (unsigned i = 0; i < 8; i++) {
        assert_int_equal(p->recs[i].completions, 1); /* no wait: already delivered */
        assert_int_equal(p->recs[i].result.status, KTH_ERR_CANCELLED);
    }
    tpeer_free(p);
    free(p);
    kts_gate_release(f->srv, "/held", KTS_RELEASE_ALL);
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    kth_downloader_stats st;
    kth_downloader_get_stats(f->d, &st);
    assert_int_equal(st.peers, 0);
    assert_int_equal(st.running + st.queued, 0);
    assert_int_equal(st.cancelled, 8);
}

typedef struct async_peer {
    tpeer base;
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
    kth_status sync_from_callback;
} async_peer;

static void async_done(void *user)
{
    async_peer *ap = user;
    pthread_mutex_lock(&ap->m);
    ap->done = true;
    pthread_cond_broadcast(&ap->c);
    pthread_mutex_unlock(&ap->m);
}

static void unregister_on_completion(void *user, const net_result *res)
{
    async_peer *ap = user;
    rec_complete(&ap->base.recs[0], res);
    ap->sync_from_callback = net_peer_unregister(ap->base.peer); /* refused here */
    net_peer_unregister_async(ap->base.peer, async_done, ap);
}

static net_poll_result async_poll(void *user, net_batch *b)
{
    async_peer *ap = user;
    if (!ap->base.added) {
        ap->base.added = true;
        net_fetch_spec s = rec_spec(&ap->base.recs[0], ap->base.urls[0]);
        s.complete = unregister_on_completion;
        s.user = ap;
        /* rec_write/rec_response need the rec, not the peer */
        s.write = NULL;
        s.on_response = NULL;
        assert_int_equal(net_batch_add(b, &s, NULL), KTH_OK);
        s.complete = NULL; /* a second command, still running when the first completes */
        s.url = ap->base.urls[1];
        assert_int_equal(net_batch_add(b, &s, NULL), KTH_OK);
    }
    return NET_POLL_IDLE;
}

static void test_unregister_async_from_a_callback(void **state)
{
    net_fixture *f = *state;
    kts_fault g = {.kind = KTS_FAULT_GATE};
    assert_int_equal(kts_add_fault(f->srv, "/never", &g), KTH_OK);
    assert_int_equal(kts_add_synth(f->srv, "/never", 10, SEED, NULL), KTH_OK);
    async_peer *ap = calloc(1, sizeof *ap);
    static const char *const paths[] = {"/synth/10", "/never"};
    tpeer_init(&ap->base, f, paths, NULL, 2, 10);
    pthread_mutex_init(&ap->m, NULL);
    pthread_cond_init(&ap->c, NULL);
    net_peer_ops ops = {.poll_next = async_poll};
    assert_int_equal(net_peer_register(f->d, &ops, ap, NET_PEER_FOREGROUND, NULL, &ap->base.peer),
                     KTH_OK);
    pthread_mutex_lock(&ap->m);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += NET_WAIT_MS / 1000;
    while (!ap->done && pthread_cond_timedwait(&ap->c, &ap->m, &until) == 0)
        ;
    bool done = ap->done;
    pthread_mutex_unlock(&ap->m);
    assert_true(done);
    assert_int_equal(ap->sync_from_callback, KTH_ERR_STATE);
    assert_int_equal(ap->base.recs[0].result.status, KTH_OK);
    kts_gate_release(f->srv, "/never", KTS_RELEASE_ALL);
    kth_downloader_stats st;
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    kth_downloader_get_stats(f->d, &st);
    assert_int_equal(st.peers, 0);
    assert_int_equal(st.cancelled, 1); /* the second command */
    tpeer_free(&ap->base);
    pthread_cond_destroy(&ap->c);
    pthread_mutex_destroy(&ap->m);
    free(ap);
}

static void test_cancelling_a_peer_token_cancels_its_commands_but_keeps_it(void **state)
{
    net_fixture *f = *state;
    kts_fault g = {.kind = KTS_FAULT_GATE};
    assert_int_equal(kts_add_fault(f->srv, "/held2", &g), KTH_OK);
    assert_int_equal(kts_add_synth(f->srv, "/held2", 10, SEED, NULL), KTH_OK);
    platform_cancel *parent = platform_cancel_new(NULL);
    static const char *const paths[] = {"/held2", "/held2"};
    tpeer p;
    tpeer_init(&p, f, paths, NULL, 2, 10);
    net_peer_ops ops = {.poll_next = tpeer_poll};
    assert_int_equal(net_peer_register(f->d, &ops, &p, NET_PEER_FOREGROUND, parent, &p.peer),
                     KTH_OK);
    assert_int_equal(kts_wait_gated(f->srv, "/held2", 2, NET_WAIT_MS), KTH_OK);
    int64_t t0 = net_test_now_ms();
    platform_cancel_cancel(parent); /* e.g. the stream was cancelled */
    assert_true(rec_wait(&p.recs[0], NET_WAIT_MS));
    assert_true(rec_wait(&p.recs[1], NET_WAIT_MS));
    assert_true(net_test_now_ms() - t0 < 1000);
    assert_int_equal(p.recs[0].result.status, KTH_ERR_CANCELLED);
    assert_int_equal(p.recs[1].result.status, KTH_ERR_CANCELLED);
    assert_int_equal(net_peer_unregister(p.peer), KTH_OK);
    platform_cancel_unref(parent);
    kts_gate_release(f->srv, "/held2", KTS_RELEASE_ALL);
    tpeer_free(&p);
}

typedef struct timer_peer {
    net_peer *peer;
    atomic_uint polls;
    pthread_mutex_t m;
    pthread_cond_t c;
} timer_peer;

static net_poll_result timer_peer_poll(void *user, net_batch *b)
{
    (void)b;
    timer_peer *p = user;
    if (atomic_load(&p->polls) == 0)
        net_peer_wake_after(p->peer, 2000000000); /* from the loop's own thread */
    pthread_mutex_lock(&p->m);
    atomic_fetch_add(&p->polls, 1);
    pthread_cond_broadcast(&p->c);
    pthread_mutex_unlock(&p->m);
    return NET_POLL_IDLE;
}

static void timer_peer_init(timer_peer *p)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->m, NULL);
    pthread_cond_init(&p->c, NULL);
}

static void timer_peer_destroy(timer_peer *p)
{
    pthread_cond_destroy(&p->c);
    pthread_mutex_destroy(&p->m);
}

static void test_peer_timer_polls_once_when_due_on_the_downloaders_clock(void **state)
{
    (void)state;
    platform_virtual_clock vc;
    kth_downloader *d = virtual_downloader(&vc);
    timer_peer p;
    timer_peer_init(&p);
    net_peer_ops ops = {.poll_next = timer_peer_poll};
    assert_int_equal(net_peer_register(d, &ops, &p, NET_PEER_FOREGROUND, NULL, &p.peer), KTH_OK);
    assert_int_equal(net_downloader_barrier(d, NET_WAIT_MS), KTH_OK);
    assert_int_equal(atomic_load(&p.polls), 1);
    /* The loop says when its timer is due, so a driver of the clock can move it that far. */
    int64_t due = 0;
    assert_true(net_downloader_next_due(d, &due));
    assert_int_equal(due, 3000000000);
    /* A later timer asked for from another thread does not replace the earlier one. */
    net_peer_wake_after(p.peer, 5000000000);
    platform_virtual_clock_advance(&vc, 1999000000);
    net_downloader_wake(d);
    assert_int_equal(net_downloader_barrier(d, NET_WAIT_MS), KTH_OK);
    assert_int_equal(atomic_load(&p.polls), 1); /* not due yet: turns do not poll it */
    platform_virtual_clock_advance(&vc, 1000000);
    net_downloader_wake(d);
    assert_int_equal(net_downloader_barrier(d, NET_WAIT_MS), KTH_OK);
    assert_int_equal(atomic_load(&p.polls), 2);
    /* It fired once; nothing is pending any more. */
    platform_virtual_clock_advance(&vc, 10000000000);
    net_downloader_wake(d);
    assert_int_equal(net_downloader_barrier(d, NET_WAIT_MS), KTH_OK);
    assert_int_equal(atomic_load(&p.polls), 2);
    assert_false(net_downloader_next_due(d, &due));
    /* A timer with no delay is a wake. */
    net_peer_wake_after(p.peer, 0);
    assert_int_equal(net_downloader_barrier(d, NET_WAIT_MS), KTH_OK);
    assert_int_equal(atomic_load(&p.polls), 3);
    assert_int_equal(net_peer_unregister(p.peer), KTH_OK);
    kth_downloader_unref(d);
    timer_peer_destroy(&p);
}

static void test_peer_timer_ends_the_loops_sleep(void **state)
{
    net_fixture *f = *state;
    timer_peer p;
    timer_peer_init(&p);
    net_peer_ops ops = {.poll_next = timer_peer_poll};
    int64_t t0 = net_test_now_ms(); /* before the first poll arms the timer */
    assert_int_equal(net_peer_register(f->d, &ops, &p, NET_PEER_FOREGROUND, NULL, &p.peer), KTH_OK);
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    /* Nothing else happens: only the timer (2 s, armed in the first poll) ends the sleep. */
    pthread_mutex_lock(&p.m);
    while (atomic_load(&p.polls) < 2 && net_test_now_ms() - t0 < NET_WAIT_MS) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&p.c, &p.m, &ts);
    }
    pthread_mutex_unlock(&p.m);
    int64_t waited = net_test_now_ms() - t0;
    assert_int_equal(atomic_load(&p.polls), 2);
    assert_true(waited >= 1900 && waited < 3500);
    assert_int_equal(net_peer_unregister(p.peer), KTH_OK);
    timer_peer_destroy(&p);
}

/* The rate memory: per scheme, host and port (host case ignored), the last figure told wins,
 * and past its capacity the host told least recently is forgotten first. */
static void test_rates_are_remembered_per_host(void **state)
{
    (void)state;
    kth_downloader *d = NULL;
    assert_int_equal(kth_downloader_new(NULL, &d, NULL, 0), KTH_OK);
    uint64_t bps = 7;
    assert_false(net_downloader_recall_rate(d, "http://a.example/x.m3u8", &bps));
    assert_int_equal(bps, 7);
    net_downloader_remember_rate(d, "http://a.example/x.m3u8", 500000);
    net_downloader_remember_rate(d, "http://a.example/y/z.m3u8?t=1", 600000);
    net_downloader_remember_rate(d, "http://a.example/x.m3u8", 0); /* nothing measured */
    assert_true(net_downloader_recall_rate(d, "http://A.EXAMPLE:80/other.m3u8", &bps));
    assert_int_equal(bps, 600000);
    assert_false(net_downloader_recall_rate(d, "https://a.example/x.m3u8", &bps));
    assert_false(net_downloader_recall_rate(d, "http://a.example:8080/x.m3u8", &bps));
    assert_false(net_downloader_recall_rate(d, "not a url", &bps));
    /* Fill the memory with other hosts: a.example, told first, is the one forgotten. */
    for (unsigned i = 0; i < NET_RATE_HOSTS; i++) {
        char url[64];
        snprintf(url, sizeof url, "http://h%u.example/", i);
        net_downloader_remember_rate(d, url, 1000 + i);
    }
    assert_false(net_downloader_recall_rate(d, "http://a.example/x.m3u8", &bps));
    assert_true(net_downloader_recall_rate(d, "http://h0.example/seg.ts", &bps));
    assert_int_equal(bps, 1000);
    assert_true(net_downloader_recall_rate(d, "http://h31.example/", &bps));
    assert_int_equal(bps, 1031);
    kth_downloader_unref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_slots_are_served_urgent_first_fifo_within_a_slot,
                                        limit_one_up, net_fixture_down),
        cmocka_unit_test_setup_teardown(test_priority_change_moves_queued_commands, limit_one_up,
                                        net_fixture_down),
        cmocka_unit_test(test_per_host_limit_holds_while_other_hosts_proceed),
        cmocka_unit_test(test_rates_are_remembered_per_host),
        cmocka_unit_test_setup_teardown(
            test_peer_is_polled_when_woken_and_after_its_completions_only, net_fixture_up,
            net_fixture_down),
        cmocka_unit_test_setup_teardown(test_bandwidth_samples_are_timed_on_the_downloaders_clock,
                                        net_fixture_up, net_fixture_down),
        cmocka_unit_test_setup_teardown(test_bandwidth_samples_reach_listeners, net_fixture_up,
                                        net_fixture_down),
        cmocka_unit_test_setup_teardown(
            test_unregister_with_fetches_in_flight_returns_after_the_last_callback, net_fixture_up,
            net_fixture_down),
        cmocka_unit_test_setup_teardown(test_unregister_async_from_a_callback, net_fixture_up,
                                        net_fixture_down),
        cmocka_unit_test_setup_teardown(
            test_cancelling_a_peer_token_cancels_its_commands_but_keeps_it, net_fixture_up,
            net_fixture_down),
        cmocka_unit_test(test_peer_timer_polls_once_when_due_on_the_downloaders_clock),
        cmocka_unit_test_setup_teardown(test_peer_timer_ends_the_loops_sleep, net_fixture_up,
                                        net_fixture_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
