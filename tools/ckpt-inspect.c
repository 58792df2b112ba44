/*
 * ckpt-inspect -- dump what a pool holds, for people and for tools.
 *
 *   ckpt-inspect COMMAND POOL [ARGS] [--json]
 *
 * Read-only always: the pool is opened O_RDONLY through libckpt/inspect.c,
 * which validates everything it reads. Exit status: 0 success, 1 damaged
 * pool, failed check or failed lookup (a REF that names nothing, a path
 * that is not a pool), 2 bad usage (unknown command or option, wrong
 * arguments, a malformed REF, a pool path that does not exist).
 *
 * A sealed pool's heaps are read only with its key (--key-file PATH,
 * checked against the header's key id first): without it, info, list and
 * verify (checksums of the ciphertext) work and heap and dump fail with 1.
 *
 * This file: main, the options, `info` and the helpers every command
 * shares (ckpt-inspect.h); `list` is in inspect-list.c; `heap`, `dump` and
 * `verify` in inspect-heap.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"
#include "inspect.h"
#include "remote/state.h"
#include "layout.h"
#include "libckpt.h"
#include "seal/key.h"
#include "ckpt-inspect.h"


int json;          /* --json: one JSON document on stdout */
int summary_only;  /* heap --summary */
int strict;        /* verify --strict */
int no_heaps;      /* verify --no-heaps */
int show_progress; /* stderr is a terminal and --no-progress not given */
const char *pool_path;
static const char *key_file; /* --key-file */
static const char *cmd_name;

static const char *fork_mode_names[] = { "auto", "copy", "reflink", "cow", "shared" };

/* human_size -- "12.0 MiB" style into buf */
const char *
human_size(uint64_t v, char *buf, size_t len)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	int u = 0;
	while (d >= 1024 && u < 4) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)v);
	else
		snprintf(buf, len, "%.1f %s", d, units[u]);
	return buf;
}

/* iso_time -- local ISO 8601 time of a CLOCK_REALTIME ns value */
const char *
iso_time(uint64_t ns, char *buf, size_t len)
{
	if (ns == 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S%z", &tm);
	return buf;
}

/* json_string -- print s as a JSON string literal */
void
json_string(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\u%04x", *p);
		else if (*p >= 0x80) {
			/* valid UTF-8 passes through; anything else becomes U+FFFD */
			int n = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 :
				(*p & 0xf8) == 0xf0 ? 4 : 0;
			int ok = n > 0 && *p >= 0xc2 && *p <= 0xf4;
			for (int k = 1; ok && k < n; k++)
				ok = (p[k] & 0xc0) == 0x80;
			/* no overlong forms, surrogates or code points past U+10FFFF */
			if (ok && ((*p == 0xe0 && p[1] < 0xa0) || (*p == 0xed && p[1] >= 0xa0) ||
					(*p == 0xf0 && p[1] < 0x90) || (*p == 0xf4 && p[1] >= 0x90)))
				ok = 0;
			if (ok) {
				fwrite(p, 1, (size_t)n, stdout);
				p += n - 1;
			} else {
				printf("\\ufffd");
			}
		} else
			putchar(*p);
	}
	putchar('"');
}

static void
uuid_string(const uint8_t u[16], char *buf)
{
	static const int dash[] = { 4, 6, 8, 10 };
	int k = 0;
	for (int i = 0; i < 16; i++) {
		for (int d = 0; d < 4; d++)
			if (i == dash[d])
				buf[k++] = '-';
		k += sprintf(buf + k, "%02x", u[i]);
	}
	buf[k] = '\0';
}

