/*
 * file_handles.c — the open-descriptor table behind storage_file (file_handles.h).
 *
 * Lock: handles_lock (a leaf: nothing else is locked while it is held, and no callback runs
 * under it) guards every storage_file's fd, users and list links, and the counters.
 *
 * Invariants: open_count is the number of storage_files with fd >= 0; an open file nobody is
 * using (users == 0) is in the idle list, most recently used first; a file in use is never
 * closed. The cap can be passed only while every open file is in use (I/O never waits for a
 * descriptor).
 */
#include "storage/file_handles.h"
#include "platform/mem.h"
#include "storage/faults.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct storage_file {
    char *path;
    int reopen_flags;
    dev_t dev;
    ino_t ino;
    struct timespec born;        /* zero where the file system keeps no birth time */
    int fd;                      /* -1 while closed */
    unsigned users;              /* I/O calls using fd now */
    storage_file *newer, *older; /* the idle list, while open and unused */
};

/* When the file was made: an inode number freed and given to a new file gets a new birth time.
 * Zero when the file system does not say. */
static struct timespec birth_time(int fd)
{
    struct timespec t = {0, 0};
#ifdef STATX_BTIME
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &sx) == 0 && (sx.stx_mask & STATX_BTIME)) {
        t.tv_sec = (time_t)sx.stx_btime.tv_sec;
        t.tv_nsec = (long)sx.stx_btime.tv_nsec;
    }
#else
    (void)fd;
#endif
    return t;
}

static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static storage_file *idle_newest, *idle_oldest;
static size_t open_count, open_cap;

static size_t default_cap(void)
{
    struct rlimit rl;
    size_t cap = 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        cap = (size_t)(rl.rlim_cur / 4);
    else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        cap = 4096;
    return cap < 16 ? 16 : cap > 4096 ? 4096 : cap;
}

/* Lock held. */
static size_t cap_locked(void)
{
    if (open_cap == 0)
        open_cap = default_cap();
    return open_cap;
}

static void idle_remove_locked(storage_file *f)
{
    if (f->newer)
        f->newer->older = f->older;
    else
        idle_newest = f->older;
    if (f->older)
        f->older->newer = f->newer;
    else
        idle_oldest = f->newer;
    f->newer = f->older = NULL;
}

static void idle_push_locked(storage_file *f)
{
    f->newer = NULL;
    f->older = idle_newest;
    if (idle_newest)
        idle_newest->newer = f;
    else
        idle_oldest = f;
    idle_newest = f;
}

/* Closes the least recently used idle file; false when none is idle. Lock held. */
static bool close_oldest_locked(void)
{
    storage_file *f = idle_oldest;
    if (!f)
        return false;
    idle_remove_locked(f);
    close(f->fd);
    f->fd = -1;
    open_count--;
    return true;
}

/* Opens f again by its path; checks it is still the same file. Lock held. */
static kth_status reopen_locked(storage_file *f)
{
    while (open_count >= cap_locked() && close_oldest_locked()) {
    }
    int fd =
        storage_fault(STORAGE_IO_OPEN, f->path) ? -1 : open(f->path, f->reopen_flags | O_CLOEXEC);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && close_oldest_locked())
        fd = open(f->path, f->reopen_flags | O_CLOEXEC);
    if (fd < 0) {
        storage_note_errno(errno);
        return KTH_ERR_IO;
    }
    struct stat st;
    struct timespec born = birth_time(fd);
    if (fstat(fd, &st) != 0 || st.st_dev != f->dev || st.st_ino != f->ino ||
        born.tv_sec != f->born.tv_sec || born.tv_nsec != f->born.tv_nsec) {
        close(fd); /* removed or replaced: not our bytes */
        storage_note_errno(ESTALE);
        return KTH_ERR_IO;
    }
    f->fd = fd;
    open_count++;
    return KTH_OK;
}

/* The descriptor of f, held for one I/O call (give it back with release). */
static kth_status acquire(storage_file *f, int *fd)
{
    pthread_mutex_lock(&handles_lock);
    kth_status st = KTH_OK;
    if (f->fd < 0)
        st = reopen_locked(f);
    else if (f->users == 0)
        idle_remove_locked(f);
    if (st == KTH_OK) {
        f->users++;
        *fd = f->fd;
    }
    pthread_mutex_unlock(&handles_lock);
    return st;
}

static void release(storage_file *f)
{
    pthread_mutex_lock(&handles_lock);
    if (--f->users == 0) {
        if (open_count > cap_locked()) {
            close(f->fd); /* over the cap while every file was busy: give this one back */
            f->fd = -1;
            open_count--;
        } else {
            idle_push_locked(f);
        }
    }
    pthread_mutex_unlock(&handles_lock);
}

