/*
 * resource.c — file- or memory-backed byte container with exact availability tracking.
 *
 * Lock: r->lock guards ranges, state, length and the failure record, and (for memory resources)
 * the chunk table and its bytes. Its place in the lock order: after the stream state lock,
 * before the cache index lock. Nothing is called out with it held except the resource's own
 * condition variable.
 *
 * Invariants:
 * - A byte is in `ranges` only after it has been fully written to the backing store, so a reader
 *   that sees it present reads the right value. For files the write happens before the lock is
 *   taken to publish the range, which keeps slow disk writes out of readers' way; the read of a
 *   present byte likewise happens without the lock (present bytes never change). The one other
 *   way in is storage_resource_restore_ranges on a reopened file nobody has seen yet, where the
 *   owner (the cache index) vouches that the bytes are already in the file.
 * - Restored blocks that have a checksum (restore_sums) are checked before any of their bytes is
 *   handed out (resource_sums.c); a read that finds one waiting for its check leaves the fast
 *   path. The one way bytes leave `ranges` is a damaged block dropped by that check.
 * - A protected file resource (storage_resource_set_cipher) holds only ciphertext in its file:
 *   bytes are encrypted on their way to pwrite and decrypted after pread, at any offset (CTR);
 *   ranges, lengths and offsets are the plaintext's, which CTR keeps byte for byte.
 * - A memory resource in a pool has charged the pool for exactly the chunks it holds, and gives
 *   them back when freed.
 * - COMMITTED implies ranges == [0, length).
 * - State leaves ACTIVE at most once, except that a COMMITTED resource whose damaged block was
 *   dropped is ACTIVE again (same length) until the writer commits it anew.
 */
#include "storage/resource_internal.h"
#include "platform/mem.h"
#include "platform/text.h"
#include "storage/faults.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MEMORY_CHUNK       ((uint64_t)64 * 1024)
#define MEMORY_DEFAULT_MAX ((uint64_t)1 << 30)

struct storage_memory_pool {
    atomic_int refs;
    _Atomic uint64_t used;
    uint64_t limit;
};

kth_status storage_memory_pool_new(uint64_t limit, storage_memory_pool **out)
{
    if (!out)
        return KTH_ERR_INVALID_ARG;
    storage_memory_pool *p = platform_calloc(1, sizeof *p);
    if (!p)
        return KTH_ERR_NO_MEMORY;
    atomic_init(&p->refs, 1);
    atomic_init(&p->used, 0);
    p->limit = limit;
    *out = p;
    return KTH_OK;
}

storage_memory_pool *storage_memory_pool_ref(storage_memory_pool *pool)
{
    if (pool)
        atomic_fetch_add(&pool->refs, 1);
    return pool;
}

void storage_memory_pool_unref(storage_memory_pool *pool)
{
    if (pool && atomic_fetch_sub(&pool->refs, 1) == 1)
        platform_free(pool);
}

uint64_t storage_memory_pool_used(const storage_memory_pool *pool)
{
    return pool ? atomic_load(&((storage_memory_pool *)pool)->used) : 0;
}

/* Charges `n` bytes to the pool unless that would pass its limit. */
static bool pool_charge(storage_memory_pool *pool, uint64_t n)
{
    uint64_t used = atomic_load(&pool->used);
    do {
        if (used > pool->limit || n > pool->limit - used)
            return false;
    } while (!atomic_compare_exchange_weak(&pool->used, &used, used + n));
    return true;
}

static kth_status resource_alloc(storage_resource **out)
{
    storage_resource *r = platform_calloc(1, sizeof *r);
    if (!r)
        return KTH_ERR_NO_MEMORY;
    if (platform_mutex_init(&r->lock) != KTH_OK) {
        platform_free(r);
        return KTH_ERR_NO_MEMORY;
    }
    if (platform_cond_init(&r->cond) != KTH_OK) {
        platform_mutex_destroy(&r->lock);
        platform_free(r);
        return KTH_ERR_NO_MEMORY;
    }
    atomic_init(&r->refs, 1);
    storage_range_set_init(&r->ranges);
    r->state = STORAGE_ACTIVE;
    *out = r;
    return KTH_OK;
}

