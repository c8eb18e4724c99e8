/*
 * ts_internal.h — the test server's private types, shared by its source files.
 *
 * One mutex (kts_server.lock) protects all mutable server state: the path table, body
 * reference counts, faults, holds (gates and stalls), counters, the log and the stopping flag.
 * It is the only lock of the server, so there is no lock order to keep; it is never held while
 * calling into libmicrohttpd or while reading a file.
 *
 * Two condition variables share it: `events` wakes test threads in kts_wait_*() (a request
 * arrived, completed, reached a gate or a stall); `holds` wakes connection threads that wait
 * inside the server (gate, stall, latency, rate cap) when a release is granted or the server
 * stops. Both use CLOCK_MONOTONIC.
 */
#ifndef KTS_TS_INTERNAL_H
#define KTS_TS_INTERNAL_H

#include "testserver.h"

#include <microhttpd.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- time ---------------------------------------------------------------------------------- */

/* Monotonic time in nanoseconds. */
int64_t ts_now_ns(void);

/* ---- bodies (body.c) -------------------------------------------------------------------- */

typedef enum ts_body_kind { TS_BODY_MEMORY, TS_BODY_SYNTH, TS_BODY_FILE, TS_BODY_ICY } ts_body_kind;

/* ---- radio (icy.c) ------------------------------------------------------------------------ */

/* Where a radio response is in its body: in the audio before a block, or in a block. */
typedef struct ts_icy_cursor {
    bool with_meta;
    uint64_t seed;
    uint64_t audio_pos;  /* audio bytes sent */
    uint32_t audio_left; /* before the next block */
    uint64_t block;      /* the next (or current) block */
    bool in_block;
    size_t block_pos; /* bytes of the block sent, its length byte included */
} ts_icy_cursor;

/* A deep copy of a station's description (NULL when out of memory or invalid). */
kts_icy *ts_icy_copy(const kts_icy *icy);
void ts_icy_free(kts_icy *icy);
void ts_icy_cursor_init(ts_icy_cursor *c, const kts_icy *icy, unsigned request, bool with_meta);
/* The next n bytes of the body. */
void ts_icy_next(const kts_icy *icy, ts_icy_cursor *c, unsigned char *buf, size_t n);

/* Where a response's bytes come from. Shared by reference count (under the server lock) between
 * the path table and the responses that use it, so replacing a registration never frees bytes a
 * response is still sending. Immutable once built. */
typedef struct ts_body {
    unsigned refs;
    ts_body_kind kind;
    uint64_t size;
    unsigned char *data; /* MEMORY */
    uint64_t seed;       /* SYNTH */
    bool ts_framed;      /* SYNTH: the MPEG-TS-framed pattern */
    int fd;              /* FILE */
    kts_icy *icy;        /* ICY (owned) */
    char etag[80];       /* with quotes */
    char last_modified[40];
    char content_type[96];
} ts_body;

ts_body *ts_body_new_memory(const void *data, size_t len, const char *content_type,
                            const char *path, uint64_t version, time_t modified);
ts_body *ts_body_new_synth(uint64_t size, uint64_t seed, const char *content_type, const char *path,
                           time_t modified);
/* Makes a new synthetic body serve the MPEG-TS-framed pattern (with an ETag of its own). */
void ts_body_frame_ts(ts_body *body);
/* The gzip encoding of src's bytes as a memory body with src's content type and date, and an
 * ETag of its own. NULL when src is over 64 MiB, cannot be read, or memory runs out. */
ts_body *ts_body_new_gzip(const ts_body *src);
/* Opens doc_root + path. Returns NULL and sets *status (KTH_ERR_NOT_FOUND, KTH_ERR_NO_MEMORY). */
ts_body *ts_body_open_file(const char *doc_root, const char *path, int *status);
/* Parses "/synth/<size>[k|m|g][.ext]"; false when path is not of that form. */
bool ts_synth_path_parse(const char *path, uint64_t *size);
/* Copies body bytes [offset, offset + n) into buf. Returns false on a read error. */
bool ts_body_read(const ts_body *body, uint64_t offset, void *buf, size_t n);
/* Frees a body whose reference count has dropped to zero (caller checked, lock not needed). */
void ts_body_destroy(ts_body *body);
/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into buf (>= 30 bytes). */
void ts_http_date(time_t t, char *buf, size_t size);

/* ---- HTTP ranges and validators (range.c) ----------------------------------------------- */

typedef enum ts_range_result {
    TS_RANGE_NONE,          /* no usable single range: send the whole body (200) */
    TS_RANGE_PARTIAL,       /* send [first, last] (206) */
    TS_RANGE_UNSATISFIABLE, /* 416 */
} ts_range_result;

