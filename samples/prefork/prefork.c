/*
 * prefork -- a pre-forking server (Apache prefork / Unicorn style) whose
 * workers each keep their own durable heap.
 *
 * The parent opens the pool (restarting from its latest checkpoint, or
 * creating it), records the start in its heap, checkpoints, listens, and
 * forks K workers. fork() gives each worker its own segment of the pool: a
 * copy of the parent's heap at the same address, durable and private. Each
 * worker keeps its statistics there (requests served, bytes, the last few
 * requests in a ring), serves line requests on the shared listening socket,
 * and checkpoints its heap every --checkpoint-every requests ("worker W
 * tick") and when it is told to stop ("worker W final"). Afterwards `ckpt-inspect list POOL` shows every worker's
 * segment under the parent's, and `prefork --pool POOL --show ID` (or
 * `ckpt-inspect heap/dump`) reads a worker's checkpointed heap.
 *
 *   prefork --pool PATH (--port N | --unixsocket PATH) [--workers K]
 *           [--checkpoint-every REQUESTS]
 *   prefork --pool PATH --show CHECKPOINT_ID
 *
 * A restart opens the newest checkpoint: the parent's own ("parent final")
 * after a clean stop, or, after a crash, perhaps a worker's, whose heap holds
 * the parent's state as of its fork (the parent takes that and frees the
 * worker's block).
 *
 * Protocol: one line in, one line out: "worker W pid P request N: LINE".
 * SIGTERM/SIGINT to the parent stops the workers (each checkpoints, labelled
 * "worker W final") and then the parent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libckpt.h>

#define PARENT_MAGIC "prefork-parent"
#define WORKER_MAGIC "prefork-worker"
#define LOG_ENTRIES 8
#define MAX_WORKERS 16

/* pf_parent -- the parent's root: how often the server was started */
struct pf_parent {
	char magic[16];         /* PARENT_MAGIC */
	uint64_t starts;
	int64_t last_start;     /* unix time */
};

/* pf_log -- one request remembered */
struct pf_log {
	int64_t when;           /* unix time */
	uint64_t seq;           /* request number */
	char text[48];          /* its first bytes */
};

/* pf_worker -- a worker's root, in the worker's own heap */
struct pf_worker {
	char magic[16];         /* WORKER_MAGIC */
	struct pf_parent *parent;   /* the parent's root, copied into this heap by fork */
	int32_t index;
	int32_t pid;
	uint64_t requests;
	uint64_t bytes;
	uint64_t checkpoints;
	struct pf_log log[LOG_ENTRIES];     /* ring: request n is in log[n % LOG_ENTRIES] */
};

static volatile sig_atomic_t stop;

static void
on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void
die(const char *what)
{
	fprintf(stderr, "prefork[%d]: %s: %s\n", (int)getpid(), what, ckpt_errormsg());
	exit(1);
}

/* listen_on -- the shared listening socket: TCP on 127.0.0.1:port or Unix path */
static int
listen_on(int port, const char *path)
{
	int fd;
	if (path) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (strlen(path) >= sizeof(sa.sun_path))
			return -1;
		strcpy(sa.sun_path, path);
		unlink(path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return -1;
	} else {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int one = 1;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return -1;
	}
	return listen(fd, 128) < 0 ? -1 : fd;
}

/* worker_checkpoint -- checkpoint this worker's heap */
static void
worker_checkpoint(ckpt_pool *pool, struct pf_worker *w, const char *why)
{
	char label[32];         /* "worker 15 final": fits ckpt-inspect list's column */
	snprintf(label, sizeof(label), "worker %d %s", w->index, why);
	w->checkpoints++;
	ckpt_id id;
	if (ckpt_checkpoint(pool, label, &id) < 0)
		fprintf(stderr, "prefork worker %d: checkpoint: %s\n", w->index, ckpt_errormsg());
	else
		fprintf(stderr, "prefork worker %d (pid %d): checkpoint %llu \"%s\", %llu requests\n",
			w->index, (int)getpid(), (unsigned long long)id, label,
			(unsigned long long)w->requests);
}

