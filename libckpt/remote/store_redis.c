/*
 * store_redis.c -- the memory-appliance backend: one Redis database
 * through hiredis, URL redis://[[user]:password@]host[:port][/db].
 *
 * Objects are string keys. Batches are pipelined: every command of a batch
 * is appended to the output buffer and the replies are read afterwards, so
 * a batch of n small chunks costs about one round trip instead of n; puts
 * go as MSETs of many keys, and a batch's existence check starts with one
 * EXISTS naming every key (redis_put, redis_exists say why). An MSET is
 * atomic, which is what store.h asks of put. Listing is SCAN with a
 * MATCH pattern (never KEYS: it would stall a shared server).
 *
 * Errors: a connection that fails or breaks is ECONNREFUSED/ECONNRESET/
 * ETIMEDOUT (the wrapper retries); a refused AUTH, or NOAUTH from a server
 * that wants a password, is EACCES naming the cause; any other error reply
 * is EIO with the server's text.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>

#include "remote/store.h"

#define REDIS_CONNECT_TIMEOUT_S 2
#define REDIS_IO_TIMEOUT_S 30
#define REDIS_DEFAULT_PORT 6379

struct store_impl {
	redisContext *c;
};

/* conn_error -- errno and message for a broken context */
static int
conn_error(redisContext *c, const char *what)
{
	int e = ECONNRESET;
	if (c->err == REDIS_ERR_IO)
		e = errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT :
			errno ? errno : ECONNRESET;
	else if (c->err == REDIS_ERR_EOF)
		e = ECONNRESET;
	return ckpt_err_set(e, "redis %s: %s", what, c->errstr[0] ? c->errstr :
			strerror(e));
}

/* reply_error -- errno and message for an error reply */
static int
reply_error(const redisReply *r, const char *what)
{
	int e = EIO;
	if (strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0 ||
	    strstr(r->str, "invalid password") || strncmp(r->str, "NOPERM", 6) == 0)
		e = EACCES;
	else if (strncmp(r->str, "LOADING", 7) == 0 || strncmp(r->str, "BUSY", 4) == 0)
		e = EAGAIN;
	return ckpt_err_set(e, "redis %s: %s%s", what, r->str, e == EACCES ?
			" (wrong or missing credentials in the redis:// URL)" : "");
}

