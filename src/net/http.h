/*
 * http.h — parsing the few HTTP header values the downloader acts on.
 *
 * Pure functions over strings that come from the network: every number is range-checked and
 * every malformed value is refused (false), never guessed.
 */
#ifndef KTH_NET_HTTP_H
#define KTH_NET_HTTP_H

#include <kithara/status.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A decimal number without sign or spaces, fitting in 64 bits. */
bool net_parse_u64(const char *s, size_t len, uint64_t *out);

/* Content-Range of a 206: "bytes FIRST-LAST/TOTAL", or with an asterisk for an
 * unknown TOTAL. *last is inclusive.
 * Refuses LAST < FIRST and LAST >= TOTAL. */
bool net_parse_content_range(const char *value, uint64_t *first, uint64_t *last, bool *has_total,
                             uint64_t *total);

/* Content-Range of a 416: "bytes * /TOTAL" (no space before the slash). */
bool net_parse_unsatisfied_range(const char *value, uint64_t *total);

/* Retry-After: delta-seconds, or an HTTP date compared with now_unix_s. A date in the past gives
 * 0. The result is capped at INT64_MAX / 2 ms. */
bool net_parse_retry_after(const char *value, int64_t now_unix_s, int64_t *delay_ms);

/* Finds header `name` (case-insensitive) in a raw block of "Name: value\r\n" lines and copies
 * the value, without surrounding blanks, into buf. False when absent or too long for buf. When
 * a header appears more than once, the last one wins. */
bool net_header_find(const char *block, const char *name, char *buf, size_t size);

/* The connection-pool key of a URL: "scheme://host:port", lower case, default port filled in,
 * as a new string the caller frees (whole, however long the host). KTH_ERR_INVALID_ARG for a
 * URL that does not parse or whose scheme is not http or https, KTH_ERR_NO_MEMORY; *out is
 * NULL then. */
kth_status net_host_key(const char *url, char **out);

/* True for an ETag that is strong (not W/"..."), so byte ranges may be validated with it. */
bool net_etag_is_strong(const char *etag);

#endif
