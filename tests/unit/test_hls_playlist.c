/*
 * test_hls_playlist.c — what every playlist goes through before its kind matters: the #EXTM3U
 * header, HTML detection, BOM and CRLF, blank lines, comments and unknown tags, kind detection,
 * every limit, argument errors, and the error buffer contract.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hls_test_helpers.h"

#include <stdio.h>
#include <stdlib.h>

static void test_crlf_and_bom_are_tolerated(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("\xEF\xBB\xBF#EXTM3U\r\n"
                                      "#EXT-X-TARGETDURATION:5\r\n"
                                      "#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\r\n"
                                      "#EXTINF:5.0,title\r\n"
                                      "a.ts\r\n"
                                      "\r\n"
                                      "#EXTINF:5.0,\r\n"
                                      "b.ts\r\n"
                                      "#EXT-X-ENDLIST\r\n");
    assert_int_equal(pl->media.segment_count, 2);
    assert_int_equal(pl->media.target_duration, 5);
    assert_string_equal(hls_media_segment(&pl->media, 0).title, "title");
    hls_test_segment_uri(&pl->media, 0, "https://cdn.example.com/path/to/a.ts");
    hls_test_segment_uri(&pl->media, 1, "https://cdn.example.com/path/to/b.ts");
    assert_string_equal(pl->media.keys[0].uri, "https://cdn.example.com/path/to/k");
    assert_true(pl->media.endlist);
    hls_playlist_free(pl);

    pl = hls_test_parse("\xEF\xBB\xBF#EXTM3U\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\nx.m3u8");
    assert_int_equal(pl->kind, HLS_PLAYLIST_MASTER);
    assert_string_equal(pl->master.variants[0].uri, "https://cdn.example.com/path/to/x.m3u8");
    hls_playlist_free(pl);
}

static void test_unknown_tags_comments_and_blank_lines_are_ignored(void **state)
{
    (void)state;
    hls_playlist *pl = hls_test_parse("#EXTM3U\n"
                                      "# a comment, not a tag\n"
                                      "#EXT-X-FUTURE-TAG:FOO=BAR\n"
                                      "#EXT-X-START:TIME-OFFSET=10.0\n"
                                      "#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:00Z\n"
                                      "#EXT-X-ENDLISTS\n"
                                      "#EXTM3U\n"
                                      "\n"
                                      "   \t \n"
                                      "  #EXTINF:2,  spaced title \n"
                                      "   spaced-uri.ts  \n");
    assert_int_equal(pl->kind, HLS_PLAYLIST_MEDIA);
    assert_false(pl->media.endlist); /* tag names match exactly */
    assert_int_equal(pl->media.segment_count, 1);
    hls_test_segment_uri(&pl->media, 0, "https://cdn.example.com/path/to/spaced-uri.ts");
    assert_string_equal(hls_media_segment(&pl->media, 0).title, "spaced title");
    hls_playlist_free(pl);
}

static void test_first_line_must_be_extm3u(void **state)
{
    (void)state;
    hls_test_expect_error("#EXTINF:1,\na.ts\n", KTH_ERR_FORMAT,
                          "line 1: expected #EXTM3U, got '#EXTINF:1,'");
    hls_test_expect_error("\n#EXTM3U\n", KTH_ERR_FORMAT, "line 1: expected #EXTM3U, got ''");
    hls_test_expect_error("#EXTM3U8\n", KTH_ERR_FORMAT, "line 1: expected #EXTM3U, got '#EXTM3U8'");
    hls_test_expect_error("{\"error\":\"denied\"}", KTH_ERR_FORMAT,
                          "line 1: expected #EXTM3U, got '{\"error\":\"denied\"}'");
    hls_test_expect_error_n("\x01\x02\x7f", 3, NULL, KTH_ERR_FORMAT,
                            "line 1: expected #EXTM3U, got '\\x01\\x02\\x7f'");
}

