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
	int closing;            /* closed for a limit: freed after this batch of events */
	int authenticated;      /* AUTH given, or no requirepass */
	int epoll_events;       /* what the fd is registered for */
	size_t qbuf_counted;    /* its share of server.qbuf_total */
	size_t pending_idx;     /* 1 + its slot in the replies to write after the batch; 0: none */
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
	long maxclients;        /* lowered at start to what the fd limit allows */
	size_t obuf_limit;      /* client-output-buffer-limit (hard); 0: none */
	size_t qbuf_limit;      /* client-query-buffer-limit, one client */
	size_t qbuf_total;      /* client-query-buffer-total, all clients; 0: none */
	const char *requirepass;/* NULL: no AUTH needed */
	int protected_mode;     /* refuse non-loopback clients while no requirepass */
	int unixsocketperm;     /* mode of the Unix socket; -1: as the umask makes it */
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
	int accept_paused;      /* listeners out of epoll: no descriptor to accept with */
	size_t qbuf_total;      /* query buffer bytes held by all clients */
	uint64_t total_connections, total_commands;
	uint64_t rejected_connections;  /* maxclients, fd limit, protected mode */
	uint64_t qbuf_disconnections, obuf_disconnections;
	uint64_t eventloop_cycles;
	int shutdown;           /* 1: exit the loop (after a checkpoint if save) */
	int shutdown_save;
};

extern struct server server;

/* server_run -- listen, serve until shutdown; process exit status */
int server_run(void);

#endif /* KV_SERVER_H */
