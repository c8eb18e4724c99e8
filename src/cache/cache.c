/*
 * cache.c — the cache handle: owning a directory and its index, and the queries and upkeep of
 * the public API (kithara/cache.h). Eviction and gc live in evict.c.
 *
 * Invariants (see cache_internal.h for the lock order):
 * - While the handle lives, this process holds a shared flock on dir/lock (taken before the
 *   index is opened, released only after it is closed): any number of processes use the
 *   directory at once, through SQLite's own locking (WAL, busy timeout) and the lease rows that
 *   keep what each of them streams from being evicted by the others. Only turning protection on
 *   (which deletes what the cache held in the clear) needs the lock exclusive.
 * - total_bytes follows SUM(asset.bytes) in the index: this handle adjusts it with each change
 *   it makes, and re-reads it (cache_refresh_total_locked) before it decides on eviction or
 *   reports it, since other processes change the index too.
 * - Opening never scans the directory; kth_cache_gc is the only function that does, besides the
 *   one open that turns protection on (protect.c).
 */
#include "cache/cache_internal.h"

#include "platform/log.h"
#include "platform/options.h"
#include "platform/mem.h"
#include "platform/text.h"

#include <openssl/crypto.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CHECKPOINT_BYTES ((uint64_t)16 << 20)
#define DEFAULT_CHECKPOINT_MS    1000

void kth_cache_options_init(kth_cache_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
}

static void put_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void put_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void cache_set_error_locked(kth_cache *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    platform_vexcerptf(c->last_error, sizeof c->last_error, fmt, ap);
    va_end(ap);
}

int64_t cache_tick_locked(kth_cache *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (now > c->clock_ms)
        c->clock_ms = now;
    else if (c->clock_ms < INT64_MAX) /* saturate: the index may hold any value */
        c->clock_ms++;
    return c->clock_ms;
}

/* The directory from the options or the environment, malloc'd. */
static char *resolve_dir(const char *given)
{
    if (given && *given)
        return platform_strdup(given);
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    const char *base, *suffix;
    if (xdg && xdg[0] == '/') { /* the XDG spec: a relative value is invalid and ignored */
        base = xdg;
        suffix = "/kithara";
    } else if (home && *home) {
        base = home;
        suffix = "/.cache/kithara";
    } else {
        return NULL;
    }
    size_t n = strlen(base) + strlen(suffix) + 1;
    char *dir = platform_malloc(n);
    if (dir)
        snprintf(dir, n, "%s%s", base, suffix);
    return dir;
}

/* mkdir -p; true on success or when it exists as a directory. */
/* Creates path and its missing parents. KTH_OK, KTH_ERR_NO_MEMORY, or KTH_ERR_IO with errno
 * saying why. */
static kth_status make_dirs(const char *path)
{
    size_t n = strlen(path);
    char *p = platform_malloc(n + 1);
    if (!p)
        return KTH_ERR_NO_MEMORY;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            int saved_errno = errno;
            platform_free(p);
            errno = saved_errno;
            return KTH_ERR_IO;
        }
        p[i] = saved;
    }
    platform_free(p);
    struct stat st;
    if (stat(path, &st) != 0)
        return KTH_ERR_IO;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return KTH_ERR_IO;
    }
    return KTH_OK;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = platform_malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", a, b);
    return s;
}

static void destroy(kth_cache *c)
{
    cache_index_close(c->index);
    for (size_t i = 0; i < c->memory_count; i++)
        storage_resource_unref(c->memory[i].storage);
    platform_free(c->memory);
    storage_memory_pool_unref(c->pool);
    if (c->lock_fd >= 0)
        close(c->lock_fd); /* releases the flock, after the index is closed */
    platform_mutex_destroy(&c->lock);
    OPENSSL_cleanse(c->secret, sizeof c->secret);
    platform_free(c->data_dir);
    platform_free(c->dir);
    platform_free(c);
}

void cache_unref(kth_cache *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        destroy(c);
}

