/*
 * crashlog.c -- the recorder's log (reclog.h) read back and replayed, for
 * crashcheck.
 *
 * load_log maps rec.log, indexes its records and parses the driver's
 * markers (ack, keep, created). apply_rec replays one record: a WRITE or
 * SIZE joins the in-flight list (pend, in sequence order); a DURABLE moves
 * every in-flight piece it covers with a sequence number at or below its
 * cutoff into the durable image D (cutting a piece it covers only in part);
 * a FLUSH is remembered per thread until that thread's DRAIN makes it
 * durable; a DIRSYNC makes the file's name durable. dump_log prints a log
 * for people.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crashcheck.h"

/* -- the log ----------------------------------------------------------- */

struct rec *recs;
size_t nrecs;
unsigned grain = 512;
uint64_t max_size;       /* largest size the file ever had */

struct ack acks[MAX_ACKS];
unsigned nacks;
char groups[MAX_GROUPS][32];
static unsigned ngroups;
struct keepm keeps[MAX_ACKS];
unsigned nkeeps;
size_t created_pos = SIZE_MAX;
struct beginm begins[MAX_ACKS];
unsigned nbegins;
struct persistm persists[MAX_ACKS];
unsigned npersists;

static int
group_of(const char *name)
{
	for (unsigned i = 0; i < ngroups; i++)
		if (strcmp(groups[i], name) == 0)
			return (int)i;
	if (ngroups == MAX_GROUPS) {
		fprintf(stderr, "crashcheck: too many groups\n");
		exit(2);
	}
	snprintf(groups[ngroups], sizeof(groups[0]), "%.*s", (int)sizeof(groups[0]) - 1, name);
	return (int)ngroups++;
}

static void
parse_mark(size_t pos, const char *text, size_t len)
{
	char buf[256], g[64];
	snprintf(buf, sizeof(buf), "%.*s", (int)len, text);
	unsigned long long id, gen, nodes;
	unsigned k;
	if (sscanf(buf, "ack %llu %63s %llu %llu", &id, g, &gen, &nodes) == 4 &&
	    nacks < MAX_ACKS)
		acks[nacks++] = (struct ack){ id, gen, nodes, pos, group_of(g) };
	else if (sscanf(buf, "keep %63s %u", g, &k) == 2 && nkeeps < MAX_ACKS)
		keeps[nkeeps++] = (struct keepm){ pos, group_of(g), k };
	else if (sscanf(buf, "begin %63s %llu %llu", g, &gen, &nodes) == 3 &&
		 nbegins < MAX_ACKS)
		begins[nbegins++] = (struct beginm){ pos, group_of(g), gen, nodes };
	else if (sscanf(buf, "persisted %llu %llu", &gen, &nodes) == 2 && npersists < MAX_ACKS)
		persists[npersists++] = (struct persistm){ pos, 1, gen, nodes };
	else if (sscanf(buf, "persisting %llu", &gen) == 1 && npersists < MAX_ACKS)
		persists[npersists++] = (struct persistm){ pos, 0, gen, 0 };
	else if (strcmp(buf, "created") == 0 && created_pos == SIZE_MAX)
		created_pos = pos;
}

