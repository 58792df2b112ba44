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

#define EXIT_DAMAGED 1    /* damaged pool, failed check, failed lookup */
#define EXIT_USAGE 2

static int json;          /* --json: one JSON document on stdout */
static int summary_only;  /* heap --summary */
static int strict;        /* verify --strict */
static int no_heaps;      /* verify --no-heaps */
static int show_progress; /* stderr is a terminal and --no-progress not given */
static const char *pool_path;
static const char *key_file; /* --key-file */
static const char *cmd_name;
static int bad_args(void);

static const char *fork_mode_names[] = { "auto", "copy", "reflink", "cow", "shared" };

/* human_size -- "12.0 MiB" style into buf */
static const char *
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
static const char *
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
static void
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
			"\"catalog_fallback\":%s,\"sealed\":%s,\"key_id\":%s%s%s}\n",
			h->major, h->minor, uuid, (unsigned long long)h->base,
			(unsigned long long)h->heap_size, (unsigned long long)h->seg_size,
			used, h->max_segments, kind, fm, h->keep_checkpoints,
			(unsigned long long)in->cat.h->next_ckpt_id,
			(unsigned long long)h->file_size, (unsigned long long)in->file_size,
			created, in->src.copy,
			(unsigned long long)in->src.generation,
			in->src.fallback ? "true" : "false", sealed ? "true" : "false",
			sealed ? "\"" : "", sealed ? key_id : "null", sealed ? "\"" : "");
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
static int
fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
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
static void
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

static void
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
static const char *
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
static uint64_t
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
static int
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
static int
resolve(struct inspect *in, const char *ref, uint32_t *seg)
{
	if (inspect_resolve(in, ref, seg) < 0)
		return fail(errno == EINVAL ? EXIT_USAGE : EXIT_DAMAGED, "%s", ckpt_errormsg());
	return 0;
}

static const char *
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

/* -- list ------------------------------------------------------------------- */

struct row {
	uint32_t seg;
	int depth;
	int last;        /* last child of its parent */
	int up;
};

static void
tree_visit(struct inspect *in, const int *up, uint32_t i, int depth, char *seen,
		struct row *rows, unsigned *nrows)
{
	seen[i] = 1;
	rows[*nrows] = (struct row){ .seg = i, .depth = depth, .up = up[i] };
	(*nrows)++;
	int lastc = -1;
	for (uint32_t j = 0; j < in->cat.n; j++)
		if (!seen[j] && up[j] == (int)i && in->cat.e[j].state != CAT_FREE)
			lastc = (int)j;
	for (uint32_t j = 0; j < in->cat.n; j++)
		if (!seen[j] && up[j] == (int)i && in->cat.e[j].state != CAT_FREE) {
			unsigned at = *nrows;
			tree_visit(in, up, j, depth + 1, seen, rows, nrows);
			rows[at].last = (int)j == lastc;
		}
}

/*
 * young_heap -- 1 if free segment i holds a young heap: a running process
 * holds its lease and has not published it in the catalog (format 1.5)
 */
static int
young_heap(struct inspect *in, uint32_t i)
{
	return in->cat.e[i].state == CAT_FREE && (in->hdr.flags & POOL_F_YOUNG_HEAPS) &&
		cat_lease_held(in->fd, i);
}

