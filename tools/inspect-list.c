/*
 * inspect-list.c -- `ckpt-inspect list`: every segment of a pool as a tree.
 *
 * A checkpoint hangs under the heap it was taken from (or, that heap gone,
 * under the checkpoint the heap was restarted from), a fork child under its
 * parent, a restarted heap under its checkpoint (entry_tree_up; links go by
 * life and checkpoint ids, never by segment index). Runs of free segments
 * fold into one line. Each row says the API's state (free, live, dead,
 * checkpoint), what the heap or checkpoint came from, label, pid, time and
 * bytes, and a NOTE: a heap kept in memory, a busy entry, a young heap, a
 * checkpoint's push state. --json prints the same rows as one document.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"
#include "inspect.h"
#include "layout.h"
#include "libckpt.h"
#include "remote/state.h"
#include "ckpt-inspect.h"

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

/* logged -- a checkpoint whose image is its segment with its page log over it (format 1.9) */
static int
logged(const struct cat_entry *e)
{
	return e->state == CAT_CKPT && (e->flags & CAT_F_LOGGED);
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
			"\"time_ns\":null,\"used\":0,\"in_use\":0,\"lazy_restart\":null,\"logged\":null,"
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
		",\"in_use\":%" PRIu64 ",\"lazy_restart\":%s,\"logged\":%s,\"remote\":", t,
		e->time_ns, e->used, e->in_use, e->state != CAT_CKPT ? "null" :
		(e->flags & CAT_F_SUMS_STORED) ? "true" : "false",
		e->state != CAT_CKPT ? "null" : logged(e) ? "true" : "false");
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
	else if (e->source == CAT_NONE && e->base_id == 0)
		snprintf(buf, len, "  in memory (cow), no checkpoint yet");
	else if (e->source == CAT_NONE)
		/* a new heap that logs on its own segment (a first checkpoint
		 * beside other threads): its pages persisted over a checkpoint */
		snprintf(buf, len, "  in memory (cow), maps its own segment, persisted over "
			"checkpoint %" PRIu64, e->base_id);
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
int
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
		char mem[128], rem[400];
		printf("%s%*s  %-10s %6s %6s %6s  %-16.16s %8s  %-24s %10s %10s%s%s%s%s%s\n", tree[r],
			tw - vis, "", st, par, ck, from, e->label[0] ? e->label : "-", pid, t,
			human_size(e->used, sz, sizeof(sz)),
			e->state == CAT_CKPT ? human_size(e->in_use, iu, sizeof(iu)) : "-",
			busy ? "  " : "", busy ? busy_note(st) : "", memory_note(in, e, mem, sizeof(mem)),
			logged(e) ? "  logged (its page log is not folded yet)" : "",
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
