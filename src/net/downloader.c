/*
 * downloader.c — the downloader's lifetime and the calls other threads make.
 *
 * Other threads never touch the loop's structures: they put requests (new commands, new peers,
 * wake/priority/unregister flags) under d->lock and poke the loop (net_poke), which picks them
 * up at the start of its next turn. d->lock is a leaf: nothing is called with it held.
 *
 * Lifetime: d->refs counts the application's reference and one per registered peer. When it
 * drops to zero the loop is told to stop; it cancels what is left, and the thread that dropped
 * the last reference joins it and frees everything — unless that thread is the loop itself (a
 * callback freed the downloader), in which case the loop frees the downloader as it exits.
 */
#include "net/net_internal.h"

#include <kithara/version.h>

#include "net/http.h"
#include "net/retry.h"
#include "platform/log.h"
#include "platform/options.h"
#include "platform/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_IN_FLIGHT      6
#define DEFAULT_MAX_REDIRECTS      10
#define DEFAULT_CONNECT_MS         10000
#define DEFAULT_STALL_MS           20000
#define DEFAULT_WAITING_MIN_RATE   2000
#define DEFAULT_RETRIES            4
#define DEFAULT_RETRY_BASE_MS      250
#define DEFAULT_RETRY_CAP_MS       8000
#define DEFAULT_RETRY_AFTER_MAX_MS 30000
#define DEFAULT_WATCHDOG_MS        30000
#define MAX_LIMIT                  1024

static atomic_uint_fast64_t next_downloader_id = 1;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_code = CURLE_OK;

/* libcurl's global state is set up once per process and never torn down: other parts of the
 * program may use libcurl too, and its global cleanup is not safe while they do. */
