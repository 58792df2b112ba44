/*
 * main.c -- kvstore: a key-value server speaking the Redis protocol whose
 * whole dataset lives in a libckpt pool. This file owns the command line
 * and the start-up sequence; see store.c (the pool), dict.c (the hash
 * table), resp.c (the protocol), commands.c and server.c (the event loop).
 *
 *   kvstore --pool PATH [--port N] [--bind ADDR] [--unixsocket PATH]
 *           [--checkpoint-every SECONDS] [--heap-size SIZE] [--check]
 *           [--maxclients N] [--client-output-buffer-limit SIZE]
 *           [--client-query-buffer-limit SIZE] [--client-query-buffer-total SIZE]
 *           [--requirepass PASSWORD] [--protected-mode yes|no]
 *           [--unixsocketperm MODE]
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

#include "auth.h"
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

/* limit_size -- a limit option's SIZE ("0" allowed: no limit); 0, or -1 if bad */
static int
limit_size(const char *s, size_t *out)
{
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	*out = parse_size(s);
	return *out ? 0 : -1;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: kvstore --pool PATH [--port N] [--bind ADDR] [--unixsocket PATH]\n"
		"               [--checkpoint-every SECONDS] [--heap-size SIZE] [--check]\n"
		"               [--maxclients N] [--client-output-buffer-limit SIZE]\n"
		"               [--client-query-buffer-limit SIZE]\n"
		"               [--client-query-buffer-total SIZE] [--requirepass PASSWORD]\n"
		"               [--protected-mode yes|no] [--unixsocketperm MODE]\n"
		"  --pool PATH              the libckpt pool holding the dataset (restarted\n"
		"                           from its latest checkpoint if it exists)\n"
		"  --port N                 TCP port (default 6379; 0: no TCP)\n"
		"  --bind ADDR              IPv4 address to listen on (default 127.0.0.1)\n"
		"  --unixsocket PATH        also listen on a Unix socket\n"
		"  --checkpoint-every SECS  background checkpoint every SECS seconds when\n"
		"                           something changed (default 60; 0: only SAVE/BGSAVE)\n"
		"  --heap-size SIZE         heap of a new pool, e.g. 512M, 4G (default 1G)\n"
		"  --check                  after a restart, walk the whole hash table and\n"
		"                           verify it before serving\n"
		"  --maxclients N           most clients connected at once (default 10000);\n"
		"                           one more gets \"-ERR max number of clients\n"
		"                           reached\" and is closed. At start the open files\n"
		"                           limit is raised to N + 32 where the hard limit\n"
		"                           allows, else N is lowered to the limit minus 32\n"
		"  --client-output-buffer-limit SIZE\n"
		"                           most reply bytes pending for one client, also\n"
		"                           within one command; past it the client is closed\n"
		"                           (default 1G; 0: no limit)\n"
		"  --client-query-buffer-limit SIZE\n"
		"                           most unparsed request bytes of one client; past it\n"
		"                           the client is closed (default 1G)\n"
		"  --client-query-buffer-total SIZE\n"
		"                           most unparsed request bytes of all clients\n"
		"                           together; past it the client holding the most is\n"
		"                           closed (default 1G; 0: no limit)\n"
		"  --requirepass PASSWORD   clients must AUTH with PASSWORD (at most 512\n"
		"                           bytes; other local users can read it in ps, so\n"
		"                           prefer a Unix socket with --unixsocketperm)\n"
		"  --protected-mode yes|no  with no --requirepass, refuse TCP clients from\n"
		"                           outside the loopback interface (default yes)\n"
		"  --unixsocketperm MODE    octal mode of the Unix socket, e.g. 700 (default:\n"
		"                           as the umask makes it)\n"
		"At most one kvstore serves a pool: a second one on the same pool refuses to\n"
		"start.\n");
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
		{ "maxclients", required_argument, NULL, 'm' },
		{ "client-output-buffer-limit", required_argument, NULL, 'o' },
		{ "client-query-buffer-limit", required_argument, NULL, 'q' },
		{ "client-query-buffer-total", required_argument, NULL, 'Q' },
		{ "requirepass", required_argument, NULL, 'a' },
		{ "protected-mode", required_argument, NULL, 'M' },
		{ "unixsocketperm", required_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct server_options *o = &server.opt;
	o->bind = "127.0.0.1";
	o->port = 6379;
	o->checkpoint_every = 60;
	o->heap_size = (size_t)1 << 30;
	o->maxclients = 10000;
	o->obuf_limit = (size_t)1 << 30;
	o->qbuf_limit = (size_t)1 << 30;
	o->qbuf_total = (size_t)1 << 30;
	o->protected_mode = 1;
	o->unixsocketperm = -1;
	int check = 0, ch;
	long l;
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
		case 'm':
			l = strtol(optarg, &end, 10);
			if (*end || end == optarg || l < 1 || l > 10000000) {
				fprintf(stderr, "kvstore: bad --maxclients %s\n", optarg);
				return 2;
			}
			o->maxclients = l;
			break;
		case 'o':
		case 'q':
		case 'Q': {
			size_t *dst = ch == 'o' ? &o->obuf_limit :
				ch == 'q' ? &o->qbuf_limit : &o->qbuf_total;
			if (limit_size(optarg, dst) < 0 || (ch == 'q' && *dst == 0)) {
				fprintf(stderr, "kvstore: bad --client-%s-buffer-%s %s\n",
					ch == 'o' ? "output" : "query", ch == 'Q' ? "total" : "limit",
					optarg);
				return 2;
			}
			break;
		}
		case 'a':
			if (strlen(optarg) > AUTH_MAX_PASSWORD) {
				fprintf(stderr, "kvstore: --requirepass: at most %d bytes\n",
					AUTH_MAX_PASSWORD);
				return 2;
			}
			o->requirepass = optarg[0] ? optarg : NULL;     /* "": none, as Redis */
			break;
		case 'M':
			if (strcmp(optarg, "yes") != 0 && strcmp(optarg, "no") != 0) {
				fprintf(stderr, "kvstore: bad --protected-mode %s (yes or no)\n", optarg);
				return 2;
			}
			o->protected_mode = strcmp(optarg, "yes") == 0;
			break;
		case 'U':
			l = strtol(optarg, &end, 8);
			if (*end || end == optarg || l < 0 || l > 0777) {
				fprintf(stderr, "kvstore: bad --unixsocketperm %s (octal, e.g. 700)\n",
					optarg);
				return 2;
			}
			o->unixsocketperm = (int)l;
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
