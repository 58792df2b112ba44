/*
 * key.c -- loading a sealed pool's key and computing its id.
 *
 * The key is read with plain read(2) into memory the library allocates
 * and wipes (OPENSSL_cleanse) when it is freed; it is never written
 * anywhere. The id is the first 16 bytes of SHA-256("libckpt key id v1",
 * key): recording it in the pool's header tells a wrong key from a damaged
 * checkpoint, and reveals nothing usable about the key (the checkpoints'
 * encryption keys are derived from it with HMAC under another label,
 * seal/cipher.c).
 *
 * A key file of exactly 32 bytes is taken raw; otherwise it must hold 64
 * hexadecimal digits, optionally surrounded by whitespace (what
 * `openssl rand -hex 32 > key` writes). Anything else is EINVAL naming the
 * file: a short or mistyped key is never padded or truncated into use.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "seal/key.h"

#define KEY_FILE_MAX 256        /* more than any valid key file holds */

static const char id_label[] = "libckpt key id v1";

/* hexval -- the value of hex digit c, or -1 */
static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* is_space -- whitespace around a hex key */
static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* parse_key -- the 32 key bytes of a key file's contents buf (n bytes), or -1 */
static int
parse_key(const uint8_t *buf, size_t n, uint8_t key[SEAL_KEY_LEN])
{
	if (n == SEAL_KEY_LEN) {
		memcpy(key, buf, SEAL_KEY_LEN);
		return 0;
	}
	size_t a = 0, b = n;
	while (a < b && is_space(buf[a]))
		a++;
	while (b > a && is_space(buf[b - 1]))
		b--;
	if (b - a != 2 * SEAL_KEY_LEN)
		return -1;
	for (size_t i = 0; i < SEAL_KEY_LEN; i++) {
		int hi = hexval(buf[a + 2 * i]), lo = hexval(buf[a + 2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* key_id -- the id of key (see the top of this file) */
static int
key_id(const uint8_t key[SEAL_KEY_LEN], uint8_t id[SEAL_KEY_ID_LEN])
{
	uint8_t in[sizeof(id_label) + SEAL_KEY_LEN], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	memcpy(in, id_label, sizeof(id_label));
	memcpy(in + sizeof(id_label), key, SEAL_KEY_LEN);
	int ok = EVP_Digest(in, sizeof(in), md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_cleanse(in, sizeof(in));
	if (!ok || mdlen < SEAL_KEY_ID_LEN)
		return ckpt_err_set(EIO, "cannot compute a key id: SHA-256 failed");
	memcpy(id, md, SEAL_KEY_ID_LEN);
	return 0;
}

/* read_small -- up to cap bytes of the file fd into buf; bytes read or -1 */
static ssize_t
read_small(int fd, uint8_t *buf, size_t cap)
{
	size_t done = 0;
	while (done < cap) {
		ssize_t r = read(fd, buf + done, cap - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

struct seal_key *
seal_key_load(const char *path, const char *from)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ckpt_err_set(errno, "cannot open key file %s (from %s): %s", path, from,
				strerror(errno));
		return NULL;
	}
	uint8_t buf[KEY_FILE_MAX + 1];
	ssize_t n = read_small(fd, buf, sizeof(buf));
	int e = errno;
	close(fd);
	if (n < 0) {
		ckpt_err_set(e, "cannot read key file %s (from %s): %s", path, from,
				strerror(e));
		return NULL;
	}
	struct seal_key *k = calloc(1, sizeof(*k));
	if (!k) {
		OPENSSL_cleanse(buf, sizeof(buf));
		ckpt_err_set(ENOMEM, "out of memory");
		return NULL;
	}
	int bad = n > KEY_FILE_MAX || parse_key(buf, (size_t)n, k->key) < 0;
	OPENSSL_cleanse(buf, sizeof(buf));
	if (bad) {
		seal_key_free(k);
		ckpt_err_set(EINVAL, "key file %s (from %s) holds neither 32 raw bytes nor "
				"64 hexadecimal digits", path, from);
		return NULL;
	}
	if (key_id(k->key, k->id) < 0) {
		seal_key_free(k);
		return NULL;
	}
	return k;
}

struct seal_key *
seal_key_ask(ckpt_key_fn fn, void *arg, const char *path, int *none)
{
	*none = 0;
	struct seal_key *k = calloc(1, sizeof(*k));
	if (!k) {
		ckpt_err_set(ENOMEM, "out of memory");
		return NULL;
	}
	unsigned char key[SEAL_KEY_LEN];
	memset(key, 0, sizeof(key));
	errno = 0;
	int rc = fn(arg, path, key);
	int e = errno ? errno : EIO;
	memcpy(k->key, key, SEAL_KEY_LEN);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc == 1 && key_id(k->key, k->id) == 0)
		return k;
	seal_key_free(k);
	if (rc == 0)
		*none = 1;
	else if (rc != 1)
		ckpt_err_set(e, "the key callback failed for pool %s (it returned %d): %s",
				path, rc, strerror(e));
	return NULL;
}

void
seal_key_id_hex(const uint8_t id[SEAL_KEY_ID_LEN], char out[33])
{
	for (unsigned i = 0; i < SEAL_KEY_ID_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

int
seal_key_check(const struct seal_key *k, const uint8_t id[SEAL_KEY_ID_LEN], const char *what)
{
	if (CRYPTO_memcmp(k->id, id, SEAL_KEY_ID_LEN) == 0)
		return 0;
	char want[33], have[33];
	seal_key_id_hex(id, want);
	seal_key_id_hex(k->id, have);
	return ckpt_err_set(EKEYREJECTED, "%s is sealed with key %s; the key given is %s "
			"(wrong key file)", what, want, have);
}

struct seal_key *
seal_key_open(const char *path, const char *from, const uint8_t id[SEAL_KEY_ID_LEN],
		const char *pool)
{
	struct seal_key *k = seal_key_load(path, from);
	if (!k)
		return NULL;
	char what[64 + 4096];
	snprintf(what, sizeof(what), "pool %s", pool);
	if (seal_key_check(k, id, what) < 0) {
		seal_key_free(k);
		return NULL;
	}
	return k;
}

void
seal_key_free(struct seal_key *k)
{
	if (!k)
		return;
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}
