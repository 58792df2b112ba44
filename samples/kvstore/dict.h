/*
 * dict.h -- the key-value store's hash table, kept entirely in a libckpt
 * heap: bucket arrays and entries are ckpt_alloc'd blocks linked by raw
 * pointers, which stay valid after a restart because the pool maps every
 * heap at the same address. Incremental rehash (Redis style): while the
 * table grows, two bucket arrays coexist and every operation moves a few
 * buckets from the old one to the new one.
 *
 * The dict itself is a plain struct inside the store's root block; it owns
 * every entry and both bucket arrays.
 */
#ifndef KV_DICT_H
#define KV_DICT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <libckpt.h>

/*
 * kv_entry -- one key and its value. The header and the key are one heap
 * block; a value of KV_SPLIT_MIN bytes or more gets a block of its own, so
 * that it fills a size class as it would alone (a 1,000 B value: a 1,024 B
 * block, where header, key and value together would take a 1,280 B one),
 * and a smaller one follows the key in the entry's block:
 *
 *   split == 0:  data = klen key bytes, then vlen value bytes
 *   split == 1:  data = a pointer to the value's block, then klen key bytes
 *
 * A SET that fits where the value already is overwrites it in place, so
 * a split entry may hold a short value and an inline one a long value.
 * Layout 1 (KV_MAGIC_V1) had every value inline and the split bit always
 * 0 (keys are far below 2 GiB), so its entries are valid layout-2 entries.
 */
struct kv_entry {
	struct kv_entry *next;  /* bucket chain */
	uint64_t hash;
	uint32_t klen : 31;
	uint32_t split : 1;     /* 1: the value is in its own block */
	uint32_t vlen;
	char data[];            /* see above */
};

#define KV_SPLIT_MIN 128        /* values this long or longer get their own block */
#define KV_KLEN_MAX 0x7fffffffu

static inline const char *
kv_key(const struct kv_entry *e)
{
	return e->split ? e->data + sizeof(char *) : e->data;
}

static inline char *
kv_val(const struct kv_entry *e)
{
	if (e->split) {
		char *v;
		memcpy(&v, e->data, sizeof(v));
		return v;
	}
	return (char *)e->data + e->klen;
}

/* kv_table -- one bucket array (size is a power of two, or 0) */
struct kv_table {
	struct kv_entry **buckets;
	uint64_t size;
	uint64_t used;
};

/* kv_dict -- two tables; ht[1] is in use only while rehashing */
struct kv_dict {
	struct kv_table ht[2];
	int64_t rehashidx;      /* -1: not rehashing; else next ht[0] bucket to move */
	uint64_t seed;          /* hash seed, chosen when the store is created */
};

/* dict_init -- an empty dict with the given hash seed */
void dict_init(struct kv_dict *d, uint64_t seed);

/* dict_find -- the entry of key, or NULL */
struct kv_entry *dict_find(ckpt_pool *pool, struct kv_dict *d, const char *key, size_t klen);

/*
 * dict_set -- insert or replace key's value. 0 on success, -1 with errno
 * ENOMEM when the heap is full (the dict is unchanged then), E2BIG when a
 * key exceeds 2 GiB or a value 4 GiB.
 */
int dict_set(ckpt_pool *pool, struct kv_dict *d, const char *key, size_t klen,
		const char *val, size_t vlen);

/* dict_delete -- remove key; 1 if it was there, 0 if not */
int dict_delete(ckpt_pool *pool, struct kv_dict *d, const char *key, size_t klen);

/* dict_size -- number of keys */
static inline uint64_t dict_size(const struct kv_dict *d) { return d->ht[0].used + d->ht[1].used; }

/* dict_is_rehashing -- whether two tables are in use */
static inline int dict_is_rehashing(const struct kv_dict *d) { return d->rehashidx >= 0; }

/*
 * dict_rehash_ms -- move buckets to the new table for about ms milliseconds
 * (the server calls it when idle); returns 1 while rehashing remains
 */
int dict_rehash_ms(ckpt_pool *pool, struct kv_dict *d, int ms);

/*
 * dict_split_values -- give every inline value of KV_SPLIT_MIN bytes or
 * more its own block (the upgrade of a layout-1 dataset). Each entry moves
 * whole, so the dict is consistent after every step; on ENOMEM it stops
 * there. The number of values moved, or -1 (errno ENOMEM) if some remain.
 */
int64_t dict_split_values(ckpt_pool *pool, struct kv_dict *d);

/* dict_clear -- free every entry and both tables (FLUSHALL) */
void dict_clear(ckpt_pool *pool, struct kv_dict *d);

/*
 * dict_check -- walk every bucket and entry; the number of entries found,
 * or -1 if the structure is inconsistent (a counter, a hash or a bucket
 * index does not match). Used by the self-check after a restart.
 */
int64_t dict_check(const struct kv_dict *d);

#endif /* KV_DICT_H */