static void set_err(char *err, size_t errlen, const char *what, const char *path, int errnum)
{
    if (err && errlen)
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errnum));
}

kth_status storage_resource_open_file(const char *path, int flags, storage_resource **out,
                                      char *err, size_t errlen)
{
    if (!path || !out)
        return KTH_ERR_INVALID_ARG;
    int oflags = O_RDWR | O_CREAT | O_CLOEXEC;
    if (flags & STORAGE_FILE_TRUNCATE)
        oflags |= O_TRUNC;
    int fd = storage_fault(STORAGE_IO_OPEN, path) ? -1 : open(path, oflags, 0644);
    if (fd < 0) {
        storage_note_errno(errno);
        set_err(err, errlen, "cannot open", path, errno);
        return KTH_ERR_IO;
    }
    storage_resource *r;
    if (resource_alloc(&r) != KTH_OK) {
        close(fd);
        return KTH_ERR_NO_MEMORY;
    }
    kth_status st = storage_file_adopt(fd, path, O_RDWR, &r->file);
    if (st != KTH_OK) {
        storage_resource_unref(r);
        set_err(err, errlen, "cannot examine", path, errno);
        return st;
    }
    *out = r;
    return KTH_OK;
}

kth_status storage_resource_open_complete_file(const char *path, storage_resource **out, char *err,
                                               size_t errlen)
{
    if (!path || !out)
        return KTH_ERR_INVALID_ARG;
    int fd = storage_fault(STORAGE_IO_OPEN, path) ? -1 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        storage_note_errno(e);
        set_err(err, errlen, "cannot open", path, e);
        return e == ENOENT ? KTH_ERR_NOT_FOUND : KTH_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, "cannot stat", path, errno);
        close(fd);
        return KTH_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "not a regular file:", path, EINVAL);
        close(fd);
        return KTH_ERR_IO;
    }
    storage_resource *r;
    if (resource_alloc(&r) != KTH_OK) {
        close(fd);
        return KTH_ERR_NO_MEMORY;
    }
    kth_status fst = storage_file_adopt(fd, path, O_RDONLY, &r->file);
    if (fst != KTH_OK) {
        storage_resource_unref(r);
        set_err(err, errlen, "cannot examine", path, errno);
        return fst;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (storage_range_set_add(&r->ranges, 0, size) != KTH_OK) {
        storage_resource_unref(r);
        return KTH_ERR_NO_MEMORY;
    }
    r->length_known = true;
    r->length = size;
    r->state = STORAGE_COMMITTED;
    *out = r;
    return KTH_OK;
}

kth_status storage_resource_new_memory(uint64_t max_bytes, storage_resource **out)
{
    if (!out)
        return KTH_ERR_INVALID_ARG;
    storage_resource *r;
    kth_status st = resource_alloc(&r);
    if (st != KTH_OK)
        return st;
    r->max_bytes = max_bytes ? max_bytes : MEMORY_DEFAULT_MAX;
    *out = r;
    return KTH_OK;
}

kth_status storage_resource_new_memory_in_pool(uint64_t max_bytes, storage_memory_pool *pool,
                                               storage_resource **out)
{
    if (!pool)
        return KTH_ERR_INVALID_ARG;
    kth_status st = storage_resource_new_memory(max_bytes, out);
    if (st == KTH_OK)
        (*out)->pool = storage_memory_pool_ref(pool);
    return st;
}

storage_resource *storage_resource_ref(storage_resource *r)
{
    if (r)
        atomic_fetch_add(&r->refs, 1);
    return r;
}