/* Takes the directory: creates it, locks it, opens the index. */
static kth_status open_directory(kth_cache *c, const char *given, char *err, size_t errlen)
{
    c->dir = resolve_dir(given);
    if (!c->dir) {
        put_err(err, errlen, "no cache directory: set the dir option, XDG_CACHE_HOME or HOME");
        return given && *given ? KTH_ERR_NO_MEMORY : KTH_ERR_INVALID_ARG;
    }
    c->data_dir = join(c->dir, "data");
    char *lock_path = join(c->dir, "lock");
    char *index_path = join(c->dir, "index.db");
    kth_status st = KTH_OK;
    if (!c->data_dir || !lock_path || !index_path) {
        st = KTH_ERR_NO_MEMORY;
        goto out;
    }
    if ((st = make_dirs(c->data_dir)) != KTH_OK) {
        if (st == KTH_ERR_IO)
            put_err(err, errlen, "cannot create cache directory %s: %s", c->dir, strerror(errno));
        goto out;
    }
    c->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (c->lock_fd < 0) {
        put_err(err, errlen, "cannot open %s: %s", lock_path, strerror(errno));
        st = KTH_ERR_IO;
        goto out;
    }
    int rc;
    while ((rc = flock(c->lock_fd, LOCK_SH)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
        put_err(err, errlen, "cannot lock %s: %s", lock_path, strerror(errno));
        st = KTH_ERR_IO;
        goto out;
    }
    bool rebuilt = false;
    st = cache_index_open(index_path, &c->index, &rebuilt, err, errlen);
    if (st == KTH_OK && rebuilt)
        platform_log(KTH_LOG_WARN, "cache", "cache index %s was damaged and has been rebuilt empty",
                     index_path);
out:
    platform_free(lock_path);
    platform_free(index_path);
    return st;
}

bool cache_lock_directory(kth_cache *c, bool exclusive)
{
    int rc;
    while ((rc = flock(c->lock_fd, (exclusive ? LOCK_EX | LOCK_NB : LOCK_SH))) != 0 &&
           errno == EINTR) {
    }
    return rc == 0;
}

kth_status cache_refresh_total_locked(kth_cache *c)
{
    uint64_t total = 0;
    kth_status st = cache_index_totals(c->index, &total, NULL, NULL, NULL);
    if (st == KTH_OK)
        cache_set_total_locked(c, total);
    return st;
}

kth_status kth_cache_open(const kth_cache_options *opts, kth_cache **out, char *err, size_t errlen)
{
    static atomic_llong handles;
    if (!out)
        return KTH_ERR_INVALID_ARG;
    *out = NULL;
    kth_cache_options given;
    kth_status st = platform_options_copy(
        &given, sizeof given, opts, PLATFORM_OPTIONS_END(kth_cache_options, require_protection));
    if (st != KTH_OK) {
        put_err(err, errlen, "%s",
                st == KTH_ERR_UNSUPPORTED ? "the options set a field this kithara does not know"
                                          : "the options' size is not a kth_cache_options size");
        return st;
    }
    opts = &given;
    if (opts->memory_only && opts->max_bytes == KTH_CACHE_UNBOUNDED) {
        put_err(err, errlen, "a memory-only cache needs a byte bound (not KTH_CACHE_UNBOUNDED)");
        return KTH_ERR_INVALID_ARG;
    }
    if (opts->checkpoint_ms < 0) {
        put_err(err, errlen, "checkpoint_ms must not be negative");
        return KTH_ERR_INVALID_ARG;
    }
    kth_cache *c = platform_calloc(1, sizeof *c);
    if (!c)
        return KTH_ERR_NO_MEMORY;
    if (platform_mutex_init(&c->lock) != KTH_OK) {
        platform_free(c);
        return KTH_ERR_NO_MEMORY;
    }
    atomic_init(&c->refs, 1);
    c->lock_fd = -1;
    cache_holder_self(&c->holder, (int64_t)atomic_fetch_add(&handles, 1) + 1);
    c->memory_only = opts->memory_only;
    c->offline = opts->offline;
    c->durable = !opts->no_sync && !opts->memory_only;
    /* Inside, a budget of 0 means none. */
    c->budget = opts->max_bytes == 0                     ? KTH_CACHE_DEFAULT_BUDGET
                : opts->max_bytes == KTH_CACHE_UNBOUNDED ? 0
                                                         : opts->max_bytes;
    c->checkpoint_bytes =
        opts->checkpoint_bytes ? opts->checkpoint_bytes : DEFAULT_CHECKPOINT_BYTES;
    int64_t ms = opts->checkpoint_ms ? opts->checkpoint_ms : DEFAULT_CHECKPOINT_MS;
    if (ms > INT64_MAX / 1000000)
        ms = INT64_MAX / 1000000;
    c->checkpoint_ns = ms * 1000000;

    if (c->memory_only) {
        st = storage_memory_pool_new(c->budget, &c->pool);
        if (st == KTH_OK)
            st = cache_index_open(NULL, &c->index, NULL, err, errlen);
    } else {
        st = open_directory(c, opts->dir, err, errlen);
    }
    if (st == KTH_OK)
        cache_reclaim_leases_locked(c); /* nobody else sees the handle yet */
    if (st == KTH_OK)
        st = cache_protect_open(c, opts, err, errlen);
    if (st == KTH_OK &&
        cache_index_totals(c->index, &c->total_bytes, NULL, NULL, &c->clock_ms) != KTH_OK) {
        put_err(err, errlen, "cannot read cache index in %s: %s", c->dir ? c->dir : "memory",
                cache_index_errmsg(c->index));
        st = KTH_ERR_IO;
    }
    if (st != KTH_OK) {
        destroy(c);
        return st;
    }
    atomic_store(&c->recorded, c->total_bytes);
    atomic_store(&c->check_at, c->budget); /* the first write past the budget runs a pass */
    *out = c;
    return KTH_OK;
}

void kth_cache_unref(kth_cache *cache)
{
    cache_unref(cache);
}

const char *kth_cache_dir(const kth_cache *cache)
{
    return cache ? cache->dir : NULL;
}

bool cache_is_offline(const kth_cache *cache)
{
    return cache && cache->offline;
}

size_t kth_cache_last_error(kth_cache *cache, char *buf, size_t size)
{
    if (!cache)
        return 0;
    platform_mutex_lock(&cache->lock);
    int n = snprintf(buf, buf ? size : 0, "%s", cache->last_error);
    platform_mutex_unlock(&cache->lock);
    return n > 0 ? (size_t)n : 0;
}

bool cache_asset_is_live_locked(kth_cache *c, int64_t asset_id)
{
    for (cache_asset *a = c->live; a; a = a->next)
        if (a->id == asset_id)
            return true;
    return false;
}

/* --- memory-only resources --- */

storage_resource *cache_memory_find_locked(kth_cache *c, int64_t resource_id)
{
    for (size_t i = 0; i < c->memory_count; i++)
        if (c->memory[i].resource_id == resource_id)
            return c->memory[i].storage;
    return NULL;
}

kth_status cache_memory_put_locked(kth_cache *c, int64_t resource_id, int64_t asset_id,
                                   storage_resource *r, storage_resource **old)
{
    *old = NULL;
    for (size_t i = 0; i < c->memory_count; i++) {
        if (c->memory[i].resource_id == resource_id) {
            *old = c->memory[i].storage;
            c->memory[i].storage = storage_resource_ref(r);
            return KTH_OK;
        }
    }
    if (c->memory_count == c->memory_cap) {
        size_t cap = c->memory_cap ? 2 * c->memory_cap : 16;
        cache_memory_entry *v = platform_realloc(c->memory, cap * sizeof *v);
        if (!v)
            return KTH_ERR_NO_MEMORY;
        c->memory = v;
        c->memory_cap = cap;
    }
    c->memory[c->memory_count++] =
        (cache_memory_entry){resource_id, asset_id, storage_resource_ref(r)};
    return KTH_OK;
}

/* --- public queries and maintenance --- */

/* Finds an asset by URL or by key. Index lock held. */
static kth_status find_by_url_or_key(kth_cache *c, const char *url_or_key, int64_t *id)
{
    char key[CACHE_KEY_HEX];
    kth_status st = cache_key_of(url_or_key, key);
    if (st != KTH_OK)
        return st;
    st = cache_index_find_asset(c->index, key, id);
    if (st == KTH_ERR_NOT_FOUND && cache_is_key(url_or_key))
        st = cache_index_find_asset(c->index, url_or_key, id);
    if (st == KTH_ERR_NOT_FOUND)
        cache_set_error_locked(c, "no cached asset for %s", url_or_key);
    else if (st != KTH_OK)
        cache_set_error_locked(c, "cache index: %s", cache_index_errmsg(c->index));
    return st;
}

kth_status kth_cache_get_stats(kth_cache *cache, kth_cache_stats *out)
{
    if (!cache || !out)
        return KTH_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    kth_cache *c = cache;
    platform_mutex_lock(&c->lock);
    uint64_t total = 0;
    kth_status st = cache_index_totals(c->index, &total, &out->assets, &out->resources, NULL);
    if (st == KTH_OK)
        cache_set_total_locked(c, total);
    if (st == KTH_OK)
        st = cache_index_pinned_bytes(c->index, &out->in_use_bytes);
    for (cache_asset *a = c->live; a && st == KTH_OK; a = a->next) {
        uint64_t bytes = 0;
        bool pinned = false;
        st = cache_index_asset_bytes(c->index, a->id, &bytes, &pinned);
        if (st == KTH_ERR_NOT_FOUND)
            st = KTH_OK;
        else if (!pinned)
            out->in_use_bytes += bytes;
        if (a->leases > 0)
            out->leased_assets++;
    }
    if (st != KTH_OK)
        cache_set_error_locked(c, "cache index: %s", cache_index_errmsg(c->index));
    out->total_bytes = c->total_bytes;
    out->budget_bytes = c->budget ? c->budget : KTH_CACHE_UNBOUNDED;
    out->over_budget = c->budget && c->total_bytes > c->budget ? c->total_bytes - c->budget : 0;
    out->evicted_assets = c->evicted_assets;
    out->evicted_bytes = c->evicted_bytes;
    out->repaired = c->repaired;
    out->memory_only = c->memory_only;
    out->offline = c->offline;
    platform_mutex_unlock(&c->lock);
    out->memory_in_use = storage_memory_pool_used(c->pool);
    return st;
}

struct list_build {
    kth_cache *c;
    kth_cache_asset *v;
    size_t count, cap;
    bool oom;
};

static bool list_add(void *arg, const cache_asset_row *row)
{
    struct list_build *b = arg;
    if (b->count == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 32;
        kth_cache_asset *v = platform_realloc(b->v, cap * sizeof *v);
        if (!v) {
            b->oom = true;
            return false;
        }
        b->v = v;
        b->cap = cap;
    }
    kth_cache_asset *e = &b->v[b->count];
    memset(e, 0, sizeof *e);
    if (cache_is_key(row->key)) /* else a damaged row: "" rather than a key cut to fit */
        memcpy(e->key, row->key, sizeof e->key);
    e->url = platform_strdup(row->url);
    if (!e->url) {
        b->oom = true;
        return false;
    }
    b->count++;
    e->bytes = row->bytes;
    e->known_length = row->known_length;
    e->lengths_known = row->unknown_lengths == 0 && row->resources > 0;
    e->resources = row->resources;
    e->complete = row->complete;
    e->last_use_ms = row->last_use;
    e->pinned = row->pinned;
    e->leased = row->leased || cache_asset_is_live_locked(b->c, row->id);
    return true;
}

kth_status kth_cache_list(kth_cache *cache, kth_cache_asset **out, size_t *count)
{
    if (!cache || !out || !count)
        return KTH_ERR_INVALID_ARG;
    *out = NULL;
    *count = 0;
    struct list_build b = {.c = cache};
    platform_mutex_lock(&cache->lock);
    kth_status st = cache_index_scan_assets(cache->index, list_add, &b);
    if (st != KTH_OK)
        cache_set_error_locked(cache, "cache index: %s", cache_index_errmsg(cache->index));
    platform_mutex_unlock(&cache->lock);
    if (st == KTH_OK && b.oom)
        st = KTH_ERR_NO_MEMORY;
    if (st != KTH_OK) {
        kth_cache_list_free(b.v, b.count);
        return st;
    }
    *out = b.v;
    *count = b.count;
    return KTH_OK;
}

void kth_cache_list_free(kth_cache_asset *list, size_t count)
{
    if (!list)
        return;
    for (size_t i = 0; i < count; i++)
        platform_free(list[i].url);
    platform_free(list);
}

kth_status kth_cache_remove(kth_cache *cache, const char *url_or_key)
{
    if (!cache || !url_or_key)
        return KTH_ERR_INVALID_ARG;
    kth_cache *c = cache;
    cache_victims v = {0};
    int64_t id = 0;
    platform_mutex_lock(&c->lock);
    kth_status st = find_by_url_or_key(c, url_or_key, &id);
    if (st == KTH_OK && cache_asset_is_live_locked(c, id)) {
        cache_set_error_locked(c, "cannot remove %s: a stream is using it", url_or_key);
        st = KTH_ERR_BUSY;
    }
    uint64_t bytes = 0;
    if (st == KTH_OK)
        st = cache_index_asset_bytes(c->index, id, &bytes, NULL);
    if (st == KTH_OK)
        st = cache_delete_asset_locked(c, id, bytes, &v);
    if (st == KTH_ERR_BUSY && !cache_asset_is_live_locked(c, id))
        cache_set_error_locked(c, "cannot remove %s: a stream in another process is using it",
                               url_or_key);
    if (st == KTH_ERR_IO)
        cache_set_error_locked(c, "cannot remove %s: %s", url_or_key, cache_index_errmsg(c->index));
    platform_mutex_unlock(&c->lock);
    cache_victims_dispose(c, &v);
    return st;
}

kth_status kth_cache_pin(kth_cache *cache, const char *url_or_key, bool pinned)
{
    if (!cache || !url_or_key)
        return KTH_ERR_INVALID_ARG;
    int64_t id = 0;
    platform_mutex_lock(&cache->lock);
    kth_status st = find_by_url_or_key(cache, url_or_key, &id);
    if (st == KTH_OK)
        st = cache_index_set_pinned(cache->index, id, pinned);
    if (st == KTH_ERR_IO)
        cache_set_error_locked(cache, "cannot pin %s: %s", url_or_key,
                               cache_index_errmsg(cache->index));
    platform_mutex_unlock(&cache->lock);
    if (st == KTH_OK && !pinned)
        cache_evict_if_over_budget(cache); /* it may go now, if the cache needs the room */
    return st;
}
