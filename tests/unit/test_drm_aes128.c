/*
 * test_drm_aes128.c — streaming AES-128-CBC decryption: byte-exact output for every plaintext
 * length around the block size and for arbitrary chunking, padding stripped; wrong keys,
 * truncated ciphertext and bad key lengths fail with KTH_ERR_DECRYPT instead of producing bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "drm/aes128.h"
#include "test_support.h"

static const uint8_t KEY[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                                0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};
static const uint8_t IV[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};

/* Reference encryption with OpenSSL (PKCS#7 padding), as a packager would produce. */
static uint8_t *encrypt(const uint8_t *key, const uint8_t *plain, size_t n, size_t *out_n)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t *out = malloc(n + 32);
    int a = 0, b = 0;
    EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, IV);
    EVP_EncryptUpdate(ctx, out, &a, plain, (int)n);
    EVP_EncryptFinal_ex(ctx, out + a, &b);
    EVP_CIPHER_CTX_free(ctx);
    *out_n = (size_t)(a + b);
    return out;
}

/* Decrypts `cipher` in chunks drawn from `seed`; returns the status of finish and the output. */
static kth_status decrypt_chunked(const uint8_t *key, const uint8_t *cipher, size_t n,
                                  unsigned seed, uint8_t *plain, size_t *plain_n)
{
    drm_aes128 *d;
    char err[128];
    assert_int_equal(drm_aes128_new(key, 16, IV, &d, err, sizeof err), KTH_OK);
    size_t total = 0;
    for (size_t off = 0; off < n;) {
        seed = seed * 1103515245u + 12345u;
        size_t k = 1 + (seed >> 8) % 40;
        if (k > n - off)
            k = n - off;
        size_t got = 0;
        assert_int_equal(drm_aes128_update(d, cipher + off, k, plain + total, &got), KTH_OK);
        /* Never more plaintext than ciphertext consumed so far, and never ahead of it. */
        total += got;
        off += k;
        assert_true(total <= off);
    }
    size_t last = 0;
    kth_status st = drm_aes128_finish(d, plain + total, &last, err, sizeof err);
    total += last;
    *plain_n = total;
    assert_int_equal(drm_aes128_bytes_in(d), n);
    drm_aes128_free(d);
    return st;
}

static void test_every_length_round_trips_byte_exact(void **state)
{
    (void)state;
    uint8_t plain[200], out[300];
    for (size_t len = 1; len <= 100; len++) {
        test_pattern_fill(3, len, plain, len);
        size_t cn;
        uint8_t *cipher = encrypt(KEY, plain, len, &cn);
        assert_int_equal(cn % 16, 0);
        size_t pn = 0;
        assert_int_equal(decrypt_chunked(KEY, cipher, cn, (unsigned)len, out, &pn), KTH_OK);
        assert_int_equal(pn, len);
        assert_memory_equal(out, plain, len);
        free(cipher);
    }
}

static void test_large_segment_in_network_sized_chunks(void **state)
{
    (void)state;
    size_t len = 1000003;
    uint8_t *plain = malloc(len), *out = malloc(len + 32);
    test_pattern_fill(11, 0, plain, len);
    size_t cn;
    uint8_t *cipher = encrypt(KEY, plain, len, &cn);
    drm_aes128 *d;
    assert_int_equal(drm_aes128_new(KEY, 16, IV, &d, NULL, 0), KTH_OK);
    size_t total = 0, got;
    for (size_t off = 0; off < cn; off += 16384) {
        size_t k = cn - off < 16384 ? cn - off : 16384;
        assert_int_equal(drm_aes128_update(d, cipher + off, k, out + total, &got), KTH_OK);
        total += got;
    }
    assert_int_equal(drm_aes128_finish(d, out + total, &got, NULL, 0), KTH_OK);
    total += got;
    assert_int_equal(total, len);
    assert_memory_equal(out, plain, len);
    drm_aes128_free(d);
    free(cipher);
    free(plain);
    free(out);
}

static void test_wrong_key_fails_instead_of_yielding_garbage(void **state)
{
    (void)state;
    uint8_t plain[64], out[128];
    test_pattern_fill(5, 0, plain, sizeof plain);
    size_t cn;
    uint8_t *cipher = encrypt(KEY, plain, sizeof plain, &cn);
    uint8_t wrong[16];
    memcpy(wrong, KEY, 16);
    wrong[0] ^= 0x01;
    size_t pn;
    assert_int_equal(decrypt_chunked(wrong, cipher, cn, 1, out, &pn), KTH_ERR_DECRYPT);
    free(cipher);
}

static void test_truncated_ciphertext_fails(void **state)
{
    (void)state;
    uint8_t plain[64], out[128];
    test_pattern_fill(6, 0, plain, sizeof plain);
    size_t cn;
    uint8_t *cipher = encrypt(KEY, plain, sizeof plain, &cn);
    size_t pn;
    assert_int_equal(decrypt_chunked(KEY, cipher, cn - 5, 2, out, &pn), KTH_ERR_DECRYPT);
    /* Cut at a block boundary: the padding block is missing, so the last block is data. */
    assert_int_equal(decrypt_chunked(KEY, cipher, cn - 16, 2, out, &pn), KTH_ERR_DECRYPT);
    free(cipher);
}

static void test_key_of_wrong_length_is_rejected_with_message(void **state)
{
    (void)state;
    drm_aes128 *d = NULL;
    char err[128];
    assert_int_equal(drm_aes128_new(KEY, 15, IV, &d, err, sizeof err), KTH_ERR_DECRYPT);
    assert_string_equal(err, "AES-128 key is 15 bytes, expected 16");
    assert_null(d);
    /* An empty segment has no padding block: an error, not zero bytes of audio. */
    assert_int_equal(drm_aes128_new(KEY, 16, IV, &d, err, sizeof err), KTH_OK);
    size_t n;
    uint8_t out[16];
    assert_int_equal(drm_aes128_finish(d, out, &n, err, sizeof err), KTH_ERR_DECRYPT);
    drm_aes128_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_length_round_trips_byte_exact),
        cmocka_unit_test(test_large_segment_in_network_sized_chunks),
        cmocka_unit_test(test_wrong_key_fails_instead_of_yielding_garbage),
        cmocka_unit_test(test_truncated_ciphertext_fails),
        cmocka_unit_test(test_key_of_wrong_length_is_rejected_with_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
