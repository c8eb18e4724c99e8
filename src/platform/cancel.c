/*
 * cancel.c — the cancel-token tree.
 *
 * All structure (parent/child links, waker lists, firing counts) is guarded by one process-wide
 * lock, tree_lock. Tokens are created and cancelled far less often than they are checked, and the
 * check is a lock-free atomic load, so one lock costs nothing measurable and makes subtree
 * cancellation trivially consistent.
 *
 * Invariants:
 * - A token's `cancelled` flag goes false → true once and never back.
 * - A waker is on exactly one token's list while registered; a cancel moves the wakers of every
 *   newly cancelled token onto a private fire list (linked through fire_next) and marks them
 *   firing, so the list can be walked after tree_lock is released without racing removal.
 * - remove_waker waits (on tree_cond) until firing drops to zero.
 */
#include "platform/cancel.h"

#include "platform/sync.h"
#include "platform/mem.h"

#include <stdatomic.h>
#include <stdlib.h>

struct platform_cancel {
    atomic_bool cancelled;
    atomic_int refs;
    platform_cancel *parent;
    platform_cancel *first_child, *next_sibling, *prev_sibling;
    platform_cancel_waker *wakers;
};

static pthread_mutex_t tree_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tree_cond = PTHREAD_COND_INITIALIZER;

platform_cancel *platform_cancel_new(platform_cancel *parent)
{
    platform_cancel *t = platform_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    atomic_init(&t->refs, 1);
    atomic_init(&t->cancelled, false);
    if (parent) {
        pthread_mutex_lock(&tree_lock);
        t->parent = platform_cancel_ref(parent);
        t->next_sibling = parent->first_child;
        if (parent->first_child)
            parent->first_child->prev_sibling = t;
        parent->first_child = t;
        if (atomic_load(&parent->cancelled))
            atomic_store(&t->cancelled, true);
        pthread_mutex_unlock(&tree_lock);
    }
    return t;
}

platform_cancel *platform_cancel_ref(platform_cancel *token)
{
    if (token)
        atomic_fetch_add(&token->refs, 1);
    return token;
}

void platform_cancel_unref(platform_cancel *token)
{
    while (token) {
        if (atomic_fetch_sub(&token->refs, 1) != 1)
            return;
        platform_cancel *parent = token->parent;
        pthread_mutex_lock(&tree_lock);
        if (parent) {
            if (token->prev_sibling)
                token->prev_sibling->next_sibling = token->next_sibling;
            else
                parent->first_child = token->next_sibling;
            if (token->next_sibling)
                token->next_sibling->prev_sibling = token->prev_sibling;
        }
        /* Children hold a reference to us, so none can remain. */
        pthread_mutex_unlock(&tree_lock);
        platform_free(token);
        token = parent; /* drop the reference the child held, iteratively */
    }
}

/* Marks `t` and its subtree cancelled and moves their wakers onto *fire. Iterative depth-first
 * walk (no recursion: trees may be deep). Called with tree_lock held. */
static void cancel_subtree_locked(platform_cancel *root, platform_cancel_waker **fire)
{
    platform_cancel *t = root;
    while (t) {
        if (!atomic_load(&t->cancelled)) {
            atomic_store(&t->cancelled, true);
            platform_cancel_waker *w = t->wakers;
            while (w) {
                platform_cancel_waker *next = w->next;
                w->firing++;
                w->token = NULL;
                w->prev = w->next = NULL;
                w->fire_next = *fire;
                *fire = w;
                w = next;
            }
            t->wakers = NULL;
        }
        /* Next node in pre-order, not leaving root's subtree. */
        if (t->first_child) {
            t = t->first_child;
            continue;
        }
        while (t != root && !t->next_sibling)
            t = t->parent;
        t = (t == root) ? NULL : t->next_sibling;
    }
}

void platform_cancel_cancel(platform_cancel *token)
{
    if (!token)
        return;
    platform_cancel_waker *fire = NULL;
    pthread_mutex_lock(&tree_lock);
    cancel_subtree_locked(token, &fire);
    pthread_mutex_unlock(&tree_lock);
    if (!fire)
        return;

    /* Every waker of the batch stays marked firing until all callbacks have run, so none can
     * be freed (remove_waker waits) while this walks the list. Wake callbacks only signal; they
     * must not block, or a remove_waker of another waker in the batch would wait on them. */
    for (platform_cancel_waker *w = fire; w; w = w->fire_next)
        w->wake(w->arg);

    pthread_mutex_lock(&tree_lock);
    for (platform_cancel_waker *w = fire, *next; w; w = next) {
        next = w->fire_next;
        w->fire_next = NULL;
        w->firing--;
    }
    pthread_cond_broadcast(&tree_cond);
    pthread_mutex_unlock(&tree_lock);
}

bool platform_cancel_is_cancelled(const platform_cancel *token)
{
    return token && atomic_load(&((platform_cancel *)token)->cancelled);
}

bool platform_cancel_add_waker(platform_cancel *token, platform_cancel_waker *w,
                               void (*wake)(void *arg), void *arg)
{
    w->wake = wake;
    w->arg = arg;
    w->token = NULL;
    w->prev = w->next = w->fire_next = NULL;
    w->firing = 0;
    if (!token)
        return false;
    pthread_mutex_lock(&tree_lock);
    bool ok = !atomic_load(&token->cancelled);
    if (ok) {
        w->token = token;
        w->next = token->wakers;
        if (token->wakers)
            token->wakers->prev = w;
        token->wakers = w;
    }
    pthread_mutex_unlock(&tree_lock);
    return ok;
}

void platform_cancel_remove_waker(platform_cancel_waker *w)
{
    pthread_mutex_lock(&tree_lock);
    if (w->token) {
        if (w->prev)
            w->prev->next = w->next;
        else
            w->token->wakers = w->next;
        if (w->next)
            w->next->prev = w->prev;
        w->token = NULL;
        w->prev = w->next = NULL;
    }
    while (w->firing > 0)
        pthread_cond_wait(&tree_cond, &tree_lock);
    pthread_mutex_unlock(&tree_lock);
}
