/*
 * app.c -- a tiny program built against the INSTALLED libckpt by
 * tests/test_install.sh (pkg-config, CMake find_package, static): create a
 * pool, allocate, checkpoint, restart from the checkpoint, check the data.
 * Usage: app POOL_PATH; prints "ok <id>" and exits 0 on success.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libckpt.h>

static int
die(const char *what)
{
	fprintf(stderr, "app: %s: %s (errno %d)\n", what, ckpt_errormsg(), errno);
	return 1;
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: app POOL_PATH\n");
		return 2;
	}
	struct ckpt_config cfg = { .heap_size = 4 << 20, .max_segments = 4 };
	ckpt_pool *p = ckpt_create(argv[1], &cfg);
	if (!p)
		return die("ckpt_create");
	char *s = ckpt_alloc(p, 64);
	if (!s)
		return die("ckpt_alloc");
	strcpy(s, "installed libckpt works");
	ckpt_id id = 0;
	if (ckpt_set_root(p, s) != 0 || ckpt_checkpoint(p, "install", &id) != 0)
		return die("ckpt_checkpoint");
	if (ckpt_close(p) != 0)
		return die("ckpt_close");
	p = ckpt_open(argv[1], id, NULL);
	if (!p)
		return die("ckpt_open");
	const char *r = ckpt_root(p);
	if (!r || strcmp(r, "installed libckpt works") != 0) {
		fprintf(stderr, "app: the root did not survive the restart\n");
		return 1;
	}
	if (ckpt_close(p) != 0)
		return die("ckpt_close");
	printf("ok %llu\n", (unsigned long long)id);
	return 0;
}
