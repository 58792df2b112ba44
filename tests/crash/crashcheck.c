/*
 * crashcheck.c -- build the pool files a power loss could leave, from a
 * recorder log (recorder.c, reclog.h), and check libckpt on each (issue 17).
 *
 *   crashcheck [OPTIONS] LOGDIR
 *
 * Replay. The log is read in order. A durable image D (the file as the disk
 * holds it under the model) starts empty; REC_WRITE and REC_SIZE records
 * are in flight until a REC_DURABLE (or a REC_DRAIN after a REC_FLUSH)
 * covers them with a cutoff at or after their sequence number: then they
 * are applied to D, in log order. A crash point is the instant after an
 * ordering point (and the start of the log): D as it stands there, plus any
 * selection of the writes in flight during the epoch that follows -- those
 * still pending from earlier epochs and those logged before the next
 * ordering point.
 *
 * States generated at each crash point, from the in-flight list in log
 * order (items are runs of sectors inside one 4 KiB page; sizes too):
 *   - prefixes: the first j items, for every j (or --prefixes evenly
 *     spaced ones, plus every j next to an item in the pool's metadata:
 *     header, commit word, catalogs);
 *   - all but one metadata item;
 *   - random subsets (--subsets per point; seeded by --seed and the point);
 *   - torn: a random subset, with some multi-sector items applied only in
 *     part, sector by sector (512 B; 64 B lines in pmem mode), so a 4 KiB
 *     page is torn at every sector boundary.
 * Identical states are checked once per set of promises: the key is the
 * XXH3-128 of the size, the bytes and what the rules require at the point
 * (acknowledgements before it, "created", retention markers), since the
 * same bytes may pass early in the run and fail later; "distinct contents"
 * counts by size and bytes alone.
 * --posix-dir: until the pool's directory is fsynced (REC_DIRSYNC), a file
 * created during the run may be lost whole: one more state per crash
 * point, no file at all.
 *
 * Checks on each state (the rules, docs/CRASH-STATES.md):
 *   1. the pool's own reading: header, commit word, current catalog copy
 *      (layout_check, cat_validate); every checkpoint the catalog lists has
 *      bytes matching its checksum;
 *   2. every checkpoint acknowledged to the driver before the crash point
 *      (marker "ack ID GROUP GEN NODES") is listed, unless retention may
 *      have dropped it: at least keep (marker "keep GROUP K", the value at
 *      the crash) newer checkpoints of its group are listed;
 *   3. an unreadable pool is accepted only before "created" was marked (a
 *      pool whose create had not returned), and must then be refused;
 *   4. `ckpt-inspect verify` exits 0 on a readable pool, 1 on a refused one,
 *      never anything else, never crashes or hangs;
 *   5. ckpt_open(path, CKPT_LATEST) in a forked child (timeout) opens the
 *      newest listed checkpoint, and its heap holds exactly the structure
 *      the driver checkpointed there (ts_check: generation and node count
 *      from the ack marker); with no checkpoint listed it fails with ENOENT;
 *      on an unreadable pool it fails with a message. A signal or a timeout
 *      is a failure.
 * Exit status: 0 no failure, 1 failures found, 2 usage or I/O error.
 * Failing states are kept in --out as fail-N.pool with a line in
 * failures.txt.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "catalog.h"
#include "layout.h"
#include "reclog.h"
#include "test_checkpoint_util.h"

extern char **environ;

#define MAX_ACKS 4096
#define MAX_GROUPS 64
#define HASH_SLOTS ((size_t)1 << 21)

/* -- options ----------------------------------------------------------- */

static struct {
	const char *logdir;
	const char *out;
	const char *inspect;
	unsigned prefixes;      /* evenly spaced prefixes per point, 0: all */
	unsigned subsets;
	unsigned torn;
	uint64_t seed;
	unsigned jobs;
	uint64_t max_states;    /* distinct states to check at most, 0: no cap */
	unsigned timeout;
	int verbose;
	int expect_fail;        /* self-test: exit 0 iff failures were found */
	int dump;               /* print the log and stop */
	int posix_dir;          /* the file's name is durable only after its directory's fsync */
} opt = { .prefixes = 16, .subsets = 8, .torn = 4, .seed = 1, .jobs = 1,
	  .timeout = 60 };

/* -- the log ----------------------------------------------------------- */

