/*
 * ckpt-remote -- ship checkpoints off the machine and back (docs/man
 * ckpt-remote.1):
 *
 *   ckpt-remote push POOL REF URL [--chunk-size BYTES] [--check-all] [--json]
 *   ckpt-remote list URL [--json]
 *   ckpt-remote pull URL MANIFEST POOL [--lazy] [--json]
 *   ckpt-remote fill POOL
 *   ckpt-remote prune URL [--keep N] [--max-age SECS] [--json]   (one or both)
 *   ckpt-remote config POOL [URL|none] [--json]
 *
 * URL is redis://[[user]:password@]host[:port][/db] or
 * rados://pool[/namespace]. Exit 0 on success, 1 on a failure (named on
 * stderr), 2 on bad usage. push records its outcome in POOL.remote, which
 * `ckpt-inspect list` shows; --background (used by the library's automatic
 * push) adds nothing else but is kept apart for clarity in process lists.
 * config sets (or with "none" removes, or without URL prints) the store
 * the pool's checkpoints are pushed to in the background when CKPT_REMOTE
 * is not set: POOL.remote.url, mode 0600 (a URL may hold a password),
 * replaced by rename.
 * pull --lazy publishes the checkpoint as being pulled (format 1.6) and
 * returns, leaving its child (the process that pulled) to bring the bytes
 * as the filler, its messages in POOL.fill.log; a program restarting from
 * it meanwhile gets each region first when it touches it. fill resumes a
 * lazy pull whose filler died, or waits for a running one to finish.
 * A sealed pool's checkpoints are pushed and pulled as the ciphertext its
 * file holds, with their seal records, and never need the key: a pull
 * makes a sealed pool (eagerly only) that restarts with the key.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libckpt.h"
#include "config.h"
#include "remote/remote.h"
#include "remote/state.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

static int json;
static uint32_t chunk_size = REMOTE_DEFAULT_CHUNK;
static long keep = -1;
static unsigned push_flags;
static uint64_t max_age;
static int lazy;

/* usage_to -- the synopsis on f */
static void
usage_to(FILE *f)
{
	fprintf(f,
		"usage: ckpt-remote push POOL REF URL [--chunk-size BYTES] [--check-all] [--json]\n"
		"       ckpt-remote list URL [--json]\n"
		"       ckpt-remote pull URL MANIFEST POOL [--lazy] [--json]\n"
		"       ckpt-remote fill POOL\n"
		"       ckpt-remote prune URL [--keep N] [--max-age SECS] [--json]  (one or both)\n"
		"       ckpt-remote config POOL [URL|none] [--json]\n"
		"URL: redis://[[user]:password@]host[:port][/db] or rados://pool[/namespace]\n");
}

/* usage -- the synopsis on stderr; returns the usage exit code */
static int
usage(void)
{
	usage_to(stderr);
	return EXIT_USAGE;
}

/* json_str -- s as a JSON string literal */
static void
json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* fail -- name the failure on stderr (and as JSON with --json) */
static int
fail(const char *what)
{
	const char *msg = ckpt_errormsg();
	fprintf(stderr, "ckpt-remote: %s: %s\n", what, msg);
	if (json) {
		printf("{\"error\":");
		json_str(msg);
		printf("}\n");
	}
	return EXIT_FAIL;
}

/* print_stats -- what a push or pull moved */
static void
print_stats(const char *name, const struct remote_stats *s)
{
	if (json) {
		printf("{\"manifest\":");
		json_str(name);
		printf(",\"image_bytes\":%" PRIu64 ",\"chunks\":%" PRIu64 ",\"zero_chunks\":%"
			PRIu64 ",\"transferred_chunks\":%" PRIu64 ",\"transferred_bytes\":%"
			PRIu64 ",\"manifest_bytes\":%" PRIu64 "}\n", s->image_bytes, s->chunks,
			s->zero_chunks, s->sent_chunks, s->sent_bytes, s->manifest_bytes);
	} else {
		printf("%s\n", name);
	}
}

