/*
 * test_hls_media.c — media playlists: segment timing and numbering, byte ranges (explicit and
 * implied offsets, per resource), keys and their inheritance, IVs, init sections (EXT-X-MAP),
 * discontinuities, gaps, playlist-wide tags, and the errors, each naming its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "hls_test_helpers.h"

enum { SEGMENTS_MAX = 64 };

/* Copies the playlist's segments (at most SEGMENTS_MAX) into s, as the tests read them. */
static void segments_of(const hls_media_playlist *m, hls_segment *s)
{
    assert_true(m->segment_count <= SEGMENTS_MAX);
    for (size_t i = 0; i < m->segment_count; i++)
        s[i] = hls_media_segment(m, i);
}

static void test_media_playlist_alone_gives_timing_and_numbering(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-VERSION:3\n"
                                      "#EXT-X-TARGETDURATION:10\n"
                                      "#EXT-X-MEDIA-SEQUENCE:7\n"
                                      "#EXT-X-PLAYLIST-TYPE:VOD\n"
                                      "#EXTINF:9.97667,first segment\n"
                                      "seg7.ts\n"
                                      "#EXTINF:10,\n"
                                      "seg8.ts?x=1\n"
                                      "#EXTINF:4.5\n"
                                      "../other/seg9.ts\n"
                                      "#EXT-X-ENDLIST\n");
    assert_int_equal(pl->kind, HLS_PLAYLIST_MEDIA);
    assert_int_equal(pl->version, 3);
    assert_false(pl->independent_segments);
    assert_int_equal(pl->master.variant_count, 0);
    const hls_media_playlist *m = &pl->media;
    assert_int_equal(m->target_duration, 10);
    assert_int_equal(m->media_sequence, 7);
    assert_int_equal(m->discontinuity_sequence, 0);
    assert_int_equal(m->type, HLS_PLAYLIST_TYPE_VOD);
    assert_true(m->endlist);
    assert_false(m->i_frames_only);
    assert_int_equal(m->segment_count, 3);
    assert_int_equal(m->key_count, 0);
    assert_int_equal(m->map_count, 0);

    hls_segment s[SEGMENTS_MAX];
    segments_of(m, s);
    hls_test_segment_uri(m, 0, "https://cdn.example.com/path/to/seg7.ts");
    assert_string_equal(s[0].title, "first segment");
    assert_true(s[0].duration == 9.97667);
    assert_true(s[0].start == 0.0);
    assert_int_equal(s[0].sequence, 7);
    assert_false(s[0].range.present);
    assert_true(s[0].key == HLS_NONE);
    assert_true(s[0].map == HLS_NONE);
    assert_false(s[0].discontinuity);
    assert_false(s[0].gap);

    hls_test_segment_uri(m, 1, "https://cdn.example.com/path/to/seg8.ts?x=1");
    assert_null(s[1].title);
    assert_true(s[1].start == 9.97667);
    assert_int_equal(s[1].sequence, 8);

    hls_test_segment_uri(m, 2, "https://cdn.example.com/path/other/seg9.ts");
    assert_true(s[2].duration == 4.5);
    assert_true(s[2].start == 9.97667 + 10.0);
    assert_int_equal(s[2].sequence, 9);
    assert_true(m->total_duration == 9.97667 + 10.0 + 4.5);
    hls_playlist_free(pl);
}

static void test_segment_uris_resolve_in_every_reference_form(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXTINF:1,\n./a.ts\n"
                                      "#EXTINF:1,\n../../b.ts\n"
                                      "#EXTINF:1,\n?only=query\n"
                                      "#EXTINF:1,\n/top/c.ts\n"
                                      "#EXTINF:1,\n//host.example/d.ts\n"
                                      "#EXTINF:1,\nhttp://abs.example/e.ts\n");
    hls_segment s[SEGMENTS_MAX];
    segments_of(&pl->media, s);
    hls_test_segment_uri(&pl->media, 0, "https://cdn.example.com/path/to/a.ts");
    hls_test_segment_uri(&pl->media, 1, "https://cdn.example.com/b.ts");
    hls_test_segment_uri(&pl->media, 2, "https://cdn.example.com/path/to/list.m3u8?only=query");
    hls_test_segment_uri(&pl->media, 3, "https://cdn.example.com/top/c.ts");
    hls_test_segment_uri(&pl->media, 4, "https://host.example/d.ts");
    hls_test_segment_uri(&pl->media, 5, "http://abs.example/e.ts");
    hls_playlist_free(pl);
}

static void test_extinf_title_keeps_commas_and_duration_may_lack_a_comma(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXTINF:3.5,Artist, Song, Live\n"
                                      "a.aac\n"
                                      "#EXTINF: 2 ,  spaced  \n"
                                      "b.aac\n"
                                      "#EXTINF:0\n"
                                      "c.aac\n");
    hls_segment s[SEGMENTS_MAX];
    segments_of(&pl->media, s);
    assert_string_equal(s[0].title, "Artist, Song, Live");
    assert_true(s[1].duration == 2.0);
    assert_string_equal(s[1].title, "spaced");
    assert_true(s[2].duration == 0.0);
    assert_null(s[2].title);
    hls_playlist_free(pl);
}

/* EXT-X-PROGRAM-DATE-TIME dates its segment; the segments after it count on from it by their
 * durations until the next tag; those before the first tag have none, and a date the client
 * cannot read is ignored. */
static void test_program_date_time_dates_its_segment_and_those_after_it(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-TARGETDURATION:4\n"
                                      "#EXTINF:4,\n"
                                      "a.ts\n"
                                      "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T03:20:00.000Z\n"
                                      "#EXTINF:4,\n"
                                      "b.ts\n"
                                      "#EXTINF:2.5,\n"
                                      "c.ts\n"
                                      "#EXTINF:4,\n"
                                      "d.ts\n"
                                      "#EXT-X-DISCONTINUITY\n"
                                      "#EXT-X-PROGRAM-DATE-TIME: 2026-12-06T04:00:00+01:00 \n"
                                      "#EXTINF:4,\n"
                                      "e.ts\n"
                                      "#EXT-X-PROGRAM-DATE-TIME:yesterday\n"
                                      "#EXTINF:4,\n"
                                      "f.ts\n");
    hls_segment s[SEGMENTS_MAX];
    segments_of(&pl->media, s);
    const int64_t t = 1796527200000; /* 2026-12-06T03:20:00Z */
    assert_int_equal(s[0].program_time_ms, 0);
    assert_false(s[0].date_tag);
    assert_int_equal(s[1].program_time_ms, t);
    assert_true(s[1].date_tag);
    assert_int_equal(s[2].program_time_ms, t + 4000);
    assert_false(s[2].date_tag);
    assert_int_equal(s[3].program_time_ms, t + 6500);
    assert_int_equal(s[4].program_time_ms, t - 1200000); /* 04:00+01:00 is 03:00Z */
    assert_true(s[4].date_tag);
    assert_int_equal(s[5].program_time_ms, t - 1200000 + 4000);
    assert_false(s[5].date_tag);
    hls_playlist_free(pl);
}