/* list_json_row -- one segment object of list --json; rows[r] describes it */
static void
list_json_row(struct inspect *in, const struct row *rows, unsigned nrows, unsigned r)
{
	uint32_t i = rows[r].seg;
	const struct cat_entry *e = &in->cat.e[i];
	int busy;
	const char *st = api_state(in, i, &busy);
	printf("%s{\"segment\":%u,\"state\":\"%s\",\"busy\":%s,\"in_memory\":%s,",
		r ? "," : "", i, st, busy ? "true" : "false",
		(e->flags & CAT_F_IN_MEMORY) && e->state != CAT_CKPT ? "true" : "false");
	if (e->state == CAT_FREE) {
		/* holds nothing: the catalog fields of a free entry mean nothing */
		printf("\"checkpoint\":null,\"label\":\"\",\"pid\":null,\"owner_alive\":null,"
			"\"parent\":null,\"source\":null,\"restarted_from\":null,\"lineage\":null,"
			"\"tree_parent\":null,\"depth\":0,\"children\":[],\"time\":null,"
			"\"time_ns\":null,\"used\":0,\"in_use\":0,\"lazy_restart\":null,"
			"\"remote\":null,\"young\":%s}", young_heap(in, i) ? "true" : "false");
		return;
	}
	char t[40];
	iso_time(e->time_ns, t, sizeof(t));
	if (e->state == CAT_CKPT || e->state == CAT_FILLING)
		printf("\"checkpoint\":%" PRIu64 ",", e->ckpt_id);
	else
		printf("\"checkpoint\":null,");
	printf("\"label\":");
	json_string(e->label);
	printf(",\"pid\":%d,\"owner_alive\":", e->owner.pid);
	if (e->state == CAT_LIVE || e->state == CAT_BUSY)
		printf("%s", strcmp(st, "dead") == 0 ? "false" : "true");
	else
		printf("null");
	printf(",\"parent\":");
	if (e->parent == CAT_NONE)
		printf("null");
	else
		printf("%u", e->parent);
	printf(",\"source\":");
	if (e->source == CAT_NONE)
		printf("null");
	else
		printf("%u", e->source);
	if (restarted_from(e))
		printf(",\"restarted_from\":%" PRIu64, restarted_from(e));
	else
		printf(",\"restarted_from\":null");
	if (e->lineage)
		printf(",\"lineage\":%" PRIu64, e->lineage);
	else
		printf(",\"lineage\":null");
	printf(",\"tree_parent\":");
	if (rows[r].up < 0)
		printf("null");
	else
		printf("%d", rows[r].up);
	printf(",\"depth\":%d,\"children\":[", rows[r].depth);
	int first = 1;
	for (unsigned q = 0; q < nrows; q++)
		if (rows[q].up == (int)i) {
			printf("%s%u", first ? "" : ",", rows[q].seg);
			first = 0;
		}
	printf("],\"time\":\"%s\",\"time_ns\":%" PRIu64 ",\"used\":%" PRIu64
		",\"in_use\":%" PRIu64 ",\"lazy_restart\":%s,\"remote\":", t, e->time_ns,
		e->used, e->in_use, e->state != CAT_CKPT ? "null" :
		(e->flags & CAT_F_SUMS_STORED) ? "true" : "false");
	struct remote_state rs;
	if (e->state == CAT_CKPT && remote_state_get(pool_path, e->ckpt_id, &rs)) {
		printf("{\"state\":");
		json_string(rs.state);
		printf(",\"url\":");
		json_string(rs.url);
		printf(",\"%s\":", strcmp(rs.state, "pushed") == 0 ? "manifest" : "detail");
		json_string(rs.detail);
		printf(",\"time_ns\":%" PRIu64 "}", rs.time_ns);
	} else {
		printf("null");
	}
	printf(",\"young\":false}");
}

/* remote_note -- the NOTE column of a checkpoint's push state (POOL.remote) */
static const char *
remote_note(const struct cat_entry *e, char *buf, size_t len)
{
	struct remote_state rs;
	if (e->state == CAT_FILLING) {
		snprintf(buf, len, "  being pulled from a remote store (ckpt-remote fill)");
		return buf;
	}
	if (e->state != CAT_CKPT || !remote_state_get(pool_path, e->ckpt_id, &rs))
		return "";
	if (strcmp(rs.state, "pushed") == 0)
		snprintf(buf, len, "  remote: pushed to %s", rs.url);
	else if (strcmp(rs.state, "failed") == 0)
		snprintf(buf, len, "  remote: failed: %s", rs.detail);
	else
		snprintf(buf, len, "  remote: %s (%s)", rs.state, rs.url);
	return buf;
}

