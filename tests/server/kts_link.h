/*
 * kts_link.h — a shaped network in front of the test server, on a clock the test moves.
 *
 * Once a link is attached, every request that arrives goes through it:
 *   - its headers wait until `latency_ms` of link time have passed since it arrived;
 *   - its body bytes then share one link with every other body in progress: the link carries
 *     rate(t) * scale Mbit/s, where rate follows a bandwidth trace, and divides what it carries
 *     equally among the bodies that want bytes (a body that needs less than its share leaves
 *     the rest to the others), as TCP flows on one bottleneck roughly do.
 * The trace is given as rows (time_s[i], mbps[i]): row i >= 1 sets the rate of the interval
 * [time_s[i-1], time_s[i]); row 0 only fixes the start. When it runs out it starts again from
 * the beginning (the format of bandwidth traces for ABR simulation: `time mbit/s` per line).
 *
 * Link time never moves by itself: the test moves it with kts_link_advance, usually together
 * with the virtual clock the client runs on. Between two moves a body may send exactly the
 * bytes the link carried for it over the interval, so a 90 s session can be played in much
 * less than a second of real time. The bytes a move allows reach the socket a little later
 * (another thread sends them): kts_link_settle waits until they have. kts_link_next_event
 * tells when something next happens on the link (a latency ends, a body gets its first packet
 * or its last byte) so a test can move the clock from event to event rather than in small
 * steps.
 *
 * A body whose client has gone (the connection closed while it waited for the link) stops
 * taking a share at the next move or settle.
 *
 * Thread-safety: every function may be called from any thread; moves and settles are meant to
 * come from one driving thread. The link lives until the server stops.
 */
#ifndef KTS_LINK_H
#define KTS_LINK_H

#include "testserver.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kts_link_config {
    const double *time_s; /* count rows, strictly increasing (seconds) */
    const double *mbps;   /* count rows, >= 0; mbps[0] is not used */
    size_t count;         /* >= 2, with some bytes carried over the whole trace */
    double scale;         /* multiplies every rate (> 0) */
    uint32_t latency_ms;  /* from a request's arrival to its headers */
    int64_t start_ns;     /* the link time at which the trace starts */
} kts_link_config;

/* Attaches a link to srv (the trace is copied); requests that arrive from now on go through it.
 * Link time is start_ns until the first move. Returns KTH_OK, KTH_ERR_INVALID_ARG for a bad
 * trace or scale, KTH_ERR_STATE when srv has a link already, KTH_ERR_NO_MEMORY. */
int kts_link_attach(kts_server *srv, const kts_link_config *config);

/* Moves link time to now_ns (never backwards: an earlier time is KTH_ERR_INVALID_ARG): the
 * bytes the link carried since the last move are shared among the bodies that were waiting for
 * them, and requests whose latency ended get their headers. KTH_ERR_STATE without a link. */
int kts_link_advance(kts_server *srv, int64_t now_ns);

/* Blocks until every request on the link waits for link time (its latency, or bytes the link
 * has not carried yet) or has ended: the bytes allowed so far have been handed to the sockets.
 * KTH_ERR_TIMEOUT after timeout_ms of real time, KTH_ERR_STATE without a link. */
int kts_link_settle(kts_server *srv, int timeout_ms);

/* The next link time at which something happens if nothing new arrives: a latency ends, or at
 * the present rates and shares a body gets its first packet (1448 bytes) or its last byte.
 * INT64_MAX when nothing waits on the link (or there is no link). Exact only after a settle. */
int64_t kts_link_next_event(kts_server *srv);

/* Holds the bodies of requests for `path` (as the server logs it) that arrive from now on to
 * `bytes_per_s` of link time once `after` of their bytes have been carried, whatever their
 * share would be: 0 stops them there for good (the connection stays open), a small rate makes
 * them trickle. The rest of the link is shared as before. Returns KTH_OK, KTH_ERR_INVALID_ARG,
 * KTH_ERR_STATE without a link, KTH_ERR_NO_MEMORY. */
int kts_link_limit(kts_server *srv, const char *path, uint64_t after, double bytes_per_s);

typedef struct kts_link_stats {
    int64_t now_ns;   /* link time */
    uint64_t carried; /* body bytes the link has allowed, in all */
    unsigned waiting; /* requests in their latency */
    unsigned flowing; /* bodies taking a share of the link */
    unsigned gone;    /* bodies dropped because their client went */
} kts_link_stats;

/* Fills *out; all zero without a link. */
void kts_link_get_stats(kts_server *srv, kts_link_stats *out);

/* Bytes the trace of config carries between link times from_ns and to_ns (pure: the figure
 * the link shares out). */
double kts_link_capacity(const kts_link_config *config, int64_t from_ns, int64_t to_ns);

#endif /* KTS_LINK_H */
