/*
 * net/pace.h — the pace of one transfer attempt over its last stall window, for the stall
 * verdicts of the loop.
 *
 * The window slides: bytes are counted in NET_PACE_SLICES slices of window / NET_PACE_SLICES,
 * and the count over "the last window" is that of the newest slices covering at least the
 * window (at most one slice more). A window that merely ended with enough bytes in it never
 * restarts the count from zero, so a body that stops is judged on what came in the window
 * before each verdict, not on a window that began at the last verdict. The time of the newest
 * byte is kept exactly, so a body that stops dead is caught when the window has passed since
 * that byte.
 *
 * Times are on the downloader's clock. Loop thread only; no locks.
 */
#ifndef KTH_NET_PACE_H
#define KTH_NET_PACE_H

#include <stdbool.h>
#include <stdint.h>

#define NET_PACE_SLICES 8

typedef struct net_pace {
    int64_t start_ns;     /* the attempt began */
    int64_t window_ns;    /* the stall window */
    int64_t slice_ns;     /* window_ns / NET_PACE_SLICES, at least 1 */
    int64_t last_byte_ns; /* the newest byte arrived (start_ns until one does) */
    int64_t newest;       /* number of the newest slice counted, from 0 at start_ns */
    uint64_t bytes[NET_PACE_SLICES + 1]; /* per slice, a ring indexed by slice number */
} net_pace;

/* Starts counting at now with a window of window_ns (> 0). */
void net_pace_start(net_pace *p, int64_t now_ns, int64_t window_ns);

/* Counts n bytes that arrived at now (never earlier than the previous call's time). */
void net_pace_add(net_pace *p, int64_t now_ns, uint64_t n);

/* True once a whole window has passed since the start: only then is the count a verdict. */
bool net_pace_full(const net_pace *p, int64_t now_ns);

/* The bytes that arrived in the last window as of now: over at least the window (or since the
 * start, when less has passed), at most one slice more. */
uint64_t net_pace_bytes(net_pace *p, int64_t now_ns);

/* The span the count covers as of now, in ns (for messages). */
int64_t net_pace_span_ns(const net_pace *p, int64_t now_ns);

/* The next time a verdict may change with no byte arriving: the end of the first window, then
 * each slice boundary, and the window's end after the newest byte, whichever comes first. */
int64_t net_pace_next_check(const net_pace *p, int64_t now_ns);

#endif
