/*
 * listing.c -- reading manifests back: one by name, or every manifest in a
 * store in checkpoint-time order (what `ckpt-remote list` prints and what
 * prune judges).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libckpt.h"
#include "remote/remote.h"

int
remote_load_manifest(struct store *st, const char *name, struct manifest *m)
{
	void *buf;
	size_t len;
	if (strncmp(name, MANIFEST_PREFIX, strlen(MANIFEST_PREFIX)) != 0)
		return ckpt_err_set(EINVAL, "'%s' is not a manifest name (ckpt.m....)", name);
	if (store_get_alloc(st, name, MANIFEST_MAX_BYTES, &buf, &len) < 0) {
		if (errno == EFBIG)
			return ckpt_err_set(EINVAL, "manifest %s is damaged: too large", name);
		return -1;
	}
	if (manifest_decode(m, name, buf, len) < 0) {
		free(buf);
		return -1;
	}
	return 0;
}

/* names -- a growing list of object names */
struct names {
	char **v;
	size_t n, cap;
};

/* add_name -- store_list_fn: keep the name */
static int
add_name(void *arg, const char *name)
{
	struct names *ns = arg;
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 64;
		char **v = realloc(ns->v, cap * sizeof(*v));
		if (!v)
			return 1;
		ns->v = v;
		ns->cap = cap;
	}
	if (!(ns->v[ns->n] = strdup(name)))
		return 1;
	ns->n++;
	return 0;
}

/* entry -- one listed manifest */
struct entry {
	char *name;
	struct manifest m;
	int ok;
	int err;                    /* not ok: EINVAL damaged, ENOTSUP a newer version */
	char why[CKPT_ERRMSG_MAX];
};

/* by_time -- damaged ones first, then by checkpoint time, then name */
static int
by_time(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->ok != y->ok)
		return x->ok - y->ok;
	if (x->ok && x->m.h.time_ns != y->m.h.time_ns)
		return x->m.h.time_ns < y->m.h.time_ns ? -1 : 1;
	return strcmp(x->name, y->name);
}

int
remote_list(struct store *st, remote_manifest_fn fn, void *arg)
{
	struct names ns = { 0 };
	int ret = -1;
	struct entry *es = NULL;
	if (store_list(st, MANIFEST_PREFIX, add_name, &ns) < 0)
		goto out;
	es = calloc(ns.n ? ns.n : 1, sizeof(*es));
	if (!es) {
		ckpt_err_set(ENOMEM, "out of memory");
		goto out;
	}
	size_t k = 0;
	for (size_t i = 0; i < ns.n; i++) {
		es[k].name = ns.v[i];
		if (remote_load_manifest(st, ns.v[i], &es[k].m) == 0) {
			es[k].ok = 1;
		} else if (errno == ENOENT) {
			continue;       /* pruned meanwhile */
		} else if (errno == EINVAL || errno == ENOTSUP) {
			es[k].err = errno;
			snprintf(es[k].why, sizeof(es[k].why), "%s", ckpt_errormsg());
		} else {
			goto out;
		}
		k++;
	}
	qsort(es, k, sizeof(*es), by_time);
	ret = 0;
	for (size_t i = 0; i < k && ret == 0; i++) {
		if (!es[i].ok)
			ckpt_err_set(es[i].err, "%s", es[i].why);
		ret = fn(arg, es[i].name, es[i].ok ? &es[i].m : NULL);
	}
out:
	if (es)
		for (size_t i = 0; i < ns.n; i++)
			if (es[i].ok)
				manifest_free(&es[i].m);
	for (size_t i = 0; i < ns.n; i++)
		free(ns.v[i]);
	free(ns.v);
	free(es);
	return ret;
}
