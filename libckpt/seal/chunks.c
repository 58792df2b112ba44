/*
 * chunks.c -- writing and reading sealed checkpoint images (chunks.h).
 *
 * Write: draw a salt, derive the checkpoint's cipher (cipher.c), then for
 * each 2 MiB chunk of the heap, piece by piece (SEAL_PIECE, so each piece
 * is still in the cache when it is hashed and written): encrypt it into a
 * private buffer, hash the ciphertext into the running XXH3 (the catalog's
 * checksum, so verify and the copy paths treat a sealed image like any
 * other), pwrite it to its place in the segment; then the chunk's tag. Last, the record and the tags go to the
 * slot. The heap is quiescent throughout (the caller holds its locks).
 *
 * Read (a seal_reader): the record is read and checked against the entry
 * and the header first, so a wrong key (EKEYREJECTED) or a record that
 * does not belong here (EINVAL) is refused before anything is decrypted.
 * Then each chunk's ciphertext is decrypted from a read-only view of the
 * segment (map.c; one pass, no copy in between) into its destination,
 * piece by piece; its tag, checked at the chunk's end, binds the record
 * (uuid, id, length, count, salt) and its index. An eager restart reads
 * every chunk into the heap at once (seal_read_image); a lazy one asks
 * for one chunk at a time, from the lazy fill's thread (restart.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "fileio.h"
#include "layout.h"
#include "map.h"
#include "testhook.h"
#include "seal/chunks.h"
#include "seal/cipher.h"

#define SEAL_PIECE ((size_t)256 << 10)  /* bytes transformed, hashed and moved at once */

/* nchunks_of -- chunks of an image of used bytes */
static uint64_t
nchunks_of(uint64_t used)
{
	return (used + SEAL_CHUNK - 1) >> SEAL_CHUNK_SHIFT;
}

/* slot_fits -- 1 if a record of nchunks tags fits in a slot of header h */
static int
slot_fits(const struct pool_hdr *h, uint64_t nchunks)
{
	return nchunks <= h->seg_size >> SEAL_CHUNK_SHIFT &&
		sizeof(struct seal_record) + nchunks * SEAL_TAG_LEN <= h->seg_size / 512;
}

/* chunk_len -- bytes of chunk i of record r */
static size_t
chunk_len(const struct seal_record *r, uint64_t i)
{
	uint64_t off = i << SEAL_CHUNK_SHIFT;
	return (size_t)(r->used - off < SEAL_CHUNK ? r->used - off : SEAL_CHUNK);
}

/* write_chunk -- encrypt, hash and write chunk i in pieces through buf; its tag */
static int
write_chunk(int fd, uint64_t seg_off, const char *heap, const struct seal_record *r,
		uint64_t i, struct seal_cipher *c, uint8_t *tag, XXH3_state_t *st, void *buf)
{
	uint64_t off = i << SEAL_CHUNK_SHIFT;
	size_t n = chunk_len(r, i);
	if (seal_chunk_begin(c, 1, i, r, sizeof(*r)) < 0)
		return -1;
	for (size_t p = 0; p < n; p += SEAL_PIECE) {
		size_t k = n - p < SEAL_PIECE ? n - p : SEAL_PIECE;
		if (seal_chunk_update(c, 1, heap + off + p, buf, k) < 0)
			return -1;
		XXH3_64bits_update(st, buf, k);
		if (fio_pwrite_all(fd, buf, k, seg_off + off + p) < 0)
			return ckpt_err_set(errno, "cannot write sealed chunk %llu: %s",
					(unsigned long long)i, strerror(errno));
	}
	return seal_chunk_seal(c, tag);
}

/* write_chunks -- every chunk; tags and the running sum filled */
static int
write_chunks(int fd, uint64_t seg_off, const void *heap, const struct seal_record *r,
		struct seal_cipher *c, uint8_t *tags, XXH3_state_t *st, void *buf)
{
	for (uint64_t i = 0; i < r->nchunks; i++) {
		if (write_chunk(fd, seg_off, heap, r, i, c, tags + i * SEAL_TAG_LEN, st, buf) < 0)
			return -1;
		if (i + 1 == r->nchunks / 2)
			test_point("checkpoint:mid-copy");
	}
	return 0;
}

