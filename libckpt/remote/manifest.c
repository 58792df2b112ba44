/*
 * manifest.c -- encoding, naming and validation of remote manifests and
 * chunk names (manifest.h has the layout). Decoding trusts nothing: the
 * checksum first, then every field against the limits the pool format
 * itself has, so a manifest that decodes can be turned into a pool.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "remote/manifest.h"
#include "remote/sealed.h"
#include "testhook.h"

void
manifest_seal(void *buf, size_t len)
{
	uint64_t sum = XXH64(buf, len - sizeof(uint64_t), 0);
	memcpy((char *)buf + len - sizeof(sum), &sum, sizeof(sum));
}

/* bad -- EINVAL naming the manifest and what is wrong with it */
static int
bad(const char *name, const char *what)
{
	return ckpt_err_set(EINVAL, "manifest %s is damaged: %s", name, what);
}

int
manifest_decode(struct manifest *m, const char *name, void *buf, size_t len)
{
	struct manifest_hdr h;
	if (len < manifest_size(0))
		return bad(name, "shorter than its header");
	uint64_t sum;
	memcpy(&sum, (char *)buf + len - sizeof(sum), sizeof(sum));
	if (sum != XXH64(buf, len - sizeof(sum), 0))
		return bad(name, "checksum mismatch");
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, MANIFEST_MAGIC, sizeof(h.magic)) != 0)
		return bad(name, "bad magic");
	/* CKPT_TEST_MANIFEST_V1: read as a libckpt that knows only version 1 */
	uint32_t known = test_flag("CKPT_TEST_MANIFEST_V1") ? MANIFEST_VERSION :
		MANIFEST_VERSION_SEALED;
	if (h.version == 0 || h.version > known)
		return ckpt_err_set(ENOTSUP, "manifest %s has version %u, this libckpt "
				"reads versions up to %u", name, h.version, known);
	if ((h.version == MANIFEST_VERSION_SEALED) != ((h.flags & CAT_F_SEALED) != 0))
		return bad(name, h.version == MANIFEST_VERSION ? "a sealed checkpoint in a "
				"version 1 manifest" : "a version 2 manifest not sealed");
	size_t seal_len = h.version == MANIFEST_VERSION_SEALED ? sealed_record_len(h.used) : 0;
	if (h.chunk_size < MANIFEST_MIN_CHUNK || h.chunk_size > MANIFEST_MAX_CHUNK ||
	    (h.chunk_size & (h.chunk_size - 1)))
		return bad(name, "chunk size not a power of two in [4 KiB, 64 MiB]");
	if (h.heap_size < POOL_MIN_HEAP || h.heap_size > POOL_MAX_HEAP)
		return bad(name, "heap size out of range");
	if (h.used > align_up(h.heap_size, POOL_DATA_ALIGN))
		return bad(name, "image larger than the heap");
	if ((h.flags & CAT_F_PAGE_SUMS) && h.used % 4096)
		return bad(name, "image of page sums not a whole number of pages");
	if (h.base == 0 || h.base % POOL_DATA_ALIGN)
		return bad(name, "base not 2 MiB aligned");
	if (h.max_segments == 0 || h.max_segments > POOL_MAX_SEGMENTS)
		return bad(name, "segment count out of range");
	if (h.ckpt_id == 0 || h.life == 0 || h.lineage == 0)
		return bad(name, "checkpoint id, life or lineage is 0");
	if (h.nchunks != (h.used + h.chunk_size - 1) / h.chunk_size)
		return bad(name, "chunk count does not match the image size");
	if (len != manifest_size(h.nchunks) + seal_len)
		return bad(name, "length does not match its chunk count");
	if (memchr(h.label, 0, sizeof(h.label)) == NULL)
		return bad(name, "label not terminated");
	const void *rec = (char *)buf + manifest_size(h.nchunks) - sizeof(uint64_t);
	if (seal_len && sealed_manifest_check(&h, name, rec) < 0)
		return -1;
	m->h = h;
	m->chunks = (const struct chunk_hash *)((char *)buf + sizeof(h));
	m->seal = seal_len ? rec : NULL;
	m->seal_len = seal_len;
	m->buf = buf;
	m->len = len;
	return 0;
}

void
manifest_free(struct manifest *m)
{
	free(m->buf);
	m->buf = NULL;
	m->chunks = NULL;
	m->seal = NULL;
}

void
manifest_name(const struct manifest_hdr *h, char *out)
{
	int k = snprintf(out, MANIFEST_NAME_MAX, "%s", MANIFEST_PREFIX);
	for (int i = 0; i < 16; i++)
		k += snprintf(out + k, (size_t)(MANIFEST_NAME_MAX - k), "%02x", h->uuid[i]);
	snprintf(out + k, (size_t)(MANIFEST_NAME_MAX - k), ".%llu.%016llx",
			(unsigned long long)h->ckpt_id, (unsigned long long)h->checksum);
}

void
chunk_name(const struct chunk_hash *c, char *out)
{
	snprintf(out, CHUNK_NAME_MAX, "%s%016llx%016llx", CHUNK_PREFIX,
			(unsigned long long)c->hi, (unsigned long long)c->lo);
}

/* all_zero -- 1 if len bytes are zero (word at a time; len a multiple of 8 or not) */
static int
all_zero(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (w)
			return 0;
	}
	for (; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

struct chunk_hash
chunk_hash_of(const void *data, size_t len)
{
	struct chunk_hash c = { 0, 0 };
	if (all_zero(data, len))
		return c;
	XXH128_hash_t h = XXH3_128bits(data, len);
	c.hi = h.high64;
	c.lo = h.low64;
	if (chunk_is_zero(&c))
		c.lo = 1;       /* 2^-128: keep {0,0} for zero chunks */
	return c;
}
