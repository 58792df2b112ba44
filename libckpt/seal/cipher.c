/*
 * cipher.c -- AES-256-GCM through OpenSSL's libcrypto (EVP), which uses
 * AES-NI and carry-less multiplication where the CPU has them.
 *
 * Key derivation: the checkpoint key is HMAC-SHA256(pool key, "libckpt
 * seal v1" || salt), the salt 32 random bytes per checkpoint. Nonce: the
 * 96-bit little-endian chunk index. Associated data: what the caller binds
 * (the seal record's header: pool uuid, checkpoint id, image length, chunk
 * count, salt) followed by the chunk index, so a chunk decrypts only in
 * its own place of its own checkpoint of its own pool.
 *
 * One EVP context per checkpoint and direction, keyed once; each chunk
 * re-initialises only the nonce, and is fed in pieces (cipher.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "seal/cipher.h"

#define NONCE_LEN 12

static const char derive_label[] = "libckpt seal v1";

struct seal_cipher {
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
	uint8_t key[SEAL_KEY_LEN];  /* the checkpoint's derived key */
};

int
seal_random(void *out, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = getrandom((char *)out + done, n - done, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return ckpt_err_set(errno ? errno : EIO,
					"cannot get random bytes for a seal: %s", strerror(errno));
		done += (size_t)r;
	}
	return 0;
}

/* derive -- the checkpoint key for salt under the pool key k */
static int
derive(const struct seal_key *k, const uint8_t salt[SEAL_SALT_LEN], uint8_t out[SEAL_KEY_LEN])
{
	uint8_t msg[sizeof(derive_label) + SEAL_SALT_LEN];
	unsigned len = 0;
	memcpy(msg, derive_label, sizeof(derive_label));
	memcpy(msg + sizeof(derive_label), salt, SEAL_SALT_LEN);
	if (!HMAC(EVP_sha256(), k->key, SEAL_KEY_LEN, msg, sizeof(msg), out, &len) ||
	    len != SEAL_KEY_LEN)
		return ckpt_err_set(EIO, "cannot derive a checkpoint key: HMAC-SHA256 failed");
	return 0;
}

struct seal_cipher *
seal_cipher_new(const struct seal_key *k, const uint8_t salt[SEAL_SALT_LEN])
{
	struct seal_cipher *c = calloc(1, sizeof(*c));
	if (!c) {
		ckpt_err_set(ENOMEM, "out of memory");
		return NULL;
	}
	c->enc = EVP_CIPHER_CTX_new();
	c->dec = EVP_CIPHER_CTX_new();
	if (!c->enc || !c->dec) {
		seal_cipher_free(c);
		ckpt_err_set(ENOMEM, "out of memory for a cipher context");
		return NULL;
	}
	if (derive(k, salt, c->key) < 0) {
		seal_cipher_free(c);
		return NULL;
	}
	if (EVP_EncryptInit_ex(c->enc, EVP_aes_256_gcm(), NULL, c->key, NULL) != 1 ||
	    EVP_DecryptInit_ex(c->dec, EVP_aes_256_gcm(), NULL, c->key, NULL) != 1) {
		seal_cipher_free(c);
		ckpt_err_set(EIO, "cannot set up AES-256-GCM (libcrypto)");
		return NULL;
	}
	return c;
}

void
seal_cipher_free(struct seal_cipher *c)
{
	if (!c)
		return;
	EVP_CIPHER_CTX_free(c->enc);
	EVP_CIPHER_CTX_free(c->dec);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

/* nonce_of -- the 96-bit nonce of chunk index */
static void
nonce_of(uint64_t index, uint8_t nonce[NONCE_LEN])
{
	memset(nonce, 0, NONCE_LEN);
	for (unsigned i = 0; i < 8; i++)
		nonce[i] = (uint8_t)(index >> (8 * i));
}

int
seal_chunk_begin(struct seal_cipher *c, int enc, uint64_t index, const void *aad, size_t alen)
{
	uint8_t nonce[NONCE_LEN], idx[8];
	int l;
	nonce_of(index, nonce);
	memcpy(idx, nonce, sizeof(idx));    /* the index, little-endian */
	EVP_CIPHER_CTX *x = enc ? c->enc : c->dec;
	int ok = alen <= INT32_MAX &&
		(enc ? EVP_EncryptInit_ex(x, NULL, NULL, NULL, nonce) == 1 &&
		       EVP_EncryptUpdate(x, NULL, &l, aad, (int)alen) == 1 &&
		       EVP_EncryptUpdate(x, NULL, &l, idx, sizeof(idx)) == 1
		     : EVP_DecryptInit_ex(x, NULL, NULL, NULL, nonce) == 1 &&
		       EVP_DecryptUpdate(x, NULL, &l, aad, (int)alen) == 1 &&
		       EVP_DecryptUpdate(x, NULL, &l, idx, sizeof(idx)) == 1);
	if (!ok)
		return ckpt_err_set(EIO, "AES-256-GCM setup of chunk %llu failed (libcrypto)",
				(unsigned long long)index);
	return 0;
}

int
seal_chunk_update(struct seal_cipher *c, int enc, const void *in, void *out, size_t n)
{
	int l = 0;
	int ok = n <= INT32_MAX &&
		(enc ? EVP_EncryptUpdate(c->enc, out, &l, in, (int)n)
		     : EVP_DecryptUpdate(c->dec, out, &l, in, (int)n)) == 1 &&
		(size_t)l == n;
	if (!ok)
		return ckpt_err_set(EIO, "AES-256-GCM failed (libcrypto)");
	return 0;
}

int
seal_chunk_seal(struct seal_cipher *c, uint8_t tag[SEAL_TAG_LEN])
{
	uint8_t end[16];
	int f = 0;
	if (EVP_EncryptFinal_ex(c->enc, end, &f) != 1 || f != 0 ||
	    EVP_CIPHER_CTX_ctrl(c->enc, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) != 1)
		return ckpt_err_set(EIO, "AES-256-GCM tag failed (libcrypto)");
	return 0;
}

int
seal_chunk_open(struct seal_cipher *c, const uint8_t tag[SEAL_TAG_LEN])
{
	uint8_t t[SEAL_TAG_LEN], end[16];
	int f = 0;
	memcpy(t, tag, sizeof(t));
	if (EVP_CIPHER_CTX_ctrl(c->dec, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, t) != 1 ||
	    EVP_DecryptFinal_ex(c->dec, end, &f) != 1 || f != 0) {
		errno = EBADMSG;
		return -1;
	}
	return 0;
}
