/*
 * downloader.h — the library's side of the downloader: peers, fetch commands, samples.
 *
 * A peer stands for one stream (a progressive file, an HLS presentation). It registers with a
 * downloader and is pulled: the downloader calls its poll_next when it is woken (by
 * net_peer_wake, after its reader moved, or by the completion of one of its fetches), and
 * poll_next adds fetch commands to a batch. Nothing is ever polled in a loop.
 *
 * A fetch command describes one HTTP request: URL, method, optional byte range, headers,
 * priority, and callbacks for the response headers, a validator of the first body bytes, each
 * chunk of the body and the completion. Every accepted command (net_batch_add or
 * net_downloader_submit returned KTH_OK) gets exactly one completion: success, failure or
 * KTH_ERR_CANCELLED.
 *
 * Callbacks (poll_next, response, validate, write, complete, samples) run on the downloader's
 * thread with no downloader lock held. They must not block for long (the downloader never waits
 * for a reader: a writer stores bytes and returns). They may call any function here except
 * net_peer_unregister (use net_peer_unregister_async from a callback).
 *
 * Threads: net_peer_wake, net_peer_set_priority, net_downloader_submit, platform cancellation of
 * a command's token and the listener functions may be called from any thread.
 */
#ifndef KTH_NET_DOWNLOADER_H
#define KTH_NET_DOWNLOADER_H

#include <kithara/downloader.h>
#include <kithara/status.h>

#include "platform/cancel.h"
#include "platform/clock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct net_peer net_peer;
typedef struct net_batch net_batch;
typedef struct net_listener net_listener;

/* Peer priority: the stream that plays comes before the one that preloads. */
enum { NET_PEER_FOREGROUND = 0, NET_PEER_BACKGROUND = 1 };
/* Command priority within a peer: what a reader waits for comes before read-ahead. */
enum { NET_FETCH_HIGH = 0, NET_FETCH_LOW = 1 };

typedef enum net_method { NET_GET = 0, NET_HEAD = 1 } net_method;

/* An open end for net_fetch_spec.range_end. */
#define NET_RANGE_OPEN UINT64_MAX

/* The response a body comes from, as handed to the response callback and validators. Strings
 * are valid only during the call; absent headers are NULL. */
typedef struct net_response {
    uint64_t request_id;
    int status;         /* HTTP status of the final response (after redirects) */
    const char *url;    /* final URL after redirects */
    unsigned redirects; /* redirects followed */
    const char *content_type;
    const char *etag;
    const char *last_modified;
    bool has_content_length; /* Content-Length of this response (encoded size when compressed) */
    uint64_t content_length;
    bool has_total_length; /* length of the whole resource: Content-Range total, or
                              Content-Length of an uncompressed 200 */
    uint64_t total_length;
    uint64_t offset;     /* resource offset of the first byte the writer will receive: always the
                            requested start, whatever range the server answered with */
    const char *headers; /* the raw header block of the final response */
    /* The command's net_fetch_spec.no_resume: a response or validate callback that learns the
     * body is endless (an internet radio stream) sets *no_resume = true, so a drop is not
     * resumed by range. */
    bool *no_resume;
} net_response;

/* What the completion callback receives. Strings valid only during the call. */
typedef struct net_result {
    uint64_t request_id;
    kth_status status; /* KTH_OK, KTH_ERR_CANCELLED, or the failure */
    int http_status;   /* last HTTP status received; 0 when none */
    uint64_t bytes;    /* body bytes handed to the writer */
    bool has_total_length;
    uint64_t total_length; /* as in net_response (a resumed response may correct it) */
    unsigned attempts;     /* transfers started for this command */
    bool retryable;        /* failure: it was transient, but retries ran out */
    int64_t duration_ns;   /* from acceptance to completion */
    const char *url;       /* final URL (the requested one when no response came) */
    const char *message;   /* failure: a sentence naming the URL and the cause; else "" */
} net_result;

/* One chunk of body for resource offset `offset`, on the downloader's thread. Chunks come in
 * order; the loop gathers what one of its turns received into chunks (of up to 256 KiB for
 * the pieces curl hands over) and hands them over by the end of that turn. Returning anything but
 * KTH_OK aborts the transfer; the completion then reports that status. */
