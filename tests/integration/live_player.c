/*
 * live_player.c — the live HLS tests' server streams and virtual-clock player (live_player.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kithara/hls.h>

#include "live_player.h"
#include "net/downloader.h"
#include "test_support.h"
#include "testclient.h"

/* The server's request log capacity (0: the server's default). */
static size_t log_capacity;

void live_player_set_log_capacity(size_t entries)
{
    log_capacity = entries;
}

void client_start(client *c, const kts_live *cfg, const kts_live *hi)
{
    memset(c, 0, sizeof *c);
    kts_config sc = {0};
    sc.log_capacity = log_capacity;
    assert_int_equal(kts_start(&sc, &c->srv), KTH_OK);
    c->cfg = *cfg;
    assert_int_equal(kts_live_start(c->srv, "/tv", cfg, &c->ls), KTH_OK);
    kts_url(c->srv, "/tv/live.m3u8", c->url, sizeof c->url);
    if (!hi)
        return;
    c->hi_cfg = *hi;
    assert_int_equal(kts_live_start(c->srv, "/tv/hi", hi, &c->hi), KTH_OK);
    static const char master[] = "#EXTM3U\n"
                                 "#EXT-X-STREAM-INF:BANDWIDTH=" LIVE_LOW_BPS "\nlive.m3u8\n"
                                 "#EXT-X-STREAM-INF:BANDWIDTH=" LIVE_HIGH_BPS "\nhi/live.m3u8\n";
    assert_int_equal(kts_add_body(c->srv, "/tv/master.m3u8", master, sizeof master - 1,
                                  "application/vnd.apple.mpegurl"),
                     KTH_OK);
    kts_url(c->srv, "/tv/master.m3u8", c->url, sizeof c->url);
}

int client_advance(client *c, int64_t ms)
{
    int st = kts_live_advance(c->ls, ms);
    return st == KTH_OK && c->hi ? kts_live_advance(c->hi, ms) : st;
}

void client_stop(client *c)
{
    kts_live_free(c->hi);
    kts_live_free(c->ls);
    kts_stop(c->srv);
}

/* The server's request log, for a failure's message. */
void dump_log(player *p)
{
    size_t n = kts_log_count(p->c.srv);
    for (size_t i = 0; i < n; i++) {
        kts_log_entry e;
        if (kts_log_get(p->c.srv, i, &e) == KTH_OK)
            fprintf(stderr, "  %s %s -> %d (%s)\n", e.method, e.path, e.status, e.range);
    }
}

/* Wakes settle() when one of the downloader's requests ends (the bus's thread). */
static void on_request(const kth_event *ev, void *user)
{
    player *p = user;
    if (ev->kind != KTH_EVENT_REQUEST_COMPLETED && ev->kind != KTH_EVENT_REQUEST_FAILED &&
        ev->kind != KTH_EVENT_REQUEST_CANCELLED)
        return;
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->moved);
    pthread_mutex_unlock(&p->lock);
}

/* Records a read's bytes (lock held). */
static void note_read(player *p, const unsigned char *buf, size_t n, uint64_t start)
{
    if (p->count_only) {
        p->got_len += n;
        return;
    }
    if (p->got_len + n > p->got_cap) {
        p->got_cap = (p->got_len + n) * 2;
        p->got = realloc(p->got, p->got_cap);
    }
    if (p->reads.n == p->reads.cap) {
        p->reads.cap = p->reads.cap ? p->reads.cap * 2 : 256;
        p->reads.got_at = realloc(p->reads.got_at, p->reads.cap * sizeof *p->reads.got_at);
        p->reads.offset = realloc(p->reads.offset, p->reads.cap * sizeof *p->reads.offset);
    }
    p->reads.got_at[p->reads.n] = p->got_len;
    p->reads.offset[p->reads.n++] = start;
    memcpy(p->got + p->got_len, buf, n);
    p->got_len += n;
}

/* The reader is held before its next read: paused, or at its hold (lock held). */
static bool held(const player *p)
{
    return p->paused || (p->hold_at > 0 && p->got_len >= p->hold_at);
}