static int
cmd_info(struct inspect *in, int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return bad_args();
	const struct pool_hdr *h = &in->hdr;
	uint32_t used = 0;
	for (uint32_t i = 0; i < in->cat.n; i++)
		used += in->cat.e[i].state != CAT_FREE;
	char uuid[40];
	uuid_string(h->uuid, uuid);
	const char *kind = in->dax ? "pmem" : "emulated";
	char created[40];
	iso_time(h->created_ns, created, sizeof(created));
	const char *fm = h->fork_mode <= CKPT_FORK_SHARED ? fork_mode_names[h->fork_mode] : "?";
	int sealed = (h->flags & POOL_F_SEALED) != 0;
	char key_id[33] = "";
	if (sealed)
		seal_key_id_hex(h->key_id, key_id);
	if (json) {
		printf("{\"format_version\":\"%u.%u\",\"uuid\":\"%s\",\"base\":\"0x%llx\","
			"\"heap_size\":%llu,\"segment_size\":%llu,\"segments_used\":%u,"
			"\"segments_total\":%u,\"persistence\":\"%s\",\"fork_mode\":\"%s\","
			"\"keep_checkpoints\":%u,\"next_checkpoint_id\":%llu,\"file_size\":%llu,"
			"\"file_size_now\":%llu,\"created\":\"%s\",\"catalog_copy\":%u,\"catalog_generation\":%llu,"
			"\"catalog_fallback\":%s,\"sealed\":%s,\"key_id\":%s%s%s,\"page_logs\":%s}\n",
			h->major, h->minor, uuid, (unsigned long long)h->base,
			(unsigned long long)h->heap_size, (unsigned long long)h->seg_size,
			used, h->max_segments, kind, fm, h->keep_checkpoints,
			(unsigned long long)in->cat.h->next_ckpt_id,
			(unsigned long long)h->file_size, (unsigned long long)in->file_size,
			created, in->src.copy,
			(unsigned long long)in->src.generation,
			in->src.fallback ? "true" : "false", sealed ? "true" : "false",
			sealed ? "\"" : "", sealed ? key_id : "null", sealed ? "\"" : "",
			(h->flags & POOL_F_LOG_AREA) ? "true" : "false");
		return 0;
	}
	char b1[32], b2[32];
	printf("format version   %u.%u\n", h->major, h->minor);
	printf("uuid             %s\n", uuid);
	printf("base             0x%llx\n", (unsigned long long)h->base);
	printf("heap size        %s (segment %s)\n", human_size(h->heap_size, b1, sizeof(b1)),
		human_size(h->seg_size, b2, sizeof(b2)));
	printf("segments         %u used of %u\n", used, h->max_segments);
	printf("persistence      %s\n", in->dax ? "pmem (DAX, cache flushes)" : "emulated (ordinary file, msync)");
	printf("fork mode        %s\n", fm);
	if (sealed)
		printf("sealed           yes, key id %s (heap and dump need --key-file)\n",
			key_id);
	else
		printf("sealed           no\n");
	printf("keep checkpoints %u\n", h->keep_checkpoints);
	printf("page logs        %s\n", (h->flags & POOL_F_LOG_AREA) ?
		"yes (format 1.9: a cow checkpoint may log its pages, folded later)" : "no");
	printf("created          %s\n", created);
	printf("file size        %s now, at most %s\n",
		human_size(in->file_size, b2, sizeof(b2)), human_size(h->file_size, b1, sizeof(b1)));
	printf("catalog          copy %u, generation %llu%s\n", in->src.copy,
		(unsigned long long)in->src.generation,
		in->src.fallback ? " (the current copy is damaged: see verify)" : "");
	return 0;
}

/* -- shared helpers --------------------------------------------------------- */

/* fail -- report an error (stderr, and a JSON document with --json); returns code */
int
fail(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ckpt-inspect: %s\n", msg);
	if (json) {
		printf("{\"error\":");
		json_string(msg);
		printf(",\"exit\":%d}\n", code);
	}
	return code;
}

/* warn_fallback -- the current catalog copy is damaged: say what is shown instead */
static void
warn_fallback(const struct inspect *in)
{
	const struct cat_source *s = &in->src;
	if (s->copy == (s->word & 1))
		fprintf(stderr, "ckpt-inspect: warning: the commit word is damaged, or the "
			"last catalog change is lost (%s); showing catalog copy %u, the catalog "
			"before that change; run 'ckpt-inspect verify'\n", s->damage, s->copy);
	else if (s->generation == s->word >> 1)
		fprintf(stderr, "ckpt-inspect: warning: the commit word names catalog copy %u, "
			"which is damaged (%s); showing copy %u, which holds the current "
			"catalog; run 'ckpt-inspect verify'\n", (unsigned)(s->word & 1),
			s->damage, s->copy);
	else
		fprintf(stderr, "ckpt-inspect: warning: the current catalog copy %u is "
			"damaged (%s); showing copy %u, the catalog before the last change, "
			"which is lost; run 'ckpt-inspect verify'\n", (unsigned)(s->word & 1),
			s->damage, s->copy);
}

/* progress -- one status line on stderr, redrawn at most 10 times a second */
void
progress(void *arg, const char *what, uint64_t done, uint64_t total)
{
	(void)arg;
	static struct timespec last;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (done < total && (now.tv_sec - last.tv_sec) * 1000000000L +
			(now.tv_nsec - last.tv_nsec) < 100000000L)
		return;
	last = now;
	char a[32], b[32];
	fprintf(stderr, "\r\033[K%s %s / %s (%d%%)", what, human_size(done, a, sizeof(a)),
		human_size(total, b, sizeof(b)),
		total ? (int)(done * 100 / total) : 100);
	fflush(stderr);
}