/* free_run_end -- the last row of the run of consecutive free segments starting at row r */
static unsigned
free_run_end(const struct row *rows, unsigned nrows, unsigned r)
{
	while (r + 1 < nrows && rows[r + 1].seg == rows[r].seg + 1)
		r++;
	return r;
}

/*
 * free_lines -- the free segments (rows[from, nrows), in index order) as
 * ranges, "0,3-5,9-63", cut into lines of at most width characters (a range
 * longer than that is a line of its own); the lines go one after the other
 * into buf (room for 12 bytes per segment), NUL-terminated each. Returns
 * their number; *widest gets the longest.
 */
static unsigned
free_lines(const struct row *rows, unsigned from, unsigned nrows, int width, char *buf,
		int *widest)
{
	unsigned nl = 0;
	size_t pos = 0;
	int lw = 0;
	*widest = 0;
	for (unsigned r = from; r < nrows; r++) {
		unsigned q = free_run_end(rows, nrows, r);
		char rg[32];
		int k = q > r ? snprintf(rg, sizeof(rg), "%u-%u", rows[r].seg, rows[q].seg) :
			snprintf(rg, sizeof(rg), "%u", rows[r].seg);
		if (lw > 0 && lw + 1 + k > width) {
			buf[pos++] = '\0';
			nl++;
			lw = 0;
		}
		if (lw > 0) {
			buf[pos++] = ',';
			lw++;
		}
		memcpy(buf + pos, rg, (size_t)k);
		pos += (size_t)k;
		lw += k;
		if (lw > *widest)
			*widest = lw;
		r = q;
	}
	if (lw > 0) {
		buf[pos++] = '\0';
		nl++;
	}
	return nl;
}

/* memory_note -- the NOTE column of a heap kept in memory (fork mode cow, sealed) */
static const char *
memory_note(const struct inspect *in, const struct cat_entry *e, char *buf, size_t len)
{
	if (!(e->flags & CAT_F_IN_MEMORY) || e->state == CAT_CKPT)
		return "";
	if (in->hdr.flags & POOL_F_SEALED)
		snprintf(buf, len, "  in memory (sealed)");
	else if (e->source == CAT_NONE)
		snprintf(buf, len, "  in memory (cow), no checkpoint yet");
	else
		snprintf(buf, len, "  in memory (cow), maps segment %u", e->source);
	return buf;
}

/* busy_note -- the NOTE column of a busy entry */
static const char *
busy_note(const char *state)
{
	return strcmp(state, "dead") == 0 ? "busy (interrupted write)" : "busy (being written)";
}

/*
 * cmd_list -- one row per segment. Segments in use come first, as the tree
 * (depth first, each root's subtree in segment order), then the free ones
 * in index order: in --json one object each, in text all on the last row
 * ("0,4-63  free"; a long list wraps onto more rows).
 */
