/*
 * resource_source.c — the source contract over a single storage resource.
 *
 * Offsets are the resource's own byte offsets. The wait and read map one-to-one onto the
 * resource's; the only state of its own is the media info, probed once from the first bytes
 * (guarded by info_lock, a leaf lock).
 */
#include "stream/resource_source.h"

#include "platform/sync.h"
#include "platform/mem.h"
#include "platform/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_BYTES 4096

typedef struct resource_source {
    stream_source base;
    storage_resource *resource;
    char *name;
    platform_mutex info_lock; /* leaf: guards info and probed */
    kth_media_info info;
    bool probed;
    /* Written by the reader thread only, before it reports the error. */
    char io_error[PLATFORM_SHOWN_MAX + 160];
    const _Atomic uint64_t *watched; /* stream_resource_source_watch; NULL: none */
    uint64_t watched_seen;
} resource_source;

static resource_source *from_base(stream_source *src)
{
    return (resource_source *)src;
}

static source_wait map_wait(resource_source *rs, storage_wait w, kth_status *status)
{
    switch (w) {
    case STORAGE_WAIT_READY:
        return SOURCE_WAIT_READY;
    case STORAGE_WAIT_EOF:
        return SOURCE_WAIT_EOF;
    case STORAGE_WAIT_INTERRUPTED:
        return SOURCE_WAIT_INTERRUPTED;
    case STORAGE_WAIT_TIMEOUT:
        return SOURCE_WAIT_TIMEOUT;
    case STORAGE_WAIT_CANCELLED:
        return SOURCE_WAIT_CANCELLED;
    case STORAGE_WAIT_FAILED:
        break;
    }
    *status = storage_resource_error(rs->resource, NULL, 0);
    return SOURCE_WAIT_ERROR;
}

/* What ends a wait early: the stream's seek epoch, and the epoch the owner watches. */
static storage_interrupt interrupt_of(const resource_source *rs, const stream_wait_ctx *ctx)
{
    return (storage_interrupt){.epoch = ctx->epoch,
                               .seen = ctx->seen_epoch,
                               .other_epoch = rs->watched,
                               .other_seen = rs->watched_seen};
}

static source_wait rs_wait_range(stream_source *src, uint64_t start, uint64_t end,
                                 const stream_wait_ctx *ctx, kth_status *status)
{
    resource_source *rs = from_base(src);
    storage_interrupt in = interrupt_of(rs, ctx);
    storage_wait w =
        storage_resource_wait_range(rs->resource, start, end, ctx->deadline_ns, ctx->cancel,
                                    ctx->epoch || rs->watched ? &in : NULL);
    return map_wait(rs, w, status);
}

static source_wait rs_wait_length(stream_source *src, const stream_wait_ctx *ctx,
                                  kth_status *status)
{
    resource_source *rs = from_base(src);
    storage_interrupt in = interrupt_of(rs, ctx);
    storage_wait w = storage_resource_wait_length(rs->resource, ctx->deadline_ns, ctx->cancel,
                                                  ctx->epoch || rs->watched ? &in : NULL);
    return map_wait(rs, w, status);
}

static source_read rs_read_at(stream_source *src, uint64_t offset, void *buf, size_t n)
{
    resource_source *rs = from_base(src);
    source_read r = {KTH_READ_BYTES, 0, KTH_PENDING_NONE, KTH_OK};
    size_t got = 0;
    kth_status st = storage_resource_read_at(rs->resource, offset, buf, n, &got);
    if (st == KTH_OK && got > 0) {
        r.n = got;
    } else if (st == KTH_OK) {
        r.kind = KTH_READ_EOF;
    } else if (st == KTH_ERR_RETRY) {
        /* Not present. A failed or cancelled resource will never bring it: say so now rather
         * than letting the reader wait for the failure to be reported by wait_range. */
        storage_state state = storage_resource_state(rs->resource);
        if (state == STORAGE_FAILED) {
            r.kind = KTH_READ_ERROR;
            r.status = storage_resource_error(rs->resource, NULL, 0);
        } else if (state == STORAGE_CANCELLED) {
            r.kind = KTH_READ_ERROR;
            r.status = KTH_ERR_CANCELLED;
        } else {
            r.kind = KTH_READ_PENDING;
            r.reason = KTH_PENDING_NOT_READY;
        }
    } else {
        if (st == KTH_ERR_CORRUPT)
            snprintf(rs->io_error, sizeof rs->io_error,
                     "%s: cached bytes at offset %llu failed their checksum (the cache file is "
                     "damaged) and cannot be fetched again offline",
                     PLATFORM_SHOWN(rs->name), (unsigned long long)offset);
        else
            snprintf(rs->io_error, sizeof rs->io_error, "%s: read failed at offset %llu",
                     PLATFORM_SHOWN(rs->name), (unsigned long long)offset);
        r.kind = KTH_READ_ERROR;
        r.status = st;
    }
    return r;
}

