/*
 * test_options.c — the public options structs: zero is the default in every field, and a
 * struct is read at the size its caller's header gave it (older: missing fields default;
 * newer: unknown fields must be zero), so the structs can grow without breaking programs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <kithara/kithara.h>

#include "platform/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

typedef struct v2_opts {
    size_t size;
    int a;
    int b; /* the one field of "version 1" after a */
    int c; /* added later */
} v2_opts;

#define V1_END PLATFORM_OPTIONS_END(v2_opts, b)

static void test_copy_reads_each_size_as_its_caller_wrote_it(void **state)
{
    (void)state;
    v2_opts got;
    memset(&got, 0x5a, sizeof got);
    assert_int_equal(platform_options_copy(&got, sizeof got, NULL, V1_END), KTH_OK);
    assert_true(got.size == sizeof got && got.a == 0 && got.b == 0 && got.c == 0);

    /* size 0 reads the first release's fields, and nothing after them. */
    v2_opts in = {.size = 0, .a = 1, .b = 2, .c = 3};
    assert_int_equal(platform_options_copy(&got, sizeof got, &in, V1_END), KTH_OK);
    assert_true(got.size == sizeof got && got.a == 1 && got.b == 2 && got.c == 0);

    /* An older caller's struct ends before c: c is its default whatever lies beyond. */
    in.size = V1_END;
    assert_int_equal(platform_options_copy(&got, sizeof got, &in, V1_END), KTH_OK);
    assert_true(got.a == 1 && got.b == 2 && got.c == 0);

    in.size = sizeof in;
    assert_int_equal(platform_options_copy(&got, sizeof got, &in, V1_END), KTH_OK);
    assert_true(got.a == 1 && got.b == 2 && got.c == 3);

    /* A newer caller's struct: fields this build lacks must be zero. */
    struct {
        v2_opts known;
        int d;
    } newer = {{.size = sizeof newer, .a = 4}, 0};
    assert_int_equal(platform_options_copy(&got, sizeof got, &newer, V1_END), KTH_OK);
    assert_true(got.size == sizeof got && got.a == 4);
    newer.d = 1;
    assert_int_equal(platform_options_copy(&got, sizeof got, &newer, V1_END), KTH_ERR_UNSUPPORTED);
    assert_int_equal(got.a, 0);

    in.size = 3;
    assert_int_equal(platform_options_copy(&got, sizeof got, &in, V1_END), KTH_ERR_INVALID_ARG);
}

static void test_zeroed_options_are_the_defaults(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    kth_cache_options co = {0};
    co.dir = dir;
    kth_cache *c = NULL;
    char err[512] = "";
    assert_int_equal(kth_cache_open(&co, &c, err, sizeof err), KTH_OK);
    kth_cache_stats cs;
    assert_int_equal(kth_cache_get_stats(c, &cs), KTH_OK);
    assert_true(cs.budget_bytes == KTH_CACHE_DEFAULT_BUDGET);
    kth_cache_unref(c);
    co.max_bytes = KTH_CACHE_UNBOUNDED;
    assert_int_equal(kth_cache_open(&co, &c, err, sizeof err), KTH_OK);
    assert_int_equal(kth_cache_get_stats(c, &cs), KTH_OK);
    assert_true(cs.budget_bytes == KTH_CACHE_UNBOUNDED);
    kth_cache_unref(c);

    kth_downloader_options dop = {0};
    kth_downloader *d = NULL;
    assert_int_equal(kth_downloader_new(&dop, &d, err, sizeof err), KTH_OK);
    kth_downloader_unref(d);

    /* A zeroed stream options struct opens and reads. */
    char *path = test_write_pattern_file(dir, "f.bin", 7, 4096);
    kth_stream_options so = {0};
    kth_stream *s = NULL;
    assert_int_equal(kth_stream_open(path, &so, &s, err, sizeof err), KTH_OK);
    uint8_t buf[64];
    assert_int_equal(kth_stream_read(s, buf, sizeof buf), (int64_t)sizeof buf);
    kth_stream_close(s);
    free(path);
    test_remove_dir(dir);
}

static void test_an_older_struct_is_read_at_its_own_size(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    char *path = test_write_pattern_file(dir, "f.bin", 9, 4096);
    /* A caller whose header ended before `hls`: whatever follows its struct is not read. */
    kth_stream_options so;
    memset(&so, 0xff, sizeof so);
    so.size = offsetof(kth_stream_options, hls);
    so.read_timeout_ms = 1000;
    so.bus = NULL;
    so.downloader = NULL;
    so.cache = NULL;
    so.readahead_bytes = 0;
    kth_stream *s = NULL;
    char err[512] = "";
    assert_int_equal(kth_stream_open(path, &so, &s, err, sizeof err), KTH_OK);
    kth_stream_close(s);

    kth_downloader_options dop;
    memset(&dop, 0xff, sizeof dop);
    memset(&dop, 0, offsetof(kth_downloader_options, bus));
    dop.size = offsetof(kth_downloader_options, bus);
    kth_downloader *d = NULL;
    assert_int_equal(kth_downloader_new(&dop, &d, err, sizeof err), KTH_OK);
    kth_downloader_unref(d);
    free(path);
    test_remove_dir(dir);
}

static void test_a_newer_struct_with_unknown_fields_set_is_refused(void **state)
{
    (void)state;
    char err[512] = "";
    struct {
        kth_cache_options o;
        uint64_t later;
    } cache = {.o = {.size = sizeof cache, .memory_only = true}, .later = 1};
    kth_cache *c = NULL;
    assert_int_equal(kth_cache_open(&cache.o, &c, err, sizeof err), KTH_ERR_UNSUPPORTED);
    assert_null(c);
    assert_non_null(strstr(err, "does not know"));
    cache.later = 0;
    assert_int_equal(kth_cache_open(&cache.o, &c, err, sizeof err), KTH_OK);
    kth_cache_unref(c);

    struct {
        kth_downloader_options o;
        uint64_t later;
    } dl = {.o = {.size = sizeof dl}, .later = 2};
    kth_downloader *d = NULL;
    assert_int_equal(kth_downloader_new(&dl.o, &d, err, sizeof err), KTH_ERR_UNSUPPORTED);
    assert_null(d);

    /* The HLS options a stream's options point to are checked too, before anything opens. */
    struct {
        kth_hls_options o;
        uint64_t later;
    } hls = {.o = {.size = sizeof hls}, .later = 3};
    kth_stream_options so = {.hls = &hls.o};
    kth_stream *s = NULL;
    assert_int_equal(
        kth_stream_open(KTH_SOURCE_DIR "/tests/fixtures/sample.mp3", &so, &s, err, sizeof err),
        KTH_ERR_UNSUPPORTED);
    assert_null(s);
    assert_non_null(strstr(err, "kth_hls_options"));
    kth_stream_options small = {.size = 2};
    assert_int_equal(
        kth_stream_open(KTH_SOURCE_DIR "/tests/fixtures/sample.mp3", &small, &s, err, sizeof err),
        KTH_ERR_INVALID_ARG);
    assert_int_equal(kth_hls_prefetch("http://127.0.0.1:9/a.m3u8", &so, KTH_HLS_ALL_VARIANTS, NULL,
                                      NULL, err, sizeof err),
                     KTH_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_reads_each_size_as_its_caller_wrote_it),
        cmocka_unit_test(test_zeroed_options_are_the_defaults),
        cmocka_unit_test(test_an_older_struct_is_read_at_its_own_size),
        cmocka_unit_test(test_a_newer_struct_with_unknown_fields_set_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