void storage_resource_unref(storage_resource *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    storage_file_free(r->file);
    storage_cipher_free(r->cipher);
    for (size_t i = 0; i < r->chunk_count; i++)
        platform_free(r->chunks[i]);
    platform_free(r->chunks);
    if (r->pool) {
        atomic_fetch_sub(&r->pool->used, r->charged);
        storage_memory_pool_unref(r->pool);
    }
    storage_range_set_free(&r->ranges);
    storage_sums_state_free(r);
    platform_cond_destroy(&r->cond);
    platform_mutex_destroy(&r->lock);
    platform_free(r);
}

/* Copies into memory chunks; called with the lock held. */
static kth_status memory_write_locked(storage_resource *r, uint64_t offset, const uint8_t *src,
                                      size_t n)
{
    uint64_t end = offset + n;
    size_t need = (size_t)((end + MEMORY_CHUNK - 1) / MEMORY_CHUNK);
    if (need > r->chunk_count) {
        uint8_t **table = platform_realloc(r->chunks, need * sizeof *table);
        if (!table)
            return KTH_ERR_NO_MEMORY;
        memset(table + r->chunk_count, 0, (need - r->chunk_count) * sizeof *table);
        r->chunks = table;
        r->chunk_count = need;
    }
    while (offset < end) {
        size_t idx = (size_t)(offset / MEMORY_CHUNK);
        size_t within = (size_t)(offset % MEMORY_CHUNK);
        size_t len = (size_t)MEMORY_CHUNK - within;
        if (len > end - offset)
            len = (size_t)(end - offset);
        if (!r->chunks[idx]) {
            if (r->pool && !pool_charge(r->pool, MEMORY_CHUNK))
                return KTH_ERR_LIMIT;
            r->chunks[idx] = platform_malloc((size_t)MEMORY_CHUNK);
            if (!r->chunks[idx]) {
                if (r->pool)
                    atomic_fetch_sub(&r->pool->used, MEMORY_CHUNK);
                return KTH_ERR_NO_MEMORY;
            }
            if (r->pool)
                r->charged += MEMORY_CHUNK;
        }
        memcpy(r->chunks[idx] + within, src, len);
        src += len;
        offset += len;
    }
    return KTH_OK;
}

static void memory_read_locked(storage_resource *r, uint64_t offset, uint8_t *dst, size_t n)
{
    while (n > 0) {
        size_t idx = (size_t)(offset / MEMORY_CHUNK);
        size_t within = (size_t)(offset % MEMORY_CHUNK);
        size_t len = (size_t)MEMORY_CHUNK - within;
        if (len > n)
            len = n;
        memcpy(dst, r->chunks[idx] + within, len);
        dst += len;
        offset += len;
        n -= len;
    }
}

kth_status storage_resource_write_at(storage_resource *r, uint64_t offset, const void *buf,
                                     size_t n)
{
    if (!r || (!buf && n))
        return KTH_ERR_INVALID_ARG;
    if (n == 0)
        return KTH_OK;
    if (offset > UINT64_MAX - n || offset + n > (uint64_t)INT64_MAX)
        return KTH_ERR_OUT_OF_RANGE;
    uint64_t end = offset + n;

    platform_mutex_lock(&r->lock);
    kth_status st = KTH_OK;
    if (r->state != STORAGE_ACTIVE)
        st = KTH_ERR_STATE;
    else if (r->length_known && end > r->length)
        st = KTH_ERR_OUT_OF_RANGE;
    else if (!r->file && end > r->max_bytes)
        st = KTH_ERR_LIMIT;
    else if (!r->file) {
        st = memory_write_locked(r, offset, buf, n);
        if (st == KTH_OK)
            st = storage_range_set_add(&r->ranges, offset, end);
        platform_cond_broadcast(&r->cond);
        platform_mutex_unlock(&r->lock);
        return st;
    }
    platform_mutex_unlock(&r->lock);
    if (st != KTH_OK)
        return st;
    return storage_write_file_summed(r, offset, buf, n);
}

