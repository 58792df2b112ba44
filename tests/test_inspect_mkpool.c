/*
 * test_inspect_mkpool -- makes real pools for the ckpt-inspect tests, with
 * the public API only.
 *
 *   test_inspect_mkpool PATH basic
 *       a pool (4 MiB heaps, 8 segments) with a root, blocks of many sizes,
 *       some freed, checkpoints "first" and "second", a forked child that
 *       took checkpoint "child"; the process exits without ckpt_close, so its
 *       segment (and the child's) are dead heaps.
 *   test_inspect_mkpool PATH service SECONDS
 *       a pool used like a service: allocs, frees, checkpoints and short-lived
 *       forked children that checkpoint too, until SECONDS have passed; prints
 *       "ready" on stdout once the first checkpoint exists. Exit 0 unless the
 *       library failed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libckpt.h"

static void
die(const char *what)
{
	fprintf(stderr, "test_inspect_mkpool: %s: %s\n", what, ckpt_errormsg());
	exit(3);
}

struct node {
	struct node *next;
	size_t len;
	unsigned char data[];
};

static struct node *
push(ckpt_pool *p, struct node *head, size_t len, unsigned char fill)
{
	struct node *n = ckpt_alloc(p, sizeof(*n) + len);
	if (!n)
		return NULL;
	n->next = head;
	n->len = len;
	memset(n->data, fill, len);
	return n;
}

static int
basic(const char *path)
{
	struct ckpt_config cfg = { .heap_size = 4u << 20, .max_segments = 8,
		.fork_mode = CKPT_FORK_COPY };
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p)
		die("create");
	struct node *head = NULL;
	static const size_t sizes[] = { 1, 16, 24, 100, 500, 4000, 20000, 100000 };
	for (int i = 0; i < 64; i++) {
		struct node *n = push(p, head, sizes[i % 8], (unsigned char)('A' + i % 26));
		if (!n)
			die("alloc");
		head = n;
	}
	if (ckpt_set_root(p, head) < 0)
		die("set_root");
	char *hello = ckpt_alloc(p, 64);
	if (!hello)
		die("alloc");
	strcpy(hello, "hello from ckpt-inspect's test pool");
	if (ckpt_checkpoint(p, "first", NULL) < 0)
		die("checkpoint");
	/* free every other block: holes in the heap */
	struct node *n = head;
	while (n && n->next) {
		struct node *victim = n->next;
		n->next = victim->next;
		ckpt_free(p, victim);
		n = n->next;
	}
	if (ckpt_checkpoint(p, "second", NULL) < 0)
		die("checkpoint");
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		if (!push(p, head, 1000, 'C'))
			_exit(3);
		_exit(ckpt_checkpoint(p, "child", NULL) < 0 ? 3 : 0);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "test_inspect_mkpool: child failed\n");
		return 3;
	}
	printf("%s\n", hello);
	return 0;   /* no ckpt_close: our heap stays as a dead segment */
}

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
service(const char *path, double seconds)
{
	struct ckpt_config cfg = { .heap_size = 8u << 20, .max_segments = 12,
		.keep_checkpoints = 2, .fork_mode = CKPT_FORK_COPY };
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p)
		die("create");
	void *slots[256] = { 0 };
	unsigned seed = 12345;
	double end = now() + seconds;
	int ready = 0;
	unsigned long iter = 0;
	while (now() < end) {
		for (int k = 0; k < 200; k++) {
			unsigned i = rand_r(&seed) % 256;
			if (slots[i]) {
				ckpt_free(p, slots[i]);
				slots[i] = NULL;
			} else {
				size_t sz = 1 + rand_r(&seed) % (rand_r(&seed) % 8 == 0 ? 60000 : 300);
				slots[i] = ckpt_alloc(p, sz);
				if (slots[i])
					memset(slots[i], (int)i, sz);
			}
		}
		ckpt_set_root(p, slots[0]);
		if (ckpt_checkpoint(p, "svc", NULL) < 0 && errno != ENOSPC)
			die("checkpoint");
		if (!ready) {
			printf("ready\n");
			fflush(stdout);
			ready = 1;
		}
		if (++iter % 4 == 0) {
			pid_t pid = fork();
			if (pid == 0) {
				void *x = ckpt_alloc(p, 1000);
				if (x)
					memset(x, 7, 1000);
				if (ckpt_checkpoint(p, "child", NULL) < 0 && errno != ENOSPC)
					_exit(3);
				_exit(iter % 8 == 0 ? 0 : (ckpt_close(p), 0));
			}
			if (pid > 0) {
				int st;
				waitpid(pid, &st, 0);
				if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
					fprintf(stderr, "test_inspect_mkpool: child failed (%d)\n", st);
					return 3;
				}
			} else if (errno != ENOSPC) {
				die("fork");
			}
		}
	}
	if (ckpt_close(p) < 0)
		die("close");
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[2], "basic") == 0)
		return basic(argv[1]);
	if (argc == 4 && strcmp(argv[2], "service") == 0)
		return service(argv[1], atof(argv[3]));
	fprintf(stderr, "usage: test_inspect_mkpool PATH basic | PATH service SECONDS\n");
	return 2;
}
