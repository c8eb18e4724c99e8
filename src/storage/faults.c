/*
 * faults.c — injected data-file failures and the errno of the last real one: see faults.h.
 */
#include "storage/faults.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

static _Atomic(storage_fault_fn) hook;
static _Atomic(void *) hook_user;
static _Thread_local int last_errno;

void storage_set_fault_hook(storage_fault_fn fn, void *user)
{
    /* The user first, so a caller that sees the new function sees its user too. */
    if (fn)
        atomic_store(&hook_user, user);
    atomic_store(&hook, fn);
    if (!fn)
        atomic_store(&hook_user, NULL);
}

int storage_fault(storage_io_op op, const char *path)
{
    storage_fault_fn fn = atomic_load_explicit(&hook, memory_order_acquire);
    if (!fn)
        return 0;
    int e = fn(atomic_load(&hook_user), op, path);
    if (e != 0)
        errno = e;
    return e;
}

int storage_last_errno(void)
{
    return last_errno;
}

void storage_note_errno(int errnum)
{
    last_errno = errnum;
}