void
load_log(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/rec.log", opt.logdir);
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "crashcheck: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	size_t size = (size_t)st.st_size;
	const unsigned char *m = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	if (m == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	close(fd);
	size_t cap = 1024;
	recs = malloc(cap * sizeof(*recs));
	for (size_t off = 0; off + sizeof(struct rec_hdr) <= size;) {
		const struct rec_hdr *h = (const void *)(m + off);
		if (h->magic != REC_MAGIC || off + sizeof(*h) + REC_PAD(h->paylen) > size) {
			fprintf(stderr, "crashcheck: %s: bad record at %zu\n", path, off);
			exit(2);
		}
		if (nrecs == cap)
			recs = realloc(recs, (cap *= 2) * sizeof(*recs));
		recs[nrecs] = (struct rec){ h, m + off + sizeof(*h) };
		if (h->type == REC_BEGIN)
			grain = h->grain;
		else if (h->type == REC_SIZE && h->off > max_size)
			max_size = h->off;
		else if (h->type == REC_WRITE && h->off + h->len > max_size)
			max_size = h->off + h->len;
		else if (h->type == REC_MARK)
			parse_mark(nrecs, (const char *)recs[nrecs].pay, h->paylen);
		nrecs++;
		off += sizeof(*h) + REC_PAD(h->paylen);
	}
	if (!nrecs || recs[0].h->type != REC_BEGIN) {
		fprintf(stderr, "crashcheck: %s: no REC_BEGIN\n", path);
		exit(2);
	}
}

/* -- replay ------------------------------------------------------------ */

unsigned char *D;        /* durable image, max_size bytes */
int name_durable;        /* the file's directory entry is durable */
uint64_t D_size;
struct item *pend;       /* in flight, in seq order */
size_t npend;
static size_t cappend;

struct flushr { uint32_t tid; uint64_t off, len, cutoff; };
static struct flushr *flushes;
static size_t nflush, capflush;

static void
pend_add(struct item it)
{
	if (npend == cappend)
		pend = realloc(pend, (cappend = cappend ? cappend * 2 : 1024) * sizeof(*pend));
	pend[npend++] = it;
}

/*
 * make_durable -- [off, off+len) (REC_ALL: everything, the size too)
 * durable for items with seq <= cutoff: apply them to D, drop them from
 * the pending list (an item partly covered keeps its uncovered parts)
 */
static void
make_durable(uint64_t off, uint64_t len, uint64_t cutoff)
{
	uint64_t end = len == REC_ALL ? UINT64_MAX : off + len;
	size_t w = 0;
	struct item *keep = NULL;
	size_t nkeep = 0;
	for (size_t i = 0; i < npend; i++) {
		struct item it = pend[i];
		if (it.seq > cutoff) {
			pend[w++] = it;
			continue;
		}
		if (it.is_size) {
			if (len == REC_ALL)
				D_size = it.off;
			else
				pend[w++] = it;
			continue;
		}
		uint64_t s = it.off > off ? it.off : off;
		uint64_t e = it.off + it.len < end ? it.off + it.len : end;
		if (s >= e) {
			pend[w++] = it;
			continue;
		}
		memcpy(D + s, it.data + (s - it.off), e - s);
		/* the uncovered head and tail stay in flight */
		if (s > it.off) {
			pend[w++] = (struct item){ it.seq, it.off, s - it.off, it.data, 0 };
		}
		if (e < it.off + it.len) {
			keep = realloc(keep, (nkeep + 1) * sizeof(*keep));
			keep[nkeep++] = (struct item){ it.seq, e, it.off + it.len - e,
				it.data + (e - it.off), 0 };
		}
	}
	npend = w;
	/* tails were cut after their heads: put them back in seq order */
	for (size_t k = 0; k < nkeep; k++) {
		pend_add(keep[k]);
		for (size_t j = npend - 1; j > 0 && pend[j - 1].seq > pend[j].seq; j--) {
			struct item t = pend[j];
			pend[j] = pend[j - 1];
			pend[j - 1] = t;
		}
	}
	free(keep);
}

/* apply_rec -- replay record i into D / pending */
void
apply_rec(size_t i)
{
	const struct rec_hdr *h = recs[i].h;
	switch (h->type) {
	case REC_WRITE:
		pend_add((struct item){ h->seq, h->off, h->len, recs[i].pay, 0 });
		break;
	case REC_SIZE:
		pend_add((struct item){ h->seq, h->off, 0, NULL, 1 });
		break;
	case REC_DURABLE:
		make_durable(h->off, h->len, h->arg);
		if (h->op == OP_INIT)
			name_durable = 1;       /* the file existed before the run */
		break;
	case REC_DIRSYNC:
		name_durable = 1;
		break;
	case REC_FLUSH:
		if (nflush == capflush)
			flushes = realloc(flushes, (capflush = capflush ? capflush * 2 : 64) *
					sizeof(*flushes));
		flushes[nflush++] = (struct flushr){ h->tid, h->off, h->len, h->arg };
		break;
	case REC_DRAIN: {
		size_t w = 0;
		for (size_t k = 0; k < nflush; k++) {
			if (flushes[k].tid == h->tid)
				make_durable(flushes[k].off, flushes[k].len, flushes[k].cutoff);
			else
				flushes[w++] = flushes[k];
		}
		nflush = w;
		break;
	}
	default:
		break;
	}
}

int
is_point(size_t i)
{
	return recs[i].h->type == REC_DURABLE || recs[i].h->type == REC_DRAIN ||
		recs[i].h->type == REC_DIRSYNC;
}

/* dump_log -- one line per record; runs of writes by one op are merged */
void
dump_log(void)
{
	static const char *tn[] = { "?", "BEGIN", "WRITE", "SIZE", "DURABLE", "FLUSH",
		"DRAIN", "MARK", "DIRSYNC" };
	for (size_t i = 0; i < nrecs; i++) {
		const struct rec_hdr *h = recs[i].h;
		const char *op = rec_op_names[h->op < OP_COUNT ? h->op : 0];
		if (h->type == REC_WRITE) {
			size_t j = i;
			uint64_t bytes = 0, lo = h->off, hi = h->off + h->len;
			while (j < nrecs && recs[j].h->type == REC_WRITE &&
			       recs[j].h->op == h->op && recs[j].h->pid == h->pid) {
				bytes += recs[j].h->len;
				lo = recs[j].h->off < lo ? recs[j].h->off : lo;
				hi = recs[j].h->off + recs[j].h->len > hi ?
					recs[j].h->off + recs[j].h->len : hi;
				j++;
			}
			printf("%6zu seq %-6llu pid %-7u WRITE x%zu %s %llu bytes in [%#llx, %#llx)\n",
				i, (unsigned long long)h->seq, h->pid, j - i, op,
				(unsigned long long)bytes, (unsigned long long)lo,
				(unsigned long long)hi);
			i = j - 1;
			continue;
		}
		printf("%6zu seq %-6llu pid %-7u %s %s", i, (unsigned long long)h->seq, h->pid,
			tn[h->type <= REC_DIRSYNC ? h->type : 0], op);
		if (h->type == REC_MARK || h->type == REC_BEGIN)
			printf(" \"%.*s\"", (int)h->paylen, (const char *)recs[i].pay);
		else if (h->type == REC_SIZE)
			printf(" size %llu", (unsigned long long)h->off);
		else if (h->type == REC_DURABLE || h->type == REC_FLUSH)
			printf(" [%#llx, +%#llx) cutoff %llu", (unsigned long long)h->off,
				(unsigned long long)h->len, (unsigned long long)h->arg);
		printf("\n");
	}
}
