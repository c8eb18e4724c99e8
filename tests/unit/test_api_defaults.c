/*
 * test_api_defaults.c — kth_stream_open with the process defaults: when the default cache
 * cannot be opened, the caller gets the real cause (its status and sentence), not a generic
 * I/O or memory failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <kithara/kithara.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

static void test_a_default_cache_another_handle_holds_is_shared(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    assert_int_equal(setenv("XDG_CACHE_HOME", dir, 1), 0);
    char held_dir[600];
    snprintf(held_dir, sizeof held_dir, "%s/kithara", dir);
    /* Another open cache uses the default directory: that is no reason to fail. */
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = held_dir;
    kth_cache *held = NULL;
    char err[512];
    assert_int_equal(kth_cache_open(&co, &held, err, sizeof err), KTH_OK);

    kth_stream *s = NULL;
    err[0] = '\0';
    kth_status st = kth_stream_open("http://127.0.0.1:9/track.mp3", NULL, &s, err, sizeof err);
    assert_int_not_equal(st, KTH_ERR_BUSY);
    assert_null(strstr(err, "in use"));
    kth_stream_close(s);

    kth_cache_unref(held);
    kth_shutdown();
    unsetenv("XDG_CACHE_HOME");
    test_remove_dir(dir);
}

static void test_a_default_cache_that_cannot_be_created_says_why(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    assert_int_equal(setenv("XDG_CACHE_HOME", dir, 1), 0);
    /* A file where the cache directory should be. */
    char blocked[600];
    snprintf(blocked, sizeof blocked, "%s/kithara", dir);
    FILE *fp = fopen(blocked, "w");
    assert_non_null(fp);
    fclose(fp);

    kth_stream *s = NULL;
    char err[512] = "";
    kth_status st = kth_stream_open("http://127.0.0.1:9/track.mp3", NULL, &s, err, sizeof err);
    assert_int_equal(st, KTH_ERR_IO);
    assert_null(s);
    assert_non_null(strstr(err, "cannot create cache directory"));
    assert_non_null(strstr(err, blocked));

    kth_shutdown();
    unsetenv("XDG_CACHE_HOME");
    test_remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_default_cache_another_handle_holds_is_shared),
        cmocka_unit_test(test_a_default_cache_that_cannot_be_created_says_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
