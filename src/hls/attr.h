/*
 * hls/attr.h — the lexer for playlist attribute lists and the value types of RFC 8216 §4.2.
 *
 * An attribute list is "NAME=VALUE,NAME=VALUE,...". A value is a quoted string (which may hold
 * commas but no '"'), or an unquoted token: a decimal integer, a hexadecimal sequence, a
 * decimal float, a resolution, or an enumerated string. The lexer only splits; the converters
 * below check a value against one type. Nothing here allocates; all spans point into the line.
 */
#ifndef KTH_HLS_ATTR_H
#define KTH_HLS_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hls_attr {
    const char *name;
    size_t name_len;
    const char *value; /* without the quotes of a quoted string */
    size_t value_len;
    bool quoted;
} hls_attr;

typedef struct hls_attr_reader {
    const char *p;
    const char *end;
} hls_attr_reader;

void hls_attr_reader_init(hls_attr_reader *r, const char *s, size_t n);

/* Reads the next attribute. Returns 1 with *a filled, 0 at the end of the list, or -1 when
 * the list is malformed, with a sentence (no line number) written to why[0..whylen). Spaces
 * and tabs around attributes and a trailing comma are tolerated. */
int hls_attr_next(hls_attr_reader *r, hls_attr *a, char *why, size_t whylen);

/* True when the attribute's name is exactly `name`. */
bool hls_attr_is(const hls_attr *a, const char *name);

/* True when the attribute is the unquoted enumerated string `word`. */
bool hls_attr_enum_is(const hls_attr *a, const char *word);

/* Value converters: each returns true and writes *out only when the whole span has the type. */

/* decimal-integer: 1 to 20 digits, 0 .. 2^64-1. */
bool hls_parse_decimal_integer(const char *s, size_t n, uint64_t *out);

/* decimal-floating-point: digits with at most one '.', at least one digit, no sign, no
 * exponent. Parsed without the C locale (a library must not depend on setlocale). The result
 * is finite. */
bool hls_parse_decimal_float(const char *s, size_t n, double *out);

/* date-time (RFC 8216 §4.3.2.6: ISO 8601 / RFC 3339), "2026-12-06T03:20:00.250+01:00": date,
 * 'T', time with optional fraction (milliseconds kept, the rest cut), then 'Z' or an offset
 * ±hh:mm, ±hhmm or ±hh. *ms: milliseconds since the Unix epoch, UTC. */
bool hls_parse_date_time(const char *s, size_t n, int64_t *ms);

/* Writes ms (since the Unix epoch) as a date-time hls_parse_date_time reads back exactly:
 * "2026-12-06T02:20:00.250Z". Returns its length. */
int hls_format_date_time(int64_t ms, char out[40]);

/* hexadecimal-sequence of at most 128 bits ("0x" or "0X" and 1 to 32 hex digits), written
 * right-aligned (big-endian, left-padded with zeros) into out[16]. */
bool hls_parse_hex128(const char *s, size_t n, uint8_t out[16]);

/* decimal-resolution: "<width>x<height>", two decimal integers. */
bool hls_parse_resolution(const char *s, size_t n, uint64_t *width, uint64_t *height);

/* "<length>[@<offset>]" as in EXT-X-BYTERANGE: *has_offset tells whether "@offset" was there. */
bool hls_parse_byterange(const char *s, size_t n, uint64_t *length, bool *has_offset,
                         uint64_t *offset);

#endif /* KTH_HLS_ATTR_H */