kth_status storage_resource_set_length(storage_resource *r, uint64_t length)
{
    if (!r)
        return KTH_ERR_INVALID_ARG;
    kth_status st = KTH_OK;
    platform_mutex_lock(&r->lock);
    if (r->length_known) {
        if (r->length != length)
            st = KTH_ERR_STATE;
    } else if (r->ranges.count > 0 && r->ranges.v[r->ranges.count - 1].end > length) {
        st = KTH_ERR_STATE;
    } else {
        r->length_known = true;
        r->length = length;
        storage_finish_tail_locked(r);
        platform_cond_broadcast(&r->cond);
    }
    platform_mutex_unlock(&r->lock);
    return st;
}

kth_status storage_resource_commit(storage_resource *r, uint64_t length)
{
    if (!r)
        return KTH_ERR_INVALID_ARG;
    kth_status st = KTH_OK;
    platform_mutex_lock(&r->lock);
    bool complete = storage_range_set_contains(&r->ranges, 0, length) &&
                    (r->ranges.count == 0 || r->ranges.v[r->ranges.count - 1].end <= length);
    if (r->state != STORAGE_ACTIVE || (r->length_known && r->length != length) || !complete) {
        st = KTH_ERR_STATE;
    } else {
        r->state = STORAGE_COMMITTED;
        r->length_known = true;
        r->length = length;
        storage_finish_tail_locked(r);
        platform_cond_broadcast(&r->cond);
    }
    platform_mutex_unlock(&r->lock);
    return st;
}

static void end_as(storage_resource *r, storage_state state, kth_status status, const char *message)
{
    platform_mutex_lock(&r->lock);
    if (r->state == STORAGE_ACTIVE) {
        r->state = state;
        r->fail_status = status;
        platform_excerpt(message ? message : kth_strerror(status), r->fail_message,
                         sizeof r->fail_message);
        platform_cond_broadcast(&r->cond);
    }
    platform_mutex_unlock(&r->lock);
}

void storage_resource_fail(storage_resource *r, kth_status status, const char *message)
{
    if (r)
        end_as(r, STORAGE_FAILED, status == KTH_OK ? KTH_ERR_INTERNAL : status, message);
}

void storage_resource_cancel(storage_resource *r)
{
    if (r)
        end_as(r, STORAGE_CANCELLED, KTH_ERR_CANCELLED, NULL);
}

void storage_resource_wake_waiters(storage_resource *r)
{
    if (!r)
        return;
    platform_mutex_lock(&r->lock);
    platform_cond_broadcast(&r->cond);
    platform_mutex_unlock(&r->lock);
}

static void wake_from_cancel(void *arg)
{
    storage_resource_wake_waiters(arg);
}

static bool interrupted(const storage_interrupt *in)
{
    return in && ((in->epoch && atomic_load(in->epoch) != in->seen) ||
                  (in->other_epoch && atomic_load(in->other_epoch) != in->other_seen));
}

/* The outcome for [start, end) given the current state, or -1 to keep waiting. Lock held. */
static int range_outcome_locked(storage_resource *r, uint64_t start, uint64_t end)
{
    if (r->state == STORAGE_COMMITTED) {
        if (start >= r->length)
            return STORAGE_WAIT_EOF;
        return STORAGE_WAIT_READY; /* committed: all of [0, length) is present */
    }
    if (r->length_known && end > r->length)
        end = r->length > start ? r->length : start + 1; /* the end arrives only with commit */
    if (storage_range_set_contains(&r->ranges, start, end))
        return STORAGE_WAIT_READY;
    if (r->state == STORAGE_FAILED)
        return STORAGE_WAIT_FAILED;
    if (r->state == STORAGE_CANCELLED)
        return STORAGE_WAIT_CANCELLED;
    return -1;
}

