/*
 * playlist_live.c — the tags that place a client in a live playlist: EXT-X-START (where to
 * begin, either kind of playlist) and EXT-X-SERVER-CONTROL's HOLD-BACK (how far from the live
 * edge). Other attributes of EXT-X-SERVER-CONTROL (low-latency delivery) are ignored.
 */
#include "hls/attr.h"
#include "hls/playlist_internal.h"

#include <kithara/status.h>

#define START_TAG   "EXT-X-START"
#define CONTROL_TAG "EXT-X-SERVER-CONTROL"

/* signed-decimal-floating-point: an optional '-' and a decimal-floating-point. */
static int signed_float(hls_parser *p, const char *tag, const hls_attr *a, double *out)
{
    const char *v = a->value;
    size_t n = a->value_len;
    bool negative = n > 0 && v[0] == '-';
    double x = 0;
    if (a->quoted || !hls_parse_decimal_float(v + negative, n - negative, &x)) {
        char ex[HLS_EXCERPT_SIZE];
        return hls_parser_fail(p, KTH_ERR_FORMAT, "%s attribute %.*s '%s' is not a decimal number",
                               tag, (int)(a->name_len > 40 ? 40 : a->name_len), a->name,
                               hls_excerpt(ex, sizeof ex, v, n));
    }
    *out = negative ? -x : x;
    return KTH_OK;
}

int hls_live_start(hls_parser *p, const char *s, size_t n)
{
    hls_attr_reader r;
    hls_attr a;
    hls_attr_reader_init(&r, s, n);
    bool has_offset = false, precise = false;
    double offset = 0;
    int rc;
    while ((rc = hls_parser_next_attr(p, START_TAG, &r, &a)) == 1) {
        rc = KTH_OK;
        if (hls_attr_is(&a, "TIME-OFFSET")) {
            rc = signed_float(p, START_TAG, &a, &offset);
            has_offset = true;
        } else if (hls_attr_is(&a, "PRECISE")) {
            rc = hls_parser_attr_yes_no(p, START_TAG, &a, &precise);
        }
        if (rc != KTH_OK)
            return rc;
    }
    if (rc != KTH_OK)
        return rc;
    if (!has_offset)
        return hls_parser_fail(p, KTH_ERR_FORMAT, START_TAG " has no TIME-OFFSET");
    p->pl->has_start = true;
    p->pl->start_offset = offset;
    p->pl->start_precise = precise;
    return KTH_OK;
}

int hls_live_server_control(hls_parser *p, const char *s, size_t n)
{
    hls_attr_reader r;
    hls_attr a;
    hls_attr_reader_init(&r, s, n);
    int rc;
    while ((rc = hls_parser_next_attr(p, CONTROL_TAG, &r, &a)) == 1) {
        if (!hls_attr_is(&a, "HOLD-BACK"))
            continue;
        double v = 0;
        rc = signed_float(p, CONTROL_TAG, &a, &v);
        if (rc != KTH_OK)
            return rc;
        if (v < 0)
            return hls_parser_fail(p, KTH_ERR_FORMAT, CONTROL_TAG " HOLD-BACK is negative");
        p->pl->media.has_hold_back = true;
        p->pl->media.hold_back = v;
    }
    return rc;
}
