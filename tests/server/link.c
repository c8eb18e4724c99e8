/*
 * link.c — the shaped link (kts_link.h): a bandwidth trace shared among the bodies in progress,
 * in link time that only the test moves.
 *
 * Each request that arrives while a link is attached gets a flow. A flow waits for its latency
 * (in ts_respond), then takes credit from the link in the body reader: it sends only bytes the
 * link has carried for it. A move shares the bytes carried over the interval equally among the
 * flows that want some, capping each at what it still needs (water-filling, which is what equal
 * sharing over the interval gives when some flows end inside it). All of it runs under the
 * server's one lock; flows wait on `holds`, the settling test on `events`.
 */
#include "kts_link.h"
#include "ts_internal.h"

#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

/* Credit below this fraction of a byte is rounding, not bytes owed. */
#define TS_CREDIT_SLACK 1e-3
/* A body's first bytes come as one packet: the first event of a flow is when the link has
 * carried that much for it, so its first byte is not seen at the moment of its last. */
#define TS_FIRST_PACKET 1448.0

struct ts_flow {
    struct ts_flow *next;
    struct ts_flow *prev;
    int64_t due_ns;  /* arrival + latency, link time */
    bool started;    /* past its latency: takes a share */
    bool waiting;    /* its thread waits for link time */
    bool gone;       /* its client went: takes nothing more */
    bool left_known; /* the body reader has said how much is left */
    bool fed;        /* the link has given it credit */
    uint64_t left;   /* body bytes not yet handed to the socket */
    double credit;   /* bytes carried for it and not yet sent */
    double given;    /* bytes carried for it in all */
    bool limited;    /* kts_link_limit: past `after` bytes, at most `rate` bytes/s */
    uint64_t after;
    double rate;
    double room; /* what its limit lets it take in the interval being shared */
    int fd;      /* the connection's socket, -1 until known */
};

typedef struct ts_link_limit {
    char *path;
    uint64_t after;
    double rate;
} ts_link_limit;

struct ts_link {
    double *time_s;
    double *mbps;
    double *cum; /* bytes carried from time_s[0] to time_s[i] */
    size_t count;
    double scale;
    int64_t latency_ns;
    int64_t start_ns;
    int64_t now_ns;
    uint64_t carried;
    unsigned gone;
    ts_flow *flows;
    ts_link_limit *limits;
    size_t limit_count;
};

/* ---- the trace ---------------------------------------------------------------------------- */

static double bytes_per_s(const double *mbps, size_t i, double scale)
{
    return mbps[i] * scale * 1e6 / 8.0;
}

static bool trace_valid(const kts_link_config *c)
{
    if (c == NULL || c->time_s == NULL || c->mbps == NULL || c->count < 2 || !(c->scale > 0) ||
        !isfinite(c->scale)) {
        return false;
    }
    double bits = 0;
    for (size_t i = 1; i < c->count; i++) {
        if (!(c->time_s[i] > c->time_s[i - 1]) || !isfinite(c->time_s[i]) || !(c->mbps[i] >= 0) ||
            !isfinite(c->mbps[i])) {
            return false;
        }
        bits += c->mbps[i] * (c->time_s[i] - c->time_s[i - 1]);
    }
    return bits > 0 && isfinite(c->time_s[0]);
}

/* Bytes carried from the start of the trace to `x` seconds after it, with cum as built by
 * link_attach (or NULL: computed here, for the pure kts_link_capacity). */
static double carried_until(const double *t, const double *mbps, const double *cum, size_t count,
                            double scale, double x)
{
    if (x <= 0) {
        return 0;
    }
    double period = t[count - 1] - t[0];
    double whole = 0;
    if (cum != NULL) {
        whole = cum[count - 1];
    } else {
        for (size_t i = 1; i < count; i++) {
            whole += bytes_per_s(mbps, i, scale) * (t[i] - t[i - 1]);
        }
    }
    double rounds = floor(x / period);
    double y = x - rounds * period;
    double sum = rounds * whole;
    for (size_t i = 1; i < count; i++) {
        double from = t[i - 1] - t[0];
        double to = t[i] - t[0];
        double rate = bytes_per_s(mbps, i, scale);
        if (y < to) {
            return sum + (cum != NULL ? cum[i - 1] : 0) + rate * (y - from);
        }
        if (cum == NULL) {
            sum += rate * (to - from);
        }
    }
    return sum + (cum != NULL ? cum[count - 1] : 0);
}

static double link_carried_until(const ts_link *l, int64_t t_ns)
{
    return carried_until(l->time_s, l->mbps, l->cum, l->count, l->scale,
                         (double)(t_ns - l->start_ns) / 1e9);
}