static bool rs_length(stream_source *src, uint64_t *length)
{
    return storage_resource_length(from_base(src)->resource, length);
}

static void rs_notify_waiting(stream_source *src)
{
    storage_resource_wake_waiters(from_base(src)->resource);
}

static void rs_media_info(stream_source *src, kth_media_info *info)
{
    resource_source *rs = from_base(src);
    platform_mutex_lock(&rs->info_lock);
    bool need_probe = !rs->probed;
    platform_mutex_unlock(&rs->info_lock);

    if (need_probe) {
        /* Probe once the first bytes (or the whole, shorter resource) are present. */
        uint8_t head[PROBE_BYTES];
        size_t got = 0;
        storage_resource_read_at(rs->resource, 0, head, sizeof head, &got);
        uint64_t length = 0;
        bool complete =
            got == sizeof head || (storage_resource_length(rs->resource, &length) && got == length);
        kth_media_info probed;
        platform_mutex_lock(&rs->info_lock);
        probed = rs->info;
        platform_mutex_unlock(&rs->info_lock);
        if (got > 0)
            kth_media_probe(head, got, &probed);
        if (complete) {
            platform_mutex_lock(&rs->info_lock);
            rs->info = probed;
            rs->probed = true;
            platform_mutex_unlock(&rs->info_lock);
        } else {
            /* Fewer bytes than a sure answer needs: say what they tell, ask again next time. */
            *info = probed;
            return;
        }
    }
    platform_mutex_lock(&rs->info_lock);
    *info = rs->info;
    platform_mutex_unlock(&rs->info_lock);
}

static size_t rs_last_error(stream_source *src, char *buf, size_t size)
{
    resource_source *rs = from_base(src);
    char detail[1024];
    kth_status st = storage_resource_error(rs->resource, detail, sizeof detail);
    const char *name = PLATFORM_SHOWN(rs->name); /* as the messages show it */
    char text[sizeof detail + PLATFORM_SHOWN_MAX + 2];
    if (rs->io_error[0])
        snprintf(text, sizeof text, "%s", rs->io_error);
    else if (st != KTH_OK && strncmp(detail, name, strlen(name)) == 0)
        snprintf(text, sizeof text, "%s", detail); /* it names the resource already */
    else if (st != KTH_OK)
        snprintf(text, sizeof text, "%s: %s", name, detail);
    else
        text[0] = '\0';
    if (buf)
        platform_excerpt(text, buf, size); /* a short buffer keeps the end, where the cause is */
    return strlen(text);
}

static void rs_destroy(stream_source *src)
{
    resource_source *rs = from_base(src);
    storage_resource_unref(rs->resource);
    platform_mutex_destroy(&rs->info_lock);
    platform_free(rs->name);
    platform_free(rs);
}

static const stream_source_ops resource_source_ops = {
    .name = "resource",
    .wait_range = rs_wait_range,
    .read_at = rs_read_at,
    .length = rs_length,
    .wait_length = rs_wait_length,
    .notify_waiting = rs_notify_waiting,
    .set_position = NULL,
    .media_info = rs_media_info,
    .variant_change_pending = NULL,
    .clear_variant_fence = NULL,
    .last_error = rs_last_error,
    .destroy = rs_destroy,
};

kth_status stream_resource_source_new(storage_resource *resource, const char *name,
                                      const kth_media_info *info_hint, stream_source **out)
{
    if (!resource || !out)
        return KTH_ERR_INVALID_ARG;
    resource_source *rs = platform_calloc(1, sizeof *rs);
    if (!rs)
        return KTH_ERR_NO_MEMORY;
    rs->name = platform_strdup(name ? name : "resource");
    if (!rs->name || platform_mutex_init(&rs->info_lock) != KTH_OK) {
        platform_free(rs->name);
        platform_free(rs);
        return KTH_ERR_NO_MEMORY;
    }
    rs->base.ops = &resource_source_ops;
    rs->resource = storage_resource_ref(resource);
    if (info_hint) {
        rs->info = *info_hint;
    } else {
        rs->info.variant = -1;
    }
    if (rs->info.container == KTH_CONTAINER_UNKNOWN)
        rs->info.container = kth_container_from_extension(rs->name);
    *out = &rs->base;
    return KTH_OK;
}

void stream_resource_source_watch(stream_source *src, const _Atomic uint64_t *epoch, uint64_t seen)
{
    resource_source *rs = from_base(src);
    rs->watched = epoch;
    rs->watched_seen = seen;
}