static void *read_all(void *arg)
{
    player *p = arg;
    unsigned char buf[4096];
    unsigned waits = 0; /* looks in a row that found nothing: the hang guard */
    for (int i = 0; i < 1000000; i++) {
        pthread_mutex_lock(&p->lock);
        while (held(p))
            pthread_cond_wait(&p->moved, &p->lock);
        size_t want = sizeof buf;
        if (p->hold_at > 0 && p->hold_at - p->got_len < want)
            want = p->hold_at - p->got_len;
        pthread_mutex_unlock(&p->lock);
        /* kth_stream_try_read: its outcome gives the bytes' position from the same call, so a
         * seek from the test cannot come between the read and where it read. */
        kth_read_outcome o;
        kth_stream_try_read(p->stream, buf, want, READ_LOOK_MS, &o);
        if (o.kind == KTH_READ_PENDING && o.reason == KTH_PENDING_NOT_READY &&
            ++waits < READ_GIVE_UP_MS / READ_LOOK_MS) {
            pthread_mutex_lock(&p->lock);
            p->starved = true; /* it has read what there is */
            pthread_cond_broadcast(&p->moved);
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        waits = 0;
        if (o.kind == KTH_READ_PENDING && o.reason == KTH_PENDING_VARIANT_CHANGE) {
            p->fences++;
            kth_stream_clear_variant_fence(p->stream);
            continue;
        }
        if (o.kind == KTH_READ_PENDING &&
            (o.reason == KTH_PENDING_SEEK || o.reason == KTH_PENDING_RETRY))
            continue; /* a time seek from the test: read on from where it moved */
        if (o.kind != KTH_READ_BYTES) {
            p->result = o.kind == KTH_READ_EOF     ? 0
                        : o.kind == KTH_READ_ERROR ? o.status
                        : o.cause != KTH_OK        ? o.cause
                                                   : KTH_ERR_TIMEOUT;
            if (p->result < 0)
                kth_stream_last_error(p->stream, p->error, sizeof p->error);
            break;
        }
        /* Under the lock: a test may look at what was got while the reader goes on. */
        pthread_mutex_lock(&p->lock);
        note_read(p, buf, o.n, o.position - o.n);
        atomic_store(&p->progress, p->got_len);
        pthread_cond_broadcast(&p->moved);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->done, 1);
    pthread_cond_broadcast(&p->moved);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

void player_open(player *p, const kts_live *cfg, uint64_t first_segment, double buffer_target_s)
{
    kth_hls_options hls;
    kth_hls_options_init(&hls);
    hls.buffer_target_s = buffer_target_s;
    player_open_variants(p, cfg, NULL, first_segment, &hls);
}

static void open_stream(player *p, const kts_live *hi, const kth_hls_options *hls);

void player_open_variants(player *p, const kts_live *cfg, const kts_live *hi,
                          uint64_t first_segment, const kth_hls_options *hls)
{
    memset(p, 0, sizeof *p);
    p->first_segment = first_segment;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->moved, NULL);
    client_start(&p->c, cfg, hi);
    open_stream(p, hi, hls);
}

void player_open_faulted(player *p, const kts_live *cfg, uint64_t first_segment, const char *path,
                         const kts_fault *fault)
{
    memset(p, 0, sizeof *p);
    p->first_segment = first_segment;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->moved, NULL);
    client_start(&p->c, cfg, NULL);
    assert_int_equal(kts_add_fault(p->c.srv, path, fault), KTH_OK);
    kth_hls_options hls;
    kth_hls_options_init(&hls);
    hls.buffer_target_s = 4.0;
    open_stream(p, NULL, &hls);
}