static void test_implied_byterange_offset_continues_the_same_uri(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-TARGETDURATION:6\n"
                                      "#EXTINF:6,\n"
                                      "#EXT-X-BYTERANGE:1000@100\n"
                                      "main.mp4\n"
                                      "#EXTINF:6,\n"
                                      "#EXT-X-BYTERANGE:500@0\n"
                                      "other.aac\n"
                                      "#EXTINF:6,\n"
                                      "#EXT-X-BYTERANGE:2000\n"
                                      "main.mp4\n"
                                      "#EXTINF:6,\n"
                                      "#EXT-X-BYTERANGE:700\n"
                                      "other.aac\n"
                                      "#EXTINF:6,\n"
                                      "whole.ts\n"
                                      "#EXTINF:6,\n"
                                      "#EXT-X-BYTERANGE:5\n"
                                      "main.mp4\n");
    hls_segment s[SEGMENTS_MAX];
    segments_of(&pl->media, s);
    assert_int_equal(pl->media.segment_count, 6);
    assert_true(s[0].range.present);
    assert_int_equal(s[0].range.offset, 100);
    assert_int_equal(s[0].range.length, 1000);
    assert_int_equal(s[1].range.offset, 0);
    assert_int_equal(s[2].range.offset, 1100);
    assert_int_equal(s[2].range.length, 2000);
    assert_int_equal(s[3].range.offset, 500);
    assert_int_equal(s[3].range.length, 700);
    assert_false(s[4].range.present);
    assert_int_equal(s[5].range.offset, 3100);
    /* Equal consecutive URIs share storage; equality is what matters. */
    hls_test_segment_uri(&pl->media, 0, "https://cdn.example.com/path/to/main.mp4");
    hls_test_segment_uri(&pl->media, 2, "https://cdn.example.com/path/to/main.mp4");
    hls_playlist_free(pl);
}

static void test_implied_byterange_offset_continues_after_the_init_range(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-MAP:URI=\"main.mp4\",BYTERANGE=\"720@0\"\n"
                                      "#EXTINF:6,\n"
                                      "#EXT-X-BYTERANGE:1000\n"
                                      "main.mp4\n");
    assert_int_equal(hls_media_segment(&pl->media, 0).range.offset, 720);
    assert_int_equal(pl->media.map_count, 1);
    assert_true(pl->media.maps[0].range.present);
    assert_int_equal(pl->media.maps[0].range.length, 720);
    hls_playlist_free(pl);
}

static void test_byterange_errors_name_the_byterange_line(void **state)
{
    (void)state;
    hls_test_expect_error("#EXTM3U\n#EXTINF:6,\n#EXT-X-BYTERANGE:1000\nfile.mp4\n", KTH_ERR_FORMAT,
                          "line 3: EXT-X-BYTERANGE has no offset and no earlier range of "
                          "'https://cdn.example.com/path/to/file.mp4' precedes it");
    hls_test_expect_error("#EXTM3U\n#EXTINF:6,\n#EXT-X-BYTERANGE:10@0\na.mp4\n#EXTINF:6,\n"
                          "#EXT-X-BYTERANGE:10\nb.mp4\n",
                          KTH_ERR_FORMAT,
                          "line 6: EXT-X-BYTERANGE has no offset and no earlier range of "
                          "'https://cdn.example.com/path/to/b.mp4' precedes it");
    hls_test_expect_error("#EXTM3U\n#EXTINF:6,\n#EXT-X-BYTERANGE:2@18446744073709551615\na\n",
                          KTH_ERR_FORMAT,
                          "line 3: EXT-X-BYTERANGE 2@18446744073709551615: offset + length "
                          "overflows");
    hls_test_expect_error("#EXTM3U\n#EXTINF:6,\n#EXT-X-BYTERANGE:18446744073709551615@0\na\n"
                          "#EXTINF:6,\n#EXT-X-BYTERANGE:1\na\n",
                          KTH_ERR_FORMAT, "line 6: EXT-X-BYTERANGE offset + length overflows");
    hls_test_expect_error("#EXTM3U\n#EXTINF:6,\n#EXT-X-BYTERANGE:0@5\na\n", KTH_ERR_FORMAT,
                          "line 3: EXT-X-BYTERANGE length is 0");
    hls_test_expect_error("#EXTM3U\n#EXTINF:6,\n#EXT-X-BYTERANGE:ten\na\n", KTH_ERR_FORMAT,
                          "line 3: EXT-X-BYTERANGE 'ten' is not <length>[@<offset>]");
    hls_test_expect_error("#EXTM3U\n#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"x@1\"\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-MAP BYTERANGE 'x@1' is not <length>[@<offset>]");
}

static void test_key_applies_to_following_segments_until_the_next_key(void **state)
{
    (void)state;
    hls_playlist *pl =
        hls_test_parse("#EXTM3U\n"
                       "#EXTINF:4,\nclear0.ts\n"
                       "#EXT-X-KEY:METHOD=AES-128,URI=\"keys/k1.bin\"\n"
                       "#EXTINF:4,\ns1.ts\n"
                       "#EXTINF:4,\ns2.ts\n"
                       "#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.com/k2\",IV=0x0F\n"
                       "#EXTINF:4,\ns3.ts\n"
                       "#EXT-X-KEY:METHOD=NONE\n"
                       "#EXTINF:4,\nclear4.ts\n"
                       "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k3\"\n"
                       "#EXTINF:4,\ns5.ts\n");
    const hls_media_playlist *m = &pl->media;
    hls_segment s[SEGMENTS_MAX];
    segments_of(m, s);
    assert_int_equal(m->key_count, 3);
    assert_true(s[0].key == HLS_NONE);
    assert_int_equal(s[1].key, 0);
    assert_int_equal(s[2].key, 0);
    assert_int_equal(s[3].key, 1);
    assert_true(s[4].key == HLS_NONE);
    assert_int_equal(s[5].key, 2);
    assert_int_equal(m->keys[0].method, HLS_KEY_AES_128);
    assert_string_equal(m->keys[0].method_name, "AES-128");
    assert_string_equal(m->keys[0].uri, "https://cdn.example.com/path/to/keys/k1.bin");
    assert_false(m->keys[0].has_iv);
    assert_string_equal(m->keys[0].keyformat, "identity");
    assert_string_equal(m->keys[0].keyformat_versions, "1");
    assert_int_equal(m->keys[0].line, 4);
    assert_string_equal(m->keys[1].uri, "https://keys.example.com/k2");
    assert_true(m->keys[1].has_iv);
    assert_int_equal(m->keys[2].method, HLS_KEY_SAMPLE_AES);
    hls_playlist_free(pl);
}

