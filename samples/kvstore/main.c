/*
 * main.c -- kvstore: a key-value server speaking the Redis protocol whose
 * whole dataset lives in a libckpt pool. This file owns the command line
 * and the start-up sequence; see store.c (the pool), dict.c (the hash
 * table), resp.c (the protocol), commands.c and server.c (the event loop).
 *
 *   kvstore --pool PATH [--port N] [--bind ADDR] [--unixsocket PATH]
 *           [--checkpoint-every SECONDS] [--heap-size SIZE] [--check]
 *
 * On start it restarts from the latest checkpoint of PATH if the pool
 * exists (and logs how long that took and how many keys it found), or
 * creates it. Checkpoints: SAVE, BGSAVE, every --checkpoint-every seconds
 * when something changed, and on SIGTERM/SIGINT/SHUTDOWN.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "log.h"
#include "server.h"

/* parse_size -- "64M", "4G", "1048576" -> bytes; 0 on a bad size */
static size_t
parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end == 'i' || *end == 'B' || *end == 'b')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end != '\0' || (shift && v > (~0ULL >> shift)))
		return 0;
	return (size_t)(v << shift);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: kvstore --pool PATH [--port N] [--bind ADDR] [--unixsocket PATH]\n"
		"               [--checkpoint-every SECONDS] [--heap-size SIZE] [--check]\n"
		"  --pool PATH              the libckpt pool holding the dataset (restarted\n"
		"                           from its latest checkpoint if it exists)\n"
		"  --port N                 TCP port (default 6379; 0: no TCP)\n"
		"  --bind ADDR              IPv4 address to listen on (default 127.0.0.1)\n"
		"  --unixsocket PATH        also listen on a Unix socket\n"
		"  --checkpoint-every SECS  background checkpoint every SECS seconds when\n"
		"                           something changed (default 60; 0: only SAVE/BGSAVE)\n"
		"  --heap-size SIZE         heap of a new pool, e.g. 512M, 4G (default 1G)\n"
		"  --check                  after a restart, walk the whole hash table and\n"
		"                           verify it before serving\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pool", required_argument, NULL, 'p' },
		{ "port", required_argument, NULL, 'P' },
		{ "bind", required_argument, NULL, 'b' },
		{ "unixsocket", required_argument, NULL, 'u' },
		{ "checkpoint-every", required_argument, NULL, 'c' },
		{ "heap-size", required_argument, NULL, 's' },
		{ "check", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct server_options *o = &server.opt;
	o->bind = "127.0.0.1";
	o->port = 6379;
	o->checkpoint_every = 60;
	o->heap_size = (size_t)1 << 30;
	int check = 0, ch;
	char *end;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p': o->pool = optarg; break;
		case 'b': o->bind = optarg; break;
		case 'u': o->unixsocket = optarg; break;
		case 'C': check = 1; break;
		case 'P':
			o->port = (int)strtol(optarg, &end, 10);
			if (*end || o->port < 0 || o->port > 65535) {
				fprintf(stderr, "kvstore: bad --port %s\n", optarg);
				return 2;
			}
			break;
		case 'c':
			o->checkpoint_every = (int)strtol(optarg, &end, 10);
			if (*end || o->checkpoint_every < 0) {
				fprintf(stderr, "kvstore: bad --checkpoint-every %s\n", optarg);
				return 2;
			}
			break;
		case 's':
			o->heap_size = parse_size(optarg);
			if (!o->heap_size) {
				fprintf(stderr, "kvstore: bad --heap-size %s\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o->pool || optind != argc) {
		usage(stderr);
		return 2;
	}

	kv_log('*', "kvstore starting: pool %s", o->pool);
	if (store_open(&server.store, o->pool, o->heap_size) < 0)
		return 1;
	if (check && server.store.restarted) {
		int64_t n = dict_check(&server.store.root->dict);
		if (n < 0 || (uint64_t)n != dict_size(&server.store.root->dict)) {
			kv_log('#', "check: the hash table is inconsistent");
			return 1;
		}
		kv_log('*', "check: hash table consistent, %lld keys", (long long)n);
	}
	int rc = server_run();
	store_close(&server.store);
	return rc;
}