/* Interprets a Range header against a body of `size` bytes. */
ts_range_result ts_range_parse(const char *header, uint64_t size, uint64_t *first, uint64_t *last);
/* True when an If-Range value names the current representation (strong ETag or exact date). */
bool ts_if_range_matches(const char *header, const char *etag, const char *last_modified);
/* True when an If-None-Match value lists etag (weak comparison) or is "*". */
bool ts_if_none_match_matches(const char *header, const char *etag);

/* ---- faults (faults.c) ------------------------------------------------------------------ */

/* A stored fault: the caller's struct plus owned copies of its strings and bytes. */
typedef struct ts_fault {
    kts_fault f;
    char *retry_after;
    char *target;
    ts_body *changed; /* CHANGE_BODY with explicit bytes */
} ts_fault;

typedef struct ts_fault_list {
    ts_fault *items;
    size_t count;
    size_t cap;
} ts_fault_list;

/* A gate or a stall of one path: how many requests wait in it and how many may pass. */
typedef struct ts_hold {
    unsigned waiting;
    uint32_t tickets; /* KTS_RELEASE_ALL: open */
} ts_hold;

/* Everything one request does differently from a plain answer, resolved once on arrival from
 * the faults that match its path and number. */
typedef struct ts_plan {
    bool gate;
    uint32_t latency_ms;
    int status;
    char *retry_after; /* owned */
    bool html200;
    unsigned redirect_hops;
    char *redirect_target; /* owned; NULL: the requested path */
    bool change_body;
    uint64_t change_seed;
    ts_body *changed; /* reference, or NULL (synthetic change) */
    uint64_t rate;    /* bytes/s, 0: unlimited */
    bool close_after_set;
    uint64_t close_after;
    bool stall_set;
    uint64_t stall_after;
    uint32_t stall_ms;
    int64_t length_delta;
    bool ignore_range;
    bool chunked;
    bool gzip;
    bool trickle_set;
    uint64_t trickle_after;
    uint32_t trickle_ms;
} ts_plan;

/* ---- the shaped link (link.c) ------------------------------------------------------------ */

typedef struct ts_link ts_link; /* kts_link.h: one per server, under the lock */
typedef struct ts_flow ts_flow; /* one request's share of the link */

/* ---- the path table and the server (testserver.c) --------------------------------------- */

/* Methods counted separately; anything else counts as OTHER. */
enum {
    TS_METHOD_GET,
    TS_METHOD_HEAD,
    TS_METHOD_POST,
    TS_METHOD_PUT,
    TS_METHOD_DELETE,
    TS_METHOD_OPTIONS,
    TS_METHOD_PATCH,
    TS_METHOD_OTHER,
    TS_METHOD_COUNT
};

/* Per-path state. Entries are created on first use and live until kts_stop(), so a request may
 * keep a pointer to its entry without a reference count. */
typedef struct ts_path_entry {
    struct ts_path_entry *next; /* hash chain */
    char *path;
    ts_body *body; /* registered body (reference) or NULL */
    ts_fault_list faults;
    unsigned requests[TS_METHOD_COUNT];
    unsigned arrived; /* sum of requests[]; the last request number handed out */
    unsigned completed;
    ts_hold gate;
    ts_hold stall;
} ts_path_entry;

#define TS_PATH_BUCKETS 1024

/* The request log: a ring of log entries addressed by sequence number. Entries for sequence
 * numbers [first, next) are kept, at most `capacity` of them; slot = (seq - base) % alloc. */
typedef struct ts_log {
    kts_log_entry *slots;
    size_t alloc;
    size_t capacity;
    uint64_t base;  /* first sequence number since the last reset */
    uint64_t first; /* oldest sequence number still kept */
    uint64_t next;  /* next sequence number to hand out */
} ts_log;

struct kts_server {
    pthread_mutex_t lock;
    pthread_cond_t events;
    pthread_cond_t holds;
    bool stopping;

    struct MHD_Daemon *daemon;
    uint16_t port;
    char base_url[64];
    char *doc_root; /* absolute, or NULL */
    time_t epoch;   /* base of synthetic Last-Modified dates */
    uint64_t body_version;

    ts_path_entry *buckets[TS_PATH_BUCKETS];
    ts_fault_list any_faults; /* faults on "*" */
    unsigned requests_total[TS_METHOD_COUNT];
    unsigned arrived_total;
    unsigned completed_total;
    uint64_t generation; /* bumped by kts_reset(); older requests are no longer counted */
    ts_log log;
    /* The SHOUTcast v1 listener (icy_v1.c), started by the first kts_icy_v1_url. */
    bool v1_running;
    int v1_fd;
    uint16_t v1_port;
    pthread_t v1_thread;
    ts_link *link; /* kts_link_attach, or NULL */
};

