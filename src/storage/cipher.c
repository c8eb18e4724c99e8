/*
 * cipher.c — AES-256-CTR at any offset and HMAC-SHA256 tags, with keys from HKDF-SHA256
 * (see cipher.h). Only OpenSSL primitives; nothing here is home-made cryptography.
 *
 * The EVP context is keyed once at creation; a call re-initialises only its IV (the counter),
 * which costs no key expansion, and skips the keystream bytes before an offset that is not a
 * multiple of 16 by encrypting that many zero bytes and dropping them.
 */
#include "storage/cipher.h"

#include "platform/sync.h"
#include "platform/mem.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define SALT "kithara protected cache v1"

struct storage_cipher {
    platform_mutex lock; /* guards ctx */
    EVP_CIPHER_CTX *ctx;
    uint8_t mac_key[32];
};

/* HKDF-SHA256(secret, SALT, label || identity) into out[32]. */
static kth_status derive(const uint8_t *secret, const char *label, const char *identity,
                         uint8_t out[32])
{
    char info[512];
    size_t ll = strlen(label), il = identity ? strlen(identity) : 0;
    if (ll + il > sizeof info)
        return KTH_ERR_INVALID_ARG;
    memcpy(info, label, ll);
    if (il)
        memcpy(info + ll, identity, il);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!kctx)
        return KTH_ERR_INTERNAL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, STORAGE_SECRET_SIZE),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)SALT, sizeof SALT - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, ll + il),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(kctx, out, 32, params);
    EVP_KDF_CTX_free(kctx);
    OPENSSL_cleanse(info, sizeof info);
    return ok == 1 ? KTH_OK : KTH_ERR_INTERNAL;
}

kth_status storage_cipher_check_value(const uint8_t secret[STORAGE_SECRET_SIZE],
                                      uint8_t out[STORAGE_SECRET_SIZE])
{
    if (!secret || !out)
        return KTH_ERR_INVALID_ARG;
    return derive(secret, "check", NULL, out);
}

kth_status storage_cipher_new(const uint8_t secret[STORAGE_SECRET_SIZE], const char *identity,
                              storage_cipher **out)
{
    if (!secret || !identity || !out)
        return KTH_ERR_INVALID_ARG;
    storage_cipher *c = platform_calloc(1, sizeof *c);
    if (!c)
        return KTH_ERR_NO_MEMORY;
    if (platform_mutex_init(&c->lock) != KTH_OK) {
        platform_free(c);
        return KTH_ERR_NO_MEMORY;
    }
    uint8_t key[32];
    kth_status st = derive(secret, "data:", identity, key);
    if (st == KTH_OK)
        st = derive(secret, "mac:", identity, c->mac_key);
    if (st == KTH_OK && !(c->ctx = EVP_CIPHER_CTX_new()))
        st = KTH_ERR_NO_MEMORY;
    if (st == KTH_OK && EVP_EncryptInit_ex(c->ctx, EVP_aes_256_ctr(), NULL, key, NULL) != 1)
        st = KTH_ERR_INTERNAL;
    OPENSSL_cleanse(key, sizeof key);
    if (st != KTH_OK) {
        storage_cipher_free(c);
        return st;
    }
    *out = c;
    return KTH_OK;
}

void storage_cipher_free(storage_cipher *c)
{
    if (!c)
        return;
    EVP_CIPHER_CTX_free(c->ctx);
    OPENSSL_cleanse(c->mac_key, sizeof c->mac_key);
    platform_mutex_destroy(&c->lock);
    platform_free(c);
}

/* Sets the counter to block offset / 16 and consumes the keystream up to offset. Lock held. */
static bool seek_locked(storage_cipher *c, uint64_t offset)
{
    uint8_t iv[16] = {0};
    uint64_t block = offset / 16;
    for (int i = 0; i < 8; i++)
        iv[15 - i] = (uint8_t)(block >> (8 * i));
    if (EVP_EncryptInit_ex(c->ctx, NULL, NULL, NULL, iv) != 1)
        return false;
    int skip = (int)(offset % 16), got = 0;
    uint8_t zero[16] = {0}, junk[16];
    return skip == 0 || EVP_EncryptUpdate(c->ctx, junk, &got, zero, skip) == 1;
}

kth_status storage_cipher_apply(storage_cipher *c, uint64_t offset, const uint8_t *in, uint8_t *out,
                                size_t n)
{
    if (!c || (n && (!in || !out)))
        return KTH_ERR_INVALID_ARG;
    platform_mutex_lock(&c->lock);
    bool ok = seek_locked(c, offset);
    while (ok && n > 0) {
        int slice = n > (size_t)(INT_MAX / 2) ? INT_MAX / 2 : (int)n, got = 0;
        ok = EVP_EncryptUpdate(c->ctx, out, &got, in, slice) == 1 && got == slice;
        in += slice;
        out += slice;
        n -= (size_t)slice;
    }
    platform_mutex_unlock(&c->lock);
    return ok ? KTH_OK : KTH_ERR_INTERNAL;
}

kth_status storage_cipher_tag(storage_cipher *c, const uint8_t *ct, uint64_t length,
                              uint8_t tag[STORAGE_TAG_SIZE])
{
    if (!c || !tag || (length && !ct) || length > STORAGE_TAG_MAX_LENGTH)
        return KTH_ERR_INVALID_ARG;
    uint8_t len_le[8];
    for (int i = 0; i < 8; i++)
        len_le[i] = (uint8_t)(length >> (8 * i));
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    if (!mctx)
        return KTH_ERR_INTERNAL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t out_len = 0;
    bool ok = EVP_MAC_init(mctx, c->mac_key, sizeof c->mac_key, params) == 1 &&
              EVP_MAC_update(mctx, len_le, sizeof len_le) == 1 &&
              (length == 0 || EVP_MAC_update(mctx, ct, (size_t)length) == 1) &&
              EVP_MAC_final(mctx, tag, &out_len, STORAGE_TAG_SIZE) == 1 &&
              out_len == STORAGE_TAG_SIZE;
    EVP_MAC_CTX_free(mctx);
    return ok ? KTH_OK : KTH_ERR_INTERNAL;
}
