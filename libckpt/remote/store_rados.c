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
 * own completion (rados_aio_*), then all are waited for. write_full
 * replaces an object atomically, as store.h asks of put.
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

/* aio -- n completions, created, waited for and released together */
struct aio {
	rados_completion_t c[256];
	unsigned n;
};

/* aio_wait -- wait for every completion; returns values into rv, releases them */
static void
aio_wait(struct aio *a, int *rv)
{
	for (unsigned i = 0; i < a->n; i++) {
		rados_aio_wait_for_complete(a->c[i]);
		rv[i] = rados_aio_get_return_value(a->c[i]);
		rados_aio_release(a->c[i]);
	}
	a->n = 0;
}

/* BATCH -- ops issued at once (store callers pass at most a few hundred) */
#define RADOS_BATCH 256u

static int
rados_put(struct store_impl *s, unsigned n, const char *const *names, const void *const *bufs,
		const size_t *lens)
{
	for (unsigned b = 0; b < n; b += RADOS_BATCH) {
		unsigned m = n - b < RADOS_BATCH ? n - b : RADOS_BATCH;
		struct aio a = { .n = 0 };
		int rv[RADOS_BATCH], err = 0;
		for (unsigned i = 0; i < m; i++) {
			if (rados_aio_create_completion(NULL, NULL, NULL, &a.c[a.n]) < 0)
				break;
			int r = rados_aio_write_full(s->io, names[b + i], a.c[a.n],
					bufs[b + i], lens[b + i]);
			a.n++;
			if (r < 0) {
				err = r;
				break;
			}
		}
		unsigned issued = a.n;
		aio_wait(&a, rv);
		for (unsigned i = 0; i < issued && !err; i++)
			if (rv[i] < 0)
				return rerr(rv[i], "write", names[b + i]);
		if (err || issued < m)
			return rerr(err ? err : -ENOMEM, "write", names[b + issued - 1]);
	}
	return 0;
}

/*
 * each -- issue op for every name with its own completion; rv gets each
 * return value. op: 0 stat, 1 read into bufs (cap), 2 remove.
 */
static int
each(struct store_impl *s, int op, unsigned n, const char *const *names, void *const *bufs,
		size_t cap, int *rv, uint64_t *sizes)
{
	for (unsigned b = 0; b < n; b += RADOS_BATCH) {
		unsigned m = n - b < RADOS_BATCH ? n - b : RADOS_BATCH;
		struct aio a = { .n = 0 };
		time_t mt;
		int err = 0;
		for (unsigned i = 0; i < m && !err; i++) {
			if (rados_aio_create_completion(NULL, NULL, NULL, &a.c[a.n]) < 0) {
				err = -ENOMEM;
				break;
			}
			const char *nm = names[b + i];
			int r = op == 0 ? rados_aio_stat(s->io, nm, a.c[a.n], &sizes[b + i], &mt) :
				op == 1 ? rados_aio_read(s->io, nm, a.c[a.n], bufs[b + i], cap, 0) :
				rados_aio_remove(s->io, nm, a.c[a.n]);
			a.n++;
			if (r < 0)
				err = r;
		}
		aio_wait(&a, rv + b);
		if (err)
			return rerr(err, "aio", NULL);
	}
	return 0;
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
	if (each(s, 0, n, names, NULL, 0, rv, sz) < 0)
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
	if (each(s, 1, n, names, bufs, cap, rv, NULL) < 0)
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
	if (each(s, 2, n, names, NULL, 0, rv, NULL) < 0)
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
