/*
 * hls/attr.c — attribute-list lexing and RFC 8216 value types.
 *
 * Input is untrusted: every read is bounded by the span's end, integers are checked for
 * overflow digit by digit, and floats are assembled from at most 19 significant digits so the
 * arithmetic stays exact until the final scaling.
 */
#include "hls/attr.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void hls_attr_reader_init(hls_attr_reader *r, const char *s, size_t n)
{
    r->p = s;
    r->end = s + n;
}

static bool is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void skip_blanks(hls_attr_reader *r)
{
    while (r->p < r->end && is_blank(*r->p)) {
        r->p++;
    }
}

int hls_attr_next(hls_attr_reader *r, hls_attr *a, char *why, size_t whylen)
{
    skip_blanks(r);
    if (r->p >= r->end) {
        return 0;
    }
    const char *name = r->p;
    while (r->p < r->end && is_name_char(*r->p)) {
        r->p++;
    }
    size_t name_len = (size_t)(r->p - name);
    if (name_len == 0) {
        snprintf(why, whylen, "expected an attribute name at '%c'",
                 (*r->p >= 0x21 && *r->p < 0x7f) ? *r->p : '?');
        return -1;
    }
    if (r->p >= r->end || *r->p != '=') {
        snprintf(why, whylen, "attribute %.*s has no '='", (int)(name_len > 64 ? 64 : name_len),
                 name);
        return -1;
    }
    r->p++;
    a->name = name;
    a->name_len = name_len;
    int shown = (int)(name_len > 64 ? 64 : name_len);
    if (r->p < r->end && *r->p == '"') {
        const char *start = ++r->p;
        const char *close = memchr(start, '"', (size_t)(r->end - start));
        if (close == NULL) {
            snprintf(why, whylen, "attribute %.*s has an unterminated quoted string", shown, name);
            return -1;
        }
        a->value = start;
        a->value_len = (size_t)(close - start);
        a->quoted = true;
        r->p = close + 1;
        skip_blanks(r);
        if (r->p < r->end && *r->p != ',') {
            snprintf(why, whylen, "attribute %.*s has text after its closing quote", shown, name);
            return -1;
        }
    } else {
        const char *start = r->p;
        while (r->p < r->end && *r->p != ',') {
            if (*r->p == '"') {
                snprintf(why, whylen, "attribute %.*s has a stray '\"'", shown, name);
                return -1;
            }
            r->p++;
        }
        const char *stop = r->p;
        while (stop > start && is_blank(stop[-1])) {
            stop--;
        }
        if (stop == start) {
            snprintf(why, whylen, "attribute %.*s has an empty value", shown, name);
            return -1;
        }
        a->value = start;
        a->value_len = (size_t)(stop - start);
        a->quoted = false;
    }
    if (r->p < r->end) {
        r->p++; /* the comma */
    }
    return 1;
}

bool hls_attr_is(const hls_attr *a, const char *name)
{
    return a->name_len == strlen(name) && memcmp(a->name, name, a->name_len) == 0;
}