static void test_html_body_is_reported_as_html(void **state)
{
    (void)state;
    hls_test_expect_error("<!DOCTYPE html>\n<html><head><title>404</title></head></html>\n",
                          KTH_ERR_FORMAT, "expected a playlist, got HTML");
    hls_test_expect_error("\r\n  <HTML>\n<BODY>Access denied</BODY></HTML>", KTH_ERR_FORMAT,
                          "expected a playlist, got HTML");
    hls_test_expect_error("<?xml version=\"1.0\"?>\n<html xmlns=\"x\"></html>", KTH_ERR_FORMAT,
                          "expected a playlist, got HTML");

    /* One minified line longer than the line limit is still recognised as HTML. */
    size_t n = 100 * 1024;
    char *page = malloc(n + 1);
    assert_non_null(page);
    memset(page, 'x', n);
    memcpy(page, "<html><body>", 12);
    page[n] = '\0';
    hls_test_expect_error(page, KTH_ERR_FORMAT, "expected a playlist, got HTML");
    free(page);
}

static void test_empty_body_is_not_a_playlist(void **state)
{
    (void)state;
    hls_test_expect_error("", KTH_ERR_FORMAT, "empty body, expected a playlist");
    hls_test_expect_error("\xEF\xBB\xBF", KTH_ERR_FORMAT, "empty body, expected a playlist");
    hls_playlist *pl = NULL;
    char err[128];
    assert_int_equal(hls_playlist_parse(NULL, 0, HLS_TEST_BASE, NULL, &pl, err, sizeof(err)),
                     KTH_ERR_FORMAT);
    assert_null(pl);
}

static void test_nul_byte_is_rejected_naming_its_line(void **state)
{
    (void)state;
    static const char text[] = "#EXTM3U\n#EXTINF:1,\na\0b.ts\n";
    hls_test_expect_error_n(text, sizeof(text) - 1, NULL, KTH_ERR_FORMAT,
                            "line 3: NUL byte in the playlist");
}

static void test_body_is_read_only_up_to_its_length(void **state)
{
    (void)state;
    static const char text[] = "#EXTM3U\n#EXTINF:1,\nab.ts\nGARBAGE-NOT-PART-OF-IT";
    hls_playlist *pl = NULL;
    char err[128];
    size_t len = strlen("#EXTM3U\n#EXTINF:1,\nab.ts");
    assert_int_equal(
        hls_playlist_parse((const uint8_t *)text, len, HLS_TEST_BASE, NULL, &pl, err, sizeof(err)),
        KTH_OK);
    hls_test_segment_uri(&pl->media, 0, "https://cdn.example.com/path/to/ab.ts");
    hls_playlist_free(pl);
}

static void test_kind_comes_from_content_and_mixing_kinds_fails(void **state)
{
    (void)state;
    hls_test_expect_error("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n#EXTINF:1,\nb.ts\n",
                          KTH_ERR_FORMAT,
                          "line 4: EXTINF belongs in a media playlist, but EXT-X-STREAM-INF on "
                          "line 2 made this a master playlist");
    hls_test_expect_error("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA:TYPE=AUDIO,"
                          "GROUP-ID=\"a\",NAME=\"b\"\n",
                          KTH_ERR_FORMAT,
                          "line 3: EXT-X-MEDIA belongs in a master playlist, but "
                          "EXT-X-TARGETDURATION on line 2 made this a media playlist");
    hls_test_expect_error("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n",
                          KTH_ERR_FORMAT,
                          "no EXTINF or EXT-X-STREAM-INF: neither a media nor a master playlist");
    hls_test_expect_error("#EXTM3U\nsomething.ts\n", KTH_ERR_FORMAT,
                          "line 2: URI 'something.ts' without a preceding EXTINF or "
                          "EXT-X-STREAM-INF");
    hls_test_expect_error("#EXTM3U\n#EXT-X-VERSION:three\n", KTH_ERR_FORMAT,
                          "line 2: EXT-X-VERSION 'three' is not a decimal integer");
}

static void test_variable_substitution_is_reported_unsupported(void **state)
{
    (void)state;
    hls_test_expect_error("#EXTM3U\n#EXT-X-DEFINE:NAME=\"host\",VALUE=\"x\"\n", KTH_ERR_UNSUPPORTED,
                          "line 2: EXT-X-DEFINE (variable substitution) is not supported");
}