static int
cmd_push(char **a, int background)
{
	const char *pool = a[0], *ref = a[1], *url = a[2];
	char name[MANIFEST_NAME_MAX];
	struct remote_stats s = { 0 };
	/* a pool that cannot be pushed is refused before the store is contacted */
	struct store *st = remote_pushable(pool) == 0 ? store_open(url) : NULL;
	int ok = st && remote_push(st, pool, ref, chunk_size, push_flags, name, &s) == 0;
	/* the outcome goes beside the pool, for ckpt-inspect list */
	char *end;
	unsigned long long id = strtoull(ref, &end, 10);
	if (*end)
		id = st ? s.ckpt_id : 0;        /* "latest": once resolved */
	int e = errno;
	if (id)
		remote_state_record(pool, id, ok ? "pushed" : "failed", url,
				ok ? name : ckpt_errormsg());
	errno = e;
	store_close(st);
	if (!ok)
		return fail("push");
	(void)background;       /* the same push; only the process list tells it apart */
	print_stats(name, &s);
	return 0;
}

/* list_one -- remote_manifest_fn: one manifest as a row or JSON object */
struct lister {
	unsigned n;
};

static int
list_one(void *arg, const char *name, const struct manifest *m)
{
	struct lister *l = arg;
	if (json) {
		printf("%s{\"manifest\":", l->n ? "," : "");
		json_str(name);
		if (!m) {
			printf(errno == ENOTSUP ? ",\"unsupported\":" : ",\"damaged\":");
			json_str(ckpt_errormsg());
			printf("}");
		} else {
			char uuid[33];
			for (int i = 0; i < 16; i++)
				snprintf(uuid + 2 * i, 3, "%02x", m->h.uuid[i]);
			printf(",\"uuid\":\"%s\",\"checkpoint\":%" PRIu64 ",\"label\":", uuid,
				m->h.ckpt_id);
			json_str(m->h.label);
			printf(",\"time_ns\":%" PRIu64 ",\"pushed_ns\":%" PRIu64 ",\"base\":%" PRIu64
				",\"heap_size\":%" PRIu64 ",\"used\":%" PRIu64 ",\"chunk_size\":%u,"
				"\"chunks\":%" PRIu64 ",\"lineage\":%" PRIu64 ",\"sealed\":%s",
				m->h.time_ns, m->h.pushed_ns, m->h.base, m->h.heap_size, m->h.used,
				m->h.chunk_size, m->h.nchunks, m->h.lineage,
				m->seal ? "true" : "false");
			if (m->seal) {
				char kid[33];
				for (int i = 0; i < 16; i++)
					snprintf(kid + 2 * i, 3, "%02x", m->h.key_id[i]);
				printf(",\"key_id\":\"%s\"", kid);
			}
			printf("}");
		}
	} else if (!m) {
		printf("%s  %s: %s\n", name, errno == ENOTSUP ? "UNSUPPORTED" : "DAMAGED",
			ckpt_errormsg());
	} else {
		char t[32];
		time_t sec = (time_t)(m->h.time_ns / 1000000000ull);
		struct tm tm;
		strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&sec, &tm));
		printf("%s  ckpt %" PRIu64 "  %s  %" PRIu64 " bytes  %s%s\n", name, m->h.ckpt_id,
			t, m->h.used, m->h.label[0] ? m->h.label : "-", m->seal ? "  sealed" : "");
	}
	l->n++;
	return 0;
}

static int
cmd_list(char **a)
{
	struct store *st = store_open(a[0]);
	if (!st)
		return fail("list");
	struct lister l = { 0 };
	if (json)
		printf("{\"manifests\":[");
	int rc = remote_list(st, list_one, &l);
	if (json && rc == 0)
		printf("]}\n");
	store_close(st);
	if (rc < 0) {
		if (json)
			printf("]}\n");
		json = 0;
		return fail("list");
	}
	return 0;
}

static int
cmd_fill(char **a)
{
	if (remote_fill(a[0], 1, NULL) < 0)
		return fail("fill");
	return 0;
}

/*
 * pull_lazy_child -- the pull and then the filler, in the child of a lazy
 * pull: tells the parent over fd how the pull went ("E<errno> <message>",
 * "C" complete already, "O" filling), then fills with its stdio on
 * /dev/null and its messages appended to POOL.fill.log
 */
