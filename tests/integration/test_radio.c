/*
 * test_radio.c — internet radio (Icecast/SHOUTcast ICY) end to end against the test server's
 * station mode: the metadata blocks are taken out byte-exactly whatever the metaint (1, 7,
 * 16000) and wherever the network splits them, titles of blocks of 0 to 4080 bytes arrive as
 * events at the offset of their block, the station headers are media info, a drop reconnects at
 * once and then after a back-off on the downloader's virtual clock, without Range, behind a
 * fence, and the stream stays endless: no length, no time seek, nothing cached, a bounded window.
 */
#include "test_progressive_support.h"

#include "net/downloader.h"
#include "platform/clock.h"

#include <string.h>

#define SEED 700

/* A subscription on a new bus, and the stream options that publish there. */
typedef struct radio_env {
    kth_bus *bus;
    kth_subscription *sub;
    kth_stream *s;
} radio_env;

static void radio_open(struct env *e, radio_env *r, kth_downloader *d, const char *path,
                       uint64_t window)
{
    assert_int_equal(kth_bus_new(&r->bus), KTH_OK);
    assert_int_equal(kth_bus_subscribe(r->bus, 4096, &r->sub), KTH_OK);
    char url[512];
    kts_url(e->srv, path, url, sizeof url);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.downloader = d ? d : e->d;
    so.cache = e->cache;
    so.read_timeout_ms = 10000;
    so.readahead_bytes = window;
    so.bus = r->bus;
    char err[512];
    kth_status st = kth_stream_open(url, &so, &r->s, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("open %s: %s (%s)", url, kth_strerror(st), err);
}

/* The first read joins the stream's reader to the download (and so to its events) and starts
 * it: nothing is fetched for a stream that has not read. */
static void start_reading(radio_env *r)
{
    uint8_t byte;
    kth_read_outcome out;
    assert_int_equal(kth_stream_try_read(r->s, &byte, 1, KTH_NO_WAIT, &out), KTH_OK);
    assert_int_equal(out.kind, KTH_READ_PENDING);
}

static void radio_close(radio_env *r)
{
    kth_stream_close(r->s);
    kth_subscription_free(r->sub);
    kth_bus_unref(r->bus);
}

/* The next event of `kind` (others are skipped), or the test fails after 10 s. */
static kth_event next_event(radio_env *r, kth_event_kind kind)
{
    kth_event ev = {0};
    int64_t deadline = test_now_ms() + 10000;
    while (test_now_ms() < deadline) {
        if (kth_events_next(r->sub, &ev, 100) == KTH_OK && ev.kind == kind)
            return ev;
    }
    fail_msg("no %s event (last seen: %s)", kth_event_kind_name(kind),
             kth_event_kind_name(ev.kind));
    return ev;
}

/* Raw body bytes of `blocks` whole periods (audio, then its block) of a station. */
static uint64_t raw_length(const kts_icy *icy, uint64_t blocks)
{
    uint64_t n = 0;
    for (uint64_t b = 0; b < blocks; b++) {
        n += icy->metaint + 1;
        for (size_t i = 0; i < icy->title_count; i++)
            if (icy->titles[i].block == b)
                n += icy->titles[i].pad_max ? 4080 : (strlen(icy->titles[i].text) + 15) / 16 * 16;
    }
    return n;
}

/* Reads from the position until the stream says `stop_status` (a fence, or the feed's end),
 * checking every byte against the pattern of seed from audio offset `base`. Returns the bytes
 * read. */
static uint64_t read_until(kth_stream *s, uint64_t seed, uint64_t base, int64_t stop_status)
{
    static uint8_t buf[64 * 1024];
    uint64_t got = 0;
    for (;;) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n == stop_status)
            return got;
        if (n <= 0) {
            char detail[512];
            kth_stream_last_error(s, detail, sizeof detail);
            fail_msg("read at %llu: %s (%s)", (unsigned long long)got,
                     n == 0 ? "end" : kth_strerror((int)n), detail);
        }
        size_t bad = kts_synth_check(seed, base + got, buf, (size_t)n);
        if (bad != (size_t)n)
            fail_msg("wrong byte at audio offset %llu", (unsigned long long)(base + got + bad));
        got += (uint64_t)n;
    }
}

/* Two responses of `blocks` periods each, then 404: the reader gets the first response's audio
 * exactly, a fence, then the second's; every title at its block's offset. */