static int length_outcome_locked(storage_resource *r, uint64_t start, uint64_t end)
{
    (void)start;
    (void)end;
    if (r->length_known)
        return STORAGE_WAIT_READY;
    if (r->state == STORAGE_FAILED)
        return STORAGE_WAIT_FAILED;
    if (r->state == STORAGE_CANCELLED)
        return STORAGE_WAIT_CANCELLED;
    return -1;
}

/* The one waiting loop both waits share: checks the interrupt, the waiter's token, the
 * predicate, then the deadline, and sleeps on the condition variable in between. */
static storage_wait wait_for(storage_resource *r,
                             int (*outcome)(storage_resource *, uint64_t, uint64_t), uint64_t start,
                             uint64_t end, int64_t deadline_ns, platform_cancel *cancel,
                             const storage_interrupt *interrupt)
{
    platform_cancel_waker waker;
    bool registered = platform_cancel_add_waker(cancel, &waker, wake_from_cancel, r);
    storage_wait result;
    platform_mutex_lock(&r->lock);
    for (;;) {
        if (interrupted(interrupt)) {
            result = STORAGE_WAIT_INTERRUPTED;
            break;
        }
        if (platform_cancel_is_cancelled(cancel)) {
            result = STORAGE_WAIT_CANCELLED;
            break;
        }
        int o = outcome(r, start, end);
        if (o >= 0) {
            result = (storage_wait)o;
            break;
        }
        if (deadline_ns != PLATFORM_NO_DEADLINE && platform_monotonic_ns() >= deadline_ns) {
            result = STORAGE_WAIT_TIMEOUT;
            break;
        }
        platform_cond_wait_until(&r->cond, &r->lock, deadline_ns);
    }
    platform_mutex_unlock(&r->lock);
    if (registered)
        platform_cancel_remove_waker(&waker);
    return result;
}

storage_wait storage_resource_wait_range(storage_resource *r, uint64_t start, uint64_t end,
                                         int64_t deadline_ns, platform_cancel *cancel,
                                         const storage_interrupt *interrupt)
{
    if (end <= start)
        end = start + 1;
    return wait_for(r, range_outcome_locked, start, end, deadline_ns, cancel, interrupt);
}

storage_wait storage_resource_wait_length(storage_resource *r, int64_t deadline_ns,
                                          platform_cancel *cancel,
                                          const storage_interrupt *interrupt)
{
    return wait_for(r, length_outcome_locked, 0, 0, deadline_ns, cancel, interrupt);
}

kth_status storage_resource_read_at(storage_resource *r, uint64_t offset, void *buf, size_t n,
                                    size_t *got)
{
    if (got)
        *got = 0;
    if (!r || !got || !buf || n == 0)
        return KTH_ERR_INVALID_ARG; /* n == 0 would read as a proven EOF */
    platform_mutex_lock(&r->lock);
    uint64_t run_end = storage_range_set_run_end(&r->ranges, offset);
    if (run_end == offset) {
        bool eof = r->state == STORAGE_COMMITTED && offset >= r->length;
        platform_mutex_unlock(&r->lock);
        return eof ? KTH_OK : KTH_ERR_RETRY;
    }
    size_t k = run_end - offset < n ? (size_t)(run_end - offset) : n;
    if (!r->file) {
        memory_read_locked(r, offset, buf, k);
        platform_mutex_unlock(&r->lock);
        *got = k;
        return KTH_OK;
    }
    bool check = storage_pending_locked(r, offset, offset + k);
    platform_mutex_unlock(&r->lock);
    if (check)
        return storage_read_checked(r, offset, buf, k, got);
    kth_status st = storage_file_pread(r->file, offset, buf, k);
    if (st == KTH_OK && r->cipher)
        st = storage_cipher_apply(r->cipher, offset, buf, buf, k);
    if (st == KTH_OK)
        *got = k;
    return st;
}

storage_state storage_resource_state(storage_resource *r)
{
    platform_mutex_lock(&r->lock);
    storage_state s = r->state;
    platform_mutex_unlock(&r->lock);
    return s;
}