static int
pull_lazy_child(char **a, int fd)
{
	struct remote_stats s;
	struct remote_fill_start fs;
	int complete = 0;
	setsid();
	struct store *st = store_open(a[0]);
	int rc = st ? remote_pull_lazy(st, a[1], a[0], a[2], &complete, &s, &fs) : -1;
	if (rc < 0 || complete) {
		store_close(st);
		if (rc < 0)
			dprintf(fd, "E%d %s", errno ? errno : EIO, ckpt_errormsg());
		else
			dprintf(fd, "C");
		return rc < 0;
	}
	dprintf(fd, "O%" PRIu64, s.image_bytes);
	close(fd);
	char log[4300];
	snprintf(log, sizeof(log), "%s.fill.log", a[2]);
	int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
	}
	if (logfd >= 0)
		dup2(logfd, 2);
	if (remote_fill(a[2], 0, &fs) < 0) {
		fprintf(stderr, "ckpt-remote: fill %s: %s\n", a[2], ckpt_errormsg());
		return 1;
	}
	fprintf(stderr, "ckpt-remote: fill %s: complete\n", a[2]);
	return 0;
}

/*
 * pull_lazy -- fork before the store is contacted (a store client does
 * not survive a fork); the child pulls and goes on as the filler; this
 * process returns once the child says the checkpoint is published
 */
static int
pull_lazy(char **a)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		ckpt_err_set(errno, "pipe: %s", strerror(errno));
		return fail("pull");
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		_exit(pull_lazy_child(a, p[1]));
	}
	close(p[1]);
	if (pid < 0) {
		ckpt_err_set(errno, "fork: %s", strerror(errno));
		close(p[0]);
		return fail("pull");
	}
	char msg[CKPT_ERRMSG_MAX + 32];
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(msg) - 1 && (k = read(p[0], msg + n, sizeof(msg) - 1 - n)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			break;
		n += (size_t)k;
	}
	msg[n] = 0;
	close(p[0]);
	if (msg[0] == 'E' || n == 0) {
		int e = n ? atoi(msg + 1) : EIO;
		const char *m = n ? strchr(msg, ' ') : NULL;
		waitpid(pid, NULL, 0);
		ckpt_err_set(e ? e : EIO, "%s", m ? m + 1 : "the pulling process died");
		return fail("pull");
	}
	if (msg[0] == 'C')
		waitpid(pid, NULL, 0);
	if (json) {
		printf("{\"manifest\":");
		json_str(a[1]);
		printf(",\"filling\":%s,\"filler_pid\":%d}\n", msg[0] == 'O' ? "true" : "false",
			msg[0] == 'O' ? (int)pid : 0);
	}
	return 0;
}

static int
cmd_pull(char **a)
{
	struct remote_stats s;
	if (lazy)
		return pull_lazy(a);
	struct store *st = store_open(a[0]);
	if (!st || remote_pull(st, a[1], a[2], &s) < 0) {
		store_close(st);
		return fail("pull");
	}
	store_close(st);
	if (json)
		print_stats(a[1], &s);
	return 0;
}

static int
cmd_prune(char **a)
{
	unsigned dm, dc;
	struct store *st = store_open(a[0]);
	if (!st || remote_prune(st, (unsigned)keep, max_age, &dm, &dc) < 0) {
		store_close(st);
		return fail("prune");
	}
	store_close(st);
	if (json)
		printf("{\"deleted_manifests\":%u,\"deleted_chunks\":%u}\n", dm, dc);
	else
		printf("deleted %u manifests, %u chunks\n", dm, dc);
	return 0;
}

