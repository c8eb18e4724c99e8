/*
 * net_internal.h — the downloader's private structures, shared by its source files:
 *
 *   downloader.c  lifetime, the default downloader, the calls other threads make (peers,
 *                 submissions, listeners, barrier) and the inbox they fill
 *   loop.c        the thread: one turn drains the inbox, polls peers, starts transfers, drives
 *                 curl, finishes transfers, checks stalls and the watchdog, then sleeps in
 *                 curl_multi_poll until curl, a timer or a wake-up needs it
 *   command.c     a command's life: acceptance, queueing, cancellation, the one completion
 *   transfer.c    one attempt of a command on a curl easy handle: request, response checks,
 *                 body delivery, and the verdict (done, retry with resume, fail)
 *   h2c.c         cleartext HTTP/2 with prior knowledge, and what libcurl 7.88 needs for it
 *
 * Threads and locks. Everything marked "loop" is touched only by the downloader's thread, which
 * needs no lock for it. Everything marked "lock" is guarded by d->lock, a leaf lock held only to
 * copy a few fields: no callback, no curl call, no bus publication and no cancel-token call is
 * made with it held. Other threads reach the loop only through d->lock (the inbox and request
 * flags) and two atomics (poke, cancel_scan) followed by curl_multi_wakeup.
 *
 * Exactly one completion: a command's state (loop) moves INBOX → QUEUED ⇄ RUNNING ⇄
 * RETRY_WAIT → DONE, and only command_finish() enters DONE, after which the command is freed.
 * Every path out of QUEUED, RUNNING and RETRY_WAIT ends in command_finish (success, failure,
 * cancellation, the peer's unregistration, the downloader's shutdown), and all of them run on
 * the loop thread, so no two can race.
 */
#ifndef KTH_NET_INTERNAL_H
#define KTH_NET_INTERNAL_H

#include "net/downloader.h"
#include "net/pace.h"
#include "net/schedule.h"
#include "platform/sync.h"

#include <curl/curl.h>

#include <stdatomic.h>

/* curl hands the body over in pieces of at most 16 KiB. Handing each piece to the writer on its
 * own costs a file write and a wake-up of the waiting reader per piece, which at loopback speed
 * is most of the cost of a download. The loop gathers the pieces of one turn instead, up to this
 * many bytes, and hands them over together at the end of the turn (or when the stage is full):
 * no byte waits longer than one turn of the loop. A stage is held only within a turn; a few
 * are kept for the next turns. 64 KiB (four 16 KiB pieces) writes as fast as 256 KiB did
 * (bench_download: 1528 against 1558 MB/s into a file, best of 3, within the runs' spread) and
 * keeps 0.75 MiB less of a process's memory resident. */
#define NET_STAGE_BYTES (64 * 1024)
#define NET_STAGE_POOL  4

typedef struct net_cmd net_cmd;

typedef enum net_cmd_state {
    NET_CMD_INBOX,      /* submitted from another thread, not yet seen by the loop */
    NET_CMD_QUEUED,     /* in d->sched */
    NET_CMD_RUNNING,    /* on d->running, easy handle in the multi */
    NET_CMD_RETRY_WAIT, /* on d->waiting until retry_due_ns */
    NET_CMD_DONE,
} net_cmd_state;

/* The throughput last measured to each of a few hosts (rates.c), under the downloader's lock. */
typedef struct net_rates {
    struct net_rate_host {
        char *key;     /* net_host_key; NULL: empty */
        uint64_t bps;  /* the last estimate told */
        uint64_t told; /* `tells` when it was told: the smallest is forgotten first */
    } hosts[NET_RATE_HOSTS];
    uint64_t tells;
} net_rates;

/* What the loop knows of a host's cleartext HTTP/2 connection (h2c.c). */
typedef enum net_h2c_state {
    NET_H2C_NONE,    /* none known */
    NET_H2C_OPENING, /* an attempt is opening one */
    NET_H2C_LIVE,    /* one answered over HTTP/2 and was not seen gone since */
} net_h2c_state;

