/*
 * stream_options.h — reading the stream and HLS options a caller hands to kth_stream_open or
 * kth_hls_prefetch, whatever kithara header the caller was built against.
 */
#ifndef KTH_API_STREAM_OPTIONS_H
#define KTH_API_STREAM_OPTIONS_H

#include <kithara/hls.h>
#include <kithara/stream.h>

#include <stddef.h>

/* Copies the caller's `opts` (NULL: defaults) into *so, and the HLS options it points to into
 * *ho, each read at the size the caller's header gave it (platform/options.h); so->hls then
 * points at ho. A read_timeout_ms of 0 becomes KTH_STREAM_DEFAULT_READ_TIMEOUT_MS; every other
 * zero is left for the layer that reads it. Returns KTH_OK, KTH_ERR_INVALID_ARG (a size smaller
 * than a size_t) or KTH_ERR_UNSUPPORTED (a newer header's field that this kithara lacks is
 * set), with a sentence in err (may be NULL). Any thread. */
kth_status api_stream_options(const kth_stream_options *opts, kth_stream_options *so,
                              kth_hls_options *ho, char *err, size_t errlen);

#endif
