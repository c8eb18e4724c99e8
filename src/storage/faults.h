/*
 * faults.h — the data files' I/O failures: the errno of the last one, and a hook that makes
 * chosen operations fail (a full disk, a file not permitted, a failing device) so that every
 * path that meets such a failure can be tested.
 */
#ifndef KTH_STORAGE_FAULTS_H
#define KTH_STORAGE_FAULTS_H

typedef enum storage_io_op {
    STORAGE_IO_OPEN,  /* opening a data file (creating it, or again after it was closed) */
    STORAGE_IO_READ,  /* pread */
    STORAGE_IO_WRITE, /* pwrite */
    STORAGE_IO_SYNC,  /* fdatasync */
} storage_io_op;

/* Decides whether an operation on data file `path` fails: 0 lets it run, an errno value makes
 * it fail with that errno before it is tried. May run on any thread, concurrently. */
typedef int (*storage_fault_fn)(void *user, storage_io_op op, const char *path);

/* Installs fn (NULL: none, the default) for every data file of the process. For tests: set it
 * while no data file is used, or with a `user` that stays valid for good. */
void storage_set_fault_hook(storage_fault_fn fn, void *user);

/* The hook's answer for op on path (0 without a hook). Sets errno when it is not 0. Used by
 * the storage layer before each operation. Any thread. */
int storage_fault(storage_io_op op, const char *path);

/* The errno of the last data-file operation that failed on this thread (0: none yet), for a
 * message naming the cause after the status has travelled up. Any thread. */
int storage_last_errno(void);

/* Records errno as this thread's last failure (storage layer only). */
void storage_note_errno(int errnum);

#endif
