/*
 * test_platform_text.c — heap-formatted strings (never cut, whatever their length) and the
 * excerpts that messages show of long strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_printf_new_formats_whole_strings_of_any_length),
        cmocka_unit_test(test_printf_new_gives_an_empty_string_for_an_empty_format),
        cmocka_unit_test(test_vprintf_new_formats_from_a_va_list),
        cmocka_unit_test(test_excerpt_keeps_a_string_that_fits),
        cmocka_unit_test(test_excerpt_shows_head_and_tail_of_a_long_string),
        cmocka_unit_test(test_excerpt_handles_tiny_buffers_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
