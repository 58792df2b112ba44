/*
 * server.h -- kvstore's server: listening sockets (TCP and Unix), the
 * connected clients, and the single-threaded epoll event loop that reads
 * requests, runs them (commands.c) and writes replies, with a timer for
 * checkpoints and incremental rehashing.
 *
 * Owns every socket and every client's buffers.
 */
#ifndef KV_SERVER_H
#define KV_SERVER_H

#include <stdint.h>

#include "resp.h"
#include "store.h"

/* client -- one connection */
struct client {
	int fd;
	struct resp_in in;
	struct resp_out out;
	int close_after_reply;  /* QUIT, protocol error */
	int epoll_events;       /* what the fd is registered for */
	struct client *prev, *next;
};

/* server_options -- the command line */
struct server_options {
	const char *pool;
	const char *bind;
	int port;               /* 0: no TCP */
	const char *unixsocket; /* NULL: none */
	int checkpoint_every;   /* seconds; 0: only on SAVE/BGSAVE */
	size_t heap_size;
};

/* server -- the one server of the process */
struct server {
	struct server_options opt;
	struct store store;
	int epfd;
	int tcp_fd, unix_fd;    /* -1: not listening */
	struct client *clients;
	long nclients;
	int64_t start_us;
	int64_t last_cron_ckpt_us;
	uint64_t total_connections, total_commands;
	int shutdown;           /* 1: exit the loop (after a checkpoint if save) */
	int shutdown_save;
};

extern struct server server;

/* server_run -- listen, serve until shutdown; process exit status */
int server_run(void);

#endif /* KV_SERVER_H */
