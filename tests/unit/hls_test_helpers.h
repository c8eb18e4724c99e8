/*
 * hls_test_helpers.h — parse-and-check helpers shared by the hls playlist tests. Include after
 * <cmocka.h>.
 */
#ifndef KTH_TEST_HLS_HELPERS_H
#define KTH_TEST_HLS_HELPERS_H

#include "hls/playlist.h"

#include <kithara/status.h>

#include <stdlib.h>
#include <string.h>

#define HLS_TEST_BASE "https://cdn.example.com/path/to/list.m3u8?token=1"

/* Parses `text` with default limits; fails the test (showing the parser's message) unless it
 * parses. The caller frees the result. */
static inline hls_playlist *hls_test_parse(const char *text)
{
    hls_playlist *pl = NULL;
    char err[256] = "";
    int rc = hls_playlist_parse((const uint8_t *)text, strlen(text), HLS_TEST_BASE, NULL, &pl, err,
                                sizeof(err));
    if (rc != KTH_OK || pl == NULL) {
        fail_msg("parse failed with %d: %s", rc, err);
    }
    return pl;
}

/* Checks that segment i of m has the URI `want`, both as made and as compared in place. */
static inline void hls_test_segment_uri(const hls_media_playlist *m, size_t i, const char *want)
{
    char *uri = hls_media_segment_uri(m, i);
    assert_non_null(uri);
    assert_string_equal(uri, want);
    free(uri);
    assert_true(hls_media_segment_uri_is(m, i, want));
}

/* Parses `text` (len bytes) expecting failure `status` with exactly `message`. */
static inline void hls_test_expect_error_n(const char *text, size_t len,
                                           const hls_parse_limits *limits, int status,
                                           const char *message)
{
    hls_playlist *pl = (hls_playlist *)1;
    char err[256] = "";
    int rc = hls_playlist_parse((const uint8_t *)text, len, HLS_TEST_BASE, limits, &pl, err,
                                sizeof(err));
    if (rc != status || strcmp(err, message) != 0) {
        fail_msg("expected %d '%s', got %d '%s'", status, message, rc, err);
    }
    assert_null(pl);
}

static inline void hls_test_expect_error(const char *text, int status, const char *message)
{
    hls_test_expect_error_n(text, strlen(text), NULL, status, message);
}

#endif /* KTH_TEST_HLS_HELPERS_H */