typedef struct net_h2c_hosts {
    struct net_h2c_host {
        char *key; /* net_host_key */
        net_h2c_state state;
    } * v;
    size_t n, cap;
} net_h2c_hosts;

/* Attempts of one command queued again because their h2c connection was gone (h2c.c). */
#define NET_H2C_MAX_MISSES 3

/* How an attempt on an http:// URL speaks HTTP/2 with prior knowledge (h2c.c). */
enum {
    NET_H2C_ATTEMPT_NONE,   /* it does not */
    NET_H2C_ATTEMPT_PLAIN,  /* prior knowledge, the connection reused as curl sees fit */
    NET_H2C_ATTEMPT_OPENER, /* prior knowledge on a fresh connection (libcurl 7.88) */
    NET_H2C_ATTEMPT_REUSE,  /* a stream of the host's live connection (libcurl 7.88) */
};

/* One transfer attempt of a command (loop). */
typedef struct net_attempt {
    CURL *easy;
    struct curl_slist *req_headers;
    char *hdr; /* raw header block of the current response */
    size_t hdr_len, hdr_cap;
    bool processed;    /* the final response's headers were interpreted */
    bool deliver;      /* its body goes to the command (2xx) */
    uint64_t skip;     /* body bytes to drop before the wanted position */
    uint64_t want_end; /* absolute end (exclusive) of what is wanted; UINT64_MAX unknown */
    uint64_t body_end; /* absolute end (exclusive) this response announced; UINT64_MAX unknown */
    bool satisfied;    /* everything wanted arrived; the transfer was stopped on purpose */
    bool aborted;      /* stopped by us: abort_status says why */
    kth_status abort_status;
    bool abort_retryable;
    char abort_reason[256]; /* net_transfer_abort's reason without the URL, for the retry's
                               message (a sentence: cutting it loses no meaning that matters) */
    bool has_retry_after;
    int64_t retry_after_ms;
    uint64_t received_at_start; /* cmd->received when the attempt began */
    uint64_t net_bytes;         /* body bytes received in this attempt */
    bool first_byte;
    int64_t first_byte_ns, last_byte_ns; /* when body bytes came, on d's clock */
    unsigned char h2c;                   /* NET_H2C_ATTEMPT_* */
    int64_t start_ns;                    /* on d's clock */
    net_pace pace;        /* the bytes of the last stall window, for the stall verdicts */
    unsigned char *stage; /* accepted bytes not yet handed to the writer (NET_STAGE_BYTES) */
    size_t stage_len;
    struct net_cmd *prev, *next; /* d->running */
    char errbuf[CURL_ERROR_SIZE];
} net_attempt;

struct net_cmd {
    net_sched_node node; /* d->sched while QUEUED */
    kth_downloader *d;
    net_peer *peer; /* NULL for a one-off submission */
    uint64_t id;
    net_cmd_state state;
    struct net_cmd *inbox_next;            /* d->inbox (lock) */
    struct net_cmd *wait_prev, *wait_next; /* d->waiting (loop) */

    /* The request, copied from the spec. */
    char *url;
    char *host; /* net_host_key(url) */
    net_method method;
    bool has_range;
    uint64_t range_start, range_end;
    struct curl_slist *headers;
    int priority;
    bool accept_gzip;
    bool no_resume;
    platform_cancel *cancel;
    platform_cancel_waker waker;
    bool waker_added;
    net_response_fn on_response;
    net_validate_fn validate;
    bool (*reader_waits)(void *user);
    net_write_fn write;
    net_complete_fn complete;
    void *user;