typedef kth_status (*net_write_fn)(void *user, uint64_t offset, const void *data, size_t n);
/* The response headers, once per command, before any body byte. Non-OK aborts (permanently). */
typedef kth_status (*net_response_fn)(void *user, const net_response *resp);
/* The first bytes of the body (up to NET_VALIDATE_BYTES, fewer only when the body is shorter)
 * before the writer sees any of them. Non-OK rejects the body (permanently); msg (NUL-ended,
 * msglen bytes) may receive the reason. */
typedef kth_status (*net_validate_fn)(void *user, const net_response *resp, const void *prefix,
                                      size_t n, char *msg, size_t msglen);
typedef void (*net_complete_fn)(void *user, const net_result *result);

#define NET_VALIDATE_BYTES 512

/* A fetch command. Everything is copied when the command is accepted; the pointers need only
 * be valid during net_batch_add / net_downloader_submit. */
typedef struct net_fetch_spec {
    const char *url;   /* http:// or https:// */
    net_method method; /* GET (default) or HEAD */
    bool has_range;    /* ask for bytes [range_start, range_end) only */
    uint64_t range_start;
    uint64_t range_end;         /* exclusive; NET_RANGE_OPEN: to the end */
    const char *const *headers; /* extra header lines, NULL-terminated; NULL: none */
    int priority;               /* NET_FETCH_HIGH or NET_FETCH_LOW */
    bool accept_gzip; /* send Accept-Encoding: gzip and decode (playlists); ranged media should
                         leave it off so offsets are those of the resource. Without it, a body
                         sent with a Content-Encoding anyway fails the command (KTH_ERR_FORMAT,
                         not retried) before a byte of it reaches the writer */
    /* An endless body (internet radio): a transient failure is not resumed (a Range request
     * would mean nothing to the server, and a new body starts its framing afresh); the command
     * completes at once with the failure (retryable true), and its owner reconnects. */
    bool no_resume;
    platform_cancel *cancel;     /* optional: cancelling it cancels the command (a reference is
                                    taken). A peer's commands are also cancelled with the peer's
                                    token (net_peer_cancel_token): make it a child of that. A
                                    GET whose whole body had arrived before the cancel was seen
                                    completes KTH_OK all the same. */
    net_response_fn on_response; /* optional */
    net_validate_fn validate;    /* optional, e.g. net_validate_not_html */
    /* Optional: true while a reader is blocked waiting for this command's bytes. The loop asks
     * when the transfer runs below waiting_min_bytes_per_second (see kithara/downloader.h) and
     * abandons and resumes it when the answer is yes. Downloader thread, no lock held: it must
     * be quick and must not block. */
    bool (*reader_waits)(void *user);
    net_write_fn write;       /* optional: without it the body is discarded */
    net_complete_fn complete; /* optional, but then nobody learns the outcome */
    void *user;
} net_fetch_spec;

/* A bandwidth sample: one transfer attempt that received body bytes. */
typedef struct net_sample {
    uint64_t request_id;
    uint64_t bytes;      /* body bytes received over the network in this attempt */
    int64_t duration_ns; /* from the request's start to its last byte, time to first byte
                            included */
    int64_t ttfb_ns;     /* from the request's start to its first body byte */
    int http_status;
} net_sample;

typedef void (*net_sample_fn)(void *user, const net_sample *sample);

/* --- peers ----------------------------------------------------------------------------- */

typedef enum net_poll_result {
    NET_POLL_BATCH, /* commands were added (or not); poll me again on the next turn */
    NET_POLL_IDLE,  /* nothing now; poll me again when I am woken or a fetch of mine ends */
    NET_POLL_DONE,  /* never poll me again */
} net_poll_result;

typedef struct net_peer_ops {
    /* Adds the commands the peer wants now with net_batch_add. Required. */
    net_poll_result (*poll_next)(void *user, net_batch *batch);
    /* Bandwidth samples of this peer's fetches. Optional. */
    net_sample_fn on_sample;
} net_peer_ops;

