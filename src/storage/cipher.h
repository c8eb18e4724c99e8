/*
 * cipher.h — encryption at rest for one data file of a protected cache (OpenSSL EVP only).
 *
 * From the cache secret (32 bytes) and the file's identity (its name, unique per data file: a
 * resource that starts over gets a new name) HKDF-SHA256 derives two independent keys:
 * - an AES-256-CTR key for the file's bytes. The counter block is the byte offset / 16 (big
 *   endian, 128 bits), so any byte range is encrypted or decrypted on its own, at any offset,
 *   and a byte is the same ciphertext whichever write put it there. Keystream is never reused
 *   for different plaintext: the key is unique to the file, and present bytes never change.
 * - an HMAC-SHA256 key for a tag over a whole small object (a key, a playlist): encrypt then
 *   MAC, over the length and the ciphertext, so a flipped byte, a truncation or a file swapped
 *   from another resource is detected before a byte is handed out.
 *
 * The cache's check value (storage_cipher_check_value) is derived the same way from the secret
 * alone: stored in the index, it tells a wrong secret at open without revealing the secret.
 *
 * Threads: a cipher may be used by several threads at once (one EVP context behind a mutex,
 * keyed once: a call only sets the counter, no key schedule in the hot path).
 */
#ifndef KTH_STORAGE_CIPHER_H
#define KTH_STORAGE_CIPHER_H

#include <kithara/status.h>

#include <stddef.h>
#include <stdint.h>

#define STORAGE_SECRET_SIZE 32
#define STORAGE_TAG_SIZE    32
/* Committed objects up to this length carry a tag (keys, playlists, small segments). */
#define STORAGE_TAG_MAX_LENGTH ((uint64_t)1 << 20)

typedef struct storage_cipher storage_cipher;

/* A cipher for the file named `identity` (any string; copied into the derivation, not kept).
 * Returns KTH_ERR_INVALID_ARG, KTH_ERR_NO_MEMORY, KTH_ERR_INTERNAL (OpenSSL refused). The
 * caller owns *out (storage_cipher_free). Any thread. */
kth_status storage_cipher_new(const uint8_t secret[STORAGE_SECRET_SIZE], const char *identity,
                              storage_cipher **out);

/* NULL-safe. */
void storage_cipher_free(storage_cipher *c);

/* Encrypts or decrypts (the same operation in CTR mode) the n bytes at file offset `offset`
 * from `in` into `out` (which may equal `in`). KTH_ERR_INTERNAL when OpenSSL fails. Any
 * thread. */
kth_status storage_cipher_apply(storage_cipher *c, uint64_t offset, const uint8_t *in, uint8_t *out,
                                size_t n);

/* The tag of an object of `length` bytes whose ciphertext is `ct`. KTH_ERR_INTERNAL. */
kth_status storage_cipher_tag(storage_cipher *c, const uint8_t *ct, uint64_t length,
                              uint8_t tag[STORAGE_TAG_SIZE]);

/* The value that identifies a secret without revealing it (HKDF with its own label). Any
 * thread. KTH_ERR_INTERNAL. */
kth_status storage_cipher_check_value(const uint8_t secret[STORAGE_SECRET_SIZE],
                                      uint8_t out[STORAGE_SECRET_SIZE]);

#endif
