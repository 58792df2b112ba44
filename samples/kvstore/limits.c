/*
 * limits.c -- kvstore's limits on clients (see limits.h).
 *
 * Nothing here runs per request: maxclients and the descriptor limit are
 * checked when a connection arrives, the output limit where replies are
 * appended (resp.c), and the query buffer total after each read.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "limits.h"
#include "log.h"
#include "server.h"

static int reserve_fd = -1;

/* open_reserve -- hold a descriptor to give up when accept runs out of them */
static void
open_reserve(void)
{
	if (reserve_fd < 0)
		reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int
limits_init(void)
{
	struct server_options *o = &server.opt;
	rlim_t want = (rlim_t)o->maxclients + LIMITS_RESERVED_FDS;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		kv_log('#', "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return -1;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		struct rlimit nrl = rl;
		nrl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ?
			want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nrl) == 0)
			rl = nrl;
		if (rl.rlim_cur < want) {
			long fit = (long)rl.rlim_cur - LIMITS_RESERVED_FDS;
			if (fit < 1) {
				kv_log('#', "the open files limit (ulimit -n) is %llu: at least %d "
					"are needed to serve one client", (unsigned long long)rl.rlim_cur,
					LIMITS_RESERVED_FDS + 1);
				return -1;
			}
			kv_log('#', "maxclients %ld needs %llu open files but the limit "
				"(ulimit -n) is %llu: maxclients has been reduced to %ld",
				o->maxclients, (unsigned long long)want,
				(unsigned long long)rl.rlim_cur, fit);
			o->maxclients = fit;
		}
	}
	open_reserve();
	return 0;
}

void
limits_refuse(int fd, const char *msg)
{
	ssize_t n = write(fd, msg, strlen(msg));  /* a new socket's buffer is empty */
	(void)n;
	close(fd);
}

int
limits_turn_away(int lfd)
{
	static struct kv_log_limit lim;
	open_reserve();
	if (reserve_fd < 0) {
		kv_log_limited(&lim, '#', "accept: %s, and no descriptor in reserve: not "
			"accepting for a while", strerror(EMFILE));
		return -1;
	}
	close(reserve_fd);
	reserve_fd = -1;
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int err = errno;
	if (fd >= 0) {
		server.rejected_connections++;
		limits_refuse(fd, ERR_MAXCLIENTS);
		kv_log_limited(&lim, '#', "accept: out of file descriptors with %ld clients "
			"connected: refusing new connections (maxclients %ld is above what "
			"the open files limit leaves)", server.nclients, server.opt.maxclients);
	}
	open_reserve();
	if (fd >= 0)
		return 1;
	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED)
		return 0;
	kv_log_limited(&lim, '#', "accept: %s: not accepting for a while", strerror(err));
	return -1;
}

void
limits_track_query(struct client *c)
{
	size_t now = c->in.len - c->in.start;
	server.qbuf_total += now - c->qbuf_counted;     /* modular: a decrease works too */
	c->qbuf_counted = now;
}

struct client *
limits_query_victim(void)
{
	if (!server.opt.qbuf_total || server.qbuf_total <= server.opt.qbuf_total)
		return NULL;
	struct client *big = NULL;
	for (struct client *c = server.clients; c; c = c->next)
		if (!c->closing && (!big || c->qbuf_counted > big->qbuf_counted))
			big = c;
	return big;
}

void
limits_close_in_child(void)
{
	if (reserve_fd >= 0)
		close(reserve_fd);
	reserve_fd = -1;
}
