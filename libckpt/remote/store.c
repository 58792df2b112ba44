/*
 * store.c -- the store wrapper: picks the backend from the URL's scheme and
 * retries what a busy, slow or restarting server fails transiently.
 *
 * Every call goes through with_retry(): a transient error (store.h) drops
 * the connection, waits backoff_ms (doubling each time, up to retries
 * times) and reconnects before trying again. The operations are idempotent
 * (whole-object puts of content-addressed or write-once names, deletes,
 * reads), so repeating one that may have half-happened is safe. Anything
 * else (wrong credentials, a missing pool, a malformed URL) fails at once
 * with the backend's message prefixed by the store's URL.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "remote/store.h"

#define STORE_DEFAULT_BACKOFF_MS 100

/* backend_of -- the ops for url's scheme and where the rest begins; NULL if unknown */
static const struct store_ops *
backend_of(const char *url, const char **rest)
{
	static const struct store_ops *const all[] = { &store_redis_ops, &store_rados_ops };
	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		size_t n = strlen(all[i]->scheme);
		if (strncmp(url, all[i]->scheme, n) == 0 && strncmp(url + n, "://", 3) == 0) {
			*rest = url + n + 3;
			return all[i];
		}
	}
	return NULL;
}

int
store_url_ok(const char *url)
{
	const char *rest;
	if (!url || !backend_of(url, &rest))
		return ckpt_err_set(EINVAL, "remote store URL '%s': expected "
				"redis://host:port/db or rados://pool/namespace",
				url ? url : "(null)");
	return 0;
}

/* transient -- 1 if errno says trying again later may succeed */
static int
transient(int e)
{
	return e == ECONNREFUSED || e == ECONNRESET || e == ETIMEDOUT || e == EIO ||
		e == EAGAIN || e == EPIPE || e == ENOTCONN || e == ECONNABORTED ||
		e == EHOSTUNREACH || e == ENETUNREACH;
}

/* sleep_ms -- wait ms milliseconds */
static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* reconnect -- connect the backend if it is not; -1 with its message */
static int
reconnect(struct store *st)
{
	if (st->impl)
		return 0;
	const char *rest = NULL;
	backend_of(st->url, &rest);
	st->impl = st->ops->connect(rest);
	return st->impl ? 0 : -1;
}

/* drop -- forget a connection that failed */
static void
drop(struct store *st)
{
	if (st->impl) {
		st->ops->close(st->impl);
		st->impl = NULL;
	}
}

struct store *
store_open(const char *url)
{
	const char *rest;
	const struct store_ops *ops = url ? backend_of(url, &rest) : NULL;
	if (!ops) {
		store_url_ok(url);
		return NULL;
	}
	struct store *st = calloc(1, sizeof(*st));
	if (!st || !(st->url = strdup(url))) {
		free(st);
		ckpt_err_set(ENOMEM, "out of memory");
		return NULL;
	}
	st->ops = ops;
	st->retries = config_remote_retries();
	st->backoff_ms = STORE_DEFAULT_BACKOFF_MS;
	unsigned wait = st->backoff_ms;
	for (unsigned a = 0;; a++) {
		if (reconnect(st) == 0)
			return st;
		if (!transient(errno) || a >= st->retries)
			break;
		sleep_ms(wait);
		wait *= 2;
	}
	int e = errno;
	if (st->retries && transient(e))
		ckpt_err_prefix("remote store %s (after %u retries): ", url, st->retries);
	else
		ckpt_err_prefix("remote store %s: ", url);
	free(st->url);
	free(st);
	errno = e;
	return NULL;
}

void
store_close(struct store *st)
{
	if (!st)
		return;
	drop(st);
	free(st->url);
	free(st);
}

/* op -- one store operation, as a closure for with_retry */
enum op_kind { OP_PUT, OP_EXISTS, OP_GET, OP_SIZE, OP_DEL, OP_LIST };
struct op {
	enum op_kind kind;
	unsigned n;
	const char *const *names;
	const void *const *cbufs;
	void *const *bufs;
	const size_t *clens;
	size_t *lens;
	size_t cap;
	uint8_t *out;
	const char *prefix;
	store_list_fn fn;
	void *arg;
};