static void test_iv_is_explicit_or_the_big_endian_media_sequence_number(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse(
        "#EXTM3U\n"
        "#EXT-X-MEDIA-SEQUENCE:72623859790382856\n" /* 0x0102030405060708 */
        "#EXTINF:4,\nclear.ts\n"
        "#EXT-X-KEY:METHOD=AES-128,URI=\"k1\"\n"
        "#EXTINF:4,\na.ts\n"
        "#EXT-X-KEY:METHOD=AES-128,URI=\"k2\",IV=0xA0A1A2A3A4A5A6A7A8A9AAABACADAEAF\n"
        "#EXTINF:4,\nb.ts\n");
    uint8_t iv[16];
    assert_int_equal(hls_playlist_segment_iv(pl, 1, iv), KTH_OK);
    static const uint8_t from_sequence[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                              1, 2, 3, 4, 5, 6, 7, 9}; /* sequence of segment 1 */
    assert_memory_equal(iv, from_sequence, 16);
    assert_int_equal(hls_playlist_segment_iv(pl, 2, iv), KTH_OK);
    static const uint8_t explicit_iv[16] = {0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
                                            0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF};
    assert_memory_equal(iv, explicit_iv, 16);
    assert_int_equal(hls_playlist_segment_iv(pl, 0, iv), KTH_ERR_INVALID_ARG); /* clear */
    assert_int_equal(hls_playlist_segment_iv(pl, 3, iv), KTH_ERR_INVALID_ARG);
    assert_int_equal(hls_playlist_segment_iv(NULL, 0, iv), KTH_ERR_INVALID_ARG);

    hls_key key = {.method = HLS_KEY_AES_128};
    hls_key_iv(&key, UINT64_MAX, iv);
    static const uint8_t max_sequence[16] = {0,    0,    0,    0,    0,    0,    0,    0,
                                             0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    assert_memory_equal(iv, max_sequence, 16);
    hls_playlist_free(pl);
}

static void test_identity_key_is_preferred_among_key_formats_in_force(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://"
                                      "a\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n"
                                      "#EXTINF:4,\nfairplay-only.ts\n"
                                      "#EXT-X-KEY:METHOD=AES-128,URI=\"plain.key\"\n"
                                      "#EXTINF:4,\nboth.ts\n"
                                      "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://"
                                      "b\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n"
                                      "#EXTINF:4,\nboth-again.ts\n"
                                      "#EXT-X-KEY:METHOD=NONE\n"
                                      "#EXTINF:4,\nclear.ts\n");
    const hls_media_playlist *m = &pl->media;
    assert_int_equal(hls_media_segment(m, 0).key, 0);
    assert_string_equal(m->keys[0].keyformat, "com.apple.streamingkeydelivery");
    assert_int_equal(hls_media_segment(m, 1).key, 1);
    assert_string_equal(m->keys[1].uri, "https://cdn.example.com/path/to/plain.key");
    assert_int_equal(hls_media_segment(m, 2).key, 1); /* the identity key is still in force */
    assert_true(hls_media_segment(m, 3).key == HLS_NONE);
    hls_playlist_free(pl);
}

static void test_unknown_key_method_is_kept_as_other(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:x\","
                                      "KEYFORMAT=\"urn:uuid:1\",KEYFORMATVERSIONS=\"1\"\n"
                                      "#EXTINF:4,\na.ts\n");
    assert_int_equal(pl->media.keys[0].method, HLS_KEY_OTHER);
    assert_string_equal(pl->media.keys[0].method_name, "SAMPLE-AES-CTR");
    assert_string_equal(pl->media.keys[0].uri, "data:x");
    hls_playlist_free(pl);
}

static void test_key_errors_name_their_line(void **state)
{
    (void)state;
    hls_test_expect_error("#EXTM3U\n#EXT-X-KEY:URI=\"k\"\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-KEY has no METHOD");
    hls_test_expect_error("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-KEY METHOD=AES-128 has no URI");
    hls_test_expect_error("#EXTM3U\n#EXT-X-KEY:METHOD=\"AES-128\",URI=\"k\"\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-KEY attribute METHOD must be an enumerated string");
    hls_test_expect_error("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=k\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-KEY attribute URI must be a quoted string");
    hls_test_expect_error("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x1G\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-KEY IV '0x1G' is not a 128-bit hexadecimal number");
    hls_test_expect_error(
        "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x000102030405060708090A0B0C0D0E0F10\n",
        KTH_ERR_FORMAT,
        "line 2: EXT-X-KEY IV '0x000102030405060708090A0B0C0D0E0F10' is not a 128-bit "
        "hexadecimal number");
    hls_test_expect_error("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\",KEYFORMAT=identity\n",
                          KTH_ERR_FORMAT,
                          "line 2: EXT-X-KEY attribute KEYFORMAT must be a quoted string");
}

static void test_map_applies_to_following_segments_until_the_next_map(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXTINF:6,\nno-init.ts\n"
                                      "#EXT-X-MAP:URI=\"init-a.mp4\"\n"
                                      "#EXTINF:6,\na1.m4s\n"
                                      "#EXTINF:6,\na2.m4s\n"
                                      "#EXT-X-DISCONTINUITY\n"
                                      "#EXT-X-MAP:URI=\"init-b.mp4\",BYTERANGE=\"100@50\"\n"
                                      "#EXTINF:6,\nb1.m4s\n"
                                      "#EXT-X-DISCONTINUITY\n"
                                      "#EXT-X-MAP:URI=\"init-b.mp4\",BYTERANGE=\"100@50\"\n"
                                      "#EXTINF:6,\nb2.m4s\n"
                                      "#EXT-X-MAP:URI=\"init-a.mp4\"\n"
                                      "#EXTINF:6,\na3.m4s\n");
    const hls_media_playlist *m = &pl->media;
    assert_true(hls_media_segment(m, 0).map == HLS_NONE);
    assert_int_equal(hls_media_segment(m, 1).map, 0);
    assert_int_equal(hls_media_segment(m, 2).map, 0);
    assert_int_equal(hls_media_segment(m, 3).map, 1);
    assert_int_equal(hls_media_segment(m, 4).map,
                     1); /* identical re-declaration shares the entry */
    assert_int_equal(hls_media_segment(m, 5).map, 2); /* a change back is a new entry */
    assert_int_equal(m->map_count, 3);
    assert_string_equal(m->maps[0].uri, "https://cdn.example.com/path/to/init-a.mp4");
    assert_false(m->maps[0].range.present);
    assert_true(m->maps[0].key == HLS_NONE);
    assert_int_equal(m->maps[0].line, 4);
    assert_true(m->maps[1].range.present);
    assert_int_equal(m->maps[1].range.offset, 50);
    assert_int_equal(m->maps[1].range.length, 100);
    assert_string_equal(m->maps[2].uri, m->maps[0].uri);
    hls_playlist_free(pl);
}

static void test_map_range_without_offset_starts_at_zero(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"600\"\n"
                                      "#EXTINF:6,\na.m4s\n");
    assert_true(pl->media.maps[0].range.present);
    assert_int_equal(pl->media.maps[0].range.offset, 0);
    assert_int_equal(pl->media.maps[0].range.length, 600);
    hls_playlist_free(pl);
}

