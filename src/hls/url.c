/*
 * hls/url.c — RFC 3986 reference resolution for playlist URIs.
 *
 * A reference is split into its five components with the grammar of RFC 3986 Appendix B, the
 * components are combined with the base's as §5.2.2 says, dot segments are removed as §5.2.4
 * says, and the result is recomposed (§5.3). Components are spans into the inputs until the
 * final string is written, so there is one allocation for the path work and one for the result.
 *
 * Invariants: the output is NUL-terminated, contains only bytes valid in a URI, and is never
 * longer than 3 × (base + reference + 1) bytes; every size computation is checked.
 */
#include "hls/url.h"
#include "platform/mem.h"

#include <kithara/status.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct url_span {
    const char *p;
    size_t n;
    bool present; /* "defined" in RFC 3986 terms: an empty query differs from no query */
} url_span;

typedef struct url_parts {
    url_span scheme, authority, path, query, fragment;
} url_parts;

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static size_t scheme_length(const char *s, size_t n)
{
    if (n == 0 || !is_alpha(s[0])) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (c == ':') {
            return i;
        }
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') {
            return 0;
        }
    }
    return 0;
}

bool hls_url_is_absolute(const char *s, size_t n)
{
    return s != NULL && scheme_length(s, n) > 0;
}

/* The first index from `from` holding '#', or '?' when `at_query`, or '/' when `at_slash`;
 * else n. Compared inline: a playlist resolves every segment URI through here. */
static size_t span_until(const char *s, size_t n, size_t from, bool at_query, bool at_slash)
{
    size_t i = from;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '#' || (at_query && c == '?') || (at_slash && c == '/')) {
            break;
        }
    }
    return i;
}

/* Appendix B, except that a prefix before ':' only counts as a scheme when it is a valid one;
 * otherwise the whole thing is a (malformed) relative path, which is the useful reading of a
 * playlist line like "1:2.ts". */
static void url_split(const char *s, size_t n, url_parts *u)
{
    memset(u, 0, sizeof(*u));
    size_t i = 0;
    size_t sl = scheme_length(s, n);
    if (sl > 0) {
        u->scheme = (url_span){s, sl, true};
        i = sl + 1;
    }
    if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t end = span_until(s, n, i + 2, true, true);
        u->authority = (url_span){s + i + 2, end - i - 2, true};
        i = end;
    }
    size_t path_end = span_until(s, n, i, true, false);
    u->path = (url_span){s + i, path_end - i, true};
    i = path_end;
    if (i < n && s[i] == '?') {
        size_t end = span_until(s, n, i + 1, false, false);
        u->query = (url_span){s + i + 1, end - i - 1, true};
        i = end;
    }
    if (i < n && s[i] == '#') {
        u->fragment = (url_span){s + i + 1, n - i - 1, true};
    }
}

static bool starts_with(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(s, prefix, k) == 0;
}

static bool equals(const char *s, size_t n, const char *word)
{
    return n == strlen(word) && memcmp(s, word, n) == 0;
}

/* Drops the last segment of out[0..*len) together with the '/' before it (§5.2.4 step 2C). */
static void pop_segment(const char *out, size_t *len)
{
    size_t k = *len;
    while (k > 0 && out[k - 1] != '/') {
        k--;
    }
    *len = k > 0 ? k - 1 : 0;
}

/* §5.2.4 remove_dot_segments: reads `in` (n bytes), writes to `out` (room for n + 1 bytes),
 * returns the output length. */