/* command -- one command from argv, its reply checked against want (a REDIS_REPLY_*) */
static redisReply *
command(struct store_impl *s, const char *what, int argc, const char **argv, const size_t *lens)
{
	redisReply *r = redisCommandArgv(s->c, argc, argv, lens);
	if (!r) {
		conn_error(s->c, what);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		reply_error(r, what);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* parse -- split rest into user, password, host, port and db */
static int
parse(const char *rest, char *user, char *pass, char *host, int *port, int *db)
{
	user[0] = pass[0] = 0;
	*port = REDIS_DEFAULT_PORT;
	*db = 0;
	const char *at = strrchr(rest, '@');
	if (at) {
		const char *colon = memchr(rest, ':', (size_t)(at - rest));
		size_t ul = colon ? (size_t)(colon - rest) : 0;
		size_t pl = colon ? (size_t)(at - colon - 1) : (size_t)(at - rest);
		const char *ps = colon ? colon + 1 : rest;
		if (ul >= 128 || pl >= 256)
			return -1;
		memcpy(user, rest, ul);
		user[ul] = 0;
		memcpy(pass, ps, pl);
		pass[pl] = 0;
		rest = at + 1;
	}
	size_t hl = strcspn(rest, ":/");
	if (hl == 0 || hl >= 256)
		return -1;
	memcpy(host, rest, hl);
	host[hl] = 0;
	rest += hl;
	char *end;
	if (*rest == ':') {
		long v = strtol(rest + 1, &end, 10);
		if (end == rest + 1 || v <= 0 || v > 65535)
			return -1;
		*port = (int)v;
		rest = end;
	}
	if (*rest == '/' && rest[1]) {
		long v = strtol(rest + 1, &end, 10);
		if (end == rest + 1 || *end || v < 0 || v > 1000000)
			return -1;
		*db = (int)v;
	} else if (*rest && strcmp(rest, "/") != 0) {
		return -1;
	}
	return 0;
}

/* redis_close -- store_ops.close */
static void
redis_close(struct store_impl *s)
{
	if (s->c)
		redisFree(s->c);
	free(s);
}

/* redis_connect -- store_ops.connect: connect, AUTH, SELECT */
static struct store_impl *
redis_connect(const char *rest)
{
	char user[128], pass[256], host[256];
	int port, db;
	if (parse(rest, user, pass, host, &port, &db) < 0) {
		ckpt_err_set(EINVAL, "malformed redis URL 'redis://%s': expected "
				"redis://[[user]:password@]host[:port][/db]", rest);
		return NULL;
	}
	struct store_impl *s = calloc(1, sizeof(*s));
	if (!s) {
		ckpt_err_set(ENOMEM, "out of memory");
		return NULL;
	}
	struct timeval tv = { REDIS_CONNECT_TIMEOUT_S, 0 };
	s->c = redisConnectWithTimeout(host, port, tv);
	if (!s->c) {
		ckpt_err_set(ENOMEM, "redis: out of memory");
		free(s);
		return NULL;
	}
	if (s->c->err) {
		int e = s->c->err == REDIS_ERR_IO && errno ? errno : ECONNREFUSED;
		ckpt_err_set(e, "cannot connect to redis at %s:%d: %s", host, port,
				s->c->errstr);
		redis_close(s);
		return NULL;
	}
	struct timeval io = { REDIS_IO_TIMEOUT_S, 0 };
	redisSetTimeout(s->c, io);
	redisReply *r;
	if (pass[0]) {
		const char *av[3] = { "AUTH", user, pass };
		size_t al[3] = { 4, strlen(user), strlen(pass) };
		r = user[0] ? command(s, "AUTH", 3, av, al) :
			command(s, "AUTH", 2, (const char *[]){ "AUTH", pass },
					(size_t[]){ 4, strlen(pass) });
		if (!r)
			goto fail;
		freeReplyObject(r);
	}
	char dbs[16];
	snprintf(dbs, sizeof(dbs), "%d", db);
	r = command(s, "SELECT", 2, (const char *[]){ "SELECT", dbs },
			(size_t[]){ 6, strlen(dbs) });
	if (!r)
		goto fail;
	freeReplyObject(r);
	return s;
fail:
	redis_close(s);
	return NULL;
}

/*
 * pipeline -- append n commands (argv built by mk for each i), then read
 * the n replies, handing each to take; the first error is returned after
 * every reply was read, so the connection stays in step
 */
typedef void (*mk_fn)(void *arg, unsigned i, int *argc, const char **argv, size_t *lens);
typedef int (*take_fn)(void *arg, unsigned i, redisReply *r);

static int
pipeline(struct store_impl *s, const char *what, unsigned n, mk_fn mk, take_fn take, void *arg)
{
	for (unsigned i = 0; i < n; i++) {
		int argc;
		const char *argv[4];
		size_t lens[4];
		mk(arg, i, &argc, argv, lens);
		if (redisAppendCommandArgv(s->c, argc, argv, lens) != REDIS_OK)
			return conn_error(s->c, what);
	}
	int ret = 0;
	for (unsigned i = 0; i < n; i++) {
		void *rv;
		if (redisGetReply(s->c, &rv) != REDIS_OK)
			return conn_error(s->c, what);
		redisReply *r = rv;
		if (r->type == REDIS_REPLY_ERROR) {
			if (ret == 0)
				ret = reply_error(r, what);
		} else if (ret == 0 && take(arg, i, r) < 0) {
			ret = -1;
		}
		freeReplyObject(r);
	}
	return ret;
}

struct batch {
	const char *const *names;
	void *const *bufs;
	size_t *lens;
	size_t cap;
	uint8_t *out;
	const char *cmd;
};

static void
mk_key(void *arg, unsigned i, int *argc, const char **argv, size_t *lens)
{
	struct batch *b = arg;
	*argc = 2;
	argv[0] = b->cmd; lens[0] = strlen(b->cmd);
	argv[1] = b->names[i]; lens[1] = strlen(b->names[i]);
}

static int
take_none(void *arg, unsigned i, redisReply *r)
{
	return 0;
}

static int
take_exists(void *arg, unsigned i, redisReply *r)
{
	struct batch *b = arg;
	b->out[i] = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
	return 0;
}

static int
take_get(void *arg, unsigned i, redisReply *r)
{
	struct batch *b = arg;
	if (r->type == REDIS_REPLY_NIL) {
		b->lens[i] = STORE_MISSING;
		return 0;
	}
	if (r->type != REDIS_REPLY_STRING)
		return ckpt_err_set(EIO, "redis GET %s: unexpected reply type %d",
				b->names[i], r->type);
	if ((size_t)r->len > b->cap)
		return ckpt_err_set(EFBIG, "%s: %zu bytes, more than the %zu expected",
				b->names[i], (size_t)r->len, b->cap);
	memcpy(b->bufs[i], r->str, (size_t)r->len);
	b->lens[i] = (size_t)r->len;
	return 0;
}

/*
 * redis_put -- MSETs of up to REDIS_MSET_KEYS keys or REDIS_MSET_BYTES
 * bytes each, pipelined: one command per group instead of one per chunk
 * (a batch of 4 KiB chunks cost the server more in command dispatch than
 * in copying; MSET is atomic, as store.h asks of each put)
 */
#define REDIS_MSET_KEYS 64u
#define REDIS_MSET_BYTES ((size_t)1 << 20)

static int
redis_put(struct store_impl *s, unsigned n, const char *const *names, const void *const *bufs,
		const size_t *lens)
{
	const char *argv[1 + 2 * REDIS_MSET_KEYS];
	size_t alen[1 + 2 * REDIS_MSET_KEYS];
	unsigned groups = 0;
	argv[0] = "MSET"; alen[0] = 4;
	for (unsigned i = 0; i < n; ) {
		unsigned g = 0;
		size_t bytes = 0;
		while (i < n && g < REDIS_MSET_KEYS && (g == 0 || bytes + lens[i] <= REDIS_MSET_BYTES)) {
			argv[1 + 2 * g] = names[i]; alen[1 + 2 * g] = strlen(names[i]);
			argv[2 + 2 * g] = bufs[i]; alen[2 + 2 * g] = lens[i];
			bytes += lens[i];
			g++, i++;
		}
		if (redisAppendCommandArgv(s->c, (int)(1 + 2 * g), argv, alen) != REDIS_OK)
			return conn_error(s->c, "MSET");
		groups++;
	}
	int ret = 0;
	for (unsigned k = 0; k < groups; k++) {
		void *rv;
		if (redisGetReply(s->c, &rv) != REDIS_OK)
			return conn_error(s->c, "MSET");
		redisReply *r = rv;
		if (r->type == REDIS_REPLY_ERROR && ret == 0)
			ret = reply_error(r, "MSET");
		freeReplyObject(r);
	}
	return ret;
}

/*
 * redis_exists -- first one EXISTS naming all n keys: its reply counts the
 * keys present, and 0 (a first push's usual answer) says it for every key
 * in one command; otherwise one EXISTS a key, pipelined
 */
static int
redis_exists(struct store_impl *s, unsigned n, const char *const *names, uint8_t *out)
{
	if (n == 0)
		return 0;
	const char **argv = malloc((n + 1) * sizeof(*argv));
	size_t *alen = malloc((n + 1) * sizeof(*alen));
	if (!argv || !alen) {
		free(argv);
		free(alen);
		return ckpt_err_set(ENOMEM, "out of memory");
	}
	argv[0] = "EXISTS"; alen[0] = 6;
	for (unsigned i = 0; i < n; i++) {
		argv[i + 1] = names[i];
		alen[i + 1] = strlen(names[i]);
	}
	redisReply *r = command(s, "EXISTS", (int)n + 1, argv, alen);
	free(argv);
	free(alen);
	if (!r)
		return -1;
	int none = r->type == REDIS_REPLY_INTEGER && r->integer == 0;
	freeReplyObject(r);
	if (none) {
		memset(out, 0, n);
		return 0;
	}
	struct batch b = { .names = names, .out = out, .cmd = "EXISTS" };
	return pipeline(s, "EXISTS", n, mk_key, take_exists, &b);
}

static int
redis_get(struct store_impl *s, unsigned n, const char *const *names, void *const *bufs,
		size_t cap, size_t *lens)
{
	struct batch b = { .names = names, .bufs = bufs, .cap = cap, .lens = lens,
		.cmd = "GET" };
	return pipeline(s, "GET", n, mk_key, take_get, &b);
}

static int
redis_size(struct store_impl *s, const char *name, size_t *len)
{
	uint8_t ex = 0;
	if (redis_exists(s, 1, &name, &ex) < 0)
		return -1;
	if (!ex) {
		*len = STORE_MISSING;
		return 0;
	}
	redisReply *r = command(s, "STRLEN", 2, (const char *[]){ "STRLEN", name },
			(size_t[]){ 6, strlen(name) });
	if (!r)
		return -1;
	*len = r->type == REDIS_REPLY_INTEGER ? (size_t)r->integer : 0;
	freeReplyObject(r);
	return 0;
}

static int
redis_del(struct store_impl *s, unsigned n, const char *const *names)
{
	struct batch b = { .names = names, .cmd = "UNLINK" };
	return pipeline(s, "UNLINK", n, mk_key, take_none, &b);
}

/* redis_list -- SCAN with MATCH prefix* (glob characters in prefix escaped) */
static int
redis_list(struct store_impl *s, const char *prefix, store_list_fn fn, void *arg)
{
	char pat[512], cursor[32] = "0";
	size_t k = 0;
	for (const char *q = prefix; *q && k + 3 < sizeof(pat); q++) {
		if (strchr("*?[]\\", *q))
			pat[k++] = '\\';
		pat[k++] = *q;
	}
	pat[k++] = '*';
	pat[k] = 0;
	do {
		const char *av[6] = { "SCAN", cursor, "MATCH", pat, "COUNT", "1000" };
		size_t al[6] = { 4, strlen(cursor), 5, strlen(pat), 5, 4 };
		redisReply *r = command(s, "SCAN", 6, av, al);
		if (!r)
			return -1;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return ckpt_err_set(EIO, "redis SCAN: unexpected reply");
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		int stop = 0;
		for (size_t i = 0; i < r->element[1]->elements && !stop; i++) {
			redisReply *e = r->element[1]->element[i];
			if (e->type == REDIS_REPLY_STRING)
				stop = fn(arg, e->str);
		}
		freeReplyObject(r);
		if (stop)
			break;
	} while (strcmp(cursor, "0") != 0);
	return 0;
}

const struct store_ops store_redis_ops = {
	.scheme = "redis",
	.connect = redis_connect,
	.close = redis_close,
	.put = redis_put,
	.exists = redis_exists,
	.get = redis_get,
	.size = redis_size,
	.del = redis_del,
	.list = redis_list,
};