static void test_map_takes_the_key_in_force_at_its_tag(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-KEY:METHOD=AES-128,URI=\"k1\",IV=0x1\n"
                                      "#EXT-X-MAP:URI=\"init.mp4\"\n"
                                      "#EXTINF:6,\na.m4s\n"
                                      "#EXT-X-KEY:METHOD=AES-128,URI=\"k2\",IV=0x2\n"
                                      "#EXTINF:6,\nb.m4s\n"
                                      "#EXT-X-MAP:URI=\"init2.mp4\"\n"
                                      "#EXT-X-KEY:METHOD=NONE\n"
                                      "#EXTINF:6,\nc.m4s\n");
    const hls_media_playlist *m = &pl->media;
    assert_int_equal(m->maps[0].key, 0);
    assert_int_equal(hls_media_segment(m, 0).key, 0); /* the same tag: one shared entry */
    assert_int_equal(hls_media_segment(m, 1).key, 1);
    assert_int_equal(hls_media_segment(m, 1).map, 0);
    assert_true(hls_media_segment(m, 2).key == HLS_NONE);
    assert_int_equal(hls_media_segment(m, 2).map, 1);
    assert_int_equal(m->maps[1].key, 1); /* k2 was in force at the second EXT-X-MAP */
    assert_string_equal(m->keys[m->maps[1].key].uri, "https://cdn.example.com/path/to/k2");
    hls_playlist_free(pl);
}

static void test_encrypted_map_requires_an_iv(void **state)
{
    (void)state;
    hls_test_expect_error("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n"
                          "#EXT-X-MAP:URI=\"init.mp4\"\n",
                          KTH_ERR_FORMAT,
                          "line 3: EXT-X-MAP is under the AES-128 key of line 2, which has no IV "
                          "(required for an encrypted init section)");
    hls_test_expect_error("#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-MAP has no URI");
}

static void test_discontinuity_sequence_counts_discontinuity_tags(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-DISCONTINUITY-SEQUENCE:3\n"
                                      "#EXTINF:10,\nclipA.ts\n"
                                      "#EXT-X-DISCONTINUITY\n"
                                      "#EXTINF:10,\nad0.ts\n"
                                      "#EXTINF:3,\nad1.ts\n"
                                      "#EXT-X-DISCONTINUITY\n"
                                      "#EXTINF:10,\nclipB.ts\n");
    const hls_media_playlist *m = &pl->media;
    assert_int_equal(m->discontinuity_sequence, 3);
    assert_false(hls_media_segment(m, 0).discontinuity);
    assert_int_equal(hls_media_segment(m, 0).discontinuity_sequence, 3);
    assert_true(hls_media_segment(m, 1).discontinuity);
    assert_int_equal(hls_media_segment(m, 1).discontinuity_sequence, 4);
    assert_false(hls_media_segment(m, 2).discontinuity);
    assert_int_equal(hls_media_segment(m, 2).discontinuity_sequence, 4);
    assert_true(hls_media_segment(m, 3).discontinuity);
    assert_int_equal(hls_media_segment(m, 3).discontinuity_sequence, 5);
    hls_playlist_free(pl);
}

static void test_gap_marks_only_the_next_segment(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-GAP\n"
                                      "#EXTINF:4,\nmissing.ts\n"
                                      "#EXTINF:4,\npresent.ts\n");
    assert_true(hls_media_segment(&pl->media, 0).gap);
    assert_false(hls_media_segment(&pl->media, 1).gap);
    hls_playlist_free(pl);
}

static void test_playlist_wide_media_tags(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "#EXT-X-PLAYLIST-TYPE:EVENT\n"
                                      "#EXT-X-I-FRAMES-ONLY\n"
                                      "#EXT-X-INDEPENDENT-SEGMENTS\n"
                                      "#EXT-X-TARGETDURATION: 4\n");
    assert_int_equal(pl->kind, HLS_PLAYLIST_MEDIA);
    assert_int_equal(pl->media.target_duration, 4); /* a blank after the colon is accepted */
    assert_int_equal(pl->media.type, HLS_PLAYLIST_TYPE_EVENT);
    assert_true(pl->media.i_frames_only);
    assert_true(pl->independent_segments);
    assert_false(pl->media.endlist);
    assert_int_equal(pl->media.segment_count, 0);
    assert_true(pl->media.total_duration == 0.0);
    hls_playlist_free(pl);
}

static void test_media_errors_name_their_line(void **state)
{
    (void)state;
    hls_test_expect_error("#EXTM3U\n#EXT-X-TARGETDURATION:6\n\n#EXTINF:abc,\nb.ts\n",
                          KTH_ERR_FORMAT, "line 4: EXTINF duration 'abc' is not a number");
    hls_test_expect_error("#EXTM3U\n#EXTINF:-1,\nb.ts\n", KTH_ERR_FORMAT,
                          "line 2: EXTINF duration '-1' is negative");
    hls_test_expect_error("#EXTM3U\n#EXTINF:,title\nb.ts\n", KTH_ERR_FORMAT,
                          "line 2: EXTINF duration '' is not a number");
    hls_test_expect_error("#EXTM3U\n#EXT-X-TARGETDURATION:6\nb.ts\n", KTH_ERR_FORMAT,
                          "line 3: URI 'b.ts' without a preceding EXTINF");
    hls_test_expect_error("#EXTM3U\n#EXTINF:1,\n#EXTINF:2,\nb.ts\n", KTH_ERR_FORMAT,
                          "line 3: EXTINF follows the EXTINF of line 2, which has no URI line");
    hls_test_expect_error("#EXTM3U\n#EXTINF:1,\na.ts\n#EXTINF:2,\n#EXT-X-ENDLIST\n", KTH_ERR_FORMAT,
                          "line 4: EXTINF has no URI line after it");
    hls_test_expect_error("#EXTM3U\n#EXT-X-TARGETDURATION:6.5\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-TARGETDURATION '6.5' is not a decimal integer");
    hls_test_expect_error("#EXTM3U\n#EXTINF:1,\na.ts\n#EXT-X-MEDIA-SEQUENCE:5\n", KTH_ERR_FORMAT,
                          "line 4: EXT-X-MEDIA-SEQUENCE after the first segment");
    hls_test_expect_error("#EXTM3U\n#EXTINF:1,\na.ts\n#EXT-X-DISCONTINUITY-SEQUENCE:5\n",
                          KTH_ERR_FORMAT,
                          "line 4: EXT-X-DISCONTINUITY-SEQUENCE after the first segment");
    hls_test_expect_error("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:LIVE\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-PLAYLIST-TYPE 'LIVE' is not VOD or EVENT");
    hls_test_expect_error("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n"
                          "#EXTINF:1,\na.ts\n#EXTINF:1,\nb.ts\n",
                          KTH_ERR_FORMAT, "line 6: media sequence number overflows");
    hls_test_expect_error("#EXTM3U\n#EXT-X-DISCONTINUITY-SEQUENCE:18446744073709551615\n"
                          "#EXT-X-DISCONTINUITY\n#EXTINF:1,\na.ts\n",
                          KTH_ERR_FORMAT, "line 5: discontinuity sequence number overflows");
}

