/*
 * config.c -- resolving a pool's settings (see config.h for the order of
 * precedence).
 *
 * Two stages, because one question needs the file: config_resolve reads
 * the caller's config and the environment and checks every value before
 * ckpt_create or ckpt_open touches the disk; config_fork_mode then asks the
 * pool file's filesystem what it can do (clones), once the file is open
 * and before any segment is claimed. A pool created with a mode its
 * filesystem cannot do is removed again: nothing was written to it yet.
 *
 * The key of a sealed pool comes from the caller's key_file, else
 * CKPT_KEY_FILE, else the program's key callback (ckpt_set_key_callback,
 * registered here for the whole process): config_resolve takes the
 * callback registered at that moment, pool.c asks it.
 *
 * The remote store a pool pushes to is resolved at each publish (so a
 * `ckpt-remote config` takes effect at the next checkpoint): the process's
 * CKPT_REMOTE first, then the pool's POOL.remote.url.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "format.h"
#include "layout.h"
#include "map.h"
#include "segcopy.h"

static const char *const mode_names[] = { "auto", "copy", "reflink", "cow", "shared" };
#define NMODES (sizeof(mode_names) / sizeof(mode_names[0]))
_Static_assert(NMODES == CKPT_FORK_SHARED + 1, "a name for every fork mode");

const char *
config_fork_mode_name(unsigned mode)
{
	return mode < NMODES ? mode_names[mode] : "?";
}

/* parse_mode -- CKPT_FORK_MODE's value as a mode, -1 if unknown */
static int
parse_mode(const char *s)
{
	for (unsigned i = 0; i < NMODES; i++)
		if (strcmp(s, mode_names[i]) == 0)
			return (int)i;
	return -1;
}

int
config_parse_fork_mode(const char *s)
{
	return s ? parse_mode(s) : -1;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return ckpt_err_set(EINVAL, "size '%s': expected a number with an optional "
				"suffix K, M, G or T", s ? s : "");
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end == 'i' && shift)
		end++;
	if ((*end == 'B' || *end == 'b') && end[1] == '\0')
		end++;
	if (errno || *end || n == 0 || (shift && n > (UINT64_MAX >> shift)))
		return ckpt_err_set(EINVAL, "size '%s': expected a positive number with an "
				"optional suffix K, M, G or T", s);
	*out = (uint64_t)n << shift;
	return 0;
}

static pthread_mutex_t key_cb_mu = PTHREAD_MUTEX_INITIALIZER;
static ckpt_key_fn key_cb;
static void *key_cb_arg;

CKPT_EXPORT int
ckpt_set_key_callback(ckpt_key_fn fn, void *arg)
{
	pthread_mutex_lock(&key_cb_mu);
	key_cb = fn;
	key_cb_arg = fn ? arg : NULL;
	pthread_mutex_unlock(&key_cb_mu);
	return 0;
}

/* key_callback_get -- the key callback registered now (NULL: none) and its argument */
static void
key_callback_get(ckpt_key_fn *fn, void **arg)
{
	pthread_mutex_lock(&key_cb_mu);
	*fn = key_cb;
	*arg = key_cb_arg;
	pthread_mutex_unlock(&key_cb_mu);
}

int
config_check_keep(unsigned n)
{
	if (n > POOL_MAX_SEGMENTS)
		return ckpt_err_set(EINVAL, "keep_checkpoints %u exceeds the %u segments "
				"a pool can have", n, POOL_MAX_SEGMENTS);
	return 0;
}

/* resolve_purge -- CKPT_PURGE_MIN and CKPT_PURGE_DELAY_MS into c; -1 (EINVAL) if malformed */
static int
resolve_purge(struct pool_config *c)
{
	const char *v = getenv("CKPT_PURGE_MIN");
	c->purge_min = (uint64_t)256 << 10;
	if (v && (!strcmp(v, "off") || !strcmp(v, "0")))
		c->purge_min = 0;
	else if (v && *v && config_parse_size(v, &c->purge_min) < 0)
		return ckpt_err_set(EINVAL, "CKPT_PURGE_MIN=%s: expected a size (256K, 1M) "
				"or off", v);
	const char *d = getenv("CKPT_PURGE_DELAY_MS");
	c->purge_delay_ms = 250;
	if (d && *d) {
		char *end;
		errno = 0;
		unsigned long ms = strtoul(d, &end, 10);
		if (*end || errno || *d == '-' || ms > 60000)
			return ckpt_err_set(EINVAL, "CKPT_PURGE_DELAY_MS=%s: expected milliseconds "
					"from 0 to 60000", d);
		c->purge_delay_ms = (unsigned)ms;
	}
	return 0;
}

