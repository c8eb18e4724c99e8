/*
 * file_time.h — where a time lands in a single media file (a progressive download or a local
 * file), from what its own headers say: kth_stream_seek_time for sources without a playlist.
 *
 * Formats and how exact the answer is:
 * - WAV (PCM in RIFF/WAVE): the sample frame at or before the time, exactly.
 * - FLAC with a SEEKTABLE: the last seek point at or before the time (the decoder skips from the
 *   point's time to the time asked for, as after an HLS time seek).
 * - MP3 (MPEG audio layer II or III, after any ID3v2 tags): with a VBRI table, the table entry at
 *   or before the time; with a Xing TOC (VBR), the TOC's estimate, which is as good as its 100
 *   points (about 1 % of the duration); otherwise constant bit rate (a LAME "Info" frame, or no
 *   tag at all, as FFmpeg assumes too): the frame holding the time, within one frame. Times count
 *   from the first audio frame, before the decoder trims any encoder delay.
 * Anything else answers KTH_ERR_UNSUPPORTED. A time at or before 0 lands at offset 0 (the file's
 * start) for every format.
 *
 * The anchor is for a decoder that has already read the file's header: the bytes at the offset
 * continue the stream, they do not start a new one.
 *
 * Everything read is untrusted: sizes are bounds-checked, and a header that does not make sense
 * means "not this format". Threads: pure functions over the caller's reader; any thread.
 */
#ifndef KTH_STREAM_FILE_TIME_H
#define KTH_STREAM_FILE_TIME_H

#include <kithara/status.h>
#include <kithara/stream.h>

#include <stddef.h>
#include <stdint.h>

/* Reads up to n bytes at `offset` into buf and sets *got (fewer than n only at the file's end).
 * Returns KTH_OK or the failure that kept the bytes from being read (it ends the lookup). */
typedef kth_status (*file_time_read_fn)(void *ctx, uint64_t offset, uint8_t *buf, size_t n,
                                        size_t *got);

typedef struct file_time_source {
    file_time_read_fn read;
    void *ctx;
    uint64_t length; /* the file's length in bytes; 0 when unknown */
} file_time_source;

/* Fills anchor->offset, segment_start (the time at the offset, <= seconds), segment_end (the
 * time of the next seek point, or the duration) and segment_index (the frame, seek point or table
 * entry's index) for time `seconds`, clamped to the file's duration when it is known. Returns
 * KTH_OK, KTH_ERR_UNSUPPORTED (no way to place a time in this file), KTH_ERR_INVALID_ARG (NaN),
 * or the reader's failure. */
kth_status file_time_anchor(const file_time_source *src, double seconds, kth_seek_anchor *anchor);

#endif
