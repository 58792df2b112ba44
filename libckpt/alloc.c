/*
 * alloc.c -- the public allocation calls: argument checks and the pool's
 * state, then straight into the heap (heap/), which does the work.
 */
#include <errno.h>

#include "pool.h"

/* heap_of -- the pool's heap, or NULL with a message */
static inline struct heap *
heap_of(ckpt_pool *p)
{
	if (CKPT_UNLIKELY(!p || !p->heap)) {
		ckpt_err_set(EINVAL, "pool is NULL or closed");
		return NULL;
	}
	return p->heap;
}

CKPT_EXPORT void *
ckpt_alloc(ckpt_pool *p, size_t size)
{
	struct heap *h = heap_of(p);
	return h ? heap_alloc(h, size) : NULL;
}

CKPT_EXPORT void *
ckpt_calloc(ckpt_pool *p, size_t nmemb, size_t size)
{
	struct heap *h = heap_of(p);
	return h ? heap_calloc(h, nmemb, size) : NULL;
}

CKPT_EXPORT void *
ckpt_realloc(ckpt_pool *p, void *ptr, size_t size)
{
	struct heap *h = heap_of(p);
	return h ? heap_realloc(h, ptr, size) : NULL;
}

CKPT_EXPORT void *
ckpt_aligned_alloc(ckpt_pool *p, size_t alignment, size_t size)
{
	struct heap *h = heap_of(p);
	return h ? heap_aligned_alloc(h, alignment, size) : NULL;
}

CKPT_EXPORT void
ckpt_free(ckpt_pool *p, void *ptr)
{
	struct heap *h = heap_of(p);
	if (h)
		heap_free(h, ptr);
}

CKPT_EXPORT size_t
ckpt_usable_size(ckpt_pool *p, const void *ptr)
{
	struct heap *h = heap_of(p);
	return h ? heap_usable_size(h, ptr) : 0;
}

CKPT_EXPORT void *
ckpt_root(ckpt_pool *p)
{
	struct heap *h = heap_of(p);
	return h ? heap_root(h) : NULL;
}

CKPT_EXPORT int
ckpt_set_root(ckpt_pool *p, void *ptr)
{
	struct heap *h = heap_of(p);
	return h ? heap_set_root(h, ptr) : -1;
}
