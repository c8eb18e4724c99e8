/*
 * kithara/kithara.h — the whole public API in one include.
 *
 * kithara turns remote audio (a progressive HTTP file or an HLS presentation) into a blocking
 * read/seek byte stream any decoder can consume, while a shared background downloader fetches,
 * decrypts and caches the bytes on disk.
 */
#ifndef KITHARA_KITHARA_H
#define KITHARA_KITHARA_H

#include <kithara/alloc.h>
#include <kithara/cache.h>
#include <kithara/decode.h>
#include <kithara/downloader.h>
#include <kithara/events.h>
#include <kithara/hls.h>
#include <kithara/log.h>
#include <kithara/media.h>
#include <kithara/status.h>
#include <kithara/stream.h>
#include <kithara/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Releases the process defaults (cache and downloader) that kithara created on demand; streams
 * still open keep what they use alive. Call once before exit to free everything; later opens
 * create new defaults. Must not race stream opens. */
KTH_API void kth_shutdown(void);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_KITHARA_H */