static size_t remove_dot_segments(const char *in, size_t n, char *out)
{
    size_t len = 0;
    while (n > 0) {
        if (starts_with(in, n, "../")) {
            in += 3, n -= 3;
        } else if (starts_with(in, n, "./")) {
            in += 2, n -= 2;
        } else if (starts_with(in, n, "/./")) {
            in += 2, n -= 2; /* leaves "/..." */
        } else if (equals(in, n, "/.")) {
            out[len++] = '/';
            n = 0;
        } else if (starts_with(in, n, "/../")) {
            in += 3, n -= 3; /* leaves "/..." */
            pop_segment(out, &len);
        } else if (equals(in, n, "/..")) {
            pop_segment(out, &len);
            out[len++] = '/';
            n = 0;
        } else if (equals(in, n, ".") || equals(in, n, "..")) {
            n = 0;
        } else {
            size_t k = in[0] == '/' ? 1 : 0;
            while (k < n && in[k] != '/') {
                k++;
            }
            memcpy(out + len, in, k);
            len += k;
            in += k, n -= k;
        }
    }
    return len;
}

/* Bytes a URI may not contain; they are written percent-encoded. */
static bool needs_encoding(unsigned char c)
{
    switch (c) {
    case '"':
    case '<':
    case '>':
    case '\\':
    case '^':
    case '`':
    case '{':
    case '|':
    case '}':
        return true;
    default:
        return c <= 0x20 || c >= 0x7f;
    }
}

typedef struct url_writer {
    char *buf;
    size_t len;
} url_writer;

static void put_span(url_writer *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i = 0;
    while (i < n) {
        /* Runs that need no escape are copied whole. */
        size_t end = i;
        while (end < n && s[end] != '%' && !needs_encoding((unsigned char)s[end]))
            end++;
        memcpy(w->buf + w->len, s + i, end - i);
        w->len += end - i;
        if (end == n)
            break;
        i = end;
        unsigned char c = (unsigned char)s[i];
        bool lone_percent = c == '%' && !(i + 2 < n && is_hex(s[i + 1]) && is_hex(s[i + 2]));
        if (needs_encoding(c) || lone_percent) {
            w->buf[w->len++] = '%';
            w->buf[w->len++] = hex[c >> 4];
            w->buf[w->len++] = hex[c & 15];
        } else {
            w->buf[w->len++] = (char)c;
        }
        i++;
    }
}

static void put_text(url_writer *w, const char *s)
{
    size_t n = strlen(s);
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* RFC 3986 §5.2.3: the reference's relative path merged with the base's, into `merged`
 * (room for both paths and a slash); returns its span. */
static url_span merge_paths(const url_parts *b, const url_parts *r, char *merged)
{
    size_t len = 0;
    if (b->authority.present && b->path.n == 0) {
        merged[len++] = '/';
    } else {
        size_t keep = b->path.n;
        while (keep > 0 && b->path.p[keep - 1] != '/') {
            keep--;
        }
        memcpy(merged, b->path.p, keep);
        len = keep;
    }
    memcpy(merged + len, r->path.p, r->path.n);
    len += r->path.n;
    return (url_span){merged, len, true};
}

/* RFC 3986 §5.2.2: the target's parts from base `b` and reference `r`; *path_in is its path
 * before dot-segment removal (in `merged` when merged), *remove_dots whether that applies. */
static void transform_reference(const url_parts *b, const url_parts *r, char *merged, url_parts *t,
                                url_span *path_in, bool *remove_dots)
{
    memset(t, 0, sizeof(*t));
    *remove_dots = true;
    if (r->scheme.present) {
        t->scheme = r->scheme;
        t->authority = r->authority;
        *path_in = r->path;
        t->query = r->query;
    } else {
        t->scheme = b->scheme;
        if (r->authority.present) {
            t->authority = r->authority;
            *path_in = r->path;
            t->query = r->query;
        } else {
            t->authority = b->authority;
            if (r->path.n == 0) {
                *path_in = b->path;
                *remove_dots = false;
                t->query = r->query.present ? r->query : b->query;
            } else if (r->path.p[0] == '/') {
                *path_in = r->path;
                t->query = r->query;
            } else {
                *path_in = merge_paths(b, r, merged);
                t->query = r->query;
            }
        }
    }
    t->fragment = r->fragment;
}

/* RFC 3986 §5.3: the target's parts with `path` recomposed into a heap string (caller frees);
 * NULL when out of memory. */
static char *recompose(const url_parts *t, const char *path, size_t path_len)
{
    /* Every byte may triple when encoded; 8 bytes cover "://", "?", "#", ":" and the NUL. */
    size_t raw = t->scheme.n + t->authority.n + path_len + t->query.n + t->fragment.n;
    char *result = platform_malloc(raw * 3 + 8);
    if (result == NULL) {
        return NULL;
    }
    url_writer w = {result, 0};
    put_span(&w, t->scheme.p, t->scheme.n);
    put_text(&w, ":");
    if (t->authority.present) {
        put_text(&w, "//");
        put_span(&w, t->authority.p, t->authority.n);
    }
    put_span(&w, path, path_len);
    if (t->query.present) {
        put_text(&w, "?");
        put_span(&w, t->query.p, t->query.n);
    }
    if (t->fragment.present) {
        put_text(&w, "#");
        put_span(&w, t->fragment.p, t->fragment.n);
    }
    result[w.len] = '\0';
    return result;
}

/* True when recomposing the parts of `s` gives `s` back unchanged: no dot segment ("/." never
 * occurs), no byte put_span would escape, and no '%' (whose escapes it checks). */
static bool is_plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' || needs_encoding(c) || (c == '/' && i + 1 < n && s[i + 1] == '.'))
            return false;
    }
    return true;
}

