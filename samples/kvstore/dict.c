/*
 * dict.c -- the key-value store's hash table in a libckpt heap (see
 * dict.h): chained buckets, XXH3 with a per-store seed, incremental rehash
 * when the table grows (load factor 1) or shrinks (below 1/8).
 *
 * Every structure change is complete before an operation returns, so the
 * dict is consistent whenever the server is between commands: that is when
 * checkpoints (and the fork of BGSAVE) happen.
 *
 * Entries: a header and the key in one block, the value after the key or,
 * from KV_SPLIT_MIN bytes on, in a block of its own (dict.h). entry_new
 * decides where a new value goes; dict_set overwrites a value in place
 * whenever it fits where the old one is, and otherwise builds a new entry
 * (or, for a split one that stays split, a new value block).
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "dict.h"

#define DICT_MIN_SIZE 16
#define REHASH_STEP 1           /* buckets moved per operation */

/* hash_key -- the seeded hash of a key */
static uint64_t
hash_key(const struct kv_dict *d, const char *key, size_t klen)
{
	return XXH3_64bits_withSeed(key, klen, d->seed);
}

/*
 * entry_new -- a new entry for key and val (next not set): the value
 * inline below KV_SPLIT_MIN bytes, else in its own block; NULL on ENOMEM
 */
static struct kv_entry *
entry_new(ckpt_pool *pool, uint64_t h, const char *key, size_t klen,
		const char *val, size_t vlen)
{
	int split = vlen >= KV_SPLIT_MIN;
	size_t need = sizeof(struct kv_entry) + klen + (split ? sizeof(char *) : vlen);
	struct kv_entry *e = ckpt_alloc(pool, need);
	if (!e)
		return NULL;
	e->hash = h;
	e->klen = (uint32_t)klen;
	e->vlen = (uint32_t)vlen;
	e->split = (uint32_t)split;
	if (split) {
		char *v = ckpt_alloc(pool, vlen);
		if (!v) {
			ckpt_free(pool, e);
			return NULL;
		}
		memcpy(v, val, vlen);
		memcpy(e->data, &v, sizeof(v));
	}
	memcpy((char *)kv_key(e), key, klen);
	if (!split)
		memcpy(kv_val(e), val, vlen);
	return e;
}

/* entry_free -- free an entry and its value's block */
static void
entry_free(ckpt_pool *pool, struct kv_entry *e)
{
	if (e->split)
		ckpt_free(pool, kv_val(e));
	ckpt_free(pool, e);
}

/*
 * entry_replace -- give the entry at *link the value val: in place if it
 * fits where the old value is, else in a new value block (a split entry
 * keeping a long value) or a new entry. 0, or -1 on ENOMEM (unchanged).
 */
static int
entry_replace(ckpt_pool *pool, struct kv_entry **link, const char *val, size_t vlen)
{
	struct kv_entry *old = *link;
	if (old->split && ckpt_usable_size(pool, kv_val(old)) >= vlen) {
		memcpy(kv_val(old), val, vlen);
		old->vlen = (uint32_t)vlen;
		return 0;
	}
	if (old->split && vlen >= KV_SPLIT_MIN) {       /* stays split: a new value block */
		char *v = ckpt_alloc(pool, vlen), *ov = kv_val(old);
		if (!v)
			return -1;
		memcpy(v, val, vlen);
		memcpy(old->data, &v, sizeof(v));
		old->vlen = (uint32_t)vlen;
		ckpt_free(pool, ov);
		return 0;
	}
	if (!old->split && ckpt_usable_size(pool, old) >= sizeof(*old) + old->klen + vlen) {
		memcpy(kv_val(old), val, vlen);
		old->vlen = (uint32_t)vlen;
		return 0;
	}
	struct kv_entry *e = entry_new(pool, old->hash, kv_key(old), old->klen, val, vlen);
	if (!e)
		return -1;
	e->next = old->next;
	*link = e;
	entry_free(pool, old);
	return 0;
}

void
dict_init(struct kv_dict *d, uint64_t seed)
{
	memset(d, 0, sizeof(*d));
	d->rehashidx = -1;
	d->seed = seed;
}

