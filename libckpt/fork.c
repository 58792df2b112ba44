/*
 * fork.c -- what happens to open pools across fork(), and the fork modes.
 *
 * Registry of open pools (for the pthread_atfork handlers) and resolution of
 * the configured mode against CKPT_FORK_MODE and the filesystem.
 */
#include <errno.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "pool.h"

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ckpt_pool *registry;

int
fork_register(struct ckpt_pool *p)
{
	pthread_mutex_lock(&registry_mu);
	p->next = registry;
	registry = p;
	pthread_mutex_unlock(&registry_mu);
	return 0;
}

void
fork_unregister(struct ckpt_pool *p)
{
	pthread_mutex_lock(&registry_mu);
	for (struct ckpt_pool **pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_mu);
}

/* clone_supported -- 1 if the pool's filesystem implements FICLONERANGE */
static int
clone_supported(int fd, uint64_t file_size)
{
	/* a zero-length clone at EOF copies nothing but is refused with
	 * EOPNOTSUPP/EXDEV/EINVAL by filesystems without reflink */
	struct file_clone_range r = {
		.src_fd = fd, .src_offset = file_size, .src_length = 0,
		.dest_offset = file_size,
	};
	return ioctl(fd, FICLONERANGE, &r) == 0;
}

/* parse_mode -- CKPT_FORK_MODE value to enum; -1 if unknown */
static int
parse_mode(const char *s)
{
	static const char *names[] = { "auto", "copy", "reflink", "cow", "shared" };
	for (int i = 0; i < 5; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

int
fork_mode_resolve(struct ckpt_pool *p, enum ckpt_fork_mode mode)
{
	const char *env = getenv("CKPT_FORK_MODE");
	if (env && *env) {
		int m = parse_mode(env);
		if (m < 0)
			return ckpt_err_set(EINVAL,
				"CKPT_FORK_MODE=%s: expected auto, copy, reflink, cow or shared", env);
		mode = (enum ckpt_fork_mode)m;
	}
	int can_clone = clone_supported(p->fd, p->hdr.file_size);
	if (mode == CKPT_FORK_REFLINK && !can_clone)
		return ckpt_err_set(ENOTSUP,
			"fork mode reflink: the filesystem of %s cannot clone file ranges",
			p->path);
	if (mode == CKPT_FORK_COW)
		return ckpt_err_set(ENOTSUP, "fork mode cow is not implemented yet");
	if (mode == CKPT_FORK_AUTO)
		mode = can_clone ? CKPT_FORK_REFLINK : CKPT_FORK_COPY;
	p->fork_mode = mode;
	return 0;
}
