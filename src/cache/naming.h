/*
 * naming.h — how the cache names things: asset keys and data file names, both from SHA-256.
 *
 * Nothing from a URL or a resource key ever appears in a path: a data file is named
 * "<ab>/<cd>/<sha256(asset key, resource key)>-<16 random hex>" under the data directory, where
 * ab/cd are the hash's first four digits (two fan-out levels of 256 directories). The random
 * suffix makes every file a resource ever had distinct, so an index row that outlived a lost
 * transaction can never point at a newer file's different bytes.
 */
#ifndef KTH_CACHE_NAMING_H
#define KTH_CACHE_NAMING_H

#include <kithara/status.h>

#include <stdbool.h>
#include <stddef.h>

#define CACHE_KEY_HEX 65 /* 64 hex digits and the terminator */

/* key = lowercase hex SHA-256 of the string. KTH_ERR_INTERNAL if the digest is unavailable. */
kth_status cache_key_of(const char *text, char key[CACHE_KEY_HEX]);

/* True when `s` is exactly 64 lowercase hex digits. */
bool cache_is_key(const char *s);

/* A fresh data file name (see above) for resource `resource_key` of the asset `asset_key`;
 * `out` holds at least CACHE_FILE_MAX bytes (cache/index.h). */
kth_status cache_new_file_name(const char *asset_key, const char *resource_key, char *out,
                               size_t outlen);

#endif
