/*
 * defaults.h — the process defaults, for kth_stream_open.
 */
#ifndef KTH_API_DEFAULTS_H
#define KTH_API_DEFAULTS_H

#include <kithara/cache.h>

#include <stddef.h>

/* kth_cache_default(), writing why it failed into err (may be NULL). */
kth_cache *api_default_cache(char *err, size_t errlen);

#endif
