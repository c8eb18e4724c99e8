/*
 * pace.c — a transfer's pace over a sliding stall window (see pace.h).
 */
#include "net/pace.h"

#include <string.h>

#define RING (NET_PACE_SLICES + 1)

/* a + b for b >= 0, held at INT64_MAX (a window may be configured as long as time itself). */
static int64_t add_held(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

void net_pace_start(net_pace *p, int64_t now_ns, int64_t window_ns)
{
    memset(p, 0, sizeof *p);
    p->start_ns = now_ns;
    p->last_byte_ns = now_ns;
    p->window_ns = window_ns > 0 ? window_ns : 1;
    p->slice_ns = p->window_ns / NET_PACE_SLICES > 0 ? p->window_ns / NET_PACE_SLICES : 1;
}

static int64_t slice_of(const net_pace *p, int64_t t)
{
    return t > p->start_ns ? (t - p->start_ns) / p->slice_ns : 0;
}

/* Moves the ring to slice k, emptying the slices it passes. */
static void advance(net_pace *p, int64_t k)
{
    if (k <= p->newest)
        return;
    int64_t from = k - p->newest > RING ? k - RING + 1 : p->newest + 1;
    for (int64_t i = from; i <= k; i++)
        p->bytes[i % RING] = 0;
    p->newest = k;
}

void net_pace_add(net_pace *p, int64_t now_ns, uint64_t n)
{
    advance(p, slice_of(p, now_ns));
    p->bytes[p->newest % RING] += n;
    if (now_ns > p->last_byte_ns)
        p->last_byte_ns = now_ns;
}

bool net_pace_full(const net_pace *p, int64_t now_ns)
{
    return now_ns - p->start_ns >= p->window_ns;
}

uint64_t net_pace_bytes(net_pace *p, int64_t now_ns)
{
    advance(p, slice_of(p, now_ns));
    uint64_t sum = 0;
    for (int i = 0; i < RING; i++)
        sum += p->bytes[i];
    return sum;
}

int64_t net_pace_span_ns(const net_pace *p, int64_t now_ns)
{
    int64_t k = slice_of(p, now_ns);
    int64_t first = k >= RING - 1 ? k - (RING - 1) : 0;
    int64_t from = p->start_ns + first * p->slice_ns;
    return now_ns > from ? now_ns - from : 0;
}

int64_t net_pace_next_check(const net_pace *p, int64_t now_ns)
{
    int64_t quiet_end = add_held(p->last_byte_ns, p->window_ns);
    int64_t next;
    if (!net_pace_full(p, now_ns))
        next = add_held(p->start_ns, p->window_ns);
    else
        next = add_held(p->start_ns, (slice_of(p, now_ns) + 1) * p->slice_ns);
    return quiet_end < next ? quiet_end : next;
}