/* Accepts a copy of *spec as a command of the polled peer and stores its id in *id (may be
 * NULL). At most NET_BATCH_MAX commands per call of poll_next: beyond that KTH_ERR_LIMIT.
 * Returns KTH_ERR_INVALID_ARG (no URL, empty range, bad priority), KTH_ERR_UNSUPPORTED (a
 * scheme other than http/https) or KTH_ERR_NO_MEMORY; a command not accepted gets no
 * completion. Only inside poll_next. */
#define NET_BATCH_MAX 32
kth_status net_batch_add(net_batch *batch, const net_fetch_spec *spec, uint64_t *id);

/* Registers a peer with `ops` (copied) and `user`, with a cancel token that is a child of
 * `parent` (may be NULL). *out is set before the peer can be polled, so its callbacks may read
 * it. The peer is polled once soon after. The peer keeps the downloader
 * alive until it is unregistered. Returns KTH_ERR_INVALID_ARG or KTH_ERR_NO_MEMORY. Any
 * thread. */
kth_status net_peer_register(kth_downloader *d, const net_peer_ops *ops, void *user, int priority,
                             platform_cancel *parent, net_peer **out);

/* Asks for a call of poll_next soon (after the reader moved). Any thread; cheap; wakes that
 * coalesce call poll_next once. No effect after NET_POLL_DONE or unregistration began. */
void net_peer_wake(net_peer *peer);

/* Asks for a call of poll_next once `delay_ns` has passed on the downloader's clock (at once
 * when <= 0): a timer for a peer that must look again at a fetch in flight (is it still making
 * progress?) while nothing else would wake it. One timer per peer: when one is pending, the
 * earlier of the two stands. It fires once, as a wake that coalesces with the others; a peer
 * that wants another one asks again from poll_next. The loop sleeps until then, never polls.
 * No effect after NET_POLL_DONE or unregistration began. Any thread, including callbacks. */
void net_peer_wake_after(net_peer *peer, int64_t delay_ns);

/* Changes the peer's priority; its queued commands move to their new slots. Any thread. */
void net_peer_set_priority(net_peer *peer, int priority);

/* The peer's cancel token (borrowed, lives until the peer is unregistered). Cancelling it
 * cancels every command of the peer; the peer is still polled when woken. */
platform_cancel *net_peer_cancel_token(net_peer *peer);

/* Cancels every command of the peer, waits until each has had its completion and no callback
 * of the peer can run any more, and frees the peer (user memory may be freed right after).
 * Returns KTH_ERR_STATE, doing nothing, when called on the downloader's thread (a callback):
 * use net_peer_unregister_async there. Any other thread. */
kth_status net_peer_unregister(net_peer *peer);

/* The same without waiting: `done(user)` (may be NULL) is called on the downloader's thread
 * once the last completion of the peer was delivered; after that no callback of the peer runs
 * and the peer is freed. Any thread, including the peer's own callbacks. */
void net_peer_unregister_async(net_peer *peer, void (*done)(void *user), void *user);

/* --- one-off requests -------------------------------------------------------------------- */

/* Accepts a command that belongs to no peer (playlists, keys) and stores its id in *id (may be
 * NULL). Errors as net_batch_add, and KTH_ERR_STATE when the downloader is shutting down. Any
 * thread, including callbacks. */
kth_status net_downloader_submit(kth_downloader *d, const net_fetch_spec *spec, uint64_t *id);

/* --- bandwidth listeners ------------------------------------------------------------------- */

/* Adds a listener that receives the samples of every fetch of the downloader. Returns
 * KTH_ERR_NO_MEMORY or KTH_ERR_INVALID_ARG. Any thread. */
kth_status net_downloader_add_listener(kth_downloader *d, net_sample_fn fn, void *user,
                                       net_listener **out);

/* Removes a listener; when called off the downloader's thread, it returns only once no call of
 * it is in progress. NULL-safe. Any thread. */
void net_downloader_remove_listener(kth_downloader *d, net_listener *listener);

/* --- validators ------------------------------------------------------------------------- */

/* Rejects an HTML page (Content-Type text/html, or a body that starts like one) with
 * KTH_ERR_FORMAT. For playlists and keys. */
