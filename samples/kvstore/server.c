/*
 * server.c -- kvstore's event loop (see server.h): non-blocking sockets,
 * one epoll set, one thread.
 *
 * A readable client is read once, every complete request in its buffer is
 * run, and its replies are written once every ready client of the epoll
 * batch has been read and run (pipelined requests are answered with one
 * write, and the clients get their replies in one burst, as Redis writes
 * them before it sleeps). A client whose replies pile up (it sends but does not
 * read) is not read from until they drain: memory stays bounded. Every
 * 100 ms the timer collects a finished BGSAVE, starts the periodic
 * checkpoint, and spends a millisecond on incremental rehashing.
 *
 * Who may connect and how much a client may hold are limits.c's and
 * auth.c's rules; this file applies them where connections arrive, where
 * requests are read and where replies are written. A client closed for a
 * limit while other events of the same epoll_wait may name it is only
 * marked closing, and freed once the batch is done.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth.h"
#include "commands.h"
#include "limits.h"
#include "log.h"
#include "server.h"

#define READ_CHUNK   (64 << 10)      /* bytes asked of one read() */
#define OUT_PAUSE    (1 << 20)       /* stop running a client's requests past this backlog */
#define CRON_MS      100

struct server server;

/* markers in epoll data for the listening sockets */
static char tcp_marker, unix_marker;

static volatile sig_atomic_t got_signal;

static long nclosing;           /* clients marked closing, to free after the batch */

/* the clients whose replies are written after the batch (NULL: freed since) */
static struct client **pending;
static size_t npending, pending_cap;

static void
on_signal(int sig)
{
	got_signal = sig;
}

