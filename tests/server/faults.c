/*
 * faults.c — the fault menu: storing faults per path, resolving the plan of one request, and
 * the interruptible waits (gates, stalls, sleeps) that faults make connection threads do.
 *
 * A request's plan is resolved once, on arrival, from the faults that match its path and request
 * number; later changes to the faults do not touch requests already resolved. Every wait in
 * here is a timed wait on the server's `holds` condition variable and ends as soon as the
 * server is stopping, which is what makes kts_stop() prompt.
 *
 * Adding a fault: a new kts_fault_kind (testserver.h), its argument check in fault_check(), its
 * effect on the plan in plan_apply() (a field in ts_plan), and the place in testserver.c where
 * the plan field changes the response.
 */
#include "ts_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int64_t ts_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool ts_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline_ns)
{
    struct timespec ts;

    if (deadline_ns < 0) {
        pthread_cond_wait(cond, lock);
        return true;
    }
    ts.tv_sec = (time_t)(deadline_ns / 1000000000);
    ts.tv_nsec = (long)(deadline_ns % 1000000000);
    return pthread_cond_timedwait(cond, lock, &ts) != ETIMEDOUT;
}

bool ts_sleep_until(kts_server *srv, int64_t deadline_ns)
{
    while (!srv->stopping && ts_now_ns() < deadline_ns) {
        ts_cond_wait_until(&srv->holds, &srv->lock, deadline_ns);
    }
    return !srv->stopping;
}

bool ts_hold_wait(kts_server *srv, ts_hold *hold, int64_t deadline_ns)
{
    bool running = true;

    hold->waiting++;
    pthread_cond_broadcast(&srv->events);
    for (;;) {
        if (srv->stopping) {
            running = false;
            break;
        }
        if (hold->tickets > 0) {
            if (hold->tickets != KTS_RELEASE_ALL) {
                hold->tickets--;
            }
            break;
        }
        if (deadline_ns >= 0 && ts_now_ns() >= deadline_ns) {
            break;
        }
        ts_cond_wait_until(&srv->holds, &srv->lock, deadline_ns);
    }
    hold->waiting--;
    return running;
}

static char *dup_or_null(const char *s, bool *failed)
{
    char *copy;

    if (s == NULL) {
        return NULL;
    }
    copy = strdup(s);
    if (copy == NULL) {
        *failed = true;
    }
    return copy;
}

/* Checks the arguments a kind needs. */
static bool fault_check(const kts_fault *f)
{
    if (f->first_request != 0 && f->last_request != 0 && f->first_request > f->last_request) {
        return false;
    }
    switch (f->kind) {
    case KTS_FAULT_LATENCY:
    case KTS_FAULT_CLOSE_AFTER:
    case KTS_FAULT_STALL_AFTER:
    case KTS_FAULT_HTML_200:
    case KTS_FAULT_GATE:
    case KTS_FAULT_IGNORE_RANGE:
    case KTS_FAULT_CHUNKED:
    case KTS_FAULT_GZIP:
    case KTS_FAULT_TRICKLE:
        return true;
    case KTS_FAULT_RATE:
        return f->bytes > 0;
    case KTS_FAULT_STATUS:
        return f->status >= 200 && f->status <= 599 &&
               (f->retry_after == NULL || strpbrk(f->retry_after, "\r\n") == NULL);
    case KTS_FAULT_REDIRECT:
        return f->hops >= 1 && f->hops <= 100 &&
               (f->target == NULL || (f->target[0] == '/' && strchr(f->target, '?') == NULL));
    case KTS_FAULT_CHANGE_BODY:
        return f->body != NULL || f->body_len == 0;
    case KTS_FAULT_WRONG_LENGTH:
        return f->length_delta != 0;
    }
    return false;
}

