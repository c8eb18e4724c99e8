/*
 * testserver.h — a loopback HTTP/1.1 server for tests and benchmarks, with a fault menu.
 *
 * Every networked test of kithara (downloader, progressive files, HLS) talks to this server, run
 * inside the test process on 127.0.0.1 with a port the OS picks. It serves three kinds of body:
 *
 *   - files below a document root given at start;
 *   - in-memory bodies the test registers (path, bytes, content type);
 *   - synthetic bodies: a deterministic byte pattern of any size, computed on the fly, so a
 *     256 MiB body costs no memory and a test can check received bytes with kts_synth_check()
 *     without holding the body. GET /synth/<size>[k|m|g][.<ext>][?seed=N] serves one without
 *     registering anything (k, m, g are binary multiples: 64k is 65536 bytes); a query argument
 *     framing=ts (e.g. ?seed=3&framing=ts) serves the MPEG-TS-framed pattern instead
 *     (kts_add_ts_synth).
 *
 * Lookup order for a path: registered bodies, then /synth/..., then the document root.
 * Request lines (path and query) up to about 200 KiB are accepted.
 *
 * Responses carry a correct Content-Length, Content-Type from the extension, a strong ETag that
 * names the content, Last-Modified and Accept-Ranges. Single byte ranges (bytes=a-b, bytes=a-,
 * bytes=-n) get 206 with Content-Range; unsatisfiable ones get 416 with a Content-Range that
 * gives only the length ("bytes *" followed by "/LEN"); a multi-range or malformed Range is
 * answered with 200 and the whole body. If-Range is honoured (no match: 200 with the whole
 * body) and If-None-Match gets 304. HEAD is supported. Paths containing ".." are never served.
 *
 * Faults (kts_fault) are attached to a path ("*" for every path) and apply to all of its
 * requests or to a span of request numbers. Requests are numbered per path from 1, counting every
 * method; the count restarts at kts_reset(). Counters and a request log record what the clients
 * did; the kts_wait_ functions let a test block (condition variable, bounded by a timeout) until
 * requests arrive, complete, or wait at a gate or stall, so tests order events without sleeping.
 *
 * Threads: each connection has its own thread (libmicrohttpd thread-per-connection mode), so a
 * throttled, stalled or gated response never delays another one. Every function below may be
 * called from any thread, concurrently, except kts_stop(), which must not race with other calls
 * on the same server. Every wait inside the server (latency, rate cap, stall, gate) ends at once
 * when the server stops, so kts_stop() is prompt.
 *
 * Errors: functions returning int return KTH_OK (0) or a negative kth_status from
 * <kithara/status.h>: KTH_ERR_INVALID_ARG for bad arguments, KTH_ERR_NO_MEMORY, KTH_ERR_TIMEOUT
 * when a wait's deadline passed, KTH_ERR_NOT_FOUND when the named thing does not exist,
 * KTH_ERR_NETWORK when the socket cannot be bound, KTH_ERR_IO for an unusable document root.
 *
 * A shaped link (kts_link.h) can be put in front of every request: a bandwidth trace shared by
 * all bodies, a latency per request, in a time the test moves.
 *
 * The server depends on libmicrohttpd, pthreads and libc only, never on the kithara library.
 */
#ifndef KTS_TESTSERVER_H
#define KTS_TESTSERVER_H

#include <kithara/status.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kts_server kts_server;

/* ------------------------------------------------------------------------------------------ */
/* Lifetime                                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct kts_config {
    /* Directory whose files are served (GET /a/b.ts reads DOC_ROOT/a/b.ts). NULL: no files. */
    const char *doc_root;
    /* Loopback address to bind: an IPv4 address in 127.0.0.0/8 or "::1". NULL: "127.0.0.1".
     * Any other address is refused with KTH_ERR_INVALID_ARG. */
    const char *bind_address;
    /* Port to bind; 0 lets the OS pick a free one (what tests should do). */
    uint16_t port;
    /* Request log entries kept; when full, the oldest are dropped (counters are unaffected).
     * 0 means 65536. */
    size_t log_capacity;
} kts_config;