/* set_pool_url -- write url as the pool's setting (0600, renamed into place) */
static int
set_pool_url(const char *f, const char *url)
{
	char tmp[4300];
	snprintf(tmp, sizeof(tmp), "%s.tmp", f);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ckpt_err_set(errno, "cannot write %s: %s", tmp, strerror(errno));
	size_t n = strlen(url);
	int ok = write(fd, url, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
	int e = errno;
	if (close(fd) < 0 && ok)
		ok = 0, e = errno;
	if (ok && rename(tmp, f) < 0)
		ok = 0, e = errno;
	if (!ok) {
		unlink(tmp);
		return ckpt_err_set(e, "cannot write %s: %s", f, strerror(e));
	}
	return 0;
}

static int
cmd_config(char **a, int n)
{
	const char *pool = a[0];
	char f[4200], buf[CONFIG_REMOTE_URL_MAX];
	struct stat st;
	int e = stat(pool, &st) < 0 ? errno : !S_ISREG(st.st_mode) ? EINVAL : 0;
	if (e) {
		ckpt_err_set(e, "%s is not a pool file: %s", pool, strerror(e));
		return fail("config");
	}
	if (config_remote_url_path(pool, f, sizeof(f)) < 0)
		return fail("config");
	if (n == 2 && strcmp(a[1], "none") == 0) {
		if (unlink(f) < 0 && errno != ENOENT) {
			ckpt_err_set(errno, "cannot remove %s: %s", f, strerror(errno));
			return fail("config");
		}
	} else if (n == 2) {
		if (strlen(a[1]) >= CONFIG_REMOTE_URL_MAX) {
			ckpt_err_set(ENAMETOOLONG, "URL longer than %d bytes",
					CONFIG_REMOTE_URL_MAX - 1);
			return fail("config");
		}
		if (store_url_ok(a[1]) < 0 || set_pool_url(f, a[1]) < 0)
			return fail("config");
	}
	const char *url = config_pool_remote_url(pool, buf, sizeof(buf));
	if (json) {
		printf("{\"url\":");
		if (url)
			json_str(url);
		else
			printf("null");
		printf("}\n");
	} else {
		printf("%s\n", url ? url : "none");
	}
	return 0;
}

/* number -- a decimal argument with an optional K/M/G suffix; -1 if malformed */
static long long
number(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || v < 0 || errno)
		return -1;
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	return *end ? -1 : v;
}

int
main(int argc, char **argv)
{
	char *pos[8];
	int npos = 0, background = 0;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		long long v;
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			usage_to(stdout);
			return 0;
		} else if (strcmp(o, "--json") == 0) {
			json = 1;
		} else if (strcmp(o, "--check-all") == 0) {
			push_flags |= REMOTE_PUSH_CHECK_ALL;
		} else if (strcmp(o, "--background") == 0) {
			background = 1;
		} else if (strcmp(o, "--lazy") == 0) {
			lazy = 1;

		} else if (strcmp(o, "--chunk-size") == 0 && i + 1 < argc) {
			v = number(argv[++i]);
			if (v < MANIFEST_MIN_CHUNK || v > MANIFEST_MAX_CHUNK || (v & (v - 1)))
				return fprintf(stderr, "ckpt-remote: --chunk-size: a power of two "
						"from 4K to 64M\n"), EXIT_USAGE;
			chunk_size = (uint32_t)v;
		} else if (strcmp(o, "--keep") == 0 && i + 1 < argc) {
			v = number(argv[++i]);
			if (v < 0 || v > 1000000)
				return usage();
			keep = (long)v;
		} else if (strcmp(o, "--max-age") == 0 && i + 1 < argc) {
			v = number(argv[++i]);
			if (v <= 0)
				return usage();
			max_age = (uint64_t)v;
		} else if (o[0] == '-' && o[1]) {
			fprintf(stderr, "ckpt-remote: unknown option %s\n", o);
			return usage();
		} else if (npos < 8) {
			pos[npos++] = argv[i];
		} else {
			return usage();
		}
	}
	if (npos < 1)
		return usage();
	const char *cmd = pos[0];
	if (strcmp(cmd, "push") == 0 && npos == 4)
		return cmd_push(pos + 1, background);
	if (strcmp(cmd, "list") == 0 && npos == 2)
		return cmd_list(pos + 1);
	if (strcmp(cmd, "pull") == 0 && npos == 4)
		return cmd_pull(pos + 1);
	if (strcmp(cmd, "fill") == 0 && npos == 2)
		return cmd_fill(pos + 1);
	if (strcmp(cmd, "config") == 0 && (npos == 2 || npos == 3))
		return cmd_config(pos + 1, npos - 1);
	if (strcmp(cmd, "prune") == 0 && npos == 2) {
		if (keep < 0 && !max_age) {
			fprintf(stderr, "ckpt-remote: prune needs --keep N or --max-age SECS\n");
			return EXIT_USAGE;
		}
		if (keep < 0)
			keep = 0;
		return cmd_prune(pos + 1);
	}
	return usage();
}
