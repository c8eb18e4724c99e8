/*
 * range.c — interpretation of Range, If-Range and If-None-Match for the test server.
 *
 * Follows the HTTP semantics (RFC 9110 §14 and §13): only the "bytes" unit is understood; one
 * range is served as 206; a syntactically invalid header or a unit we do not know is ignored
 * (the whole body, 200), which is what the RFC permits; a set of several ranges is also answered
 * with the whole body, a choice the RFC leaves to the server. A valid range that starts at or
 * past the end, or a zero-length suffix, is unsatisfiable (416). Numbers that overflow 64 bits
 * make the header invalid rather than wrapping.
 */
#include "ts_internal.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const char *skip_spaces(const char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    return s;
}

/* Parses a decimal number; false on no digits or overflow. */
static bool parse_u64(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;

    if (!isdigit((unsigned char)*p)) {
        return false;
    }
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
        p++;
    }
    *s = p;
    *out = v;
    return true;
}

ts_range_result ts_range_parse(const char *header, uint64_t size, uint64_t *first, uint64_t *last)
{
    const char *p;
    uint64_t a = 0;
    uint64_t b = 0;
    bool has_first;
    bool has_last;

    if (header == NULL) {
        return TS_RANGE_NONE;
    }
    p = skip_spaces(header);
    if (strncasecmp(p, "bytes", 5) != 0) {
        return TS_RANGE_NONE;
    }
    p = skip_spaces(p + 5);
    if (*p != '=') {
        return TS_RANGE_NONE;
    }
    p = skip_spaces(p + 1);
    if (strchr(p, ',') != NULL) {
        return TS_RANGE_NONE; /* several ranges: the whole body */
    }

    has_first = parse_u64(&p, &a);
    if (*p != '-') {
        return TS_RANGE_NONE;
    }
    p++;
    has_last = parse_u64(&p, &b);
    p = skip_spaces(p);
    if (*p != '\0' || (!has_first && !has_last)) {
        return TS_RANGE_NONE;
    }

    if (!has_first) {
        /* Suffix: the last b bytes. */
        if (b == 0 || size == 0) {
            return TS_RANGE_UNSATISFIABLE;
        }
        *first = size - (b < size ? b : size);
        *last = size - 1;
        return TS_RANGE_PARTIAL;
    }
    if (has_last && b < a) {
        return TS_RANGE_NONE; /* invalid: ignored */
    }
    if (a >= size) {
        return TS_RANGE_UNSATISFIABLE;
    }
    *first = a;
    *last = (has_last && b < size - 1) ? b : size - 1;
    return TS_RANGE_PARTIAL;
}

/* Copies the header value without surrounding spaces into buf; false if it does not fit. */
static bool trimmed(const char *value, char *buf, size_t size)
{
    const char *start = skip_spaces(value);
    size_t len = strlen(start);

    while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t')) {
        len--;
    }
    if (len >= size) {
        return false;
    }
    memcpy(buf, start, len);
    buf[len] = '\0';
    return true;
}

bool ts_if_range_matches(const char *header, const char *etag, const char *last_modified)
{
    char value[256];

    if (header == NULL || !trimmed(header, value, sizeof value)) {
        return false;
    }
    if (value[0] == '"' || strncmp(value, "W/", 2) == 0) {
        /* An entity tag: If-Range needs the strong comparison, so a weak tag never matches. */
        return strcmp(value, etag) == 0;
    }
    return strcmp(value, last_modified) == 0;
}

bool ts_if_none_match_matches(const char *header, const char *etag)
{
    const char *p = header;
    size_t etag_len = strlen(etag);

    if (header == NULL) {
        return false;
    }
    while (*p != '\0') {
        const char *end;
        size_t len;

        p = skip_spaces(p);
        if (*p == '*') {
            return true;
        }
        if (strncmp(p, "W/", 2) == 0) {
            p += 2; /* weak comparison: the W/ prefix does not matter */
        }
        end = strchr(p, ',');
        len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
            len--;
        }
        if (len == etag_len && memcmp(p, etag, len) == 0) {
            return true;
        }
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    return false;
}