/* The earliest link time by which `bytes` more than at from_ns have been carried. */
static int64_t time_for_bytes(const ts_link *l, int64_t from_ns, double bytes)
{
    double target = link_carried_until(l, from_ns) + bytes;
    double whole = l->cum[l->count - 1];
    double period = l->time_s[l->count - 1] - l->time_s[0];
    double rounds = floor(target / whole);
    double rest = target - rounds * whole;
    double x = rounds * period;
    for (size_t i = 1; i < l->count; i++) {
        if (l->cum[i] >= rest && l->cum[i] > l->cum[i - 1]) {
            x += l->time_s[i - 1] - l->time_s[0] +
                 (rest - l->cum[i - 1]) / bytes_per_s(l->mbps, i, l->scale);
            break;
        }
    }
    int64_t t = l->start_ns + (int64_t)ceil(x * 1e9);
    return t > from_ns ? t : from_ns + 1000; /* never a step of nothing */
}

double kts_link_capacity(const kts_link_config *config, int64_t from_ns, int64_t to_ns)
{
    if (!trace_valid(config) || to_ns <= from_ns) {
        return 0;
    }
    double a = (double)(from_ns - config->start_ns) / 1e9;
    double b = (double)(to_ns - config->start_ns) / 1e9;
    return carried_until(config->time_s, config->mbps, NULL, config->count, config->scale, b) -
           carried_until(config->time_s, config->mbps, NULL, config->count, config->scale, a);
}

/* ---- attaching --------------------------------------------------------------------------- */

void ts_link_free(ts_link *l)
{
    if (l == NULL) {
        return;
    }
    while (l->flows != NULL) {
        ts_flow *f = l->flows;
        l->flows = f->next;
        free(f);
    }
    for (size_t i = 0; i < l->limit_count; i++) {
        free(l->limits[i].path);
    }
    free(l->limits);
    free(l->time_s);
    free(l->mbps);
    free(l->cum);
    free(l);
}

int kts_link_attach(kts_server *srv, const kts_link_config *config)
{
    if (srv == NULL || !trace_valid(config)) {
        return KTH_ERR_INVALID_ARG;
    }
    ts_link *l = calloc(1, sizeof *l);
    size_t n = config->count;
    if (l == NULL || (l->time_s = malloc(n * sizeof *l->time_s)) == NULL ||
        (l->mbps = malloc(n * sizeof *l->mbps)) == NULL ||
        (l->cum = malloc(n * sizeof *l->cum)) == NULL) {
        ts_link_free(l);
        return KTH_ERR_NO_MEMORY;
    }
    memcpy(l->time_s, config->time_s, n * sizeof *l->time_s);
    memcpy(l->mbps, config->mbps, n * sizeof *l->mbps);
    l->count = n;
    l->scale = config->scale;
    l->latency_ns = (int64_t)config->latency_ms * 1000000;
    l->start_ns = l->now_ns = config->start_ns;
    l->cum[0] = 0;
    for (size_t i = 1; i < n; i++) {
        l->cum[i] =
            l->cum[i - 1] + bytes_per_s(l->mbps, i, l->scale) * (l->time_s[i] - l->time_s[i - 1]);
    }
    pthread_mutex_lock(&srv->lock);
    int rc = KTH_ERR_STATE;
    if (srv->link == NULL) {
        srv->link = l;
        l = NULL;
        rc = KTH_OK;
    }
    pthread_mutex_unlock(&srv->lock);
    ts_link_free(l);
    return rc;
}

/* ---- flows (the request's side) ---------------------------------------------------------- */

void ts_link_arrive(kts_server *srv, ts_request *req)
{
    ts_link *l = srv->link;
    if (l == NULL) {
        return;
    }
    ts_flow *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return; /* served unshaped; the settle cannot see it either */
    }
    f->fd = -1;
    for (size_t i = 0; i < l->limit_count; i++) {
        if (strcmp(l->limits[i].path, req->entry->path) == 0) {
            f->limited = true; /* the last one set for the path wins */
            f->after = l->limits[i].after;
            f->rate = l->limits[i].rate;
        }
    }
    f->due_ns = l->now_ns + l->latency_ns;
    f->started = f->due_ns <= l->now_ns;
    f->next = l->flows;
    if (l->flows != NULL) {
        l->flows->prev = f;
    }
    l->flows = f;
    req->flow = f;
}

void ts_link_leave(kts_server *srv, ts_request *req)
{
    ts_flow *f = req->flow;
    if (f == NULL) {
        return;
    }
    req->flow = NULL;
    if (f->prev != NULL) {
        f->prev->next = f->next;
    } else {
        srv->link->flows = f->next;
    }
    if (f->next != NULL) {
        f->next->prev = f->prev;
    }
    free(f);
    pthread_cond_broadcast(&srv->events); /* one fewer to settle */
}

