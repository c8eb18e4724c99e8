/*
 * aes128.c — AES-128-CBC streaming decryption on OpenSSL's EVP interface.
 *
 * EVP_DecryptUpdate with padding enabled already holds back the final block; EVP_DecryptFinal
 * verifies and strips PKCS#7. We keep our own count of ciphertext bytes for offsets and error
 * messages.
 */
#include "drm/aes128.h"
#include "platform/mem.h"

#include <openssl/evp.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

struct drm_aes128 {
    EVP_CIPHER_CTX *ctx;
    uint64_t bytes_in;
};

kth_status drm_aes128_new(const uint8_t *key, size_t key_len, const uint8_t iv[16],
                          drm_aes128 **out, char *err, size_t errlen)
{
    if (!key || !iv || !out)
        return KTH_ERR_INVALID_ARG;
    if (key_len != DRM_AES128_KEY_SIZE) {
        if (err && errlen)
            snprintf(err, errlen, "AES-128 key is %zu bytes, expected 16", key_len);
        return KTH_ERR_DECRYPT;
    }
    drm_aes128 *d = platform_calloc(1, sizeof *d);
    if (!d)
        return KTH_ERR_NO_MEMORY;
    d->ctx = EVP_CIPHER_CTX_new();
    if (!d->ctx) {
        platform_free(d);
        return KTH_ERR_NO_MEMORY;
    }
    if (EVP_DecryptInit_ex(d->ctx, EVP_aes_128_cbc(), NULL, key, iv) != 1) {
        drm_aes128_free(d);
        if (err && errlen)
            snprintf(err, errlen, "AES-128-CBC initialisation failed");
        return KTH_ERR_INTERNAL;
    }
    EVP_CIPHER_CTX_set_padding(d->ctx, 1);
    *out = d;
    return KTH_OK;
}

void drm_aes128_free(drm_aes128 *d)
{
    if (!d)
        return;
    EVP_CIPHER_CTX_free(d->ctx);
    platform_free(d);
}

kth_status drm_aes128_update(drm_aes128 *d, const uint8_t *in, size_t n, uint8_t *out,
                             size_t *out_len)
{
    *out_len = 0;
    size_t done = 0;
    /* EVP takes int lengths: feed in slices. */
    while (done < n) {
        size_t slice = n - done > (size_t)(INT_MAX - 32) ? (size_t)(INT_MAX - 32) : n - done;
        int produced = 0;
        if (EVP_DecryptUpdate(d->ctx, out + *out_len, &produced, in + done, (int)slice) != 1)
            return KTH_ERR_DECRYPT;
        *out_len += (size_t)produced;
        done += slice;
    }
    d->bytes_in += n;
    return KTH_OK;
}

kth_status drm_aes128_finish(drm_aes128 *d, uint8_t *out, size_t *out_len, char *err, size_t errlen)
{
    *out_len = 0;
    if (d->bytes_in == 0 || d->bytes_in % DRM_AES128_BLOCK != 0) {
        if (err && errlen)
            snprintf(err, errlen,
                     "encrypted segment is %llu bytes, not a whole number of 16-byte blocks",
                     (unsigned long long)d->bytes_in);
        return KTH_ERR_DECRYPT;
    }
    int produced = 0;
    if (EVP_DecryptFinal_ex(d->ctx, out, &produced) != 1) {
        if (err && errlen)
            snprintf(err, errlen, "bad PKCS#7 padding after %llu bytes (wrong key or IV?)",
                     (unsigned long long)d->bytes_in);
        return KTH_ERR_DECRYPT;
    }
    *out_len = (size_t)produced;
    return KTH_OK;
}

uint64_t drm_aes128_bytes_in(const drm_aes128 *d)
{
    return d->bytes_in;
}
