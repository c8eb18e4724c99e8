/*
 * kithara/ffmpeg.h — an FFmpeg AVIOContext over a kth_stream, for programs that run their own
 * FFmpeg pipeline (demuxer, decoder) on kithara's bytes. Programs that only want PCM use
 * kithara/decode.h instead, which is built on this.
 *
 * Available when kithara was built with FFmpeg (its pkg-config file then requires libavformat,
 * libavcodec, libswresample and libavutil). Not included by kithara/kithara.h, so that programs
 * that do not use FFmpeg need none of its headers.
 *
 * Splices. A demuxer wants a file that starts at byte 0. A kth_stream is one at first, but an
 * HLS variant switch (and a time seek) starts new media inside the stream: the bytes from the
 * variant fence on are the new variant's init section (fMP4) and segments, at stream offsets
 * that keep growing. Each such start is a splice; the AVIO presents the current splice as a
 * file of its own, starting at 0, and each splice is demuxed by a fresh demuxer.
 *
 * The callbacks:
 * - read: kth_stream_read. Bytes as they come; AVERROR_EOF at the proven end of the stream, and
 *   also when a variant fence is met (the end of this splice: the demuxer flushes what it holds);
 *   kth_avio_status then tells the two apart. A failure of the stream (or a cancel) is
 *   AVERROR(EIO) (AVERROR_EXIT for a cancel), never EOF, so a demuxer never takes a cut-off
 *   packet for a whole one; kth_avio_status says which kth_status it was.
 * - seek: SEEK_SET / SEEK_CUR / SEEK_END relative to the splice start, through kth_stream_seek;
 *   AVSEEK_SIZE: the length when the stream's length is known and the stream is not HLS, else
 *   an error, so the demuxer does not look at the end of the file: an HLS splice may end at
 *   any fence, and mov's look for an index at the end would fetch a segment nobody plays. A
 *   fence met during a read far ahead of the splice only fails that read.
 *
 * The pattern for variant fences (what kth_decoder does; see examples/ffmpeg_avio.c):
 *
 *     for (;;) {
 *         int r = av_read_frame(fmt, pkt);
 *         if (r == AVERROR_EOF && kth_avio_status(io) == KTH_ERR_VARIANT_CHANGE) {
 *             avformat_close_input(&fmt);          // the old splice is finished
 *             kth_avio_next_splice(io);            // clears the fence; new splice at 0
 *             fmt = avformat_alloc_context();
 *             fmt->pb = kth_avio_context(io);      // a new AVIOContext: fetch it again
 *             fmt->flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_IGNIDX; // see below
 *             avformat_open_input(&fmt, NULL, NULL, NULL);
 *             // compare the new codec parameters with the decoder's: same codec, rate,
 *             // channels and extradata -> keep the decoder; else drain it and open another.
 *             continue;
 *         }
 *         if (r == AVERROR_EOF) ...   // kth_avio_status == KTH_OK: the end of the stream
 *         if (r < 0) ...              // kth_avio_status names the failure
 *     }
 *
 * Open HLS splices with AVFMT_FLAG_IGNIDX (and seek them with kth_stream_seek_time, not
 * through the demuxer): without it, mov walks every fragment of the variant while opening,
 * fetching all of it before the first frame and meeting any fence on the way.
 *
 * After a kth_stream_seek_time, call kth_avio_splice_at(io, anchor.offset) and open a fresh
 * demuxer the same way. A fence met before the first byte of a splice is cleared by the AVIO
 * itself: the demuxer reading that splice is new anyway, and reads the codec parameters of the
 * variant it is in.
 *
 * Threads: the AVIO is used by the thread that reads the stream (the demuxer's). The stream
 * must outlive the AVIO. kth_stream_cancel from another thread makes a blocked callback return
 * AVERROR_EXIT promptly.
 */
#ifndef KITHARA_FFMPEG_H
#define KITHARA_FFMPEG_H

#include <kithara/status.h>
#include <kithara/stream.h>

#include <libavformat/avio.h>

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kth_avio kth_avio;

/* Creates an AVIO over `stream` (borrowed: it must outlive the AVIO) whose first splice starts
 * at the stream's current position. `buffer_size` is the AVIOContext's buffer (0: 32 KiB).
 * Returns KTH_ERR_INVALID_ARG (NULL stream or out) or KTH_ERR_NO_MEMORY. Reader thread. */
KTH_API kth_status kth_avio_new(kth_stream *stream, size_t buffer_size, kth_avio **out);

/* Frees the AVIO and its AVIOContext (NULL-safe). Close the demuxer using it first. */
KTH_API void kth_avio_free(kth_avio *avio);

/* The AVIOContext of the current splice (owned by the AVIO): set it as AVFormatContext.pb with
 * AVFMT_FLAG_CUSTOM_IO. It stays valid until the next kth_avio_next_splice, kth_avio_splice_at
 * or kth_avio_free. */
KTH_API AVIOContext *kth_avio_context(kth_avio *avio);

/* Why the last callback that did not return bytes did so: KTH_OK (proven end of stream, or
 * nothing happened yet), KTH_ERR_VARIANT_CHANGE (a variant fence ends the splice), or the
 * stream's failure (KTH_ERR_CANCELLED, KTH_ERR_TIMEOUT, KTH_ERR_HTTP, ...; the stream's
 * kth_stream_last_error has the detail). A read that returns bytes resets it to KTH_OK. */
KTH_API kth_status kth_avio_status(kth_avio *avio);

/* Starts a new splice after a variant fence: clears the fence (kth_stream_clear_variant_fence;
 * a fence that is no longer pending is not an error) and makes the stream's position byte 0 of
 * a new AVIOContext (fetch it again with kth_avio_context). Returns KTH_OK or
 * KTH_ERR_NO_MEMORY. Reader thread. */
KTH_API kth_status kth_avio_next_splice(kth_avio *avio);

/* Starts a new splice at stream offset `offset` (a kth_seek_anchor's offset, or any byte a
 * demuxer can start at) and moves the stream there. Returns KTH_OK, KTH_ERR_NO_MEMORY or the
 * failure of kth_stream_seek. Reader thread. */
KTH_API kth_status kth_avio_splice_at(kth_avio *avio, uint64_t offset);

/* The stream offset of byte 0 of the current splice. Any thread that does not race a splice. */
KTH_API uint64_t kth_avio_splice_start(kth_avio *avio);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_FFMPEG_H */