bool ts_link_latency(ts_request *req, struct MHD_Connection *conn)
{
    kts_server *srv = req->srv;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    pthread_mutex_lock(&srv->lock);
    ts_flow *f = req->flow;
    if (f != NULL) {
        f->fd = info != NULL ? info->connect_fd : -1;
        f->waiting = true;
        pthread_cond_broadcast(&srv->events);
        while (!srv->stopping && !f->started && !f->gone) {
            ts_cond_wait_until(&srv->holds, &srv->lock, -1);
        }
        f->waiting = false;
    }
    bool running = !srv->stopping && (f == NULL || !f->gone);
    pthread_mutex_unlock(&srv->lock);
    return running;
}

bool ts_link_take(ts_request *req, uint64_t pos, uint64_t end, uint64_t *n)
{
    kts_server *srv = req->srv;
    pthread_mutex_lock(&srv->lock);
    ts_flow *f = req->flow;
    bool running = !srv->stopping;
    if (f != NULL) {
        f->left = end > pos ? end - pos : 0;
        f->left_known = true;
        while (!srv->stopping && !f->gone && floor(f->credit + TS_CREDIT_SLACK) < 1) {
            f->waiting = true;
            pthread_cond_broadcast(&srv->events);
            ts_cond_wait_until(&srv->holds, &srv->lock, -1);
        }
        f->waiting = false;
        double allowed = floor(f->credit + TS_CREDIT_SLACK);
        if (*n > (uint64_t)allowed) {
            *n = (uint64_t)allowed;
        }
        f->credit = f->credit > (double)*n ? f->credit - (double)*n : 0;
        f->left -= *n < f->left ? *n : f->left;
        running = !srv->stopping && !f->gone;
    }
    pthread_mutex_unlock(&srv->lock);
    return running;
}

/* ---- the driver's side ------------------------------------------------------------------- */

/* Marks the waiting flows whose client closed its connection. Lock held. */
static void find_gone(kts_server *srv, ts_link *l)
{
    bool any = false;
    for (ts_flow *f = l->flows; f != NULL; f = f->next) {
        if (f->gone || !f->waiting || f->fd < 0) {
            continue;
        }
        struct pollfd p = {.fd = f->fd, .events = POLLIN | POLLRDHUP};
        if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
            f->gone = true;
            l->gone++;
            any = true;
        }
    }
    if (any) {
        pthread_cond_broadcast(&srv->holds);
    }
}

/* What a flow could still take: its bytes not yet carried (unbounded while unknown). */
static double flow_want(const ts_flow *f)
{
    if (!f->started || f->gone) {
        return 0;
    }
    if (!f->left_known) {
        return INFINITY;
    }
    double want = (double)f->left - f->credit;
    if (f->limited && f->room < want) {
        want = f->room;
    }
    return want > TS_CREDIT_SLACK ? want : 0;
}

/* Shares `bytes`, carried over `seconds`, among the flows that want some, equally, each capped
 * at its want (and a limited flow at what its limit lets through in that time). */
static void share(ts_link *l, double bytes, double seconds)
{
    for (ts_flow *f = l->flows; f != NULL; f = f->next) {
        if (f->limited) {
            double before = f->given < (double)f->after ? (double)f->after - f->given : 0;
            f->room = before + f->rate * seconds;
        }
    }
    for (;;) {
        unsigned n = 0;
        double least = INFINITY;
        for (ts_flow *f = l->flows; f != NULL; f = f->next) {
            double w = flow_want(f);
            if (w > 0) {
                n++;
                least = w < least ? w : least;
            }
        }
        if (n == 0 || bytes <= TS_CREDIT_SLACK) {
            return;
        }
        double each = bytes / n < least ? bytes / n : least;
        for (ts_flow *f = l->flows; f != NULL; f = f->next) {
            if (flow_want(f) > 0) {
                f->credit += each;
                f->given += each;
                f->room -= f->limited ? each : 0;
                f->fed = true;
            }
        }
        l->carried += (uint64_t)llround(each * n);
        bytes -= each * n;
        if (each < least) {
            return; /* everything shared, nobody capped */
        }
    }
}

