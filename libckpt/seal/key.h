/*
 * key.h -- the key of a sealed pool: read from a key file, named by its id.
 *
 * A key file holds 32 bytes: raw, or as 64 hexadecimal digits (whitespace
 * around them ignored). The pool's header records the key's id, a hash of
 * the key that cannot be turned back into it, so a wrong key is refused by
 * name before anything is decrypted, and no ciphertext is ever decrypted
 * with a key it was not written with.
 */
#ifndef CKPT_SEAL_KEY_H
#define CKPT_SEAL_KEY_H 1

#include <stdint.h>

#include "libckpt.h"
#include "internal.h"

#define SEAL_KEY_LEN 32
#define SEAL_KEY_ID_LEN 16

/* seal_key -- a loaded key and its id; wipe with seal_key_free */
struct seal_key {
	uint8_t key[SEAL_KEY_LEN];
	uint8_t id[SEAL_KEY_ID_LEN];
};

/*
 * seal_key_load -- read the key file path (from: where its name came
 * from, for messages) into a new key; NULL with errno and a message: the
 * file's errno, or EINVAL when it holds neither 32 raw bytes nor 64 hex
 * digits
 */
CKPT_HIDDEN struct seal_key *seal_key_load(const char *path, const char *from);

/*
 * seal_key_check -- 0 if k is the key whose id a sealed pool records
 * (what: the pool, for the message); else EKEYREJECTED
 */
CKPT_HIDDEN int seal_key_check(const struct seal_key *k, const uint8_t id[SEAL_KEY_ID_LEN],
		const char *what);

/*
 * seal_key_open -- seal_key_load, then seal_key_check against the key id
 * a sealed pool records (pool: its path, for the message); NULL on either
 * failure
 */
CKPT_HIDDEN struct seal_key *seal_key_open(const char *path, const char *from,
		const uint8_t id[SEAL_KEY_ID_LEN], const char *pool);

/*
 * seal_key_ask -- ask the program's key callback fn (ckpt_key_fn) for the
 * key of the pool at path: a new key; NULL with *none 1 when it has none
 * (no message), or NULL with *none 0 and a message when it fails (its
 * errno, EIO if it set none)
 */
CKPT_HIDDEN struct seal_key *seal_key_ask(ckpt_key_fn fn, void *arg, const char *path,
		int *none);

/* seal_key_free -- wipe and free k (NULL: nothing) */
CKPT_HIDDEN void seal_key_free(struct seal_key *k);

/* seal_key_id_hex -- the id as 32 lowercase hex digits into out (33 bytes) */
CKPT_HIDDEN void seal_key_id_hex(const uint8_t id[SEAL_KEY_ID_LEN], char out[33]);

#endif
