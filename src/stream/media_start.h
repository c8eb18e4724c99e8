/*
 * stream/media_start.h — is this the beginning of audio? A strict check of a body's first bytes,
 * for bodies that must begin with a media container (an HLS segment or init section).
 *
 * Unlike kth_container_detect, which looks for frames anywhere in the first 4 KiB (real files
 * have junk before their first frame), this wants the container's own signature at byte 0: an
 * error page, a text message or a few bytes of junk must not pass because a frame sync turned
 * up somewhere inside them.
 */
#ifndef KTH_STREAM_MEDIA_START_H
#define KTH_STREAM_MEDIA_START_H

#include <kithara/media.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when bytes[0..len) (the first bytes of a body; the whole body when it is shorter) begin
 * like one of the containers audio is delivered in:
 *   - MPEG-TS: sync byte 0x47 at 0 and at every multiple of 188 within len (len >= 188);
 *   - ISO BMFF (fMP4): a box of a sane size (8 or more, or 1 with a 64-bit size of 16 or more)
 *     whose type is ftyp, styp, moov, moof, sidx, emsg, prft, free or skip;
 *   - ADTS or MPEG audio: a frame header at 0, and a second one after it when len reaches it;
 *   - an ID3v2 tag (packed audio, MP3), followed by one of the frame streams when len reaches
 *     past the tag;
 *   - FLAC ("fLaC"), or an AC-3 / E-AC-3 sync word (0x0B77).
 * *container (may be NULL) receives the container, or KTH_CONTAINER_UNKNOWN when an ID3 tag
 * hides what follows or the stream is AC-3. Pure; any thread. */
bool media_start_plausible(const uint8_t *bytes, size_t len, kth_container *container);

#endif
