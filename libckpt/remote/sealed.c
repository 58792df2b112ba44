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
#include <unistd.h>

#include "inspect.h"
#include "layout.h"
#include "pool.h"
#include "seal/chunks.h"
#include "remote/import.h"
#include "remote/sealed.h"

size_t
sealed_record_len(uint64_t used)
{
	return seal_record_len(used);
}

/* pread_full -- n bytes at off of fd; -1 with errno (EIO: the file ends) */
static int
pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			return -1;
		}
		done += (size_t)r;
	}
	return 0;
}

int
sealed_record_read(const struct inspect *in, uint32_t seg, const struct cat_entry *e,
		void **rec)
{
	size_t len = seal_record_len(e->used);
	char *buf = malloc(len);
	if (!buf)
		return ckpt_err_set(ENOMEM, "out of memory for a seal record");
	if (pread_full(in->fd, buf, len, layout_sums_off(&in->hdr, seg)) < 0) {
		int err = errno;
		free(buf);
		return ckpt_err_set(err, "cannot read the seal record of checkpoint %llu: %s",
				(unsigned long long)e->ckpt_id, strerror(err));
	}
	const struct seal_record *r = (const struct seal_record *)buf;
	int bad = seal_record_check(&in->hdr, e, r) < 0;
	if (!bad && memcmp(r->key_id, in->hdr.key_id, sizeof(r->key_id)) != 0)
		bad = ckpt_err_set(EINVAL, "seal record damaged: another key id than the "
				"pool's") < 0;
	if (bad) {
		free(buf);
		ckpt_err_prefix("checkpoint %llu: ", (unsigned long long)e->ckpt_id);
		errno = EINVAL;
		return -1;
	}
	*rec = buf;
	return 0;
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
	struct ckpt_pool *p = im->p;
	if (im->present)
		return 0;
	const char *b = (const char *)m->seal;
	size_t len = m->seal_len;
	uint64_t at = layout_sums_off(&p->hdr, im->seg);
	while (len) {
		ssize_t n = pwrite(p->fd, b, len, (off_t)at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ckpt_err_set(n < 0 ? errno : EIO, "cannot write the seal record "
					"into pool %s: %s", p->path,
					n < 0 ? strerror(errno) : "short write");
		b += n;
		at += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}