/* Starts a server and stores it in *out. config may be NULL (all defaults). The server is
 * listening when this returns. Returns KTH_ERR_INVALID_ARG (non-loopback address, NULL out),
 * KTH_ERR_IO (doc_root is not a readable directory), KTH_ERR_NETWORK (bind or daemon start
 * failed) or KTH_ERR_NO_MEMORY; *out is NULL then. */
int kts_start(const kts_config *config, kts_server **out);

/* Releases every gate and stall, ends every latency and rate wait, closes every connection,
 * joins the server's threads and frees the server. Clients with a response in progress see the
 * connection close. srv may be NULL. Must not race with any other call on srv. */
void kts_stop(kts_server *srv);

/* The bound port. */
uint16_t kts_port(const kts_server *srv);

/* "http://127.0.0.1:PORT" (or "http://[::1]:PORT"), without a trailing slash. The string
 * belongs to the server and lives until kts_stop(). */
const char *kts_base_url(const kts_server *srv);

/* Writes base URL + path into buf (path should begin with '/') and returns buf, or NULL when
 * the URL does not fit in size bytes. */
char *kts_url(const kts_server *srv, const char *path, char *buf, size_t size);

/* ------------------------------------------------------------------------------------------ */
/* Content                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Serves a copy of data[0..len) at path (which must begin with '/'). content_type NULL picks it
 * from the extension. Replacing an existing registration gives the path a new ETag and
 * Last-Modified; responses already in progress keep the old bytes. */
int kts_add_body(kts_server *srv, const char *path, const void *data, size_t len,
                 const char *content_type);

/* Serves the synthetic pattern of the given seed, size bytes long, at path. No memory is held
 * for the body. content_type NULL picks it from the extension. */
int kts_add_synth(kts_server *srv, const char *path, uint64_t size, uint64_t seed,
                  const char *content_type);

/* Serves the MPEG-TS-framed pattern at path: the synthetic pattern of seed, except that every
 * byte at an offset that is a multiple of 188 is the sync byte 0x47. A client that checks that a
 * segment starts like a transport stream accepts it; kts_ts_synth_check() checks its bytes. */
int kts_add_ts_synth(kts_server *srv, const char *path, uint64_t size, uint64_t seed,
                     const char *content_type);

/* An Icecast-style radio station (kts_add_icy). A GET that asks with "Icy-MetaData: 1" gets
 * 200 with icy-metaint, icy-name, icy-genre, icy-br and no length (chunked), and a body in
 * which every `metaint` audio bytes are followed by a metadata block: a length byte L, then
 * L * 16 bytes of text padded with NULs (L = 0: nothing new). A GET without that header gets the
 * audio alone. The audio of request number k of the path (counting from 1 since the last
 * kts_reset) is the synthetic pattern of seed + k - 1 from offset 0, so a test tells the
 * connections apart and checks every byte with kts_synth_check. Range is ignored. A drop is
 * the fault KTS_FAULT_CLOSE_AFTER (counted in body bytes, metadata included); pacing is
 * KTS_FAULT_RATE; the other faults apply as to any path. */
typedef struct kts_icy_title {
    uint64_t block;   /* the metadata block it is sent in: block b follows audio byte
                         (b + 1) * metaint - 1 of each response */
    const char *text; /* the block's whole text, e.g. "StreamTitle='A - B';" (at most 4080
                         bytes), copied */
    bool pad_max;     /* send the block at its largest: L = 255, 4080 bytes */
} kts_icy_title;

typedef struct kts_icy {
    uint32_t metaint; /* audio bytes between blocks (> 0) */
    uint64_t seed;
    uint64_t length; /* body bytes of each response, metadata included, after which it ends
                        cleanly; 0: endless */
    const char *name, *genre, *bitrate; /* icy-name, icy-genre, icy-br; NULL: not sent */
    const char *content_type;           /* NULL: audio/mpeg */
    const kts_icy_title *titles;        /* copied */
    size_t title_count;
    unsigned max_requests; /* 0: no limit; later requests get 404 (SHOUTcast v1: an empty
                              reply) */
    bool announce_length;  /* send Content-Length: length instead of chunked (length > 0) */
} kts_icy;