kth_status storage_file_adopt(int fd, const char *path, int reopen_flags, storage_file **out)
{
    struct stat st;
    storage_file *f = platform_calloc(1, sizeof *f);
    char *p = path ? platform_strdup(path) : NULL;
    if (!f || !p || fstat(fd, &st) != 0) {
        kth_status why = f && p ? KTH_ERR_IO : KTH_ERR_NO_MEMORY;
        platform_free(f);
        platform_free(p);
        close(fd);
        return why;
    }
    f->path = p;
    f->reopen_flags = reopen_flags & ~(O_CREAT | O_TRUNC | O_EXCL);
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->born = birth_time(fd);
    f->fd = fd;
    pthread_mutex_lock(&handles_lock);
    open_count++;
    idle_push_locked(f);
    while (open_count > cap_locked() && idle_oldest != f && close_oldest_locked()) {
    }
    pthread_mutex_unlock(&handles_lock);
    *out = f;
    return KTH_OK;
}

void storage_file_free(storage_file *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&handles_lock);
    if (f->fd >= 0) {
        if (f->users == 0)
            idle_remove_locked(f);
        close(f->fd);
        open_count--;
    }
    pthread_mutex_unlock(&handles_lock);
    platform_free(f->path);
    platform_free(f);
}

/* Records errnum as this thread's last failure; KTH_ERR_IO. */
static kth_status io_failed(int errnum)
{
    storage_note_errno(errnum);
    return KTH_ERR_IO;
}

kth_status storage_file_pread(storage_file *f, uint64_t offset, uint8_t *dst, size_t n)
{
    int fd;
    kth_status st = acquire(f, &fd);
    if (st != KTH_OK)
        return st;
    size_t done = 0;
    if (storage_fault(STORAGE_IO_READ, f->path))
        st = io_failed(errno);
    while (st == KTH_OK && done < n) {
        ssize_t m = pread(fd, dst + done, n - done, (off_t)(offset + done));
        if (m < 0 && errno == EINTR)
            continue;
        if (m <= 0) /* an error, or a file shorter than the bytes published */
            st = io_failed(m < 0 ? errno : EIO);
        else
            done += (size_t)m;
    }
    release(f);
    return st;
}

kth_status storage_file_pwrite(storage_file *f, uint64_t offset, const uint8_t *src, size_t n)
{
    int fd;
    kth_status st = acquire(f, &fd);
    if (st != KTH_OK)
        return st;
    size_t done = 0;
    if (storage_fault(STORAGE_IO_WRITE, f->path))
        st = io_failed(errno);
    while (st == KTH_OK && done < n) {
        ssize_t m = pwrite(fd, src + done, n - done, (off_t)(offset + done));
        if (m < 0 && errno == EINTR)
            continue;
        if (m <= 0)
            st = io_failed(m < 0 ? errno : ENOSPC);
        else
            done += (size_t)m;
    }
    release(f);
    return st;
}

kth_status storage_file_datasync(storage_file *f)
{
    int fd;
    kth_status st = acquire(f, &fd);
    if (st != KTH_OK)
        return st;
    if (storage_fault(STORAGE_IO_SYNC, f->path))
        st = io_failed(errno);
    while (st == KTH_OK && fdatasync(fd) != 0) {
        if (errno != EINTR)
            st = io_failed(errno);
    }
    release(f);
    return st;
}

void storage_file_start_writeback(storage_file *f, uint64_t offset, uint64_t len)
{
#ifdef __linux__
    int fd;
    if (offset > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - offset)
        return;
    if (acquire(f, &fd) != KTH_OK)
        return;
    (void)sync_file_range(fd, (off_t)offset, (off_t)len, SYNC_FILE_RANGE_WRITE);
    release(f);
#else
    (void)f;
    (void)offset;
    (void)len;
#endif
}

void storage_file_set_open_cap(size_t cap)
{
    pthread_mutex_lock(&handles_lock);
    open_cap = cap ? cap : default_cap();
    while (open_count > open_cap && close_oldest_locked()) {
    }
    pthread_mutex_unlock(&handles_lock);
}

size_t storage_file_open_cap(void)
{
    pthread_mutex_lock(&handles_lock);
    size_t cap = cap_locked();
    pthread_mutex_unlock(&handles_lock);
    return cap;
}

size_t storage_file_open_count(void)
{
    pthread_mutex_lock(&handles_lock);
    size_t n = open_count;
    pthread_mutex_unlock(&handles_lock);
    return n;
}
