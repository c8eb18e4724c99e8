/*
 * test_hls_master.c — master playlists: variant streams with and without video, audio and
 * other renditions, session keys, the helpers over a master (bandwidth order, audio choice),
 * and the errors a malformed master produces, each naming its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hls_test_helpers.h"

static const char video_master[] =
    "#EXTM3U\n"
    "#EXT-X-VERSION:6\n"
    "#EXT-X-INDEPENDENT-SEGMENTS\n"
    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,"
    "AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/en/index.m3u8\"\n"
    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"Deutsch\",LANGUAGE=\"de\",DEFAULT=NO,"
    "AUTOSELECT=YES,CHANNELS=\"2\",URI=\"../de/index.m3u8\"\n"
    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"main\",NAME=\"Muxed\"\n"
    "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\",FORCED=NO,"
    "URI=\"subs/en.m3u8\"\n"
    "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",INSTREAM-ID=\"CC1\"\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=2200000,AVERAGE-BANDWIDTH=2000000,"
    "CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"aac\","
    "SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\"\n"
    "video/720p.m3u8\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.4d401e,mp4a.40.2\",AUDIO=\"aac\"\n"
    "/abs/360p.m3u8?sig=abc\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.5\",AUDIO=\"main\"\n"
    "//other.example.net/audio-only.m3u8\n"
    "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,URI=\"video/iframes.m3u8\"\n";

static void test_master_with_video_variants_and_audio_renditions(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse(video_master);
    assert_int_equal(pl->kind, HLS_PLAYLIST_MASTER);
    assert_int_equal(pl->version, 6);
    assert_true(pl->independent_segments);
    assert_string_equal(pl->url, HLS_TEST_BASE);
    assert_int_equal(pl->media.segment_count, 0);

    const hls_master_playlist *m = &pl->master;
    assert_int_equal(m->variant_count, 3);
    const hls_variant *v = &m->variants[0];
    assert_int_equal(v->bandwidth, 2200000);
    assert_int_equal(v->average_bandwidth, 2000000);
    assert_string_equal(v->codecs, "avc1.64001f,mp4a.40.2");
    assert_string_equal(v->audio_group, "aac");
    assert_null(v->video_group);
    assert_true(v->has_resolution);
    assert_int_equal(v->width, 1280);
    assert_int_equal(v->height, 720);
    assert_true(v->frame_rate > 29.969 && v->frame_rate < 29.971);
    assert_true(v->has_video);
    assert_string_equal(v->uri, "https://cdn.example.com/path/to/video/720p.m3u8");
    assert_int_equal(v->line, 9);

    v = &m->variants[1];
    assert_int_equal(v->average_bandwidth, 0);
    assert_false(v->has_resolution);
    assert_true(v->has_video); /* from CODECS alone */
    assert_string_equal(v->uri, "https://cdn.example.com/abs/360p.m3u8?sig=abc");

    v = &m->variants[2];
    assert_false(v->has_video);
    assert_string_equal(v->audio_group, "main");
    assert_string_equal(v->uri, "https://other.example.net/audio-only.m3u8");

    assert_int_equal(m->rendition_count, 5);
    const hls_rendition *r = &m->renditions[0];
    assert_int_equal(r->type, HLS_MEDIA_AUDIO);
    assert_string_equal(r->group_id, "aac");
    assert_string_equal(r->name, "English");
    assert_string_equal(r->language, "en");
    assert_null(r->assoc_language);
    assert_true(r->is_default);
    assert_true(r->autoselect);
    assert_false(r->forced);
    assert_string_equal(r->channels, "2");
    assert_string_equal(r->uri, "https://cdn.example.com/path/to/audio/en/index.m3u8");
    assert_int_equal(r->line, 4);

    r = &m->renditions[1];
    assert_false(r->is_default);
    assert_string_equal(r->uri, "https://cdn.example.com/path/de/index.m3u8");

    r = &m->renditions[2];
    assert_null(r->uri); /* audio is in the variant itself */
    assert_null(r->language);
    assert_null(r->channels);
    assert_false(r->is_default);
    assert_false(r->autoselect);

    assert_int_equal(m->renditions[3].type, HLS_MEDIA_SUBTITLES);
    assert_int_equal(m->renditions[4].type, HLS_MEDIA_CLOSED_CAPTIONS);
    assert_string_equal(m->renditions[4].instream_id, "CC1");
    assert_null(m->renditions[4].uri);
    assert_int_equal(m->session_key_count, 0);
    hls_playlist_free(pl);
}