static void curl_init_once(void)
{
    curl_init_code = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void kth_downloader_options_init(kth_downloader_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static bool dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return true;
    *out = platform_strdup(s);
    return *out != NULL;
}

static double default_random(void *user)
{
    return net_random_next(user);
}

void net_destroy(kth_downloader *d)
{
    for (unsigned i = 0; i < d->n_easy_pool; i++)
        curl_easy_cleanup(d->easy_pool[i]);
    platform_free(d->easy_pool);
    for (unsigned i = 0; i < d->n_stage_pool; i++)
        platform_free(d->stage_pool[i]);
    if (d->multi)
        curl_multi_cleanup(d->multi);
    net_hosts_free(&d->hosts);
    net_h2c_hosts_free(&d->h2c_hosts);
    net_rates_free(&d->rates);
    for (net_listener *l = d->listeners, *next; l; l = next) {
        next = l->next;
        platform_free(l);
    }
    curl_slist_free_all(d->global_headers);
    curl_slist_free_all(d->ok_aliases);
    platform_free(d->user_agent);
    platform_free(d->cookies);
    platform_free(d->proxy);
    platform_free(d->ca_file);
    platform_free(d->ca_path);
    kth_bus_unref(d->bus);
    platform_cond_destroy(&d->cond);
    platform_mutex_destroy(&d->lock);
    platform_free(d);
}

/* The bytes a rate (per second) gives over a window of ms milliseconds; at least 1. */
static uint64_t window_bytes(uint64_t rate, int64_t ms)
{
    uint64_t window = rate > UINT64_MAX / (uint64_t)ms ? UINT64_MAX : rate * (uint64_t)ms / 1000;
    return window ? window : 1;
}

static kth_status apply_options(kth_downloader *d, const kth_downloader_options *o, char *err,
                                size_t errlen)
{
    if (o->max_in_flight > MAX_LIMIT || o->max_per_host > MAX_LIMIT) {
        set_err(err, errlen, "downloader: max_in_flight and max_per_host must be at most 1024");
        return KTH_ERR_INVALID_ARG;
    }
    if (o->connect_timeout_ms < 0 || o->stall_timeout_ms < 0 || o->retry_base_ms < 0 ||
        o->retry_cap_ms < 0 || o->retry_after_max_ms < 0 || o->max_retries > 1000) {
        set_err(err, errlen, "downloader: negative time or too many retries in the options");
        return KTH_ERR_INVALID_ARG;
    }
    d->max_in_flight = o->max_in_flight ? o->max_in_flight : DEFAULT_MAX_IN_FLIGHT;
    d->max_per_host = o->max_per_host ? o->max_per_host : DEFAULT_MAX_IN_FLIGHT;
    if (d->max_per_host > d->max_in_flight)
        d->max_per_host = d->max_in_flight;
    d->max_redirects = o->max_redirects ? o->max_redirects : DEFAULT_MAX_REDIRECTS;
    d->max_retries = o->max_retries < 0    ? 0
                     : o->max_retries == 0 ? DEFAULT_RETRIES
                                           : (unsigned)o->max_retries;
    d->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_MS;
    int64_t stall_ms = o->stall_timeout_ms ? o->stall_timeout_ms : DEFAULT_STALL_MS;
    if (stall_ms > INT64_MAX / 1000000)
        stall_ms = INT64_MAX / 1000000;
    d->stall_ns = stall_ms * 1000000;
    d->stall_window_bytes =
        window_bytes(o->stall_min_bytes_per_second ? o->stall_min_bytes_per_second : 1, stall_ms);
    d->waiting_window_bytes =
        window_bytes(o->waiting_min_bytes_per_second ? o->waiting_min_bytes_per_second
                                                     : DEFAULT_WAITING_MIN_RATE,
                     stall_ms);
    int64_t base = o->retry_base_ms ? o->retry_base_ms : DEFAULT_RETRY_BASE_MS;
    int64_t cap = o->retry_cap_ms ? o->retry_cap_ms : DEFAULT_RETRY_CAP_MS;
    if (base > INT64_MAX / 4000000 || cap > INT64_MAX / 4000000) {
        set_err(err, errlen, "downloader: retry times too large");
        return KTH_ERR_INVALID_ARG;
    }
    d->retry_base_ns = base * 1000000;
    d->retry_cap_ns = (cap < base ? base : cap) * 1000000;
    d->retry_after_max_ms =
        o->retry_after_max_ms ? o->retry_after_max_ms : DEFAULT_RETRY_AFTER_MAX_MS;
    int64_t wd = o->watchdog_ms ? o->watchdog_ms : DEFAULT_WATCHDOG_MS;
    d->watchdog_ns = wd < 0 ? -1 : (wd > INT64_MAX / 1000000 ? INT64_MAX : wd * 1000000);
    d->tls_insecure = o->tls_insecure;
    d->http2_prior_knowledge = o->http2_prior_knowledge;
    d->h2c_reuse_broken = net_h2c_reuse_broken();
    d->has_proxy = o->proxy != NULL;

    char ua[64];
    snprintf(ua, sizeof ua, "kithara/%s", KTH_VERSION_STRING);
    if (!dup_opt(o->user_agent ? o->user_agent : ua, &d->user_agent) ||
        !dup_opt(o->cookies, &d->cookies) || !dup_opt(o->proxy, &d->proxy) ||
        !dup_opt(o->ca_file, &d->ca_file) || !dup_opt(o->ca_path, &d->ca_path)) {
        set_err(err, errlen, "downloader: out of memory");
        return KTH_ERR_NO_MEMORY;
    }
    for (const char *const *h = o->headers; h && *h; h++) {
        struct curl_slist *l = curl_slist_append(d->global_headers, *h);
        if (!l) {
            set_err(err, errlen, "downloader: out of memory");
            return KTH_ERR_NO_MEMORY;
        }
        d->global_headers = l;
    }
    if (!(d->ok_aliases = curl_slist_append(NULL, "ICY 200 OK"))) {
        set_err(err, errlen, "downloader: out of memory");
        return KTH_ERR_NO_MEMORY;
    }
    if (o->bus)
        d->bus = kth_bus_ref(o->bus);
    return KTH_OK;
}

kth_status net_downloader_new(const kth_downloader_options *opts, const net_downloader_hooks *hooks,
                              kth_downloader **out, char *err, size_t errlen)
{
    if (!out) {
        set_err(err, errlen, "downloader: no place for the result");
        return KTH_ERR_INVALID_ARG;
    }
    *out = NULL;
    kth_downloader_options given;
    kth_status st = platform_options_copy(&given, sizeof given, opts,
                                          PLATFORM_OPTIONS_END(kth_downloader_options, bus));
    if (st != KTH_OK) {
        set_err(err, errlen,
                st == KTH_ERR_UNSUPPORTED
                    ? "downloader: the options set a field this kithara does not know"
                    : "downloader: the options' size is not a kth_downloader_options size");
        return st;
    }
    opts = &given;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_code != CURLE_OK) {
        set_err(err, errlen, "downloader: libcurl could not be initialised");
        return KTH_ERR_INTERNAL;
    }
    kth_downloader *d = platform_calloc(1, sizeof *d);
    if (!d) {
        set_err(err, errlen, "downloader: out of memory");
        return KTH_ERR_NO_MEMORY;
    }
    if (platform_mutex_init(&d->lock) != KTH_OK) {
        platform_free(d);
        set_err(err, errlen, "downloader: out of memory");
        return KTH_ERR_NO_MEMORY;
    }
    if (platform_cond_init(&d->cond) != KTH_OK) {
        platform_mutex_destroy(&d->lock);
        platform_free(d);
        set_err(err, errlen, "downloader: out of memory");
        return KTH_ERR_NO_MEMORY;
    }
    atomic_init(&d->refs, 1);
    atomic_init(&d->poke, false);
    atomic_init(&d->cancel_scan, false);
    d->id = atomic_fetch_add(&next_downloader_id, 1);
    d->inbox_tail = &d->inbox;
    d->next_id = 1;
    d->next_due_ns = INT64_MAX;
    net_sched_init(&d->sched);
    net_hosts_init(&d->hosts);
    d->clock = hooks && hooks->clock ? hooks->clock : platform_clock_system();
    d->random = hooks && hooks->random ? hooks->random : default_random;
    d->random_user = hooks && hooks->random ? hooks->random_user : &d->random_state;
    d->random_state = (uint64_t)platform_monotonic_ns() ^ (d->id * 0x9E3779B97F4A7C15ull);

    st = apply_options(d, opts, err, errlen);
    if (st != KTH_OK) {
        net_destroy(d);
        return st;
    }
    d->easy_pool = platform_calloc(d->max_in_flight, sizeof *d->easy_pool);
    d->multi = curl_multi_init();
    if (!d->easy_pool || !d->multi) {
        net_destroy(d);
        set_err(err, errlen, "downloader: libcurl multi handle could not be created");
        return KTH_ERR_NO_MEMORY;
    }
    curl_multi_setopt(d->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)d->max_per_host);
    curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)d->max_in_flight);
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)(d->max_in_flight * 2));
    d->last_progress_ns = net_now(d);

    st = platform_thread_start(&d->thread, net_loop_main, d, "kth-download");
    if (st != KTH_OK) {
        net_destroy(d);
        set_err(err, errlen, "downloader: its thread could not be started");
        return st;
    }
    *out = d;
    return KTH_OK;
}