static void test_huge_durations_cannot_overflow_the_total(void **state)
{
    (void)state;
    /* 1.5e308 is finite, two of them are not. */
    char text[1024] = "#EXTM3U\n#EXTINF:15";
    for (int i = 0; i < 307; i++) {
        strcat(text, "0");
    }
    char line[400];
    strcpy(line, strchr(text, '\n') + 1);
    strcat(text, ",\na.ts\n");
    strcat(text, line);
    strcat(text, ",\nb.ts\n");
    hls_test_expect_error(text, KTH_ERR_FORMAT, "line 5: total duration overflows");
}

/* The compact segment table keeps ranges and titles in side tables made when the first one
 * appears: segments before it read as having none, and the tables follow the records as they
 * grow (here past several reallocations). */
static void test_ranges_and_titles_that_start_late_in_a_long_playlist(void **state)
{
    (void)state;
    enum { N = 300 };
    size_t cap = 256 + (size_t)N * 64;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, cap, "#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
    for (int i = 0; i < N; i++) {
        if (i >= 5 && i % 2 == 1)
            n += (size_t)snprintf(text + n, cap - n, "#EXT-X-BYTERANGE:%d@%d\n", 100 + i, 7 * i);
        if (i % 7 == 3)
            n += (size_t)snprintf(text + n, cap - n, "#EXTINF:4,t%d\ns%d.ts\n", i, i);
        else
            n += (size_t)snprintf(text + n, cap - n, "#EXTINF:4,\ns%d.ts\n", i);
    }
    hls_playlist *pl = hls_test_parse(text);
    const hls_media_playlist *m = &pl->media;
    assert_int_equal(m->segment_count, N);
    char want[64];
    for (int i = 0; i < N; i++) {
        hls_segment seg = hls_media_segment(m, (size_t)i);
        snprintf(want, sizeof want, "https://cdn.example.com/path/to/s%d.ts", i);
        hls_test_segment_uri(m, (size_t)i, want);
        assert_int_equal(seg.sequence, i);
        assert_true(seg.start == 4.0 * i);
        bool ranged = i >= 5 && i % 2 == 1;
        assert_int_equal(seg.range.present, ranged);
        assert_int_equal(seg.range.offset, ranged ? 7 * i : 0);
        assert_int_equal(seg.range.length, ranged ? 100 + i : 0);
        if (i % 7 == 3) {
            snprintf(want, sizeof want, "t%d", i);
            assert_string_equal(seg.title, want);
        } else {
            assert_null(seg.title);
        }
    }
    hls_playlist_free(pl);
    free(text);
}

/* Builds a media playlist whose segment lines are `uris` (NULL-terminated), 4 s each. */
static hls_playlist *parse_uris(const char *const *uris)
{
    size_t cap = 128;
    for (size_t i = 0; uris[i]; i++)
        cap += strlen(uris[i]) + 16;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, cap, "#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
    for (size_t i = 0; uris[i]; i++)
        n += (size_t)snprintf(text + n, cap - n, "#EXTINF:4,\n%s\n", uris[i]);
    hls_playlist *pl = hls_test_parse(text);
    free(text);
    return pl;
}

/* Every segment's URI is made back exactly, whether a run keeps it or a string does. */
static void check_uris(const hls_playlist *pl, const char *const *uris)
{
    size_t i = 0;
    for (; uris[i]; i++) {
        char want[512];
        if (strstr(uris[i], "://"))
            snprintf(want, sizeof want, "%s", uris[i]);
        else
            snprintf(want, sizeof want, "https://cdn.example.com/path/to/%s", uris[i]);
        hls_test_segment_uri(&pl->media, i, want);
    }
    assert_int_equal(pl->media.segment_count, i);
}

static void test_numbered_segment_uris_are_kept_as_runs(void **state)
{
    (void)state;
    enum { N = 5000 };
    char **uris = calloc(N + 1, sizeof *uris);
    assert_non_null(uris);
    for (int i = 0; i < N; i++) {
        uris[i] = malloc(64);
        assert_non_null(uris[i]);
        snprintf(uris[i], 64, "audio/seg_%05d.ts", i + 7);
    }
    hls_playlist *pl = parse_uris((const char *const *)uris);
    check_uris(pl, (const char *const *)uris);
    /* The duration indices are sized to the segments (a byte each), not grown by doubling
     * (8,192 places); the first segment and the run after it are two runs of records. */
    assert_int_equal(pl->media.dur_width_, 1);
    assert_true(malloc_usable_size(pl->media.duration_of_) < N + 4096);
    assert_int_equal(pl->media.run_count_, 2);
    assert_int_equal(pl->media.duration_count_, 1);
    /* One string (the first segment's) and one run for the 4,999 after it. */
    assert_int_equal(pl->media.uri_count_, 1);
    assert_int_equal(pl->media.uri_run_count_, 1);
    assert_false(hls_media_segment_uri_is(&pl->media, 1,
                                          "https://cdn.example.com/path/to/audio/seg_0008.ts"));
    assert_false(hls_media_segment_uri_is(&pl->media, 1,
                                          "https://cdn.example.com/path/to/audio/seg_00008.t"));
    assert_false(
        hls_media_segment_uri_is(&pl->media, 1, "https://cdn.example.com/path/to/audio/seg_"));
    assert_false(hls_media_segment_uri_is(&pl->media, 1, ""));
    hls_playlist_free(pl);
    for (int i = 0; i < N; i++)
        free(uris[i]);
    free(uris);
}

static void test_uri_runs_keep_every_uri_exact(void **state)
{
    (void)state;
    /* Widths that grow, a number before the one that counts, a query that changes, numbers that
     * jump or repeat, padding that does not match, a run that breaks and starts again, and
     * numbers too long to count. */
    const char *const uris[] = {"s8.ts",
                                "s9.ts",
                                "s10.ts",
                                "s11.ts",
                                "v2/p099.aac",
                                "v2/p100.aac",
                                "v2/p101.aac",
                                "a1/x5.ts?sig=1",
                                "a1/x6.ts?sig=2",
                                "a1/x7.ts?sig=3",
                                "a1/x7.ts?sig=3",
                                "a1/x8.ts?sig=3",
                                "a1/x9.ts?sig=3",
                                "t09.ts",
                                "t010.ts",
                                "t011.ts",
                                "q1.ts",
                                "q3.ts",
                                "q4.ts",
                                "other.ts",
                                "q5.ts",
                                "q6.ts",
                                "0.ts",
                                "1.ts",
                                "2.ts",
                                "n1234567890123456789.ts",
                                "n1234567890123456790.ts",
                                "n1234567890123456791.ts",
                                "http://elsewhere.example/q7.ts",
                                "http://elsewhere.example/q8.ts",
                                NULL};
    hls_playlist *pl = parse_uris(uris);
    check_uris(pl, uris);
    /* Runs start at s9, p100, x8, t011, q4, q6, 1 and q8 (x5…x7 differ in their query too). */
    assert_int_equal(pl->media.uri_run_count_, 8);
    hls_playlist_free(pl);
}

