/*
 * hls/segment_check.h — does a segment's body begin like audio? The check every media segment
 * and init section of a playlist passes before a byte of it is written to the cache, so an
 * error page, a text message or a few bytes of junk served with 200 fail the segment with a
 * sentence saying what came instead, and are never stored or played.
 */
#ifndef KTH_HLS_SEGMENT_CHECK_H
#define KTH_HLS_SEGMENT_CHECK_H

#include <kithara/status.h>

#include "net/downloader.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a resource of a playlist must begin with. */
typedef enum hls_body_kind {
    HLS_BODY_SEGMENT,  /* a segment of a playlist without EXT-X-MAP: MPEG-TS, packed audio
                          (ADTS, MP3, AC-3, usually behind an ID3 tag), FLAC or fMP4 */
    HLS_BODY_FRAGMENT, /* a segment of a playlist with EXT-X-MAP: an fMP4 fragment, or TS */
    HLS_BODY_INIT,     /* an init section (EXT-X-MAP): fMP4 (ftyp, moov, ...), or TS */
} hls_body_kind;

/* KTH_OK when bytes[0..len) (the first bytes of a body, the whole body when it is shorter) can
 * begin a resource of `kind` (stream/media_start.h says how each container must begin);
 * otherwise KTH_ERR_FORMAT with a sentence in why (NUL-ended, whylen bytes) saying what was
 * found instead: an HTML page, text, or the first bytes in hex. Pure; any thread. */
kth_status hls_check_body_start(const uint8_t *bytes, size_t len, hls_body_kind kind, char *why,
                                size_t whylen);

/* The validator of a segment fetch (net_validate_fn without its user pointer): an HTML
 * Content-Type fails any segment; a clear body must pass hls_check_body_start; an encrypted
 * one can be judged only after decryption, so its ciphertext is refused only when it is an
 * HTML page. Returns KTH_OK or KTH_ERR_FORMAT with the reason in msg. Downloader thread. */
kth_status hls_validate_segment(const net_response *resp, const void *prefix, size_t n,
                                hls_body_kind kind, bool encrypted, char *msg, size_t msglen);

#endif
