/*
 * manifest.h -- the manifest of a pushed checkpoint: what a machine that
 * never had the pool needs to rebuild it (docs/FORMAT.md, "Remote
 * manifests", says the same byte by byte).
 *
 * A pushed checkpoint is its bytes [0, used) cut into chunks of chunk_size
 * (the last one shorter), each stored once under its content's name
 * "ckpt.c.<XXH3-128 in 32 hex digits>", plus one manifest object
 * "ckpt.m.<pool uuid>.<checkpoint id>.<image checksum>" (hex) written after
 * every chunk it lists is in the store. A chunk of zero bytes is not stored:
 * its entry is the all-zero name. The manifest ends with an XXH64 of all
 * its bytes before it; every field is checked before use (the store is
 * untrusted input, like a pool file).
 */
#ifndef CKPT_REMOTE_MANIFEST_H
#define CKPT_REMOTE_MANIFEST_H 1

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "internal.h"

#define MANIFEST_MAGIC "CKPTMANI"
#define MANIFEST_VERSION 1u         /* a plaintext checkpoint's */
#define MANIFEST_VERSION_SEALED 2u  /* a sealed checkpoint's (remote/sealed.c) */
#define MANIFEST_MIN_CHUNK ((uint32_t)4096)
#define MANIFEST_MAX_CHUNK ((uint32_t)64 << 20)
#define MANIFEST_PREFIX "ckpt.m."
#define CHUNK_PREFIX "ckpt.c."
#define MANIFEST_NAME_MAX 96
#define CHUNK_NAME_MAX 48

/* chunk_hash -- XXH3-128 of a chunk, high then low; {0,0}: a zero chunk */
struct chunk_hash {
	uint64_t hi, lo;
};

/* manifest_hdr -- 256 bytes at the start of the manifest, little-endian */
struct manifest_hdr {
	char magic[8];
	uint32_t version;
	uint32_t chunk_size;
	uint8_t uuid[16];          /* the pool's */
	uint64_t base;             /* the pool's base address */
	uint64_t heap_size;        /* the pool's configured heap size */
	uint32_t max_segments;     /* the pool's */
	uint32_t flags;            /* the checkpoint entry's CAT_F_PAGE_SUMS | CAT_F_ORIGIN,
	                              and CAT_F_SEALED (version 2) */
	uint64_t ckpt_id;
	uint64_t used;             /* image bytes: [0, used) */
	uint64_t in_use;
	uint64_t time_ns;          /* when the checkpoint was taken */
	uint64_t life;             /* the heap it was taken from */
	uint64_t lineage;
	uint64_t restarted_from;
	uint64_t checksum;         /* the checkpoint's checksum, as its catalog entry */
	uint64_t nchunks;          /* ceil(used / chunk_size) */
	uint64_t pushed_ns;
	char label[CAT_LABEL_MAX];
	uint8_t key_id[16];        /* version 2: the sealed pool's key id; else zero */
	uint8_t reserved[40];      /* zero */
};
_Static_assert(sizeof(struct manifest_hdr) == 256, "manifest_hdr is 256 bytes");

/* manifest -- a decoded, validated manifest (chunks points into the buffer) */
struct manifest {
	struct manifest_hdr h;
	const struct chunk_hash *chunks;
	const struct seal_record *seal; /* version 2: the seal record and its tags,
	                               seal_len bytes, into the buffer; else NULL */
	size_t seal_len;
	void *buf;                 /* owner of the bytes */
	size_t len;
};

/* manifest_size -- the encoded size of a version 1 manifest of nchunks (add the seal record's for 2) */
static inline size_t
manifest_size(uint64_t nchunks)
{
	return sizeof(struct manifest_hdr) + nchunks * sizeof(struct chunk_hash) +
		sizeof(uint64_t);
}

/* manifest_max_size -- the largest manifest a reader accepts */
#define MANIFEST_MAX_BYTES ((size_t)256 << 20)

/* manifest_seal -- write the trailing checksum of an encoded manifest */
CKPT_HIDDEN void manifest_seal(void *buf, size_t len);

/*
 * manifest_decode -- validate buf (len bytes, read from the store as name)
 * and point m into it; m takes ownership of buf on success. EINVAL naming
 * the manifest and the first bad field.
 */
CKPT_HIDDEN int manifest_decode(struct manifest *m, const char *name, void *buf, size_t len);
CKPT_HIDDEN void manifest_free(struct manifest *m);

/* manifest_name -- "ckpt.m.<uuid>.<id>.<checksum>" into out (MANIFEST_NAME_MAX) */
CKPT_HIDDEN void manifest_name(const struct manifest_hdr *h, char *out);

/* chunk_name -- "ckpt.c.<hash>" into out (CHUNK_NAME_MAX) */
CKPT_HIDDEN void chunk_name(const struct chunk_hash *c, char *out);

/* chunk_hash_of -- the name hash of len bytes; {0,0} if they are all zero */
CKPT_HIDDEN struct chunk_hash chunk_hash_of(const void *data, size_t len);

static inline int
chunk_is_zero(const struct chunk_hash *c)
{
	return c->hi == 0 && c->lo == 0;
}

#endif