static void check_station(void **state, uint32_t metaint, uint64_t rate)
{
    struct env *e = *state;
    char long_title[4081];
    memset(long_title, 'x', sizeof long_title - 1);
    memcpy(long_title, "StreamTitle='", 13);
    memcpy(long_title + 4080 - 2, "';", 2);
    long_title[4080] = '\0';
    char long_url[400]; /* longer than an event's text: never handed out cut */
    snprintf(long_url, sizeof long_url, "StreamUrl='http://x.example/%0300d';", 7);
    kts_icy_title titles[] = {
        {.block = 0, .text = "StreamTitle='First - Song';StreamUrl='http://x.example/a';"},
        {.block = 3, .text = "StreamTitle='Rock 'n' Roll';", .pad_max = true},
        {.block = 5, .text = long_title},
        {.block = 6, .text = long_url},
    };
    kts_icy icy = {.metaint = metaint,
                   .seed = SEED,
                   .name = "Test FM",
                   .genre = "Jazz",
                   .bitrate = "128",
                   .titles = titles,
                   .title_count = 4};
    uint64_t blocks = metaint == 1 ? 3000 : 8;
    icy.length = raw_length(&icy, blocks);
    assert_int_equal(kts_add_icy(e->srv, "/radio", &icy), KTH_OK);
    assert_int_equal(
        kts_add_fault(e->srv, "/radio",
                      &(kts_fault){.kind = KTS_FAULT_STATUS, .status = 404, .first_request = 3}),
        KTH_OK);
    if (rate)
        assert_int_equal(
            kts_add_fault(e->srv, "/radio", &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = rate}),
            KTH_OK);
    radio_env r;
    radio_open(e, &r, NULL, "/radio", 4 << 20);
    uint64_t audio = blocks * metaint;
    assert_int_equal(read_until(r.s, SEED, 0, KTH_ERR_VARIANT_CHANGE), audio);
    assert_int_equal(kth_stream_position(r.s), audio);
    assert_int_equal(kth_stream_clear_variant_fence(r.s), KTH_OK);
    assert_int_equal(read_until(r.s, SEED + 1, 0, KTH_ERR_NOT_FOUND), audio);

    /* Titles: one per titled block and response, at the offset right after its block. */
    for (uint64_t conn = 0; conn < 2; conn++) {
        kth_event ev = next_event(&r, KTH_EVENT_RADIO_TITLE);
        assert_string_equal(ev.text, "First - Song");
        assert_int_equal(ev.payload.radio.offset, conn * audio + metaint);
        ev = next_event(&r, KTH_EVENT_RADIO_URL);
        assert_string_equal(ev.text, "http://x.example/a");
        ev = next_event(&r, KTH_EVENT_RADIO_TITLE);
        assert_string_equal(ev.text, "Rock 'n' Roll");
        assert_int_equal(ev.payload.radio.offset, conn * audio + 4 * metaint);
        ev = next_event(&r, KTH_EVENT_RADIO_TITLE);
        assert_int_equal(strlen(ev.text), sizeof ev.text - 1); /* cut to fit, not lost */
        assert_int_equal(ev.payload.radio.offset, conn * audio + 6 * metaint);
        ev = next_event(&r, KTH_EVENT_RADIO_URL);
        assert_int_equal(ev.status, KTH_ERR_LIMIT);
        assert_string_equal(ev.text, "");
        assert_int_equal(ev.payload.radio.offset, conn * audio + 7 * metaint);
    }

    kth_media_info info;
    assert_int_equal(kth_stream_media_info(r.s, &info), KTH_OK);
    assert_true(info.radio);
    assert_string_equal(info.station_name, "Test FM");
    assert_string_equal(info.station_genre, "Jazz");
    assert_string_equal(info.content_type, "audio/mpeg");
    assert_int_equal(info.bitrate, 128000);

    /* Asked with Icy-MetaData, never with Range. */
    kts_log_entry entry;
    for (unsigned k = 1; k <= 2; k++) {
        assert_int_equal(kts_log_find(e->srv, "/radio", k, &entry), KTH_OK);
        assert_non_null(strstr(entry.headers, "Icy-MetaData: 1"));
        assert_string_equal(entry.range, "");
    }
    radio_close(&r);
}

static void test_metaint_16000_paced(void **state)
{
    /* 2000-byte steps: the 4080-byte blocks arrive split over several reads. */
    check_station(state, 16000, 100000);
}