/* Serves a radio station at path (replacing what was there). KTH_ERR_INVALID_ARG for a
 * metaint of 0 or a title longer than 4080 bytes, KTH_ERR_NO_MEMORY. */
int kts_add_icy(kts_server *srv, const char *path, const kts_icy *icy);

/* The URL at which path's station answers as a SHOUTcast v1 server does: the status line
 * "ICY 200 OK" (no HTTP version; libmicrohttpd cannot send it, so a second listener on another
 * loopback port, started by the first call, serves it), the icy-* headers, then the body until
 * the station's length or until the client goes. Requests there are numbered and logged with
 * the path's others. Returns KTH_ERR_NETWORK when the listener cannot start,
 * KTH_ERR_INVALID_ARG when the URL does not fit. */
int kts_icy_v1_url(kts_server *srv, const char *path, char *buf, size_t size);

/* The raw body of a response of the station as the server sends it with metadata: bytes
 * [0, n) for request number `request` into buf (for tests of the framing itself). */
void kts_icy_fill(const kts_icy *icy, unsigned request, void *buf, size_t n);

/* Forgets a registered body. Returns KTH_ERR_NOT_FOUND if none is registered at path. */
int kts_remove_body(kts_server *srv, const char *path);

/* The synthetic pattern: byte `offset` of the body with seed `seed`. Every 8-byte block of the
 * pattern is distinct, so misplaced, doubled or lost bytes are detected. */
uint8_t kts_synth_byte(uint64_t seed, uint64_t offset);

/* Fills buf[0..n) with bytes offset..offset+n-1 of the pattern for seed. */
void kts_synth_fill(uint64_t seed, uint64_t offset, void *buf, size_t n);

/* Compares buf[0..n) with bytes offset..offset+n-1 of the pattern for seed. Returns n when all
 * match, otherwise the index in buf of the first byte that differs. */
size_t kts_synth_check(uint64_t seed, uint64_t offset, const void *buf, size_t n);

/* kts_synth_fill() and kts_synth_check() for the MPEG-TS-framed pattern (kts_add_ts_synth). */
void kts_ts_synth_fill(uint64_t seed, uint64_t offset, void *buf, size_t n);
size_t kts_ts_synth_check(uint64_t seed, uint64_t offset, const void *buf, size_t n);

/* The Content-Type the server sends for a path with this extension (".m3u8" →
 * "application/vnd.apple.mpegurl"; unknown → "application/octet-stream"). Static string. */
const char *kts_content_type_for(const char *path);

