/*
 * ckpt-remote -- ship checkpoints off the machine and back (docs/man
 * ckpt-remote.1):
 *
 *   ckpt-remote push POOL REF URL [--chunk-size BYTES] [--check-all] [--json]
 *   ckpt-remote list URL [--json]
 *   ckpt-remote pull URL MANIFEST POOL [--lazy] [--json]
 *   ckpt-remote fill POOL
 *   ckpt-remote prune URL --keep N [--max-age SECS] [--json]
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
 * returns, leaving a filler process (this program, `fill --held`, its
 * messages in POOL.fill.log) to bring the bytes; a program restarting from
 * it meanwhile gets each region first when it touches it. fill resumes a
 * lazy pull whose filler died, or waits for a running one to finish.
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
static int lazy, held;

/* usage -- the synopsis on stderr; returns the usage exit code */
static int
usage(void)
{
	fprintf(stderr,
		"usage: ckpt-remote push POOL REF URL [--chunk-size BYTES] [--check-all] [--json]\n"
		"       ckpt-remote list URL [--json]\n"
		"       ckpt-remote pull URL MANIFEST POOL [--lazy] [--json]\n"
		"       ckpt-remote fill POOL\n"
		"       ckpt-remote prune URL --keep N [--max-age SECS] [--json]\n"
		"       ckpt-remote config POOL [URL|none] [--json]\n"
		"URL: redis://[[user]:password@]host[:port][/db] or rados://pool[/namespace]\n");
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
			printf(",\"damaged\":");
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
				"\"chunks\":%" PRIu64 ",\"lineage\":%" PRIu64 "}", m->h.time_ns,
				m->h.pushed_ns, m->h.base, m->h.heap_size, m->h.used,
				m->h.chunk_size, m->h.nchunks, m->h.lineage);
		}
	} else if (!m) {
		printf("%s  DAMAGED: %s\n", name, ckpt_errormsg());
	} else {
		char t[32];
		time_t sec = (time_t)(m->h.time_ns / 1000000000ull);
		struct tm tm;
		strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&sec, &tm));
		printf("%s  ckpt %" PRIu64 "  %s  %" PRIu64 " bytes  %s\n", name, m->h.ckpt_id,
			t, m->h.used, m->h.label[0] ? m->h.label : "-");
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

/*
 * start_filler -- the background filler of a lazy pull into pool: this
 * program, `fill --held POOL`, in a new session, inheriting the pull's
 * lock and socket (so that no restart ever finds the pull without a
 * filler) as fds 3 and 4, its messages appended to POOL.fill.log
 */
static int
start_filler(const char *pool, pid_t *pid)
{
	int lockfd, sock;
	char log[4300];
	snprintf(log, sizeof(log), "%s.fill.log", pool);
	if (remote_fill_hold(pool, &lockfd, &sock) < 0)
		return -1;
	int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	*pid = logfd >= 0 && devnull >= 0 ? fork() : -1;
	if (*pid == 0) {
		/* above every fd we dup2 onto, then into place */
		int l = fcntl(lockfd, F_DUPFD, 10), k = sock >= 0 ? fcntl(sock, F_DUPFD, 10) : -1;
		setsid();
		if (l < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(logfd, 2) < 0 ||
		    dup2(l, 3) < 0 || (k >= 0 ? dup2(k, 4) : dup2(devnull, 4)) < 0)
			_exit(127);
		execl("/proc/self/exe", "ckpt-remote", "fill", "--held", pool, (char *)NULL);
		_exit(127);
	}
	int e = errno;
	close(lockfd);
	if (sock >= 0)
		close(sock);
	if (logfd >= 0)
		close(logfd);
	if (devnull >= 0)
		close(devnull);
	if (*pid < 0)
		return ckpt_err_set(e, "cannot start the filler: %s", strerror(e));
	return 0;
}

static int
cmd_fill(char **a)
{
	int sock = -1;
	if (held) {
		/* fd 4 is the socket, or /dev/null when there is none */
		struct stat st;
		if (fstat(4, &st) == 0 && S_ISSOCK(st.st_mode))
			sock = 4;
		else
			close(4);
	}
	if (remote_fill(a[0], !held, held ? 3 : -1, sock) < 0)
		return fail("fill");
	if (held)
		fprintf(stderr, "ckpt-remote: fill %s: complete\n", a[0]);
	return 0;
}

static int
cmd_pull(char **a)
{
	struct remote_stats s;
	if (lazy) {
		int complete;
		pid_t pid = 0;
		struct store *st = store_open(a[0]);
		int rc = st ? remote_pull_lazy(st, a[1], a[0], a[2], &complete, &s) : -1;
		store_close(st);
		if (rc < 0 || (!complete && start_filler(a[2], &pid) < 0))
			return fail("pull");
		if (json) {
			printf("{\"manifest\":");
			json_str(a[1]);
			printf(",\"image_bytes\":%" PRIu64 ",\"filler_pid\":%d}\n", s.image_bytes,
				(int)pid);
		}
		return 0;
	}
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
		if (strcmp(o, "--json") == 0) {
			json = 1;
		} else if (strcmp(o, "--check-all") == 0) {
			push_flags |= REMOTE_PUSH_CHECK_ALL;
		} else if (strcmp(o, "--background") == 0) {
			background = 1;
		} else if (strcmp(o, "--lazy") == 0) {
			lazy = 1;
		} else if (strcmp(o, "--held") == 0) {
			held = 1;       /* internal: the filler pull --lazy starts */
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