/* run_op -- call the backend once */
static int
run_op(struct store *st, const struct op *o)
{
	struct store_impl *s = st->impl;
	switch (o->kind) {
	case OP_PUT: return st->ops->put(s, o->n, o->names, o->cbufs, o->clens);
	case OP_EXISTS: return st->ops->exists(s, o->n, o->names, o->out);
	case OP_GET: return st->ops->get(s, o->n, o->names, o->bufs, o->cap, o->lens);
	case OP_SIZE: return st->ops->size(s, o->names[0], o->lens);
	case OP_DEL: return st->ops->del(s, o->n, o->names);
	case OP_LIST: return st->ops->list(s, o->prefix, o->fn, o->arg);
	}
	return ckpt_err_set(EINVAL, "unknown store operation");
}

/* with_retry -- run o, retrying transient failures with backoff and a reconnect */
static int
with_retry(struct store *st, const struct op *o)
{
	unsigned wait = st->backoff_ms;
	for (unsigned a = 0;; a++) {
		if (reconnect(st) == 0 && run_op(st, o) == 0)
			return 0;
		int e = errno;
		if (!transient(e) || a >= st->retries) {
			if (a)
				ckpt_err_prefix("remote store %s (after %u retries): ", st->url, a);
			else
				ckpt_err_prefix("remote store %s: ", st->url);
			errno = e;
			return -1;
		}
		drop(st);
		sleep_ms(wait);
		wait *= 2;
	}
}

int
store_put(struct store *st, unsigned n, const char *const *names, const void *const *bufs,
		const size_t *lens)
{
	struct op o = { .kind = OP_PUT, .n = n, .names = names, .cbufs = bufs, .clens = lens };
	if (n == 0)
		return 0;
	if (with_retry(st, &o) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++)
		st->bytes_put += lens[i];
	st->objects_put += n;
	return 0;
}

int
store_exists(struct store *st, unsigned n, const char *const *names, uint8_t *out)
{
	struct op o = { .kind = OP_EXISTS, .n = n, .names = names, .out = out };
	return n == 0 ? 0 : with_retry(st, &o);
}

int
store_get(struct store *st, unsigned n, const char *const *names, void *const *bufs,
		size_t cap, size_t *lens)
{
	struct op o = { .kind = OP_GET, .n = n, .names = names, .bufs = bufs, .cap = cap,
		.lens = lens };
	return n == 0 ? 0 : with_retry(st, &o);
}

int
store_get_alloc(struct store *st, const char *name, size_t max, void **buf, size_t *len)
{
	size_t sz;
	struct op o = { .kind = OP_SIZE, .n = 1, .names = &name, .lens = &sz };
	if (with_retry(st, &o) < 0)
		return -1;
	if (sz == STORE_MISSING)
		return ckpt_err_set(ENOENT, "%s: no such object in %s", name, st->url);
	if (sz > max)
		return ckpt_err_set(EFBIG, "%s: %zu bytes, more than the %zu expected",
				name, sz, max);
	void *b = malloc(sz ? sz : 1);
	if (!b)
		return ckpt_err_set(ENOMEM, "out of memory for %s (%zu bytes)", name, sz);
	size_t got;
	if (store_get(st, 1, &name, &b, sz, &got) < 0) {
		free(b);
		return -1;
	}
	if (got == STORE_MISSING) {
		free(b);
		return ckpt_err_set(ENOENT, "%s: no such object in %s", name, st->url);
	}
	*buf = b;
	*len = got;
	return 0;
}

int
store_del(struct store *st, unsigned n, const char *const *names)
{
	struct op o = { .kind = OP_DEL, .n = n, .names = names };
	return n == 0 ? 0 : with_retry(st, &o);
}

int
store_list(struct store *st, const char *prefix, store_list_fn fn, void *arg)
{
	struct op o = { .kind = OP_LIST, .prefix = prefix, .fn = fn, .arg = arg };
	return with_retry(st, &o);
}
