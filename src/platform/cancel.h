/*
 * cancel.h — cancel tokens arranged as a tree.
 *
 * A token may have a parent; cancelling a token cancels it and its whole subtree (never its
 * ancestors). Cancellation is sticky and idempotent. A child created under a cancelled parent is
 * born cancelled.
 *
 * Blocking code that must end promptly on cancellation registers a waker on the token it honours
 * (typically a function that broadcasts the condition variable the code sleeps on) and re-checks
 * platform_cancel_is_cancelled() under its own lock before every sleep. Wakers are invoked by the
 * cancelling thread after the tree's lock is released, so a waker may take any lock. Removing a
 * waker waits for a concurrent invocation of it to finish, so the waker's argument may be freed
 * as soon as platform_cancel_remove_waker() returns.
 *
 * Lock order: the tree lock is a leaf; it is never held while calling out.
 * Thread-safety: every function may be called from any thread.
 */
#ifndef KTH_PLATFORM_CANCEL_H
#define KTH_PLATFORM_CANCEL_H

#include <stdbool.h>

typedef struct platform_cancel platform_cancel;

typedef struct platform_cancel_waker {
    void (*wake)(void *arg);
    void *arg;
    /* Private to cancel.c. */
    platform_cancel *token;
    struct platform_cancel_waker *prev, *next, *fire_next;
    int firing;
} platform_cancel_waker;

/* Creates a token, a child of `parent` when parent is not NULL (the child holds a reference to
 * its parent). Returns NULL when out of memory. The caller owns one reference. */
platform_cancel *platform_cancel_new(platform_cancel *parent);

/* Adds a reference; returns `token` (NULL-safe). */
platform_cancel *platform_cancel_ref(platform_cancel *token);

/* Drops a reference; the last one frees the token (NULL-safe). A token with registered wakers
 * must not be released by its last owner. */
void platform_cancel_unref(platform_cancel *token);

/* Cancels the token and its subtree and invokes every waker registered on any of them. Blocks
 * only for those wakers to run. */
void platform_cancel_cancel(platform_cancel *token);

/* True once the token (or an ancestor, at the time of its cancel) was cancelled. Lock-free.
 * NULL is never cancelled. */
bool platform_cancel_is_cancelled(const platform_cancel *token);

/* Registers `w` (owned by the caller, usually on its stack) to be invoked as wake(arg) when the
 * token is cancelled. Returns false, registering nothing, when the token is already cancelled
 * or is NULL. */
bool platform_cancel_add_waker(platform_cancel *token, platform_cancel_waker *w,
                               void (*wake)(void *arg), void *arg);

/* Unregisters `w` if registered; waits for an invocation of it in progress on another thread. Do
 * not call it from inside the waker itself. Safe on a waker that add_waker refused. */
void platform_cancel_remove_waker(platform_cancel_waker *w);

#endif
