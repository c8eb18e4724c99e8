/*
 * resource_source.h — a source over one storage resource (bytes already local or being written
 * by someone else). It is the source of local files, and the simplest complete implementation
 * of the source contract.
 */
#ifndef KTH_STREAM_RESOURCE_SOURCE_H
#define KTH_STREAM_RESOURCE_SOURCE_H

#include "storage/resource.h"
#include "stream/source.h"

/* Creates a source reading `resource` (the source takes its own reference). `name` (a path or
 * URL, copied) names the bytes in error messages and gives the extension hint for media
 * detection; `info_hint` (may be NULL) pre-fills the media info. Media info is probed lazily
 * from the first bytes once they are present. Returns KTH_ERR_NO_MEMORY or KTH_OK. */
kth_status stream_resource_source_new(storage_resource *resource, const char *name,
                                      const kth_media_info *info_hint, stream_source **out);

/* Makes waits of `src` (made by stream_resource_source_new) also end, as interrupted, once
 * *epoch no longer equals `seen`: its owner's sign that the storage was replaced and the wait
 * should go on elsewhere. The owner moves the epoch, then wakes the old storage's waiters.
 * Call before the source is used. */
void stream_resource_source_watch(stream_source *src, const _Atomic uint64_t *epoch, uint64_t seen);

#endif