bool storage_resource_length(storage_resource *r, uint64_t *length)
{
    platform_mutex_lock(&r->lock);
    bool known = r->length_known;
    if (known && length)
        *length = r->length;
    platform_mutex_unlock(&r->lock);
    return known;
}

bool storage_resource_contains(storage_resource *r, uint64_t start, uint64_t end)
{
    platform_mutex_lock(&r->lock);
    bool c = storage_range_set_contains(&r->ranges, start, end);
    platform_mutex_unlock(&r->lock);
    return c;
}

uint64_t storage_resource_present_bytes(storage_resource *r)
{
    platform_mutex_lock(&r->lock);
    uint64_t total = storage_range_set_total(&r->ranges);
    platform_mutex_unlock(&r->lock);
    return total;
}

bool storage_resource_first_gap(storage_resource *r, uint64_t from, uint64_t limit,
                                storage_range *gap)
{
    platform_mutex_lock(&r->lock);
    bool found = storage_range_set_first_gap(&r->ranges, from, limit, gap);
    platform_mutex_unlock(&r->lock);
    return found;
}

kth_status storage_resource_restore_ranges(storage_resource *r, const storage_range *ranges,
                                           size_t count)
{
    if (!r || (!ranges && count))
        return KTH_ERR_INVALID_ARG;
    for (size_t i = 0; i < count; i++)
        if (ranges[i].start >= ranges[i].end || ranges[i].end > (uint64_t)INT64_MAX)
            return KTH_ERR_INVALID_ARG;
    kth_status st = KTH_OK;
    platform_mutex_lock(&r->lock);
    if (!r->file || r->state != STORAGE_ACTIVE || r->ranges.count > 0 || r->length_known) {
        st = KTH_ERR_STATE;
    } else {
        for (size_t i = 0; st == KTH_OK && i < count; i++)
            st = storage_range_set_add(&r->ranges, ranges[i].start, ranges[i].end);
        if (st != KTH_OK)
            storage_range_set_clear(&r->ranges); /* all or nothing */
    }
    platform_mutex_unlock(&r->lock);
    return st;
}

kth_status storage_resource_snapshot(storage_resource *r, storage_snapshot *out)
{
    return storage_resource_snapshot_sums(r, out, NULL);
}

kth_status storage_resource_snapshot_sums(storage_resource *r, storage_snapshot *out,
                                          storage_sums *sums)
{
    if (!r || !out)
        return KTH_ERR_INVALID_ARG;
    storage_range_set_init(&out->ranges);
    kth_status st = KTH_OK;
    platform_mutex_lock(&r->lock);
    if (sums)
        st = storage_sums_copy(sums, &r->sums);
    out->state = r->state;
    out->length_known = r->length_known;
    out->length = r->length;
    if (st == KTH_OK && r->ranges.count > 0) {
        out->ranges.v = platform_malloc(r->ranges.count * sizeof *out->ranges.v);
        if (out->ranges.v) {
            memcpy(out->ranges.v, r->ranges.v, r->ranges.count * sizeof *out->ranges.v);
            out->ranges.count = out->ranges.cap = r->ranges.count;
        } else {
            st = KTH_ERR_NO_MEMORY;
        }
    }
    platform_mutex_unlock(&r->lock);
    return st;
}

kth_status storage_resource_sync(storage_resource *r)
{
    if (!r)
        return KTH_ERR_INVALID_ARG;
    return r->file ? storage_file_datasync(r->file) : KTH_OK;
}

void storage_resource_start_writeback(storage_resource *r, uint64_t offset, uint64_t len)
{
    if (r && r->file)
        storage_file_start_writeback(r->file, offset, len);
}

kth_status storage_resource_error(storage_resource *r, char *buf, size_t buflen)
{
    platform_mutex_lock(&r->lock);
    kth_status st = r->fail_status;
    if (buf && buflen)
        platform_excerpt(r->fail_message, buf, buflen);
    platform_mutex_unlock(&r->lock);
    return st;
}
