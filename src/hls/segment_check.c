/*
 * segment_check.c — the check of a segment's first bytes (see segment_check.h), and the words
 * that say what a rejected body was.
 */
#include "hls/segment_check.h"

#include "stream/media_start.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define SHOWN_TEXT  40 /* characters of a text body quoted in the message */
#define SHOWN_BYTES 8  /* bytes of a binary body shown in hex */

static bool mostly_text(const uint8_t *p, size_t len)
{
    size_t printable = 0;
    for (size_t i = 0; i < len; i++)
        if (isprint(p[i]) || isspace(p[i]))
            printable++;
    return len > 0 && printable * 10 >= len * 9;
}

/* A few words on what bytes[0..len) are: an HTML page, text (quoted), or bytes (in hex). */
static void describe(const uint8_t *p, size_t len, char *buf, size_t size)
{
    if (net_looks_like_html(p, len)) {
        snprintf(buf, size, "an HTML page");
    } else if (mostly_text(p, len)) {
        char text[SHOWN_TEXT + 1];
        size_t k = 0;
        for (size_t i = 0; i < len && k < SHOWN_TEXT; i++)
            text[k++] = isprint(p[i]) && p[i] != '"' ? (char)p[i] : ' ';
        text[k] = '\0';
        snprintf(buf, size, "text \"%s%s\"", text, len > SHOWN_TEXT ? "..." : "");
    } else {
        int n = snprintf(buf, size, "%zu bytes starting with", len);
        for (size_t i = 0; i < len && i < SHOWN_BYTES && n > 0 && (size_t)n < size; i++)
            n += snprintf(buf + n, size - (size_t)n, " %02x", p[i]);
    }
}

static const char *kind_name(hls_body_kind kind)
{
    switch (kind) {
    case HLS_BODY_INIT:
        return "an init section (fMP4 or MPEG-TS)";
    case HLS_BODY_FRAGMENT:
        return "an fMP4 fragment (or MPEG-TS)";
    case HLS_BODY_SEGMENT:
        break;
    }
    return "an audio segment (MPEG-TS, packed audio or fMP4)";
}

kth_status hls_check_body_start(const uint8_t *bytes, size_t len, hls_body_kind kind, char *why,
                                size_t whylen)
{
    kth_container c = KTH_CONTAINER_UNKNOWN;
    bool ok = bytes && media_start_plausible(bytes, len, &c);
    if (ok && kind != HLS_BODY_SEGMENT)
        ok = c == KTH_CONTAINER_FMP4 || c == KTH_CONTAINER_MPEG_TS;
    if (ok)
        return KTH_OK;
    if (why && whylen) {
        char found[128];
        if (len == 0)
            snprintf(found, sizeof found, "an empty body");
        else if (c != KTH_CONTAINER_UNKNOWN)
            snprintf(found, sizeof found, "%s", kth_container_name(c));
        else
            describe(bytes, len, found, sizeof found);
        snprintf(why, whylen, "expected %s, got %s", kind_name(kind), found);
    }
    return KTH_ERR_FORMAT;
}

kth_status hls_validate_segment(const net_response *resp, const void *prefix, size_t n,
                                hls_body_kind kind, bool encrypted, char *msg, size_t msglen)
{
    /* The Content-Type first: an HTML page is never a segment, whatever its bytes. */
    kth_status st = net_validate_not_html(NULL, resp, NULL, 0, msg, msglen);
    if (st != KTH_OK || !encrypted)
        return st != KTH_OK ? st : hls_check_body_start(prefix, n, kind, msg, msglen);
    return net_validate_not_html(NULL, resp, prefix, n, msg, msglen);
}