kth_status kth_downloader_new(const kth_downloader_options *opts, kth_downloader **out, char *err,
                              size_t errlen)
{
    return net_downloader_new(opts, NULL, out, err, errlen);
}

kth_downloader *net_downloader_ref(kth_downloader *d)
{
    if (d)
        atomic_fetch_add(&d->refs, 1);
    return d;
}

void net_downloader_unref(kth_downloader *d)
{
    if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
        return;
    bool on_loop = platform_thread_is_current(&d->thread);
    platform_mutex_lock(&d->lock);
    d->stopping = true;
    d->self_free = on_loop;
    platform_mutex_unlock(&d->lock);
    net_poke(d);
    if (on_loop)
        return; /* the loop sees `stopping` when the callback returns and frees itself */
    platform_thread_join(&d->thread);
    net_destroy(d);
}

void kth_downloader_unref(kth_downloader *d)
{
    net_downloader_unref(d);
}

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static kth_downloader *default_downloader;

kth_status net_downloader_default(kth_downloader **out, char *err, size_t errlen)
{
    pthread_mutex_lock(&default_lock);
    kth_status st = KTH_OK;
    if (!default_downloader) {
        kth_downloader *d = NULL;
        st = kth_downloader_new(NULL, &d, err, errlen);
        if (st == KTH_OK)
            default_downloader = d;
    }
    *out = default_downloader;
    pthread_mutex_unlock(&default_lock);
    return st;
}