int kts_link_advance(kts_server *srv, int64_t now_ns)
{
    if (srv == NULL) {
        return KTH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&srv->lock);
    ts_link *l = srv->link;
    int rc = l == NULL ? KTH_ERR_STATE : now_ns < l->now_ns ? KTH_ERR_INVALID_ARG : KTH_OK;
    if (rc == KTH_OK) {
        find_gone(srv, l);
        share(l, link_carried_until(l, now_ns) - link_carried_until(l, l->now_ns),
              (double)(now_ns - l->now_ns) / 1e9);
        l->now_ns = now_ns;
        for (ts_flow *f = l->flows; f != NULL; f = f->next) {
            if (!f->started && f->due_ns <= now_ns) {
                f->started = true;
            }
        }
        pthread_cond_broadcast(&srv->holds);
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

/* True when no flow's thread has work it may do now. Lock held. */
static bool settled(const ts_link *l)
{
    for (const ts_flow *f = l->flows; f != NULL; f = f->next) {
        if (f->gone) {
            continue;
        }
        if (!f->waiting) {
            return false; /* between waits: sending, or on its way to the next */
        }
        if (f->started && f->left_known && floor(f->credit + TS_CREDIT_SLACK) >= 1) {
            return false; /* woken with credit and not yet running */
        }
        if (!f->left_known && f->started) {
            return false; /* past its latency and not yet in its body */
        }
    }
    return true;
}

int kts_link_settle(kts_server *srv, int timeout_ms)
{
    if (srv == NULL) {
        return KTH_ERR_INVALID_ARG;
    }
    int64_t deadline = ts_now_ns() + (int64_t)timeout_ms * 1000000;
    pthread_mutex_lock(&srv->lock);
    int rc = srv->link == NULL ? KTH_ERR_STATE : KTH_OK;
    while (rc == KTH_OK && !srv->stopping) {
        find_gone(srv, srv->link);
        if (settled(srv->link)) {
            break;
        }
        /* A closed connection does not wake anyone: look again now and then. */
        int64_t soon = ts_now_ns() + 2000000;
        if (!ts_cond_wait_until(&srv->events, &srv->lock, soon < deadline ? soon : deadline) &&
            ts_now_ns() >= deadline) {
            rc = settled(srv->link) ? KTH_OK : KTH_ERR_TIMEOUT;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

int64_t kts_link_next_event(kts_server *srv)
{
    int64_t next = INT64_MAX;
    if (srv == NULL) {
        return next;
    }
    pthread_mutex_lock(&srv->lock);
    ts_link *l = srv->link;
    if (l != NULL) {
        unsigned n = 0;
        double least = INFINITY;
        for (ts_flow *f = l->flows; f != NULL; f = f->next) {
            if (!f->gone && !f->started && f->due_ns < next) {
                next = f->due_ns;
            }
            double w = f->left_known && f->started && !f->gone ? (double)f->left - f->credit : 0;
            if (f->limited && f->given >= (double)f->after) {
                w = 0; /* at its own pace past its limit point: no event of its own */
            } else if (f->limited && (double)f->after - f->given < w) {
                w = (double)f->after - f->given; /* reaching that point is one */
            }
            if (w > TS_CREDIT_SLACK) {
                n++;
                w = !f->fed && w > TS_FIRST_PACKET ? TS_FIRST_PACKET : w;
                least = w < least ? w : least;
            }
        }
        if (n > 0) {
            int64_t end = time_for_bytes(l, l->now_ns, least * n);
            next = end < next ? end : next;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return next;
}

int kts_link_limit(kts_server *srv, const char *path, uint64_t after, double bytes_per_s)
{
    if (srv == NULL || path == NULL || path[0] != '/' || !(bytes_per_s >= 0) ||
        !isfinite(bytes_per_s)) {
        return KTH_ERR_INVALID_ARG;
    }
    char *copy = strdup(path);
    if (copy == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    pthread_mutex_lock(&srv->lock);
    ts_link *l = srv->link;
    int rc = l == NULL ? KTH_ERR_STATE : KTH_OK;
    if (rc == KTH_OK) {
        ts_link_limit *grown = realloc(l->limits, (l->limit_count + 1) * sizeof *grown);
        if (grown == NULL) {
            rc = KTH_ERR_NO_MEMORY;
        } else {
            l->limits = grown;
            l->limits[l->limit_count++] = (ts_link_limit){copy, after, bytes_per_s};
            copy = NULL;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    free(copy);
    return rc;
}

void kts_link_get_stats(kts_server *srv, kts_link_stats *out)
{
    memset(out, 0, sizeof *out);
    if (srv == NULL) {
        return;
    }
    pthread_mutex_lock(&srv->lock);
    const ts_link *l = srv->link;
    if (l != NULL) {
        out->now_ns = l->now_ns;
        out->carried = l->carried;
        out->gone = l->gone;
        for (const ts_flow *f = l->flows; f != NULL; f = f->next) {
            out->waiting += !f->gone && !f->started;
            out->flowing += f->started && !f->gone;
        }
    }
    pthread_mutex_unlock(&srv->lock);
}