/* table_free -- free one bucket array (not its entries) */
static void
table_free(ckpt_pool *pool, struct kv_table *t)
{
	ckpt_free(pool, t->buckets);
	memset(t, 0, sizeof(*t));
}

/*
 * rehash_step -- move up to n non-empty buckets of ht[0] to ht[1], visiting
 * at most 10 * n empty ones; finish the rehash when ht[0] is empty
 */
static void
rehash_step(ckpt_pool *pool, struct kv_dict *d, int n)
{
	int empty_visits = n * 10;
	struct kv_table *from = &d->ht[0], *to = &d->ht[1];
	while (n-- && from->used) {
		while (from->buckets[d->rehashidx] == NULL) {
			d->rehashidx++;
			if (--empty_visits == 0)
				return;
		}
		struct kv_entry *e = from->buckets[d->rehashidx];
		while (e) {
			struct kv_entry *next = e->next;
			uint64_t i = e->hash & (to->size - 1);
			e->next = to->buckets[i];
			to->buckets[i] = e;
			from->used--;
			to->used++;
			e = next;
		}
		from->buckets[d->rehashidx] = NULL;
		d->rehashidx++;
	}
	if (from->used == 0) {
		table_free(pool, from);
		*from = *to;
		memset(to, 0, sizeof(*to));
		d->rehashidx = -1;
	}
}

/*
 * resize -- start rehashing into a table of size buckets. On ENOMEM the
 * dict stays as it is (only fuller): growing is an optimisation.
 */
static void
resize(ckpt_pool *pool, struct kv_dict *d, uint64_t size)
{
	if (dict_is_rehashing(d) || size == d->ht[0].size)
		return;
	struct kv_entry **b = ckpt_calloc(pool, size, sizeof(*b));
	if (!b)
		return;
	if (d->ht[0].size == 0) {       /* first table: nothing to move */
		d->ht[0].buckets = b;
		d->ht[0].size = size;
		return;
	}
	d->ht[1].buckets = b;
	d->ht[1].size = size;
	d->ht[1].used = 0;
	d->rehashidx = 0;
}

/* maybe_resize -- grow at load factor 1, shrink below 1/8 */
static void
maybe_resize(ckpt_pool *pool, struct kv_dict *d)
{
	if (dict_is_rehashing(d))
		return;
	uint64_t size = d->ht[0].size, used = d->ht[0].used;
	if (size == 0)
		resize(pool, d, DICT_MIN_SIZE);
	else if (used >= size)
		resize(pool, d, size * 2);
	else if (size > DICT_MIN_SIZE && used * 8 < size) {
		uint64_t s = DICT_MIN_SIZE;
		while (s < used * 2)
			s *= 2;
		resize(pool, d, s);
	}
}

/*
 * lookup -- the link that points at key's entry (or NULL); *tablep gets the
 * table holding it
 */
static struct kv_entry **
lookup(struct kv_dict *d, const char *key, size_t klen, uint64_t h, struct kv_table **tablep)
{
	for (int t = 0; t < 2; t++) {
		struct kv_table *tab = &d->ht[t];
		if (tab->size == 0)
			continue;
		struct kv_entry **link = &tab->buckets[h & (tab->size - 1)];
		for (; *link; link = &(*link)->next) {
			struct kv_entry *e = *link;
			if (e->hash == h && e->klen == klen && memcmp(kv_key(e), key, klen) == 0) {
				*tablep = tab;
				return link;
			}
		}
		if (!dict_is_rehashing(d))
			break;
	}
	return NULL;
}

struct kv_entry *
dict_find(ckpt_pool *pool, struct kv_dict *d, const char *key, size_t klen)
{
	if (dict_is_rehashing(d))
		rehash_step(pool, d, REHASH_STEP);
	struct kv_table *t;
	struct kv_entry **link = lookup(d, key, klen, hash_key(d, key, klen), &t);
	return link ? *link : NULL;
}

