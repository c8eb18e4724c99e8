/*
 * test_hls_info.c — asking an HLS stream what it is (kth_stream_open + kth_stream_media_info)
 * loads playlists and at most one ranged request of first bytes: no whole segment is fetched,
 * none is stored, no variant switch happens, and the codec, sample rate and channels are those
 * of the fixtures (FFmpeg made them AAC-LC or FLAC, 44.1 kHz, stereo).
 */
#include "test_hls_support.h"

#include <time.h>

/* Waits (bounded) until every variant's playlist has loaded, so a segment fetch started with
 * them would have reached the server by the time the log is read. */
static void wait_for_ladder(kth_stream *s)
{
    int n = kth_stream_variant_count(s);
    for (int nap = 0; nap < 500; nap++) {
        int loaded = 0;
        for (int v = 0; v < n; v++) {
            kth_hls_variant_info vi;
            if (kth_stream_variant_info(s, v, &vi) == KTH_OK && vi.usable)
                loaded++;
        }
        if (loaded == n)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("the variant playlists did not load");
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

/* Every request but playlists and keys: at most one, and that one ranged. */
static void assert_first_bytes_only(kts_server *srv)
{
    unsigned media = 0;
    for (size_t i = 0; i < kts_log_count(srv); i++) {
        kts_log_entry le;
        assert_int_equal(kts_log_get(srv, i, &le), KTH_OK);
        if (ends_with(le.path, ".m3u8") || ends_with(le.path, "key.bin"))
            continue;
        media++;
        if (le.range[0] == '\0')
            fail_msg("whole-resource %s %s", le.method, le.path);
        if (media > 1)
            fail_msg("second media request: %s %s (%s)", le.method, le.path, le.range);
    }
}

static void check_info(void **state, const char *path, kth_codec codec, kth_container container)
{
    struct hls_env *e = *state;
    kth_stream *s = hls_open(e, path, NULL, NULL);
    int variant = kth_stream_current_variant(s);
    kth_media_info mi;
    assert_int_equal(kth_stream_media_info(s, &mi), KTH_OK);
    wait_for_ladder(s);
    assert_string_equal(kth_codec_name(mi.codec), kth_codec_name(codec));
    assert_string_equal(kth_container_name(mi.container), kth_container_name(container));
    assert_int_equal(mi.sample_rate, 44100);
    assert_int_equal(mi.channels, 2);
    assert_int_equal(kth_stream_current_variant(s), variant);
    kth_hls_playlist_info pi;
    assert_int_equal(kth_stream_playlist_info(s, &pi), KTH_OK);
    assert_string_equal(pi.kind, "vod"); /* the fixtures end with EXT-X-ENDLIST */
    assert_true(pi.target_duration > 0 && pi.window_segments > 0 && pi.window_s > 0);
    assert_false(pi.ended);
    for (int v = 0; v < kth_stream_variant_count(s); v++) {
        size_t held = 1, all = 0;
        assert_int_equal(kth_stream_variant_cached(s, v, &held, &all), KTH_OK);
        assert_int_equal(held, 0);
    }
    /* Asked again: the answer is kept, nothing more is fetched. */
    kth_media_info again;
    assert_int_equal(kth_stream_media_info(s, &again), KTH_OK);
    assert_int_equal(again.sample_rate, 44100);
    kth_stream_close(s);
    assert_first_bytes_only(e->srv);
}

static void test_info_ts(void **state)
{
    check_info(state, "/ts/master.m3u8", KTH_CODEC_AAC_LC, KTH_CONTAINER_MPEG_TS);
}

static void test_info_fmp4(void **state)
{
    check_info(state, "/fmp4/master.m3u8", KTH_CODEC_AAC_LC, KTH_CONTAINER_FMP4);
}

/* The media playlist alone: no CODECS attribute, the init section tells. */
static void test_info_flac_without_codecs(void **state)
{
    check_info(state, "/flac/v/index.m3u8", KTH_CODEC_FLAC, KTH_CONTAINER_FMP4);
}

static void test_info_aes(void **state)
{
    check_info(state, "/aes/master.m3u8", KTH_CODEC_AAC_LC, KTH_CONTAINER_MPEG_TS);
}

static void test_info_byterange(void **state)
{
    check_info(state, "/byterange/index.m3u8", KTH_CODEC_AAC_LC, KTH_CONTAINER_MPEG_TS);
}

/* A server that ignores Range sends whole segments: the first bytes of the answer still do. */
static void test_info_when_the_server_ignores_range(void **state)
{
    struct hls_env *e = *state;
    kts_fault ignore = {.kind = KTS_FAULT_IGNORE_RANGE};
    assert_int_equal(kts_add_fault(e->srv, "*", &ignore), KTH_OK);
    check_info(state, "/ts/master.m3u8", KTH_CODEC_AAC_LC, KTH_CONTAINER_MPEG_TS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_info_ts, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_info_fmp4, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_info_flac_without_codecs, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_info_aes, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_info_byterange, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_info_when_the_server_ignores_range, hls_setup,
                                        hls_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