/* Opens the stream of the started client on a virtual clock, and its reader. */
static void open_stream(player *p, const kts_live *hi, const kth_hls_options *hls)
{
    platform_virtual_clock_init(&p->vc, T0_NS);
    net_downloader_hooks hooks = {.clock = &p->vc.base};
    kth_downloader_options o;
    kth_downloader_options_init(&o);
    assert_int_equal(kth_bus_new(&p->dbus), KTH_OK);
    assert_int_equal(kth_bus_subscribe_callback(p->dbus, 4096, on_request, p, &p->dsub), KTH_OK);
    o.bus = p->dbus;
    assert_int_equal(net_downloader_new(&o, &hooks, &p->d, NULL, 0), KTH_OK);
    p->dir = test_make_dir();
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = p->dir;
    co.no_sync = true;
    char err[512] = "";
    assert_int_equal(kth_cache_open(&co, &p->cache, err, sizeof err), KTH_OK);
    assert_int_equal(kth_bus_new(&p->bus), KTH_OK);
    assert_int_equal(kth_bus_subscribe(p->bus, 256, &p->sub), KTH_OK);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.read_timeout_ms = 20000; /* hang guard only */
    so.downloader = p->d;
    so.cache = p->cache;
    so.bus = p->bus;
    so.hls = hls;
    kth_status st = kth_stream_open(p->c.url, &so, &p->stream, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("open: %s (%s)", kth_strerror(st), err);
    assert_int_equal(pthread_create(&p->reader, NULL, read_all, p), 0);
    /* The clock starts once the reader is reading (its first segment asked for). */
    char first[64];
    bool on_hi = hi && hls && hls->fixed_start && hls->initial_variant > 0;
    snprintf(first, sizeof first, "/tv/%sseg%llu.ts", on_hi ? "hi/" : "",
             (unsigned long long)p->first_segment);
    assert_int_equal(kts_wait_requests(p->c.srv, first, 1, 10000), KTH_OK);
}

/* The segment bytes the server has handed out: its completed segment requests. */
static size_t segment_bytes_served(player *p)
{
    size_t n = 0, count = kts_log_count(p->c.srv);
    for (size_t i = 0; i < count; i++) {
        kts_log_entry e;
        if (kts_log_get(p->c.srv, i, &e) != KTH_OK || !e.completed || e.status != 200)
            continue;
        size_t len = strlen(e.path);
        if (len < 3 || strcmp(e.path + len - 3, ".ts") != 0)
            continue;
        bool hi = p->c.hi && strncmp(e.path, "/tv/hi/", 7) == 0;
        n += (size_t)(hi ? p->c.hi_cfg.segment_size : p->c.cfg.segment_size);
    }
    return n;
}

/* Lets what the last step started finish: the downloader has nothing queued or running (its
 * own figures, current after two turns of its loop: the request events reach the bus's thread
 * later, so counting them raced a loaded machine), its completions were taken in, and the
 * reader has read every segment fetched, as a real player at the live edge keeps pace. Waits
 * on conditions, never sleeps; each wait bounded. A request waiting for a retry time waits for
 * the clock, which only the next step moves. */
void settle(player *p)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    for (int i = 0, quiet = 0; i < 4000 && quiet < 2; i++) {
        assert_int_equal(net_downloader_barrier(p->d, 5000), KTH_OK);
        assert_int_equal(net_downloader_barrier(p->d, 5000), KTH_OK);
        kth_downloader_stats st;
        kth_downloader_get_stats(p->d, &st);
        /* Idle twice in a row: a completion's wake found nothing more to start either. */
        quiet = st.queued == 0 && st.running == 0 ? quiet + 1 : 0;
        if (quiet > 0)
            continue;
        /* A transfer runs in real time: wait for a request to end (bounded). */
        struct timespec soon;
        clock_gettime(CLOCK_REALTIME, &soon);
        soon.tv_nsec += 10 * NS_PER_MS;
        if (soon.tv_nsec >= 1000000000L) {
            soon.tv_sec++;
            soon.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&p->lock);
        pthread_cond_timedwait(&p->moved, &p->lock, &soon);
        pthread_mutex_unlock(&p->lock);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec > until.tv_sec)
            fail_msg("the downloader did not settle in 20 s");
    }
    /* The reader has read every byte fetched, or (a switch leaves fetched segments unread)
     * found nothing more to read after the downloader went quiet. */
    size_t fetched = segment_bytes_served(p);
    pthread_mutex_lock(&p->lock);
    p->starved = false;
    while (!held(p) && !atomic_load(&p->done) && atomic_load(&p->progress) < fetched && !p->starved)
        if (pthread_cond_timedwait(&p->moved, &p->lock, &until) != 0)
            break;
    pthread_mutex_unlock(&p->lock);
}

/* Moves the server and then the downloader's clock on by `step_ms`, step after step, each
 * settled, until the reader is done or `max_steps` passed. */
void play(player *p, int64_t step_ms, int max_steps)
{
    for (int i = 0; i < max_steps && !atomic_load(&p->done); i++) {
        int64_t now_ms = (platform_clock_now(&p->vc.base) - T0_NS) / NS_PER_MS + step_ms;
        assert_int_equal(client_advance(&p->c, now_ms), KTH_OK);
        platform_virtual_clock_advance(&p->vc, step_ms * NS_PER_MS);
        net_downloader_wake(p->d);
        settle(p);
    }
}

/* Ends the reader with a cancel and checks that the cancel is what ended it (else prints the
 * server's log and fails with the read's status and message). */
void stop_reading(player *p)
{
    kth_stream_cancel(p->stream);
    pthread_join(p->reader, NULL);
    p->reader_joined = true;
    if (p->result != KTH_ERR_CANCELLED) {
        dump_log(p);
        fail_msg("the read ended with %lld: %s", (long long)p->result, p->error);
    }
}

bool wait_done(player *p, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)ms % 1000 * 1000000L;
    until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&p->lock);
    while (!atomic_load(&p->done) && pthread_cond_timedwait(&p->moved, &p->lock, &until) == 0)
        ;
    pthread_mutex_unlock(&p->lock);
    return atomic_load(&p->done) != 0;
}

