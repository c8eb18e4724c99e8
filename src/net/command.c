/*
 * command.c — a fetch command's life: acceptance, queueing, cancellation, its one completion.
 *
 * Invariant: net_command_finish is the only way into NET_CMD_DONE, it runs on the loop thread,
 * and it frees the command; so a command completes once, and a completed command is never seen
 * again (see net_internal.h).
 */
#include "net/net_internal.h"

#include "net/http.h"
#include "platform/log.h"
#include "platform/mem.h"
#include "platform/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void wake_for_cancel(void *arg)
{
    kth_downloader *d = arg;
    atomic_store(&d->cancel_scan, true);
    net_poke(d);
}

kth_status net_command_new(kth_downloader *d, net_peer *peer, const net_fetch_spec *spec,
                           net_cmd **out)
{
    *out = NULL;
    if (!spec->url || !spec->url[0] || (spec->method != NET_GET && spec->method != NET_HEAD) ||
        (spec->priority != NET_FETCH_HIGH && spec->priority != NET_FETCH_LOW))
        return KTH_ERR_INVALID_ARG;
    if (spec->has_range && spec->range_end <= spec->range_start)
        return KTH_ERR_INVALID_ARG;
    /* Decoded offsets are not the resource's offsets: ranges and compression do not mix. */
    if (spec->has_range && spec->accept_gzip)
        return KTH_ERR_INVALID_ARG;
    char *host = NULL;
    kth_status st = net_host_key(spec->url, &host);
    if (st == KTH_ERR_INVALID_ARG)
        return strstr(spec->url, "://") && strncmp(spec->url, "http", 4) != 0 ? KTH_ERR_UNSUPPORTED
                                                                              : KTH_ERR_INVALID_ARG;
    if (st != KTH_OK)
        return st;

    net_cmd *cmd = platform_calloc(1, sizeof *cmd);
    if (!cmd) {
        platform_free(host);
        return KTH_ERR_NO_MEMORY;
    }
    cmd->d = d;
    cmd->peer = peer;
    cmd->node.slot = -1;
    cmd->state = NET_CMD_INBOX;
    cmd->url = platform_strdup(spec->url);
    cmd->host = host;
    if (spec->validate)
        cmd->sniff = platform_malloc(NET_VALIDATE_BYTES);
    bool ok = cmd->url && cmd->host && (!spec->validate || cmd->sniff);
    for (const char *const *h = spec->headers; ok && h && *h; h++) {
        struct curl_slist *l = curl_slist_append(cmd->headers, *h);
        if (!l)
            ok = false;
        else
            cmd->headers = l;
    }
    if (!ok) {
        net_command_free(cmd);
        return KTH_ERR_NO_MEMORY;
    }
    cmd->method = spec->method;
    cmd->has_range = spec->has_range;
    cmd->range_start = spec->has_range ? spec->range_start : 0;
    cmd->range_end = spec->has_range ? spec->range_end : NET_RANGE_OPEN;
    cmd->priority = spec->priority;
    cmd->accept_gzip = spec->accept_gzip;
    cmd->no_resume = spec->no_resume;
    cmd->on_response = spec->on_response;
    cmd->validate = spec->validate;
    cmd->reader_waits = spec->reader_waits;
    cmd->write = spec->write;
    cmd->complete = spec->complete;
    cmd->user = spec->user;
    cmd->cancel = platform_cancel_ref(spec->cancel);
    *out = cmd;
    return KTH_OK;
}

void net_command_free(net_cmd *cmd)
{
    if (!cmd)
        return;
    platform_free(cmd->url);
    platform_free(cmd->host);
    platform_free(cmd->sniff);
    platform_free(cmd->etag);
    platform_free(cmd->last_modified);
    platform_free(cmd->final_url);
    platform_free(cmd->at.hdr);
    curl_slist_free_all(cmd->headers);
    platform_cancel_unref(cmd->cancel);
    platform_free(cmd);
}

bool net_command_cancelled(const net_cmd *cmd)
{
    if (platform_cancel_is_cancelled(cmd->cancel))
        return true;
    return cmd->peer &&
           (cmd->peer->unregistering || platform_cancel_is_cancelled(cmd->peer->cancel));
}

void net_command_queue(net_cmd *cmd)
{
    kth_downloader *d = cmd->d;
    int peer_prio = cmd->peer ? cmd->peer->priority : NET_PEER_FOREGROUND;
    cmd->state = NET_CMD_QUEUED;
    net_sched_push(&d->sched, &cmd->node, net_sched_slot(peer_prio, cmd->priority));
}

