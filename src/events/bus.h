/*
 * bus.h — what the library's publishers need of the bus beyond kithara/events.h.
 */
#ifndef KTH_EVENTS_BUS_H
#define KTH_EVENTS_BUS_H

#include <kithara/events.h>

#include <stdint.h>

/* Tells every subscription of `bus` that `n` events were lost before they were published (a
 * publisher could not queue them): the next event each subscription takes says so in
 * kth_event.dropped, and kth_subscription_counts counts them, as for a queue that overflowed.
 * Any thread. */
void bus_note_dropped(kth_bus *bus, uint64_t n);

#endif
