/*
 * filling.c -- the restarting library's side of a checkpoint still being
 * pulled from a remote store (filling.h has the side files).
 *
 * A restart from a FILLING checkpoint is a lazy restart (engine/lazy.c)
 * with one more step before each chunk is verified: lazy.c calls
 * fill_client_fetch (its fetch hook, registered by restart.c), which
 * looks up the chunk's regions in POOL.fill.map. A region not there yet is
 * asked for over POOL.fill.sock (the filler fetches it next) and waited for
 * on its word (a futex on the shared mapping), in slices, checking between
 * them that the filler still runs (its flock on POOL.fill). Then the
 * region's page sums, which the filler wrote beside the image before it
 * set the word, are read into lazy.c's array and the chunk is verified
 * against them as any lazy chunk is.
 *
 * Trust: the filler checked every chunk against its name (a 128-bit hash of
 * its content) before it wrote the bytes and computed their page sums;
 * the sums cannot be checked against the checkpoint's checksum until all
 * of them are there (the filler does so before it publishes). A region the
 * filler cannot deliver (a corrupted chunk on the store, the filler gone
 * or stopped, the wait bound passed) is reported as failed and lazy.c
 * fences its chunk: the program dies only if it touches it, with a message
 * naming the reason and the command that resumes the pull.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "layout.h"
#include "pool.h"
#include "sums.h"
#include "remote/filling.h"

#define FILL_SLICE_MS 50        /* between two looks at the filler */

/* fill_client -- one restart's view of a filling checkpoint */
struct fill_client {
	struct fill_map *map;
	size_t map_len;
	int lockfd;                 /* POOL.fill, to test the filler's lock */
	int sock;                   /* datagram socket to POOL.fill.sock */
	struct sockaddr_un addr;
	int fd;                     /* the pool file */
	uint64_t sums_off;          /* the segment's page-sum slot */
	unsigned wait_ms;
	char pool[FILL_PATH_MAX];
};

int
fill_path(char *out, const char *pool, const char *suffix)
{
	if ((size_t)snprintf(out, FILL_PATH_MAX, "%s%s", pool, suffix) >= FILL_PATH_MAX)
		return ckpt_err_set(ENAMETOOLONG, "pool path too long: %s", pool);
	return 0;
}