void net_command_enqueue(net_cmd *cmd)
{
    kth_downloader *d = cmd->d;
    cmd->node.seq = d->next_seq++;
    cmd->accepted_ns = net_now(d);
    if (d->sched.count == 0 && d->n_running == 0)
        d->last_progress_ns = cmd->accepted_ns; /* the watchdog counts from when work began */
    if (cmd->peer)
        cmd->peer->outstanding++;
    if (cmd->cancel) {
        cmd->waker_added = platform_cancel_add_waker(cmd->cancel, &cmd->waker, wake_for_cancel, d);
        if (!cmd->waker_added)
            atomic_store(&d->cancel_scan, true); /* already cancelled: the scan finishes it */
    }
    net_publish(d, KTH_EVENT_REQUEST_ENQUEUED, cmd, KTH_OK, 0);
    net_command_queue(cmd);
}

void net_command_fail(net_cmd *cmd, kth_status status, bool retryable, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    platform_vexcerptf(cmd->message, sizeof cmd->message, fmt, ap);
    va_end(ap);
    cmd->retryable = retryable;
    net_command_finish(cmd, status);
}

/* One line per finished command for the application's log handler: a success at INFO, a
 * failure at WARN (its message names the URL and the cause), a cancel at DEBUG. */
static void log_outcome(const net_cmd *cmd, kth_status status, int64_t duration_ns)
{
    const char *method = cmd->method == NET_HEAD ? "HEAD" : "GET";
    if (status == KTH_OK)
        platform_log(KTH_LOG_INFO, "net", "%s %s: HTTP %d, %llu bytes in %.1f ms (%u attempt%s)",
                     method, PLATFORM_SHOWN(cmd->final_url ? cmd->final_url : cmd->url),
                     cmd->http_status, (unsigned long long)cmd->flushed, (double)duration_ns / 1e6,
                     cmd->attempts, cmd->attempts == 1 ? "" : "s");
    else
        platform_log(status == KTH_ERR_CANCELLED ? KTH_LOG_DEBUG : KTH_LOG_WARN, "net", "%s %s",
                     method, cmd->message);
}

void net_command_finish(net_cmd *cmd, kth_status status)
{
    kth_downloader *d = cmd->d;
    cmd->state = NET_CMD_DONE;
    if (cmd->waker_added) {
        platform_cancel_remove_waker(&cmd->waker);
        cmd->waker_added = false;
    }
    int64_t now = net_now(d);
    int64_t since = cmd->first_start_ns ? cmd->first_start_ns : cmd->accepted_ns;
    int64_t duration = now > since ? now - since : 0;
    d->last_progress_ns = now;
    if (status == KTH_OK) {
        cmd->message[0] = '\0';
        cmd->retryable = false;
        d->counts.completed++;
        net_publish(d, KTH_EVENT_REQUEST_COMPLETED, cmd, status, duration);
    } else if (status == KTH_ERR_CANCELLED) {
        if (!cmd->message[0])
            platform_excerptf(cmd->message, sizeof cmd->message, "%s: cancelled",
                              PLATFORM_SHOWN(cmd->url));
        d->counts.cancelled++;
        net_publish(d, KTH_EVENT_REQUEST_CANCELLED, cmd, status, duration);
    } else {
        if (!cmd->message[0])
            platform_excerptf(cmd->message, sizeof cmd->message, "%s: %s", PLATFORM_SHOWN(cmd->url),
                              kth_strerror(status));
        d->counts.failed++;
        net_publish(d, KTH_EVENT_REQUEST_FAILED, cmd, status, duration);
    }
    d->counts.bytes += cmd->flushed;
    log_outcome(cmd, status, duration);

    if (cmd->complete) {
        net_result r;
        memset(&r, 0, sizeof r);
        r.request_id = cmd->id;
        r.status = status;
        r.http_status = cmd->http_status;
        r.bytes = cmd->flushed;
        r.has_total_length = cmd->has_total;
        r.total_length = cmd->total;
        r.attempts = cmd->attempts;
        r.retryable = status != KTH_OK && cmd->retryable;
        r.duration_ns = now > cmd->accepted_ns ? now - cmd->accepted_ns : 0;
        r.url = cmd->final_url ? cmd->final_url : cmd->url;
        r.message = cmd->message;
        cmd->complete(cmd->user, &r);
    }
    net_peer *peer = cmd->peer;
    if (peer) {
        peer->outstanding--;
        peer->poll_again = true; /* a completion wakes its peer */
    }
    net_command_free(cmd);
}