void player_close(player *p)
{
    if (!p->reader_joined)
        pthread_join(p->reader, NULL);
    kth_stream_close(p->stream);
    kth_subscription_free(p->sub);
    kth_bus_unref(p->bus);
    kth_cache_unref(p->cache);
    kth_downloader_unref(p->d);
    kth_subscription_free(p->dsub);
    kth_bus_unref(p->dbus);
    client_stop(&p->c);
    test_remove_tree(p->dir);
    free(p->dir);
    free(p->got);
    free(p->reads.got_at);
    free(p->reads.offset);
    pthread_cond_destroy(&p->moved);
    pthread_mutex_destroy(&p->lock);
}

/* Counts the events of `kind` published so far. */
unsigned count_events(player *p, kth_event_kind kind)
{
    unsigned n = 0;
    kth_event ev;
    while (kth_events_next(p->sub, &ev, 0) == KTH_OK)
        n += ev.kind == kind;
    return n;
}

/* Checks that the reader got segments [first, end) of the stream, each byte-exact. */
void expect_segments(player *p, uint64_t first, uint64_t end)
{
    assert_int_equal(p->got_len, (end - first) * p->c.cfg.segment_size);
    expect_first_segments(p, first, end);
}

void expect_first_segments(player *p, uint64_t first, uint64_t end)
{
    uint64_t size = p->c.cfg.segment_size;
    assert_true(p->got_len >= (end - first) * size);
    for (uint64_t k = first; k < end; k++) {
        uint64_t seed = kts_live_segment_seed(&p->c.cfg, k, false);
        assert_int_equal(kts_ts_synth_check(seed, 0, p->got + (k - first) * size, size), size);
    }
}

/* Holds the reader before its next read, or lets it go on. */
void set_paused(player *p, bool paused)
{
    pthread_mutex_lock(&p->lock);
    p->paused = paused;
    pthread_cond_broadcast(&p->moved);
    pthread_mutex_unlock(&p->lock);
}

void hold_reader_at(player *p, size_t bytes)
{
    pthread_mutex_lock(&p->lock);
    p->hold_at = bytes;
    pthread_cond_broadcast(&p->moved);
    pthread_mutex_unlock(&p->lock);
}

/* Bytes the reader got from its last read at stream offset `offset` on (0: none yet). */
/* got_since with p->lock held. */
static size_t got_since_locked(player *p, uint64_t offset)
{
    for (size_t r = p->reads.n; r-- > 0;)
        if (p->reads.offset[r] == offset)
            return p->got_len - p->reads.got_at[r];
    return 0;
}

size_t got_since(player *p, uint64_t offset)
{
    pthread_mutex_lock(&p->lock);
    size_t since = got_since_locked(p, offset);
    pthread_mutex_unlock(&p->lock);
    return since;
}

/* Waits (real time, at most 5 s) until the reader has `bytes` from its read at `offset` on, or
 * has read all there is (starved). After a seek the reader reads bytes fetched long ago, which
 * settle() does not wait for (it counts bytes fetched): the clock must not move on while a
 * busy machine has not run the reader yet, or the window slides past it. */
static void let_reader_catch_up(player *p, uint64_t offset, size_t bytes)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&p->lock);
    p->starved = false;
    while (!held(p) && !atomic_load(&p->done) && got_since_locked(p, offset) < bytes && !p->starved)
        if (pthread_cond_timedwait(&p->moved, &p->lock, &until) != 0)
            break;
    pthread_mutex_unlock(&p->lock);
}

/* Reads on (the clock moving once the reader has read what there is) until the reader has
 * `bytes` from stream offset `offset` on. */
void play_from(player *p, uint64_t offset, size_t bytes)
{
    for (int i = 0; i < 200 && got_since(p, offset) < bytes; i++) {
        let_reader_catch_up(p, offset, bytes);
        if (got_since(p, offset) < bytes)
            play(p, 500, 1);
    }
    assert_true(got_since(p, offset) >= bytes);
}

/* Reads on (the clock moving) until the reader has `bytes` more than `from`. */
void play_until(player *p, size_t from, size_t bytes)
{
    for (int i = 0; i < 200 && atomic_load(&p->progress) < from + bytes; i++)
        play(p, 500, 1);
    assert_true(atomic_load(&p->progress) >= from + bytes);
}

void player_count_only(player *p)
{
    pthread_mutex_lock(&p->lock);
    p->count_only = true;
    pthread_mutex_unlock(&p->lock);
}
