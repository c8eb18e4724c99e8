/*
 * test_storage_cipher.c — encryption at rest (storage/cipher.h) and protected file resources:
 * AES-256-CTR at any offset equals one whole-buffer encryption under the HKDF-derived key
 * (cross-checked against OpenSSL's other HKDF interface); a wrapped key round-trips through a
 * data file that never holds it in the clear; a flipped byte, a lost tag or another file's key
 * is reported as KTH_ERR_PROTECTED; and the secret's check value tells secrets apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/cipher.h"
#include "storage/resource.h"
#include "test_support.h"

static const uint8_t SECRET[32] = "an application's 32-byte secret";
static const uint8_t OTHER[32] = "an application's 32-byte secreT";

/* The data key as the EVP_PKEY HKDF interface derives it (an independent path to the same
 * RFC 5869 function). */
static void reference_key(const char *identity, uint8_t key[32])
{
    EVP_PKEY_CTX *p = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    assert_non_null(p);
    char info[256];
    int n = snprintf(info, sizeof info, "data:%s", identity);
    static const char salt[] = "kithara protected cache v1";
    size_t len = 32;
    assert_int_equal(EVP_PKEY_derive_init(p), 1);
    assert_int_equal(EVP_PKEY_CTX_set_hkdf_md(p, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_salt(p, (const unsigned char *)salt, sizeof salt - 1),
                     1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_key(p, SECRET, 32), 1);
    assert_int_equal(EVP_PKEY_CTX_add1_hkdf_info(p, (const unsigned char *)info, n), 1);
    assert_int_equal(EVP_PKEY_derive(p, key, &len), 1);
    EVP_PKEY_CTX_free(p);
}

static void test_ctr_at_any_offset_equals_one_whole_encryption(void **state)
{
    (void)state;
    enum { N = 5000 };
    uint8_t plain[N], whole[N], pieces[N], ref[N];
    for (size_t i = 0; i < N; i++)
        plain[i] = (uint8_t)(i * 131 + 7);
    storage_cipher *c = NULL;
    assert_int_equal(storage_cipher_new(SECRET, "ab/cd/file-1", &c), KTH_OK);
    assert_int_equal(storage_cipher_apply(c, 0, plain, whole, N), KTH_OK);

    /* Known answer: AES-256-CTR from counter 0 under the reference key. */
    uint8_t key[32], iv[16] = {0};
    reference_key("ab/cd/file-1", key);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int got = 0;
    assert_int_equal(EVP_EncryptInit_ex(x, EVP_aes_256_ctr(), NULL, key, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(x, ref, &got, plain, N), 1);
    EVP_CIPHER_CTX_free(x);
    assert_memory_equal(whole, ref, N);

    /* Pieces at odd offsets and lengths, in any order, in place. */
    static const size_t cuts[] = {0, 1, 17, 31, 32, 33, 1000, 1001, 4095, 4111, N};
    memcpy(pieces, plain, N);
    for (size_t k = sizeof cuts / sizeof *cuts - 1; k > 0; k--)
        assert_int_equal(storage_cipher_apply(c, cuts[k - 1], pieces + cuts[k - 1],
                                              pieces + cuts[k - 1], cuts[k] - cuts[k - 1]),
                         KTH_OK);
    assert_memory_equal(pieces, whole, N);
    /* The same operation decrypts. */
    assert_int_equal(storage_cipher_apply(c, 7, pieces + 7, pieces + 7, N - 7), KTH_OK);
    assert_int_equal(storage_cipher_apply(c, 0, pieces, pieces, 7), KTH_OK);
    assert_memory_equal(pieces, plain, N);
    storage_cipher_free(c);

    /* Another file, or another secret: another keystream. */
    storage_cipher *d = NULL;
    assert_int_equal(storage_cipher_new(SECRET, "ab/cd/file-2", &d), KTH_OK);
    assert_int_equal(storage_cipher_apply(d, 0, plain, pieces, N), KTH_OK);
    assert_memory_not_equal(pieces, whole, 64);
    storage_cipher_free(d);
    assert_int_equal(storage_cipher_new(OTHER, "ab/cd/file-1", &d), KTH_OK);
    assert_int_equal(storage_cipher_apply(d, 0, plain, pieces, N), KTH_OK);
    assert_memory_not_equal(pieces, whole, 64);
    storage_cipher_free(d);
}

static void test_the_check_value_tells_secrets_apart(void **state)
{
    (void)state;
    uint8_t a[32], b[32], c[32];
    assert_int_equal(storage_cipher_check_value(SECRET, a), KTH_OK);
    assert_int_equal(storage_cipher_check_value(SECRET, b), KTH_OK);
    assert_int_equal(storage_cipher_check_value(OTHER, c), KTH_OK);
    assert_memory_equal(a, b, 32);
    assert_memory_not_equal(a, c, 32);
    assert_memory_not_equal(a, SECRET, 32);
}

static const uint8_t KEY16[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                                  0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};

/* Opens path as a protected resource of `identity` holding what a committed row of `len` bytes
 * claims, and checks its tag. */
static kth_status reopen(const char *path, const char *identity, uint64_t len,
                         storage_resource **out)
{
    storage_resource *r = NULL;
    assert_int_equal(storage_resource_open_file(path, 0, &r, NULL, 0), KTH_OK);
    storage_cipher *c = NULL;
    assert_int_equal(storage_cipher_new(SECRET, identity, &c), KTH_OK);
    assert_int_equal(storage_resource_set_cipher(r, c), KTH_OK);
    storage_range all = {0, len};
    assert_int_equal(storage_resource_restore_ranges(r, &all, 1), KTH_OK);
    assert_int_equal(storage_resource_commit(r, len), KTH_OK);
    kth_status st = storage_resource_check_tag(r);
    *out = r;
    return st;
}

static void flip(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 1;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static void test_a_wrapped_key_round_trips_and_tampering_is_detected(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    char path[1024];
    snprintf(path, sizeof path, "%s/key", dir);
    storage_resource *r = NULL;
    assert_int_equal(storage_resource_open_file(path, STORAGE_FILE_TRUNCATE, &r, NULL, 0), KTH_OK);
    storage_cipher *c = NULL;
    assert_int_equal(storage_cipher_new(SECRET, "ab/cd/key", &c), KTH_OK);
    assert_int_equal(storage_resource_set_cipher(r, c), KTH_OK);
    assert_int_equal(storage_resource_write_at(r, 0, KEY16, 7), KTH_OK);
    assert_int_equal(storage_resource_write_at(r, 7, KEY16 + 7, 9), KTH_OK);
    assert_int_equal(storage_resource_commit(r, 16), KTH_OK);
    assert_int_equal(storage_resource_write_tag(r), KTH_OK);
    uint8_t got[16];
    size_t n = 0;
    assert_int_equal(storage_resource_read_at(r, 0, got, 16, &n), KTH_OK);
    assert_int_equal(n, 16);
    assert_memory_equal(got, KEY16, 16);
    storage_resource_unref(r);

    /* At rest: 16 bytes of ciphertext and a 32-byte tag, never the key. */
    uint8_t raw[64];
    int fd = open(path, O_RDONLY);
    assert_int_equal(read(fd, raw, sizeof raw), 48);
    close(fd);
    assert_memory_not_equal(raw, KEY16, 16);

    /* Reopened with the same secret and name: the tag holds and the key comes back. */
    assert_int_equal(reopen(path, "ab/cd/key", 16, &r), KTH_OK);
    assert_int_equal(storage_resource_read_at(r, 3, got, 13, &n), KTH_OK);
    assert_memory_equal(got, KEY16 + 3, 13);
    storage_resource_unref(r);

    /* Another file's key (a swapped file) fails. */
    assert_int_equal(reopen(path, "ab/cd/other", 16, &r), KTH_ERR_PROTECTED);
    storage_resource_unref(r);
    /* A flipped byte of the wrapped key fails; so does one of the tag. */
    flip(path, 9);
    assert_int_equal(reopen(path, "ab/cd/key", 16, &r), KTH_ERR_PROTECTED);
    storage_resource_unref(r);
    flip(path, 9);
    assert_int_equal(reopen(path, "ab/cd/key", 16, &r), KTH_OK);
    storage_resource_unref(r);
    flip(path, 40);
    assert_int_equal(reopen(path, "ab/cd/key", 16, &r), KTH_ERR_PROTECTED);
    storage_resource_unref(r);
    /* A file cut before its tag fails. */
    assert_int_equal(truncate(path, 30), 0);
    assert_int_equal(reopen(path, "ab/cd/key", 16, &r), KTH_ERR_PROTECTED);
    storage_resource_unref(r);

    /* The cipher goes only on a resource nobody has seen. */
    assert_int_equal(storage_resource_new_memory(0, &r), KTH_OK);
    assert_int_equal(storage_cipher_new(SECRET, "m", &c), KTH_OK);
    assert_int_equal(storage_resource_set_cipher(r, c), KTH_ERR_STATE);
    storage_resource_unref(r);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctr_at_any_offset_equals_one_whole_encryption),
        cmocka_unit_test(test_the_check_value_tells_secrets_apart),
        cmocka_unit_test(test_a_wrapped_key_round_trips_and_tampering_is_detected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