void
fill_wake(uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

struct fill_client *
fill_client_open(struct ckpt_pool *p, uint32_t seg, uint64_t id, uint64_t used)
{
	struct fill_client *c = calloc(1, sizeof(*c));
	if (!c) {
		ckpt_err_set(ENOMEM, "out of memory");
		return NULL;
	}
	c->lockfd = c->sock = -1;
	c->fd = p->fd;
	c->sums_off = layout_sums_off(&p->hdr, seg);
	c->wait_ms = p->fill_wait_ms ? p->fill_wait_ms : 60000;
	snprintf(c->pool, sizeof(c->pool), "%s", p->path);
	char f[FILL_PATH_MAX];
	struct stat st;
	int fd = -1;
	if (fill_path(f, p->path, ".fill.map") < 0)
		goto fail;
	fd = open(f, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ckpt_err_set(errno, "%s: %s", f, strerror(errno));
		goto fail;
	}
	if ((size_t)st.st_size < fill_map_size(0)) {
		ckpt_err_set(EINVAL, "%s is damaged (too short)", f);
		goto fail;
	}
	c->map_len = (size_t)st.st_size;
	void *m = mmap(NULL, c->map_len, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		ckpt_err_set(errno, "cannot map %s: %s", f, strerror(errno));
		goto fail;
	}
	c->map = m;
	const struct fill_map *h = c->map;
	if (h->magic != FILL_MAP_MAGIC || h->ckpt_id != id || h->used != used ||
	    h->region < FILL_REGION || (h->region & (h->region - 1)) ||
	    h->nregions != (used + h->region - 1) / h->region ||
	    fill_map_size(h->nregions) > c->map_len) {
		ckpt_err_set(EINVAL, "%s does not describe checkpoint %llu", f,
				(unsigned long long)id);
		goto fail;
	}
	close(fd);
	fd = -1;
	if (fill_path(f, p->path, ".fill") < 0)
		goto fail;
	c->lockfd = open(f, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (c->lockfd < 0) {
		ckpt_err_set(errno, "%s: %s", f, strerror(errno));
		goto fail;
	}
	c->addr.sun_family = AF_UNIX;
	if (fill_path(f, p->path, ".fill.sock") < 0 || strlen(f) >= sizeof(c->addr.sun_path)) {
		/* no socket: the filler still fills in address order */
		c->addr.sun_family = AF_UNSPEC;
	} else {
		memcpy(c->addr.sun_path, f, strlen(f) + 1);
	}
	c->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	return c;
fail:
	ckpt_err_prefix("pool %s: checkpoint %llu is still being pulled from its remote store, "
			"but ", p->path, (unsigned long long)id);
	if (fd >= 0)
		close(fd);
	fill_client_end(c);
	return NULL;
}

/* filler_alive -- 1 while a filler holds POOL.fill's lock */
static int
filler_alive(struct fill_client *c)
{
	if (flock(c->lockfd, LOCK_SH | LOCK_NB) < 0)
		return errno == EWOULDBLOCK;
	flock(c->lockfd, LOCK_UN);
	return 0;
}

/* ask -- have the filler fetch region r next (best effort) */
static void
ask(struct fill_client *c, uint64_t r)
{
	if (c->sock >= 0 && c->addr.sun_family == AF_UNIX)
		sendto(c->sock, &r, sizeof(r), MSG_DONTWAIT, (struct sockaddr *)&c->addr,
			sizeof(c->addr));
}

/* region_bad -- the message of a region that cannot come; -1 */
static int
region_bad(struct fill_client *c, uint64_t r, const char *why)
{
	return ckpt_err_set(EIO, "region %llu of the image (heap offset 0x%llx) cannot be "
			"pulled: %s", (unsigned long long)r,
			(unsigned long long)(r * c->map->region), why);
}

/*
 * await -- region r present (1), or -1: bad, or the filler gone (after one
 * more look at the word), stopped, or silent past the wait bound
 */
static int
await(struct fill_client *c, uint64_t r)
{
	_Atomic uint32_t *w = (_Atomic uint32_t *)&fill_words(c->map)[r];
	uint64_t start = mono_ns() / 1000000;
	ask(c, r);
	for (;;) {
		uint32_t v = atomic_load_explicit(w, memory_order_acquire);
		if (v == FILL_DONE)
			return 1;
		char why[700];
		if (v == FILL_BAD) {
			snprintf(why, sizeof(why), "%.600s", c->map->bad_reason);
			return region_bad(c, r, why);
		}
		if (!filler_alive(c)) {
			if (atomic_load_explicit(w, memory_order_acquire) == FILL_DONE)
				return 1;
			snprintf(why, sizeof(why), "no filler is running%s%.520s (resume with "
				"`ckpt-remote fill %.100s`)", c->map->stopped ? ": it stopped: " : "",
				c->map->stopped ? c->map->stop_reason : "", c->pool);
			return region_bad(c, r, why);
		}
		uint64_t spent = mono_ns() / 1000000 - start;
		if (spent >= c->wait_ms) {
			snprintf(why, sizeof(why), "it has not arrived in %u ms "
				"(CKPT_REMOTE_FILL_TIMEOUT)%s%.520s", c->wait_ms,
				c->map->stopped ? "; the filler: " : "",
				c->map->stopped ? c->map->stop_reason : "");
			return region_bad(c, r, why);
		}
		uint64_t slice = c->wait_ms - spent < FILL_SLICE_MS ? c->wait_ms - spent
			: FILL_SLICE_MS;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)slice * 1000000 };
		syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, &ts, NULL, 0);
	}
}

int
fill_client_fetch(void *arg, uint64_t off, uint64_t len, int wait, uint64_t *sums)
{
	struct fill_client *c = arg;
	const struct fill_map *h = c->map;
	if (len == 0)
		return 1;
	uint64_t r0 = off / h->region, r1 = (off + len - 1) / h->region;
	if (r1 >= h->nregions)
		return ckpt_err_set(EINVAL, "heap offset 0x%llx is past the image",
				(unsigned long long)(off + len));
	uint32_t *words = fill_words(c->map);
	for (uint64_t r = r0; r <= r1; r++) {
		uint32_t v = __atomic_load_n(&words[r], __ATOMIC_ACQUIRE);
		if (v == FILL_DONE)
			continue;
		if (!wait && v != FILL_BAD)
			return 0;       /* the filler gets there in its order */
		if (await(c, r) < 0)
			return -1;
	}
	/* the regions' page sums, written before their words were set */
	size_t n = (size_t)(len / SUMS_PAGE) * sizeof(*sums);
	off_t at = (off_t)(c->sums_off + off / SUMS_PAGE * sizeof(*sums));
	char *b = (char *)sums;
	while (n) {
		ssize_t k = pread(c->fd, b, n, at);
		if (k <= 0)
			return ckpt_err_set(k < 0 ? errno : EIO, "cannot read the page sums of "
					"heap offset 0x%llx: %s", (unsigned long long)off,
					k < 0 ? strerror(errno) : "short read");
		b += k;
		at += k;
		n -= (size_t)k;
	}
	return 1;
}

void
fill_client_end(void *arg)
{
	struct fill_client *c = arg;
	if (!c)
		return;
	if (c->map)
		munmap(c->map, c->map_len);
	if (c->lockfd >= 0)
		close(c->lockfd);
	if (c->sock >= 0)
		close(c->sock);
	free(c);
}