/* serve -- answer one connection, line by line, until it closes */
static void
serve(ckpt_pool *pool, struct pf_worker *w, int fd, unsigned every)
{
	FILE *in = fdopen(fd, "r");
	if (!in) {
		close(fd);
		return;
	}
	char line[1024];
	while (!stop && fgets(line, sizeof(line), in)) {
		size_t n = strcspn(line, "\r\n");
		line[n] = '\0';
		uint64_t seq = ++w->requests;
		w->bytes += n;
		struct pf_log *l = &w->log[seq % LOG_ENTRIES];
		l->when = time(NULL);
		l->seq = seq;
		snprintf(l->text, sizeof(l->text), "%.47s", line);
		char reply[1200];
		int k = snprintf(reply, sizeof(reply), "worker %d pid %d request %llu: %s\n",
				w->index, (int)getpid(), (unsigned long long)seq, line);
		if (write(fd, reply, (size_t)k) != k)
			break;
		if (every && seq % every == 0)
			worker_checkpoint(pool, w, "tick");
	}
	fclose(in);
}

/* worker_main -- a worker: its own heap (fork gave it a segment), serve, checkpoint */
static void __attribute__((noreturn))
worker_main(ckpt_pool *pool, int lfd, int index, unsigned every)
{
	struct sigaction sa = { .sa_handler = on_stop };   /* no SA_RESTART: accept returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	struct pf_worker *w = ckpt_calloc(pool, 1, sizeof(*w));
	if (!w)
		die("worker heap");
	memcpy(w->magic, WORKER_MAGIC, sizeof(WORKER_MAGIC));
	w->parent = ckpt_root(pool);    /* the parent's root, at the same address */
	w->index = index;
	w->pid = (int32_t)getpid();
	if (ckpt_set_root(pool, w) < 0)
		die("worker root");
	worker_checkpoint(pool, w, "start");
	while (!stop) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		serve(pool, w, fd, every);
	}
	worker_checkpoint(pool, w, "final");
	if (ckpt_close(pool) < 0)
		die("worker close");
	_exit(0);
}

