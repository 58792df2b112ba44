/*
 * chunks.h -- a sealed checkpoint in the pool file: its image encrypted in
 * 2 MiB chunks in its segment, and its seal record (format.h, struct
 * seal_record, and one tag per chunk) in the segment's page-sum slot.
 *
 * Plaintext never reaches the file: the writer encrypts each chunk of the
 * heap into a buffer of its own and writes that; the reader reads each
 * chunk's ciphertext into the destination and decrypts it there, and
 * reports the first chunk that fails authentication by index and byte
 * range. Used by the checkpoint and restart paths and by ckpt-inspect.
 */
#ifndef CKPT_SEAL_CHUNKS_H
#define CKPT_SEAL_CHUNKS_H 1

#include <stdint.h>

#include "format.h"
#include "internal.h"
#include "seal/key.h"

#define SEAL_CHUNK_SHIFT 21u
#define SEAL_CHUNK ((uint64_t)1 << SEAL_CHUNK_SHIFT)

/*
 * seal_write_image -- encrypt heap[0, used) into segment seg of the pool
 * file fd (header h) as checkpoint id under key k, and its record into
 * the segment's slot; *sum gets the XXH3-64 of the ciphertext (the catalog
 * entry's checksum). Not durable yet (the caller fdatasyncs). Crash point
 * checkpoint:mid-copy after the first half of the chunks.
 */
CKPT_HIDDEN int seal_write_image(int fd, const struct pool_hdr *h, uint32_t seg,
		const void *heap, uint64_t used, uint64_t id, const struct seal_key *k,
		uint64_t *sum);

/*
 * seal_read_image -- decrypt the sealed checkpoint e (in segment seg) into
 * dst[0, e->used), checking every chunk. Errors, message naming the
 * checkpoint: EKEYREJECTED (sealed with another key), EINVAL (record
 * damaged or not matching the entry), EBADMSG (a chunk fails
 * authentication: named), EIO (the file ends or cannot be read). On error
 * dst holds unauthenticated bytes: the caller must not use them.
 */
CKPT_HIDDEN int seal_read_image(int fd, const struct pool_hdr *h, uint32_t seg,
		const struct cat_entry *e, const struct seal_key *k, void *dst);

/* seal_record_len -- bytes of the seal record (header and tags) of an image of used bytes */
CKPT_HIDDEN size_t seal_record_len(uint64_t used);

/*
 * seal_record_check -- the record header r belongs to checkpoint e of the
 * pool of header h (magic, version, chunk size, id, used, count, uuid,
 * reserved, fits the slot); EINVAL "seal record damaged: ..." otherwise.
 * The key id is not checked here (the key's check does it).
 */
CKPT_HIDDEN int seal_record_check(const struct pool_hdr *h, const struct cat_entry *e,
		const struct seal_record *r);

/*
 * seal_record_load -- the seal record of sealed checkpoint e in segment
 * seg (seal_record_len(e->used) bytes, header and tags) into a new buffer
 * *rec, checked with seal_record_check and against the header's key id
 * (nothing is decrypted: no key needed). EINVAL when damaged, EIO (or
 * the read's errno) when it cannot be read; the message names the
 * checkpoint.
 */
CKPT_HIDDEN int seal_record_load(int fd, const struct pool_hdr *h, uint32_t seg,
		const struct cat_entry *e, void **rec);

/*
 * seal_record_store -- write a seal record (len bytes, checked by the
 * caller) into segment seg's page-sum slot; not durable yet
 */
CKPT_HIDDEN int seal_record_store(int fd, const struct pool_hdr *h, uint32_t seg,
		const void *rec, size_t len);

/*
 * seal_reader -- a sealed checkpoint opened for reading chunk by chunk (a
 * lazy restart): seal_reader_open checks the record as seal_read_image
 * does (same errors, naming the checkpoint) and maps the ciphertext
 * read-only; seal_reader_read decrypts bytes [off, off + len) of the image
 * (whole chunks: off a multiple of SEAL_CHUNK, len too or up to the end)
 * into buf, each chunk authenticated, and on EBADMSG (naming checkpoint,
 * segment, chunk and byte range) or EIO wipes what it wrote. One thread at
 * a time per reader.
 */
struct seal_reader;
CKPT_HIDDEN struct seal_reader *seal_reader_open(int fd, const struct pool_hdr *h,
		uint32_t seg, const struct cat_entry *e, const struct seal_key *k);
CKPT_HIDDEN int seal_reader_read(struct seal_reader *rd, uint64_t off, uint64_t len,
		void *buf);
CKPT_HIDDEN void seal_reader_free(struct seal_reader *rd);

#endif
