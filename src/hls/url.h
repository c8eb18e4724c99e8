/*
 * hls/url.h — resolving a URI reference against a base URI (RFC 3986 §5).
 *
 * Playlists name segments, keys, init sections and other playlists by URI references that are
 * usually relative ("seg1.ts", "../keys/k1", "/abs/path", "//cdn.example/x"). They resolve
 * against the URL the playlist was finally fetched from (after redirects). The resolver is a
 * pure function: no I/O, no global state, any thread.
 */
#ifndef KTH_HLS_URL_H
#define KTH_HLS_URL_H

#include <stdbool.h>
#include <stddef.h>

/* True when `s` (of `n` bytes) begins with a syntactically valid scheme followed by ':'
 * (ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"), i.e. it is an absolute URI. */
bool hls_url_is_absolute(const char *s, size_t n);

/*
 * Resolves the reference `ref` (`ref_len` bytes, need not be NUL-terminated) against `base`
 * (a NUL-terminated absolute URI) with the strict algorithm of RFC 3986 §5.2.2, including the
 * removal of "." and ".." segments (§5.2.4). The base's fragment is ignored; the reference's
 * fragment is kept.
 *
 * Bytes that may never appear in a URI (controls, space, non-ASCII, and " < > \ ^ ` { | }) and a
 * '%' not followed by two hex digits are percent-encoded in the result, so it is always a valid
 * URI an HTTP client accepts. Nothing else is normalised (case, default ports, %-escapes).
 *
 * On success *out is a NUL-terminated string the caller frees with platform_free(). Returns KTH_OK,
 * KTH_ERR_INVALID_ARG (NULL argument, or `base` has no scheme), or KTH_ERR_NO_MEMORY; on
 * failure *out is NULL.
 */
int hls_url_resolve(const char *base, const char *ref, size_t ref_len, char **out);

#endif /* KTH_HLS_URL_H */
