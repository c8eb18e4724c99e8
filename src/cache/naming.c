/*
 * naming.c — SHA-256 keys and data file names for the cache (OpenSSL's EVP digest).
 *
 * Invariant: every name produced here consists of lowercase hex digits, '/' and '-' only.
 */
#include "cache/naming.h"

#include "cache/index.h"

#include <openssl/evp.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static void to_hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* SHA-256 over up to two pieces, as 64 hex digits. */
static kth_status digest_hex(const void *a, size_t an, const void *b, size_t bn,
                             char out[CACHE_KEY_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return KTH_ERR_NO_MEMORY;
    int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, a, an) &&
             (bn == 0 || EVP_DigestUpdate(ctx, b, bn)) && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen != 32)
        return KTH_ERR_INTERNAL;
    to_hex(md, 32, out);
    return KTH_OK;
}

kth_status cache_key_of(const char *text, char key[CACHE_KEY_HEX])
{
    if (!text)
        return KTH_ERR_INVALID_ARG;
    return digest_hex(text, strlen(text), NULL, 0, key);
}

bool cache_is_key(const char *s)
{
    if (!s)
        return false;
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')) || i >= 64)
            return false;
    return i == 64;
}

/* 8 random bytes; getrandom, or a mix of time, pid and a counter if it is unavailable (the
 * suffix needs to be unique, not secret). */
static void random_suffix(unsigned char out[8])
{
    if (getrandom(out, 8, GRND_NONBLOCK) == 8)
        return;
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                 ((uint64_t)getpid() << 40) ^ (atomic_fetch_add(&counter, 1) * 0x9E3779B97F4A7C15u);
    for (int i = 0; i < 8; i++) {
        out[i] = (unsigned char)x;
        x >>= 8;
    }
}

kth_status cache_new_file_name(const char *asset_key, const char *resource_key, char *out,
                               size_t outlen)
{
    if (!asset_key || !resource_key || !out || outlen < CACHE_FILE_MAX)
        return KTH_ERR_INVALID_ARG;
    char name[CACHE_KEY_HEX];
    /* The separator cannot occur in a hex key, so (asset, resource) pairs never collide by
     * concatenation. */
    char head[CACHE_KEY_HEX + 1];
    snprintf(head, sizeof head, "%s\n", asset_key);
    kth_status st = digest_hex(head, strlen(head), resource_key, strlen(resource_key), name);
    if (st != KTH_OK)
        return st;
    unsigned char rnd[8];
    char suffix[17];
    random_suffix(rnd);
    to_hex(rnd, 8, suffix);
    snprintf(out, outlen, "%.2s/%.2s/%s-%s", name, name + 2, name, suffix);
    return KTH_OK;
}