/* ------------------------------------------------------------------------------------------ */
/* Faults                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef enum kts_fault_kind {
    /* Wait `ms` milliseconds before sending the headers. */
    KTS_FAULT_LATENCY = 1,
    /* Send the body at no more than `bytes` bytes per second (per response), in small steps
     * of about 20 ms worth of data, never in bursts of a whole second. */
    KTS_FAULT_RATE,
    /* Answer with HTTP status `status` and a short text body instead of the content; add a
     * Retry-After header when `retry_after` is not NULL (e.g. "1"). */
    KTS_FAULT_STATUS,
    /* Close the connection after `bytes` body bytes of the response (counted from its first
     * byte, also for a 206): the client sees a truncated body. */
    KTS_FAULT_CLOSE_AFTER,
    /* After `bytes` body bytes of the response (0: right after the headers), stop sending for
     * `ms` milliseconds, or until the test calls kts_stall_release() for the path when `ms` is
     * 0 (or until the server stops). kts_wait_stalled() tells when requests are stalled. */
    KTS_FAULT_STALL_AFTER,
    /* Answer 200 with an HTML error page (text/html) instead of the content. */
    KTS_FAULT_HTML_200,
    /* Answer with a chain of `hops` 302 redirects (absolute Location URLs). Without `target`,
     * the chain ends at the requested path with "?kts_redirected=1" appended (that final
     * request is not redirected again); with `target` (a path beginning with '/', no query), it
     * ends at exactly target. The intermediate hops are requests for paths under /__kts/hop/
     * and are counted and logged as such. */
    KTS_FAULT_REDIRECT,
    /* Serve different content, with its own ETag and Last-Modified: `body_len` bytes copied
     * from `body` when body is not NULL, otherwise the synthetic pattern with `seed` (pick one
     * the original does not use) and the original length; the Content-Type stays. The path must
     * have content to change (else 404). Typically used with first_request = K to change the
     * content from request K on. */
    KTS_FAULT_CHANGE_BODY,
    /* Hold the request before its headers until the test calls kts_gate_release() for the path
     * (or the server stops). kts_wait_gated() tells when requests are waiting. */
    KTS_FAULT_GATE,
    /* Announce a Content-Length `length_delta` bytes away from the true one. Positive: the real
     * bytes are sent, then the connection closes short of the announced length. Negative: only
     * the announced (shorter) number of bytes is sent, as if that were the whole body. Has no
     * effect together with CHUNKED. */
    KTS_FAULT_WRONG_LENGTH,
    /* Ignore Range and If-Range: answer 200 with the whole body, without Accept-Ranges. */
    KTS_FAULT_IGNORE_RANGE,
    /* Send the body with chunked transfer encoding and no Content-Length. */
    KTS_FAULT_CHUNKED,
    /* Send the content gzip-encoded with Content-Encoding: gzip, whatever the request's
     * Accept-Encoding says. The encoded bytes are the representation: Content-Length, ranges
     * and the ETag (a different one) refer to them. The encoding uses stored deflate blocks: a
     * valid gzip stream that every decoder reads, 18 bytes plus 5 per 64 KiB longer than the
     * content. The content is read whole into memory (at most 64 MiB, else 500). */
    KTS_FAULT_GZIP,
    /* After `bytes` body bytes of the response at full speed, send one byte every `ms`
     * milliseconds (0: 1000), for as long as the body lasts: a connection that is never quite
     * stalled and never gets anywhere. */
    KTS_FAULT_TRICKLE,
} kts_fault_kind;

/* One fault. Fill it with a designated initializer; fields a kind does not use are ignored:
 *
 *     kts_add_fault(srv, "/seg1.ts", &(kts_fault){.kind = KTS_FAULT_STATUS, .status = 503,
 *                                                 .retry_after = "1", .last_request = 2});
 *
 * Several faults may apply to one request; faults of different kinds combine, and among faults
 * of the same kind the one added last wins (path-specific faults count as added after "*"
 * ones). Order of effects: gate, then latency, then redirect, status or HTML page, then the
 * body with its faults (changed content, gzip, wrong length, chunked, rate, trickle, stall,
 * close). */
typedef struct kts_fault {
    kts_fault_kind kind;
    /* The request numbers (per path, from 1) the fault applies to, inclusive. 0 in
     * first_request means from the first; 0 in last_request means without end. */
    unsigned first_request;
    unsigned last_request;
    uint32_t ms;             /* LATENCY, STALL_AFTER, TRICKLE */
    uint64_t bytes;          /* RATE (bytes/s, > 0), CLOSE_AFTER, STALL_AFTER, TRICKLE */
    int status;              /* STATUS (200..599) */
    const char *retry_after; /* STATUS: Retry-After value, copied; NULL for none */
    unsigned hops;           /* REDIRECT (>= 1) */
    const char *target;      /* REDIRECT: final path, copied; NULL for the requested path */
    uint64_t seed;           /* CHANGE_BODY when body is NULL */
    const void *body;        /* CHANGE_BODY: new content, copied; NULL for the pattern */
    size_t body_len;         /* CHANGE_BODY */
    int64_t length_delta;    /* WRONG_LENGTH (non-zero) */
} kts_fault;

/* Attaches a copy of *fault to path ("*" for every path). Returns KTH_ERR_INVALID_ARG when a
 * field the kind needs is missing or out of range. The faults of a request are fixed when it
 * arrives: adding or clearing faults later does not change requests already received. */
int kts_add_fault(kts_server *srv, const char *path, const kts_fault *fault);

/* Removes the faults of path ("*" for the every-path faults, NULL for all faults). Gate and
 * stall releases already granted are dropped too; requests already waiting keep waiting for a
 * release (or the stop). */
int kts_clear_faults(kts_server *srv, const char *path);

