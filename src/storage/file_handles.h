/*
 * file_handles.h — the data file of a file resource, opened only while it is used.
 *
 * A process may hold thousands of resources (every segment a stream has touched), but only a
 * bounded number of open file descriptors: each storage_file keeps its descriptor while it is
 * among the most recently used, and the least recently used idle ones are closed once the
 * process-wide cap is reached. A closed file is reopened by its path when next read or written,
 * and only if it is still the very file it was (same device, inode and, where the file
 * system keeps it, birth time): a data file removed or
 * replaced meanwhile is an I/O error, never another file's bytes.
 *
 * Thread-safe: any thread may use any storage_file; one lock guards the table of open files.
 */
#ifndef KTH_STORAGE_FILE_HANDLES_H
#define KTH_STORAGE_FILE_HANDLES_H

#include <kithara/status.h>

#include <stddef.h>
#include <stdint.h>

typedef struct storage_file storage_file;

/* Takes over `fd`, the open descriptor of `path` (copied), and its identity. KTH_ERR_IO when fd
 * cannot be examined, KTH_ERR_NO_MEMORY; on failure fd is closed. */
kth_status storage_file_adopt(int fd, const char *path, int reopen_flags, storage_file **out);

/* Closes the descriptor (if open) and frees f. NULL is accepted. */
void storage_file_free(storage_file *f);

/* pread / pwrite of exactly n bytes; KTH_ERR_IO on failure, on a short file (read), or when the
 * file cannot be reopened. */
kth_status storage_file_pread(storage_file *f, uint64_t offset, uint8_t *dst, size_t n);
kth_status storage_file_pwrite(storage_file *f, uint64_t offset, const uint8_t *src, size_t n);

/* fdatasync, and sync_file_range(WRITE) where the platform has it (best effort; no status).
 * A file whose descriptor was closed has already handed its writes to the kernel; fdatasync
 * reopens it so they reach the disk. */
kth_status storage_file_datasync(storage_file *f);
void storage_file_start_writeback(storage_file *f, uint64_t offset, uint64_t len);

/* The cap on open data-file descriptors of the process. 0 restores the default: a quarter of
 * RLIMIT_NOFILE's soft limit, at least 16 and at most 4096. Any thread. */
void storage_file_set_open_cap(size_t cap);
size_t storage_file_open_cap(void);

/* How many data files are open now. Any thread. */
size_t storage_file_open_count(void);

#endif