static int fault_copy(kts_server *srv, const char *path, const kts_fault *in, ts_fault *out)
{
    bool failed = false;

    memset(out, 0, sizeof *out);
    out->f = *in;
    out->retry_after = dup_or_null(in->retry_after, &failed);
    out->target = dup_or_null(in->target, &failed);
    out->f.retry_after = NULL;
    out->f.target = NULL;
    out->f.body = NULL;
    if (!failed && in->kind == KTS_FAULT_CHANGE_BODY && in->body != NULL) {
        srv->body_version++;
        out->changed = ts_body_new_memory(in->body, in->body_len, NULL, path, srv->body_version,
                                          srv->epoch + (time_t)srv->body_version);
        failed = out->changed == NULL;
    }
    if (failed) {
        free(out->retry_after);
        free(out->target);
        ts_body_destroy(out->changed);
        return KTH_ERR_NO_MEMORY;
    }
    return KTH_OK;
}

static void fault_free(ts_fault *f)
{
    free(f->retry_after);
    free(f->target);
    if (f->changed != NULL) {
        ts_body_unref_locked(f->changed);
    }
}

static int fault_list_add(ts_fault_list *list, ts_fault *f)
{
    if (list->count == list->cap) {
        size_t cap = list->cap != 0 ? list->cap * 2 : 4;
        ts_fault *items = realloc(list->items, cap * sizeof *items);
        if (items == NULL) {
            return KTH_ERR_NO_MEMORY;
        }
        list->items = items;
        list->cap = cap;
    }
    list->items[list->count++] = *f;
    return KTH_OK;
}

void ts_fault_list_clear(ts_fault_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        fault_free(&list->items[i]);
    }
    free(list->items);
    list->items = NULL;
    list->count = 0;
    list->cap = 0;
}