static void test_video_hint_comes_from_resolution_frame_rate_video_or_codecs(void **state)
{
    (void)state;
    hls_playlist *pl =
        hls_test_parse("#EXTM3U\n"
                       "#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=2x2\n"
                       "a\n"
                       "#EXT-X-STREAM-INF:BANDWIDTH=1,FRAME-RATE=25\n"
                       "b\n"
                       "#EXT-X-STREAM-INF:BANDWIDTH=1,VIDEO=\"v\"\n"
                       "c\n"
                       "#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"mp4a.40.2, hvc1.1.6\"\n"
                       "d\n"
                       "#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"mp4a.40.2,ac-3\"\n"
                       "e\n"
                       "#EXT-X-STREAM-INF:BANDWIDTH=1\n"
                       "f\n");
    const hls_variant *v = pl->master.variants;
    assert_int_equal(pl->master.variant_count, 6);
    assert_true(v[0].has_video);
    assert_true(v[1].has_video);
    assert_true(v[2].has_video);
    assert_string_equal(v[2].video_group, "v");
    assert_true(v[3].has_video);
    assert_false(v[4].has_video);
    assert_false(v[5].has_video);
    hls_playlist_free(pl);
}

static void test_variants_sort_by_bandwidth_keeping_ties_in_playlist_order(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-STREAM-INF:BANDWIDTH=300\n"
                                      "v0\n"
                                      "#EXT-X-STREAM-INF:BANDWIDTH=100\n"
                                      "v1\n"
                                      "#EXT-X-STREAM-INF:BANDWIDTH=200\n"
                                      "v2\n"
                                      "#EXT-X-STREAM-INF:BANDWIDTH=100\n"
                                      "v3\n");
    size_t order[4] = {99, 99, 99, 99};
    assert_int_equal(hls_playlist_variants_by_bandwidth(pl, order, 4), 4);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 3);
    assert_int_equal(order[2], 2);
    assert_int_equal(order[3], 0);
    /* A short array gets the lowest ones. */
    size_t two[2] = {99, 99};
    assert_int_equal(hls_playlist_variants_by_bandwidth(pl, two, 2), 2);
    assert_int_equal(two[0], 1);
    assert_int_equal(two[1], 3);
    assert_int_equal(hls_playlist_variants_by_bandwidth(pl, order, 0), 0);
    assert_int_equal(hls_playlist_variants_by_bandwidth(NULL, order, 4), 0);
    hls_playlist_free(pl);
}

static void test_audio_rendition_choice_prefers_default_then_autoselect(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse(
        "#EXTM3U\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"g1\",NAME=\"first\",URI=\"1.m3u8\"\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"g1\",NAME=\"auto\",AUTOSELECT=YES,URI=\"2.m3u8\"\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"g1\",NAME=\"default\",DEFAULT=YES,AUTOSELECT=YES,"
        "URI=\"3.m3u8\"\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"g2\",NAME=\"only-auto\",AUTOSELECT=YES\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"g3\",NAME=\"plain\"\n"
        "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"g4\",NAME=\"subs\",DEFAULT=YES,URI=\"s.m3u8\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"g1\"\n"
        "v.m3u8\n");
    assert_string_equal(hls_playlist_audio_rendition(pl, "g1")->name, "default");
    assert_string_equal(hls_playlist_audio_rendition(pl, "g2")->name, "only-auto");
    assert_string_equal(hls_playlist_audio_rendition(pl, "g3")->name, "plain");
    assert_null(hls_playlist_audio_rendition(pl, "g4"));
    assert_null(hls_playlist_audio_rendition(pl, "missing"));
    assert_null(hls_playlist_audio_rendition(pl, NULL));
    hls_playlist_free(pl);
}