void
progress_done(void)
{
	if (show_progress) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
}

/*
 * api_state -- the state API.md names for segment i: free, live, dead or
 * checkpoint. A busy entry (being written, or left by an interrupted
 * checkpoint, fork or restart) is live or dead by its owner; *busy says so.
 */
const char *
api_state(const struct inspect *in, uint32_t i, int *busy)
{
	const char *st = inspect_state_name(in, i);
	*busy = in->cat.e[i].state == CAT_BUSY;
	return strcmp(st, "busy") == 0 ? "live" : st;
}

/* find_life -- index of the live/busy heap whose life is life, or -1 */
static int
find_life(const struct inspect *in, uint64_t life)
{
	for (uint32_t j = 0; life && j < in->cat.n; j++) {
		const struct cat_entry *x = &in->cat.e[j];
		if ((x->state == CAT_LIVE || x->state == CAT_BUSY) && x->life == life)
			return (int)j;
	}
	return -1;
}

/* find_ckpt -- index of checkpoint id, or -1 */
static int
find_ckpt(const struct inspect *in, uint64_t id)
{
	for (uint32_t j = 0; id && j < in->cat.n; j++)
		if (in->cat.e[j].state == CAT_CKPT && in->cat.e[j].ckpt_id == id)
			return (int)j;
	return -1;
}

/*
 * restarted_from -- the checkpoint the heap of entry e was restarted from, or
 * 0 (created or forked, or not known): a live heap records it while it
 * lives, a checkpoint since format 1.1 (CAT_F_ORIGIN)
 */
uint64_t
restarted_from(const struct cat_entry *e)
{
	if (e->state == CAT_LIVE || e->state == CAT_BUSY)
		return e->ckpt_id;
	if (e->state == CAT_CKPT && (e->flags & CAT_F_ORIGIN))
		return e->restarted_from;
	return 0;
}

/*
 * entry_tree_up -- the entry a segment hangs under in the tree, or -1.
 * Links go by life ids and checkpoint ids, never by segment index, which a
 * later heap may have reused (docs/FORMAT.md, "Lives and lineages"): a
 * checkpoint hangs under the heap it was taken from, or when that heap is
 * gone under the checkpoint the heap was restarted from; a fork child under
 * its parent; a restarted heap under its checkpoint.
 */
int
entry_tree_up(const struct inspect *in, uint32_t i)
{
	const struct cat_entry *e = &in->cat.e[i];
	int up = -1;
	if (e->state == CAT_CKPT) {
		up = find_life(in, e->life);            /* under the heap it came from */
		if (up < 0)                             /* gone: under its heap's origin */
			up = find_ckpt(in, restarted_from(e));
	} else if (e->parent_life)
		up = find_life(in, e->parent_life);     /* fork child under its parent */
	else if (e->ckpt_id)
		up = find_ckpt(in, e->ckpt_id);         /* restart under its checkpoint */
	return up == (int)i ? -1 : up;
}

/*
 * resolve -- REF to segment; 0, or the exit code after the message: a
 * malformed REF is bad usage (2), one that names nothing in this pool a
 * failed lookup (1)
 */
int
resolve(struct inspect *in, const char *ref, uint32_t *seg)
{
	if (inspect_resolve(in, ref, seg) < 0)
		return fail(errno == EINVAL ? EXIT_USAGE : EXIT_DAMAGED, "%s", ckpt_errormsg());
	return 0;
}

const char *
seg_desc(struct inspect *in, uint32_t seg, char *buf, size_t len)
{
	const struct cat_entry *e = &in->cat.e[seg];
	if (e->state == CAT_CKPT)
		snprintf(buf, len, "segment %u, checkpoint %" PRIu64, seg, e->ckpt_id);
	else {
		int busy;
		const char *st = api_state(in, seg, &busy);
		snprintf(buf, len, "segment %u, %s%s heap of pid %d", seg, st,
			busy ? " (busy)" : "", e->owner.pid);
	}
	return buf;
}

/* -- main ------------------------------------------------------------------- */

struct command {
	const char *name;
	const char *args;
	const char *help;
	int (*fn)(struct inspect *in, int argc, char **argv);
};

