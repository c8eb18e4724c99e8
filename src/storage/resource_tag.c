/*
 * resource_tag.c — the cipher of a protected file resource, and the tag that authenticates a
 * small committed object (a key, a playlist) at rest (see storage_resource_write_tag).
 *
 * The tag lies in the data file right after the object's last byte, outside every range the
 * resource or its owner claims, so nothing else in the cache sees it: the index claims
 * [0, length), a file longer than its claims is normal, and eviction deletes the file whole.
 * It covers the length and the ciphertext: encrypt then MAC, checked before decrypting.
 */
#include "storage/resource_internal.h"
#include "platform/mem.h"

#include <openssl/crypto.h>

#include <stdlib.h>
#include <string.h>

kth_status storage_resource_set_cipher(storage_resource *r, storage_cipher *cipher)
{
    kth_status st = KTH_OK;
    if (!r || !cipher)
        st = KTH_ERR_INVALID_ARG;
    else if (!r->file || r->cipher)
        st = KTH_ERR_STATE;
    if (st == KTH_OK) {
        platform_mutex_lock(&r->lock);
        if (r->ranges.count > 0 || r->length_known || r->sums_restored)
            st = KTH_ERR_STATE;
        else
            r->cipher = cipher;
        platform_mutex_unlock(&r->lock);
    }
    if (st != KTH_OK)
        storage_cipher_free(cipher);
    return st;
}

/* The length of a committed resource that takes a tag; false when it takes none. */
static bool tagged_length(storage_resource *r, uint64_t *length)
{
    if (!r || !r->file || !r->cipher)
        return false;
    platform_mutex_lock(&r->lock);
    bool yes = r->state == STORAGE_COMMITTED && r->length <= STORAGE_TAG_MAX_LENGTH;
    *length = r->length;
    platform_mutex_unlock(&r->lock);
    return yes;
}

/* The tag computed from the ciphertext in the file, and (when `stored` is not NULL) the tag
 * the file holds after it. */
static kth_status compute(storage_resource *r, uint64_t length, uint8_t tag[STORAGE_TAG_SIZE],
                          uint8_t *stored)
{
    uint8_t *ct = platform_malloc((size_t)length + STORAGE_TAG_SIZE);
    if (!ct)
        return KTH_ERR_NO_MEMORY;
    size_t want = (size_t)length + (stored ? STORAGE_TAG_SIZE : 0);
    kth_status st = want ? storage_file_pread(r->file, 0, ct, want) : KTH_OK;
    if (st == KTH_OK)
        st = storage_cipher_tag(r->cipher, ct, length, tag);
    if (st == KTH_OK && stored)
        memcpy(stored, ct + length, STORAGE_TAG_SIZE);
    platform_free(ct);
    return st;
}

kth_status storage_resource_write_tag(storage_resource *r)
{
    uint64_t length;
    if (!tagged_length(r, &length))
        return KTH_OK;
    uint8_t tag[STORAGE_TAG_SIZE];
    kth_status st = compute(r, length, tag, NULL);
    if (st == KTH_OK)
        st = storage_file_pwrite(r->file, length, tag, sizeof tag);
    return st;
}

kth_status storage_resource_check_tag(storage_resource *r)
{
    uint64_t length;
    if (!tagged_length(r, &length))
        return KTH_OK;
    uint8_t tag[STORAGE_TAG_SIZE], stored[STORAGE_TAG_SIZE];
    kth_status st = compute(r, length, tag, stored);
    if (st == KTH_ERR_IO)
        return KTH_ERR_PROTECTED; /* shorter than object + tag: no tag, or truncated */
    if (st != KTH_OK)
        return st;
    return CRYPTO_memcmp(tag, stored, sizeof tag) == 0 ? KTH_OK : KTH_ERR_PROTECTED;
}