kth_downloader *kth_downloader_default(void)
{
    kth_downloader *d = NULL;
    (void)net_downloader_default(&d, NULL, 0);
    return d;
}

void net_downloader_shutdown_default(void)
{
    pthread_mutex_lock(&default_lock);
    kth_downloader *d = default_downloader;
    default_downloader = NULL;
    pthread_mutex_unlock(&default_lock);
    net_downloader_unref(d);
}

uint64_t kth_downloader_id(const kth_downloader *d)
{
    return d ? d->id : 0;
}

void kth_downloader_get_stats(kth_downloader *d, kth_downloader_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!d)
        return;
    platform_mutex_lock(&d->lock);
    *out = d->stats;
    platform_mutex_unlock(&d->lock);
}

/* --- waking the loop ------------------------------------------------------------------- */

void net_poke(kth_downloader *d)
{
    /* The loop clears `poke` before it reads the inbox, so a request made after that read
     * always finds the flag clear and wakes the loop again. */
    if (!atomic_exchange(&d->poke, true))
        curl_multi_wakeup(d->multi);
}

void net_downloader_wake(kth_downloader *d)
{
    if (d)
        net_poke(d);
}

int64_t net_now(kth_downloader *d)
{
    return platform_clock_now(d->clock);
}

int64_t net_downloader_now(kth_downloader *d)
{
    return net_now(d);
}

bool net_downloader_on_loop_thread(kth_downloader *d)
{
    return d && platform_thread_is_current(&d->thread);
}

kth_status net_downloader_barrier(kth_downloader *d, int64_t timeout_ms)
{
    if (!d)
        return KTH_ERR_INVALID_ARG;
    if (net_downloader_on_loop_thread(d))
        return KTH_ERR_STATE;
    int64_t deadline = platform_deadline_after_ms(timeout_ms);
    platform_mutex_lock(&d->lock);
    uint64_t want = d->turn_begun + 1;
    platform_mutex_unlock(&d->lock);
    net_poke(d);
    platform_mutex_lock(&d->lock);
    bool reached;
    while (!(reached = d->turn_done >= want)) {
        if (!platform_cond_wait_until(&d->cond, &d->lock, deadline)) {
            reached = d->turn_done >= want;
            break;
        }
    }
    platform_mutex_unlock(&d->lock);
    return reached ? KTH_OK : KTH_ERR_TIMEOUT;
}

bool net_downloader_next_due(kth_downloader *d, int64_t *due_ns)
{
    if (!d)
        return false;
    platform_mutex_lock(&d->lock);
    int64_t due = d->next_due_ns;
    platform_mutex_unlock(&d->lock);
    if (due != INT64_MAX && due_ns)
        *due_ns = due;
    return due != INT64_MAX;
}

bool net_downloader_next_retry(kth_downloader *d, int64_t *due_ns)
{
    if (!d)
        return false;
    platform_mutex_lock(&d->lock);
    bool has = d->has_next_retry;
    if (has && due_ns)
        *due_ns = d->next_retry_ns;
    platform_mutex_unlock(&d->lock);
    return has;
}

/* --- events and samples ------------------------------------------------------------------ */

void net_publish(kth_downloader *d, kth_event_kind kind, const net_cmd *cmd, kth_status status,
                 int64_t duration_ns)
{
    if (!d->bus)
        return;
    kth_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.origin = d->id;
    ev.status = status;
    ev.payload.request.duration_ns = duration_ns;
    if (cmd) {
        kth_event_request *r = &ev.payload.request;
        r->request_id = cmd->id;
        r->bytes = cmd->flushed;
        r->http_status = cmd->http_status;
        r->attempt = (int)cmd->attempts;
        r->retryable = cmd->retryable;
        r->range_start = cmd->has_range ? cmd->range_start : 0;
        r->range_end = cmd->has_range ? cmd->range_end : UINT64_MAX;
        if (kind == KTH_EVENT_REQUEST_COMPLETED && duration_ns > 0)
            r->bits_per_second = (double)cmd->flushed * 8.0 * 1e9 / (double)duration_ns;
        const char *text =
            (kind == KTH_EVENT_REQUEST_FAILED || kind == KTH_EVENT_REQUEST_RETRYING) &&
                    cmd->message[0]
                ? cmd->message
                : cmd->url;
        size_t n = strlen(text);
        if (n >= sizeof ev.text)
            n = sizeof ev.text - 1; /* truncated to fit, as events.h says */
        memcpy(ev.text, text, n);
        ev.text[n] = '\0';
    }
    kth_bus_publish(d->bus, &ev);
}

