/*
 * loop.c — the downloader's thread.
 *
 * One turn of the loop:
 *   1. take the inbox under d->lock (new commands and peers, wake/priority/unregister flags);
 *   2. if a cancel token fired, finish every cancelled command (queued, waiting or running);
 *   3. queue the retries that are due, and wake the peers whose timer is due;
 *   4. call poll_next of each woken peer (no lock held) and queue what it adds;
 *   5. start transfers while the global and per-host limits allow, most urgent slot first;
 *   6. let curl move bytes, then judge every transfer that ended (done, retry, fail) and start
 *      more in the slots they freed;
 *   7. abandon stalled transfers, detach peers whose unregistration is complete, watch for a
 *      downloader where nothing moves;
 *   8. publish the turn (stats, barrier) and sleep in curl_multi_poll until curl has work, a
 *      timer (retry, stall, watchdog, a peer's net_peer_wake_after) is due, or another thread
 *      pokes.
 * The loop never sleeps while work is due and never waits for anyone but curl.
 */
#include "net/net_internal.h"

#include "platform/log.h"
#include "platform/mem.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_WAIT_MS 60000

static net_cmd *cmd_of(net_sched_node *n)
{
    return (net_cmd *)n; /* the node is the command's first member */
}

/* --- 1. the inbox ---------------------------------------------------------------------- */

static void reslot_peer(kth_downloader *d, net_peer *peer)
{
    net_cmd *moved = NULL;
    for (int slot = 0; slot < NET_SLOTS; slot++) {
        for (net_sched_node *n = net_sched_first(&d->sched, slot); n;
             n = net_sched_next(&d->sched, n)) {
            net_cmd *cmd = cmd_of(n);
            if (cmd->peer == peer) {
                cmd->inbox_next = moved;
                moved = cmd;
            }
        }
    }
    for (net_cmd *cmd = moved, *next; cmd; cmd = next) {
        next = cmd->inbox_next;
        cmd->inbox_next = NULL;
        net_sched_remove(&d->sched, &cmd->node);
        net_command_queue(cmd); /* re-inserted by acceptance order in its new slot */
    }
}

/* Returns true when the downloader must stop. */
static bool take_inbox(kth_downloader *d, uint64_t *turn)
{
    platform_mutex_lock(&d->lock);
    *turn = ++d->turn_begun;
    net_cmd *inbox = d->inbox;
    d->inbox = NULL;
    d->inbox_tail = &d->inbox;
    while (d->new_peers) {
        net_peer *p = d->new_peers;
        d->new_peers = p->new_next;
        p->prev = NULL;
        p->next = d->peers;
        if (d->peers)
            d->peers->prev = p;
        d->peers = p;
    }
    net_peer *reslot = NULL;
    for (net_peer *p = d->peers; p; p = p->next) {
        p->new_next = NULL;
        if (p->wake_req) {
            p->wake_req = false;
            p->poll_again = true;
        }
        if (p->timer_req) {
            p->timer_req = false;
            if (!p->has_timer || p->timer_req_ns < p->timer_ns) {
                p->has_timer = true;
                p->timer_ns = p->timer_req_ns;
            }
        }
        if (p->prio_req) {
            p->prio_req = false;
            if (p->priority != p->prio_value) {
                p->priority = p->prio_value;
                p->new_next = reslot;
                reslot = p;
            }
        }
        if (p->unregister_req)
            p->unregistering = true;
    }
    bool stop = d->stopping;
    if (stop)
        d->closed = true;
    platform_mutex_unlock(&d->lock);

    for (net_cmd *cmd = inbox, *next; cmd; cmd = next) {
        next = cmd->inbox_next;
        cmd->inbox_next = NULL;
        net_command_enqueue(cmd);
    }
    for (net_peer *p = reslot, *next; p; p = next) {
        next = p->new_next;
        p->new_next = NULL;
        reslot_peer(d, p);
    }
    return stop;
}

/* --- 2. cancellation -------------------------------------------------------------------- */

static void unwait(kth_downloader *d, net_cmd *cmd)
{
    if (cmd->wait_prev)
        cmd->wait_prev->wait_next = cmd->wait_next;
    else
        d->waiting = cmd->wait_next;
    if (cmd->wait_next)
        cmd->wait_next->wait_prev = cmd->wait_prev;
    cmd->wait_prev = cmd->wait_next = NULL;
    d->n_waiting--;
}

