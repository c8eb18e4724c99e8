/*
 * schedule.c — slot queues and host counts (see schedule.h).
 *
 * Invariants: a node is on at most one slot list, and node->slot says which (-1: none); each
 * slot list is sorted by seq; s->count is the number of queued nodes.
 */
#include "net/schedule.h"

#include "net/downloader.h"
#include "platform/mem.h"

#include <stdlib.h>
#include <string.h>

int net_sched_slot(int peer_priority, int fetch_priority)
{
    int p = peer_priority <= NET_PEER_FOREGROUND ? 0 : 1;
    int f = fetch_priority <= NET_FETCH_HIGH ? 0 : 1;
    return p * 2 + f;
}

void net_sched_init(net_sched *s)
{
    for (int i = 0; i < NET_SLOTS; i++) {
        s->heads[i].prev = s->heads[i].next = &s->heads[i];
        s->heads[i].slot = i;
    }
    s->count = 0;
}

void net_sched_push(net_sched *s, net_sched_node *n, int slot)
{
    if (slot < 0)
        slot = 0;
    if (slot >= NET_SLOTS)
        slot = NET_SLOTS - 1;
    net_sched_node *head = &s->heads[slot];
    /* New commands have the largest seq, so the walk from the tail usually stops at once. */
    net_sched_node *after = head->prev;
    while (after != head && after->seq > n->seq)
        after = after->prev;
    n->prev = after;
    n->next = after->next;
    after->next->prev = n;
    after->next = n;
    n->slot = slot;
    s->count++;
}

void net_sched_remove(net_sched *s, net_sched_node *n)
{
    if (n->slot < 0)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
    n->slot = -1;
    s->count--;
}

net_sched_node *net_sched_pick(net_sched *s, bool (*can_start)(void *ctx, net_sched_node *n),
                               void *ctx)
{
    for (int i = 0; i < NET_SLOTS; i++) {
        net_sched_node *head = &s->heads[i];
        for (net_sched_node *n = head->next; n != head; n = n->next) {
            if (!can_start || can_start(ctx, n)) {
                net_sched_remove(s, n);
                return n;
            }
        }
    }
    return NULL;
}

net_sched_node *net_sched_first(net_sched *s, int slot)
{
    net_sched_node *head = &s->heads[slot];
    return head->next == head ? NULL : head->next;
}

net_sched_node *net_sched_next(net_sched *s, net_sched_node *n)
{
    return n->next == &s->heads[n->slot] ? NULL : n->next;
}

void net_hosts_init(net_hosts *h)
{
    memset(h, 0, sizeof *h);
}

void net_hosts_free(net_hosts *h)
{
    for (size_t i = 0; i < h->n; i++)
        platform_free(h->v[i].key);
    platform_free(h->v);
    memset(h, 0, sizeof *h);
}

static struct net_host_count *find_host(const net_hosts *h, const char *key)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->v[i].key, key) == 0)
            return &h->v[i];
    return NULL;
}

unsigned net_hosts_running(const net_hosts *h, const char *key)
{
    struct net_host_count *e = find_host(h, key);
    return e ? e->running : 0;
}

bool net_hosts_acquire(net_hosts *h, const char *key)
{
    struct net_host_count *e = find_host(h, key);
    if (e) {
        e->running++;
        return true;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        struct net_host_count *v = platform_realloc(h->v, cap * sizeof *v);
        if (!v)
            return false;
        h->v = v;
        h->cap = cap;
    }
    char *copy = platform_strdup(key);
    if (!copy)
        return false;
    h->v[h->n].key = copy;
    h->v[h->n].running = 1;
    h->n++;
    return true;
}

void net_hosts_release(net_hosts *h, const char *key)
{
    struct net_host_count *e = find_host(h, key);
    if (!e)
        return;
    if (--e->running == 0) {
        platform_free(e->key);
        *e = h->v[--h->n];
    }
}