static char *repeat(const char *head, const char *unit, size_t count)
{
    size_t n = strlen(head) + strlen(unit) * count + 1;
    char *s = malloc(n);
    assert_non_null(s);
    strcpy(s, head);
    char *p = s + strlen(head);
    for (size_t i = 0; i < count; i++) {
        memcpy(p, unit, strlen(unit));
        p += strlen(unit);
    }
    *p = '\0';
    return s;
}

static void test_each_limit_fails_with_a_limit_error_naming_the_line(void **state)
{
    (void)state;
    hls_parse_limits lim = {.max_playlist_bytes = 10};
    const char *media = "#EXTM3U\n#EXTINF:1,\na.ts\n#EXTINF:1,\nb.ts\n#EXTINF:1,\nc.ts\n";
    hls_test_expect_error_n(media, strlen(media), &lim, KTH_ERR_LIMIT,
                            "playlist is 56 bytes, over the limit of 10 bytes");

    lim = (hls_parse_limits){.max_line_bytes = 10};
    const char *long_line = "#EXTM3U\n#EXTINF:1,\nabcdefghijk.ts\n";
    hls_test_expect_error_n(long_line, strlen(long_line), &lim, KTH_ERR_LIMIT,
                            "line 3: line is longer than the limit of 10 bytes");

    lim = (hls_parse_limits){.max_segments = 2};
    hls_test_expect_error_n(media, strlen(media), &lim, KTH_ERR_LIMIT,
                            "line 7: more than 2 segments");

    lim = (hls_parse_limits){.max_variants = 1};
    const char *two_variants = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na\n"
                               "#EXT-X-STREAM-INF:BANDWIDTH=2\nb\n";
    hls_test_expect_error_n(two_variants, strlen(two_variants), &lim, KTH_ERR_LIMIT,
                            "line 4: more than 1 variant streams");

    lim = (hls_parse_limits){.max_renditions = 1};
    const char *two_renditions = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"1\"\n"
                                 "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"2\"\n";
    hls_test_expect_error_n(two_renditions, strlen(two_renditions), &lim, KTH_ERR_LIMIT,
                            "line 3: more than 1 EXT-X-MEDIA renditions");

    lim = (hls_parse_limits){.max_session_keys = 1};
    const char *two_keys = "#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"a\"\n"
                           "#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"b\"\n";
    hls_test_expect_error_n(two_keys, strlen(two_keys), &lim, KTH_ERR_LIMIT,
                            "line 3: more than 1 EXT-X-SESSION-KEY tags");

    char *formats = malloc(4096);
    assert_non_null(formats);
    strcpy(formats, "#EXTM3U\n");
    for (int i = 0; i < 17; i++) {
        char line[128];
        snprintf(line, sizeof(line), "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k\",KEYFORMAT=\"f%d\"\n",
                 i);
        strcat(formats, line);
    }
    hls_test_expect_error(formats, KTH_ERR_LIMIT,
                          "line 18: more than 16 KEYFORMATs in force at once");
    free(formats);
}

static void test_a_playlist_exactly_at_a_limit_parses(void **state)
{
    (void)state;
    hls_parse_limits lim = {.max_segments = 3, .max_line_bytes = 10, .max_playlist_bytes = 56};
    const char *media = "#EXTM3U\n#EXTINF:1,\na.ts\n#EXTINF:1,\nb.ts\n#EXTINF:1,\nc.ts\n";
    hls_playlist *pl = NULL;
    char err[128] = "";
    assert_int_equal(hls_playlist_parse((const uint8_t *)media, strlen(media), HLS_TEST_BASE, &lim,
                                        &pl, err, sizeof(err)),
                     KTH_OK);
    assert_int_equal(pl->media.segment_count, 3);
    hls_playlist_free(pl);
}

static void test_zero_limit_fields_take_the_defaults(void **state)
{
    (void)state;
    char *master = repeat("#EXTM3U\n", "#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n",
                          HLS_DEFAULT_MAX_VARIANTS + 1);
    hls_parse_limits zero = {0};
    char expected[64];
    snprintf(expected, sizeof(expected), "line %zu: more than %zu variant streams",
             (size_t)HLS_DEFAULT_MAX_VARIANTS * 2 + 2, (size_t)HLS_DEFAULT_MAX_VARIANTS);
    hls_test_expect_error_n(master, strlen(master), &zero, KTH_ERR_LIMIT, expected);
    hls_test_expect_error_n(master, strlen(master), NULL, KTH_ERR_LIMIT, expected);
    free(master);
}

