/*
 * test_net_bodies.c — the downloader against bodies that are not what they claim to be: a body
 * encoded with a Content-Encoding nobody asked for (refused for media, decoded for whole-body
 * text fetches).
 */
#include "test_net_support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define SEED 11

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

/* ---- content codings --------------------------------------------------------------------- */

/* A media fetch (no Accept-Encoding) answered with a gzip body fails at once, naming the URL and
 * the coding, and not one encoded byte reaches the writer: whole, ranged, or resumed. */
static void test_unasked_gzip_fails_a_media_fetch_clearly(void **state)
{
    net_fixture *f = *state;
    const size_t size = 300000;
    assert_int_equal(kts_add_synth(f->srv, "/song.mp3", size, SEED, NULL), KTH_OK);
    add_fault(f, "/song.mp3", (kts_fault){.kind = KTS_FAULT_GZIP});
    char url[512];
    net_url(f, "/song.mp3", url);

    for (int ranged = 0; ranged < 2; ranged++) {
        rec r;
        rec_init(&r, size, 0);
        net_fetch_spec s = rec_spec(&r, url);
        s.has_range = ranged;
        s.range_start = 0;
        s.range_end = NET_RANGE_OPEN;
        run(f, &s, &r);
        assert_int_equal(r.completions, 1);
        assert_int_equal(r.result.status, KTH_ERR_FORMAT);
        assert_false(r.result.retryable);
        assert_int_equal(r.result.attempts, 1);
        assert_int_equal(r.written, 0);
        assert_non_null(strstr(r.message, url));
        assert_non_null(strstr(r.message, "Content-Encoding gzip"));
        rec_free(&r);
    }

    /* The first response is plain and cut; the resumed one comes encoded: refused too, and what
     * the writer got is only the plain prefix. */
    assert_int_equal(kts_add_synth(f->srv, "/cut.mp3", size, SEED, NULL), KTH_OK);
    add_fault(f, "/cut.mp3",
              (kts_fault){.kind = KTS_FAULT_CLOSE_AFTER, .bytes = 100000, .last_request = 1});
    add_fault(f, "/cut.mp3", (kts_fault){.kind = KTS_FAULT_GZIP, .first_request = 2});
    rec r;
    rec_init(&r, size, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/cut.mp3", url));
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_FORMAT);
    assert_int_equal(r.result.attempts, 2);
    assert_true(r.written <= 100000);
    assert_int_equal(kts_synth_check(SEED, 0, r.buf, (size_t)r.written), r.written);
    assert_non_null(strstr(r.message, "gzip"));
    rec_free(&r);
}

/* A HEAD (a size probe) of an encoded representation would report the encoded length: refused
 * as well. */
static void test_unasked_gzip_fails_a_head(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/seg.ts", 5000, SEED, NULL), KTH_OK);
    add_fault(f, "/seg.ts", (kts_fault){.kind = KTS_FAULT_GZIP});
    char url[512];
    rec r;
    rec_init(&r, 0, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/seg.ts", url));
    s.method = NET_HEAD;
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_FORMAT);
    assert_int_equal(r.responses, 0);
    assert_non_null(strstr(r.message, "gzip"));
    rec_free(&r);
}

/* A whole-body fetch that accepts gzip (playlists, keys) gets the decoded bytes, also when the
 * body is cut and fetched again. */
static void test_gzip_is_decoded_for_whole_body_fetches(void **state)
{
    net_fixture *f = *state;
    const size_t size = 150000;
    assert_int_equal(kts_add_synth(f->srv, "/list.m3u8", size, SEED, NULL), KTH_OK);
    add_fault(f, "/list.m3u8", (kts_fault){.kind = KTS_FAULT_GZIP});
    add_fault(f, "/list.m3u8",
              (kts_fault){.kind = KTS_FAULT_CLOSE_AFTER, .bytes = 70000, .last_request = 1});
    char url[512];
    rec r;
    rec_init(&r, size, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/list.m3u8", url));
    s.accept_gzip = true;
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_OK);
    assert_false(r.discontiguous);
    assert_int_equal(r.written, size);
    assert_int_equal(kts_synth_check(SEED, 0, r.buf, size), size);
    assert_int_equal(r.result.attempts, 2);
    rec_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, net_fixture_up, net_fixture_down)
        T(test_unasked_gzip_fails_a_media_fetch_clearly),
        T(test_unasked_gzip_fails_a_head),
        T(test_gzip_is_decoded_for_whole_body_fetches),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
