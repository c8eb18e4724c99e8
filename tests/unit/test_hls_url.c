/*
 * test_hls_url.c — RFC 3986 reference resolution (hls/url.h): the normal and abnormal examples
 * of RFC 3986 §5.4, the reference forms HLS playlists use, percent-encoding of bytes a URI may
 * not hold, and argument errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hls/url.h"

#include <kithara/status.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct resolution_case {
    const char *ref;
    const char *expected;
} resolution_case;

static void check_cases(const char *base, const resolution_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        char *out = NULL;
        int rc = hls_url_resolve(base, cases[i].ref, strlen(cases[i].ref), &out);
        if (rc != KTH_OK || out == NULL || strcmp(out, cases[i].expected) != 0) {
            fail_msg("resolving '%s' against '%s': got '%s' (rc %d), expected '%s'", cases[i].ref,
                     base, out != NULL ? out : "(null)", rc, cases[i].expected);
        }
        free(out);
    }
}

static void test_rfc3986_normal_examples_resolve_as_specified(void **state)
{
    (void)state;
    static const resolution_case cases[] = {
        {"g:h", "g:h"},
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q#s"},
        {"g#s", "http://a/b/c/g#s"},
        {"g?y#s", "http://a/b/c/g?y#s"},
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"g;x?y#s", "http://a/b/c/g;x?y#s"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
    };
    check_cases("http://a/b/c/d;p?q", cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_rfc3986_abnormal_examples_resolve_as_specified(void **state)
{
    (void)state;
    static const resolution_case cases[] = {
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g?y/../x", "http://a/b/c/g?y/../x"},
        {"g#s/./x", "http://a/b/c/g#s/./x"},
        {"g#s/../x", "http://a/b/c/g#s/../x"},
        {"http:g", "http:g"},
    };
    check_cases("http://a/b/c/d;p?q", cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_playlist_style_references_resolve_against_final_url(void **state)
{
    (void)state;
    static const resolution_case cases[] = {
        {"seg-1.ts", "https://cdn.example.com/live/hi/seg-1.ts"},
        {"../lo/index.m3u8", "https://cdn.example.com/live/lo/index.m3u8"},
        {"./keys/k1?token=abc", "https://cdn.example.com/live/hi/keys/k1?token=abc"},
        {"/other/x.aac", "https://cdn.example.com/other/x.aac"},
        {"//mirror.example.net/y.ts", "https://mirror.example.net/y.ts"},
        {"http://plain.example.org/z.ts", "http://plain.example.org/z.ts"},
        {"HTTPS://Upper.Example/A.ts", "HTTPS://Upper.Example/A.ts"},
        {"skd://asset-id", "skd://asset-id"},
        {"data:text/plain;base64,AAAA", "data:text/plain;base64,AAAA"},
    };
    check_cases("https://cdn.example.com/live/hi/index.m3u8?session=9#frag", cases,
                sizeof(cases) / sizeof(cases[0]));
}

/* Paths are merged in stack buffers up to about 1 KiB and on the heap beyond: references on
 * both sides of that size resolve alike, dot segments removed and nothing cut. */
static void test_references_past_the_stack_buffers_resolve_whole(void **state)
{
    (void)state;
    for (size_t len = 900; len <= 1200; len += 50) {
        char *name = malloc(len + 1), *ref = malloc(len + 32), *want = malloc(len + 64);
        assert_non_null(name);
        assert_non_null(ref);
        assert_non_null(want);
        memset(name, 'y', len);
        name[len] = '\0';
        snprintf(ref, len + 32, "../x/%s/./z.ts?t=1", name);
        snprintf(want, len + 64, "http://h.example/a/x/%s/z.ts?t=1", name);
        char *out = NULL;
        assert_int_equal(hls_url_resolve("http://h.example/a/b/list.m3u8", ref, strlen(ref), &out),
                         KTH_OK);
        assert_string_equal(out, want);
        free(out);
        free(name);
        free(ref);
        free(want);
    }
}

