/*
 * kithara/downloader.h — the shared HTTP downloader.
 *
 * One kth_downloader is a background thread driving a pool of HTTP transfers (libcurl multi):
 * connections are reused, HTTP/2 streams are multiplexed when a server offers them, and every
 * stream of the process that uses the same downloader shares its limits and priorities, so the
 * stream that is playing is served before the one that is preloading.
 *
 * Most programs never create one: streams use the process default downloader, created on first
 * use with default options (kth_downloader_default). A program that wants other options (a
 * proxy, a CA bundle, fewer connections) creates its own and hands it to its streams.
 *
 * Lifetime: a downloader is reference counted inside the library. kth_downloader_unref drops the
 * caller's reference; everything that still uses the downloader (an open stream) keeps it
 * alive, and the last user stops its thread. Fetches nobody waits for any more are cancelled
 * when the last reference goes.
 *
 * The default downloader lives until kth_shutdown() (kithara/kithara.h; no atexit handler is
 * installed: joining a thread from inside exit() can deadlock). A program that never calls it
 * leaves the thread and its memory reachable at exit, which leak checkers do not report.
 *
 * Errors: every failure returns a kth_status; kth_downloader_new writes a sentence into err.
 * Failures of individual requests are reported to whoever made the request (the stream), and as
 * events on the bus given in the options.
 */
#ifndef KITHARA_DOWNLOADER_H
#define KITHARA_DOWNLOADER_H

#include <kithara/events.h>
#include <kithara/status.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kth_downloader kth_downloader;

/* Options. Every field left at zero takes its default, so `kth_downloader_options o = {0};` (or
 * kth_downloader_options_init) gives the default downloader. `size` is
 * sizeof(kth_downloader_options) as the caller's header has it (kth_downloader_options_init
 * sets it; 0 stands for the fields of version 1, all of those below), so a program built
 * against an older header keeps working when fields are added at the end. Strings are copied
 * by kth_downloader_new. */
typedef struct kth_downloader_options {
    size_t size;
    /* Transfers running at once, across all hosts. 0: default 6. */
    unsigned max_in_flight;
    /* Transfers running at once to one host (scheme, host and port). 0: default 6. Never more
     * than max_in_flight. */
    unsigned max_per_host;
    /* User-Agent header. NULL: "kithara/<version>". */
    const char *user_agent;
    /* Extra request header lines ("Name: value") sent with every request, NULL-terminated
     * array. NULL: none. */
    const char *const *headers;
    /* Cookies sent with every request ("name=value; name2=value2"). NULL: none. */
    const char *cookies;
    /* Proxy URL. NULL: from the environment (http_proxy, https_proxy, all_proxy, no_proxy, as
     * libcurl reads them). "": never use a proxy. */
    const char *proxy;
    /* CA certificates for TLS verification: a bundle file and/or a hashed directory. NULL: the
     * system's. */
    const char *ca_file;
    const char *ca_path;
    /* Turns TLS certificate and host name verification off. Verification is on by default;
     * switch it off only for test servers. */
    bool tls_insecure;
    /* Speaks HTTP/2 from the first byte on http:// URLs (cleartext HTTP/2 "with prior
     * knowledge", RFC 9113 section 3.3; curl's CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE), so plain
     * HTTP requests to one server are multiplexed on one connection. Only for servers known to
     * offer it (nginx: `listen ... http2` without ssl before 1.25.1, `http2 on` after): one that
     * speaks only HTTP/1.1 fails every http:// request. https:// URLs are not affected: they
     * always negotiate HTTP/2 or HTTP/1.1 with the server (ALPN). Works with every libcurl
     * that has HTTP/2, including 7.88.x, whose own connection reuse in this mode is broken (the
     * downloader then opens and reuses the connections itself). Default false: http:// URLs
     * use HTTP/1.1. */
    bool http2_prior_knowledge;
    /* Most redirects followed for one request; one more fails it. 0: default 10. */
    unsigned max_redirects;
    /* Time allowed to connect (TCP and TLS). 0: default 10000 ms. */
    int64_t connect_timeout_ms;
    /* A transfer that receives fewer than stall_min_bytes_per_second over the last
     * stall_timeout_ms (waiting for the headers included) is abandoned and resumed as a
     * transient failure; one that receives nothing at all is abandoned when stall_timeout_ms
     * has passed since its last byte. 0: defaults 20000 ms and 1 byte per second. */
    int64_t stall_timeout_ms;
    uint64_t stall_min_bytes_per_second;
    /* While a reader is blocked waiting for a transfer's bytes, the transfer must receive at
     * least this many bytes per second over the last stall_timeout_ms (once it has run that
     * long), or it is abandoned and resumed the same way: a connection that trickles must not
     * hold a waiting reader for as long as the server likes. Read-ahead nobody waits for is
     * judged by stall_min_bytes_per_second only. 0: default 2000 (16 kbit/s, far below what
     * audio playback needs). */
    uint64_t waiting_min_bytes_per_second;
    /* Transient failures (connect errors, timeouts, resets, stalls, 5xx, 408, 429) are retried
     * up to max_retries times in a row without progress (a retry that moved the body forward
     * resets the count), after a delay drawn uniformly from [0, min(cap, base * 2^n)) ("full
     * jitter"). 0: defaults 4 retries, 250 ms base, 8000 ms cap. max_retries < 0: no retry
     * at all; at most 1000. */
    int max_retries;
    int64_t retry_base_ms;
    int64_t retry_cap_ms;
    /* Longest Retry-After (429, 503) that is honoured; a server asking for a longer wait fails
     * the request. 0: default 30000 ms. */
    int64_t retry_after_max_ms;
    /* Publishes KTH_EVENT_DOWNLOADER_STALLED when work is pending and nothing has moved (no
     * byte received, no transfer started or ended) for this long. 0: default 30000 ms;
     * < 0: never. */
    int64_t watchdog_ms;
    /* Bus for request events (borrowed; the downloader takes a reference). NULL: no events. */
    kth_bus *bus;
} kth_downloader_options;

