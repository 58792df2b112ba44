/*
 * hello -- the smallest libckpt program: keep a linked list in a pool,
 * checkpoint it, and find it again in a later run.
 *
 *   hello POOL          first run: create the pool, build the list, checkpoint
 *   hello POOL          later runs: restart from the latest checkpoint, walk
 *                       the list (raw pointers, still valid), add a node,
 *                       checkpoint again
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libckpt.h>

struct node {
	struct node *next;
	int run;
	char text[48];
};

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: hello POOL\n");
		return 2;
	}
	struct ckpt_config cfg = { .heap_size = 64 << 20, .max_segments = 16 };
	ckpt_pool *pool = ckpt_open(argv[1], CKPT_LATEST, NULL);
	if (!pool && errno == ENOENT) {
		pool = ckpt_create(argv[1], &cfg);
		if (pool)
			printf("created pool %s\n", argv[1]);
	} else if (pool) {
		printf("restarted from the latest checkpoint of %s\n", argv[1]);
	}
	if (!pool) {
		fprintf(stderr, "hello: %s\n", ckpt_errormsg());
		return 1;
	}

	/* the root is where the program finds its data again */
	struct node *head = ckpt_root(pool);
	int runs = 0;
	for (struct node *n = head; n; n = n->next) {
		printf("  node at %p from run %d: %s\n", (void *)n, n->run, n->text);
		runs++;
	}
	struct node *n = ckpt_alloc(pool, sizeof(*n));
	if (!n) {
		fprintf(stderr, "hello: %s\n", ckpt_errormsg());
		return 1;
	}
	n->next = head;
	n->run = runs + 1;
	snprintf(n->text, sizeof(n->text), "hello from run %d", runs + 1);
	ckpt_set_root(pool, n);

	ckpt_id id;
	char label[32];
	snprintf(label, sizeof(label), "run %d", runs + 1);
	if (ckpt_checkpoint(pool, label, &id) < 0) {
		fprintf(stderr, "hello: %s\n", ckpt_errormsg());
		return 1;
	}
	printf("checkpoint %llu taken (\"%s\"), list has %d nodes\n",
		(unsigned long long)id, label, runs + 1);
	return ckpt_close(pool) < 0;
}
