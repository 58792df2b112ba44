/*
 * store_rados.c -- the scale-out backend: Ceph RADOS through librados, URL
 * rados://pool[/namespace].
 *
 * The client is configured as every Ceph client is: the cluster's
 * ceph.conf (CEPH_CONF, else the default search path) names the monitors
 * and the keyring; CEPH_ARGS adds options; the identity is client.admin.
 * Operation timeouts are set so a cluster that is down or unreachable
 * fails (ETIMEDOUT, retried by the wrapper) instead of hanging.
 *
 * Batches are asynchronous: every operation of a batch is issued with its
 * own completion (rados_aio_*) through a sliding window of RADOS_WINDOW
 * operations in flight ("The window" below), and the batch returns when
 * all are done. write_full replaces an object atomically, as store.h asks
 * of put.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rados/librados.h>

#include "remote/store.h"

struct store_impl {
	rados_t cluster;
	rados_ioctx_t io;
	int connected;
};

/* rerr -- errno and message from a negative librados return */
static int
rerr(int r, const char *what, const char *name)
{
	int e = -r;
	if (e == EPERM)
		e = EACCES;
	return ckpt_err_set(e, "rados %s%s%s: %s%s", what, name ? " " : "", name ? name : "",
			strerror(-r), e == EACCES ? " (check the keyring and the client's "
			"capabilities in ceph.conf)" : "");
}

static void
rados_close(struct store_impl *s)
{
	if (s->io)
		rados_ioctx_destroy(s->io);
	if (s->cluster)
		rados_shutdown(s->cluster);
	free(s);
}

static struct store_impl *
rados_connect_url(const char *rest)
{
	char pool[256], ns[256] = "";
	size_t pl = strcspn(rest, "/");
	if (pl == 0 || pl >= sizeof(pool) || strlen(rest) - pl >= sizeof(ns)) {
		ckpt_err_set(EINVAL, "malformed rados URL 'rados://%s': expected "
				"rados://pool[/namespace]", rest);
		return NULL;
	}
	memcpy(pool, rest, pl);
	pool[pl] = 0;
	if (rest[pl] == '/')
		snprintf(ns, sizeof(ns), "%s", rest + pl + 1);
	struct store_impl *s = calloc(1, sizeof(*s));
	if (!s) {
		ckpt_err_set(ENOMEM, "out of memory");
		return NULL;
	}
	int r = rados_create(&s->cluster, NULL);
	if (r < 0) {
		rerr(r, "create", NULL);
		free(s);
		return NULL;
	}
	r = rados_conf_read_file(s->cluster, NULL);
	if (r < 0) {
		ckpt_err_set(-r == ENOENT ? EINVAL : -r, "rados: cannot read ceph.conf (set "
				"CEPH_CONF or install /etc/ceph/ceph.conf): %s", strerror(-r));
		goto fail;
	}
	/* bounded waits, unless ceph.conf or CEPH_ARGS (parsed after) say otherwise */
	rados_conf_set(s->cluster, "client_mount_timeout", "10");
	rados_conf_set(s->cluster, "rados_mon_op_timeout", "10");
	rados_conf_set(s->cluster, "rados_osd_op_timeout", "30");
	rados_conf_parse_env(s->cluster, NULL);
	r = rados_connect(s->cluster);
	if (r < 0) {
		rerr(r, "connect", NULL);
		goto fail;
	}
	r = rados_ioctx_create(s->cluster, pool, &s->io);
	if (r < 0) {
		if (r == -ENOENT)
			ckpt_err_set(ENOENT, "rados: no pool '%s' in the cluster", pool);
		else
			rerr(r, "open pool", pool);
		goto fail;
	}
	rados_ioctx_set_namespace(s->io, ns);
	return s;
fail:
	rados_close(s);
	return NULL;
}

/*
 * The window. Every batched operation goes through one window of
 * RADOS_WINDOW completions on the connection: an operation is issued as
 * soon as a slot is free, and the oldest is waited for only when none is,
 * so the OSD always has up to RADOS_WINDOW operations of ours queued (as
 * `rados bench -t 256` keeps its 256), not a burst that drains to zero
 * before the next one starts. Invariant: slots [head, head + busy) hold
 * issued, unreaped completions, in issue order, with idx their operation's
 * index in the batch.
 */
#define RADOS_WINDOW 256u

/* rwin -- the completions in flight of one batch */
struct rwin {
	rados_completion_t c[RADOS_WINDOW];
	unsigned idx[RADOS_WINDOW];
	unsigned head, busy;
};

/* win_reap -- wait for the oldest operation in flight; its return value into rv */
static void
win_reap(struct rwin *w, int *rv)
{
	unsigned k = w->head % RADOS_WINDOW;
	rados_aio_wait_for_complete(w->c[k]);
	rv[w->idx[k]] = rados_aio_get_return_value(w->c[k]);
	rados_aio_release(w->c[k]);
	w->head++;
	w->busy--;
}

/*
 * win_slot -- a free completion for operation i (reaping the oldest when
 * the window is full); NULL if none can be made
 */
static rados_completion_t *
win_slot(struct rwin *w, unsigned i, int *rv)
{
	if (w->busy == RADOS_WINDOW)
		win_reap(w, rv);
	unsigned k = (w->head + w->busy) % RADOS_WINDOW;
	if (rados_aio_create_completion(NULL, NULL, NULL, &w->c[k]) < 0)
		return NULL;
	w->idx[k] = i;
	return &w->c[k];
}

/* win_issued -- the operation given win_slot's completion was issued */
static void
win_issued(struct rwin *w)
{
	w->busy++;
}

/* win_drain -- wait for every operation still in flight */
static void
win_drain(struct rwin *w, int *rv)
{
	while (w->busy)
		win_reap(w, rv);
}

