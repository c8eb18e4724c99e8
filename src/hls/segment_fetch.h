/*
 * hls/segment_fetch.h — one fetch of one entry (segment or init section) of an HLS variant:
 * how its body reaches the cache. A body must begin like audio (segment_check.h) before a byte
 * of it is stored; clear bytes are written at their offset within the entry, encrypted ones go
 * through a streaming AES-128-CBC decryptor whose first plaintext bytes are held back until
 * they look like media (a wrong key gives noise, which must never reach a reader or the cache).
 *
 * The peer (hls_peer.c) creates a fetch, hands it to the downloader with segment_fetch_spec,
 * reads its progress to judge a stall, and learns of its end through hls_peer_segment_done.
 * All of it runs on the downloader thread.
 */
#ifndef KTH_HLS_SEGMENT_FETCH_H
#define KTH_HLS_SEGMENT_FETCH_H

#include "cache/cache.h"
#include "drm/aes128.h"
#include "hls/segment_check.h"
#include "net/downloader.h"

#include <kithara/events.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEGMENT_FETCH_CHUNK (64 * 1024)
/* Three MPEG-TS packets: enough to recognise every container we play. */
#define SEGMENT_FETCH_PROBE_BYTES 564

struct hls_session;

/* What a fetch is for: filled by the peer before segment_fetch_new. */
typedef struct segment_fetch_params {
    size_t variant, entry;
    cache_resource *res; /* borrowed from the slot (kept open while fetching) */
    hls_body_kind kind;  /* what its body must begin with */
    bool has_range;
    uint64_t range_start;
    const uint8_t *key;  /* 16 bytes, or NULL for a clear entry */
    const uint8_t *iv;   /* 16 bytes, with key */
    const char *key_uri; /* with key: copied (the playlist may be replaced meanwhile) */
    bool has_expected;
    uint64_t expected; /* the body's length, when known */
    const char *url;   /* copied: a segment's URI may not be a string in the playlist */
    kth_event_segment info;
} segment_fetch_params;

typedef struct segment_fetch {
    struct hls_session *s;
    size_t variant, entry;
    cache_resource *res;
    hls_body_kind kind;
    bool encrypted;
    char *key_uri; /* with key: owned */
    bool has_range;
    uint64_t range_start;
    drm_aes128 *decrypt;
    uint64_t cipher_next;
    uint64_t plain_written;
    int http_status;
    /* Progress: what the rescue judges, and the events report (downloader's clock). */
    int64_t started_ns;    /* the fetch was handed to the downloader */
    int64_t first_byte_ns; /* 0 until the first body byte */
    int64_t progress_ns;   /* the last time bytes past `received` arrived; 0: none yet */
    uint64_t received;     /* body bytes received (ciphertext when encrypted), resumes included */
    bool has_expected;
    uint64_t expected; /* the body's length, when known */
    bool has_response_size;
    uint64_t response_size; /* a clear whole body's length from its response, to record */
    kth_event_segment info;
    char *url; /* owned */
    /* Encrypted entries: the first plaintext bytes, held back until they look like media. */
    bool probed;
    size_t probe_len;
    uint8_t probe[SEGMENT_FETCH_PROBE_BYTES];
    uint8_t out[SEGMENT_FETCH_CHUNK + DRM_AES128_BLOCK];
} segment_fetch;

/* Creates a fetch of session `s` (borrowed; outlives the fetch) from `p`, with started_ns now
 * on the downloader's clock. Returns KTH_ERR_NO_MEMORY, or the decryptor's status with its
 * sentence in err. Caller frees (segment_fetch_free) until the spec was accepted by the
 * downloader; after that its completion frees it. */
kth_status segment_fetch_new(struct hls_session *s, const segment_fetch_params *p,
                             segment_fetch **out, char *err, size_t errlen);

/* Frees a fetch the downloader never accepted. NULL-safe. */
void segment_fetch_free(segment_fetch *f);

/* Fills the callbacks and user pointer of `spec` (the caller sets URL, range, priority and
 * cancel token). */
void segment_fetch_spec(segment_fetch *f, net_fetch_spec *spec);

/* Implemented by the peer: the fetch ended with `st` (the body's own verdict; a message in
 * `why` when it failed), `net_status` the downloader's. Records it in the session and
 * publishes its events; `f` is freed after it returns. Downloader thread. */
void hls_peer_segment_done(segment_fetch *f, kth_status st, kth_status net_status, char *why,
                           size_t whylen);

#endif