/* Finishes the commands for which pick(cmd) is true (all of them when pick is NULL). */
static void cancel_where(kth_downloader *d, bool (*pick)(const net_cmd *cmd))
{
    net_cmd *doomed = NULL;
    for (int slot = 0; slot < NET_SLOTS; slot++) {
        for (net_sched_node *n = net_sched_first(&d->sched, slot); n;
             n = net_sched_next(&d->sched, n)) {
            net_cmd *cmd = cmd_of(n);
            if (!pick || pick(cmd)) {
                cmd->inbox_next = doomed;
                doomed = cmd;
            }
        }
    }
    for (net_cmd *cmd = doomed, *next; cmd; cmd = next) {
        next = cmd->inbox_next;
        net_sched_remove(&d->sched, &cmd->node);
        net_command_finish(cmd, KTH_ERR_CANCELLED);
    }
    for (net_cmd *cmd = d->waiting, *next; cmd; cmd = next) {
        next = cmd->wait_next;
        if (!pick || pick(cmd)) {
            unwait(d, cmd);
            net_command_finish(cmd, KTH_ERR_CANCELLED);
        }
    }
    /* Completions cannot end other commands, so `next` stays valid across the call. */
    for (net_cmd *cmd = d->running, *next; cmd; cmd = next) {
        next = cmd->at.next;
        if (!pick || pick(cmd))
            net_transfer_abort(cmd, KTH_ERR_CANCELLED, false, "cancelled");
    }
}

/* --- 3. retries ------------------------------------------------------------------------- */

static void queue_due_retries(kth_downloader *d, int64_t now)
{
    for (net_cmd *cmd = d->waiting, *next; cmd; cmd = next) {
        next = cmd->wait_next;
        if (cmd->retry_due_ns <= now) {
            unwait(d, cmd);
            net_command_queue(cmd);
        }
    }
}

/* --- 4. peers --------------------------------------------------------------------------- */

kth_status net_batch_add(net_batch *batch, const net_fetch_spec *spec, uint64_t *id)
{
    if (!batch || !spec)
        return KTH_ERR_INVALID_ARG;
    if (batch->count >= NET_BATCH_MAX)
        return KTH_ERR_LIMIT;
    kth_downloader *d = batch->d;
    net_cmd *cmd = NULL;
    kth_status st = net_command_new(d, batch->peer, spec, &cmd);
    if (st != KTH_OK)
        return st;
    platform_mutex_lock(&d->lock);
    cmd->id = d->next_id++;
    platform_mutex_unlock(&d->lock);
    batch->count++;
    if (id)
        *id = cmd->id;
    net_command_enqueue(cmd);
    return KTH_OK;
}

/* Peers whose net_peer_wake_after timer is due are woken. */
static void fire_peer_timers(kth_downloader *d, int64_t now)
{
    for (net_peer *p = d->peers; p; p = p->next) {
        if (p->has_timer && p->timer_ns <= now) {
            p->has_timer = false;
            p->poll_again = true;
        }
    }
}

static bool poll_peers(kth_downloader *d)
{
    bool again = false;
    for (net_peer *p = d->peers; p; p = p->next) {
        if (p->unregistering || p->finished_polling || !p->poll_again)
            continue;
        p->poll_again = false;
        net_batch batch = {.d = d, .peer = p, .count = 0};
        net_poll_result r = p->ops.poll_next(p->user, &batch);
        if (r == NET_POLL_BATCH) {
            p->poll_again = true;
            again = true;
        } else if (r == NET_POLL_DONE) {
            p->finished_polling = true;
        }
    }
    return again;
}

static bool peers_want_poll(kth_downloader *d)
{
    for (net_peer *p = d->peers; p; p = p->next)
        if (p->poll_again && !p->unregistering && !p->finished_polling)
            return true;
    return false;
}

/* --- 5/6. transfers --------------------------------------------------------------------- */

static bool host_has_room(void *ctx, net_sched_node *n)
{
    kth_downloader *d = ctx;
    return net_hosts_running(&d->hosts, cmd_of(n)->host) < d->max_per_host &&
           net_h2c_may_start(d, cmd_of(n));
}

static void start_transfers(kth_downloader *d)
{
    while (d->n_running < d->max_in_flight) {
        net_sched_node *n = net_sched_pick(&d->sched, host_has_room, d);
        if (!n)
            break;
        net_cmd *cmd = cmd_of(n);
        if (net_command_cancelled(cmd))
            net_command_finish(cmd, KTH_ERR_CANCELLED);
        else
            net_transfer_start(cmd);
    }
}