    /* Progress across attempts (loop). */
    unsigned attempts;
    unsigned failures;   /* consecutive transient failures without progress */
    unsigned h2c_misses; /* attempts queued again by net_h2c_missed */
    int64_t accepted_ns, first_start_ns, retry_due_ns;
    uint64_t received; /* body bytes accepted past range_start (validated or buffered) */
    uint64_t flushed;  /* of those, handed to the writer */
    bool responded;    /* on_response called, validators recorded */
    bool validated;
    unsigned char *sniff; /* first bytes held for the validator */
    size_t sniff_len;
    char *etag, *last_modified;
    bool has_total;
    uint64_t total;
    int http_status;
    unsigned redirects; /* followed to reach the final response */
    char *final_url;
    net_attempt at; /* at.hdr outlives the attempt's curl handle until the verdict is in */

    /* The verdict. */
    bool retryable;
    char message[512];
};

struct net_peer {
    kth_downloader *d;
    net_peer_ops ops;
    void *user;
    platform_cancel *cancel;
    platform_cancel_waker waker;
    bool waker_added;

    /* lock: requests from other threads, and the end of unregistration */
    bool wake_req;
    bool timer_req; /* net_peer_wake_after from another thread: due at timer_req_ns */
    int64_t timer_req_ns;
    bool prio_req;
    int prio_value;
    bool unregister_req;
    void (*done)(void *user);
    void *done_user;
    bool async;
    bool detached;
    struct net_peer *new_next; /* d->new_peers */

    /* loop */
    int priority;
    bool poll_again;
    bool has_timer; /* net_peer_wake_after: poll again at timer_ns */
    int64_t timer_ns;
    bool finished_polling; /* NET_POLL_DONE */
    bool unregistering;
    unsigned outstanding;         /* accepted commands not yet completed */
    struct net_peer *prev, *next; /* d->peers */
};

struct net_listener {
    net_sample_fn fn;
    void *user;
    struct net_listener *next;
};

struct net_batch {
    kth_downloader *d;
    net_peer *peer;
    unsigned count;
};

/* The most listeners called for one sample (more are registered but skipped). */
#define NET_MAX_LISTENERS 16

struct kth_downloader {
    atomic_int refs;
    uint64_t id;
    const platform_clock *clock;
    double (*random)(void *user);
    void *random_user;
    uint64_t random_state;

    /* Options, normalised (read-only after creation). */
    unsigned max_in_flight, max_per_host, max_redirects, max_retries;
    char *user_agent, *cookies, *proxy, *ca_file, *ca_path;
    bool has_proxy, tls_insecure, http2_prior_knowledge;
    bool h2c_reuse_broken; /* net_h2c_reuse_broken() */
    struct curl_slist *global_headers;
    /* Status lines taken as "HTTP/1.0 200 OK": SHOUTcast v1 answers "ICY 200 OK". */
    struct curl_slist *ok_aliases;
    int64_t connect_timeout_ms, stall_ns, retry_base_ns, retry_cap_ns, retry_after_max_ms;
    int64_t watchdog_ns;
    uint64_t stall_window_bytes;   /* stall_min_bytes_per_second over the stall window */
    uint64_t waiting_window_bytes; /* waiting_min_bytes_per_second over the stall window */
    kth_bus *bus;

    CURLM *multi;
    platform_thread thread;
    atomic_bool poke;        /* a wake-up is pending (avoids redundant curl_multi_wakeup) */
    atomic_bool cancel_scan; /* a token may have been cancelled: look at every command */

    platform_mutex lock; /* leaf lock; guards the "lock" fields below and in peers */
    platform_cond cond;  /* unregistration, barriers, listener calls */
    net_cmd *inbox, **inbox_tail;
    net_peer *new_peers;
    bool stopping;  /* the last reference is gone */
    bool self_free; /* ... and it went on the loop thread */
    bool closed;    /* no more submissions */
    net_listener *listeners;
    bool calling_listeners;
    uint64_t turn_begun, turn_done;
    kth_downloader_stats stats;
    bool has_next_retry;
    int64_t next_retry_ns;
    int64_t next_due_ns; /* net_downloader_next_due */
    uint64_t next_id;