static void test_ranged_segments_keep_their_uris_as_strings(void **state)
{
    (void)state;
    /* Numbered files with ranges: the range ends are looked up by URI string. */
    hls_playlist *pl = hls_test_parse("#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
                                      "#EXTINF:4,\n#EXT-X-BYTERANGE:100@0\nf1.mp4\n"
                                      "#EXTINF:4,\n#EXT-X-BYTERANGE:100@0\nf2.mp4\n"
                                      "#EXTINF:4,\n#EXT-X-BYTERANGE:50\nf1.mp4\n"
                                      "#EXTINF:4,\nf3.mp4\n"
                                      "#EXTINF:4,\nf4.mp4\n"
                                      "#EXTINF:4,\n#EXT-X-BYTERANGE:70\nf2.mp4\n");
    const char *const uris[] = {"f1.mp4", "f2.mp4", "f1.mp4", "f3.mp4", "f4.mp4", "f2.mp4", NULL};
    check_uris(pl, uris);
    assert_int_equal(hls_media_segment(&pl->media, 2).range.offset, 100);
    assert_int_equal(hls_media_segment(&pl->media, 5).range.offset, 100);
    hls_playlist_free(pl);
}

/* A record keeps no start of its own: each start is made from the start of its group of
 * HLS_START_EVERY and the durations before it, and must be the very double a running sum of
 * the durations gives, and the program times that follow from it the same. */
static void test_segment_starts_are_the_running_sum_of_durations(void **state)
{
    (void)state;
    enum { N = 3 * HLS_START_EVERY + 7 };
    static char text[N * 48 + 256];
    size_t n = (size_t)snprintf(text, sizeof text,
                                "#EXTM3U\n#EXT-X-TARGETDURATION:5\n"
                                "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z\n");
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "#EXTINF:%d.%03d,\ns%d.ts\n", 3 + i % 2,
                              (i * 337) % 1000, i);
    hls_playlist *pl = hls_test_parse(text);
    assert_int_equal(pl->media.segment_count, N);
    double sum = 0;
    for (int i = 0; i < N; i++) {
        hls_segment seg = hls_media_segment(&pl->media, (size_t)i);
        assert_true(seg.start == sum); /* bit for bit */
        assert_int_equal(seg.program_time_ms,
                         INT64_C(1767225600000) + (int64_t)(sum * 1000.0 + 0.5));
        sum += seg.duration;
    }
    assert_true(pl->media.total_duration == sum);
    hls_playlist_free(pl);
}

/* What the mixed playlist below says of segment i. */
typedef struct mixed_seg {
    char uri[64];
    double duration;
    bool title, gap, discontinuity, ranged;
    int key; /* -1: clear; else the key's number */
} mixed_seg;

/* Segments alike but for their index share one record; every kind of difference between
 * neighbours must still come back exactly: numbered URIs, distinct URIs, one URI with byte
 * ranges, keys that change, a discontinuity, gaps, titles, and durations of which there are
 * more than 256 distinct (their indices widen from one byte to two). */
static void test_segments_alike_share_records_and_every_difference_survives(void **state)
{
    (void)state;
    enum { N = 600 };
    static mixed_seg want[N];
    static char text[N * 160];
    size_t n = (size_t)snprintf(text, sizeof text, "#EXTM3U\n#EXT-X-TARGETDURATION:9\n");
    int key = -1;
    for (int i = 0; i < N; i++) {
        mixed_seg *w = &want[i];
        memset(w, 0, sizeof *w);
        if (i < 100)
            snprintf(w->uri, sizeof w->uri, "num_%04d.ts", i);
        else if (i < 200)
            snprintf(w->uri, sizeof w->uri, "h%08x.ts", (unsigned)(i * 2654435761u));
        else if (i < 250)
            snprintf(w->uri, sizeof w->uri, "one.ts");
        else
            snprintf(w->uri, sizeof w->uri, "tail_%d_x.ts", (i * 7) % 1000);
        w->ranged = i >= 200 && i < 250;
        char duration[16]; /* 300 distinct from segment 300 on */
        snprintf(duration, sizeof duration, "%.3f", i < 300 ? 4.0 : 3.0 + (i - 300) / 1000.0);
        w->duration = strtod(duration, NULL);
        w->title = i >= 400 && i < 410;
        w->gap = i >= 310 && i < 313;
        w->discontinuity = i == 300 || i == 450;
        if (i >= 250 && i < 300 && i % 10 == 0)
            key = i / 10;
        if (i == 300)
            key = -1;
        w->key = key;
        if (w->discontinuity)
            n += (size_t)snprintf(text + n, sizeof text - n, "#EXT-X-DISCONTINUITY\n");
        if (i >= 250 && i < 300 && i % 10 == 0)
            n += (size_t)snprintf(text + n, sizeof text - n,
                                  "#EXT-X-KEY:METHOD=AES-128,URI=\"k%d.key\"\n", key);
        if (i == 300)
            n += (size_t)snprintf(text + n, sizeof text - n, "#EXT-X-KEY:METHOD=NONE\n");
        if (w->gap)
            n += (size_t)snprintf(text + n, sizeof text - n, "#EXT-X-GAP\n");
        if (w->ranged)
            n += (size_t)snprintf(text + n, sizeof text - n, "#EXT-X-BYTERANGE:1000@%d\n",
                                  (i - 200) * 1000);
        n += (size_t)snprintf(text + n, sizeof text - n, "#EXTINF:%s,%s\n%s\n", duration,
                              w->title ? "a title" : "", w->uri);
    }
    hls_playlist *pl = hls_test_parse(text);
    const hls_media_playlist *m = &pl->media;
    assert_int_equal(m->segment_count, N);
    assert_int_equal(m->dur_width_, 2);
    assert_int_equal(m->duration_count_, 301);
    assert_true(m->run_count_ < 30); /* not one per segment */
    int discontinuities = 0;
    double start = 0;
    for (int i = 0; i < N; i++) {
        const mixed_seg *w = &want[i];
        hls_segment seg = hls_media_segment(m, (size_t)i);
        char uri[128];
        snprintf(uri, sizeof uri, "https://cdn.example.com/path/to/%.63s", w->uri);
        hls_test_segment_uri(m, (size_t)i, uri);
        discontinuities += w->discontinuity;
        assert_true(seg.duration == w->duration);
        assert_true(seg.start == start);
        start += seg.duration;
        assert_int_equal(seg.title != NULL, w->title);
        assert_int_equal(seg.gap, w->gap);
        assert_int_equal(seg.discontinuity, w->discontinuity);
        assert_int_equal(seg.discontinuity_sequence, discontinuities);
        assert_int_equal(seg.range.present, w->ranged);
        if (w->ranged)
            assert_int_equal(seg.range.offset, (uint64_t)(i - 200) * 1000);
        if (w->key < 0) {
            assert_int_equal(seg.key, HLS_NONE);
        } else {
            assert_true(seg.key != HLS_NONE);
            char key_uri[64];
            snprintf(key_uri, sizeof key_uri, "https://cdn.example.com/path/to/k%d.key", w->key);
            assert_string_equal(m->keys[seg.key].uri, key_uri);
        }
    }
    hls_playlist_free(pl);
}

