/*
 * protect.c — the protected cache (kth_cache_options.secret): settling the secret at open, and
 * giving each data file its cipher.
 *
 * Invariants:
 * - A cache is protected when its index holds the check value "secret_check" (derived from the
 *   secret, storage/cipher.h; it does not reveal the secret). It is recorded only after every
 *   asset stored in the clear was deleted and the orphan files swept (the one time opening scans
 *   the directory), so a protected cache never holds plaintext files that it would then misread
 *   as ciphertext or leave lying around.
 * - Opened with its secret, every data file it opens gets a cipher keyed for that file's name,
 *   before any byte is written or restored. Opened without it, nothing of it is decrypted or
 *   written: cache_asset_open refuses (cache_protect_usable_locked), while the queries and
 *   upkeep that touch only the index and whole files (list, pin, remove, gc) still work.
 * - The secret lives in the handle only (never on disk) and is wiped when the handle goes.
 */
#include "cache/cache_internal.h"

#include "storage/cipher.h"
#include "platform/mem.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_NAME "secret_check"

typedef struct asset_list {
    int64_t *id;
    uint64_t *bytes;
    size_t count, cap;
    bool failed;
} asset_list;

static bool collect(void *arg, const cache_asset_row *row)
{
    asset_list *l = arg;
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        int64_t *id = platform_realloc(l->id, cap * sizeof *id);
        if (id)
            l->id = id;
        uint64_t *bytes = id ? platform_realloc(l->bytes, cap * sizeof *bytes) : NULL;
        if (!bytes) {
            l->failed = true;
            return false;
        }
        l->bytes = bytes;
        l->cap = cap;
    }
    l->id[l->count] = row->id;
    l->bytes[l->count++] = row->bytes;
    return true;
}

/* Deletes every asset (all stored in the clear) and their files, and the files a crash left
 * behind (orphans, in the clear too). Nothing is live yet. Done again by the next open if it is
 * interrupted: the check value is recorded only after it. */
static kth_status delete_clear_assets(kth_cache *c)
{
    asset_list l = {0};
    cache_victims v = {0};
    platform_mutex_lock(&c->lock);
    kth_status st = cache_index_scan_assets(c->index, collect, &l);
    if (st == KTH_OK && l.failed)
        st = KTH_ERR_NO_MEMORY;
    for (size_t i = 0; st == KTH_OK && i < l.count; i++)
        st = cache_delete_asset_locked(c, l.id[i], l.bytes[i], &v);
    platform_mutex_unlock(&c->lock);
    cache_victims_dispose(c, &v);
    platform_free(l.id);
    platform_free(l.bytes);
    if (st == KTH_OK)
        cache_sweep_orphans(c);
    return st;
}

/* The secret from the options into c->secret; false when none is given. */
static kth_status take_secret(kth_cache *c, const kth_cache_options *o, bool *have, char *err,
                              size_t errlen)
{
    *have = false;
    if (o->secret) {
        memcpy(c->secret, o->secret, sizeof c->secret);
        *have = true;
    } else if (o->secret_fn) {
        kth_status st = o->secret_fn(o->secret_user, c->secret);
        if (st != KTH_OK) {
            OPENSSL_cleanse(c->secret, sizeof c->secret);
            snprintf(err, errlen, "the cache secret callback failed (%s)", kth_strerror(st));
            return KTH_ERR_PROTECTED;
        }
        *have = true;
    }
    return KTH_OK;
}

/* Compares the secret with the stored check value, recording it when there is none. */
static kth_status settle_check(kth_cache *c, const uint8_t *stored, bool has_stored, char *err,
                               size_t errlen)
{
    uint8_t check[STORAGE_SECRET_SIZE];
    if (storage_cipher_check_value(c->secret, check) != KTH_OK)
        return KTH_ERR_INTERNAL;
    if (has_stored) {
        if (CRYPTO_memcmp(check, stored, sizeof check) == 0)
            return KTH_OK;
        snprintf(err, errlen, "the cache secret does not match the one that protects %s", c->dir);
        return KTH_ERR_PROTECTED;
    }
    if (!cache_lock_directory(c, true)) {
        snprintf(err, errlen, "cannot turn protection on in %s while another process uses it",
                 c->dir);
        return KTH_ERR_BUSY;
    }
    kth_status st = delete_clear_assets(c);
    if (st == KTH_OK) {
        platform_mutex_lock(&c->lock);
        st = cache_index_put_setting(c->index, CHECK_NAME, check, sizeof check);
        platform_mutex_unlock(&c->lock);
    }
    cache_lock_directory(c, false);
    if (st != KTH_OK)
        snprintf(err, errlen, "cannot turn protection on in %s: %s", c->dir, kth_strerror(st));
    return st;
}

kth_status cache_protect_open(kth_cache *c, const kth_cache_options *o, char *err, size_t errlen)
{
    char scratch[8];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    if (c->memory_only)
        return KTH_OK; /* nothing at rest */
    bool have = false;
    kth_status st = take_secret(c, o, &have, err, errlen);
    if (st != KTH_OK)
        return st;
    uint8_t stored[STORAGE_SECRET_SIZE];
    size_t len = 0;
    platform_mutex_lock(&c->lock);
    st = cache_index_get_setting(c->index, CHECK_NAME, stored, sizeof stored, &len);
    platform_mutex_unlock(&c->lock);
    bool has_stored = st == KTH_OK;
    if (st == KTH_ERR_NOT_FOUND)
        st = KTH_OK;
    if (st != KTH_OK) {
        snprintf(err, errlen, "cannot read cache index in %s", c->dir);
        return st;
    }
    if (has_stored && len != sizeof stored)
        memset(stored, 0, sizeof stored); /* damaged: matches no secret */
    if (!have && o->require_protection) {
        snprintf(err, errlen, "no cache secret given for %s, and protection is required", c->dir);
        return KTH_ERR_PROTECTED;
    }
    if (!have) {
        c->locked = has_stored;
        return KTH_OK;
    }
    st = settle_check(c, stored, has_stored, err, errlen);
    c->protect = st == KTH_OK;
    if (st != KTH_OK)
        OPENSSL_cleanse(c->secret, sizeof c->secret);
    return st;
}

kth_status cache_protect_usable_locked(kth_cache *c, char *err, size_t errlen)
{
    if (!c->locked)
        return KTH_OK;
    cache_set_error_locked(c, "cache %s is protected: its entries open only with its secret",
                           c->dir);
    if (err && errlen)
        snprintf(err, errlen, "%s", c->last_error);
    return KTH_ERR_PROTECTED;
}

kth_status cache_protect_file(const kth_cache *c, const char *file, storage_resource *r)
{
    if (!c->protect)
        return KTH_OK;
    storage_cipher *cipher = NULL;
    kth_status st = storage_cipher_new(c->secret, file, &cipher);
    return st == KTH_OK ? storage_resource_set_cipher(r, cipher) : st;
}
