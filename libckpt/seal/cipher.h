/*
 * cipher.h -- AES-256-GCM over the chunks of one sealed checkpoint.
 *
 * Each checkpoint is encrypted under its own key, derived from the pool's
 * key and a 32-byte salt drawn at random for that checkpoint; a chunk's
 * nonce is its index. A (key, nonce) pair is therefore used once: within
 * one checkpoint the indices differ, and two checkpoints (of any pool,
 * process, fork child or restart that holds the key) share a derived key
 * only if they drew the same 256-bit salt. The argument is written out in
 * docs/DESIGN.md, "Sealed pools".
 */
#ifndef CKPT_SEAL_CIPHER_H
#define CKPT_SEAL_CIPHER_H 1

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "seal/key.h"

#define SEAL_SALT_LEN 32
#define SEAL_TAG_LEN 16

struct seal_cipher;             /* opaque: an EVP context keyed for one checkpoint */

/*
 * seal_cipher_new -- a context for the checkpoint whose salt is salt,
 * under key k; NULL with a message (ENOMEM, or EIO if libcrypto fails)
 */
CKPT_HIDDEN struct seal_cipher *seal_cipher_new(const struct seal_key *k,
		const uint8_t salt[SEAL_SALT_LEN]);
CKPT_HIDDEN void seal_cipher_free(struct seal_cipher *c);

/*
 * A chunk is encrypted or decrypted as a stream of pieces, so the caller
 * can hash and write (or read) each piece while it is in the cache:
 * seal_chunk_begin starts chunk index (enc 1: encrypt, 0: decrypt) binding
 * the aad (alen bytes) and the index; seal_chunk_update transforms n bytes
 * of in into out (in == out allowed); seal_chunk_seal ends an encryption
 * and gives its tag; seal_chunk_open ends a decryption: 0, or -1 with
 * EBADMSG (no message set: the caller names the chunk) when the chunk,
 * its aad or its tag was altered, and then every byte it produced must be
 * discarded.
 */
CKPT_HIDDEN int seal_chunk_begin(struct seal_cipher *c, int enc, uint64_t index,
		const void *aad, size_t alen);
CKPT_HIDDEN int seal_chunk_update(struct seal_cipher *c, int enc, const void *in, void *out,
		size_t n);
CKPT_HIDDEN int seal_chunk_seal(struct seal_cipher *c, uint8_t tag[SEAL_TAG_LEN]);
CKPT_HIDDEN int seal_chunk_open(struct seal_cipher *c, const uint8_t tag[SEAL_TAG_LEN]);

/* seal_random -- n bytes from the kernel's random source into out */
CKPT_HIDDEN int seal_random(void *out, size_t n);

#endif