int kts_add_fault(kts_server *srv, const char *path, const kts_fault *fault)
{
    ts_fault copy;
    ts_fault_list *list;
    int rc;

    if (srv == NULL || path == NULL || fault == NULL || !fault_check(fault) ||
        (path[0] != '/' && strcmp(path, "*") != 0)) {
        return KTH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&srv->lock);
    if (strcmp(path, "*") == 0) {
        list = &srv->any_faults;
    } else {
        ts_path_entry *entry = ts_path_get(srv, path, true);
        list = entry != NULL ? &entry->faults : NULL;
    }
    rc = list != NULL ? fault_copy(srv, path, fault, &copy) : KTH_ERR_NO_MEMORY;
    if (rc == KTH_OK) {
        rc = fault_list_add(list, &copy);
        if (rc != KTH_OK) {
            fault_free(&copy);
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

static void entry_clear_faults(ts_path_entry *entry)
{
    ts_fault_list_clear(&entry->faults);
    entry->gate.tickets = 0;
    entry->stall.tickets = 0;
}

int kts_clear_faults(kts_server *srv, const char *path)
{
    if (srv == NULL) {
        return KTH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&srv->lock);
    if (path == NULL || strcmp(path, "*") == 0) {
        ts_fault_list_clear(&srv->any_faults);
    }
    if (path == NULL) {
        for (size_t i = 0; i < TS_PATH_BUCKETS; i++) {
            for (ts_path_entry *e = srv->buckets[i]; e != NULL; e = e->next) {
                entry_clear_faults(e);
            }
        }
    } else if (strcmp(path, "*") != 0) {
        ts_path_entry *entry = ts_path_get(srv, path, false);
        if (entry != NULL) {
            entry_clear_faults(entry);
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return KTH_OK;
}

static int release(kts_server *srv, const char *path, uint32_t n, bool gate)
{
    ts_path_entry *entry;
    ts_hold *hold;

    if (srv == NULL || path == NULL || path[0] != '/') {
        return KTH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&srv->lock);
    entry = ts_path_get(srv, path, true);
    if (entry == NULL) {
        pthread_mutex_unlock(&srv->lock);
        return KTH_ERR_NO_MEMORY;
    }
    hold = gate ? &entry->gate : &entry->stall;
    if (n == KTS_RELEASE_ALL || hold->tickets == KTS_RELEASE_ALL) {
        hold->tickets = KTS_RELEASE_ALL;
    } else {
        /* Saturate one below "open", so many releases never turn into an open gate. */
        hold->tickets =
            n > KTS_RELEASE_ALL - 1 - hold->tickets ? KTS_RELEASE_ALL - 1 : hold->tickets + n;
    }
    pthread_cond_broadcast(&srv->holds);
    pthread_mutex_unlock(&srv->lock);
    return KTH_OK;
}

int kts_gate_release(kts_server *srv, const char *path, uint32_t n)
{
    return release(srv, path, n, true);
}

int kts_stall_release(kts_server *srv, const char *path, uint32_t n)
{
    return release(srv, path, n, false);
}

static bool fault_matches(const ts_fault *f, unsigned number)
{
    unsigned first = f->f.first_request != 0 ? f->f.first_request : 1;
    return number >= first && (f->f.last_request == 0 || number <= f->f.last_request);
}

/* Folds one matching fault into the plan; a later fault of the same kind replaces an earlier. */
static int plan_apply(ts_plan *plan, const ts_fault *f, bool redirected)
{
    bool failed = false;

    switch (f->f.kind) {
    case KTS_FAULT_LATENCY:
        plan->latency_ms = f->f.ms;
        break;
    case KTS_FAULT_RATE:
        plan->rate = f->f.bytes;
        break;
    case KTS_FAULT_STATUS:
        plan->status = f->f.status;
        free(plan->retry_after);
        plan->retry_after = dup_or_null(f->retry_after, &failed);
        break;
    case KTS_FAULT_CLOSE_AFTER:
        plan->close_after_set = true;
        plan->close_after = f->f.bytes;
        break;
    case KTS_FAULT_STALL_AFTER:
        plan->stall_set = true;
        plan->stall_after = f->f.bytes;
        plan->stall_ms = f->f.ms;
        break;
    case KTS_FAULT_HTML_200:
        plan->html200 = true;
        break;
    case KTS_FAULT_REDIRECT:
        if (!redirected) {
            plan->redirect_hops = f->f.hops;
            free(plan->redirect_target);
            plan->redirect_target = dup_or_null(f->target, &failed);
        }
        break;
    case KTS_FAULT_CHANGE_BODY:
        plan->change_body = true;
        plan->change_seed = f->f.seed;
        if (plan->changed != NULL) {
            ts_body_unref_locked(plan->changed);
        }
        plan->changed = f->changed;
        if (plan->changed != NULL) {
            plan->changed->refs++;
        }
        break;
    case KTS_FAULT_GATE:
        plan->gate = true;
        break;
    case KTS_FAULT_WRONG_LENGTH:
        plan->length_delta = f->f.length_delta;
        break;
    case KTS_FAULT_IGNORE_RANGE:
        plan->ignore_range = true;
        break;
    case KTS_FAULT_CHUNKED:
        plan->chunked = true;
        break;
    case KTS_FAULT_GZIP:
        plan->gzip = true;
        break;
    case KTS_FAULT_TRICKLE:
        plan->trickle_set = true;
        plan->trickle_after = f->f.bytes;
        plan->trickle_ms = f->f.ms != 0 ? f->f.ms : 1000;
        break;
    }
    return failed ? KTH_ERR_NO_MEMORY : KTH_OK;
}

int ts_plan_resolve(kts_server *srv, ts_path_entry *entry, unsigned number, bool redirected,
                    ts_plan *plan)
{
    const ts_fault_list *lists[2] = {&srv->any_faults, &entry->faults};

    memset(plan, 0, sizeof *plan);
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; i < lists[l]->count; i++) {
            const ts_fault *f = &lists[l]->items[i];
            if (fault_matches(f, number) && plan_apply(plan, f, redirected) != KTH_OK) {
                ts_plan_release(plan);
                return KTH_ERR_NO_MEMORY;
            }
        }
    }
    return KTH_OK;
}

void ts_plan_release(ts_plan *plan)
{
    free(plan->retry_after);
    free(plan->redirect_target);
    if (plan->changed != NULL) {
        ts_body_unref_locked(plan->changed);
    }
    memset(plan, 0, sizeof *plan);
}
