/*
 * sealed.h -- sealed checkpoints in the remote tier (docs/FORMAT.md,
 * "Manifests", version 2).
 *
 * A sealed checkpoint travels as the pool file holds it: its chunks are
 * the ciphertext of its segment, named by content like any chunk, and its
 * manifest carries the seal record (salt, binding, one GCM tag per 2 MiB
 * chunk) that the segment's page-sum slot holds. Neither a push nor a pull
 * needs the key: the push reads ciphertext, the pull writes it back into a
 * sealed pool of the same uuid and key id, and only the restart that
 * follows, with the key, decrypts and authenticates each chunk.
 */
#ifndef CKPT_REMOTE_SEALED_H
#define CKPT_REMOTE_SEALED_H 1

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "internal.h"
#include "remote/manifest.h"

struct inspect;
struct import;
struct import_desc;

/* sealed_record_len -- bytes of the seal record of an image of used bytes */
CKPT_HIDDEN size_t sealed_record_len(uint64_t used);

/*
 * sealed_record_read -- the seal record (sealed_record_len(e->used)
 * bytes) of sealed checkpoint e in segment seg of the pool in, checked
 * against the entry and the pool, into a new buffer *rec; EINVAL naming
 * the checkpoint when it is damaged
 */
CKPT_HIDDEN int sealed_record_read(const struct inspect *in, uint32_t seg,
		const struct cat_entry *e, void **rec);

/*
 * sealed_manifest_check -- the seal record rec of a version 2 manifest
 * (header h, named name) belongs to its checkpoint: the record's checks
 * (seal_record_check) against the manifest's uuid, id, size and heap, and
 * the key id against the header's; EINVAL naming the manifest
 */
CKPT_HIDDEN int sealed_manifest_check(const struct manifest_hdr *h, const char *name,
		const void *rec);

/*
 * sealed_desc -- a pull of sealed manifest m: the import (d, made by
 * remote_desc_of) creates or opens a sealed pool of m's key id without
 * the key
 */
CKPT_HIDDEN void sealed_desc(struct import_desc *d, const struct manifest *m);

/*
 * sealed_import_record -- write m's seal record into the page-sum slot of
 * the segment im reserved (made durable by import_commit)
 */
CKPT_HIDDEN int sealed_import_record(struct import *im, const struct manifest *m);

#endif
