/*
 * budget.c — keeping the budget between checkpoints, and saying when it cannot be kept.
 *
 * A handle records its bytes in the index only at checkpoints (every checkpoint_bytes or
 * checkpoint_ms), so total_bytes lags what the data files hold by up to that much per writer.
 * The cache therefore also counts the bytes written and not yet recorded (`pending`), and a write
 * that takes recorded + pending past `check_at` runs an eviction pass at once, which evicts down
 * to the budget minus what is pending. Writes pay two atomic loads and one add; no lock.
 *
 * When a pass cannot get down to the budget (everything left is leased or pinned), the cache is
 * "over" until a later pass gets there: over_state counts these episodes, odd while one lasts.
 * The next check is then due only after another step of writing (or when an asset is released
 * or unpinned), so a cache full of playing streams does not run a pass per write. Streams poll
 * over_state on their writes (cache_resource_budget_news) and tell their bus.
 */
#include "cache/cache_internal.h"

#include "platform/log.h"

#include <stdio.h>
#include <string.h>

/* While over: the bytes written between two passes (1/64 of the budget, at least 1 MiB). */
static uint64_t over_step(const kth_cache *c)
{
    uint64_t step = c->budget / 64;
    return step > ((uint64_t)1 << 20) ? step : (uint64_t)1 << 20;
}

void cache_set_total_locked(kth_cache *c, uint64_t total)
{
    c->total_bytes = total;
    atomic_store(&c->recorded, total);
}

bool cache_budget_wrote(kth_cache *c, uint64_t n)
{
    if (c->budget == 0)
        return false;
    uint64_t pending = atomic_fetch_add(&c->pending, n) + n;
    return atomic_load(&c->recorded) + pending > atomic_load(&c->check_at);
}

void cache_budget_checkpointed(kth_cache *c, uint64_t n)
{
    if (c->budget != 0 && n > 0)
        atomic_fetch_sub(&c->pending, n);
}

void cache_budget_passed_locked(kth_cache *c)
{
    uint64_t sum = c->total_bytes + atomic_load(&c->pending);
    uint64_t state = atomic_load(&c->over_state);
    if (sum <= c->budget) {
        atomic_store(&c->check_at, c->budget);
        if (state & 1) {
            atomic_store(&c->over_state, state + 1);
            platform_log(KTH_LOG_INFO, "cache", "back within the budget of %llu bytes",
                         (unsigned long long)c->budget);
        }
        return;
    }
    atomic_store(&c->check_at, sum + over_step(c));
    atomic_store(&c->over_bytes, sum);
    if (!(state & 1)) {
        atomic_store(&c->over_state, state + 1);
        platform_log(KTH_LOG_WARN, "cache",
                     "%llu bytes over the budget of %llu: everything left is in use (leased or "
                     "pinned)",
                     (unsigned long long)(sum - c->budget), (unsigned long long)c->budget);
    }
}

kth_event_kind cache_resource_budget_news(cache_resource *h, atomic_uint_fast64_t *seen,
                                          kth_event *ev)
{
    kth_cache *c = h->asset->cache;
    uint64_t state = atomic_load(&c->over_state);
    uint64_t was = atomic_load(seen);
    if (state == was || !atomic_compare_exchange_strong(seen, &was, state))
        return KTH_EVENT_NONE; /* nothing new, or another writer of the stream tells it */
    if (!(state & 1) && !(was & 1))
        return KTH_EVENT_NONE; /* an episode this stream never heard of began and ended */
    memset(ev, 0, sizeof *ev);
    ev->status = KTH_OK;
    ev->payload.cache.budget = c->budget;
    if (state & 1) {
        uint64_t bytes = atomic_load(&c->over_bytes);
        ev->kind = KTH_EVENT_CACHE_OVER_BUDGET;
        ev->payload.cache.bytes = bytes;
        snprintf(ev->text, sizeof ev->text,
                 "the cache is %llu bytes over its budget of %llu: all it holds is in use",
                 (unsigned long long)(bytes > c->budget ? bytes - c->budget : 0),
                 (unsigned long long)c->budget);
    } else {
        ev->kind = KTH_EVENT_CACHE_WITHIN_BUDGET;
        ev->payload.cache.bytes = atomic_load(&c->recorded) + atomic_load(&c->pending);
        snprintf(ev->text, sizeof ev->text, "the cache is back within its budget of %llu bytes",
                 (unsigned long long)c->budget);
    }
    return ev->kind;
}