/* show -- print the worker (or parent) kept in checkpoint id */
static int
show(const char *path, ckpt_id id)
{
	ckpt_pool *pool = ckpt_open(path, id, NULL);
	if (!pool)
		die("open");
	const char *magic = ckpt_root(pool);
	if (magic && strcmp(magic, WORKER_MAGIC) == 0) {
		const struct pf_worker *w = (const void *)magic;
		printf("worker %d pid %d: %llu requests, %llu bytes, %llu checkpoints; "
			"parent started %llu times\n", w->index, w->pid,
			(unsigned long long)w->requests, (unsigned long long)w->bytes,
			(unsigned long long)w->checkpoints,
			(unsigned long long)(w->parent ? w->parent->starts : 0));
		uint64_t first = w->requests > LOG_ENTRIES ? w->requests - LOG_ENTRIES + 1 : 1;
		for (uint64_t s = first; s <= w->requests; s++) {
			const struct pf_log *l = &w->log[s % LOG_ENTRIES];
			printf("  request %llu: %s\n", (unsigned long long)l->seq, l->text);
		}
	} else if (magic && strcmp(magic, PARENT_MAGIC) == 0) {
		const struct pf_parent *p = (const void *)magic;
		printf("parent: started %llu times\n", (unsigned long long)p->starts);
	} else {
		printf("checkpoint %llu holds no prefork heap\n", (unsigned long long)id);
	}
	return ckpt_close(pool) < 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pool", required_argument, NULL, 'p' },
		{ "port", required_argument, NULL, 'P' },
		{ "unixsocket", required_argument, NULL, 'u' },
		{ "workers", required_argument, NULL, 'w' },
		{ "checkpoint-every", required_argument, NULL, 'c' },
		{ "show", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *sock = NULL;
	int port = 0, nworkers = 3, ch;
	unsigned every = 100;
	unsigned long long show_id = 0;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p': path = optarg; break;
		case 'P': port = atoi(optarg); break;
		case 'u': sock = optarg; break;
		case 'w': nworkers = atoi(optarg); break;
		case 'c': every = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': show_id = strtoull(optarg, NULL, 10); break;
		default: goto usage;
		}
	}
	if (!path || optind != argc)
		goto usage;
	if (show_id)
		return show(path, show_id);
	if ((!sock && (port <= 0 || port > 65535)) || nworkers < 1 || nworkers > MAX_WORKERS)
		goto usage;

	/* the parent: restart or create, count the start, checkpoint */
	struct ckpt_config cfg = { .heap_size = 16 << 20, .max_segments = 64,
		.keep_checkpoints = 2 };
	ckpt_pool *pool = ckpt_open(path, CKPT_LATEST, &cfg);
	if (!pool && errno == ENOENT && access(path, F_OK) < 0)
		pool = ckpt_create(path, &cfg);
	if (!pool)
		die(path);
	struct pf_parent *p = ckpt_root(pool);
	if (p && strcmp(p->magic, WORKER_MAGIC) == 0) {
		/* the newest checkpoint is a worker's (the server was killed):
		 * its heap began as a copy of ours, so our root is in it too */
		struct pf_worker *w = (struct pf_worker *)p;
		p = w->parent;
		ckpt_free(pool, w);
		if (ckpt_set_root(pool, p) < 0)
			die("parent root");
		fprintf(stderr, "prefork: restarted from worker %d's checkpoint\n", w->index);
	}
	if (!p) {
		p = ckpt_calloc(pool, 1, sizeof(*p));
		if (!p || ckpt_set_root(pool, p) < 0)
			die("parent root");
		memcpy(p->magic, PARENT_MAGIC, sizeof(PARENT_MAGIC));
	} else if (strcmp(p->magic, PARENT_MAGIC) != 0) {
		fprintf(stderr, "prefork: %s does not hold a prefork heap\n", path);
		return 1;
	}
	p->starts++;
	p->last_start = time(NULL);
	if (ckpt_checkpoint(pool, "parent", NULL) < 0)
		die("parent checkpoint");

	int lfd = listen_on(port, sock);
	if (lfd < 0) {
		perror("prefork: listen");
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	pid_t pids[MAX_WORKERS];
	for (int i = 0; i < nworkers; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("prefork: fork");
			return 1;
		}
		if (pids[i] == 0)
			worker_main(pool, lfd, i, every);
	}
	fprintf(stderr, "prefork: parent pid %d, %d workers, started %llu times; ready\n",
		(int)getpid(), nworkers, (unsigned long long)p->starts);

	/* supervise: respawn a worker that dies, until told to stop */
	while (!stop) {
		int st;
		pid_t dead = wait(&st);
		if (dead < 0)
			continue;       /* EINTR: a signal */
		for (int i = 0; i < nworkers; i++) {
			if (pids[i] != dead || stop)
				continue;
			fprintf(stderr, "prefork: worker %d (pid %d) died, starting another\n",
				i, (int)dead);
			pids[i] = fork();
			if (pids[i] == 0)
				worker_main(pool, lfd, i, every);
		}
	}
	for (int i = 0; i < nworkers; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (int i = 0; i < nworkers; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
	close(lfd);
	if (sock)
		unlink(sock);
	/* the newest checkpoint is then the parent's: the next start finds it */
	if (ckpt_checkpoint(pool, "parent final", NULL) < 0)
		die("parent checkpoint");
	if (ckpt_close(pool) < 0)
		die("close");
	fprintf(stderr, "prefork: stopped\n");
	return 0;

usage:
	fprintf(stderr,
		"usage: prefork --pool PATH (--port N | --unixsocket PATH) [--workers K]\n"
		"               [--checkpoint-every REQUESTS]\n"
		"       prefork --pool PATH --show CHECKPOINT_ID\n");
	return 2;
}