int
dict_set(ckpt_pool *pool, struct kv_dict *d, const char *key, size_t klen,
		const char *val, size_t vlen)
{
	if (klen > KV_KLEN_MAX || vlen > UINT32_MAX) {
		errno = E2BIG;
		return -1;
	}
	if (dict_is_rehashing(d))
		rehash_step(pool, d, REHASH_STEP);
	uint64_t h = hash_key(d, key, klen);
	struct kv_table *t;
	struct kv_entry **link = lookup(d, key, klen, h, &t);
	if (link)
		return entry_replace(pool, link, val, vlen);
	maybe_resize(pool, d);
	if (d->ht[0].size == 0) {
		errno = ENOMEM;
		return -1;
	}
	struct kv_entry *e = entry_new(pool, h, key, klen, val, vlen);
	if (!e)
		return -1;
	t = dict_is_rehashing(d) ? &d->ht[1] : &d->ht[0];
	uint64_t i = h & (t->size - 1);
	e->next = t->buckets[i];
	t->buckets[i] = e;
	t->used++;
	return 0;
}

int
dict_delete(ckpt_pool *pool, struct kv_dict *d, const char *key, size_t klen)
{
	if (dict_is_rehashing(d))
		rehash_step(pool, d, REHASH_STEP);
	struct kv_table *t;
	struct kv_entry **link = lookup(d, key, klen, hash_key(d, key, klen), &t);
	if (!link)
		return 0;
	struct kv_entry *e = *link;
	*link = e->next;
	t->used--;
	entry_free(pool, e);
	maybe_resize(pool, d);
	return 1;
}

/* now_ms -- monotonic milliseconds */
static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
dict_rehash_ms(ckpt_pool *pool, struct kv_dict *d, int ms)
{
	int64_t end = now_ms() + ms;
	while (dict_is_rehashing(d)) {
		rehash_step(pool, d, 100);
		if (now_ms() >= end)
			break;
	}
	return dict_is_rehashing(d);
}

int64_t
dict_split_values(ckpt_pool *pool, struct kv_dict *d)
{
	int64_t moved = 0;
	for (int t = 0; t < 2; t++) {
		struct kv_table *tab = &d->ht[t];
		for (uint64_t i = 0; i < tab->size; i++) {
			for (struct kv_entry **link = &tab->buckets[i]; *link; link = &(*link)->next) {
				struct kv_entry *e = *link;
				if (e->split || e->vlen < KV_SPLIT_MIN)
					continue;
				struct kv_entry *ne = entry_new(pool, e->hash, kv_key(e), e->klen,
					kv_val(e), e->vlen);
				if (!ne) {
					errno = ENOMEM;
					return -1;
				}
				ne->next = e->next;
				*link = ne;
				ckpt_free(pool, e);
				moved++;
			}
		}
	}
	return moved;
}

void
dict_clear(ckpt_pool *pool, struct kv_dict *d)
{
	for (int t = 0; t < 2; t++) {
		struct kv_table *tab = &d->ht[t];
		for (uint64_t i = 0; i < tab->size && tab->used; i++) {
			struct kv_entry *e = tab->buckets[i];
			while (e) {
				struct kv_entry *next = e->next;
				entry_free(pool, e);
				tab->used--;
				e = next;
			}
		}
		table_free(pool, tab);
	}
	dict_init(d, d->seed);
}

int64_t
dict_check(const struct kv_dict *d)
{
	int64_t total = 0;
	for (int t = 0; t < 2; t++) {
		const struct kv_table *tab = &d->ht[t];
		if (tab->size & (tab->size - 1))
			return -1;
		if ((tab->size == 0) != (tab->buckets == NULL))
			return -1;
		uint64_t n = 0;
		for (uint64_t i = 0; i < tab->size; i++) {
			if (t == 0 && dict_is_rehashing(d) && (int64_t)i < d->rehashidx &&
			    tab->buckets[i])
				return -1;              /* already moved */
			for (const struct kv_entry *e = tab->buckets[i]; e; e = e->next) {
				if ((e->hash & (tab->size - 1)) != i || (e->split && !kv_val(e)) ||
				    e->hash != XXH3_64bits_withSeed(kv_key(e), e->klen, d->seed))
					return -1;
				if (++n > tab->used)
					return -1;      /* longer than counted: a cycle? */
			}
		}
		if (n != tab->used)
			return -1;
		total += (int64_t)n;
	}
	return total;
}