static void test_metaint_7(void **state)
{
    check_station(state, 7, 0);
}

static void test_metaint_1(void **state)
{
    check_station(state, 1, 0);
}

/* Endless: no length, SEEK_END and a time seek answer KTH_ERR_UNSUPPORTED at once (a time seek
 * in a single file would otherwise wait for the length), nothing goes to the cache, and bytes
 * that left the window cannot be read again while those inside it can. */
static void test_endless_and_bounded(void **state)
{
    struct env *e = *state;
    kts_icy icy = {.metaint = 8192, .seed = SEED, .length = 40 * 8193};
    assert_int_equal(kts_add_icy(e->srv, "/live", &icy), KTH_OK);
    assert_int_equal(
        kts_add_fault(e->srv, "/live",
                      &(kts_fault){.kind = KTS_FAULT_STATUS, .status = 404, .first_request = 2}),
        KTH_OK);
    radio_env r;
    radio_open(e, &r, NULL, "/live", 64 << 10);
    start_reading(&r);
    uint8_t buf[4096];
    /* The connection ends, the next attempt gets 404: every byte has arrived. */
    kth_event ev = next_event(&r, KTH_EVENT_RADIO_DROPPED);
    assert_int_equal(ev.payload.radio.attempt, 1);
    ev = next_event(&r, KTH_EVENT_RADIO_DROPPED);
    assert_int_equal(ev.status, KTH_ERR_NOT_FOUND);

    uint64_t length;
    assert_false(kth_stream_length(r.s, &length));
    int64_t t0 = test_now_ms();
    assert_int_equal(kth_stream_seek_time(r.s, 10.0, NULL), KTH_ERR_UNSUPPORTED);
    assert_int_equal(kth_stream_seek(r.s, 0, SEEK_END, NULL), KTH_ERR_UNSUPPORTED);
    assert_true(test_now_ms() - t0 < 5000); /* no wait for a length that never comes */

    uint64_t audio = 40 * 8192;
    assert_int_equal(kth_stream_read(r.s, buf, sizeof buf), KTH_ERR_UNSUPPORTED); /* left */
    assert_int_equal(kth_stream_seek(r.s, (int64_t)(audio - 1000), SEEK_SET, NULL), KTH_OK);
    assert_int_equal(read_until(r.s, SEED, audio - 1000, KTH_ERR_NOT_FOUND), 1000);

    kth_cache_stats cs;
    assert_int_equal(kth_cache_get_stats(e->cache, &cs), KTH_OK);
    assert_int_equal(cs.total_bytes, 0);
    radio_close(&r);
}

/* A time seek asked before anything was read (the stream does not know yet that it is radio)
 * must not wait for a length that never comes: the first response makes it fail at once. */
static void test_time_seek_before_the_first_byte(void **state)
{
    struct env *e = *state;
    kts_icy icy = {.metaint = 8192, .seed = SEED};
    assert_int_equal(kts_add_icy(e->srv, "/endless", &icy), KTH_OK);
    assert_int_equal(
        kts_add_fault(e->srv, "/endless", &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = 16000}),
        KTH_OK);
    radio_env r;
    radio_open(e, &r, NULL, "/endless", 64 << 10); /* read timeout 10 s */
    int64_t t0 = test_now_ms();
    assert_int_equal(kth_stream_seek_time(r.s, 30.0, NULL), KTH_ERR_UNSUPPORTED);
    assert_true(test_now_ms() - t0 < 5000);
    char detail[512];
    kth_stream_last_error(r.s, detail, sizeof detail);
    assert_non_null(strstr(detail, "endless radio stream"));
    assert_int_equal(kth_stream_position(r.s), 0); /* not moved */
    radio_close(&r);
}

/* A second stream of a station already playing shares its connection and starts at its newest
 * byte: its offset 0 is the feed's end when it opened, not bytes that left the window. */
