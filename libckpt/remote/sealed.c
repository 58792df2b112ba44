/*
 * sealed.c -- what the remote tier does differently for a sealed
 * checkpoint (sealed.h): the seal record read from the pool for a push,
 * checked when a manifest is decoded, written back by a pull.
 *
 * The record is the only part of a sealed checkpoint outside its segment.
 * It holds no secret (salt, uuid, key id, tags): the tags authenticate,
 * under keys derived from the pool key, each 2 MiB chunk together with
 * the record's header, so a record or chunk altered on the store is
 * refused at the restart by the same check that refuses one altered in
 * the pool file (seal/chunks.c), the chunk named. Before that, the store
 * side checks what it can without the key: each chunk against its name
 * and the whole ciphertext against the checkpoint's checksum (pull.c), and
 * the record against the manifest (here).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inspect.h"
#include "pool.h"
#include "seal/chunks.h"
#include "remote/import.h"
#include "remote/sealed.h"

size_t
sealed_record_len(uint64_t used)
{
	return seal_record_len(used);
}

int
sealed_record_read(const struct inspect *in, uint32_t seg, const struct cat_entry *e,
		void **rec)
{
	return seal_record_load(in->fd, &in->hdr, seg, e, rec);
}

int
sealed_manifest_check(const struct manifest_hdr *h, const char *name, const void *rec)
{
	struct pool_hdr ph;
	struct cat_entry e;
	memset(&ph, 0, sizeof(ph));
	memset(&e, 0, sizeof(e));
	memcpy(ph.uuid, h->uuid, sizeof(ph.uuid));
	ph.seg_size = align_up(h->heap_size, POOL_DATA_ALIGN);
	e.ckpt_id = h->ckpt_id;
	e.used = h->used;
	struct seal_record r;
	memcpy(&r, rec, sizeof(r));
	static const uint8_t zero[16];
	if (memcmp(h->key_id, zero, sizeof(zero)) == 0)
		return ckpt_err_set(EINVAL, "manifest %s is damaged: sealed without a key id",
				name);
	if (seal_record_check(&ph, &e, &r) < 0) {
		ckpt_err_prefix("manifest %s is damaged: ", name);
		errno = EINVAL;
		return -1;
	}
	if (memcmp(r.key_id, h->key_id, sizeof(r.key_id)) != 0)
		return ckpt_err_set(EINVAL, "manifest %s is damaged: its seal record names "
				"another key than its header", name);
	return 0;
}

void
sealed_desc(struct import_desc *d, const struct manifest *m)
{
	d->keyless = 1;
	memcpy(d->key_id, m->h.key_id, sizeof(d->key_id));
}

int
sealed_import_record(struct import *im, const struct manifest *m)
{
	if (im->present)
		return 0;
	if (seal_record_store(im->p->fd, &im->p->hdr, im->seg, m->seal, m->seal_len) < 0) {
		ckpt_err_prefix("pool %s: ", im->p->path);
		return -1;
	}
	return 0;
}
