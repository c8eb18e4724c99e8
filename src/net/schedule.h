/*
 * schedule.h — the queue of accepted commands waiting for a transfer slot, and per-host counts.
 *
 * Four FIFO slots, served urgent first. A command's slot comes from its peer's priority and its
 * own (net_sched_slot). Within a slot, commands keep the order in which they were accepted
 * (their sequence number), also when they come back from a retry wait or move because their
 * peer's priority changed. A command whose host is at its limit is passed over, without losing
 * its place, for the next one that can start.
 *
 * Pure data structures used only by the downloader's thread: no locks.
 */
#ifndef KTH_NET_SCHEDULE_H
#define KTH_NET_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_SLOTS 4

/* Embedded in each queued command. */
typedef struct net_sched_node {
    struct net_sched_node *prev, *next;
    uint64_t seq; /* acceptance order */
    int slot;     /* 0..NET_SLOTS-1 while queued, -1 otherwise */
} net_sched_node;

typedef struct net_sched {
    net_sched_node heads[NET_SLOTS]; /* circular list sentinels */
    size_t count;
} net_sched;

/* The slot for a peer priority (NET_PEER_*) and a command priority (NET_FETCH_*): 0 is the most
 * urgent. Out-of-range values are clamped. */
int net_sched_slot(int peer_priority, int fetch_priority);

void net_sched_init(net_sched *s);

/* Queues n (not queued) in `slot`, after every node of that slot with a smaller seq. */
void net_sched_push(net_sched *s, net_sched_node *n, int slot);

/* Unqueues n (no effect when it is not queued). */
void net_sched_remove(net_sched *s, net_sched_node *n);

/* Unqueues and returns the first node, in slot order then FIFO, for which can_start(ctx, node)
 * is true; NULL when none can. */
net_sched_node *net_sched_pick(net_sched *s, bool (*can_start)(void *ctx, net_sched_node *n),
                               void *ctx);

/* The first node of a slot and the one after n in its slot (NULL at the end), for walks that
 * do not unqueue the node they stand on. */
net_sched_node *net_sched_first(net_sched *s, int slot);
net_sched_node *net_sched_next(net_sched *s, net_sched_node *n);

/* Running transfers per host key ("scheme://host:port"). */
typedef struct net_hosts {
    struct net_host_count {
        char *key;
        unsigned running;
    } * v;
    size_t n, cap;
} net_hosts;

void net_hosts_init(net_hosts *h);
void net_hosts_free(net_hosts *h);
unsigned net_hosts_running(const net_hosts *h, const char *key);
/* Counts one more transfer for key; false when out of memory. */
bool net_hosts_acquire(net_hosts *h, const char *key);
/* Counts one less; the entry is dropped at zero. */
void net_hosts_release(net_hosts *h, const char *key);

#endif
