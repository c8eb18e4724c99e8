/*
 * test_hls_attr.c — the attribute-list lexer and the RFC 8216 value types (hls/attr.h):
 * quoted strings with commas, enumerated strings, malformed lists, and each converter's
 * accepted and rejected inputs, including overflow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hls/attr.h"

#include <string.h>

static void expect_attr(hls_attr_reader *r, const char *name, const char *value, bool quoted)
{
    hls_attr a;
    char why[128];
    assert_int_equal(hls_attr_next(r, &a, why, sizeof(why)), 1);
    assert_true(hls_attr_is(&a, name));
    assert_int_equal(a.value_len, strlen(value));
    assert_memory_equal(a.value, value, a.value_len);
    assert_int_equal(a.quoted, quoted);
}

static void test_lexer_splits_quoted_strings_containing_commas(void **state)
{
    (void)state;
    const char *s = "CODECS=\"avc1.4d401e,mp4a.40.2\",BANDWIDTH=800000,NAME=\"a, b\",TYPE=AUDIO";
    hls_attr_reader r;
    hls_attr_reader_init(&r, s, strlen(s));
    expect_attr(&r, "CODECS", "avc1.4d401e,mp4a.40.2", true);
    expect_attr(&r, "BANDWIDTH", "800000", false);
    expect_attr(&r, "NAME", "a, b", true);
    expect_attr(&r, "TYPE", "AUDIO", false);
    hls_attr a;
    char why[128];
    assert_int_equal(hls_attr_next(&r, &a, why, sizeof(why)), 0);
}

static void test_lexer_tolerates_blanks_and_a_trailing_comma(void **state)
{
    (void)state;
    const char *s = " A=1 , B=\"x\" ,\tC=0x1F,";
    hls_attr_reader r;
    hls_attr_reader_init(&r, s, strlen(s));
    expect_attr(&r, "A", "1", false);
    expect_attr(&r, "B", "x", true);
    expect_attr(&r, "C", "0x1F", false);
    hls_attr a;
    char why[128];
    assert_int_equal(hls_attr_next(&r, &a, why, sizeof(why)), 0);
}

static void test_lexer_accepts_an_empty_quoted_string(void **state)
{
    (void)state;
    const char *s = "URI=\"\"";
    hls_attr_reader r;
    hls_attr_reader_init(&r, s, strlen(s));
    expect_attr(&r, "URI", "", true);
}

static void expect_malformed(const char *s, const char *why_contains)
{
    hls_attr_reader r;
    hls_attr a;
    char why[128] = "";
    hls_attr_reader_init(&r, s, strlen(s));
    int rc;
    int guard = 0;
    while ((rc = hls_attr_next(&r, &a, why, sizeof(why))) == 1 && guard++ < 16) {
    }
    if (rc != -1 || strstr(why, why_contains) == NULL) {
        fail_msg("'%s': rc %d, why '%s', expected '%s'", s, rc, why, why_contains);
    }
}

static void test_lexer_rejects_malformed_lists(void **state)
{
    (void)state;
    expect_malformed("URI=\"abc", "unterminated quoted string");
    expect_malformed("A=1,B", "attribute B has no '='");
    expect_malformed("A=\"x\"y,B=1", "text after its closing quote");
    expect_malformed("A=,B=1", "attribute A has an empty value");
    expect_malformed("=1", "expected an attribute name");
    expect_malformed("lower=1", "expected an attribute name");
    expect_malformed("A=x\"y\"", "stray '\"'");
}

static void test_enumerated_string_match_is_exact_and_unquoted(void **state)
{
    (void)state;
    hls_attr a = {"METHOD", 6, "AES-128", 7, false};
    assert_true(hls_attr_enum_is(&a, "AES-128"));
    assert_false(hls_attr_enum_is(&a, "AES"));
    a.quoted = true;
    assert_false(hls_attr_enum_is(&a, "AES-128"));
}

static void test_decimal_integer_accepts_the_full_64_bit_range_only(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_true(hls_parse_decimal_integer("0", 1, &v));
    assert_int_equal(v, 0);
    assert_true(hls_parse_decimal_integer("18446744073709551615", 20, &v));
    assert_true(v == UINT64_MAX);
    assert_false(hls_parse_decimal_integer("18446744073709551616", 20, &v));
    assert_false(hls_parse_decimal_integer("99999999999999999999", 20, &v));
    assert_false(hls_parse_decimal_integer("000000000000000000001", 21, &v));
    assert_false(hls_parse_decimal_integer("", 0, &v));
    assert_false(hls_parse_decimal_integer("-1", 2, &v));
    assert_false(hls_parse_decimal_integer("1.0", 3, &v));
    assert_false(hls_parse_decimal_integer("12a", 3, &v));
}

static void test_decimal_float_is_exact_for_playlist_durations(void **state)
{
    (void)state;
    double d = -1;
    assert_true(hls_parse_decimal_float("9.97667", 7, &d));
    assert_true(d == 9.97667);
    assert_true(hls_parse_decimal_float("10", 2, &d));
    assert_true(d == 10.0);
    assert_true(hls_parse_decimal_float("0.040", 5, &d));
    assert_true(d == 0.04);
    assert_true(hls_parse_decimal_float("10.", 3, &d));
    assert_true(d == 10.0);
    assert_true(hls_parse_decimal_float(".5", 2, &d));
    assert_true(d == 0.5);
    assert_true(hls_parse_decimal_float("0", 1, &d));
    assert_true(d == 0.0);
    assert_true(hls_parse_decimal_float("29.970029970029970029970", 24, &d));
    assert_true(d > 29.97002997 && d < 29.97002998);
    assert_true(hls_parse_decimal_float("123456789012345678901234", 24, &d));
    /* Past 19 significant digits only the magnitude is kept: within a rounding or two. */
    assert_true(d > 123456789012345678901234.0 * (1 - 1e-15) &&
                d < 123456789012345678901234.0 * (1 + 1e-15));
}