int
seal_write_image(int fd, const struct pool_hdr *h, uint32_t seg, const void *heap,
		uint64_t used, uint64_t id, const struct seal_key *k, uint64_t *sum)
{
	struct seal_record r;
	memset(&r, 0, sizeof(r));
	memcpy(r.magic, SEAL_MAGIC, sizeof(r.magic));
	r.version = SEAL_RECORD_VERSION;
	r.chunk_shift = SEAL_CHUNK_SHIFT;
	r.ckpt_id = id;
	r.used = used;
	r.nchunks = nchunks_of(used);
	memcpy(r.uuid, h->uuid, sizeof(r.uuid));
	memcpy(r.key_id, k->id, sizeof(r.key_id));
	if (!slot_fits(h, r.nchunks))
		return ckpt_err_set(EINVAL, "a sealed image of %llu bytes does not fit the "
				"pool's geometry", (unsigned long long)used);
	if (seal_random(r.salt, sizeof(r.salt)) < 0)
		return -1;
	size_t rlen = sizeof(r) + (size_t)r.nchunks * SEAL_TAG_LEN;
	uint8_t *rec = calloc(1, rlen);
	void *buf = malloc(SEAL_PIECE);
	XXH3_state_t *st = XXH3_createState();
	struct seal_cipher *c = rec && buf && st ? seal_cipher_new(k, r.salt) : NULL;
	int ret = -1;
	if (!rec || !buf || !st) {
		ckpt_err_set(ENOMEM, "out of memory for sealing");
		goto out;
	}
	if (!c)
		goto out;
	XXH3_64bits_reset(st);
	if (write_chunks(fd, layout_seg_off(h, seg), heap, &r, c, rec + sizeof(r), st, buf) < 0)
		goto out;
	memcpy(rec, &r, sizeof(r));
	if (fio_pwrite_all(fd, rec, rlen, layout_sums_off(h, seg)) < 0) {
		ckpt_err_set(errno, "cannot write the seal record: %s", strerror(errno));
		goto out;
	}
	*sum = XXH3_64bits_digest(st);
	ret = 0;
out:
	seal_cipher_free(c);
	if (st)
		XXH3_freeState(st);
	free(buf);
	free(rec);
	return ret;
}

size_t
seal_record_len(uint64_t used)
{
	return sizeof(struct seal_record) + (size_t)nchunks_of(used) * SEAL_TAG_LEN;
}

int
seal_record_check(const struct pool_hdr *h, const struct cat_entry *e,
		const struct seal_record *r)
{
	static const uint8_t zero[sizeof(r->reserved)];
	const char *bad = NULL;
	if (memcmp(r->magic, SEAL_MAGIC, sizeof(r->magic)) != 0)
		bad = "bad magic";
	else if (r->version != SEAL_RECORD_VERSION || r->chunk_shift != SEAL_CHUNK_SHIFT)
		bad = "unknown version or chunk size";
	else if (r->ckpt_id != e->ckpt_id || r->used != e->used)
		bad = "it is the record of another checkpoint";
	else if (memcmp(r->uuid, h->uuid, sizeof(r->uuid)) != 0)
		bad = "it is the record of another pool";
	else if (r->nchunks != nchunks_of(r->used) || !slot_fits(h, r->nchunks) ||
		 memcmp(r->reserved, zero, sizeof(zero)) != 0)
		bad = "inconsistent fields";
	if (bad)
		return ckpt_err_set(EINVAL, "seal record damaged: %s", bad);
	return 0;
}

int
seal_record_load(int fd, const struct pool_hdr *h, uint32_t seg, const struct cat_entry *e,
		void **rec)
{
	size_t len = seal_record_len(e->used);
	struct seal_record *r = malloc(len);
	if (!r)
		return ckpt_err_set(ENOMEM, "out of memory for a seal record");
	int bad = 0;
	if (fio_pread_all(fd, r, len, layout_sums_off(h, seg)) < 0)
		bad = ckpt_err_set(errno, "cannot read the seal record: %s", strerror(errno));
	else if (seal_record_check(h, e, r) < 0)
		bad = -1;
	else if (memcmp(r->key_id, h->key_id, sizeof(r->key_id)) != 0)
		bad = ckpt_err_set(EINVAL, "seal record damaged: another key id than the pool's");
	if (bad) {
		int err = errno;
		free(r);
		ckpt_err_prefix("sealed checkpoint %llu (segment %u): ",
				(unsigned long long)e->ckpt_id, seg);
		errno = err;
		return -1;
	}
	*rec = r;
	return 0;
}

int
seal_record_store(int fd, const struct pool_hdr *h, uint32_t seg, const void *rec, size_t len)
{
	if (fio_pwrite_all(fd, rec, len, layout_sums_off(h, seg)) < 0)
		return ckpt_err_set(errno ? errno : EIO, "cannot write the seal record of "
				"segment %u: %s", seg, strerror(errno ? errno : EIO));
	return 0;
}

/*
 * read_chunk -- decrypt chunk i from view (the image's ciphertext, mapped)
 * into dst (the chunk's place) in pieces, then check its tag; the chunk's
 * pages are read in first, so an unreadable one is EIO here, never SIGBUS
 */
static int
read_chunk(const char *view, const struct seal_record *r, uint64_t i, struct seal_cipher *c,
		const uint8_t *tag, char *dst)
{
	uint64_t off = i << SEAL_CHUNK_SHIFT;
	size_t n = chunk_len(r, i);
	if (map_view_read(view + off, n) < 0) {
		ckpt_err_prefix("sealed chunk %llu: ", (unsigned long long)i);
		return -1;
	}
	if (seal_chunk_begin(c, 0, i, r, sizeof(*r)) < 0)
		return -1;
	for (size_t p = 0; p < n; p += SEAL_PIECE) {
		size_t k = n - p < SEAL_PIECE ? n - p : SEAL_PIECE;
		if (seal_chunk_update(c, 0, view + off + p, dst + p, k) < 0)
			return -1;
	}
	if (seal_chunk_open(c, tag) < 0)
		return ckpt_err_set(EBADMSG, "chunk %llu (bytes %llu-%llu) fails "
			"authentication: the sealed image was altered or damaged",
			(unsigned long long)i, (unsigned long long)off,
			(unsigned long long)(off + n - 1));
	return 0;
}