/* Fills *opts with the defaults: all zero but size. Any thread. */
KTH_API void kth_downloader_options_init(kth_downloader_options *opts);

/* Creates a downloader and starts its thread. opts may be NULL (defaults); it is read only
 * during the call. The caller owns one reference, dropped with kth_downloader_unref. Returns
 * KTH_ERR_INVALID_ARG (NULL out, an option out of range, a size smaller than a size_t),
 * KTH_ERR_UNSUPPORTED (options of a newer header that set a field this kithara lacks),
 * KTH_ERR_NO_MEMORY, KTH_ERR_LIMIT (no thread could be started) or
 * KTH_ERR_INTERNAL (libcurl could not be set up); err (may be NULL) receives a sentence. Any
 * thread. */
KTH_API kth_status kth_downloader_new(const kth_downloader_options *opts, kth_downloader **out,
                                      char *err, size_t errlen);

/* Drops the caller's reference (NULL-safe). When it was the last one, requests still queued or
 * running are cancelled, their owners are told, the thread is stopped and joined, and the
 * downloader is freed before this returns. Any thread, including a callback of the downloader
 * (the thread then ends itself after the callback returns). */
KTH_API void kth_downloader_unref(kth_downloader *d);

/* The process default downloader (default options), created on first use; borrowed — do not
 * free it. Returns NULL only when it cannot be created. Any thread. */
KTH_API kth_downloader *kth_downloader_default(void);

/* The downloader's id, used as kth_event.origin in its events. Any thread. */
KTH_API uint64_t kth_downloader_id(const kth_downloader *d);

/* A snapshot of what the downloader is doing and has done. */
typedef struct kth_downloader_stats {
    uint64_t queued;        /* accepted, waiting for a slot */
    uint64_t running;       /* transfers in progress */
    uint64_t waiting_retry; /* waiting for a retry time */
    uint64_t peers;         /* registered streams (peers) */
    uint64_t completed;     /* requests that succeeded */
    uint64_t failed;        /* requests that failed */
    uint64_t cancelled;     /* requests that were cancelled */
    uint64_t retries;       /* retries scheduled */
    uint64_t bytes;         /* body bytes delivered */
} kth_downloader_stats;

/* Fills *out (all zero for a NULL downloader). The figures are updated by the downloader's
 * thread once per turn of its loop, so they may lag by one turn. Any thread. */
KTH_API void kth_downloader_get_stats(kth_downloader *d, kth_downloader_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_DOWNLOADER_H */