static int
cmd_list(struct inspect *in, int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return bad_args();
	uint32_t n = in->cat.n;
	int *up = calloc(n ? n : 1, sizeof(*up));
	char *seen = calloc(n ? n : 1, 1);
	struct row *rows = calloc(n ? n : 1, sizeof(*rows));
	char (*tree)[256] = calloc(n ? n : 1, sizeof(*tree));
	char *fbuf = malloc((size_t)n * 12 + 16);
	if (!up || !seen || !rows || !tree || !fbuf) {
		free(up);
		free(seen);
		free(rows);
		free(tree);
		free(fbuf);
		return fail(EXIT_DAMAGED, "out of memory");
	}
	for (uint32_t i = 0; i < n; i++)
		up[i] = in->cat.e[i].state == CAT_FREE ? -1 : entry_tree_up(in, i);
	unsigned nrows = 0;
	for (uint32_t i = 0; i < n; i++)
		if (in->cat.e[i].state != CAT_FREE && up[i] < 0 && !seen[i])
			tree_visit(in, up, i, 0, seen, rows, &nrows);
	/* what is left hangs in a cycle (reused slots): cut it at its first segment */
	for (uint32_t i = 0; i < n; i++)
		if (in->cat.e[i].state != CAT_FREE && !seen[i]) {
			up[i] = -1;
			tree_visit(in, up, i, 0, seen, rows, &nrows);
		}
	unsigned ntree = nrows;
	/* the free segments, after the tree, in index order */
	for (uint32_t i = 0; i < n; i++)
		if (in->cat.e[i].state == CAT_FREE)
			rows[nrows++] = (struct row){ .seg = i, .up = -1 };

	if (json) {
		printf("{\"segments_total\":%u,\"segments\":[", n);
		for (unsigned r = 0; r < nrows; r++)
			list_json_row(in, rows, ntree, r);
		printf("]}\n");
		goto out;
	}

	/* the tree column: "├─ " / "└─ " per level, "│  " for open ancestors */
	int tw = 7;
	for (unsigned r = 0; r < ntree; r++) {
		char pre[200] = "";
		/* walk back up: for each ancestor level, is there a later sibling? */
		int d = rows[r].depth;
		char levels[64][8];
		int cur = (int)r;
		for (int lv = d; lv >= 1; lv--) {
			/* row cur is at depth lv; its marker (deep levels are not drawn) */
			int last = rows[cur].last;
			if (lv >= 64)
				;
			else if (lv == d)
				snprintf(levels[lv], sizeof(levels[lv]), "%s", last ? "└─ " : "├─ ");
			else
				snprintf(levels[lv], sizeof(levels[lv]), "%s", last ? "   " : "│  ");
			/* find the parent row */
			int pr = cur - 1;
			while (pr >= 0 && rows[pr].depth >= lv)
				pr--;
			cur = pr < 0 ? 0 : pr;
		}
		int vis = 0;
		for (int lv = 1; lv <= d; lv++) {
			if (vis > 40 || lv >= 64) {
				strcat(pre, "…");
				break;
			}
			strcat(pre, levels[lv]);
			vis += 3;
		}
		snprintf(tree[r], sizeof(tree[r]), "%s%u", pre, rows[r].seg);
		int w = vis + snprintf(NULL, 0, "%u", rows[r].seg);
		if (w > tw)
			tw = w;
	}
	/* the free segments: ranges on the last row(s), wrapped at the width
	 * of the tree column (at least 20) */
	int fw;
	unsigned nfl = free_lines(rows, ntree, nrows, tw > 20 ? tw : 20, fbuf, &fw);
	if (fw > tw)
		tw = fw;
	printf("%-*s  %-10s %6s %6s %6s  %-16s %8s  %-24s %10s %10s  %s\n", tw, "SEGMENT",
		"STATE", "PARENT", "CKPT", "FROM", "LABEL", "PID", "TIME", "USED", "IN USE",
		"NOTE");
	for (unsigned r = 0; r < ntree; r++) {
		uint32_t i = rows[r].seg;
		const struct cat_entry *e = &in->cat.e[i];
		char t[40], sz[32], iu[32], ck[24] = "-", par[16] = "-", pid[16], from[24] = "-";
		iso_time(e->time_ns, t, sizeof(t));
		if (e->state == CAT_CKPT || e->state == CAT_FILLING)
			snprintf(ck, sizeof(ck), "%" PRIu64, e->ckpt_id);
		if (restarted_from(e))
			snprintf(from, sizeof(from), "%" PRIu64, restarted_from(e));
		if (rows[r].up >= 0)
			snprintf(par, sizeof(par), "%d", rows[r].up);
		snprintf(pid, sizeof(pid), "%d", e->owner.pid);
		int busy;
		const char *st = api_state(in, i, &busy);
		/* pad the tree column by visible width (box characters are 3 bytes) */
		int vis = 0;
		for (const unsigned char *p = (const unsigned char *)tree[r]; *p; p++)
			vis += (*p & 0xc0) != 0x80;
		char mem[64], rem[400];
		printf("%s%*s  %-10s %6s %6s %6s  %-16.16s %8s  %-24s %10s %10s%s%s%s%s\n", tree[r],
			tw - vis, "", st, par, ck, from, e->label[0] ? e->label : "-", pid, t,
			human_size(e->used, sz, sizeof(sz)),
			e->state == CAT_CKPT ? human_size(e->in_use, iu, sizeof(iu)) : "-",
			busy ? "  " : "", busy ? busy_note(st) : "", memory_note(in, e, mem, sizeof(mem)),
			remote_note(e, rem, sizeof(rem)));
	}
	const char *fl = fbuf;
	for (unsigned k = 0; k < nfl; k++, fl += strlen(fl) + 1)
		printf("%-*s  %-10s %6s %6s %6s  %-16s %8s  %-24s %10s %10s\n", tw, fl,
			"free", "-", "-", "-", "-", "-", "-", "-", "-");
	int nyoung = 0;
	for (unsigned r = ntree; r < nrows; r++)
		if (young_heap(in, rows[r].seg))
			printf("%s%u", nyoung++ ? "," : "young    free segments holding a young heap of a "
				"running process (not published yet): ", rows[r].seg);
	if (nyoung)
		printf("\n");
out:
	free(fbuf);
	free(tree);
	free(up);
	free(seen);
	free(rows);
	return 0;
}

