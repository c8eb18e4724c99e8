/*
 * stream_options.c — the caller's stream and HLS options, read at their own size: see
 * stream_options.h.
 */
#include "api/stream_options.h"

#include "platform/options.h"

#include <stdio.h>

static kth_status refused(kth_status st, const char *which, char *err, size_t errlen)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", which,
                 st == KTH_ERR_UNSUPPORTED ? "the options set a field this kithara does not know"
                                           : "the options' size is smaller than a size_t");
    return st;
}

kth_status api_stream_options(const kth_stream_options *opts, kth_stream_options *so,
                              kth_hls_options *ho, char *err, size_t errlen)
{
    kth_status st =
        platform_options_copy(so, sizeof *so, opts, PLATFORM_OPTIONS_END(kth_stream_options, hls));
    if (st != KTH_OK)
        return refused(st, "kth_stream_options", err, errlen);
    st = platform_options_copy(ho, sizeof *ho, so->hls,
                               PLATFORM_OPTIONS_END(kth_hls_options, key_hook));
    if (st != KTH_OK)
        return refused(st, "kth_hls_options", err, errlen);
    so->hls = ho;
    if (so->read_timeout_ms == 0)
        so->read_timeout_ms = KTH_STREAM_DEFAULT_READ_TIMEOUT_MS;
    return KTH_OK;
}