static void test_decimal_float_rejects_non_numbers_and_infinity(void **state)
{
    (void)state;
    double d = 0;
    assert_false(hls_parse_decimal_float("", 0, &d));
    assert_false(hls_parse_decimal_float(".", 1, &d));
    assert_false(hls_parse_decimal_float("1.2.3", 5, &d));
    assert_false(hls_parse_decimal_float("-1", 2, &d));
    assert_false(hls_parse_decimal_float("1e3", 3, &d));
    assert_false(hls_parse_decimal_float("abc", 3, &d));
    assert_false(hls_parse_decimal_float("inf", 3, &d));
    char huge[400];
    memset(huge, '9', sizeof(huge));
    assert_false(hls_parse_decimal_float(huge, sizeof(huge), &d));
}

static void test_hex128_is_right_aligned_big_endian(void **state)
{
    (void)state;
    uint8_t iv[16];
    static const uint8_t full[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                     0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0xff};
    assert_true(hls_parse_hex128("0x000102030405060708090A0B0C0D0EfF", 34, iv));
    assert_memory_equal(iv, full, 16);
    static const uint8_t short_value[16] = {[14] = 0x01, [15] = 0x23};
    assert_true(hls_parse_hex128("0X123", 5, iv));
    assert_memory_equal(iv, short_value, 16);
    assert_false(hls_parse_hex128("0x", 2, iv));
    assert_false(hls_parse_hex128("0x000102030405060708090A0B0C0D0E0F10", 36, iv));
    assert_false(hls_parse_hex128("0x12G4", 6, iv));
    assert_false(hls_parse_hex128("1234", 4, iv));
}