/* Joins the SHOUTcast v1 listener, if started (srv->stopping already set). */
void ts_icy_v1_stop(kts_server *srv);

/* Looks up (create: or creates) the entry for path. Lock held. NULL if absent or out of memory. */
ts_path_entry *ts_path_get(kts_server *srv, const char *path, bool create);
/* Drops a reference to body (lock held); frees it when it was the last. */
void ts_body_unref_locked(ts_body *body);

/* faults.c, all with the lock held. */
void ts_fault_list_clear(ts_fault_list *list);
/* Resolves the plan of request `number` of entry; takes references and copies strings. */
int ts_plan_resolve(kts_server *srv, ts_path_entry *entry, unsigned number, bool redirected,
                    ts_plan *plan);
/* Releases what a plan owns (lock held). */
void ts_plan_release(ts_plan *plan);
/* Waits in hold (gate or stall of entry) until released, until deadline_ns (when >= 0), or
 * until the server stops. Returns false when the server is stopping. */
bool ts_hold_wait(kts_server *srv, ts_hold *hold, int64_t deadline_ns);
/* Sleeps until deadline_ns or until the server stops; false when stopping. */
bool ts_sleep_until(kts_server *srv, int64_t deadline_ns);
/* Condition wait with an absolute monotonic deadline (< 0: none). False on timeout. */
bool ts_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline_ns);

/* log.c, lock held. */
int ts_method_index(const char *method);
int ts_log_init(ts_log *log, size_t capacity);
void ts_log_free(ts_log *log);
/* Appends an entry for a new request and returns its sequence number. `headers` (may be
 * NULL) is every request header as "Name: value\n". */
uint64_t ts_log_begin(ts_log *log, unsigned number, const char *method, const char *path,
                      const char *range, const char *if_range, const char *headers);
/* The kept entry for seq, or NULL if it was dropped or reset away. */
kts_log_entry *ts_log_at(ts_log *log, uint64_t seq);
void ts_log_reset(ts_log *log);

/* ---- requests (testserver.c: arrival and completion; respond.c: the response) ------------ */

/* Paths of the middle of a redirect chain, and the query argument that marks its end. */
#define TS_HOP_PREFIX     "/__kts/hop/"
#define TS_REDIRECTED_ARG "kts_redirected"

/* One request from arrival to completion. Fields without a note are written by the request's
 * connection thread only (before the response is queued, or by its body reader). */
typedef struct ts_request {
    kts_server *srv;
    ts_path_entry *entry;
    unsigned refs; /* under the lock: libmicrohttpd's request pointer + the body reader */
    uint64_t seq;
    uint64_t generation;
    unsigned number;
    bool is_head;
    bool redirected;
    ts_plan plan;
    bool plan_ok;
    ts_body *body; /* what the reader sends (reference), or NULL */
    uint64_t offset;
    uint64_t length;    /* body bytes that exist for this response */
    uint64_t announced; /* Content-Length, or MHD_SIZE_UNKNOWN when chunked */
    uint64_t sent;      /* under the lock */
    int status;         /* under the lock */
    bool streaming;     /* a body is being sent (not HEAD, not an error page) */
    bool stalled;       /* the stall has been served */
    int64_t rate_start_ns;
    int64_t trickle_last_ns; /* when the trickle last sent a byte; 0: not yet */
    ts_icy_cursor icy;       /* ICY bodies */
    ts_flow *flow;           /* under the lock: its share of the link, or NULL */
} ts_request;

/* Drops a reference to req (lock held); frees it with its plan and body when it was the last. */
void ts_request_unref_locked(ts_request *req);
/* Runs the plan of a request whose headers and upload have been received and queues its
 * response. Called on the connection's thread; may block in gates, latency, rate and stalls. */
enum MHD_Result ts_respond(ts_request *req, struct MHD_Connection *conn, const char *url,
                           const char *method);

/* link.c. With the lock held: a new request joins the link (when there is one); an ended one
 * leaves it (safe to repeat); the server frees its link. */
void ts_link_arrive(kts_server *srv, ts_request *req);
void ts_link_leave(kts_server *srv, ts_request *req);
void ts_link_free(ts_link *link);
/* Without the lock, on the request's thread: waits out the request's latency in link time;
 * false when the server stops or the client went. */
bool ts_link_latency(ts_request *req, struct MHD_Connection *conn);
/* Waits until the link has carried bytes for the body at `pos` of `end` and lowers *n to what
 * it may send now; false when the server stops or the client went. */
bool ts_link_take(ts_request *req, uint64_t pos, uint64_t end, uint64_t *n);

#endif