struct rec {
	const struct rec_hdr *h;
	const unsigned char *pay;
};

static struct rec *recs;
static size_t nrecs;
static unsigned grain = 512;
static uint64_t max_size;       /* largest size the file ever had */

struct ack { uint64_t id, gen, nodes; size_t pos; int group; };
static struct ack acks[MAX_ACKS];
static unsigned nacks;
static char groups[MAX_GROUPS][32];
static unsigned ngroups;
struct keepm { size_t pos; int group; unsigned k; };
static struct keepm keeps[MAX_ACKS];
static unsigned nkeeps;
static size_t created_pos = SIZE_MAX;

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
	snprintf(groups[ngroups], sizeof(groups[0]), "%s", name);
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
	else if (strcmp(buf, "created") == 0 && created_pos == SIZE_MAX)
		created_pos = pos;
}

static void
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

/* -- shared counters and the set of states seen ------------------------ */

struct stats {
	uint64_t points, generated, distinct, checked, failures;
	uint64_t distinct_bytes;        /* distinct by contents alone */
	uint64_t refused, unpublished, dead_heap_warnings, opened;
	uint64_t max_inflight;
};
static struct stats *st;
static uint64_t *seen;          /* HASH_SLOTS nonzero 64-bit keys, shared */
static uint64_t *seen_bytes;    /* the same, of contents alone */