static void test_media_tag_of_an_unknown_type_is_skipped(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-MEDIA:TYPE=HAPTICS,GROUP-ID=\"h\",NAME=\"h\"\n"
                                      "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a\"\n"
                                      "#EXT-X-STREAM-INF:BANDWIDTH=1\n"
                                      "v.m3u8\n");
    assert_int_equal(pl->master.rendition_count, 1);
    assert_string_equal(pl->master.renditions[0].group_id, "a");
    hls_playlist_free(pl);
}

static void test_quoted_attribute_values_may_contain_commas(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse(
        "#EXTM3U\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a,b\",NAME=\"Name, with, commas\",URI=\"x,y.m3u8\"\n"
        "#EXT-X-STREAM-INF:CODECS=\"mp4a.40.2,avc1.42e00a\",BANDWIDTH=1000,AUDIO=\"a,b\"\n"
        "v.m3u8\n");
    assert_string_equal(pl->master.renditions[0].group_id, "a,b");
    assert_string_equal(pl->master.renditions[0].name, "Name, with, commas");
    assert_string_equal(pl->master.renditions[0].uri, "https://cdn.example.com/path/to/x,y.m3u8");
    assert_string_equal(pl->master.variants[0].codecs, "mp4a.40.2,avc1.42e00a");
    assert_int_equal(pl->master.variants[0].bandwidth, 1000);
    assert_string_equal(pl->master.variants[0].audio_group, "a,b");
    hls_playlist_free(pl);
}

static void test_session_keys_are_kept_resolved(void **state)
{
    (void)state;
    hls_playlist *pl =
        hls_test_parse("#EXTM3U\n"
                       "#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"keys/k1\",IV=0x0102\n"
                       "#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://"
                       "id\",KEYFORMAT=\"com.apple.streamingkeydelivery\","
                       "KEYFORMATVERSIONS=\"1/2\"\n"
                       "#EXT-X-STREAM-INF:BANDWIDTH=1\n"
                       "v.m3u8\n");
    const hls_master_playlist *m = &pl->master;
    assert_int_equal(m->session_key_count, 2);
    assert_int_equal(m->session_keys[0].method, HLS_KEY_AES_128);
    assert_string_equal(m->session_keys[0].uri, "https://cdn.example.com/path/to/keys/k1");
    assert_true(m->session_keys[0].has_iv);
    assert_int_equal(m->session_keys[0].iv[14], 0x01);
    assert_int_equal(m->session_keys[0].iv[15], 0x02);
    assert_string_equal(m->session_keys[0].keyformat, "identity");
    assert_string_equal(m->session_keys[0].keyformat_versions, "1");
    assert_int_equal(m->session_keys[1].method, HLS_KEY_SAMPLE_AES);
    assert_string_equal(m->session_keys[1].uri, "skd://id");
    assert_string_equal(m->session_keys[1].keyformat, "com.apple.streamingkeydelivery");
    assert_string_equal(m->session_keys[1].keyformat_versions, "1/2");
    hls_playlist_free(pl);
}

