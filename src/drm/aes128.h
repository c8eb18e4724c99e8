/*
 * aes128.h — streaming AES-128-CBC decryption of HLS segments, with PKCS#7 padding removed.
 *
 * Bytes arrive from the network in chunks of any size; plaintext comes out as they arrive, so a
 * reader never waits for a whole segment. The decryptor holds back the last full block until
 * drm_aes128_finish(), because only the final block carries the padding. Output offsets
 * therefore trail input offsets by at most 16 bytes plus the unfinished partial block, and the
 * plaintext length is known only at finish: a caller must not treat ciphertext lengths as
 * plaintext lengths (pitfall 8 in DESIGN.md).
 *
 * One decryptor per segment; not thread-safe (one writer). Errors are reported, never turned
 * into bytes: a bad padding or a ciphertext that is not a whole number of blocks fails with
 * KTH_ERR_DECRYPT.
 */
#ifndef KTH_DRM_AES128_H
#define KTH_DRM_AES128_H

#include <kithara/status.h>

#include <stddef.h>
#include <stdint.h>

#define DRM_AES128_KEY_SIZE 16
#define DRM_AES128_BLOCK    16

typedef struct drm_aes128 drm_aes128;

/* Creates a decryptor for one segment. `key_len` must be 16 (else KTH_ERR_DECRYPT with "key is
 * N bytes, expected 16" in err). Returns KTH_ERR_NO_MEMORY, or KTH_ERR_INTERNAL if the crypto
 * library refuses. */
kth_status drm_aes128_new(const uint8_t *key, size_t key_len, const uint8_t iv[16],
                          drm_aes128 **out, char *err, size_t errlen);
void drm_aes128_free(drm_aes128 *d);

/* Decrypts `n` ciphertext bytes. Writes the plaintext that is now final into out (room for
 * n + 16 bytes is always enough) and its length into *out_len (may be 0). */
kth_status drm_aes128_update(drm_aes128 *d, const uint8_t *in, size_t n, uint8_t *out,
                             size_t *out_len);

/* Ends the segment: checks and strips the PKCS#7 padding and writes the last plaintext bytes
 * (at most 15) into out. KTH_ERR_DECRYPT when the ciphertext was not a whole number of blocks
 * or the padding is invalid (a wrong key shows up here). */
kth_status drm_aes128_finish(drm_aes128 *d, uint8_t *out, size_t *out_len, char *err,
                             size_t errlen);

/* Ciphertext bytes fed so far (offsets of the encrypted file). */
uint64_t drm_aes128_bytes_in(const drm_aes128 *d);

#endif