int
config_resolve(struct pool_config *c, const struct ckpt_config *cfg, int create)
{
	static const struct ckpt_config zero;
	if (!cfg)
		cfg = &zero;
	memset(c, 0, sizeof(*c));
	c->fork_mode = CKPT_FORK_AUTO;
	c->fork_mode_from = "the default";
	if ((unsigned)cfg->fork_mode >= NMODES)
		return ckpt_err_set(EINVAL, "unknown fork mode %d in the config",
				(int)cfg->fork_mode);
	if (cfg != &zero) {
		/* a config's fork mode counts on open too, auto included */
		c->fork_mode = cfg->fork_mode;
		c->fork_mode_set = 1;
		c->fork_mode_from = "the config";
	}
	c->pool_fork_mode = c->fork_mode;
	const char *env = getenv("CKPT_FORK_MODE");
	if (env && *env) {
		int m = parse_mode(env);
		if (m < 0)
			return ckpt_err_set(EINVAL,
				"CKPT_FORK_MODE=%s: expected auto, copy, reflink, cow or shared", env);
		c->fork_mode = (enum ckpt_fork_mode)m;
		c->fork_mode_set = 1;
		c->fork_mode_from = "CKPT_FORK_MODE";
	}
	const char *rs = getenv("CKPT_RESTART");
	if (rs && *rs && strcmp(rs, "lazy") != 0 && strcmp(rs, "eager") != 0)
		return ckpt_err_set(EINVAL, "CKPT_RESTART=%s: expected lazy or eager", rs);
	c->eager_restart = rs && strcmp(rs, "eager") == 0;
	const char *ft = getenv("CKPT_REMOTE_FILL_TIMEOUT");
	c->fill_wait_ms = 60000;
	if (ft && *ft) {
		char *end;
		errno = 0;
		double sec = strtod(ft, &end);
		if (*end || errno || !(sec > 0) || sec > 86400)
			return ckpt_err_set(EINVAL, "CKPT_REMOTE_FILL_TIMEOUT=%s: expected seconds "
					"(more than 0, at most 86400)", ft);
		c->fill_wait_ms = (unsigned)(sec * 1000) ? (unsigned)(sec * 1000) : 1;
	}
	if (resolve_purge(c) < 0)
		return -1;
	if (config_check_keep(cfg->keep_checkpoints) < 0)
		return -1;
	c->keep = cfg->keep_checkpoints;
	const char *kf = getenv("CKPT_KEY_FILE");
	if (cfg->key_file) {
		c->key_file = cfg->key_file;
		c->key_from = "the config";
	} else if (kf && *kf) {
		c->key_file = kf;
		c->key_from = "CKPT_KEY_FILE";
	}
	if (c->key_file && !*c->key_file)
		return ckpt_err_set(EINVAL, "key file name from %s is empty", c->key_from);
	if (!c->key_file)
		key_callback_get(&c->key_fn, &c->key_arg);
	if (!create)
		return 0;

	c->heap_size = cfg->heap_size ? cfg->heap_size : POOL_DEFAULT_HEAP;
	c->max_segments = cfg->max_segments ? cfg->max_segments : POOL_DEFAULT_SEGMENTS;
	c->mode = cfg->mode ? cfg->mode : 0600;
	if (!c->keep)
		c->keep = POOL_DEFAULT_KEEP;
	c->base = (uint64_t)(uintptr_t)cfg->base;
	if (c->base % POOL_BASE_ALIGN != 0 || c->base > POOL_USER_TOP)
		return ckpt_err_set(EINVAL, "base %p is not a 2 MiB-aligned user address",
				cfg->base);
	return 0;
}

void
config_from_pool(struct pool_config *c, const struct pool_hdr *h)
{
	if (!c->fork_mode_set) {
		c->fork_mode = (enum ckpt_fork_mode)h->fork_mode;
		c->fork_mode_from = "the pool";
	}
	if (!c->keep)
		c->keep = h->keep_checkpoints ? h->keep_checkpoints : POOL_DEFAULT_KEEP;
}

/*
 * pmem_pool -- 1 if the pool's heaps stay on persistent memory: the file
 * takes MAP_SYNC (DAX), or the pmem path is forced for tests
 * (PMEM_IS_PMEM_FORCE=1, as libpmem reads it). There a store is durable
 * after a cache flush, without a copy, so auto keeps the MAP_SHARED heap.
 */
static int
pmem_pool(int fd)
{
	const char *f = getenv("PMEM_IS_PMEM_FORCE");
	return (f && strcmp(f, "1") == 0) || map_is_dax(fd);
}