/* -- heap ------------------------------------------------------------------- */

struct heapctx {
	uint64_t base;
	uint64_t n;
};

static int
print_block(const struct heap_block_info *b, void *arg)
{
	struct heapctx *c = arg;
	const char *st = b->state == HEAP_BLOCK_ALLOCATED ? "allocated" : "free";
	if (json) {
		printf("%s{\"address\":\"0x%" PRIx64 "\",\"offset\":%" PRIu64 ",\"size\":%" PRIu64
			",\"state\":\"%s\"}", c->n ? "," : "", c->base + b->offset, b->offset,
			b->size, st);
	} else {
		char h[32];
		printf("0x%012" PRIx64 "  %14" PRIu64 "  %10s  %s\n", c->base + b->offset, b->size,
			human_size(b->size, h, sizeof(h)), st);
	}
	c->n++;
	return 0;
}

static double
fragmentation(const struct heap_summary *s)
{
	return s->bytes_free ? 1.0 - (double)s->largest_free / (double)s->bytes_free : 0.0;
}

static int
cmd_heap(struct inspect *in, int argc, char **argv)
{
	if (argc != 1)
		return bad_args();
	uint32_t seg;
	void *buf = NULL;
	size_t len = 0;
	struct heap_summary sum;
	char msg[CKPT_ERRMSG_MAX] = "";
	int ok = 0;
	const struct cat_entry *e;
	/*
	 * A live heap may be caught mid-operation, and a checkpoint may be
	 * removed by retention while we read it: take a few fresh copies, and
	 * for a checkpoint that went away, resolve REF again.
	 */
	for (int tries = 0; tries < 3 && !ok; tries++) {
		if (tries) {
			usleep(10000);
			if (inspect_refresh(in) < 0) {
				snprintf(msg, sizeof(msg), "%s", ckpt_errormsg());
				break;
			}
		}
		int rc = resolve(in, argv[0], &seg);
		if (rc)
			return rc;
		e = &in->cat.e[seg];
		if (e->state == CAT_FREE)
			return fail(EXIT_DAMAGED, "segment %u is free: it holds no heap", seg);
		struct cat_entry snap = *e;
		int changing = e->state != CAT_CKPT &&
			strcmp(inspect_state_name(in, seg), "dead") != 0;
		inspect_free_heap(buf, len);
		buf = NULL;
		if (inspect_read_heap(in, seg, &buf, &len, show_progress ? progress : NULL,
				NULL) == 0 && heap_check(buf, len, &sum) == 0) {
			ok = 1;
			break;
		}
		snprintf(msg, sizeof(msg), "%s", ckpt_errormsg());
		if (!changing && inspect_entry_unchanged(in, seg, &snap))
			break;   /* a checkpoint or dead heap that stayed: damage */
	}
	progress_done();
	e = &in->cat.e[seg];
	char d[96];
	seg_desc(in, seg, d, sizeof(d));
	if (!buf) {
		int r = fail(EXIT_DAMAGED, "%s: %s", d, msg);
		return r;
	}
	struct heapctx c = { .base = in->hdr.base };
	int busy;
	const char *st = api_state(in, seg, &busy);
	if (json) {
		printf("{\"segment\":%u,\"state\":\"%s\",\"busy\":%s,\"checkpoint\":", seg,
			st, busy ? "true" : "false");
		if (e->state == CAT_CKPT || e->state == CAT_FILLING)
			printf("%" PRIu64, e->ckpt_id);
		else
			printf("null");
		printf(",\"base\":\"0x%" PRIx64 "\",\"root\":", in->hdr.base);
		if (ok && sum.root_offset)
			printf("\"0x%" PRIx64 "\"", in->hdr.base + sum.root_offset);
		else
			printf("null");
		if (!summary_only) {
			printf(",\"blocks\":[");
			if (ok)
				heap_walk(buf, len, print_block, &c, NULL);
			printf("]");
		}
		if (ok)
			printf(",\"summary\":{\"blocks\":%" PRIu64 ",\"blocks_allocated\":%" PRIu64
				",\"blocks_free\":%" PRIu64 ",\"bytes_allocated\":%" PRIu64
				",\"bytes_free\":%" PRIu64 ",\"largest_free\":%" PRIu64
				",\"fragmentation\":%.4f,\"high_water\":%" PRIu64 "},\"error\":null}\n",
				sum.blocks_allocated + sum.blocks_free, sum.blocks_allocated,
				sum.blocks_free, sum.bytes_allocated, sum.bytes_free, sum.largest_free,
				fragmentation(&sum), sum.high_water);
		else {
			printf(",\"summary\":null,\"error\":");
			json_string(msg);
			printf("}\n");
		}
	} else {
		printf("%s, base 0x%" PRIx64 "\n", d, in->hdr.base);
		if (!ok) {
			fprintf(stderr, "ckpt-inspect: %s: heap is damaged: %s\n", d, msg);
			inspect_free_heap(buf, len);
			return EXIT_DAMAGED;
		}
		if (sum.root_offset)
			printf("root     0x%012" PRIx64 "\n", in->hdr.base + sum.root_offset);
		else
			printf("root     (none)\n");
		if (!summary_only) {
			printf("\n%-14s  %14s  %10s  %s\n", "ADDRESS", "SIZE", "", "STATE");
			heap_walk(buf, len, print_block, &c, NULL);
			printf("\n");
		}
		char a[32], b[32], l[32], h[32];
		printf("blocks         %" PRIu64 " (%" PRIu64 " allocated, %" PRIu64 " free)\n",
			sum.blocks_allocated + sum.blocks_free, sum.blocks_allocated,
			sum.blocks_free);
		printf("allocated      %s (%" PRIu64 " bytes)\n",
			human_size(sum.bytes_allocated, a, sizeof(a)), sum.bytes_allocated);
		printf("free           %s (%" PRIu64 " bytes)\n",
			human_size(sum.bytes_free, b, sizeof(b)), sum.bytes_free);
		printf("largest free   %s\n", human_size(sum.largest_free, l, sizeof(l)));
		printf("fragmentation  %.1f%%\n", 100.0 * fragmentation(&sum));
		printf("high water     %s\n", human_size(sum.high_water, h, sizeof(h)));
	}
	inspect_free_heap(buf, len);
	return ok ? 0 : EXIT_DAMAGED;
}

