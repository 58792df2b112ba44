/*
 * kvstore_v1_pool.c -- writes a kvstore pool as a kvstore of dataset
 * layout 1 did, for tests/test_kvstore_layout.sh: every value right after
 * its key in the entry's block, whatever its length (the layout before
 * long values got blocks of their own). The entries are built exactly as
 * layout 1's dict_set built them (one ckpt_alloc of header + key + value,
 * the seeded XXH3 hash, chained buckets of a power-of-two table), the root
 * carries the magic given on the command line ("kvstore-1", or another
 * one to test refusal), and the pool gets one checkpoint.
 *
 * Keys key:0 .. key:N-1; value of key:I: I % 4 == 0: "value:I:" padded
 * with 'x' to 1000 bytes; I % 4 == 1: likewise to 200 bytes; else
 * "value:I". The test computes the same values with awk.
 *
 *   kvstore_v1_pool POOL N MAGIC
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../samples/kvstore/store.h"

/* value_of -- the value of key:i into buf (at least 1000 bytes); its length */
static size_t
value_of(uint64_t i, char *buf)
{
	size_t n = (size_t)sprintf(buf, "value:%llu", (unsigned long long)i);
	size_t want = i % 4 == 0 ? 1000 : i % 4 == 1 ? 200 : 0;
	if (want) {
		buf[n++] = ':';
		memset(buf + n, 'x', want - n);
		n = want;
	}
	return n;
}

/* die -- report a libckpt failure and exit */
static void
die(const char *what)
{
	fprintf(stderr, "kvstore_v1_pool: %s: %s\n", what, ckpt_errormsg());
	exit(1);
}

int
main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: kvstore_v1_pool POOL N MAGIC\n");
		return 2;
	}
	uint64_t n = strtoull(argv[2], NULL, 10);
	struct ckpt_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.heap_size = 256u << 20;     /* as kvstore's pool_config */
	cfg.max_segments = 64;
	cfg.keep_checkpoints = 2;
	ckpt_pool *pool = ckpt_create(argv[1], &cfg);
	if (!pool)
		die("ckpt_create");
	struct kv_root *r = ckpt_calloc(pool, 1, sizeof(*r));
	if (!r)
		die("root");
	dict_init(&r->dict, 0x5eed5eed5eedULL);
	r->created = 1;
	snprintf(r->magic, sizeof(r->magic), "%s", argv[3]);
	uint64_t size = 16;
	while (size < n)
		size *= 2;
	struct kv_table *t = &r->dict.ht[0];
	t->buckets = ckpt_calloc(pool, size, sizeof(*t->buckets));
	if (!t->buckets)
		die("buckets");
	t->size = size;
	char key[32], val[1024];
	for (uint64_t i = 0; i < n; i++) {
		size_t klen = (size_t)sprintf(key, "key:%llu", (unsigned long long)i);
		size_t vlen = value_of(i, val);
		struct kv_entry *e = ckpt_alloc(pool, sizeof(*e) + klen + vlen);
		if (!e)
			die("entry");
		e->hash = XXH3_64bits_withSeed(key, klen, r->dict.seed);
		e->klen = (uint32_t)klen;       /* split stays 0: layout 1 had no such bit */
		e->split = 0;
		e->vlen = (uint32_t)vlen;
		memcpy(e->data, key, klen);
		memcpy(e->data + klen, val, vlen);
		uint64_t b = e->hash & (size - 1);
		e->next = t->buckets[b];
		t->buckets[b] = e;
		t->used++;
	}
	ckpt_id id;
	if (ckpt_set_root(pool, r) < 0)
		die("ckpt_set_root");
	if (ckpt_checkpoint(pool, "layout 1", &id) < 0)
		die("ckpt_checkpoint");
	if (ckpt_close(pool) < 0)
		die("ckpt_close");
	return 0;
}
