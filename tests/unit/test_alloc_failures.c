/*
 * test_alloc_failures.c — every allocation kithara makes may fail, and a failure is reported
 * (KTH_ERR_NO_MEMORY, or the failure of the call that needed the memory), never a crash, and
 * leaves nothing allocated behind.
 *
 * A program's allocator (kithara/alloc.h) fails the Nth allocation of one operation, for
 * N = 1, 2, ... until the operation runs through with no failure left to inject. Only the test
 * thread's allocations are failed, so a background thread cannot make a run differ from the
 * next. After each run the blocks the allocator counts as in use must be back where they were
 * before it; ASan checks the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <kithara/kithara.h>

#include "cache/cache.h"
#include "hls/layout.h"
#include "hls/live.h"
#include "hls/playlist.h"
#include "hls/url.h"
#include "platform/mem.h"
#include "storage/resource.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "testserver.h"

/* --- the failing allocator ---------------------------------------------------------------- */

static _Thread_local bool armed;   /* this thread's allocations are counted and may fail */
static _Thread_local long counted; /* allocations counted since armed */
static _Thread_local long fail_at; /* the one that fails (1-based) */
static atomic_long live;           /* blocks in use, every thread */

static bool should_fail(void)
{
    return armed && ++counted == fail_at;
}

static void *t_alloc(void *user, size_t size)
{
    (void)user;
    if (should_fail())
        return NULL;
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

static void *t_resize(void *user, void *ptr, size_t size)
{
    (void)user;
    return should_fail() ? NULL : realloc(ptr, size);
}

static void t_release(void *user, void *ptr)
{
    (void)user;
    atomic_fetch_sub(&live, 1);
    free(ptr);
}

static int install(void **state)
{
    (void)state;
    kth_allocator a = {t_alloc, t_resize, t_release, NULL};
    return kth_set_allocator(&a) == KTH_OK ? 0 : -1;
}

static int uninstall(void **state)
{
    (void)state;
    /* Blocks the process keeps for good (the data-file handle table) may still be in use:
     * they came from malloc, so the C library's free would still be right for them. */
    (void)kth_set_allocator(NULL);
    return 0;
}

/* An operation: does its work and undoes it (frees what it made), returning its status. */
typedef kth_status (*operation)(void *ctx);

/* Runs op with its Nth allocation failing for every N it makes, then once without a failure.
 * `reset` (may be NULL) runs before each run, unarmed. Returns the allocations of a whole run. */
static long sweep(const char *name, operation op, void (*reset)(void *ctx), void *ctx)
{
    if (reset)
        reset(ctx);
    kth_status warm = op(ctx); /* warms up what the process keeps for good */
    if (warm != KTH_OK)
        fail_msg("%s: failed with %s with no allocation failing", name, kth_status_name(warm));
    for (long n = 1; n < 200000; n++) {
        if (reset)
            reset(ctx);
        long before = atomic_load(&live);
        counted = 0;
        fail_at = n;
        armed = true;
        kth_status st = op(ctx);
        armed = false;
        if (atomic_load(&live) != before)
            fail_msg("%s: allocation %ld failing left %ld blocks in use (status %s)", name, n,
                     atomic_load(&live) - before, kth_status_name(st));
        if (counted < n) {
            if (st != KTH_OK)
                fail_msg("%s: failed with %s with no allocation failing", name,
                         kth_status_name(st));
            printf("%s: %ld allocations, each failed once\n", name, n - 1);
            return n - 1;
        }
        if (st != KTH_OK && st != KTH_ERR_NO_MEMORY)
            fail_msg("%s: allocation %ld failing gave %s, not KTH_ERR_NO_MEMORY", name, n,
                     kth_status_name(st));
    }
    fail_msg("%s: did not finish", name);
    return 0;
}

/* --- operations -------------------------------------------------------------------------- */

static const char MASTER[] =
    "#EXTM3U\n"
    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"English\",LANGUAGE=\"en\",CHANNELS=\"2\","
    "URI=\"en/index.m3u8\"\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.2\",AUDIO=\"a\"\n"
    "v64/index.m3u8\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=128000,AVERAGE-BANDWIDTH=120000,CODECS=\"mp4a.40.2\"\n"
    "https://cdn.example/v128/index.m3u8?token=abc\n";

static const char MEDIA[] =
    "#EXTM3U\n"
    "#EXT-X-VERSION:7\n"
    "#EXT-X-TARGETDURATION:4\n"
    "#EXT-X-MEDIA-SEQUENCE:10\n"
    "#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"\n"
    "#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x0102030405060708090a0b0c0d0e0f10\n"
    "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T04:00:00.000Z\n"
    "#EXTINF:4.0,first\n"
    "seg10.m4s\n"
    "#EXTINF:4.0,\n"
    "seg11.m4s\n"
    "#EXTINF:4.0,\n"
    "seg12.m4s\n"
    "#EXT-X-DISCONTINUITY\n"
    "#EXT-X-KEY:METHOD=NONE\n"
    "#EXTINF:4.0,\n"
    "#EXT-X-BYTERANGE:1000@0\n"
    "packed.aac\n"
    "#EXTINF:4.0,\n"
    "#EXT-X-BYTERANGE:1000\n"
    "packed.aac\n"
    "#EXT-X-GAP\n"
    "#EXTINF:4.0,\n"
    "gone.aac\n"
    "#EXTINF:3.5,\n"
    "https://other.example/path/last.aac?sig=0123456789\n"
    "#EXT-X-ENDLIST\n";

static kth_status parse_and_lay_out(void *ctx)
{
    (void)ctx;
    hls_playlist *master = NULL, *media = NULL;
    char err[256] = "";
    int st =
        hls_playlist_parse((const uint8_t *)MASTER, sizeof MASTER - 1,
                           "https://example.com/a/master.m3u8", NULL, &master, err, sizeof err);
    if (st == KTH_OK)
        st = hls_playlist_parse((const uint8_t *)MEDIA, sizeof MEDIA - 1,
                                "https://example.com/a/v64/index.m3u8", NULL, &media, err,
                                sizeof err);
    if (st != KTH_OK && st != KTH_ERR_NO_MEMORY)
        printf("parse: %s\n", err);
    hls_layout *layout = NULL;
    if (st == KTH_OK)
        st = hls_layout_new(media, &layout);
    for (size_t i = 0; st == KTH_OK && i < hls_layout_entry_count(layout); i++) {
        hls_entry e;
        st = hls_layout_entry(layout, i, &e);
        if (st == KTH_OK && !e.size_known)
            st = hls_layout_set_size(layout, i, 1000 + i);
    }
    for (size_t i = 0; st == KTH_OK && i < media->media.segment_count; i++) {
        char *uri = hls_media_segment_uri(&media->media, i);
        if (!uri)
            st = KTH_ERR_NO_MEMORY;
        platform_free(uri);
    }
    char *resolved = NULL;
    if (st == KTH_OK)
        st = hls_url_resolve("https://example.com/a/b/c.m3u8?x=1", "../d/./e.ts#frag", 16,
                             &resolved);
    platform_free(resolved);
    hls_layout_free(layout);
    hls_playlist_free(media);
    hls_playlist_free(master);
    return (kth_status)st;
}

/* A live stream's two reloads: the first releases two played segments and writes out the
 * whole model; the second starts its parse from a copy of those two (hls_playlist_parse_after)
 * under the key and init section in force after them. */
static kth_status two_live_merges(void *ctx)
{
    (void)ctx;
    static const char reload1[] =
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:16\n"
        "#EXTINF:3.5,\nhttps://other.example/path/last.aac?sig=0123456789\n"
        "#EXTINF:4.0,\nnew17.aac\n";
    static const char reload2[] = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:17\n"
                                  "#EXTINF:4.0,\nnew17.aac\n#EXTINF:4.0,titled\nnew18.aac\n";
    const char *base = "https://example.com/a/v64/index.m3u8";
    hls_playlist *played = NULL, *r1 = NULL, *r2 = NULL, *m1 = NULL, *m2 = NULL;
    char err[256] = "";
    size_t live_len = sizeof MEDIA - 1 - strlen("#EXT-X-ENDLIST\n");
    int st =
        hls_playlist_parse((const uint8_t *)MEDIA, live_len, base, NULL, &played, err, sizeof err);
    if (st == KTH_OK)
        st = hls_playlist_parse((const uint8_t *)reload1, sizeof reload1 - 1, base, NULL, &r1, err,
                                sizeof err);
    if (st == KTH_OK)
        st = hls_playlist_parse((const uint8_t *)reload2, sizeof reload2 - 1, base, NULL, &r2, err,
                                sizeof err);
    if (st == KTH_OK)
        st = hls_live_merge(played, 2, r1, 1, 1, false, base, &m1, err, sizeof err);
    if (st == KTH_OK)
        st = hls_live_merge(m1, 4, r2, 1, 1, false, base, &m2, err, sizeof err);
    if (st != KTH_OK && st != KTH_ERR_NO_MEMORY)
        printf("live merges: %s\n", err);
    if (st == KTH_OK && m2->media.segment_count != 9)
        st = KTH_ERR_FORMAT;
    hls_playlist_free(m2);
    hls_playlist_free(m1);
    hls_playlist_free(r2);
    hls_playlist_free(r1);
    hls_playlist_free(played);
    return (kth_status)st;
}

struct cache_ctx {
    char *dir;      /* NULL: a memory-only cache */
    bool protect;   /* a secret (on disk only) */
    uint8_t *bytes; /* what is written and read back */
    size_t len;
};

static void fresh_dir(void *ctx)
{
    struct cache_ctx *c = ctx;
    if (c->dir)
        test_remove_tree(c->dir);
}

static kth_status write_and_read_back(cache_resource *res, const struct cache_ctx *c)
{
    kth_status st = cache_resource_set_meta(res, "\"e\"", NULL, "audio/aac");
    for (size_t off = 0; st == KTH_OK && off < c->len; off += 40000) {
        size_t n = c->len - off < 40000 ? c->len - off : 40000;
        st = cache_resource_write(res, off, c->bytes + off, n);
    }
    if (st == KTH_OK)
        st = cache_resource_commit(res, c->len);
    storage_resource *r = st == KTH_OK ? cache_resource_storage(res) : NULL;
    uint8_t buf[4096];
    for (uint64_t off = 0; r && st == KTH_OK && off < c->len;) {
        size_t got = 0;
        st = storage_resource_read_at(r, off, buf, sizeof buf, &got);
        if (st == KTH_OK && (got == 0 || memcmp(buf, c->bytes + off, got) != 0))
            fail_msg("the bytes read back at %llu are not the ones written",
                     (unsigned long long)off);
        off += got;
    }
    storage_resource_unref(r);
    return st;
}

static kth_status cache_round_trip(void *ctx)
{
    struct cache_ctx *c = ctx;
    uint8_t secret[KTH_CACHE_SECRET_SIZE];
    memset(secret, 7, sizeof secret);
    kth_cache_options o = {.dir = c->dir, .memory_only = !c->dir, .no_sync = true};
    if (c->protect)
        o.secret = secret;
    kth_cache *cache = NULL;
    cache_asset *asset = NULL;
    cache_resource *res = NULL;
    char err[512] = "";
    kth_status st = kth_cache_open(&o, &cache, err, sizeof err);
    if (st == KTH_OK)
        st = cache_asset_open(cache, "https://example.com/album/track.m3u8", &asset, err,
                              sizeof err);
    if (st == KTH_OK)
        st = cache_resource_open(asset, "seg:https://example.com/album/seg1.ts", CACHE_OPEN_CREATE,
                                 &res, NULL, err, sizeof err);
    if (st != KTH_OK && st != KTH_ERR_NO_MEMORY)
        printf("cache: %s: %s\n", kth_status_name(st), err);
    if (st == KTH_OK)
        st = write_and_read_back(res, c);
    cache_resource_close(res);
    cache_asset_release(asset);
    kth_cache_unref(cache);
    return st;
}

static kth_status bus_round_trip(void *ctx)
{
    (void)ctx;
    kth_bus *bus = NULL;
    kth_subscription *sub = NULL;
    kth_status st = kth_bus_new(&bus);
    if (st == KTH_OK)
        st = kth_bus_subscribe(bus, 8, &sub);
    kth_event ev = {.kind = KTH_EVENT_WARNING};
    if (st == KTH_OK)
        kth_bus_publish(bus, &ev);
    if (st == KTH_OK)
        st = kth_events_next(sub, &ev, KTH_NO_WAIT);
    kth_subscription_free(sub);
    kth_bus_unref(bus);
    return st;
}

static kth_status local_stream(void *ctx)
{
    const char *path = ctx;
    kth_stream_options so = {.read_timeout_ms = 1000};
    kth_stream *s = NULL;
    kth_status st = kth_stream_open(path, &so, &s, NULL, 0);
    uint8_t buf[512];
    if (st == KTH_OK && kth_stream_read(s, buf, sizeof buf) != (int64_t)sizeof buf)
        st = KTH_ERR_IO;
    if (st == KTH_OK)
        st = kth_stream_seek(s, 1000, SEEK_SET, NULL);
    kth_stream_close(s);
    return st;
}

/* A downloader with every string option set, created and dropped (its thread is joined). */
static kth_status downloader_round_trip(void *ctx)
{
    (void)ctx;
    static const char *const headers[] = {"X-One: 1", "X-Two: 2", NULL};
    kth_downloader_options o = {.user_agent = "test/1",
                                .cookies = "a=b",
                                .proxy = "",
                                .ca_file = "/nonexistent/ca.pem",
                                .headers = headers};
    kth_downloader *d = NULL;
    kth_status st = kth_downloader_new(&o, &d, NULL, 0);
    kth_downloader_unref(d);
    return st;
}

/* An HLS presentation played from the cache alone: every byte is read on the calling thread,
 * so every allocation of the session (playlists, layout, keys, slots) is the test thread's. */
struct hls_ctx {
    char url[256];
    kth_cache *cache; /* offline, holding the presentation */
};

static kth_status hls_offline(void *ctx)
{
    struct hls_ctx *h = ctx;
    kth_hls_options ho = {.fixed_start = true, .initial_variant = 1, .start_manual = true};
    kth_stream_options so = {.cache = h->cache, .read_timeout_ms = 5000, .hls = &ho};
    kth_stream *s = NULL;
    char err[512] = "";
    kth_status st = kth_stream_open(h->url, &so, &s, err, sizeof err);
    if (st != KTH_OK && st != KTH_ERR_NO_MEMORY)
        printf("open: %s\n", err);
    uint8_t buf[16384];
    uint64_t total = 0;
    for (int64_t n = 1; st == KTH_OK && n > 0;) {
        n = kth_stream_read(s, buf, sizeof buf);
        if (n < 0)
            st = (kth_status)n;
        else
            total += (uint64_t)n;
    }
    if (st == KTH_OK && total == 0)
        fail_msg("an offline HLS stream read no bytes");
    if (st == KTH_OK)
        st = kth_stream_seek_time(s, 4.5, NULL);
    int64_t after = st == KTH_OK ? kth_stream_read(s, buf, sizeof buf) : 1;
    if (after <= 0)
        st = after < 0 ? (kth_status)after : KTH_ERR_IO;
    if (st != KTH_OK && st != KTH_ERR_NO_MEMORY)
        printf("read: %s\n", kth_stream_last_error(s, (char *)buf, sizeof buf) ? (char *)buf : "");
    kth_stream_close(s);
    return st;
}

static void hls_case(const char *path)
{
    kts_config cfg = {.doc_root = KTH_SOURCE_DIR "/tests/fixtures/hls"};
    kts_server *srv = NULL;
    assert_int_equal(kts_start(&cfg, &srv), KTH_OK);
    char *dir = test_make_dir();
    struct hls_ctx h;
    kts_url(srv, path, h.url, sizeof h.url);
    kth_cache_options co = {.dir = dir, .no_sync = true};
    kth_cache *online = NULL;
    assert_int_equal(kth_cache_open(&co, &online, NULL, 0), KTH_OK);
    kth_stream_options so = {.cache = online};
    char err[512] = "";
    if (kth_hls_prefetch(h.url, &so, 1, NULL, NULL, err, sizeof err) != KTH_OK)
        fail_msg("prefetch: %s", err);
    kth_cache_unref(online);
    kts_stop(srv); /* nothing may be fetched from here on */
    kth_shutdown();
    co.offline = true;
    assert_int_equal(kth_cache_open(&co, &h.cache, NULL, 0), KTH_OK);
    assert_true(sweep(path, hls_offline, NULL, &h) > 50);
    kth_cache_unref(h.cache);
    test_remove_dir(dir);
}

static void test_an_offline_hls_stream(void **state)
{
    (void)state;
    hls_case("/ts/master.m3u8");
}

static void test_an_offline_aes128_fmp4_stream(void **state)
{
    (void)state;
    hls_case("/aes/master.m3u8");
    hls_case("/fmp4/master.m3u8");
}

/* --- tests ------------------------------------------------------------------------------- */

static void test_parsing_and_laying_out_a_playlist(void **state)
{
    (void)state;
    assert_true(sweep("parse + layout", parse_and_lay_out, NULL, NULL) > 20);
}

static void test_two_live_merges(void **state)
{
    (void)state;
    assert_true(sweep("two live merges", two_live_merges, NULL, NULL) > 20);
}

static void cache_case(bool on_disk, bool protect)
{
    struct cache_ctx c = {
        .dir = on_disk ? test_make_dir() : NULL, .protect = protect, .len = 100000};
    c.bytes = malloc(c.len);
    test_pattern_fill(3, 0, c.bytes, c.len);
    assert_true(sweep(on_disk ? (protect ? "protected cache" : "cache on disk") : "memory cache",
                      cache_round_trip, fresh_dir, &c) > 10);
    free(c.bytes);
    if (c.dir)
        test_remove_dir(c.dir);
}

static void test_a_memory_cache_round_trip(void **state)
{
    (void)state;
    cache_case(false, false);
}

static void test_a_cache_on_disk_round_trip(void **state)
{
    (void)state;
    cache_case(true, false);
}

static void test_a_protected_cache_round_trip(void **state)
{
    (void)state;
    cache_case(true, true);
}

static void test_events(void **state)
{
    (void)state;
    assert_true(sweep("bus", bus_round_trip, NULL, NULL) > 2);
}

static void test_a_downloader(void **state)
{
    (void)state;
    assert_true(sweep("downloader", downloader_round_trip, NULL, NULL) > 5);
}

static void test_a_local_stream(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    char *path = test_write_pattern_file(dir, "f.bin", 5, 8192);
    assert_true(sweep("local stream", local_stream, NULL, path) > 2);
    free(path);
    test_remove_dir(dir);
}

/* The allocator only changes while nothing kithara made is alive. */
static void test_the_allocator_cannot_change_under_live_blocks(void **state)
{
    (void)state;
    kth_bus *bus = NULL;
    assert_int_equal(kth_bus_new(&bus), KTH_OK);
    assert_int_equal(kth_set_allocator(NULL), KTH_ERR_BUSY);
    kth_allocator half = {t_alloc, NULL, t_release, NULL};
    kth_bus_unref(bus);
    assert_int_equal(kth_set_allocator(&half), KTH_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parsing_and_laying_out_a_playlist),
        cmocka_unit_test(test_two_live_merges),
        cmocka_unit_test(test_a_memory_cache_round_trip),
        cmocka_unit_test(test_a_cache_on_disk_round_trip),
        cmocka_unit_test(test_a_protected_cache_round_trip),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_a_downloader),
        cmocka_unit_test(test_a_local_stream),
        cmocka_unit_test(test_an_offline_hls_stream),
        cmocka_unit_test(test_an_offline_aes128_fmp4_stream),
        cmocka_unit_test(test_the_allocator_cannot_change_under_live_blocks),
    };
    return cmocka_run_group_tests(tests, install, uninstall);
}