static void test_second_stream_starts_at_the_newest_byte(void **state)
{
    struct env *e = *state;
    kts_icy icy = {.metaint = 8192, .seed = SEED};
    assert_int_equal(kts_add_icy(e->srv, "/shared", &icy), KTH_OK);
    assert_int_equal(
        kts_add_fault(e->srv, "/shared", &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = 400000}),
        KTH_OK);
    radio_env a, b;
    radio_open(e, &a, NULL, "/shared", 64 << 10);
    uint64_t first = 200000; /* over three windows */
    static uint8_t buf[8192];
    for (uint64_t got = 0; got < first;) {
        int64_t n = kth_stream_read(a.s, buf, first - got < sizeof buf ? first - got : sizeof buf);
        assert_true(n > 0);
        assert_int_equal(kts_synth_check(SEED, got, buf, (size_t)n), (size_t)n);
        got += (uint64_t)n;
    }
    radio_open(e, &b, NULL, "/shared", 64 << 10);
    for (size_t got = 0; got < 4096;) {
        int64_t n = kth_stream_read(b.s, buf + got, 4096 - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    /* Where B's offset 0 lies in the station's audio: at or after where A had read to. */
    uint64_t base = UINT64_MAX;
    for (uint64_t c = first; c < first + (4u << 20) && base == UINT64_MAX; c++)
        if (kts_synth_check(SEED, c, buf, 4096) == 4096)
            base = c;
    assert_true(base != UINT64_MAX);
    assert_int_equal(kts_request_count(e->srv, "/shared", NULL), 1); /* one connection */
    radio_close(&b);
    radio_close(&a);
}

/* A drop reconnects at once; an attempt that brings nothing waits a jittered back-off on the
 * downloader's clock (never a sleep) before the next; the reader meets a fence at the join. */
static void test_reconnect_on_virtual_clock(void **state)
{
    struct env *e = *state;
    platform_virtual_clock vc;
    platform_virtual_clock_init(&vc, 1000000000);
    net_downloader_hooks hooks = {.clock = &vc.base};
    kth_downloader_options o;
    kth_downloader_options_init(&o);
    kth_downloader *d = NULL;
    assert_int_equal(net_downloader_new(&o, &hooks, &d, NULL, 0), KTH_OK);

    kts_icy icy = {.metaint = 1000, .seed = SEED, .length = 20 * 1001};
    assert_int_equal(kts_add_icy(e->srv, "/drop", &icy), KTH_OK);
    /* Request 1 drops after 5500 body bytes: 5 blocks and 495 audio bytes. */
    assert_int_equal(kts_add_fault(e->srv, "/drop",
                                   &(kts_fault){.kind = KTS_FAULT_CLOSE_AFTER,
                                                .bytes = 5500,
                                                .first_request = 1,
                                                .last_request = 1}),
                     KTH_OK);
    assert_int_equal(kts_add_fault(e->srv, "/drop",
                                   &(kts_fault){.kind = KTS_FAULT_STATUS,
                                                .status = 503,
                                                .first_request = 2,
                                                .last_request = 2}),
                     KTH_OK);
    assert_int_equal(
        kts_add_fault(e->srv, "/drop",
                      &(kts_fault){.kind = KTS_FAULT_STATUS, .status = 404, .first_request = 4}),
        KTH_OK);
    radio_env r;
    radio_open(e, &r, d, "/drop", 1 << 20);
    start_reading(&r);
    uint64_t join = 5000 + 495;

    kth_event ev = next_event(&r, KTH_EVENT_RADIO_DROPPED);
    assert_int_equal(ev.payload.radio.attempt, 1);
    assert_int_equal(ev.payload.radio.delay_ns, 0); /* at once */
    assert_int_equal(ev.payload.radio.offset, join);
    ev = next_event(&r, KTH_EVENT_RADIO_DROPPED); /* the 503 */
    assert_int_equal(ev.payload.radio.attempt, 2);
    int64_t delay = ev.payload.radio.delay_ns;
    assert_true(delay >= 0 && delay <= 500000000);
    assert_int_equal(kts_request_count(e->srv, "/drop", NULL), 2);
    if (delay > 1) {
        platform_virtual_clock_advance(&vc, delay - 1);
        net_downloader_wake(d);
        assert_int_equal(net_downloader_barrier(d, 5000), KTH_OK);
        assert_int_equal(net_downloader_barrier(d, 5000), KTH_OK);
        assert_int_equal(kts_request_count(e->srv, "/drop", NULL), 2); /* not yet */
        platform_virtual_clock_advance(&vc, 1);
    }
    net_downloader_wake(d);
    ev = next_event(&r, KTH_EVENT_RADIO_RECONNECTED);
    assert_int_equal(ev.payload.radio.offset, join);
    assert_int_equal(ev.payload.radio.connection, 2);

    assert_int_equal(read_until(r.s, SEED, 0, KTH_ERR_VARIANT_CHANGE), join);
    assert_int_equal(kth_stream_read(r.s, (uint8_t[8]){0}, 8), KTH_ERR_VARIANT_CHANGE); /* stays */
    assert_int_equal(kth_stream_clear_variant_fence(r.s), KTH_OK);
    assert_int_equal(kth_stream_clear_variant_fence(r.s), KTH_ERR_STATE);
    /* Request 3 answered: its audio is the pattern of SEED + 2 from its start. */
    assert_int_equal(read_until(r.s, SEED + 2, 0, KTH_ERR_NOT_FOUND), 20 * 1000);
    kts_log_entry entry;
    assert_int_equal(kts_log_find(e->srv, "/drop", 3, &entry), KTH_OK);
    assert_string_equal(entry.range, "");
    radio_close(&r);
    kth_downloader_unref(d);
}

/* A body that interleaves metadata is radio even when its length is announced: cached as a file,
 * its blocks would be read as audio. */
static void test_metadata_with_a_length_is_still_radio(void **state)
{
    struct env *e = *state;
    kts_icy_title titles[] = {{.block = 0, .text = "StreamTitle='Finite';"}};
    kts_icy icy = {.metaint = 3000,
                   .seed = SEED,
                   .titles = titles,
                   .title_count = 1,
                   .announce_length = true,
                   .max_requests = 1};
    icy.length = raw_length(&icy, 5);
    assert_int_equal(kts_add_icy(e->srv, "/finite", &icy), KTH_OK);
    radio_env r;
    radio_open(e, &r, NULL, "/finite", 1 << 20);
    assert_int_equal(read_until(r.s, SEED, 0, KTH_ERR_NOT_FOUND), 5 * 3000);
    kth_event ev = next_event(&r, KTH_EVENT_RADIO_TITLE);
    assert_string_equal(ev.text, "Finite");
    kth_cache_stats cs;
    assert_int_equal(kth_cache_get_stats(e->cache, &cs), KTH_OK);
    assert_int_equal(cs.total_bytes, 0);
    radio_close(&r);
}

/* A SHOUTcast v1 server's "ICY 200 OK" status line is taken as 200 (libcurl is told it is an
 * alias), and its body read like any other station's. */
static void test_shoutcast_v1_status_line(void **state)
{
    struct env *e = *state;
    kts_icy_title titles[] = {{.block = 1, .text = "StreamTitle='Old School';"}};
    kts_icy icy = {.metaint = 2048,
                   .seed = SEED,
                   .name = "V1 Radio",
                   .genre = "Oldies",
                   .bitrate = "64",
                   .titles = titles,
                   .title_count = 1,
                   .max_requests = 1};
    icy.length = raw_length(&icy, 6);
    assert_int_equal(kts_add_icy(e->srv, "/v1", &icy), KTH_OK);
    char url[512];
    assert_int_equal(kts_icy_v1_url(e->srv, "/v1", url, sizeof url), KTH_OK);
    radio_env r;
    assert_int_equal(kth_bus_new(&r.bus), KTH_OK);
    assert_int_equal(kth_bus_subscribe(r.bus, 4096, &r.sub), KTH_OK);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.downloader = e->d;
    so.cache = e->cache;
    so.read_timeout_ms = 1500;
    so.bus = r.bus;
    char err[512];
    assert_int_equal(kth_stream_open(url, &so, &r.s, err, sizeof err), KTH_OK);
    /* The station's one response ends when its connection closes; the attempts after it get
     * empty replies, so the reader waits past the last byte. */
    assert_int_equal(read_until(r.s, SEED, 0, KTH_ERR_TIMEOUT), 6 * 2048);
    kth_event ev = next_event(&r, KTH_EVENT_RADIO_TITLE);
    assert_string_equal(ev.text, "Old School");
    assert_int_equal(ev.payload.radio.offset, 2 * 2048);
    kth_media_info info;
    assert_int_equal(kth_stream_media_info(r.s, &info), KTH_OK);
    assert_true(info.radio);
    assert_string_equal(info.station_name, "V1 Radio");
    assert_int_equal(info.bitrate, 64000);
    radio_close(&r);
}

static int setup(void **state)
{
    return env_setup(state, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metaint_16000_paced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metaint_7, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metaint_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endless_and_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_seek_before_the_first_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_stream_starts_at_the_newest_byte, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_on_virtual_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shoutcast_v1_status_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_with_a_length_is_still_radio, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