static void drive_curl(kth_downloader *d)
{
    int still = 0;
    curl_multi_perform(d->multi, &still);
    net_transfer_flush_all(d);
    CURLMsg *m;
    int left = 0;
    while ((m = curl_multi_info_read(d->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode code = m->data.result; /* m dies with the handle's removal */
        net_cmd *cmd = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&cmd);
        if (cmd)
            net_transfer_done(cmd, code);
    }
}

/* --- 7. stalls, peers, watchdog ------------------------------------------------------------ */

/* The stall verdict on one attempt: why it must be abandoned (into why), or false. The window
 * slides (net/pace.h), so a body that stops is caught when the stall timeout has passed since
 * its last byte, and a slow one when the last window shows it too slow. */
static bool stalled(kth_downloader *d, net_cmd *cmd, int64_t now, char *why, size_t size)
{
    net_pace *pace = &cmd->at.pace;
    int64_t quiet = now - pace->last_byte_ns;
    if (quiet >= d->stall_ns) {
        snprintf(why, size, "stalled: no byte for %" PRId64 " ms", quiet / 1000000);
        return true;
    }
    if (!net_pace_full(pace, now))
        return false;
    uint64_t bytes = net_pace_bytes(pace, now);
    int64_t span_ms = net_pace_span_ns(pace, now) / 1000000;
    if (bytes < d->stall_window_bytes) {
        snprintf(why, size, "stalled: %" PRIu64 " bytes in the last %" PRId64 " ms", bytes,
                 span_ms);
        return true;
    }
    /* Asked last, and only of a transfer that is too slow for a waiting reader. */
    if (bytes < d->waiting_window_bytes && cmd->reader_waits && cmd->reader_waits(cmd->user)) {
        snprintf(why, size,
                 "too slow for a waiting reader: %" PRIu64 " bytes in the last %" PRId64 " ms",
                 bytes, span_ms);
        return true;
    }
    return false;
}

static void check_stalls(kth_downloader *d, int64_t now)
{
    for (net_cmd *cmd = d->running, *next; cmd; cmd = next) {
        next = cmd->at.next;
        char why[160];
        if (stalled(d, cmd, now, why, sizeof why))
            net_transfer_abort(cmd, KTH_ERR_TIMEOUT, true, why);
    }
}

static void detach_peers(kth_downloader *d)
{
    for (net_peer *p = d->peers, *next; p; p = next) {
        next = p->next;
        if (!p->unregistering || p->outstanding > 0)
            continue;
        if (p->prev)
            p->prev->next = p->next;
        else
            d->peers = p->next;
        if (p->next)
            p->next->prev = p->prev;
        if (p->waker_added)
            platform_cancel_remove_waker(&p->waker);
        platform_mutex_lock(&d->lock);
        bool async = p->async;
        void (*done)(void *) = p->done;
        void *done_user = p->done_user;
        if (!async) {
            p->detached = true; /* the unregistering thread frees the peer from here on */
            platform_cond_broadcast(&d->cond);
        }
        platform_mutex_unlock(&d->lock);
        if (async) {
            if (done)
                done(done_user);
            platform_cancel_unref(p->cancel);
            platform_free(p);
            net_downloader_unref(d); /* may be the last: then the loop ends after this turn */
        }
    }
}

static void watchdog(kth_downloader *d, int64_t now)
{
    if (d->watchdog_ns < 0)
        return;
    bool pending = d->sched.count > 0 || d->n_running > 0;
    if (!pending) {
        d->watchdog_fired = false;
        d->last_progress_ns = now;
        return;
    }
    int64_t idle = now - d->last_progress_ns;
    if (idle < d->watchdog_ns) {
        d->watchdog_fired = false;
        return;
    }
    if (d->watchdog_fired)
        return;
    d->watchdog_fired = true;
    net_publish(d, KTH_EVENT_DOWNLOADER_STALLED, NULL, KTH_OK, idle);
    platform_log(KTH_LOG_WARN, "net",
                 "downloader %" PRIu64 ": nothing moved for %" PRId64
                 " ms (%zu queued, %u running)",
                 d->id, idle / 1000000, d->sched.count, d->n_running);
}

/* --- 8. end of turn and sleep ---------------------------------------------------------------- */

static int64_t ms_until(int64_t when, int64_t now)
{
    if (when <= now)
        return 0;
    int64_t ms = (when - now + 999999) / 1000000;
    return ms > MAX_WAIT_MS ? MAX_WAIT_MS : ms;
}

/* What the loop has timed next, on the downloader's clock, as of the end of a turn. */
typedef struct turn_timers {
    bool has_retry;
    int64_t next_retry; /* the earliest retry, when has_retry */
    int64_t next_due;   /* the earliest of every timer below; INT64_MAX: none */
} turn_timers;

static void end_turn(kth_downloader *d, uint64_t turn, const turn_timers *timers)
{
    unsigned peers = 0;
    for (net_peer *p = d->peers; p; p = p->next)
        peers++;
    platform_mutex_lock(&d->lock);
    d->stats = d->counts;
    d->stats.queued = d->sched.count;
    d->stats.running = d->n_running;
    d->stats.waiting_retry = d->n_waiting;
    d->stats.peers = peers;
    d->has_next_retry = timers->has_retry;
    d->next_retry_ns = timers->next_retry;
    d->next_due_ns = timers->next_due;
    d->turn_done = turn;
    platform_cond_broadcast(&d->cond);
    platform_mutex_unlock(&d->lock);
}

static void note_due(turn_timers *t, int64_t when)
{
    if (when < t->next_due)
        t->next_due = when;
}

/* How long the loop may sleep: until curl's next timeout, the next retry, the next stall
 * check, a peer's timer or the watchdog, at most MAX_WAIT_MS. Also reports those times (curl's
 * own timeouts, on the real clock, aside). */
static int64_t compute_wait(kth_downloader *d, int64_t now, turn_timers *t)
{
    int64_t wait = MAX_WAIT_MS;
    long curl_ms = -1;
    curl_multi_timeout(d->multi, &curl_ms);
    if (curl_ms >= 0 && curl_ms < wait)
        wait = curl_ms;
    t->has_retry = false;
    t->next_retry = 0;
    t->next_due = INT64_MAX;
    for (net_cmd *cmd = d->waiting; cmd; cmd = cmd->wait_next) {
        if (!t->has_retry || cmd->retry_due_ns < t->next_retry)
            t->next_retry = cmd->retry_due_ns;
        t->has_retry = true;
    }
    if (t->has_retry) {
        note_due(t, t->next_retry);
        if (ms_until(t->next_retry, now) < wait)
            wait = ms_until(t->next_retry, now);
    }
    for (net_cmd *cmd = d->running; cmd; cmd = cmd->at.next) {
        int64_t check = net_pace_next_check(&cmd->at.pace, now);
        note_due(t, check);
        int64_t w = ms_until(check, now);
        if (w < wait)
            wait = w;
    }
    for (net_peer *p = d->peers; p; p = p->next) {
        if (p->has_timer && !p->unregistering && !p->finished_polling) {
            note_due(t, p->timer_ns);
            int64_t w = ms_until(p->timer_ns, now);
            if (w < wait)
                wait = w;
        }
    }
    if (d->watchdog_ns >= 0 && !d->watchdog_fired && (d->sched.count > 0 || d->n_running > 0)) {
        note_due(t, d->last_progress_ns + d->watchdog_ns);
        int64_t w = ms_until(d->last_progress_ns + d->watchdog_ns, now);
        if (w < wait)
            wait = w;
    }
    return wait;
}

static void shutdown_all(kth_downloader *d)
{
    cancel_where(d, NULL);
    /* Peers hold references, so none can be registered when the last one is gone; a peer
     * left here would be a bug, and is detached rather than leaked. */
    for (net_peer *p = d->peers; p; p = p->next)
        p->unregistering = true;
    detach_peers(d);
}

void *net_loop_main(void *arg)
{
    kth_downloader *d = arg;
    for (;;) {
        atomic_store(&d->poke, false);
        uint64_t turn = 0;
        if (take_inbox(d, &turn)) {
            shutdown_all(d);
            end_turn(d, turn, &(turn_timers){.next_due = INT64_MAX});
            break;
        }
        if (atomic_exchange(&d->cancel_scan, false))
            cancel_where(d, net_command_cancelled);
        int64_t turn_start = net_now(d);
        queue_due_retries(d, turn_start);
        fire_peer_timers(d, turn_start);
        poll_peers(d);
        start_transfers(d);
        drive_curl(d);
        start_transfers(d);
        int64_t now = net_now(d);
        check_stalls(d, now);
        detach_peers(d);
        watchdog(d, now);

        bool immediate = peers_want_poll(d) || atomic_load(&d->cancel_scan);
        turn_timers timers;
        int64_t wait_ms = compute_wait(d, now, &timers);
        if (immediate)
            wait_ms = 0;
        end_turn(d, turn, &timers);
        curl_multi_poll(d->multi, NULL, 0, (int)wait_ms, NULL);
    }
    platform_mutex_lock(&d->lock);
    bool self_free = d->self_free;
    platform_mutex_unlock(&d->lock);
    if (self_free) {
        /* The last reference went inside a callback of this thread: nobody will join it. */
        pthread_detach(pthread_self());
        net_destroy(d);
    }
    return NULL;
}
