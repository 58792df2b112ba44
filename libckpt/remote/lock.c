/*
 * lock.c -- leases between pushes and garbage collection.
 *
 * The race to prevent: a push finds chunk X already in the store and does
 * not send it; a concurrent GC, seeing no manifest that references X,
 * deletes it; the push then writes a manifest pointing at a missing chunk.
 *
 * The protocol (Dekker's, over a store whose single objects are
 * linearizable: one Redis server, RADOS objects):
 *   - a push writes "ckpt.lock.push.<cookie>" holding its expiry time, then
 *     lists "ckpt.lock.gc."; a GC writes "ckpt.lock.gc.<cookie>", then lists
 *     "ckpt.lock.push.". Whoever finds a live lease of the other kind
 *     deletes its own and retries after a random backoff. Of two parties
 *     that overlap, at least one sees the other's lease, so a GC never runs
 *     while a push is between its first existence check and its manifest.
 *   - leases expire (ttl, 60 s unless CKPT_REMOTE_LEASE_TTL; wall-clock expiry written in the object),
 *     so a killed holder blocks the other kind for at most a ttl; expired
 *     leases are deleted by whoever finds them. Holders rewrite theirs every
 *     third of the ttl. A push whose lease lapsed (it stalled longer than
 *     the ttl) may have been overtaken by a GC, so before writing its
 *     manifest it checks again that every chunk it references exists.
 *   - clocks of different hosts must agree to well within the ttl.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "remote/lock.h"

static const char *const kind_prefix[] = { LEASE_PREFIX "push.", LEASE_PREFIX "gc." };

/* write_lease -- (re)write l with an expiry ttl from now */
static int
write_lease(struct store *st, struct lease *l)
{
	char val[32];
	int n = snprintf(val, sizeof(val), "%llu", (unsigned long long)(now_ns() + l->ttl_ns));
	const char *name = l->name;
	const void *buf = val;
	size_t len = (size_t)n;
	uint64_t t = mono_ns();
	if (store_put(st, 1, &name, &buf, &len) < 0)
		return -1;
	l->renewed_mono = t;
	return 0;
}

struct scan {
	struct store *st;
	char live[64];              /* a live lease found, for the message */
	char **expired;
	unsigned nexpired, cap;
};

/* collect -- store_list_fn: remember every lease name */
static int
collect(void *arg, const char *name)
{
	struct scan *s = arg;
	if (s->nexpired == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 16;
		char **e = realloc(s->expired, cap * sizeof(*e));
		if (!e)
			return 1;
		s->expired = e;
		s->cap = cap;
	}
	s->expired[s->nexpired] = strdup(name);
	if (s->expired[s->nexpired])
		s->nexpired++;
	return 0;
}

/*
 * others_live -- 1 if a live lease of the kind other than ours exists (its
 * name in s->live); expired ones are deleted. -1 on a store failure.
 */
static int
others_live(struct store *st, enum lease_kind other, char *who, size_t wlen)
{
	struct scan s = { .st = st };
	int ret = 0;
	if (store_list(st, kind_prefix[other], collect, &s) < 0)
		return -1;
	for (unsigned i = 0; i < s.nexpired; i++) {
		void *buf = NULL;
		size_t len;
		const char *name = s.expired[i];
		if (store_get_alloc(st, name, 64, &buf, &len) < 0) {
			if (errno == ENOENT || errno == EFBIG)
				continue;       /* gone meanwhile; or not ours to judge */
			ret = -1;
			break;
		}
		char val[65];
		memcpy(val, buf, len);
		val[len] = 0;
		free(buf);
		unsigned long long exp = strtoull(val, NULL, 10);
		if (exp > now_ns()) {
			snprintf(who, wlen, "%s", name);
			ret = 1;
		} else {
			store_del(st, 1, &name);
		}
	}
	for (unsigned i = 0; i < s.nexpired; i++)
		free(s.expired[i]);
	free(s.expired);
	return ret;
}

int
lease_take(struct store *st, enum lease_kind kind, unsigned wait_s, struct lease *l)
{
	uint8_t rnd[8];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return ckpt_err_set(EIO, "cannot get random bytes for a lease");
	memset(l, 0, sizeof(*l));
	l->kind = kind;
	l->ttl_ns = (uint64_t)config_remote_lease_ttl() * 1000000000ull;
	int k = snprintf(l->name, sizeof(l->name), "%s%d.", kind_prefix[kind], (int)getpid());
	for (int i = 0; i < 8; i++)
		k += snprintf(l->name + k, sizeof(l->name) - (size_t)k, "%02x", rnd[i]);
	uint64_t deadline = mono_ns() + (uint64_t)wait_s * 1000000000ull;
	unsigned wait_ms = 20;
	char who[64];
	for (;;) {
		if (write_lease(st, l) < 0)
			return -1;
		int o = others_live(st, kind == LEASE_PUSH ? LEASE_GC : LEASE_PUSH, who,
				sizeof(who));
		if (o == 0)
			return 0;
		lease_drop(st, l);
		if (o < 0)
			return -1;
		if (mono_ns() >= deadline)
			return ckpt_err_set(EBUSY, "the store is busy: %s holds it (a %s runs; "
					"try again later)", who, kind == LEASE_PUSH ?
					"garbage collection" : "push");
		struct timespec ts = { 0, (long)(wait_ms + (unsigned)(rnd[0] % 20)) * 1000000 };
		nanosleep(&ts, NULL);
		if (wait_ms < 1000)
			wait_ms *= 2;
	}
}

int
lease_renew(struct store *st, struct lease *l)
{
	uint64_t age = mono_ns() - l->renewed_mono;
	if (age < l->ttl_ns / 3)
		return 0;
	if (age >= l->ttl_ns)
		l->lapsed = 1;
	return write_lease(st, l);
}

void
lease_drop(struct store *st, struct lease *l)
{
	const char *name = l->name;
	int e = errno;
	store_del(st, 1, &name);
	errno = e;
}
