/*
 * options.h — reading a caller's public options struct, whatever kithara header it was built
 * against.
 *
 * Every public options struct (kth_cache_options, kth_downloader_options, kth_stream_options,
 * kth_hls_options, kth_decoder_options) begins with `size_t size`, and in every one a field
 * left at zero takes its default. So a struct a caller zeroed reads as "all defaults", and a
 * struct built against an older header (smaller) reads with the fields it lacks at their
 * defaults. Fields are only ever added at the end; the layout of the first release of the
 * struct (its "v1" end) never changes.
 */
#ifndef KTH_PLATFORM_OPTIONS_H
#define KTH_PLATFORM_OPTIONS_H

#include <kithara/status.h>

#include <stddef.h>

/* Copies the caller's options `src` into `dst` (dst_size bytes: this build's struct). The
 * caller's size is the size_t at the start of src: its sizeof, or 0, which stands for v1_end
 * (the end of the struct's first-release fields, so that `= {0}` keeps meaning all defaults
 * even once later fields exist). What src does not cover is zeroed. Bytes of a larger (newer)
 * struct past dst_size must be zero, since they are fields this build does not know:
 * otherwise KTH_ERR_UNSUPPORTED and dst all zero. A size smaller than a size_t is
 * KTH_ERR_INVALID_ARG. src NULL: dst all zero (defaults). dst->size is set to dst_size on
 * success. Any thread. */
kth_status platform_options_copy(void *dst, size_t dst_size, const void *src, size_t v1_end);

/* The end of the fields of `type` up to and including `last`: the v1_end of a struct whose
 * first release ended with that field. */
#define PLATFORM_OPTIONS_END(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))

#endif