int hls_url_resolve(const char *base, const char *ref, size_t ref_len, char **out)
{
    if (out == NULL) {
        return KTH_ERR_INVALID_ARG;
    }
    *out = NULL;
    if (base == NULL || (ref == NULL && ref_len > 0)) {
        return KTH_ERR_INVALID_ARG;
    }
    if (ref == NULL) {
        ref = "";
    }
    size_t base_len = strlen(base);
    if (hls_url_is_absolute(ref, ref_len) && is_plain(ref, ref_len)) {
        /* An absolute reference with nothing to remove or escape resolves to itself (what a
         * merged live playlist is made of: a segment's URI, written resolved). */
        if (!hls_url_is_absolute(base, base_len)) {
            return KTH_ERR_INVALID_ARG;
        }
        char *copy = platform_malloc(ref_len + 1);
        if (copy == NULL) {
            return KTH_ERR_NO_MEMORY;
        }
        memcpy(copy, ref, ref_len);
        copy[ref_len] = '\0';
        *out = copy;
        return KTH_OK;
    }
    url_parts b, r, t;
    url_split(base, base_len, &b);
    if (!b.scheme.present) {
        return KTH_ERR_INVALID_ARG;
    }
    url_split(ref, ref_len, &r);

    /* Keeps every size below (merged path, tripled result) far from overflowing. */
    if (base_len > SIZE_MAX / 8 || ref_len > SIZE_MAX / 8) {
        return KTH_ERR_NO_MEMORY;
    }
    /* Room for the merged path and the path without dot segments: on the stack for the usual
     * URL, from the heap for a long one. */
    char small[2][1024];
    bool heap = base_len + ref_len + 3 > sizeof small[0];
    char *merged = heap ? platform_malloc(base_len + ref_len + 2) : small[0];
    char *path = heap ? platform_malloc(base_len + ref_len + 3) : small[1];
    if (merged == NULL || path == NULL) {
        if (heap) {
            platform_free(merged);
            platform_free(path);
        }
        return KTH_ERR_NO_MEMORY;
    }

    url_span path_in; /* the path before dot-segment removal */
    bool remove_dots;
    transform_reference(&b, &r, merged, &t, &path_in, &remove_dots);
    size_t path_len;
    if (remove_dots) {
        path_len = remove_dot_segments(path_in.p, path_in.n, path);
    } else {
        memcpy(path, path_in.p, path_in.n);
        path_len = path_in.n;
    }
    char *result = recompose(&t, path, path_len);
    if (heap) {
        platform_free(merged);
        platform_free(path);
    }
    if (result == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    *out = result;
    return KTH_OK;
}