    /* loop */
    net_peer *peers;
    net_sched sched;
    net_hosts hosts;
    net_h2c_hosts h2c_hosts;
    net_rates rates; /* lock */
    net_cmd *running;
    net_cmd *waiting;
    unsigned n_running, n_waiting;
    CURL **easy_pool;
    unsigned n_easy_pool;
    unsigned char *stage_pool[NET_STAGE_POOL]; /* empty stages, for the next turns */
    unsigned n_stage_pool;
    uint64_t next_seq;
    int64_t last_progress_ns;
    bool watchdog_fired;
    kth_downloader_stats counts;
};

/* downloader.c */
void net_poke(kth_downloader *d);
int64_t net_now(kth_downloader *d);
void net_publish(kth_downloader *d, kth_event_kind kind, const net_cmd *cmd, kth_status status,
                 int64_t duration_ns);
void net_deliver_sample(kth_downloader *d, net_cmd *cmd, const net_sample *s);
void net_destroy(kth_downloader *d);

/* loop.c */
void *net_loop_main(void *arg);

/* command.c */
kth_status net_command_new(kth_downloader *d, net_peer *peer, const net_fetch_spec *spec,
                           net_cmd **out);
void net_command_free(net_cmd *cmd);
/* Takes a new command (state INBOX) into the queue: event, waker, sched. */
void net_command_enqueue(net_cmd *cmd);
bool net_command_cancelled(const net_cmd *cmd);
/* Delivers the one completion, updates counters, frees the command. The command must be out of
 * every list and curl. */
void net_command_finish(net_cmd *cmd, kth_status status);
/* Puts a command back in the queue (from RETRY_WAIT or a new acceptance). */
void net_command_queue(net_cmd *cmd);
/* Fails with a formatted message. */
void net_command_fail(net_cmd *cmd, kth_status status, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* transfer.c */
/* Starts an attempt (the command was unqueued). On failure finishes the command. */
void net_transfer_start(net_cmd *cmd);
/* The attempt ended in curl with `code` (the handle is still in the multi). Decides: finish,
 * or schedule a retry. */
void net_transfer_done(net_cmd *cmd, CURLcode code);
/* Stops a running attempt now (cancelled, stalled): marks it aborted and ends it. */
void net_transfer_abort(net_cmd *cmd, kth_status status, bool retryable, const char *why);
/* Releases the easy handle and attempt state after removal from the multi. */
void net_transfer_release(net_cmd *cmd);
/* Hands the staged bytes of every running attempt to their writers; an attempt whose writer
 * refuses them ends (the writer's verdict). Once per loop turn, after curl ran. */
void net_transfer_flush_all(kth_downloader *d);

/* h2c.c */
/* True for the libcurl versions (7.88.x) whose HTTP/2 with prior knowledge cannot reuse a
 * connection. */
bool net_h2c_reuse_broken(void);
void net_h2c_hosts_free(net_h2c_hosts *h);
/* Frees what the rate memory holds. */
void net_rates_free(net_rates *r);
/* The command's URL is http:// and the downloader speaks HTTP/2 with prior knowledge. */
bool net_h2c_wanted(const kth_downloader *d, const net_cmd *cmd);
/* False while another attempt opens the host's cleartext HTTP/2 connection (libcurl 7.88). */
bool net_h2c_may_start(kth_downloader *d, const net_cmd *cmd);
/* Sets the HTTP version (and, for an opener, a fresh connection) on an attempt that
 * net_h2c_wanted; returns curl's answer. */
CURLcode net_h2c_configure(net_cmd *cmd);
/* The attempt is in curl: an opener marks its host OPENING. */
void net_h2c_started(net_cmd *cmd);
/* Learns from the attempt's handle (response started, or attempt over) whether the host's
 * connection lives. */
void net_h2c_learn(net_cmd *cmd);
/* The attempt failed because the connection it was to reuse was gone: the host's connection is
 * forgotten, the miss counted, and the caller queues the command again. Call before the handle
 * is released. */
bool net_h2c_missed(net_cmd *cmd, CURLcode code);

#endif