static void test_master_errors_name_their_line(void **state)
{
    (void)state;
    hls_test_expect_error("#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"mp4a.40.2\"\nv.m3u8\n",
                          KTH_ERR_FORMAT, "line 2: EXT-X-STREAM-INF has no BANDWIDTH");
    hls_test_expect_error("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n\n# comment\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-STREAM-INF has no URI line after it");
    hls_test_expect_error("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\n"
                          "v.m3u8\n",
                          KTH_ERR_FORMAT, "line 3: EXT-X-STREAM-INF on line 2 has no URI line");
    hls_test_expect_error("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\nb.m3u8\n",
                          KTH_ERR_FORMAT,
                          "line 4: URI 'b.m3u8' without a preceding EXT-X-STREAM-INF");
    hls_test_expect_error("#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"i.m3u8\"\n",
                          KTH_ERR_FORMAT, "master playlist has no EXT-X-STREAM-INF variants");
    hls_test_expect_error("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=\"1\"\nv\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-STREAM-INF attribute BANDWIDTH '1' is not a decimal "
                          "integer");
    hls_test_expect_error("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=mp4a.40.2\nv\n",
                          KTH_ERR_FORMAT,
                          "line 2: EXT-X-STREAM-INF attribute CODECS must be a quoted string");
    hls_test_expect_error("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=wide\nv\n",
                          KTH_ERR_FORMAT,
                          "line 2: EXT-X-STREAM-INF RESOLUTION 'wide' is not <width>x<height>");
    hls_test_expect_error("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,FRAME-RATE=fast\nv\n",
                          KTH_ERR_FORMAT,
                          "line 2: EXT-X-STREAM-INF FRAME-RATE 'fast' is not a decimal number");
    hls_test_expect_error("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"a\nv\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-STREAM-INF: attribute CODECS has an unterminated quoted "
                          "string");
    hls_test_expect_error("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH\nv\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-STREAM-INF: attribute BANDWIDTH has no '='");
    hls_test_expect_error("#EXTM3U\n#EXT-X-STREAM-INF\nv\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-STREAM-INF has no value");
}

static void test_media_tag_errors_name_their_line(void **state)
{
    (void)state;
    hls_test_expect_error("#EXTM3U\n#EXT-X-MEDIA:GROUP-ID=\"a\",NAME=\"n\"\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-MEDIA has no TYPE");
    hls_test_expect_error("#EXTM3U\n\n#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"n\"\n", KTH_ERR_FORMAT,
                          "line 3: EXT-X-MEDIA has no GROUP-ID");
    hls_test_expect_error("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\"\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-MEDIA has no NAME");
    hls_test_expect_error("#EXTM3U\n#EXT-X-MEDIA:TYPE=\"AUDIO\",GROUP-ID=\"a\",NAME=\"n\"\n",
                          KTH_ERR_FORMAT,
                          "line 2: EXT-X-MEDIA attribute TYPE must be an enumerated string");
    hls_test_expect_error(
        "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"n\",DEFAULT=yes\n", KTH_ERR_FORMAT,
        "line 2: EXT-X-MEDIA attribute DEFAULT must be YES or NO");
    hls_test_expect_error("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=a,NAME=\"n\"\n",
                          KTH_ERR_FORMAT,
                          "line 2: EXT-X-MEDIA attribute GROUP-ID must be a quoted string");
}

static void test_session_key_errors_name_their_line(void **state)
{
    (void)state;
    hls_test_expect_error("#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=NONE\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-SESSION-KEY METHOD must not be NONE");
    hls_test_expect_error("#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=AES-128\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-SESSION-KEY METHOD=AES-128 has no URI");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_master_with_video_variants_and_audio_renditions),
        cmocka_unit_test(test_video_hint_comes_from_resolution_frame_rate_video_or_codecs),
        cmocka_unit_test(test_variants_sort_by_bandwidth_keeping_ties_in_playlist_order),
        cmocka_unit_test(test_audio_rendition_choice_prefers_default_then_autoselect),
        cmocka_unit_test(test_media_tag_of_an_unknown_type_is_skipped),
        cmocka_unit_test(test_quoted_attribute_values_may_contain_commas),
        cmocka_unit_test(test_session_keys_are_kept_resolved),
        cmocka_unit_test(test_master_errors_name_their_line),
        cmocka_unit_test(test_media_tag_errors_name_their_line),
        cmocka_unit_test(test_session_key_errors_name_their_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