/*
 * cow_fits -- 1 if auto may settle to cow on this pool: its cow heaps can
 * persist pages (format 1.7's base_id, with the page-sum area) and it is
 * not on pmem. A sealed pool never gets here.
 */
static int
cow_fits(int fd, const struct pool_hdr *h)
{
	return h->minor >= POOL_MINOR_PERSISTED_PAGES && (h->flags & POOL_F_SUMS_AREA) &&
		(h->flags & POOL_F_IN_MEMORY_HEAPS) && !pmem_pool(fd);
}

int
config_fork_mode(struct pool_config *c, int fd, const char *path, const struct pool_hdr *h)
{
	uint32_t hdr_flags = h->flags;
	if (hdr_flags & POOL_F_SEALED) {
		if (c->fork_mode != CKPT_FORK_AUTO && c->fork_mode != CKPT_FORK_COPY)
			return ckpt_err_set(ENOTSUP, "fork mode %s (from %s): pool %s is "
					"sealed: its heaps are kept in memory and its "
					"checkpoints encrypted, so only fork mode copy (or "
					"auto) applies", config_fork_mode_name(c->fork_mode),
					c->fork_mode_from, path);
		c->fork_mode = CKPT_FORK_COPY;
		return 0;
	}
	int can_clone = segcopy_can_clone(fd);
	switch (c->fork_mode) {
	case CKPT_FORK_REFLINK:
		if (!can_clone)
			return ckpt_err_set(ENOTSUP, "fork mode reflink (from %s): the "
					"filesystem of %s cannot clone file ranges",
					c->fork_mode_from, path);
		break;
	case CKPT_FORK_COW:
		if (!(hdr_flags & POOL_F_IN_MEMORY_HEAPS))
			return ckpt_err_set(ENOTSUP, "fork mode cow (from %s): pool %s was "
					"created by a libckpt of format 1.0, which cannot read "
					"heaps kept in memory; create a new pool for cow mode",
					c->fork_mode_from, path);
		break;
	case CKPT_FORK_AUTO:
		/* cow wherever it works; before 1.7 (ckpt_persist would be
		 * ENOTSUP) and on pmem the heap stays in its segment */
		c->fork_mode = cow_fits(fd, h) ? CKPT_FORK_COW :
			can_clone ? CKPT_FORK_REFLINK : CKPT_FORK_COPY;
		break;
	default:
		break;
	}
	return 0;
}

int
config_remote_url_path(const char *path, char *out, size_t len)
{
	if ((size_t)snprintf(out, len, "%s%s", path, CONFIG_REMOTE_URL_SUFFIX) >= len)
		return ckpt_err_set(ENAMETOOLONG, "pool path too long");
	return 0;
}

const char *
config_remote_url(const char *path, char *buf, size_t len)
{
	const char *u = getenv("CKPT_REMOTE");
	if (u && *u)
		return strcmp(u, "none") == 0 ? NULL : u;
	return config_pool_remote_url(path, buf, len);
}

const char *
config_pool_remote_url(const char *path, char *buf, size_t len)
{
	char f[4200];
	if (len < 2 || config_remote_url_path(path, f, sizeof(f)) < 0)
		return NULL;
	int fd = open(f, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, len - 1) : -1;
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	return buf[0] ? buf : NULL;
}

#ifndef CKPT_INSTALL_BINDIR
#define CKPT_INSTALL_BINDIR "/usr/local/bin"    /* a build of the sources without
                                                   libckpt/CMakeLists.txt (the fuzz harness) */
#endif

const char *
config_remote_tool(void)
{
	const char *t = getenv("CKPT_REMOTE_TOOL");
	return t && *t ? t : CKPT_INSTALL_BINDIR "/ckpt-remote";
}

/* env_unsigned -- an unsigned environment setting, or def when unset or malformed */
static unsigned
env_unsigned(const char *name, unsigned def, unsigned max)
{
	const char *v = getenv(name);
	char *end;
	if (!v || !*v)
		return def;
	unsigned long n = strtoul(v, &end, 10);
	return *end || n > max ? def : (unsigned)n;
}

unsigned
config_remote_retries(void)
{
	return env_unsigned("CKPT_REMOTE_RETRIES", 5, 30);
}

unsigned
config_remote_lock_wait(void)
{
	return env_unsigned("CKPT_REMOTE_LOCK_WAIT", 60, 3600);
}

unsigned
config_remote_lease_ttl(void)
{
	return env_unsigned("CKPT_REMOTE_LEASE_TTL", 60, 86400) ?: 60;
}
