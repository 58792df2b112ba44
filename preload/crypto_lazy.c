/*
 * crypto_lazy.c -- libcrypto for the preload library, loaded only when a
 * pool is sealed.
 *
 * Loading and relocating libcrypto.so.3 costs every process image that
 * maps it most of a millisecond (measured: 200 runs of /bin/true took
 * 0.17 s longer with libcrypto preloaded than without), and under
 * ckpt-run every process image loads the preload library: a shell loop or
 * a build starts hundreds. Only a sealed pool needs libcrypto (seal/:
 * the key id, the per-checkpoint key, AES-256-GCM), so the preload
 * library does not link it: this file defines, for the preload library
 * only, the fifteen libcrypto functions seal/ calls, each of which opens
 * libcrypto with dlopen on first need and calls the real one. libckpt.so
 * itself links libcrypto as before.
 *
 * If libcrypto cannot be loaded, every function fails the way libcrypto
 * reports a failure (NULL, 0), so the seal code's own error paths say
 * that the key or the cipher could not be set up; OPENSSL_cleanse still
 * wipes (explicit_bzero) and CRYPTO_memcmp reports a mismatch. Nothing
 * here runs for a pool that is not sealed.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "preload.h"

#define CRYPTO_SONAME "libcrypto.so.3"

/* the real functions, each of its own declared type */
#define CRYPTO_FUNCS(X) \
	X(HMAC) X(EVP_sha256) X(EVP_aes_256_gcm) X(EVP_Digest) \
	X(EVP_CIPHER_CTX_new) X(EVP_CIPHER_CTX_free) X(EVP_CIPHER_CTX_ctrl) \
	X(EVP_EncryptInit_ex) X(EVP_EncryptUpdate) X(EVP_EncryptFinal_ex) \
	X(EVP_DecryptInit_ex) X(EVP_DecryptUpdate) X(EVP_DecryptFinal_ex) \
	X(OPENSSL_cleanse) X(CRYPTO_memcmp)

#define CRYPTO_PTR(f) __typeof__(f) *f;
static struct { CRYPTO_FUNCS(CRYPTO_PTR) } real;
static int real_ok;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

/* load_real -- dlopen libcrypto and find every function, or none */
static void
load_real(void)
{
	int was = preload_in_lib;
	preload_in_lib = 1;     /* dlopen allocates: not from the pool */
	void *h = dlopen(CRYPTO_SONAME, RTLD_NOW | RTLD_LOCAL);
	int ok = h != NULL;
#define CRYPTO_SYM(f) \
	if (ok && !(real.f = (__typeof__(f) *)dlsym(h, #f))) \
		ok = 0;
	CRYPTO_FUNCS(CRYPTO_SYM)
	preload_in_lib = was;
	real_ok = ok;
}

/* have_real -- 1 once libcrypto is loaded, 0 if it cannot be */
static int
have_real(void)
{
	pthread_once(&real_once, load_real);
	return real_ok;
}

/*
 * CRYPTO_WRAP -- define f(params) as the real f(args), or fail where
 * libcrypto cannot be loaded
 */
#define CRYPTO_WRAP(ret, fail, f, params, args) \
	ret f params { return have_real() ? real.f args : (fail); }

CRYPTO_WRAP(unsigned char *, NULL, HMAC, (const EVP_MD *md, const void *key, int klen,
		const unsigned char *d, size_t n, unsigned char *out, unsigned int *olen),
		(md, key, klen, d, n, out, olen))
CRYPTO_WRAP(const EVP_MD *, NULL, EVP_sha256, (void), ())
CRYPTO_WRAP(const EVP_CIPHER *, NULL, EVP_aes_256_gcm, (void), ())
CRYPTO_WRAP(int, 0, EVP_Digest, (const void *d, size_t n, unsigned char *md, unsigned int *s,
		const EVP_MD *type, ENGINE *impl), (d, n, md, s, type, impl))
CRYPTO_WRAP(EVP_CIPHER_CTX *, NULL, EVP_CIPHER_CTX_new, (void), ())
CRYPTO_WRAP(int, 0, EVP_CIPHER_CTX_ctrl, (EVP_CIPHER_CTX *c, int type, int arg, void *ptr),
		(c, type, arg, ptr))
CRYPTO_WRAP(int, 0, EVP_EncryptInit_ex, (EVP_CIPHER_CTX *c, const EVP_CIPHER *t, ENGINE *impl,
		const unsigned char *key, const unsigned char *iv), (c, t, impl, key, iv))
CRYPTO_WRAP(int, 0, EVP_DecryptInit_ex, (EVP_CIPHER_CTX *c, const EVP_CIPHER *t, ENGINE *impl,
		const unsigned char *key, const unsigned char *iv), (c, t, impl, key, iv))
CRYPTO_WRAP(int, 0, EVP_EncryptUpdate, (EVP_CIPHER_CTX *c, unsigned char *out, int *outl,
		const unsigned char *in, int inl), (c, out, outl, in, inl))
CRYPTO_WRAP(int, 0, EVP_DecryptUpdate, (EVP_CIPHER_CTX *c, unsigned char *out, int *outl,
		const unsigned char *in, int inl), (c, out, outl, in, inl))
CRYPTO_WRAP(int, 0, EVP_EncryptFinal_ex, (EVP_CIPHER_CTX *c, unsigned char *out, int *outl),
		(c, out, outl))
CRYPTO_WRAP(int, 0, EVP_DecryptFinal_ex, (EVP_CIPHER_CTX *c, unsigned char *out, int *outl),
		(c, out, outl))
CRYPTO_WRAP(int, 1, CRYPTO_memcmp, (const void *a, const void *b, size_t n), (a, b, n))

void
EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *c)
{
	if (c && have_real())
		real.EVP_CIPHER_CTX_free(c);
}

void
OPENSSL_cleanse(void *p, size_t n)
{
	if (have_real())
		real.OPENSSL_cleanse(p, n);
	else
		explicit_bzero(p, n);
}