bool hls_attr_enum_is(const hls_attr *a, const char *word)
{
    return !a->quoted && a->value_len == strlen(word) && memcmp(a->value, word, a->value_len) == 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool hls_parse_decimal_integer(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i])) {
            return false;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Reads exactly `digits` decimal digits at *s (within end) as a number. */
static bool fixed_digits(const char **s, const char *end, int digits, int *out)
{
    int v = 0;
    for (int i = 0; i < digits; i++, (*s)++) {
        if (*s >= end || **s < '0' || **s > '9')
            return false;
        v = v * 10 + (**s - '0');
    }
    *out = v;
    return true;
}

/* Reads the character c at *s. */
static bool literal(const char **s, const char *end, char c)
{
    if (*s >= end || **s != c)
        return false;
    (*s)++;
    return true;
}

/* Days from 1970-01-01 to the given proleptic Gregorian date: count in 400-year eras of
 * 146,097 days, with years that start on March 1st so that February's leap day ends one. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;                                   /* 0 .. 399 */
    int doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0 .. 365 */
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0 .. 146096 */
    return (int64_t)era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* The zone at *s: 'Z', ±hh:mm, ±hhmm or ±hh, as seconds east of UTC. */
static bool zone(const char **s, const char *end, int *east)
{
    if (literal(s, end, 'Z') || literal(s, end, 'z')) {
        *east = 0;
        return true;
    }
    int sign = literal(s, end, '+') ? 1 : literal(s, end, '-') ? -1 : 0;
    int h, m = 0;
    if (sign == 0 || !fixed_digits(s, end, 2, &h))
        return false;
    if (*s < end) {
        literal(s, end, ':');
        if (!fixed_digits(s, end, 2, &m))
            return false;
    }
    if (h > 23 || m > 59)
        return false;
    *east = sign * (h * 3600 + m * 60);
    return true;
}

bool hls_parse_date_time(const char *s, size_t n, int64_t *ms)
{
    const char *end = s + n;
    int y, mo, d, h, mi, sec, milli = 0, east;
    if (!fixed_digits(&s, end, 4, &y) || !literal(&s, end, '-') || !fixed_digits(&s, end, 2, &mo) ||
        !literal(&s, end, '-') || !fixed_digits(&s, end, 2, &d) ||
        !(literal(&s, end, 'T') || literal(&s, end, 't')) || !fixed_digits(&s, end, 2, &h) ||
        !literal(&s, end, ':') || !fixed_digits(&s, end, 2, &mi) || !literal(&s, end, ':') ||
        !fixed_digits(&s, end, 2, &sec))
        return false;
    if (literal(&s, end, '.')) {
        int digits = 0;
        for (; s < end && *s >= '0' && *s <= '9'; s++, digits++)
            if (digits < 3)
                milli = milli * 10 + (*s - '0');
        if (digits == 0)
            return false;
        for (; digits < 3; digits++)
            milli *= 10;
    }
    if (!zone(&s, end, &east) || s != end)
        return false;
    /* 60 seconds: a leap second, read as the last second of its minute. */
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return false;
    int64_t secs =
        days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + (sec == 60 ? 59 : sec) - east;
    *ms = secs * 1000 + milli;
    return true;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = (int)(z - era * 146097);                               /* 0 .. 146096 */
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0 .. 399 */
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* 0 .. 365 */
    int mp = (5 * doy + 2) / 153;                                    /* 0 .. 11, from March */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

int hls_format_date_time(int64_t ms, char out[40])
{
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int milli = (int)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int rest = (int)(secs - days * 86400);
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    return snprintf(out, 40, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
                    rest / 3600, rest / 60 % 60, rest % 60, milli);
}

bool hls_parse_decimal_float(const char *s, size_t n, double *out)
{
    /* Digits beyond the 19th significant one cannot change a double's value by more than its
     * rounding; they only shift the decimal exponent when they lie before the point. */
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    uint64_t mantissa = 0;
    int significant = 0;
    long exponent = 0; /* value = mantissa * 10^exponent */
    bool seen_point = false, seen_digit = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (seen_point) {
                return false;
            }
            seen_point = true;
            continue;
        }
        if (!is_digit(c)) {
            return false;
        }
        seen_digit = true;
        if (mantissa == 0 && c == '0') {
            if (seen_point) {
                exponent--;
            }
            continue;
        }
        if (significant < 19) {
            mantissa = mantissa * 10 + (uint64_t)(c - '0');
            significant++;
            if (seen_point) {
                exponent--;
            }
        } else if (!seen_point) {
            if (exponent > 400) {
                return false;
            }
            exponent++;
        }
    }
    if (!seen_digit) {
        return false;
    }
    double v = (double)mantissa;
    if (mantissa != 0) {
        while (exponent < -22) {
            v /= 1e22;
            exponent += 22;
        }
        while (exponent > 22) {
            v *= 1e22;
            exponent -= 22;
        }
        v = exponent < 0 ? v / pow10[-exponent] : v * pow10[exponent];
    }
    if (!isfinite(v)) {
        return false;
    }
    *out = v;
    return true;
}

static int hex_value(char c)
{
    if (is_digit(c)) {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool hls_parse_hex128(const char *s, size_t n, uint8_t out[16])
{
    if (n < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) {
        return false;
    }
    const char *digits = s + 2;
    size_t count = n - 2;
    if (count > 32) {
        return false;
    }
    uint8_t v[16] = {0};
    /* Fill from the last digit backwards: digit k from the end is nibble k of the number. */
    for (size_t k = 0; k < count; k++) {
        int h = hex_value(digits[count - 1 - k]);
        if (h < 0) {
            return false;
        }
        size_t byte = 15 - k / 2;
        v[byte] = (uint8_t)(v[byte] | (k % 2 == 0 ? h : h << 4));
    }
    memcpy(out, v, 16);
    return true;
}

bool hls_parse_resolution(const char *s, size_t n, uint64_t *width, uint64_t *height)
{
    const char *x = memchr(s, 'x', n);
    if (x == NULL) {
        return false;
    }
    size_t wn = (size_t)(x - s);
    return hls_parse_decimal_integer(s, wn, width) &&
           hls_parse_decimal_integer(x + 1, n - wn - 1, height);
}

bool hls_parse_byterange(const char *s, size_t n, uint64_t *length, bool *has_offset,
                         uint64_t *offset)
{
    const char *at = memchr(s, '@', n);
    if (at == NULL) {
        *has_offset = false;
        return hls_parse_decimal_integer(s, n, length);
    }
    size_t ln = (size_t)(at - s);
    *has_offset = true;
    return hls_parse_decimal_integer(s, ln, length) &&
           hls_parse_decimal_integer(at + 1, n - ln - 1, offset);
}