static void test_base_without_path_gets_a_root_slash(void **state)
{
    (void)state;
    static const resolution_case cases[] = {
        {"g", "http://a/g"},
        {"?q", "http://a?q"},
        {"../g", "http://a/g"},
    };
    check_cases("http://a", cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_bytes_invalid_in_uris_are_percent_encoded(void **state)
{
    (void)state;
    static const resolution_case cases[] = {
        {"my seg.ts", "http://h/p/my%20seg.ts"},
        {"100%.ts", "http://h/p/100%25.ts"},
        {"ok%20done.ts", "http://h/p/ok%20done.ts"},
        {"trail%2", "http://h/p/trail%252"},
        {"caf\xc3\xa9.ts", "http://h/p/caf%C3%A9.ts"},
        {"a\"b<c>{d}|e^f`g\\h.ts", "http://h/p/a%22b%3Cc%3E%7Bd%7D%7Ce%5Ef%60g%5Ch.ts"},
    };
    check_cases("http://h/p/list.m3u8", cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_reference_length_bounds_the_reference(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(hls_url_resolve("http://h/p/list", "seg.tsGARBAGE", 6, &out), KTH_OK);
    assert_string_equal(out, "http://h/p/seg.ts");
    free(out);
}

static void test_relative_or_missing_base_is_an_invalid_argument(void **state)
{
    (void)state;
    char *out = (char *)"untouched";
    assert_int_equal(hls_url_resolve("/relative/base", "g", 1, &out), KTH_ERR_INVALID_ARG);
    assert_null(out);
    out = (char *)"untouched";
    assert_int_equal(hls_url_resolve("1http://a/", "g", 1, &out), KTH_ERR_INVALID_ARG);
    assert_null(out);
    assert_int_equal(hls_url_resolve(NULL, "g", 1, &out), KTH_ERR_INVALID_ARG);
    assert_int_equal(hls_url_resolve("http://a/", "g", 1, NULL), KTH_ERR_INVALID_ARG);
    assert_int_equal(hls_url_resolve("http://a/", NULL, 3, &out), KTH_ERR_INVALID_ARG);
}

static void test_absolute_uri_detection_requires_a_valid_scheme(void **state)
{
    (void)state;
    assert_true(hls_url_is_absolute("http://a", 8));
    assert_true(hls_url_is_absolute("a+b-c.d:x", 9));
    assert_false(hls_url_is_absolute("1a:x", 4));
    assert_false(hls_url_is_absolute(":x", 2));
    assert_false(hls_url_is_absolute("a b:x", 5));
    assert_false(hls_url_is_absolute("seg.ts", 6));
    assert_false(hls_url_is_absolute(NULL, 0));
}

/* An absolute reference resolves to itself when it has nothing to remove or escape (the short
 * way a merged live playlist takes), and is still normalised when it has: dot segments, bytes
 * to escape, lone or valid percent signs. */
static void test_absolute_references_resolve_to_themselves_or_normalised(void **state)
{
    (void)state;
    static const resolution_case cases[] = {
        {"http://cdn.example/live/seg_00041.ts?token=a.b",
         "http://cdn.example/live/seg_00041.ts?token=a.b"},
        {"https://h:8443/a/b.c/d#frag", "https://h:8443/a/b.c/d#frag"},
        {"http://h/a/./b/../c.ts", "http://h/a/c.ts"},
        {"http://h/.hidden/x.ts", "http://h/.hidden/x.ts"},
        {"http://h/a b.ts", "http://h/a%20b.ts"},
        {"http://h/a%20b.ts", "http://h/a%20b.ts"},
        {"http://h/100%.ts", "http://h/100%25.ts"},
        {"http://h/q?x=/./y", "http://h/q?x=/./y"},
        {"file:///tmp/a.ts", "file:///tmp/a.ts"},
    };
    check_cases("http://other.example/base/index.m3u8", cases, sizeof cases / sizeof cases[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3986_normal_examples_resolve_as_specified),
        cmocka_unit_test(test_rfc3986_abnormal_examples_resolve_as_specified),
        cmocka_unit_test(test_playlist_style_references_resolve_against_final_url),
        cmocka_unit_test(test_references_past_the_stack_buffers_resolve_whole),
        cmocka_unit_test(test_base_without_path_gets_a_root_slash),
        cmocka_unit_test(test_bytes_invalid_in_uris_are_percent_encoded),
        cmocka_unit_test(test_reference_length_bounds_the_reference),
        cmocka_unit_test(test_relative_or_missing_base_is_an_invalid_argument),
        cmocka_unit_test(test_absolute_uri_detection_requires_a_valid_scheme),
        cmocka_unit_test(test_absolute_references_resolve_to_themselves_or_normalised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