enum { OP_STAT, OP_READ, OP_REMOVE, OP_WRITE };

/*
 * each -- op for every name through the window; rv gets each return value.
 * OP_READ reads into bufs (cap bytes each), OP_WRITE writes wbufs (lens),
 * OP_STAT stores sizes. -1 only if an operation could not be issued.
 */
static int
each(struct store_impl *s, int op, unsigned n, const char *const *names, void *const *bufs,
		size_t cap, const void *const *wbufs, const size_t *lens, int *rv,
		uint64_t *sizes)
{
	struct rwin *w = malloc(sizeof(*w));
	if (!w)
		return ckpt_err_set(ENOMEM, "out of memory");
	w->head = w->busy = 0;
	int err = 0;
	time_t mt;
	for (unsigned i = 0; i < n && !err; i++) {
		rados_completion_t *c = win_slot(w, i, rv);
		if (!c) {
			err = -ENOMEM;
			break;
		}
		const char *nm = names[i];
		int r = op == OP_STAT ? rados_aio_stat(s->io, nm, *c, &sizes[i], &mt) :
			op == OP_READ ? rados_aio_read(s->io, nm, *c, bufs[i], cap, 0) :
			op == OP_WRITE ? rados_aio_write_full(s->io, nm, *c, wbufs[i], lens[i]) :
			rados_aio_remove(s->io, nm, *c);
		if (r < 0) {
			rados_aio_release(*c);
			err = r;
			break;
		}
		win_issued(w);
	}
	win_drain(w, rv);
	free(w);
	if (err)
		return rerr(err, "aio", NULL);
	return 0;
}

static int
rados_put(struct store_impl *s, unsigned n, const char *const *names, const void *const *bufs,
		const size_t *lens)
{
	int *rv = calloc(n ? n : 1, sizeof(*rv));
	int ret = -1;
	if (!rv)
		return ckpt_err_set(ENOMEM, "out of memory");
	if (each(s, OP_WRITE, n, names, NULL, 0, bufs, lens, rv, NULL) < 0)
		goto out;
	for (unsigned i = 0; i < n; i++)
		if (rv[i] < 0) {
			rerr(rv[i], "write", names[i]);
			goto out;
		}
	ret = 0;
out:
	free(rv);
	return ret;
}

static int
rados_exists(struct store_impl *s, unsigned n, const char *const *names, uint8_t *out)
{
	int *rv = calloc(n, sizeof(*rv));
	uint64_t *sz = calloc(n, sizeof(*sz));
	int ret = -1;
	if (!rv || !sz) {
		ckpt_err_set(ENOMEM, "out of memory");
		goto out;
	}
	if (each(s, OP_STAT, n, names, NULL, 0, NULL, NULL, rv, sz) < 0)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		if (rv[i] < 0 && rv[i] != -ENOENT) {
			rerr(rv[i], "stat", names[i]);
			goto out;
		}
		out[i] = rv[i] == 0;
	}
	ret = 0;
out:
	free(rv);
	free(sz);
	return ret;
}

static int
rados_get(struct store_impl *s, unsigned n, const char *const *names, void *const *bufs,
		size_t cap, size_t *lens)
{
	int *rv = calloc(n, sizeof(*rv));
	int ret = -1;
	if (!rv)
		return ckpt_err_set(ENOMEM, "out of memory");
	if (each(s, OP_READ, n, names, bufs, cap, NULL, NULL, rv, NULL) < 0)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		if (rv[i] == -ENOENT) {
			lens[i] = STORE_MISSING;
		} else if (rv[i] < 0) {
			rerr(rv[i], "read", names[i]);
			goto out;
		} else {
			lens[i] = (size_t)rv[i];
		}
	}
	ret = 0;
out:
	free(rv);
	return ret;
}

static int
rados_size(struct store_impl *s, const char *name, size_t *len)
{
	uint64_t sz;
	time_t mt;
	int r = rados_stat(s->io, name, &sz, &mt);
	if (r == -ENOENT) {
		*len = STORE_MISSING;
		return 0;
	}
	if (r < 0)
		return rerr(r, "stat", name);
	*len = (size_t)sz;
	return 0;
}

static int
rados_del(struct store_impl *s, unsigned n, const char *const *names)
{
	int *rv = calloc(n, sizeof(*rv));
	int ret = -1;
	if (!rv)
		return ckpt_err_set(ENOMEM, "out of memory");
	if (each(s, OP_REMOVE, n, names, NULL, 0, NULL, NULL, rv, NULL) < 0)
		goto out;
	for (unsigned i = 0; i < n; i++)
		if (rv[i] < 0 && rv[i] != -ENOENT) {
			rerr(rv[i], "remove", names[i]);
			goto out;
		}
	ret = 0;
out:
	free(rv);
	return ret;
}

static int
rados_list(struct store_impl *s, const char *prefix, store_list_fn fn, void *arg)
{
	rados_list_ctx_t ctx;
	int r = rados_nobjects_list_open(s->io, &ctx);
	if (r < 0)
		return rerr(r, "list", NULL);
	size_t pl = strlen(prefix);
	const char *entry;
	while ((r = rados_nobjects_list_next(ctx, &entry, NULL, NULL)) == 0)
		if (strncmp(entry, prefix, pl) == 0 && fn(arg, entry))
			break;
	rados_nobjects_list_close(ctx);
	if (r < 0 && r != -ENOENT)
		return rerr(r, "list", NULL);
	return 0;
}

const struct store_ops store_rados_ops = {
	.scheme = "rados",
	.connect = rados_connect_url,
	.close = rados_close,
	.put = rados_put,
	.exists = rados_exists,
	.get = rados_get,
	.size = rados_size,
	.del = rados_del,
	.list = rados_list,
};