void net_deliver_sample(kth_downloader *d, net_cmd *cmd, const net_sample *s)
{
    if (cmd->peer && cmd->peer->ops.on_sample)
        cmd->peer->ops.on_sample(cmd->peer->user, s);
    struct {
        net_sample_fn fn;
        void *user;
    } calls[NET_MAX_LISTENERS];
    size_t n = 0;
    platform_mutex_lock(&d->lock);
    for (net_listener *l = d->listeners; l && n < NET_MAX_LISTENERS; l = l->next) {
        calls[n].fn = l->fn;
        calls[n].user = l->user;
        n++;
    }
    if (n)
        d->calling_listeners = true;
    platform_mutex_unlock(&d->lock);
    if (!n)
        return;
    for (size_t i = 0; i < n; i++)
        calls[i].fn(calls[i].user, s);
    platform_mutex_lock(&d->lock);
    d->calling_listeners = false;
    platform_cond_broadcast(&d->cond);
    platform_mutex_unlock(&d->lock);
}

kth_status net_downloader_add_listener(kth_downloader *d, net_sample_fn fn, void *user,
                                       net_listener **out)
{
    if (!d || !fn || !out)
        return KTH_ERR_INVALID_ARG;
    net_listener *l = platform_calloc(1, sizeof *l);
    if (!l)
        return KTH_ERR_NO_MEMORY;
    l->fn = fn;
    l->user = user;
    platform_mutex_lock(&d->lock);
    net_listener **tail = &d->listeners;
    while (*tail)
        tail = &(*tail)->next;
    *tail = l;
    platform_mutex_unlock(&d->lock);
    *out = l;
    return KTH_OK;
}

void net_downloader_remove_listener(kth_downloader *d, net_listener *listener)
{
    if (!d || !listener)
        return;
    bool on_loop = net_downloader_on_loop_thread(d);
    platform_mutex_lock(&d->lock);
    for (net_listener **p = &d->listeners; *p; p = &(*p)->next) {
        if (*p == listener) {
            *p = listener->next;
            break;
        }
    }
    /* The loop calls listeners from a copy, so on the loop thread nothing waits. */
    while (!on_loop && d->calling_listeners)
        platform_cond_wait(&d->cond, &d->lock);
    platform_mutex_unlock(&d->lock);
    platform_free(listener);
}

/* --- peers ----------------------------------------------------------------------------- */

static void wake_for_cancel(void *arg)
{
    kth_downloader *d = arg;
    atomic_store(&d->cancel_scan, true);
    net_poke(d);
}

kth_status net_peer_register(kth_downloader *d, const net_peer_ops *ops, void *user, int priority,
                             platform_cancel *parent, net_peer **out)
{
    if (!d || !ops || !ops->poll_next || !out)
        return KTH_ERR_INVALID_ARG;
    net_peer *p = platform_calloc(1, sizeof *p);
    if (!p)
        return KTH_ERR_NO_MEMORY;
    p->cancel = platform_cancel_new(parent);
    if (!p->cancel) {
        platform_free(p);
        return KTH_ERR_NO_MEMORY;
    }
    p->d = net_downloader_ref(d);
    p->ops = *ops;
    p->user = user;
    p->priority = priority;
    p->poll_again = true;
    p->waker_added = platform_cancel_add_waker(p->cancel, &p->waker, wake_for_cancel, d);
    *out = p; /* before the loop can see the peer: its callbacks may read *out at once */
    platform_mutex_lock(&d->lock);
    p->new_next = d->new_peers;
    d->new_peers = p;
    platform_mutex_unlock(&d->lock);
    if (!p->waker_added)
        atomic_store(&d->cancel_scan, true); /* born cancelled */
    net_poke(d);
    return KTH_OK;
}