/* seen_insert -- 1 if h is new in the set */
static int
seen_insert(uint64_t *set, XXH128_hash_t h)
{
	uint64_t key = h.low64 ? h.low64 : 1;
	size_t i = (size_t)(h.high64 & (HASH_SLOTS - 1));
	for (size_t n = 0; n < HASH_SLOTS; n++, i = (i + 1) & (HASH_SLOTS - 1)) {
		uint64_t cur = __atomic_load_n(&set[i], __ATOMIC_ACQUIRE);
		if (cur == key)
			return 0;
		if (cur == 0) {
			uint64_t z = 0;
			if (__atomic_compare_exchange_n(&set[i], &z, key, 0,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				return 1;
			if (z == key)
				return 0;
		}
	}
	return 0;
}

/* -- random numbers ---------------------------------------------------- */

static uint64_t rng;

static uint64_t
rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* -- replay ------------------------------------------------------------ */

/* item -- a piece of a WRITE (or a SIZE) in flight */
struct item {
	uint64_t seq;
	uint64_t off, len;      /* SIZE: off is the size, len 0 */
	const unsigned char *data;
	int is_size;
};

static unsigned char *D;        /* durable image, max_size bytes */
static int name_durable;        /* the file's directory entry is durable */
static uint64_t D_size;
static struct item *pend;       /* in flight, in seq order */
static size_t npend, cappend;

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
static void
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

static int
is_point(size_t i)
{
	return recs[i].h->type == REC_DURABLE || recs[i].h->type == REC_DRAIN ||
		recs[i].h->type == REC_DIRSYNC;
}

/* -- building one state ------------------------------------------------ */

static unsigned char *W;        /* working image: D plus chosen items */
static uint64_t W_size;
struct undo { uint64_t off, len; size_t at; };   /* old bytes at undobuf + at */
static struct undo *undos;
static size_t nundo, capundo;
static unsigned char *undobuf;
static size_t undoused, undocap;

static void
w_write(uint64_t off, const unsigned char *data, uint64_t len)
{
	if (nundo == capundo)
		undos = realloc(undos, (capundo = capundo ? capundo * 2 : 1024) * sizeof(*undos));
	if (undoused + len > undocap) {
		undocap = (undocap ? undocap * 2 : (1u << 20)) + len;
		undobuf = realloc(undobuf, undocap);
		if (!undobuf) {
			perror("realloc");
			exit(2);
		}
	}
	memcpy(undobuf + undoused, W + off, len);
	undos[nundo++] = (struct undo){ off, len, undoused };
	undoused += len;
	memcpy(W + off, data, len);
}

static void
w_reset(void)
{
	while (nundo) {
		struct undo *u = &undos[--nundo];
		memcpy(W + u->off, undobuf + u->at, u->len);
	}
	undoused = 0;
	W_size = D_size;
}

/* w_apply -- apply item it, or only the sectors set in mask (bit per grain) */
static void
w_apply(const struct item *it, uint64_t mask)
{
	if (it->is_size) {
		W_size = it->off;
		return;
	}
	if (mask == ~0ull) {
		w_write(it->off, it->data, it->len);
		return;
	}
	for (uint64_t k = 0; k * grain < it->len; k++)
		if (mask & (1ull << k))
			w_write(it->off + k * grain, it->data + k * grain, grain);
}

/* -- checking one state ------------------------------------------------ */

struct point_ctx {
	size_t k;               /* crash point: after record k (0: log start) */
	size_t end;             /* the next ordering point (or nrecs) */
	const char *after;      /* name of the ordering point */
	uint64_t seq;
};

struct listed { uint64_t id; uint32_t seg; uint64_t lineage; int ok; };


/* zero_page -- 1 if W[off, off+n) is all zero */
static int
zero_run(uint64_t off, uint64_t n)
{
	static const unsigned char z[4096];
	while (n) {
		uint64_t k = n < sizeof(z) ? n : sizeof(z);
		if (memcmp(W + off, z, k))
			return 0;
		off += k;
		n -= k;
	}
	return 1;
}

/* write_state -- W as a sparse file at path */
static void
write_state(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "crashcheck: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	for (uint64_t off = 0; off < W_size; off += 4096) {
		uint64_t n = W_size - off < 4096 ? W_size - off : 4096;
		if (zero_run(off, n))
			continue;
		if (pwrite(fd, W + off, n, (off_t)off) != (ssize_t)n) {
			fprintf(stderr, "crashcheck: writing %s: %s\n", path, strerror(errno));
			exit(2);
		}
	}
	if (ftruncate(fd, (off_t)W_size) < 0) {
		perror("ftruncate");
		exit(2);
	}
	close(fd);
}

/*
 * read_pool -- the pool as the library reads it: header, current catalog,
 * checkpoints with their checksums. 0 readable (list filled), -1 not (why in msg)
 */
static int
read_pool(struct listed *list, unsigned *nlist, struct pool_hdr *hdr, char *msg, size_t ml)
{
	*nlist = 0;
	if (W_size < sizeof(*hdr)) {
		snprintf(msg, ml, "file is %llu bytes", (unsigned long long)W_size);
		return -1;
	}
	memcpy(hdr, W, sizeof(*hdr));
	if (layout_check(hdr, W_size) < 0) {
		snprintf(msg, ml, "header: %s", ckpt_errormsg());
		return -1;
	}
	uint64_t w;
	memcpy(&w, W + POOL_COMMIT_OFF, sizeof(w));
	if (w == 0) {
		snprintf(msg, ml, "commit word is 0");
		return -1;
	}
	const unsigned char *copy = W + layout_cat_off(hdr, w & 1);
	if (cat_validate(hdr, copy, w >> 1) < 0) {
		snprintf(msg, ml, "catalog: %s", ckpt_errormsg());
		return -1;
	}
	const struct cat_entry *e = (const void *)(copy + sizeof(struct cat_hdr));
	for (uint32_t i = 0; i < hdr->max_segments; i++) {
		if (e[i].state != CAT_CKPT)
			continue;
		uint64_t so = layout_seg_off(hdr, i);
		int ok = so + e[i].used <= W_size &&
			XXH3_64bits(W + so, e[i].used) == e[i].checksum;
		list[(*nlist)++] = (struct listed){ e[i].ckpt_id, i, e[i].lineage, ok };
	}
	return 0;
}

static const struct ack *
ack_of(uint64_t id)
{
	for (unsigned i = 0; i < nacks; i++)
		if (acks[i].id == id)
			return &acks[i];
	return NULL;
}

/* keep_at -- the retention of group g announced before position end (0: unknown) */
static unsigned
keep_at(int g, size_t end)
{
	unsigned k = 0;
	for (unsigned i = 0; i < nkeeps; i++)
		if (keeps[i].group == g && keeps[i].pos < end)
			k = keeps[i].k;
	return k;
}

/* run_inspect -- ckpt-inspect verify --json; exit status (or 128+sig, 255 timeout); output in out */
static int
run_inspect(const char *path, char *out, size_t outlen)
{
	int pfd[2];
	if (pipe(pfd) < 0)
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	posix_spawn_file_actions_addclose(&fa, pfd[0]);
	char *argv[] = { (char *)opt.inspect, "verify", (char *)path, "--json",
		"--no-progress", NULL };
	pid_t pid;
	int r = posix_spawn(&pid, opt.inspect, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (r != 0) {
		close(pfd[0]);
		snprintf(out, outlen, "cannot run %s: %s", opt.inspect, strerror(r));
		return -1;
	}
	size_t got = 0;
	time_t t0 = time(NULL);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	int status = 0, done = 0, timed_out = 0;
	for (;;) {
		ssize_t n = read(pfd[0], out + got, outlen - 1 - got);
		if (n > 0) {
			got += (size_t)n;
			if (got == outlen - 1)
				got = outlen / 2;       /* keep reading; keep the start */
			continue;
		}
		if (!done && waitpid(pid, &status, WNOHANG) == pid)
			done = 1;
		if (n == 0)
			break;
		if (time(NULL) - t0 > (time_t)opt.timeout) {
			kill(pid, SIGKILL);
			timed_out = 1;
		}
		usleep(2000);
	}
	close(pfd[0]);
	if (!done)
		waitpid(pid, &status, 0);
	out[got] = '\0';
	if (timed_out)
		return 255;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* open_result -- what the ckpt_open child reports */
struct open_result {
	int status;             /* 0 opened, 1 refused, 2 opened with a wrong heap */
	int err;
	uint64_t from;
	char msg[512];
};

/* run_open -- ckpt_open(path, CKPT_LATEST) in a child; -1 crash/timeout (why in r->msg) */
static int
run_open(const char *path, struct open_result *r, const struct ack *want)
{
	struct open_result *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -1;
	memset(sh, 0, sizeof(*sh));
	sh->status = -1;
	pid_t pid = fork();
	if (pid == 0) {
		alarm(opt.timeout);
		/* the state files live on the checker's filesystem, which may not
		 * clone: a pool recorded in reflink mode is opened in copy mode
		 * (the fork mode decides forks, not how a restart copies) */
		struct pool_hdr ph;
		memcpy(&ph, W, sizeof(ph));
		struct ckpt_config cfg = { .fork_mode = CKPT_FORK_COPY };
		int reflink = W_size >= sizeof(ph) && ph.fork_mode == CKPT_FORK_REFLINK;
		ckpt_pool *p = ckpt_open(path, CKPT_LATEST, reflink ? &cfg : NULL);
		if (!p) {
			sh->err = errno;
			snprintf(sh->msg, sizeof(sh->msg), "%s", ckpt_errormsg());
			sh->status = 1;
			_exit(0);
		}
		sh->from = ckpt_restarted_from(p);
		sh->status = 0;
		if (want && want->id == sh->from) {
			char err[256];
			int64_t g = ts_check(ckpt_root(p), want->nodes, err, sizeof(err));
			if (g != (int64_t)want->gen) {
				sh->status = 2;
				snprintf(sh->msg, sizeof(sh->msg), "heap of checkpoint %llu: %s "
					"(want generation %llu)", (unsigned long long)sh->from,
					g < 0 ? err : "wrong generation",
					(unsigned long long)want->gen);
			}
		}
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	*r = *sh;
	munmap(sh, sizeof(*sh));
	if (WIFSIGNALED(status)) {
		snprintf(r->msg, sizeof(r->msg), "ckpt_open child killed by signal %d%s",
				WTERMSIG(status), WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
		return -1;
	}
	if (r->status < 0) {
		snprintf(r->msg, sizeof(r->msg), "ckpt_open child exited %d without a result",
				WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return -1;
	}
	return 0;
}

static FILE *failf;

/* report -- a failure of state desc at point pc; keep the state */
static void
report(const struct point_ctx *pc, const char *desc, const char *fmt, ...)
{
	char why[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	uint64_t n = __atomic_fetch_add(&st->failures, 1, __ATOMIC_RELAXED);
	char path[4200];
	snprintf(path, sizeof(path), "%s/fail-%d-%llu.pool", opt.out, (int)getpid(),
			(unsigned long long)n);
	if (n < 20)
		write_state(path);
	else
		snprintf(path, sizeof(path), "(not kept)");
	char line[6000];
	snprintf(line, sizeof(line), "FAIL point %zu (after seq %llu %s) state %s: %s [%s]\n",
		pc->k, (unsigned long long)pc->seq, pc->after, desc, why, path);
	fputs(line, stderr);
	if (failf) {
		fputs(line, failf);
		fflush(failf);
	}
}

/* check_state -- the rules on W */
static void
check_state(const struct point_ctx *pc, const char *desc, const char *path)
{
	struct listed list[POOL_MAX_SEGMENTS];
	unsigned nl;
	struct pool_hdr hdr;
	char why[512];
	int readable = read_pool(list, &nl, &hdr, why, sizeof(why)) == 0;
	int created = created_pos < pc->k;
	int failed = 0;
	if (!readable) {
		__atomic_fetch_add(&st->refused, 1, __ATOMIC_RELAXED);
		if (created) {
			report(pc, desc, "pool unreadable after ckpt_create returned: %s", why);
			failed = 1;
		}
	}
	/* every listed checkpoint whole */
	uint64_t newest = 0;
	for (unsigned i = 0; i < nl; i++) {
		if (!list[i].ok && !failed) {
			report(pc, desc, "checkpoint %llu (segment %u) is listed but its bytes "
				"do not match its checksum", (unsigned long long)list[i].id,
				list[i].seg);
			failed = 1;
		}
		if (list[i].id > newest)
			newest = list[i].id;
	}
	if (readable && nl == 0)
		__atomic_fetch_add(&st->unpublished, 1, __ATOMIC_RELAXED);
	/* every checkpoint acknowledged before the point, unless retention */
	for (unsigned a = 0; a < nacks && !failed; a++) {
		if (acks[a].pos >= pc->k)
			continue;
		int present = 0;
		unsigned newer = 0;
		for (unsigned i = 0; i < nl; i++) {
			const struct ack *o = ack_of(list[i].id);
			if (list[i].id == acks[a].id)
				present = 1;
			else if (list[i].id > acks[a].id && o && o->group == acks[a].group)
				newer++;
		}
		unsigned k = keep_at(acks[a].group, pc->end);
		if (!present && !(k && newer >= k)) {
			report(pc, desc, "checkpoint %llu (group %s), acknowledged before this "
				"point, is gone (%u newer of its group listed, keep %u)%s%s",
				(unsigned long long)acks[a].id, groups[acks[a].group], newer, k,
				readable ? "" : "; pool unreadable: ", readable ? "" : why);
			failed = 1;
		}
	}
	write_state(path);
	/* ckpt-inspect verify */
	char out[8192];
	int rc = run_inspect(path, out, sizeof(out));
	if (rc == 0 && strstr(out, "\"warnings\":0") == NULL)
		__atomic_fetch_add(&st->dead_heap_warnings, 1, __ATOMIC_RELAXED);
	if (!failed && rc != (readable ? 0 : 1)) {
		report(pc, desc, "ckpt-inspect verify exited %d (expected %d): %.600s",
				rc, readable ? 0 : 1, out);
		failed = 1;
	}
	/* ckpt_open(LATEST) */
	struct open_result r;
	const struct ack *want = ack_of(newest);
	if (run_open(path, &r, want) < 0) {
		if (!failed)
			report(pc, desc, "%s", r.msg);
		failed = 1;
	} else if (!failed) {
		if (readable && nl > 0) {
			if (r.status == 1)
				report(pc, desc, "ckpt_open(LATEST) refused a pool listing "
					"checkpoint %llu: %s", (unsigned long long)newest, r.msg);
			else if (r.from != newest)
				report(pc, desc, "ckpt_open(LATEST) restarted from %llu, the newest "
					"listed is %llu", (unsigned long long)r.from,
					(unsigned long long)newest);
			else if (r.status == 2)
				report(pc, desc, "%s", r.msg);
			else
				__atomic_fetch_add(&st->opened, 1, __ATOMIC_RELAXED);
		} else if (readable) {
			if (r.status != 1 || r.err != ENOENT)
				report(pc, desc, "pool without checkpoints: ckpt_open gave %s "
					"(errno %d, %s), expected ENOENT",
					r.status == 1 ? "an error" : "a pool", r.err, r.msg);
		} else if (r.status != 1 || !r.msg[0]) {
			report(pc, desc, "unreadable pool (%s) %s", why,
				r.status == 1 ? "refused without a message" : "was opened");
		}
	}
	__atomic_fetch_add(&st->checked, 1, __ATOMIC_RELAXED);
}

/* -- generating the states of one crash point --------------------------- */

static struct item *inf;        /* in flight at this point, seq order */
static size_t ninf, capinf;
static uint64_t meta_end = (uint64_t)2 << 20;

/* try_state -- hash W, and check it if new */
static void
try_state(const struct point_ctx *pc, const char *desc, const char *path)
{
	__atomic_fetch_add(&st->generated, 1, __ATOMIC_RELAXED);
	XXH3_state_t *hs = XXH3_createState();
	XXH3_128bits_reset(hs);
	XXH3_128bits_update(hs, &W_size, sizeof(W_size));
	/* holes and zeros hash alike: the model does not tell them apart */
	XXH3_128bits_update(hs, W, W_size);
	if (seen_insert(seen_bytes, XXH3_128bits_digest(hs)))
		__atomic_fetch_add(&st->distinct_bytes, 1, __ATOMIC_RELAXED);
	/*
	 * One state is checked once per set of promises: the same bytes at a
	 * later crash point must hold more (checkpoints acknowledged since),
	 * so the key also covers what the rules depend on there.
	 */
	uint64_t req[3] = { 0, created_pos < pc->k, 0 };
	for (unsigned i = 0; i < nacks; i++)
		req[0] += acks[i].pos < pc->k;
	for (unsigned i = 0; i < nkeeps; i++)
		req[2] += keeps[i].pos < pc->end;
	XXH3_128bits_update(hs, req, sizeof(req));
	XXH128_hash_t h = XXH3_128bits_digest(hs);
	XXH3_freeState(hs);
	if (!seen_insert(seen, h))
		return;
	uint64_t n = __atomic_add_fetch(&st->distinct, 1, __ATOMIC_RELAXED);
	if (opt.max_states && n > opt.max_states)
		return;
	if (opt.verbose > 1)
		fprintf(stderr, "point %zu state %s\n", pc->k, desc);
	check_state(pc, desc, path);
}

static void
inf_add(struct item it)
{
	if (ninf == capinf)
		inf = realloc(inf, (capinf = capinf ? capinf * 2 : 1024) * sizeof(*inf));
	inf[ninf++] = it;
}

static int
is_meta(const struct item *it)
{
	return !it->is_size && it->off < meta_end;
}

static void
gen_point(const struct point_ctx *pc, const char *path)
{
	char desc[128];
	__atomic_fetch_add(&st->points, 1, __ATOMIC_RELAXED);
	if (ninf > st->max_inflight)
		st->max_inflight = ninf;        /* a hint only; races are harmless */
	rng = opt.seed * 0x9e3779b97f4a7c15ull + pc->k;
	/* prefixes */
	unsigned char *want = calloc(ninf + 1, 1);
	if (!opt.prefixes || opt.prefixes < 2 || ninf + 1 <= opt.prefixes) {
		memset(want, 1, ninf + 1);
	} else {
		for (unsigned q = 0; q < opt.prefixes; q++)
			want[(size_t)((double)q * (double)ninf / (opt.prefixes - 1))] = 1;
		for (size_t i = 0; i < ninf; i++)
			if (is_meta(&inf[i]))
				want[i] = want[i + 1] = 1;
	}
	w_reset();
	for (size_t j = 0; j <= ninf; j++) {
		if (j > 0)
			w_apply(&inf[j - 1], ~0ull);
		if (want[j]) {
			snprintf(desc, sizeof(desc), "prefix %zu/%zu", j, ninf);
			try_state(pc, desc, path);
		}
	}
	free(want);
	/* all in flight but one metadata item */
	for (size_t x = 0; x < ninf; x++) {
		if (!is_meta(&inf[x]))
			continue;
		w_reset();
		for (size_t i = 0; i < ninf; i++)
			if (i != x)
				w_apply(&inf[i], ~0ull);
		snprintf(desc, sizeof(desc), "all but item %zu/%zu", x, ninf);
		try_state(pc, desc, path);
	}
	if (opt.posix_dir && !name_durable) {
		/* the directory entry may not be on disk: no file at all */
		w_reset();
		W_size = 0;
		try_state(pc, "absent (directory never fsynced)", path);
	}
	if (ninf == 0)
		return;
	/* random subsets, and torn ones */
	for (unsigned r = 0; r < opt.subsets + opt.torn; r++) {
		int torn = r >= opt.subsets;
		uint64_t pkeep = rnd() % 1000;  /* probability of each item, per mille */
		w_reset();
		unsigned ntorn = 0;
		for (size_t i = 0; i < ninf; i++) {
			if (rnd() % 1000 >= pkeep)
				continue;
			uint64_t mask = ~0ull;
			uint64_t sectors = inf[i].len / grain;
			if (torn && !inf[i].is_size && sectors > 1 && rnd() % 4 == 0) {
				mask = rnd() & ((sectors >= 64 ? 0 : 1ull << sectors) - 1);
				ntorn++;
			}
			w_apply(&inf[i], mask);
		}
		snprintf(desc, sizeof(desc), "%s %u (p %.3f, %u items torn)",
			torn ? "torn" : "subset", r, (double)pkeep / 1000, ntorn);
		try_state(pc, desc, path);
	}
}

/*
 * worker -- replay the whole log; generate and check the crash points
 * with index % jobs == w
 */
static void
worker(unsigned w)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/state-%u.pool", opt.out, w);
	D = calloc(1, max_size + 4096);
	W = calloc(1, max_size + 4096);
	if (!D || !W) {
		perror("calloc");
		exit(2);
	}
	size_t npoint = 0;
	for (size_t k = 0; k < nrecs; k++) {
		if (k > 0)
			apply_rec(k);
		if (k > 0 && !is_point(k))
			continue;
		if (npoint++ % opt.jobs != w)
			continue;
		if (opt.max_states && st->distinct >= opt.max_states)
			break;
		/* the epoch: pending now, plus writes up to the next point */
		size_t end = k + 1;
		while (end < nrecs && !is_point(end))
			end++;
		ninf = 0;
		for (size_t i = 0; i < npend; i++)
			inf_add(pend[i]);
		for (size_t i = k + 1; i < end; i++) {
			const struct rec_hdr *h = recs[i].h;
			if (h->type == REC_WRITE)
				inf_add((struct item){ h->seq, h->off, h->len, recs[i].pay, 0 });
			else if (h->type == REC_SIZE)
				inf_add((struct item){ h->seq, h->off, 0, NULL, 1 });
		}
		/* W starts as D */
		memcpy(W, D, max_size);
		nundo = 0;
		undoused = 0;
		W_size = D_size;
		const struct rec_hdr *h = recs[k].h;
		struct point_ctx pc = { k, end, k ? rec_op_names[h->op < OP_COUNT ? h->op : 0]
			: "start", h->seq };
		gen_point(&pc, path);
	}
	unlink(path);
}

/* dump_log -- one line per record; runs of writes by one op are merged */
static void
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

static void
usage(void)
{
	fprintf(stderr,
		"usage: crashcheck [OPTIONS] LOGDIR\n"
		"  --inspect PATH   the ckpt-inspect binary (required)\n"
		"  --out DIR        state files and failures (default LOGDIR)\n"
		"  --prefixes N     prefixes per crash point, evenly spaced (0: every one; default 16)\n"
		"  --subsets N      random subsets per crash point (default 8)\n"
		"  --torn N         random torn states per crash point (default 4)\n"
		"  --seed N         random seed (default 1)\n"
		"  --max-states N   stop after N distinct states (default: no limit)\n"
		"  -j N             worker processes (default 1)\n"
		"  --timeout S      per ckpt_open / verify (default 60)\n"
		"  --posix-dir      a file created in the run may vanish until its directory is\n"
		"                   fsynced (strict POSIX; libckpt does not do it: see CRASH-STATES.md)\n"
		"  --dump           print the log (writes merged per op run) and stop\n"
		"  --expect-fail    self-test: succeed only if failures are found\n"
		"  -v               more output\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "inspect", 1, 0, 'i' }, { "out", 1, 0, 'o' }, { "prefixes", 1, 0, 'p' },
		{ "subsets", 1, 0, 's' }, { "torn", 1, 0, 't' }, { "seed", 1, 0, 'S' },
		{ "max-states", 1, 0, 'm' }, { "timeout", 1, 0, 'T' },
		{ "expect-fail", 0, 0, 'x' }, { "dump", 0, 0, 'd' },
		{ "posix-dir", 0, 0, 'P' }, { 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "j:v", lo, NULL)) != -1) {
		switch (c) {
		case 'i': opt.inspect = optarg; break;
		case 'o': opt.out = optarg; break;
		case 'p': opt.prefixes = (unsigned)atoi(optarg); break;
		case 's': opt.subsets = (unsigned)atoi(optarg); break;
		case 't': opt.torn = (unsigned)atoi(optarg); break;
		case 'S': opt.seed = strtoull(optarg, NULL, 0); break;
		case 'm': opt.max_states = strtoull(optarg, NULL, 0); break;
		case 'T': opt.timeout = (unsigned)atoi(optarg); break;
		case 'x': opt.expect_fail = 1; break;
		case 'd': opt.dump = 1; break;
		case 'P': opt.posix_dir = 1; break;
		case 'j': opt.jobs = (unsigned)atoi(optarg) ? (unsigned)atoi(optarg) : 1; break;
		case 'v': opt.verbose++; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || (!opt.inspect && !opt.dump))
		usage();
	opt.logdir = argv[optind];
	if (opt.dump) {
		load_log();
		dump_log();
		return 0;
	}
	if (!opt.out)
		opt.out = opt.logdir;
	load_log();
	char fp[4200];
	snprintf(fp, sizeof(fp), "%s/failures.txt", opt.out);
	failf = fopen(fp, "w");
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	seen = mmap(NULL, HASH_SLOTS * sizeof(*seen), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	seen_bytes = mmap(NULL, HASH_SLOTS * sizeof(*seen), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (st == MAP_FAILED || seen == MAP_FAILED || seen_bytes == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	/* the metadata region: up to data_off of the last header seen */
	for (size_t i = 0; i < nrecs; i++) {
		const struct rec_hdr *h = recs[i].h;
		if (h->type == REC_WRITE && h->off == 0 && h->len >= sizeof(struct pool_hdr)) {
			struct pool_hdr ph;
			memcpy(&ph, recs[i].pay, sizeof(ph));
			if (layout_check(&ph, ph.file_size) == 0)
				meta_end = ph.data_off;
		}
	}
	fflush(NULL);
	pid_t pids[64];
	unsigned nj = opt.jobs > 64 ? 64 : opt.jobs;
	opt.jobs = nj;
	for (unsigned w = 0; w < nj; w++) {
		pids[w] = fork();
		if (pids[w] == 0) {
			worker(w);
			fflush(NULL);
			_exit(0);
		}
	}
	int bad = 0;
	for (unsigned w = 0; w < nj; w++) {
		int s;
		waitpid(pids[w], &s, 0);
		if (!WIFEXITED(s) || WEXITSTATUS(s) != 0) {
			fprintf(stderr, "crashcheck: worker %u failed (status %d)\n", w, s);
			bad = 1;
		}
	}
	uint64_t checked = st->checked;
	printf("log %s: %zu records, grain %u, file up to %llu bytes, %u acks\n",
		opt.logdir, nrecs, grain, (unsigned long long)max_size, nacks);
	printf("crash points %llu, states generated %llu, distinct %llu, checked %llu, "
		"failures %llu, distinct contents %llu\n", (unsigned long long)st->points,
		(unsigned long long)st->generated, (unsigned long long)st->distinct,
		(unsigned long long)checked, (unsigned long long)st->failures,
		(unsigned long long)st->distinct_bytes);
	printf("  refused (unreadable, before create returned) %llu, no checkpoint listed %llu, "
		"opened a checkpoint %llu, verify warnings (dead heaps) %llu, "
		"most writes in flight at a point %llu\n",
		(unsigned long long)st->refused, (unsigned long long)st->unpublished,
		(unsigned long long)st->opened, (unsigned long long)st->dead_heap_warnings,
		(unsigned long long)st->max_inflight);
	printf("counts: points=%llu generated=%llu distinct=%llu checked=%llu failures=%llu "
		"contents=%llu\n", (unsigned long long)st->points,
		(unsigned long long)st->generated, (unsigned long long)st->distinct,
		(unsigned long long)checked, (unsigned long long)st->failures,
		(unsigned long long)st->distinct_bytes);
	if (bad)
		return 2;
	if (opt.expect_fail)
		return st->failures ? 0 : 1;
	return st->failures ? 1 : 0;
}