/*
 * seal_reader -- an open sealed checkpoint: its record (checked), its
 * tags, its cipher and a read-only view of its ciphertext
 */
struct seal_reader {
	struct seal_record r;
	uint8_t *tags;
	struct seal_cipher *c;
	const char *view;
	uint64_t ckpt_id;
	uint32_t seg;
};

void
seal_reader_free(struct seal_reader *rd)
{
	if (!rd)
		return;
	map_view_end(rd->view, (size_t)rd->r.used);
	seal_cipher_free(rd->c);
	free(rd->tags);
	free(rd);
}

/* reader_fail -- free rd, name the checkpoint in the message; NULL */
static struct seal_reader *
reader_fail(struct seal_reader *rd, const struct cat_entry *e, uint32_t seg)
{
	seal_reader_free(rd);
	ckpt_err_prefix("sealed checkpoint %llu (segment %u): ",
			(unsigned long long)e->ckpt_id, seg);
	return NULL;
}

struct seal_reader *
seal_reader_open(int fd, const struct pool_hdr *h, uint32_t seg, const struct cat_entry *e,
		const struct seal_key *k)
{
	struct seal_reader *rd = calloc(1, sizeof(*rd));
	if (!rd) {
		ckpt_err_set(ENOMEM, "out of memory");
		return reader_fail(NULL, e, seg);
	}
	rd->ckpt_id = e->ckpt_id;
	rd->seg = seg;
	struct seal_record *r = &rd->r;
	if (seal_key_check(k, h->key_id, "the pool") < 0)
		return reader_fail(rd, e, seg);
	if (fio_pread_all(fd, r, sizeof(*r), layout_sums_off(h, seg)) < 0) {
		ckpt_err_set(errno, "cannot read the seal record: %s", strerror(errno));
		return reader_fail(rd, e, seg);
	}
	if (seal_record_check(h, e, r) < 0)
		return reader_fail(rd, e, seg);
	if (memcmp(r->key_id, k->id, sizeof(r->key_id)) != 0 &&
	    seal_key_check(k, r->key_id, "the checkpoint") < 0)
		return reader_fail(rd, e, seg);
	size_t tlen = (size_t)r->nchunks * SEAL_TAG_LEN;
	rd->tags = malloc(tlen ? tlen : 1);
	if (!rd->tags) {
		ckpt_err_set(ENOMEM, "out of memory");
		return reader_fail(rd, e, seg);
	}
	if (fio_pread_all(fd, rd->tags, tlen, layout_sums_off(h, seg) + sizeof(*r)) < 0) {
		ckpt_err_set(errno, "cannot read the seal record's tags: %s", strerror(errno));
		return reader_fail(rd, e, seg);
	}
	if ((rd->c = seal_cipher_new(k, r->salt)) == NULL ||
	    map_view(fd, layout_seg_off(h, seg), (size_t)r->used, (const void **)&rd->view) < 0)
		return reader_fail(rd, e, seg);
	return rd;
}

int
seal_reader_read(struct seal_reader *rd, uint64_t off, uint64_t len, void *buf)
{
	const struct seal_record *r = &rd->r;
	if (off % SEAL_CHUNK || off > r->used || len > r->used - off ||
	    (len % SEAL_CHUNK && off + len != r->used))
		return ckpt_err_set(EINVAL, "bytes %llu+%llu are not whole chunks of the "
				"image", (unsigned long long)off, (unsigned long long)len);
	for (uint64_t o = 0; o < len; o += SEAL_CHUNK) {
		uint64_t i = (off + o) >> SEAL_CHUNK_SHIFT;
		if (read_chunk(rd->view, r, i, rd->c, rd->tags + i * SEAL_TAG_LEN,
				(char *)buf + o) < 0) {
			/* unauthenticated bytes are never kept */
			explicit_bzero((char *)buf + o, chunk_len(r, i));
			ckpt_err_prefix("sealed checkpoint %llu (segment %u): ",
					(unsigned long long)rd->ckpt_id, rd->seg);
			return -1;
		}
	}
	return 0;
}

int
seal_read_image(int fd, const struct pool_hdr *h, uint32_t seg, const struct cat_entry *e,
		const struct seal_key *k, void *dst)
{
	struct seal_reader *rd = seal_reader_open(fd, h, seg, e, k);
	if (!rd)
		return -1;
	int rc = seal_reader_read(rd, 0, rd->r.used, dst);
	seal_reader_free(rd);
	return rc;
}
