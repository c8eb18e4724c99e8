/*
 * holder.c — who holds a lease in the index: a process, told apart from a later process with
 * the same pid by its start time, and a cache handle inside it; and reclaiming the leases of
 * processes that died without ending them (kill -9, a crash).
 *
 * Also the write locks that make one process at a time the writer of a resource.
 *
 * Invariants:
 * - A lease row names a holder that was alive when it was written; once no process with that
 *   pid and start time exists, nothing will ever drop the row but the reclaim here.
 * - The writer lock of resource row `id` is a lock on byte `id` of dir/lock, held by the cache
 *   handle whose open resource handle writes the row; the kernel drops it when that process
 *   dies, so a kill -9 never leaves a resource without a possible writer.
 */
#include "cache/cache_internal.h"

#include "platform/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* The start time of process `pid` (field 22 of /proc/<pid>/stat, in clock ticks since boot);
 * false when it cannot be read. */
static bool start_time_of(int64_t pid, int64_t *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: count from its last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return false;
    long long v = 0;
    if (sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
               "%*d %lld",
               &v) != 1)
        return false;
    *out = v;
    return true;
}

void cache_holder_self(cache_holder *out, int64_t handle)
{
    out->pid = (int64_t)getpid();
    out->started = 0;
    start_time_of(out->pid, &out->started);
    out->handle = handle;
}

bool cache_holder_alive(int64_t pid, int64_t started)
{
    if (pid <= 0 || pid > INT32_MAX)
        return false;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return false;
    int64_t now = 0;
    if (!start_time_of(pid, &now))
        return true; /* exists, but its start cannot be read: assume the holder */
    return now == started;
}

void cache_reclaim_leases_locked(kth_cache *c)
{
    uint64_t n = 0;
    if (cache_index_reclaim_leases(c->index, cache_holder_alive, &n) != KTH_OK)
        platform_log(KTH_LOG_WARN, "cache", "cannot reclaim stale leases: %s",
                     cache_index_errmsg(c->index));
    c->reclaimed_leases += n;
}

/* --- one writer per resource across processes --- */

/* The write lock on byte `id` of dir/lock: an open-file-description lock, so it belongs to this
 * handle's descriptor (two handles of one process exclude each other too) and dies with the
 * process. */
static bool resource_lock(const kth_cache *c, int64_t id, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = (off_t)id, .l_len = 1};
    int rc;
    while ((rc = fcntl(c->lock_fd, F_OFD_SETLK, &fl)) != 0 && errno == EINTR) {
    }
    return rc == 0;
}

bool cache_lock_resource(const kth_cache *c, int64_t id)
{
    if (c->memory_only)
        return true; /* a private index: nobody else writes */
    return id >= 0 && resource_lock(c, id, F_WRLCK);
}

void cache_unlock_resource(const kth_cache *c, int64_t id)
{
    if (!c->memory_only && id >= 0)
        resource_lock(c, id, F_UNLCK);
}