/* -- dump ------------------------------------------------------------------- */

/* parse_num -- decimal or 0x hex, optional k/m/g (binary) suffix when suffix */
static int
parse_num(const char *s, int suffix, uint64_t *v)
{
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	if (suffix && *end) {
		unsigned sh = 0;
		switch (*end) {
		case 'k': case 'K': sh = 10; break;
		case 'm': case 'M': sh = 20; break;
		case 'g': case 'G': sh = 30; break;
		default: return -1;
		}
		if (end[1] && strcmp(end + 1, "iB") != 0 && strcmp(end + 1, "B") != 0)
			return -1;
		if (x > (UINT64_MAX >> sh))
			return -1;
		x <<= sh;
		end += strlen(end);
	}
	if (*end)
		return -1;
	*v = x;
	return 0;
}

struct hexdump {
	unsigned char prev[16];
	int have_prev, squeezing;
};

static void
hex_line(struct hexdump *h, uint64_t addr, const unsigned char *p, size_t n)
{
	if (n == 16 && h->have_prev && memcmp(p, h->prev, 16) == 0) {
		if (!h->squeezing)
			printf("*\n");
		h->squeezing = 1;
		return;
	}
	h->squeezing = 0;
	if (n == 16) {
		memcpy(h->prev, p, 16);
		h->have_prev = 1;
	}
	char line[100];
	int k = sprintf(line, "%012" PRIx64 " ", addr);
	for (size_t i = 0; i < 16; i++) {
		if (i == 8)
			line[k++] = ' ';
		if (i < n)
			k += sprintf(line + k, " %02x", p[i]);
		else
			k += sprintf(line + k, "   ");
	}
	k += sprintf(line + k, "  |");
	for (size_t i = 0; i < n; i++)
		line[k++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
	line[k++] = '|';
	line[k] = '\0';
	puts(line);
}

static int
cmd_dump(struct inspect *in, int argc, char **argv)
{
	if (argc != 3)
		return bad_args();
	uint32_t seg;
	int rc = resolve(in, argv[0], &seg);
	if (rc)
		return rc;
	uint64_t addr, len, end;
	if (parse_num(argv[1], 0, &addr) < 0)
		return fail(EXIT_USAGE, "bad address '%s': expected 0xHEX or a decimal number",
			argv[1]);
	if (parse_num(argv[2], 1, &len) < 0)
		return fail(EXIT_USAGE, "bad length '%s': expected a number, optionally with "
			"K, M or G", argv[2]);
	const struct cat_entry *e = &in->cat.e[seg];
	if (e->state == CAT_FREE)
		return fail(EXIT_DAMAGED, "segment %u is free: it holds no heap", seg);
	uint64_t lo = in->hdr.base, hi = in->hdr.base + in->hdr.seg_size;
	if (addr < lo || addr >= hi || add_overflows(addr, len, &end) || end > hi)
		return fail(EXIT_USAGE, "range 0x%" PRIx64 " + %" PRIu64 " is outside the heap "
			"[0x%" PRIx64 ", 0x%" PRIx64 ") of segment %u", addr, len, lo, hi, seg);
	uint64_t off = addr - lo;
	if (e->state == CAT_CKPT && end - lo > e->used && !json)
		fprintf(stderr, "ckpt-inspect: note: bytes past 0x%" PRIx64 " (the checkpoint's "
			"high-water mark) were never written by the heap\n", lo + e->used);
	/* a sealed checkpoint is decrypted whole (every chunk authenticated);
	 * a cow heap is its base with its persisted pages over it */
	void *plain = NULL;
	size_t plain_len = 0;
	if (((e->state == CAT_CKPT && (e->flags & CAT_F_SEALED)) || inspect_is_cow_heap(in, seg)) &&
	    inspect_read_heap(in, seg, &plain, &plain_len, NULL, NULL) < 0)
		return fail(EXIT_DAMAGED, "%s", ckpt_errormsg());
	unsigned char chunk[65536];
	struct hexdump h = { .have_prev = 0 };
	uint64_t done = 0;
	if (json)
		printf("{\"segment\":%u,\"address\":\"0x%" PRIx64 "\",\"length\":%" PRIu64
			",\"data\":\"", seg, addr, len);
	while (done < len) {
		size_t c = len - done < sizeof(chunk) ? (size_t)(len - done) : sizeof(chunk);
		if (plain) {
			/* past the image: never written by the heap, zeros */
			uint64_t at = off + done;
			size_t have = at < plain_len ? plain_len - (size_t)at : 0;
			memset(chunk, 0, c);
			memcpy(chunk, (char *)plain + (at < plain_len ? at : 0), have < c ? have : c);
		} else if (inspect_read(in, seg, off + done, chunk, c) < 0) {
			if (json)
				printf("\",\"error\":");
			else
				fflush(stdout);
			if (json) {
				json_string(ckpt_errormsg());
				printf("}\n");
			}
			fprintf(stderr, "ckpt-inspect: %s\n", ckpt_errormsg());
			return EXIT_DAMAGED;
		}
		if (json) {
			for (size_t i = 0; i < c; i++)
				printf("%02x", chunk[i]);
		} else {
			for (size_t i = 0; i < c; i += 16)
				hex_line(&h, addr + done + i, chunk + i, c - i < 16 ? c - i : 16);
		}
		done += c;
		if (show_progress && len > ((uint64_t)64 << 20))
			progress(NULL, "dump", done, len);
	}
	inspect_free_heap(plain, plain_len);
	if (json)
		printf("\",\"error\":null}\n");
	else if (len)
		printf("%012" PRIx64 "\n", addr + len);
	return 0;
}

/* -- verify ----------------------------------------------------------------- */

static const char *sev_names[] = { "error", "warning", "note" };

struct vout {
	unsigned n;
};

static void
on_finding(void *arg, const struct inspect_finding *f)
{
	struct vout *o = arg;
	if (show_progress)
		fprintf(stderr, "\r\033[K");
	if (json) {
		printf("%s{\"severity\":\"%s\",\"where\":", o->n ? "," : "", sev_names[f->severity]);
		json_string(f->where);
		printf(",\"segment\":");
		if (f->segment < 0)
			printf("null");
		else
			printf("%" PRId64, f->segment);
		printf(",\"offset\":");
		if (f->offset == UINT64_MAX)
			printf("null");
		else
			printf("%" PRIu64, f->offset);
		printf(",\"message\":");
		json_string(f->message);
		printf("}");
	} else {
		printf("%-8s %s", sev_names[f->severity], f->where);
		if (f->offset != UINT64_MAX)
			printf(" (file offset 0x%" PRIx64 ")", f->offset);
		printf(": %s\n", f->message);
	}
	fflush(stdout);
	o->n++;
}

static int
cmd_verify(struct inspect *in, int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return bad_args();
	struct vout o = { 0 };
	struct inspect_verify_result r;
	unsigned flags = (strict ? INSPECT_VERIFY_STRICT : 0) |
		(no_heaps ? INSPECT_VERIFY_NO_HEAPS : 0);
	if (json)
		printf("{\"pool\":");
	if (json) {
		json_string(pool_path);
		printf(",\"findings\":[");
	}
	int errs;
	if (!in) {
		errs = inspect_verify_path(pool_path, flags, on_finding, &o, &r);
	} else {
		errs = inspect_verify(in, flags, on_finding, &o,
				show_progress ? progress : NULL, NULL, &r);
	}
	progress_done();
	if (errs < 0)
		return fail(EXIT_DAMAGED, "verify could not run: %s", ckpt_errormsg());
	if (json) {
		printf("],\"ok\":%s,\"errors\":%u,\"warnings\":%u,\"notes\":%u,"
			"\"checkpoints_verified\":%u,\"heaps_walked\":%u,\"skipped\":%u}\n",
			r.errors ? "false" : "true", r.errors, r.warnings, r.notes,
			r.checkpoints_verified, r.segments_walked, r.skipped);
	} else {
		printf("%s: %u error%s, %u warning%s; %u checkpoint%s verified, %u heap%s "
			"walked%s\n", r.errors ? "DAMAGED" : "ok", r.errors, r.errors == 1 ? "" : "s",
			r.warnings, r.warnings == 1 ? "" : "s", r.checkpoints_verified,
			r.checkpoints_verified == 1 ? "" : "s", r.segments_walked,
			r.segments_walked == 1 ? "" : "s", r.skipped ? " (some changed under us)" : "");
	}
	return r.errors ? EXIT_DAMAGED : 0;
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

static int
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
