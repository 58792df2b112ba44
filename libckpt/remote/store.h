/*
 * store.h -- the small interface every remote store implements, and the
 * wrapper the rest of remote/ calls.
 *
 * A store is a flat namespace of named immutable objects (Redis keys in one
 * database, RADOS objects in one pool and namespace). The remote layer
 * needs five things of it, each batched so a backend can pipeline
 * (hiredis) or issue them asynchronously (librados aio):
 *   put     write whole objects; a reader sees the old object or the whole
 *           new one, never a part (Redis SET, rados write_full);
 *   exists  which of n names exist;
 *   get     read n objects of known maximum size into caller buffers;
 *   del     remove n objects (a missing one is not an error);
 *   list    every name that starts with a prefix.
 * Locking is built on these alone (remote/lock.c), so both backends share it.
 *
 * Errors: a backend returns -1 with errno and the thread's message
 * (ckpt_err_set). Transient ones (the server is down, slow or restarting:
 * ECONNREFUSED, ECONNRESET, ETIMEDOUT, EIO, EAGAIN) are retried by the
 * wrapper with exponential backoff, reconnecting in between; the others
 * (EACCES: wrong credentials; ENOENT; EINVAL) are returned at once.
 */
#ifndef CKPT_REMOTE_STORE_H
#define CKPT_REMOTE_STORE_H 1

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define STORE_MISSING SIZE_MAX     /* get: the object does not exist */

struct store_impl;

/* store_list_fn -- one listed name; nonzero stops the listing */
typedef int (*store_list_fn)(void *arg, const char *name);

/* store_ops -- what a backend provides (store_redis.c, store_rados.c) */
struct store_ops {
	const char *scheme;                 /* "redis", "rados" */
	/* connect to the store rest (the URL after "scheme://") names */
	struct store_impl *(*connect)(const char *rest);
	void (*close)(struct store_impl *s);
	int (*put)(struct store_impl *s, unsigned n, const char *const *names,
			const void *const *bufs, const size_t *lens);
	int (*exists)(struct store_impl *s, unsigned n, const char *const *names,
			uint8_t *out);
	/* lens[i]: bytes read, or STORE_MISSING; an object over cap is EFBIG */
	int (*get)(struct store_impl *s, unsigned n, const char *const *names,
			void *const *bufs, size_t cap, size_t *lens);
	/* get_size -- the size of one object, STORE_MISSING if absent */
	int (*size)(struct store_impl *s, const char *name, size_t *len);
	int (*del)(struct store_impl *s, unsigned n, const char *const *names);
	int (*list)(struct store_impl *s, const char *prefix, store_list_fn fn, void *arg);
};

/* store -- an open store; the wrapper's retry state */
struct store {
	const struct store_ops *ops;
	struct store_impl *impl;
	char *url;                  /* for messages and reconnects */
	unsigned retries;           /* attempts after the first, for transient errors */
	unsigned backoff_ms;        /* first wait; doubles each retry */
	uint64_t bytes_put;         /* payload bytes written (statistics) */
	uint64_t objects_put;
};

/* store_url_ok -- 0 if url names a known scheme, else EINVAL with a message */
CKPT_HIDDEN int store_url_ok(const char *url);

/*
 * store_open -- connect to url ("redis://host:port/db", "rados://pool/ns"),
 * retrying transient failures; NULL with a message naming the store
 */
CKPT_HIDDEN struct store *store_open(const char *url);
CKPT_HIDDEN void store_close(struct store *st);

CKPT_HIDDEN int store_put(struct store *st, unsigned n, const char *const *names,
		const void *const *bufs, const size_t *lens);
CKPT_HIDDEN int store_exists(struct store *st, unsigned n, const char *const *names,
		uint8_t *out);
CKPT_HIDDEN int store_get(struct store *st, unsigned n, const char *const *names,
		void *const *bufs, size_t cap, size_t *lens);
/* store_get_alloc -- one object of at most max bytes, malloc'd; ENOENT if absent */
CKPT_HIDDEN int store_get_alloc(struct store *st, const char *name, size_t max,
		void **buf, size_t *len);
CKPT_HIDDEN int store_del(struct store *st, unsigned n, const char *const *names);
CKPT_HIDDEN int store_list(struct store *st, const char *prefix, store_list_fn fn,
		void *arg);

/* the backends */
extern const struct store_ops store_redis_ops;
extern const struct store_ops store_rados_ops;

#endif
