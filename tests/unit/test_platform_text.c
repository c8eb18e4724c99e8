/*
 * test_platform_text.c — heap-formatted strings (never cut, whatever their length) and the
 * excerpts that messages show of long strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/text.h"

static void test_printf_new_formats_whole_strings_of_any_length(void **state)
{
    (void)state;
    char *s = platform_printf_new("%s#bytes=%d-%d", "http://h/a", 0, 99);
    assert_string_equal(s, "http://h/a#bytes=0-99");
    free(s);
    for (size_t len = 0; len <= 70000; len = len ? len * 4 : 1) {
        char *long_text = malloc(len + 1);
        assert_non_null(long_text);
        memset(long_text, 'u', len);
        long_text[len] = '\0';
        if (len)
            long_text[len - 1] = 'z';
        s = platform_printf_new("key:%s!", long_text);
        assert_non_null(s);
        assert_int_equal(strlen(s), len + 5);
        assert_memory_equal(s + 4, long_text, len);
        assert_string_equal(s + 4 + len, "!");
        free(s);
        free(long_text);
    }
}

static void test_printf_new_gives_an_empty_string_for_an_empty_format(void **state)
{
    (void)state;
    char *s = platform_printf_new("%s", "");
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

static char *via_va_list(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *via_va_list(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = platform_vprintf_new(fmt, ap);
    va_end(ap);
    return s;
}

static void test_vprintf_new_formats_from_a_va_list(void **state)
{
    (void)state;
    char *s = via_va_list("%s/%zu/%llu", "segment", (size_t)7, 12345678901234ull);
    assert_string_equal(s, "segment/7/12345678901234");
    free(s);
}

static void test_excerpt_keeps_a_string_that_fits(void **state)
{
    (void)state;
    char buf[16];
    assert_ptr_equal(platform_excerpt("short", buf, sizeof buf), buf);
    assert_string_equal(buf, "short");
    platform_excerpt("exactly15chars!", buf, sizeof buf);
    assert_string_equal(buf, "exactly15chars!");
}

static void test_excerpt_shows_head_and_tail_of_a_long_string(void **state)
{
    (void)state;
    char buf[16];
    platform_excerpt("http://host/0123456789abcdefghij-end", buf, sizeof buf);
    assert_int_equal(strlen(buf), 15);
    assert_string_equal(buf, "http://h...-end");
    char url[3001];
    memset(url, 'x', 3000);
    memcpy(url, "https://cdn/", 12);
    url[2999] = '7';
    url[3000] = '\0';
    char msg[200];
    platform_excerpt(url, msg, sizeof msg);
    assert_int_equal(strlen(msg), 199);
    assert_memory_equal(msg, "https://cdn/", 12);
    assert_non_null(strstr(msg, "..."));
    assert_int_equal(msg[198], '7');
}

static void test_excerpt_handles_tiny_buffers_and_null(void **state)
{
    (void)state;
    char buf[4] = "abc";
    platform_excerpt("whatever", buf, 0);
    assert_string_equal(buf, "abc"); /* nothing written */
    platform_excerpt("whatever", buf, 1);
    assert_string_equal(buf, "");
    platform_excerpt("whatever", buf, 4);
    assert_string_equal(buf, "wha");
    char b8[8];
    platform_excerpt(NULL, b8, sizeof b8);
    assert_string_equal(b8, "(null)");
}

/* A formatted message too long for its buffer keeps its cause (its end), and one that fits is
 * written as snprintf would. */
static void test_excerptf_keeps_the_end_of_a_message_that_does_not_fit(void **state)
{
    (void)state;
    char buf[64];
    platform_excerptf(buf, sizeof buf, "%s: HTTP status %d", "http://h/a.mp3", 404);
    assert_string_equal(buf, "http://h/a.mp3: HTTP status 404");
    char url[5001];
    memset(url, 'u', 5000);
    memcpy(url, "https://cdn/", 12);
    url[5000] = '\0';
    platform_excerptf(buf, sizeof buf, "%s: HTTP status %d", url, 404);
    assert_int_equal(strlen(buf), 63);
    assert_memory_equal(buf, "https://cdn/", 12);
    assert_non_null(strstr(buf, "..."));
    assert_non_null(strstr(buf, "status 404"));
    char tiny[4] = "abc";
    platform_excerptf(tiny, 0, "%s", url);
    assert_string_equal(tiny, "abc"); /* nothing written */
    platform_excerptf(tiny, sizeof tiny, "%d", 12345);
    assert_string_equal(tiny, "123");
}

static void test_message_after_skips_a_leading_name_once(void **state)
{
    (void)state;
    assert_string_equal(platform_message_after("http://h/a: HTTP status 404", "http://h/a"),
                        "HTTP status 404");
    assert_string_equal(platform_message_after("http://h/b: HTTP status 404", "http://h/a"),
                        "http://h/b: HTTP status 404");
    assert_string_equal(platform_message_after("http://h/a", "http://h/a"), "http://h/a");
    char url[3001];
    memset(url, 'x', 3000);
    url[3000] = '\0';
    char msg[400];
    snprintf(msg, sizeof msg, "%s: cancelled", PLATFORM_SHOWN(url));
    assert_string_equal(platform_message_after(msg, url), "cancelled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_printf_new_formats_whole_strings_of_any_length),
        cmocka_unit_test(test_printf_new_gives_an_empty_string_for_an_empty_format),
        cmocka_unit_test(test_vprintf_new_formats_from_a_va_list),
        cmocka_unit_test(test_excerpt_keeps_a_string_that_fits),
        cmocka_unit_test(test_excerpt_shows_head_and_tail_of_a_long_string),
        cmocka_unit_test(test_excerpt_handles_tiny_buffers_and_null),
        cmocka_unit_test(test_excerptf_keeps_the_end_of_a_message_that_does_not_fit),
        cmocka_unit_test(test_message_after_skips_a_leading_name_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
