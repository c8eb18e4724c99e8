/*
 * defaults.h — the process defaults, for kth_stream_open.
 */
#ifndef KTH_API_DEFAULTS_H
#define KTH_API_DEFAULTS_H

#include <kithara/cache.h>

#include <stddef.h>

/* kth_cache_default() with the cause of a failure: the status kth_cache_open returned (for
 * the first attempt, which is remembered), its sentence into err (may be NULL). *out is the
 * default cache (borrowed), NULL on failure. Any thread. */
kth_status api_default_cache(kth_cache **out, char *err, size_t errlen);

#endif