static const struct command commands[] = {
	{ "info", "POOL", "header: version, uuid, base, sizes, segments, pmem or emulated", cmd_info },
	{ "list", "POOL", "every segment, as a tree: state, parent, checkpoint, restarted from, label, pid, time, bytes", cmd_list },
	{ "heap", "POOL REF", "every block of a heap (address, size, state), root and summary", cmd_heap },
	{ "dump", "POOL REF ADDR LEN", "hexdump -C of LEN bytes at address ADDR of a heap", cmd_dump },
	{ "verify", "POOL", "check header, catalog, checksums and allocator invariants", cmd_verify },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: ckpt-inspect COMMAND POOL [ARGS] [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-6s %-18s %s\n", commands[i].name, commands[i].args,
			commands[i].help);
	fprintf(f, "\nREF: a checkpoint id, 'latest' (the newest checkpoint) or 'seg:N' (segment N)\n"
		"\noptions:\n"
		"  --json         print one JSON document on stdout (every command)\n"
		"  --summary      heap: print only the summary\n"
		"  --strict       verify: live/dead heaps that fail the walk are errors\n"
		"  --no-heaps     verify: skip the allocator walks\n"
		"  --no-progress  no progress line on stderr\n"
		"  --key-file PATH  a sealed pool's key: heap and dump need it\n"
		"  -h, --help     this text\n"
		"\nexit status: 0 success, 1 damaged pool, failed check or failed lookup\n"
		"(not a pool, no such checkpoint), 2 bad usage\n"
		"see ckpt-inspect(1)\n");
}

/*
 * use_key -- load --key-file and check it against a sealed pool's key id:
 * a wrong key is refused before anything is decrypted; a key for a pool
 * that is not sealed is refused too (its heaps are not encrypted)
 */
static int
use_key(struct inspect *in, struct seal_key **key)
{
	if (!(in->hdr.flags & POOL_F_SEALED))
		return ckpt_err_set(EINVAL, "--key-file given, but pool %s is not sealed",
				pool_path);
	*key = seal_key_open(key_file, "--key-file", in->hdr.key_id, pool_path);
	return *key ? 0 : -1;
}

int
bad_args(void)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, cmd_name) == 0)
			return fail(EXIT_USAGE, "usage: ckpt-inspect %s %s", cmd_name,
				commands[i].args);
	return EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	char *args[argc + 1];
	int n = 0, no_progress = 0, dashdash = 0;
	for (int i = 1; i < argc; i++) {
		if (dashdash || argv[i][0] != '-' || argv[i][1] == '\0')
			args[n++] = argv[i];
		else if (strcmp(argv[i], "--") == 0)
			dashdash = 1;
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--summary") == 0)
			summary_only = 1;
		else if (strcmp(argv[i], "--strict") == 0)
			strict = 1;
		else if (strcmp(argv[i], "--no-heaps") == 0)
			no_heaps = 1;
		else if (strcmp(argv[i], "--no-progress") == 0)
			no_progress = 1;
		else if (strcmp(argv[i], "--key-file") == 0 && i + 1 < argc)
			key_file = argv[++i];
		else if (strncmp(argv[i], "--key-file=", 11) == 0)
			key_file = argv[i] + 11;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return fail(EXIT_USAGE, "unknown option '%s'", argv[i]);
		}
	}
	show_progress = !no_progress && isatty(STDERR_FILENO);
	if (n < 2) {
		usage(stderr);
		return fail(EXIT_USAGE, n == 0 ? "no command given" : "no pool given");
	}
	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(args[0], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd) {
		usage(stderr);
		return fail(EXIT_USAGE, "unknown command '%s'", args[0]);
	}
	pool_path = args[1];
	cmd_name = cmd->name;
	struct inspect in;
	int verify = cmd->fn == cmd_verify;
	if ((verify ? inspect_open_header(&in, args[1]) : inspect_open(&in, args[1])) < 0) {
		/* a path that does not exist is a usage error; anything that exists
		 * and is not a pool (a directory, a FIFO, a damaged file) is 1 */
		int usage_err = errno == ENOENT || errno == ENOTDIR;
		if (verify && !usage_err)
			return cmd_verify(NULL, n - 2, args + 2);
		return fail(usage_err ? EXIT_USAGE : EXIT_DAMAGED, "%s", ckpt_errormsg());
	}
	struct seal_key *key = NULL;
	if (key_file && use_key(&in, &key) < 0) {
		inspect_close(&in);
		return fail(EXIT_DAMAGED, "%s", ckpt_errormsg());
	}
	in.key = key;
	if (!verify && in.src.fallback)
		warn_fallback(&in);
	int rc = cmd->fn(&in, n - 2, args + 2);
	inspect_close(&in);
	seal_key_free(key);
	fflush(stdout);
	return rc;
}
