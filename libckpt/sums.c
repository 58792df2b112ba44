/*
 * sums.c -- computing a checkpoint's checksum from its bytes (see sums.h).
 */
#include "sums.h"

void
sums_begin(struct sums *s, int paged, uint64_t *out)
{
	XXH3_64bits_reset(&s->st);
	s->paged = paged;
	s->out = out;
	s->npages = 0;
}

void
sums_update(struct sums *s, const void *data, size_t len)
{
	if (!s->paged)
		XXH3_64bits_update(&s->st, data, len);
	if (!s->paged && !s->out)
		return;
	const char *b = data;
	for (size_t off = 0; off < len; off += SUMS_PAGE) {
		size_t n = len - off < SUMS_PAGE ? len - off : SUMS_PAGE;
		uint64_t h = XXH3_64bits(b + off, n);
		if (s->paged)
			XXH3_64bits_update(&s->st, &h, sizeof(h));
		if (s->out)
			s->out[s->npages] = h;
		s->npages++;
	}
}

uint64_t
sums_end(struct sums *s)
{
	return XXH3_64bits_digest(&s->st);
}
