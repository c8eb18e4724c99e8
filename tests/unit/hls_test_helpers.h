/*
 * hls_test_helpers.h — parse-and-check helpers shared by the hls playlist tests. Include after
 * <cmocka.h>.
 */
#ifndef KTH_TEST_HLS_HELPERS_H
#define KTH_TEST_HLS_HELPERS_H

#include "hls/playlist.h"

#include <kithara/status.h>

#include <stdbool.h>
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

static inline bool hls_test_same_string(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Fails the test, naming `what` and the first difference, unless media playlists a and b say
 * the same: every segment (as hls_media_segment and hls_media_segment_uri give it), every key
 * and init section (but the lines they came from), and the same number of entries in each of
 * the compact tables (and a table of byte ranges in both or neither). */
static inline void hls_test_same_media(const hls_media_playlist *a, const hls_media_playlist *b,
                                       const char *what)
{
    if (a->segment_count != b->segment_count || a->media_sequence != b->media_sequence ||
        a->discontinuity_sequence != b->discontinuity_sequence ||
        a->target_duration != b->target_duration || a->endlist != b->endlist ||
        memcmp(&a->total_duration, &b->total_duration, sizeof(double)) != 0) {
        fail_msg("%s: the playlists differ (%zu and %zu segments)", what, a->segment_count,
                 b->segment_count);
    }
    if (a->run_count_ != b->run_count_ || a->uri_count_ != b->uri_count_ ||
        a->uri_run_count_ != b->uri_run_count_ || a->title_count_ != b->title_count_ ||
        a->date_count_ != b->date_count_ || a->duration_count_ != b->duration_count_ ||
        a->key_count != b->key_count || a->map_count != b->map_count ||
        (a->ranges_ == NULL) != (b->ranges_ == NULL) ||
        (a->ranges_ != NULL && a->ranges_first_ != b->ranges_first_)) {
        fail_msg("%s: the tables differ in size (runs %zu/%zu, URIs %zu/%zu, URI runs %zu/%zu, "
                 "titles %zu/%zu, dates %zu/%zu, durations %zu/%zu, keys %zu/%zu, maps %zu/%zu, "
                 "byte ranges %s/%s)",
                 what, a->run_count_, b->run_count_, a->uri_count_, b->uri_count_,
                 a->uri_run_count_, b->uri_run_count_, a->title_count_, b->title_count_,
                 a->date_count_, b->date_count_, a->duration_count_, b->duration_count_,
                 a->key_count, b->key_count, a->map_count, b->map_count,
                 a->ranges_ ? "kept" : "none", b->ranges_ ? "kept" : "none");
    }
    for (size_t i = 0; i < a->key_count; i++) {
        const hls_key *x = &a->keys[i], *y = &b->keys[i];
        if (x->method != y->method || x->has_iv != y->has_iv ||
            memcmp(x->iv, y->iv, sizeof x->iv) != 0 || strcmp(x->method_name, y->method_name) ||
            strcmp(x->uri, y->uri) || strcmp(x->keyformat, y->keyformat) ||
            strcmp(x->keyformat_versions, y->keyformat_versions)) {
            fail_msg("%s: key %zu differs", what, i);
        }
    }
    for (size_t i = 0; i < a->map_count; i++) {
        const hls_map *x = &a->maps[i], *y = &b->maps[i];
        if (strcmp(x->uri, y->uri) || x->key != y->key || x->range.present != y->range.present ||
            x->range.offset != y->range.offset || x->range.length != y->range.length) {
            fail_msg("%s: init section %zu differs", what, i);
        }
    }
    for (size_t i = 0; i < a->segment_count; i++) {
        hls_segment x = hls_media_segment(a, i), y = hls_media_segment(b, i);
        char *ux = hls_media_segment_uri(a, i), *uy = hls_media_segment_uri(b, i);
        bool same = hls_test_same_string(ux, uy) && hls_test_same_string(x.title, y.title) &&
                    memcmp(&x.duration, &y.duration, sizeof(double)) == 0 &&
                    memcmp(&x.start, &y.start, sizeof(double)) == 0 && x.sequence == y.sequence &&
                    x.discontinuity_sequence == y.discontinuity_sequence &&
                    x.discontinuity == y.discontinuity && x.gap == y.gap &&
                    x.range.present == y.range.present && x.range.offset == y.range.offset &&
                    x.range.length == y.range.length && x.key == y.key && x.map == y.map &&
                    x.program_time_ms == y.program_time_ms && x.date_tag == y.date_tag;
        if (!same) {
            fail_msg("%s: segment %zu differs (%s and %s)", what, i, ux ? ux : "-", uy ? uy : "-");
        }
        free(ux);
        free(uy);
    }
}

#endif /* KTH_TEST_HLS_HELPERS_H */