void net_peer_wake(net_peer *peer)
{
    if (!peer)
        return;
    kth_downloader *d = peer->d;
    platform_mutex_lock(&d->lock);
    peer->wake_req = true;
    platform_mutex_unlock(&d->lock);
    net_poke(d);
}

/* Keeps the earlier of a pending timer and `due`. */
static void arm_timer(bool *armed, int64_t *at, int64_t due)
{
    if (!*armed || due < *at) {
        *armed = true;
        *at = due;
    }
}

void net_peer_wake_after(net_peer *peer, int64_t delay_ns)
{
    if (!peer)
        return;
    kth_downloader *d = peer->d;
    int64_t now = net_now(d);
    int64_t due = delay_ns <= 0 ? now : delay_ns > INT64_MAX - now ? INT64_MAX : now + delay_ns;
    if (net_downloader_on_loop_thread(d)) {
        /* The loop's own field: this turn's sleep already counts it. */
        arm_timer(&peer->has_timer, &peer->timer_ns, due);
        return;
    }
    platform_mutex_lock(&d->lock);
    arm_timer(&peer->timer_req, &peer->timer_req_ns, due);
    platform_mutex_unlock(&d->lock);
    net_poke(d);
}

void net_peer_set_priority(net_peer *peer, int priority)
{
    if (!peer)
        return;
    kth_downloader *d = peer->d;
    platform_mutex_lock(&d->lock);
    peer->prio_req = true;
    peer->prio_value = priority;
    platform_mutex_unlock(&d->lock);
    net_poke(d);
}

platform_cancel *net_peer_cancel_token(net_peer *peer)
{
    return peer ? peer->cancel : NULL;
}

static void request_unregister(net_peer *peer, bool async, void (*done)(void *), void *user)
{
    kth_downloader *d = peer->d;
    platform_mutex_lock(&d->lock);
    peer->unregister_req = true;
    peer->async = async;
    peer->done = done;
    peer->done_user = user;
    platform_mutex_unlock(&d->lock);
    platform_cancel_cancel(peer->cancel); /* our subtree only: the peer's commands */
    atomic_store(&d->cancel_scan, true);
    net_poke(d);
}

kth_status net_peer_unregister(net_peer *peer)
{
    if (!peer)
        return KTH_ERR_INVALID_ARG;
    kth_downloader *d = peer->d;
    if (net_downloader_on_loop_thread(d))
        return KTH_ERR_STATE;
    request_unregister(peer, false, NULL, NULL);
    platform_mutex_lock(&d->lock);
    while (!peer->detached)
        platform_cond_wait(&d->cond, &d->lock);
    platform_mutex_unlock(&d->lock);
    /* The loop removed the waker and will never look at the peer again. */
    platform_cancel_unref(peer->cancel);
    platform_free(peer);
    net_downloader_unref(d);
    return KTH_OK;
}

void net_peer_unregister_async(net_peer *peer, void (*done)(void *user), void *user)
{
    if (peer)
        request_unregister(peer, true, done, user);
}

/* --- one-off submissions --------------------------------------------------------------- */

kth_status net_downloader_submit(kth_downloader *d, const net_fetch_spec *spec, uint64_t *id)
{
    if (!d || !spec)
        return KTH_ERR_INVALID_ARG;
    net_cmd *cmd = NULL;
    kth_status st = net_command_new(d, NULL, spec, &cmd);
    if (st != KTH_OK)
        return st;
    platform_mutex_lock(&d->lock);
    if (d->closed || d->stopping) {
        platform_mutex_unlock(&d->lock);
        net_command_free(cmd);
        return KTH_ERR_STATE;
    }
    uint64_t new_id = d->next_id++;
    cmd->id = new_id;
    cmd->inbox_next = NULL;
    *d->inbox_tail = cmd;
    d->inbox_tail = &cmd->inbox_next;
    platform_mutex_unlock(&d->lock);
    /* From here the loop owns the command and may already have completed and freed it. */
    if (id)
        *id = new_id;
    net_poke(d);
    return KTH_OK;
}