/* More than 65,536 distinct durations: their indices take four bytes, and each segment keeps
 * its own. */
static void test_durations_past_65536_distinct_keep_their_values(void **state)
{
    (void)state;
    enum { N = 70000 };
    size_t cap = (size_t)N * 40 + 128;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, cap, "#EXTM3U\n#EXT-X-TARGETDURATION:9\n");
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(text + n, cap - n, "#EXTINF:%d.%05d,\ns%d.ts\n", 1 + i / 100000,
                              i % 100000, i);
    hls_playlist *pl = hls_test_parse(text);
    free(text);
    const hls_media_playlist *m = &pl->media;
    assert_int_equal(m->dur_width_, 4);
    assert_int_equal(m->duration_count_, N);
    assert_int_equal(m->run_count_, 2); /* s0's string, then the numbered run */
    for (int i = 0; i < N; i += 997) {
        char want[32];
        snprintf(want, sizeof want, "%d.%05d", 1 + i / 100000, i % 100000);
        assert_true(hls_media_segment(m, (size_t)i).duration == strtod(want, NULL));
    }
    assert_true(hls_media_segment(m, N - 1).duration == strtod("1.69999", NULL));
    hls_playlist_free(pl);
}

/* A playlist with a little of everything a server writes, one segment per URI line: clear and
 * encrypted stretches (with and without an IV, and METHOD=NONE between), two init sections,
 * titles, dates that follow the durations and dates that jump, discontinuities, a gap, byte
 * ranges of one resource, numbered names (across a change of digit count) and hashed ones. */
static char *assorted_playlist(size_t segments)
{
    size_t cap = segments * 200 + 512, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)snprintf(text, cap,
                          "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:6\n"
                          "#EXT-X-MEDIA-SEQUENCE:1000\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n"
                          "#EXT-X-MAP:URI=\"init.mp4\"\n"
                          "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T00:00:00.000Z\n");
    for (size_t i = 0; i < segments; i++) {
        static const double durations[] = {4.0, 3.96, 5.994666667, 4.0, 4.04};
        double secs = 4.0 * (double)i + (i >= 50 ? 7.5 : 0);
        if (i == 10)
            n += (size_t)snprintf(text + n, cap - n,
                                  "#EXT-X-KEY:METHOD=AES-128,URI=\"k1.bin\","
                                  "IV=0x000102030405060708090a0b0c0d0e0f\n");
        if (i == 30)
            n += (size_t)snprintf(text + n, cap - n, "#EXT-X-KEY:METHOD=NONE\n");
        if (i == 40)
            n += (size_t)snprintf(text + n, cap - n, "#EXT-X-KEY:METHOD=AES-128,URI=\"k2.bin\"\n");
        if (i == 60)
            n += (size_t)snprintf(text + n, cap - n,
                                  "#EXT-X-KEY:METHOD=AES-128,URI=\"k1.bin\","
                                  "IV=0x000102030405060708090a0b0c0d0e0f\n"
                                  "#EXT-X-MAP:URI=\"init2.mp4\",BYTERANGE=\"700@100\"\n");
        if (i == 15 || i == 16 || i == 80)
            n += (size_t)snprintf(text + n, cap - n, "#EXT-X-DISCONTINUITY\n");
        if (i == 33)
            n += (size_t)snprintf(text + n, cap - n, "#EXT-X-GAP\n");
        if ((i >= 20 && i < 26) || i == 50 || i == 51)
            n += (size_t)snprintf(
                text + n, cap - n, "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T%02d:%02d:%06.3fZ\n",
                (int)(secs / 3600), (int)(secs / 60) % 60, secs - 60.0 * (double)(int)(secs / 60));
        if (i >= 90 && i < 100)
            n +=
                (size_t)snprintf(text + n, cap - n, "#EXT-X-BYTERANGE:1000@%zu\n", 1000 * (i - 90));
        n += (size_t)snprintf(text + n, cap - n, "#EXTINF:%.9f,%s\n", durations[i % 5],
                              (i >= 5 && i < 9) || i == 70 ? "a title" : "");
        if (i >= 90 && i < 100)
            n += (size_t)snprintf(text + n, cap - n, "big.ts\n");
        else if (i >= 100 && i < 110)
            n += (size_t)snprintf(text + n, cap - n, "%016llx.ts\n",
                                  (unsigned long long)((i + 1) * 0x9e3779b97f4a7c15ull));
        else
            n += (size_t)snprintf(text + n, cap - n, "seg%zu.ts\n", i);
    }
    snprintf(text + n, cap - n, "#EXT-X-ENDLIST\n");
    return text;
}

/* A parse that starts from another model's first segments makes the model one text of both
 * makes, wherever the cut falls: inside runs of names, of records and of byte ranges, under a
 * key or none, after a discontinuity or a date. */