static void test_resolution_and_byterange_parse_their_forms(void **state)
{
    (void)state;
    uint64_t w = 0, h = 0, len = 0, off = 0;
    bool has_off = true;
    assert_true(hls_parse_resolution("1920x1080", 9, &w, &h));
    assert_int_equal(w, 1920);
    assert_int_equal(h, 1080);
    assert_false(hls_parse_resolution("1920X1080", 9, &w, &h));
    assert_false(hls_parse_resolution("1920x", 5, &w, &h));
    assert_false(hls_parse_resolution("x1080", 5, &w, &h));
    assert_true(hls_parse_byterange("1000", 4, &len, &has_off, &off));
    assert_int_equal(len, 1000);
    assert_false(has_off);
    assert_true(hls_parse_byterange("1000@20", 7, &len, &has_off, &off));
    assert_true(has_off);
    assert_int_equal(off, 20);
    assert_false(hls_parse_byterange("1000@", 5, &len, &has_off, &off));
    assert_false(hls_parse_byterange("@5", 2, &len, &has_off, &off));
    assert_false(hls_parse_byterange("1@2@3", 5, &len, &has_off, &off));
}

static void expect_date(const char *s, int64_t want)
{
    int64_t ms = 0;
    if (!hls_parse_date_time(s, strlen(s), &ms))
        fail_msg("'%s' was refused", s);
    if (ms != want)
        fail_msg("'%s' read as %lld, not %lld", s, (long long)ms, (long long)want);
}

static void test_date_time_reads_rfc3339_forms_and_writes_them_back(void **state)
{
    (void)state;
    expect_date("1970-01-01T00:00:00Z", 0);
    expect_date("2010-02-19T14:54:23.031+08:00", 1266562463031);
    expect_date("2026-12-06T03:20:00.5Z", 1796527200500);
    expect_date("2026-12-06t03:20:00.5000009z", 1796527200500);
    expect_date("2024-02-29T23:59:59.999-0130", 1709256599999);
    expect_date("2024-03-01T02:29:59.999+01", 1709256599999);
    expect_date("1969-12-31T23:59:59.900Z", -100);
    expect_date("2000-03-01T00:00:00Z", 951868800000);
    expect_date("2016-12-31T23:59:60Z", 1483228799000); /* a leap second */
    const char *bad[] = {"2023-02-29T00:00:00Z",
                         "2026-13-01T00:00:00Z",
                         "2026-12-06T03:20:00",
                         "2026-12-06 03:20:00Z",
                         "2026-12-06T03:20:00Zx",
                         "2026-12-06T24:00:00Z",
                         "2026-12-06T03:20:00.Z",
                         "2026-12-6T03:20:00Z",
                         "2026-12-06T03:20:00+1",
                         "2026-12-06T03:20:00+24:00",
                         ""};
    int64_t ms;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (hls_parse_date_time(bad[i], strlen(bad[i]), &ms))
            fail_msg("'%s' was taken", bad[i]);
    const int64_t values[] = {
        0, -1, -100, 1266562463031, 1796527200500, 951868799999, 253402300799999};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        char text[40];
        int n = hls_format_date_time(values[i], text);
        assert_int_equal(n, (int)strlen(text));
        expect_date(text, values[i]);
    }
    char text[40];
    hls_format_date_time(1266562463031, text);
    assert_string_equal(text, "2010-02-19T06:54:23.031Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lexer_splits_quoted_strings_containing_commas),
        cmocka_unit_test(test_date_time_reads_rfc3339_forms_and_writes_them_back),
        cmocka_unit_test(test_lexer_tolerates_blanks_and_a_trailing_comma),
        cmocka_unit_test(test_lexer_accepts_an_empty_quoted_string),
        cmocka_unit_test(test_lexer_rejects_malformed_lists),
        cmocka_unit_test(test_enumerated_string_match_is_exact_and_unquoted),
        cmocka_unit_test(test_decimal_integer_accepts_the_full_64_bit_range_only),
        cmocka_unit_test(test_decimal_float_is_exact_for_playlist_durations),
        cmocka_unit_test(test_decimal_float_rejects_non_numbers_and_infinity),
        cmocka_unit_test(test_hex128_is_right_aligned_big_endian),
        cmocka_unit_test(test_resolution_and_byterange_parse_their_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