kth_status net_validate_not_html(void *user, const net_response *resp, const void *prefix, size_t n,
                                 char *msg, size_t msglen);

/* True when the first bytes of a body start like an HTML page (after an optional UTF-8 byte order
 * mark and white space: a doctype, <html>, <head>, <body> or a comment). prefix may be NULL. */
bool net_looks_like_html(const void *prefix, size_t n);

/* Looks up header `name` (case-insensitive) in a raw header block and copies its value,
 * trimmed, into buf. False when absent or when it does not fit. */
bool net_response_header(const net_response *resp, const char *name, char *buf, size_t size);

/* --- for the library and its tests --------------------------------------------------------- */

/* Replaceable inputs, for tests: the clock the scheduling logic reads (retry times, stall and
 * watchdog), and the random source of the back-off jitter (returns [0, 1)). */
typedef struct net_downloader_hooks {
    const platform_clock *clock;  /* NULL: the system clock */
    double (*random)(void *user); /* NULL: a per-downloader generator */
    void *random_user;
} net_downloader_hooks;

/* kth_downloader_new with hooks (may be NULL). */
kth_status net_downloader_new(const kth_downloader_options *opts, const net_downloader_hooks *hooks,
                              kth_downloader **out, char *err, size_t errlen);

/* kth_downloader_default with the cause of a failure: the status of kth_downloader_new, whose
 * sentence goes into err (may be NULL). *out is the default downloader (borrowed, as from
 * kth_downloader_default), NULL on failure. Any thread. */
kth_status net_downloader_default(kth_downloader **out, char *err, size_t errlen);

/* Takes another reference / drops one (as kth_downloader_unref). Any thread. */
kth_downloader *net_downloader_ref(kth_downloader *d);
void net_downloader_unref(kth_downloader *d);

/* The time on the downloader's clock (the hooks' clock, else the system clock): what its
 * scheduling logic and the peers' timing read, so a virtual clock drives them all. Any thread. */
int64_t net_downloader_now(kth_downloader *d);

/* Makes the loop run a turn now (after a virtual clock moved). Any thread. */
void net_downloader_wake(kth_downloader *d);

/* Waits until the loop has completed a whole turn that began after this call (everything
 * submitted or woken before it has been looked at). Returns KTH_ERR_TIMEOUT after timeout_ms,
 * KTH_ERR_STATE on the downloader's thread. */
kth_status net_downloader_barrier(kth_downloader *d, int64_t timeout_ms);

/* The earliest time (on the downloader's clock) a retry is due; false when none waits. As of
 * the loop's last turn. Any thread. */
bool net_downloader_next_retry(kth_downloader *d, int64_t *due_ns);

/* The earliest time (on the downloader's clock) the loop has something timed to do: a retry, a
 * peer's timer (net_peer_wake_after), a check of a running transfer's pace, the watchdog. False
 * when nothing is timed. As of the loop's last turn (curl's own timeouts, which run on the real
 * clock, are not counted). A program that moves a virtual clock moves it no further than this
 * before letting the loop look. Any thread. */
bool net_downloader_next_due(kth_downloader *d, int64_t *due_ns);

/* Remembers bps (bit/s) as the throughput a stream measured last to the host of url (scheme,
 * host and port), for the next stream of that host to start from. The downloader keeps the last
 * NET_RATE_HOSTS hosts told. Does nothing for bps 0, a URL without a host, or no memory. Any
 * thread. */
#define NET_RATE_HOSTS 32
void net_downloader_remember_rate(kth_downloader *d, const char *url, uint64_t bps);

/* The throughput last remembered for the host of url: true with *bps set, or false when none
 * is known (or url has no host). Any thread. */
bool net_downloader_recall_rate(kth_downloader *d, const char *url, uint64_t *bps);

/* Drops the library's reference to the process default downloader (streams still using it
 * keep it alive until they close); the next kth_downloader_default() creates a new one. Must
 * not race kth_downloader_default() callers that still use the old pointer. Called by
 * kth_shutdown. Any thread. */
void net_downloader_shutdown_default(void);

/* True on the downloader's own thread. */
bool net_downloader_on_loop_thread(kth_downloader *d);

#endif
