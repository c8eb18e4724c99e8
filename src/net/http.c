/*
 * http.c — header value parsers (see http.h). Inputs are untrusted network text: lengths are
 * bounded by the caller's buffers, numbers are overflow-checked.
 */
#include "net/http.h"

#include "platform/text.h"

#include <curl/curl.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool net_parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *out = v;
    return true;
}

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Accepts the unit "bytes" followed by at least one blank; returns what follows or NULL. */
static const char *after_bytes_unit(const char *value)
{
    const char *p = skip_blanks(value);
    if (strncasecmp(p, "bytes", 5) != 0 || (p[5] != ' ' && p[5] != '\t'))
        return NULL;
    return skip_blanks(p + 5);
}

/* Length of the trailing part of s that is not blank. */
static size_t trimmed_len(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    return n;
}

bool net_parse_content_range(const char *value, uint64_t *first, uint64_t *last, bool *has_total,
                             uint64_t *total)
{
    const char *p = value ? after_bytes_unit(value) : NULL;
    if (!p)
        return false;
    const char *dash = strchr(p, '-');
    const char *slash = dash ? strchr(dash, '/') : NULL;
    if (!dash || !slash)
        return false;
    uint64_t a, b;
    if (!net_parse_u64(p, (size_t)(dash - p), &a) ||
        !net_parse_u64(dash + 1, (size_t)(slash - dash - 1), &b) || b < a)
        return false;
    const char *t = slash + 1;
    size_t tlen = trimmed_len(t);
    if (tlen == 1 && t[0] == '*') {
        *has_total = false;
        *total = 0;
    } else {
        uint64_t n;
        if (!net_parse_u64(t, tlen, &n) || b >= n)
            return false;
        *has_total = true;
        *total = n;
    }
    *first = a;
    *last = b;
    return true;
}

bool net_parse_unsatisfied_range(const char *value, uint64_t *total)
{
    const char *p = value ? after_bytes_unit(value) : NULL;
    if (!p || p[0] != '*' || p[1] != '/')
        return false;
    return net_parse_u64(p + 2, trimmed_len(p + 2), total);
}

bool net_parse_retry_after(const char *value, int64_t now_unix_s, int64_t *delay_ms)
{
    if (!value)
        return false;
    const char *p = skip_blanks(value);
    size_t len = trimmed_len(p);
    if (len == 0)
        return false;
    uint64_t seconds;
    if (isdigit((unsigned char)p[0])) {
        if (!net_parse_u64(p, len, &seconds))
            return false;
    } else {
        char date[64];
        if (len >= sizeof date)
            return false;
        memcpy(date, p, len);
        date[len] = '\0';
        time_t when = curl_getdate(date, NULL);
        if (when == (time_t)-1)
            return false;
        seconds = (int64_t)when > now_unix_s ? (uint64_t)((int64_t)when - now_unix_s) : 0;
    }
    const uint64_t max_s = (uint64_t)(INT64_MAX / 2) / 1000;
    *delay_ms = (int64_t)(seconds > max_s ? max_s : seconds) * 1000;
    return true;
}

bool net_header_find(const char *block, const char *name, char *buf, size_t size)
{
    if (!block || !name || !buf || size == 0)
        return false;
    size_t nlen = strlen(name);
    bool found = false;
    const char *line = block;
    while (*line) {
        const char *eol = strchr(line, '\n');
        size_t llen = eol ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            const char *end = line + llen;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
            size_t vlen = (size_t)(end - v);
            if (vlen >= size)
                return false;
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            found = true;
        }
        if (!eol)
            break;
        line = eol + 1;
    }
    return found;
}

kth_status net_host_key(const char *url, char **out)
{
    *out = NULL;
    CURLU *u = curl_url();
    if (!u)
        return KTH_ERR_NO_MEMORY;
    kth_status st = KTH_ERR_INVALID_ARG;
    char *scheme = NULL, *host = NULL, *port = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0)) {
        *out = platform_printf_new("%s://%s:%s", scheme, host, port);
        st = *out ? KTH_OK : KTH_ERR_NO_MEMORY;
        for (char *c = *out; c && *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return st;
}

bool net_etag_is_strong(const char *etag)
{
    return etag && etag[0] == '"';
}