/* listen_tcp -- a listening TCP socket on bind:port, or -1 (logged) */
static int
listen_tcp(const char *bind_addr, int port)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
		kv_log('#', "--bind %s: not an IPv4 address", bind_addr);
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 511) < 0) {
		kv_log('#', "cannot listen on %s:%d: %s", bind_addr, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/*
 * listen_unix -- a listening Unix socket at path (replacing a stale one),
 * with mode perm (-1: as the umask makes it), or -1. The socket is made
 * with mode 0 and then given perm, so no client connects in between.
 */
static int
listen_unix(const char *path, int perm)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		kv_log('#', "--unixsocket %s: path too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	mode_t old = perm >= 0 ? umask(0777) : 0;
	int bound = fd >= 0 ? bind(fd, (struct sockaddr *)&sa, sizeof(sa)) : -1;
	if (perm >= 0)
		umask(old);
	if (fd < 0 || bound < 0 || (perm >= 0 && chmod(path, (mode_t)perm) < 0) ||
	    listen(fd, 511) < 0) {
		kv_log('#', "cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* watch -- (re)register a client's fd for events */
static void
watch(struct client *c, int events)
{
	if (events == c->epoll_events)
		return;
	struct epoll_event ev = { .events = (uint32_t)events, .data.ptr = c };
	epoll_ctl(server.epfd, c->epoll_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
	c->epoll_events = events;
}

/* listeners_watch -- put the listening sockets in the epoll set (on) or take them out */
static void
listeners_watch(int on)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int op = on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL;
	if (server.tcp_fd >= 0) {
		ev.data.ptr = &tcp_marker;
		epoll_ctl(server.epfd, op, server.tcp_fd, &ev);
	}
	if (server.unix_fd >= 0) {
		ev.data.ptr = &unix_marker;
		epoll_ctl(server.epfd, op, server.unix_fd, &ev);
	}
	server.accept_paused = !on;
}

static void
client_free(struct client *c)
{
	epoll_ctl(server.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		server.clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	server.nclients--;
	server.qbuf_total -= c->qbuf_counted;
	if (c->pending_idx)
		pending[c->pending_idx - 1] = NULL;
	resp_in_free(&c->in);
	resp_out_free(&c->out);
	free(c);
	if (server.accept_paused)       /* a descriptor is free again */
		listeners_watch(1);
}

/*
 * client_close_soon -- close c for a limit: tell it why (best effort), drop
 * its buffers and its events now, free it after this batch of events
 */
static void
client_close_soon(struct client *c, const char *msg)
{
	if (c->closing)
		return;
	ssize_t n = write(c->fd, msg, strlen(msg));
	(void)n;
	epoll_ctl(server.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	shutdown(c->fd, SHUT_RDWR);
	resp_in_free(&c->in);
	resp_out_free(&c->out);
	limits_track_query(c);
	c->closing = 1;
	nclosing++;
}

/* free_closing -- free the clients closed for a limit during the last batch */
static void
free_closing(void)
{
	if (!nclosing)
		return;
	nclosing = 0;
	struct client *next;
	for (struct client *c = server.clients; c; c = next) {
		next = c->next;
		if (c->closing)
			client_free(c);
	}
}

/*
 * enforce_query_total -- close the clients with the largest query buffers
 * while all of them hold more than client-query-buffer-total
 */
static void
enforce_query_total(void)
{
	static struct kv_log_limit lim;
	struct client *v;
	while ((v = limits_query_victim())) {
		kv_log_limited(&lim, '#', "query buffers of all clients hold %zu bytes, over "
			"client-query-buffer-total %zu: closing client %d, which holds %zu",
			server.qbuf_total, server.opt.qbuf_total, v->fd, v->qbuf_counted);
		server.qbuf_disconnections++;
		client_close_soon(v, "-ERR client-query-buffer-total reached: closing the "
			"client with the largest query buffer\r\n");
	}
}

/*
 * admit -- a connection was accepted: refuse it (maxclients, protected
 * mode) or make it a client
 */
static void
admit(int fd, int tcp, const struct sockaddr *peer, socklen_t peerlen)
{
	static struct kv_log_limit full, denied;
	if (server.nclients >= server.opt.maxclients) {
		server.rejected_connections++;
		kv_log_limited(&full, '#', "max number of clients reached (%ld): refusing "
			"new connections", server.opt.maxclients);
		limits_refuse(fd, ERR_MAXCLIENTS);
		return;
	}
	if (tcp && auth_peer_denied(peer, peerlen)) {
		server.rejected_connections++;
		kv_log_limited(&denied, '#', "protected mode: refused a client from outside "
			"the loopback interface (no --requirepass is set)");
		limits_refuse(fd, auth_denied_message());
		return;
	}
	if (tcp) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	struct client *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->in.bulklen = -1;
	c->out.limit = server.opt.obuf_limit;
	c->authenticated = server.opt.requirepass == NULL;
	c->next = server.clients;
	if (c->next)
		c->next->prev = c;
	server.clients = c;
	server.nclients++;
	server.total_connections++;
	watch(c, EPOLLIN);
}

/*
 * accept_clients -- take every pending connection of a listening socket;
 * out of descriptors, turn the pending ones away, or stop watching the
 * listeners until a descriptor is free (client_free, cron)
 */
static void
accept_clients(int lfd, int tcp)
{
	static struct kv_log_limit lim;
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t peerlen = sizeof(peer);
		int fd = accept4(lfd, (struct sockaddr *)&peer, &peerlen,
				SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			admit(fd, tcp, (struct sockaddr *)&peer, peerlen);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE) {
			int r = limits_turn_away(lfd);
			if (r > 0)
				continue;
			if (r < 0)
				listeners_watch(0);
			return;
		}
		/* ENOBUFS, ENOMEM, ...: wait for the next tick rather than spin */
		kv_log_limited(&lim, '#', "accept: %s: not accepting for a while",
			strerror(errno));
		listeners_watch(0);
		return;
	}
}

/*
 * client_write -- write what is pending; 0, or -1 if the client was freed
 * (write error, its last reply is out and it is to be closed, or its
 * replies passed client-output-buffer-limit)
 */
static int
client_write(struct client *c)
{
	if (c->out.over) {     /* no truncated reply: close at once */
		static struct kv_log_limit lim;
		server.obuf_disconnections++;
		kv_log_limited(&lim, '#', "client %d closed for overcoming of output buffer "
			"limits (client-output-buffer-limit %zu)", c->fd, c->out.limit);
		client_free(c);
		return -1;
	}
	while (resp_pending(&c->out)) {
		ssize_t n = write(c->fd, c->out.buf + c->out.sent, resp_pending(&c->out));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			client_free(c);
			return -1;
		}
		c->out.sent += (size_t)n;
	}
	if (!resp_pending(&c->out)) {
		c->out.len = c->out.sent = 0;
		if (c->close_after_reply) {
			client_free(c);
			return -1;
		}
	}
	if (c->out.oom) {
		kv_log('#', "client %d: out of memory for replies, closing it", c->fd);
		client_free(c);
		return -1;
	}
	return 0;
}

/*
 * client_flush -- write what is pending, then watch for what comes next;
 * 0, or -1 if the client was freed
 */
static int
client_flush(struct client *c)
{
	if (client_write(c) < 0)
		return -1;
	/* read more only when replies are flowing; wait for writability if not */
	int ev = 0;
	if (!c->close_after_reply && resp_pending(&c->out) < OUT_PAUSE)
		ev |= EPOLLIN;
	if (resp_pending(&c->out))
		ev |= EPOLLOUT;
	watch(c, ev);
	return 0;
}

/* flush_pending -- write the replies of the clients run in the last batch */
static void
flush_pending(void)
{
	for (size_t i = 0; i < npending; i++) {
		struct client *c = pending[i];
		if (!c)
			continue;
		c->pending_idx = 0;
		if (!c->closing)
			client_flush(c);
	}
	npending = 0;
}

/*
 * client_process -- run the complete requests in the buffer (until the
 * reply backlog is too large); the replies are written after the batch
 * (flush_pending). 0, or -1 if the client was freed
 */
static int
client_process(struct client *c)
{
	while (!c->close_after_reply && resp_pending(&c->out) < OUT_PAUSE) {
		const char *err;
		enum resp_status st = resp_parse(&c->in, &err);
		if (st == RESP_NEED_MORE)
			break;
		if (st == RESP_ERROR) {
			resp_error(&c->out, "ERR %s", err);
			c->close_after_reply = 1;
			break;
		}
		command_run(c);
		resp_consume(&c->in);
		if (resp_out_failed(&c->out))
			break;
	}
	limits_track_query(c);
	if (c->pending_idx)
		return 0;
	if (npending == pending_cap) {
		size_t cap = pending_cap ? pending_cap * 2 : 256;
		struct client **p = realloc(pending, cap * sizeof(*p));
		if (!p)                 /* no room to defer: write now */
			return client_flush(c);
		pending = p;
		pending_cap = cap;
	}
	pending[npending++] = c;
	c->pending_idx = npending;
	return 0;
}

/* client_read -- one read(), then run what it completed */
static void
client_read(struct client *c)
{
	if (c->closing)
		return;
	if (resp_read_space(&c->in, READ_CHUNK) < 0) {
		kv_log('#', "client %d: out of memory for its requests, closing it", c->fd);
		client_free(c);
		return;
	}
	/* at most one byte past client-query-buffer-limit (it held at most the limit) */
	size_t want = c->in.cap - c->in.len;
	size_t room = server.opt.qbuf_limit - (c->in.len - c->in.start) + 1;
	ssize_t n = read(c->fd, c->in.buf + c->in.len, want < room ? want : room);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {           /* EOF or error */
		client_free(c);
		return;
	}
	c->in.len += (size_t)n;
	if (c->in.len - c->in.start > server.opt.qbuf_limit) {
		static struct kv_log_limit lim;
		server.qbuf_disconnections++;
		kv_log_limited(&lim, '#', "client %d closed: its query buffer passed "
			"client-query-buffer-limit %zu", c->fd, server.opt.qbuf_limit);
		client_close_soon(c, "-ERR Protocol error: query buffer limit exceeded\r\n");
		return;
	}
	limits_track_query(c);
	enforce_query_total();
	if (!c->closing)
		client_process(c);
}

/* cron -- the timer: BGSAVE collection, periodic checkpoints, rehashing */
static void
cron(void)
{
	struct store *st = &server.store;
	store_poll(st);
	int64_t now = now_us();
	if (server.opt.checkpoint_every > 0 && !st->bg_pid && st->dirty > 0 &&
	    now - server.last_cron_ckpt_us >= (int64_t)server.opt.checkpoint_every * 1000000) {
		server.last_cron_ckpt_us = now;
		store_bgsave(st, "periodic");
	}
	if (dict_is_rehashing(&st->root->dict))
		dict_rehash_ms(st->pool, &st->root->dict, 1);
	if (server.accept_paused)       /* try again: at most once a tick */
		listeners_watch(1);
}

/*
 * close_fds_in_child -- pthread_atfork child handler: the BGSAVE child
 * needs no socket; dropping them at once means a restarted server can bind
 * its port even while an old BGSAVE child is still finishing. Likewise the
 * pool's lock: a child outliving its server must not keep the pool locked.
 */
static void
close_fds_in_child(void)
{
	store_close_lock_in_child(&server.store);      /* first: see test_kvstore_auth */
	limits_close_in_child();
	if (server.tcp_fd >= 0)
		close(server.tcp_fd);
	if (server.unix_fd >= 0)
		close(server.unix_fd);
	for (struct client *c = server.clients; c; c = c->next)
		close(c->fd);
	close(server.epfd);
}

int
server_run(void)
{
	server.start_us = now_us();
	server.last_cron_ckpt_us = server.start_us;
	server.tcp_fd = server.unix_fd = -1;
	if (limits_init() < 0)
		return 1;
	server.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (server.epfd < 0) {
		kv_log('#', "epoll_create1: %s", strerror(errno));
		return 1;
	}
	if (server.opt.port > 0 &&
	    (server.tcp_fd = listen_tcp(server.opt.bind, server.opt.port)) < 0)
		return 1;
	if (server.opt.unixsocket && (server.unix_fd = listen_unix(server.opt.unixsocket,
			server.opt.unixsocketperm)) < 0)
		return 1;
	if (server.tcp_fd < 0 && server.unix_fd < 0) {
		kv_log('#', "nothing to listen on: give --port or --unixsocket");
		return 1;
	}
	listeners_watch(1);
	pthread_atfork(NULL, NULL, close_fds_in_child);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (server.tcp_fd >= 0)
		kv_log('*', "ready to accept connections tcp %s:%d", server.opt.bind,
			server.opt.port);
	if (server.unix_fd >= 0)
		kv_log('*', "ready to accept connections unix %s", server.opt.unixsocket);
	if (server.tcp_fd >= 0 && server.opt.protected_mode && !server.opt.requirepass &&
	    strncmp(server.opt.bind, "127.", 4) != 0)
		kv_log('#', "protected mode: no --requirepass is set, so only clients on the "
			"loopback interface are served although %s is bound", server.opt.bind);

	int64_t next_cron = now_us() + CRON_MS * 1000;
	struct epoll_event events[256];
	while (!server.shutdown) {
		int64_t wait_us = next_cron - now_us();
		int n = epoll_wait(server.epfd, events, 256,
				wait_us > 0 ? (int)(wait_us / 1000) + 1 : 0);
		server.eventloop_cycles++;
		if (got_signal) {
			kv_log('#', "received %s, shutting down", got_signal == SIGINT ?
				"SIGINT" : "SIGTERM");
			server.shutdown = 1;
			server.shutdown_save = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;
			if (p == &tcp_marker || p == &unix_marker) {
				accept_clients(p == &tcp_marker ? server.tcp_fd : server.unix_fd,
					p == &tcp_marker);
				continue;
			}
			struct client *c = p;
			/* a client freed earlier in this batch is not in events again:
			 * each fd appears once per epoll_wait, and clients closed
			 * for another's sake are only freed after the batch */
			if (c->closing)
				continue;
			if (events[i].events & EPOLLOUT) {
				if (client_write(c) < 0)
					continue;
				if (!resp_pending(&c->out)) {   /* drained: run what waits */
					if (client_process(c) < 0)
						continue;
				}
			}
			if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				client_read(c);
		}
		flush_pending();
		free_closing();
		if (now_us() >= next_cron) {
			cron();
			next_cron = now_us() + CRON_MS * 1000;
		}
	}

	while (server.clients)
		client_free(server.clients);
	if (server.shutdown_save)
		store_save(&server.store, "shutdown");
	if (server.unix_fd >= 0)
		unlink(server.opt.unixsocket);
	kv_log('*', "kvstore is now ready to exit, bye bye...");
	return 0;
}
