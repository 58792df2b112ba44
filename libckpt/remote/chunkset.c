/*
 * chunkset.c -- the chunk hash set (chunkset.h). The hashes are XXH3-128
 * of the content, already uniform: the low word is the slot.
 */
#include <errno.h>
#include <stdlib.h>

#include "remote/chunkset.h"

/* find -- the slot of c, or the empty slot where it goes */
static uint64_t
find(const struct chunkset *s, const struct chunk_hash *c)
{
	uint64_t i = c->lo & (s->cap - 1);
	while (!chunk_is_zero(&s->slot[i]) && (s->slot[i].hi != c->hi || s->slot[i].lo != c->lo))
		i = (i + 1) & (s->cap - 1);
	return i;
}

/* grow -- double the table (from 1024 slots) */
static int
grow(struct chunkset *s)
{
	uint64_t cap = s->cap ? s->cap * 2 : 1024;
	struct chunk_hash *old = s->slot;
	uint64_t ocap = s->cap;
	s->slot = calloc(cap, sizeof(*s->slot));
	if (!s->slot) {
		s->slot = old;
		return ckpt_err_set(ENOMEM, "out of memory for a chunk set of %llu",
				(unsigned long long)cap);
	}
	s->cap = cap;
	for (uint64_t i = 0; i < ocap; i++)
		if (!chunk_is_zero(&old[i]))
			s->slot[find(s, &old[i])] = old[i];
	free(old);
	return 0;
}

int
chunkset_add(struct chunkset *s, const struct chunk_hash *c)
{
	if ((s->n + 1) * 2 > s->cap && grow(s) < 0)
		return -1;
	uint64_t i = find(s, c);
	if (!chunk_is_zero(&s->slot[i]))
		return 0;
	s->slot[i] = *c;
	s->n++;
	return 1;
}

int
chunkset_has(const struct chunkset *s, const struct chunk_hash *c)
{
	return s->cap && !chunk_is_zero(&s->slot[find(s, c)]);
}

void
chunkset_free(struct chunkset *s)
{
	free(s->slot);
	s->slot = NULL;
	s->cap = s->n = 0;
}