static void test_a_parse_after_a_prefix_equals_the_whole_parse(void **state)
{
    (void)state;
    enum { SEGMENTS = 120 };
    char *text = assorted_playlist(SEGMENTS);
    hls_playlist *whole = hls_test_parse(text);
    assert_int_equal(whole->media.segment_count, SEGMENTS);
    const char *rest = text;
    for (size_t k = 1; k <= SEGMENTS; k++) {
        /* After the k-th URI line. */
        do {
            rest = strchr(rest, '\n') + 1;
        } while (rest[0] == '#');
        rest = strchr(rest, '\n') + 1;
        char *tail = malloc(strlen(rest) + 64);
        assert_non_null(tail);
        snprintf(tail, strlen(rest) + 64, "#EXTM3U\n#EXT-X-TARGETDURATION:6\n%s", rest);
        hls_playlist *pl = NULL;
        char err[256] = "", what[64];
        int rc = hls_playlist_parse_after(whole, k, (const uint8_t *)tail, strlen(tail),
                                          HLS_TEST_BASE, NULL, &pl, err, sizeof err);
        if (rc != KTH_OK)
            fail_msg("after %zu segments: %d: %s", k, rc, err);
        snprintf(what, sizeof what, "after %zu segments", k);
        hls_test_same_media(&whole->media, &pl->media, what);
        for (size_t i = 0; i < SEGMENTS; i++) {
            uint8_t x[16], y[16];
            int rx = hls_playlist_segment_iv(whole, i, x), ry = hls_playlist_segment_iv(pl, i, y);
            assert_int_equal(rx, ry);
            if (rx == KTH_OK)
                assert_memory_equal(x, y, 16);
        }
        hls_playlist_free(pl);
        free(tail);
    }
    /* Byte ranges after the cut that the text does not have leave no table of ranges. */
    hls_playlist *ranged = hls_test_parse("#EXTM3U\n#EXTINF:4,\na.ts\n#EXT-X-BYTERANGE:10@0\n"
                                          "#EXTINF:4,\nb.ts\n");
    hls_playlist *plain = hls_test_parse("#EXTM3U\n#EXTINF:4,\na.ts\n#EXTINF:4,\nc.ts\n");
    hls_playlist *pl = NULL;
    char err[256];
    const char *c = "#EXTM3U\n#EXTINF:4,\nc.ts\n";
    assert_int_equal(hls_playlist_parse_after(ranged, 1, (const uint8_t *)c, strlen(c),
                                              HLS_TEST_BASE, NULL, &pl, err, sizeof err),
                     KTH_OK);
    hls_test_same_media(&plain->media, &pl->media, "without the ranged segment");
    hls_playlist_free(pl);
    hls_playlist_free(plain);
    hls_playlist_free(ranged);
    /* What cannot be: no segments to start from, more than there are, a media sequence set
     * again after them. */
    pl = NULL;
    const char *more = "#EXTM3U\n#EXTINF:4,\nnext.ts\n";
    assert_int_equal(hls_playlist_parse_after(whole, 0, (const uint8_t *)more, strlen(more),
                                              HLS_TEST_BASE, NULL, &pl, err, sizeof err),
                     KTH_ERR_INVALID_ARG);
    assert_int_equal(hls_playlist_parse_after(whole, SEGMENTS + 1, (const uint8_t *)more,
                                              strlen(more), HLS_TEST_BASE, NULL, &pl, err,
                                              sizeof err),
                     KTH_ERR_INVALID_ARG);
    assert_int_equal(hls_playlist_parse_after(NULL, 1, (const uint8_t *)more, strlen(more),
                                              HLS_TEST_BASE, NULL, &pl, err, sizeof err),
                     KTH_ERR_INVALID_ARG);
    const char *renumbered = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:5\n#EXTINF:4,\nnext.ts\n";
    assert_int_equal(hls_playlist_parse_after(whole, 3, (const uint8_t *)renumbered,
                                              strlen(renumbered), HLS_TEST_BASE, NULL, &pl, err,
                                              sizeof err),
                     KTH_ERR_FORMAT);
    assert_non_null(strstr(err, "EXT-X-MEDIA-SEQUENCE after the first segment"));
    assert_null(pl);
    hls_playlist_free(whole);
    free(text);
}

/* A prefix of many distinct durations: the parse after it sized the table that finds a
 * duration's index for 64 whatever it copied, and with 64 or more it never returned. Also past
 * 256 durations, where each segment's index takes two bytes. */
static void test_a_parse_after_many_distinct_durations(void **state)
{
    (void)state;
    enum { SEGMENTS = 300 };
    char *text = malloc(SEGMENTS * 40 + 64);
    assert_non_null(text);
    int n = sprintf(text, "#EXTM3U\n#EXT-X-TARGETDURATION:5\n");
    for (int i = 0; i < SEGMENTS; i++)
        n += sprintf(text + n, "#EXTINF:4.%03d,\ns%d.ts\n", i, i);
    hls_playlist *whole = hls_test_parse(text);
    static const size_t cuts[] = {1, 32, 33, 63, 64, 65, 129, 255, 256, 257, SEGMENTS - 1};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        const char *rest = text;
        for (size_t k = 0; k < cuts[c]; k++)
            rest = strchr(strstr(rest, "#EXTINF"), '\n') + 1;
        rest = strchr(rest, '\n') + 1;
        char *tail = malloc(strlen(rest) + 64);
        assert_non_null(tail);
        sprintf(tail, "#EXTM3U\n#EXT-X-TARGETDURATION:5\n%s", rest);
        hls_playlist *pl = NULL;
        char err[256] = "", what[64];
        int rc = hls_playlist_parse_after(whole, cuts[c], (const uint8_t *)tail, strlen(tail),
                                          HLS_TEST_BASE, NULL, &pl, err, sizeof err);
        if (rc != KTH_OK)
            fail_msg("after %zu segments: %d: %s", cuts[c], rc, err);
        snprintf(what, sizeof what, "after %zu segments", cuts[c]);
        hls_test_same_media(&whole->media, &pl->media, what);
        hls_playlist_free(pl);
        free(tail);
    }
    /* The segments copied count towards max_segments. */
    hls_parse_limits two = {.max_segments = 2};
    hls_playlist *pl = NULL;
    char err[256] = "";
    const char *none = "#EXTM3U\n";
    assert_int_equal(hls_playlist_parse_after(whole, 3, (const uint8_t *)none, strlen(none),
                                              HLS_TEST_BASE, &two, &pl, err, sizeof err),
                     KTH_ERR_LIMIT);
    assert_non_null(strstr(err, "more than 2 segments"));
    hls_playlist_free(whole);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_media_playlist_alone_gives_timing_and_numbering),
        cmocka_unit_test(test_segment_starts_are_the_running_sum_of_durations),
        cmocka_unit_test(test_segments_alike_share_records_and_every_difference_survives),
        cmocka_unit_test(test_durations_past_65536_distinct_keep_their_values),
        cmocka_unit_test(test_segment_uris_resolve_in_every_reference_form),
        cmocka_unit_test(test_program_date_time_dates_its_segment_and_those_after_it),
        cmocka_unit_test(test_extinf_title_keeps_commas_and_duration_may_lack_a_comma),
        cmocka_unit_test(test_implied_byterange_offset_continues_the_same_uri),
        cmocka_unit_test(test_implied_byterange_offset_continues_after_the_init_range),
        cmocka_unit_test(test_byterange_errors_name_the_byterange_line),
        cmocka_unit_test(test_key_applies_to_following_segments_until_the_next_key),
        cmocka_unit_test(test_iv_is_explicit_or_the_big_endian_media_sequence_number),
        cmocka_unit_test(test_identity_key_is_preferred_among_key_formats_in_force),
        cmocka_unit_test(test_unknown_key_method_is_kept_as_other),
        cmocka_unit_test(test_key_errors_name_their_line),
        cmocka_unit_test(test_map_applies_to_following_segments_until_the_next_map),
        cmocka_unit_test(test_map_range_without_offset_starts_at_zero),
        cmocka_unit_test(test_map_takes_the_key_in_force_at_its_tag),
        cmocka_unit_test(test_encrypted_map_requires_an_iv),
        cmocka_unit_test(test_discontinuity_sequence_counts_discontinuity_tags),
        cmocka_unit_test(test_gap_marks_only_the_next_segment),
        cmocka_unit_test(test_playlist_wide_media_tags),
        cmocka_unit_test(test_media_errors_name_their_line),
        cmocka_unit_test(test_huge_durations_cannot_overflow_the_total),
        cmocka_unit_test(test_ranges_and_titles_that_start_late_in_a_long_playlist),
        cmocka_unit_test(test_numbered_segment_uris_are_kept_as_runs),
        cmocka_unit_test(test_uri_runs_keep_every_uri_exact),
        cmocka_unit_test(test_ranged_segments_keep_their_uris_as_strings),
        cmocka_unit_test(test_a_parse_after_a_prefix_equals_the_whole_parse),
        cmocka_unit_test(test_a_parse_after_many_distinct_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