static void test_default_segment_limit_admits_a_long_vod(void **state)
{
    (void)state;
    char *media = repeat("#EXTM3U\n#EXT-X-TARGETDURATION:2\n", "#EXTINF:2,\ns.ts\n",
                         HLS_DEFAULT_MAX_SEGMENTS);
    hls_playlist *pl = hls_test_parse(media);
    assert_int_equal(pl->media.segment_count, HLS_DEFAULT_MAX_SEGMENTS);
    assert_true(pl->media.total_duration == 2.0 * HLS_DEFAULT_MAX_SEGMENTS);
    hls_playlist_free(pl);
    free(media);
}

static void test_error_buffer_is_truncated_and_optional(void **state)
{
    (void)state;
    const char *bad = "#EXTM3U\n#EXTINF:abc,\nx\n";
    hls_playlist *pl = NULL;
    char err[10];
    memset(err, 'Z', sizeof(err));
    assert_int_equal(hls_playlist_parse((const uint8_t *)bad, strlen(bad), HLS_TEST_BASE, NULL, &pl,
                                        err, sizeof(err)),
                     KTH_ERR_FORMAT);
    assert_string_equal(err, "line 2: E");
    assert_int_equal(
        hls_playlist_parse((const uint8_t *)bad, strlen(bad), HLS_TEST_BASE, NULL, &pl, NULL, 0),
        KTH_ERR_FORMAT);
    char one = 'Z';
    assert_int_equal(
        hls_playlist_parse((const uint8_t *)bad, strlen(bad), HLS_TEST_BASE, NULL, &pl, &one, 1),
        KTH_ERR_FORMAT);
    assert_int_equal(one, '\0');
    assert_null(pl);
}

static void test_invalid_arguments_are_rejected(void **state)
{
    (void)state;
    const char *ok = "#EXTM3U\n#EXTINF:1,\na.ts\n";
    hls_playlist *pl = (hls_playlist *)1;
    char err[128];
    assert_int_equal(hls_playlist_parse((const uint8_t *)ok, strlen(ok), HLS_TEST_BASE, NULL, NULL,
                                        err, sizeof(err)),
                     KTH_ERR_INVALID_ARG);
    assert_int_equal(
        hls_playlist_parse((const uint8_t *)ok, strlen(ok), NULL, NULL, &pl, err, sizeof(err)),
        KTH_ERR_INVALID_ARG);
    assert_null(pl);
    assert_int_equal(hls_playlist_parse((const uint8_t *)ok, strlen(ok), "relative/list.m3u8", NULL,
                                        &pl, err, sizeof(err)),
                     KTH_ERR_INVALID_ARG);
    assert_string_equal(err, "the base URL is not an absolute URL");
    assert_int_equal(hls_playlist_parse(NULL, 5, HLS_TEST_BASE, NULL, &pl, err, sizeof(err)),
                     KTH_ERR_INVALID_ARG);
    hls_playlist_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crlf_and_bom_are_tolerated),
        cmocka_unit_test(test_unknown_tags_comments_and_blank_lines_are_ignored),
        cmocka_unit_test(test_first_line_must_be_extm3u),
        cmocka_unit_test(test_html_body_is_reported_as_html),
        cmocka_unit_test(test_empty_body_is_not_a_playlist),
        cmocka_unit_test(test_nul_byte_is_rejected_naming_its_line),
        cmocka_unit_test(test_body_is_read_only_up_to_its_length),
        cmocka_unit_test(test_kind_comes_from_content_and_mixing_kinds_fails),
        cmocka_unit_test(test_variable_substitution_is_reported_unsupported),
        cmocka_unit_test(test_each_limit_fails_with_a_limit_error_naming_the_line),
        cmocka_unit_test(test_a_playlist_exactly_at_a_limit_parses),
        cmocka_unit_test(test_zero_limit_fields_take_the_defaults),
        cmocka_unit_test(test_default_segment_limit_admits_a_long_vod),
        cmocka_unit_test(test_error_buffer_is_truncated_and_optional),
        cmocka_unit_test(test_invalid_arguments_are_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