/* Passed as n to the release functions: open permanently (until kts_clear_faults()). */
#define KTS_RELEASE_ALL UINT32_MAX

/* Grants n passes through the gate of path: each lets one gated request through, whether it
 * is waiting now or arrives later (then it does not wait at all). */
int kts_gate_release(kts_server *srv, const char *path, uint32_t n);

/* The same for stalls of path (STALL_AFTER with ms == 0; a timed stall also ends early). */
int kts_stall_release(kts_server *srv, const char *path, uint32_t n);

/* ------------------------------------------------------------------------------------------ */
/* Counters, log and waits                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Requests that arrived for path (NULL: any path) with method (NULL: any method) since start or
 * the last kts_reset(). GET, HEAD, POST, PUT, DELETE, OPTIONS and PATCH are counted apart;
 * any other method name gives the count of all other methods together. */
unsigned kts_request_count(kts_server *srv, const char *path, const char *method);

/* Requests for path (NULL: any) whose exchange has ended (response sent, cut or aborted). */
unsigned kts_completed_count(kts_server *srv, const char *path);

#define KTS_LOG_METHOD_MAX  16
#define KTS_LOG_PATH_MAX    512
#define KTS_LOG_HEADER_MAX  160
#define KTS_LOG_HEADERS_MAX 512

/* One request as the server saw it. Strings longer than their array are truncated. */
typedef struct kts_log_entry {
    uint64_t seq;                      /* arrival order since the last reset, from 0 */
    unsigned number;                   /* request number for its path, from 1 */
    char method[KTS_LOG_METHOD_MAX];   /* "GET", "HEAD", ... */
    char path[KTS_LOG_PATH_MAX];       /* decoded path, without the query */
    char range[KTS_LOG_HEADER_MAX];    /* raw Range header; "" when absent */
    char if_range[KTS_LOG_HEADER_MAX]; /* raw If-Range header; "" when absent */
    char headers[KTS_LOG_HEADERS_MAX]; /* every request header as "Name: value\n", in arrival
                                          order, truncated to fit */
    int status;                        /* response status; 0 if none was sent */
    uint64_t body_bytes;               /* body bytes handed to the connection so far (exact
                                        * at a cut or stall; when a client aborts it may
                                        * exceed what the client got by one 64 KiB block) */
    bool cut;                          /* the body ended before its announced end */
    bool completed;                    /* the exchange has ended; the fields are final */
} kts_log_entry;

/* Entries in the log now (at most the configured capacity). */
size_t kts_log_count(kts_server *srv);

/* Copies entry `index` (0 is the oldest kept) into *out. KTH_ERR_NOT_FOUND past the end. */
int kts_log_get(kts_server *srv, size_t index, kts_log_entry *out);

/* Copies the log entry of request `number` (from 1) of path into *out, or KTH_ERR_NOT_FOUND. */
int kts_log_find(kts_server *srv, const char *path, unsigned number, kts_log_entry *out);

/* Clears counters, the log and request numbering (the next request of each path is number 1).
 * Bodies, faults and releases stay. Requests in progress finish without being logged. */
void kts_reset(kts_server *srv);

/* Blocks until at least n requests for path (NULL: any path) have arrived since the last reset,
 * or timeout_ms passes (KTH_ERR_TIMEOUT; a negative timeout_ms waits without limit, which only
 * a test with its own watchdog should do). The same holds for the other waits below. */
int kts_wait_requests(kts_server *srv, const char *path, unsigned n, int timeout_ms);

/* Blocks until at least n requests for path (NULL: any) have completed; after it returns, their
 * log entries are final. KTH_ERR_TIMEOUT when timeout_ms passes first. */
int kts_wait_completed(kts_server *srv, const char *path, unsigned n, int timeout_ms);

/* Blocks until at least n requests of path are waiting at its gate, or KTH_ERR_TIMEOUT. */
int kts_wait_gated(kts_server *srv, const char *path, unsigned n, int timeout_ms);

/* Blocks until at least n requests of path are in a stall, or KTH_ERR_TIMEOUT. */
int kts_wait_stalled(kts_server *srv, const char *path, unsigned n, int timeout_ms);

#endif
