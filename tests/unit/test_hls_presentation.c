/*
 * test_hls_presentation.c — the audio ladder chosen from master playlists: audio-only variants
 * first, audio renditions of a video master, unknown codecs skipped with a warning, duplicates
 * merged, and a master with nothing playable refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "hls/playlist.h"
#include "hls/presentation.h"

static hls_playlist *parse(const char *text)
{
    hls_playlist *pl = NULL;
    char err[256];
    if (hls_playlist_parse((const uint8_t *)text, strlen(text), "http://127.0.0.1/m/master.m3u8",
                           NULL, &pl, err, sizeof err) != KTH_OK)
        fail_msg("parse failed: %s", err);
    return pl;
}

static void count_warning(const char *msg, void *user)
{
    (void)msg;
    (*(int *)user)++;
}

static void test_audio_only_variants_sorted_and_unknown_codecs_skipped(void **state)
{
    (void)state;
    hls_playlist *pl = parse("#EXTM3U\n"
                             "#EXT-X-STREAM-INF:BANDWIDTH=256000,CODECS=\"mp4a.40.2\"\nhi.m3u8\n"
                             "#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.5\"\nlo.m3u8\n"
                             "#EXT-X-STREAM-INF:BANDWIDTH=96000,CODECS=\"mhm1.0x0C\"\nmpegh.m3u8\n"
                             "#EXT-X-STREAM-INF:BANDWIDTH=128000,AVERAGE-BANDWIDTH=120000\n"
                             "mid.m3u8\n");
    hls_ladder l;
    int warnings = 0;
    assert_int_equal(hls_ladder_from_master(pl, &l, count_warning, &warnings, NULL, 0), KTH_OK);
    assert_int_equal(warnings, 1);
    assert_int_equal(l.count, 3);
    assert_string_equal(l.rungs[0].uri, "http://127.0.0.1/m/lo.m3u8");
    assert_int_equal(l.rungs[0].codec, KTH_CODEC_HE_AAC);
    assert_string_equal(l.rungs[1].uri, "http://127.0.0.1/m/mid.m3u8");
    assert_int_equal(l.rungs[1].bandwidth, 120000); /* AVERAGE-BANDWIDTH preferred */
    assert_int_equal(l.rungs[1].peak_bandwidth, 128000);
    assert_string_equal(l.rungs[2].uri, "http://127.0.0.1/m/hi.m3u8");
    hls_ladder_free(&l);
    hls_playlist_free(pl);
}

static void test_video_master_plays_its_audio_renditions(void **state)
{
    (void)state;
    hls_playlist *pl = parse(
        "#EXTM3U\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a1\",NAME=\"en\",DEFAULT=YES,URI=\"audio/64.m3u8\"\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a2\",NAME=\"en\",DEFAULT=YES,URI=\"audio/128.m3u8\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.4d401e,mp4a.40.2\",AUDIO=\"a1\"\n"
        "v1.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1500000,CODECS=\"avc1.4d401f,mp4a.40.2\",AUDIO=\"a2\"\n"
        "v2.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=3000000,CODECS=\"avc1.640028,mp4a.40.2\",AUDIO=\"a2\"\n"
        "v3.m3u8\n");
    hls_ladder l;
    assert_int_equal(hls_ladder_from_master(pl, &l, NULL, NULL, NULL, 0), KTH_OK);
    assert_int_equal(l.count, 2); /* a2 is used twice: one rung */
    assert_string_equal(l.rungs[0].uri, "http://127.0.0.1/m/audio/64.m3u8");
    assert_string_equal(l.rungs[1].uri, "http://127.0.0.1/m/audio/128.m3u8");
    assert_int_equal(l.rungs[1].bandwidth, 1500000);
    assert_true(l.rungs[0].bandwidth_is_upper_bound);
    assert_non_null(l.rungs[0].rendition);
    hls_ladder_free(&l);
    hls_playlist_free(pl);
}

static void test_muxed_video_is_kept_with_a_warning(void **state)
{
    (void)state;
    hls_playlist *pl = parse("#EXTM3U\n"
                             "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nv1.m3u8\n");
    hls_ladder l;
    int warnings = 0;
    assert_int_equal(hls_ladder_from_master(pl, &l, count_warning, &warnings, NULL, 0), KTH_OK);
    assert_int_equal(l.count, 1);
    assert_int_equal(warnings, 1);
    hls_ladder_free(&l);
    hls_playlist_free(pl);
}

static void test_nothing_playable_is_unsupported(void **state)
{
    (void)state;
    hls_playlist *pl = parse("#EXTM3U\n"
                             "#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.4d401e\"\nv.m3u8\n");
    hls_ladder l;
    char err[256];
    assert_int_equal(hls_ladder_from_master(pl, &l, NULL, NULL, err, sizeof err),
                     KTH_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "master.m3u8"));
    hls_playlist_free(pl);
    assert_int_equal(hls_ladder_single("http://127.0.0.1/x.m3u8", &l), KTH_OK);
    assert_int_equal(l.count, 1);
    hls_ladder_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audio_only_variants_sorted_and_unknown_codecs_skipped),
        cmocka_unit_test(test_video_master_plays_its_audio_renditions),
        cmocka_unit_test(test_muxed_video_is_kept_with_a_warning),
        cmocka_unit_test(test_nothing_playable_is_unsupported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
