/*
 * kithara/status.h — the status vocabulary shared by every public call.
 *
 * Every fallible kithara function returns a kth_status. KTH_OK is zero and every failure is a
 * negative value, so calls that return a byte count (kth_stream_read) can return either a count
 * (>= 0) or a status (< 0) in one integer, the way POSIX read() does with -1/errno.
 *
 * The human sentence for a status is kth_strerror(); the detail of one particular failure (which
 * URL, which HTTP status, which offset) is kept by the object that failed and read with its
 * *_last_error() function.
 */
#ifndef KITHARA_STATUS_H
#define KITHARA_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KTH_BUILDING_LIBRARY) && defined(__GNUC__)
#define KTH_API __attribute__((visibility("default")))
#else
#define KTH_API
#endif

/* Waiting times for every timeout_ms parameter (kth_stream_try_read, kth_events_next, ...). */
#define KTH_NO_WAIT      0
#define KTH_WAIT_FOREVER (-1)

typedef enum kth_status {
    KTH_OK = 0,
    /* A caller passed an argument the call cannot accept (NULL handle, bad whence, ...). */
    KTH_ERR_INVALID_ARG = -1,
    /* An allocation failed. */
    KTH_ERR_NO_MEMORY = -2,
    /* A local file or disk operation failed; the object's last error names the path and errno. */
    KTH_ERR_IO = -3,
    /* A deadline passed before the awaited bytes or state arrived. */
    KTH_ERR_TIMEOUT = -4,
    /* The operation was cancelled (the object's cancel token, or the object is closing). */
    KTH_ERR_CANCELLED = -5,
    /* A seek was issued while this read was in progress; nothing was consumed. Read again. */
    KTH_ERR_SEEK_PENDING = -6,
    /* The stream reached a variant fence: the bytes that follow belong to another variant and
     * begin with its own init segment. Recreate the decoder, then clear the fence. */
    KTH_ERR_VARIANT_CHANGE = -7,
    /* Bytes that were available vanished before they could be read (evicted); read again. */
    KTH_ERR_RETRY = -8,
    /* An offset or seek target lies outside the stream. */
    KTH_ERR_OUT_OF_RANGE = -9,
    /* The call is not valid in the object's current state (e.g. writing a committed resource). */
    KTH_ERR_STATE = -10,
    /* The thing asked for does not exist (local path, cache entry, 404). */
    KTH_ERR_NOT_FOUND = -11,
    /* The network failed (connect error, reset, too many retries). */
    KTH_ERR_NETWORK = -12,
    /* The server answered with an HTTP status that ends the request (4xx, persistent 5xx). */
    KTH_ERR_HTTP = -13,
    /* The body was not what was expected (HTML instead of a playlist, bad playlist syntax). */
    KTH_ERR_FORMAT = -14,
    /* Decryption failed (wrong key length, bad padding). */
    KTH_ERR_DECRYPT = -15,
    /* The feature is recognised but not supported (SAMPLE-AES, an unknown key format). */
    KTH_ERR_UNSUPPORTED = -16,
    /* Offline mode: the bytes asked for are not in the cache. */
    KTH_ERR_OFFLINE_MISS = -17,
    /* The resource changed on the server (validator mismatch) while it was being assembled. */
    KTH_ERR_CHANGED = -18,
    /* The object is in use by someone else (a cache directory locked by another process). */
    KTH_ERR_BUSY = -19,
    /* A limit was exceeded (playlist too large, too many segments, queue full). */
    KTH_ERR_LIMIT = -20,
    /* A bug or broken invariant inside kithara; the last error says where. */
    KTH_ERR_INTERNAL = -21,
    /* Cached bytes failed their checksum (the cache's data file is damaged) and cannot be
     * fetched again (offline); the last error names the resource and the byte range. */
    KTH_ERR_CORRUPT = -22,
    /* A protected cache (kth_cache_options.secret): the secret is missing or wrong, or a
     * protected entry failed its authentication; the last error says which. Nothing is read
     * from the cache without the right secret: never garbage bytes. */
    KTH_ERR_PROTECTED = -23,
} kth_status;

/* Returns a static, human-readable sentence for a status (never NULL; an unknown value gives
 * "unknown status"). Any thread may call it. */
KTH_API const char *kth_strerror(int status);

/* Returns the enumerator's name without the prefix ("TIMEOUT", "OK"), for logs and JSON output.
 * Static storage, never NULL. Any thread. */
KTH_API const char *kth_status_name(int status);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_STATUS_H */
