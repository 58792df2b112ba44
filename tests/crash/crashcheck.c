/*
 * crashcheck.c -- build the pool files a power loss could leave, from a
 * recorder log (recorder.c, reclog.h), and check libckpt on each (issue 17).
 *
 *   crashcheck [OPTIONS] LOGDIR
 *
 * Files: this one has the options, the generator and main; crashlog.c
 * reads and replays the log, crashrules.c checks one state (crashcheck.h
 * is what they share).
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
 * (acknowledgements before it, "created", retention markers, checkpoints
 * begun: "begin" markers), since the
 * same bytes may pass early in the run and fail later; "distinct contents"
 * counts by size and bytes alone.
 * --posix-dir: until the pool's directory is fsynced (REC_DIRSYNC), a file
 * created during the run may be lost whole: one more state per crash
 * point, no file at all.
 * --probe OFF:LEN[,OFF:LEN...] (the recorder's own test, any file): no
 * rules; every generated state (duplicates too) prints one line,
 *   probe K OP SIZE V1 V2 ... # DESC
 * K the crash point (log record index), OP the ordering point before it,
 * SIZE the state's file size, Vi what range i holds: its byte in hex if
 * all its bytes are that byte, "-" if it lies at or past SIZE, "mixed".
 *
 * Checks on each state (the rules, docs/CRASH-STATES.md):
 *   1. the pool's own reading: header, commit word, current catalog copy
 *      (layout_check, cat_validate); every checkpoint the catalog lists has
 *      bytes matching its checksum (sums.h: whole, or of page sums for
 *      CAT_F_PAGE_SUMS);
 *   2. every checkpoint acknowledged to the driver before the crash point
 *      (marker "ack ID GROUP GEN NODES") is listed, unless retention may
 *      have dropped it: at least keep (marker "keep GROUP K", the value at
 *      the crash) newer checkpoints of its group are listed; in a cow pool
 *      keep - 1 suffice (keep >= 2) while a checkpoint of the group is
 *      under way (marker "begin GROUP GEN NODES", its ack not before the
 *      point): it may have recycled the lineage's oldest;
 *   3. an unreadable pool is accepted only before "created" was marked (a
 *      pool whose create had not returned), and must then be refused;
 *   4. `ckpt-inspect verify` exits 0 on a readable pool, 1 on a refused one,
 *      never anything else, never crashes or hangs;
 *   5. ckpt_open(path, CKPT_LATEST) in a forked child (timeout) opens the
 *      newest listed checkpoint, and its heap holds exactly the structure
 *      the driver checkpointed there (ts_check: generation and node count
 *      from the ack marker; a checkpoint no ack names: the generation of
 *      a checkpoint under way); with no checkpoint listed it opens an empty
 *      heap (never checkpointed) or fails with ENOENT (checkpoints lost);
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
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "crashcheck.h"
#include "format.h"
#include "layout.h"

/* -- options ----------------------------------------------------------- */

struct options opt = {
	.prefixes = 16, .subsets = 8, .torn = 4, .seed = 1, .jobs = 1, .timeout = 60,
};

/* -- shared counters and the set of states seen ------------------------ */

struct stats *cnt;               /* shared by the workers */
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

/* -- building one state ------------------------------------------------ */

unsigned char *W;        /* working image: D plus chosen items */
uint64_t W_size;
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

/* -- generating the states of one crash point --------------------------- */

static struct item *inf;        /* in flight at this point, seq order */
static size_t ninf, capinf;
static uint64_t meta_end = (uint64_t)2 << 20;

/* probe_state -- --probe: print what the probed ranges of W hold */
static void
probe_state(const struct point_ctx *pc, const char *desc)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "probe %zu %s %llu", pc->k, pc->after,
			(unsigned long long)W_size);
	for (unsigned i = 0; i < opt.nprobe; i++) {
		uint64_t off = opt.probe_off[i], len = opt.probe_len[i];
		int same = off < W_size && len <= W_size - off;
		const unsigned char *p = same ? W + off : NULL;
		for (uint64_t j = 1; same && j < len; j++)
			same = p[j] == p[0];
		if (off >= W_size)
			n += snprintf(line + n, sizeof(line) - (size_t)n, " -");
		else if (same)
			n += snprintf(line + n, sizeof(line) - (size_t)n, " %02x", p[0]);
		else
			n += snprintf(line + n, sizeof(line) - (size_t)n, " mixed");
	}
	printf("%s # %s\n", line, desc);
}

/* try_state -- hash W, and check it if new (--probe: print it) */
static void
try_state(const struct point_ctx *pc, const char *desc, const char *path)
{
	__atomic_fetch_add(&cnt->generated, 1, __ATOMIC_RELAXED);
	if (opt.nprobe) {
		probe_state(pc, desc);
		return;
	}
	XXH3_state_t *hs = XXH3_createState();
	XXH3_128bits_reset(hs);
	XXH3_128bits_update(hs, &W_size, sizeof(W_size));
	/* holes and zeros hash alike: the model does not tell them apart */
	XXH3_128bits_update(hs, W, W_size);
	if (seen_insert(seen_bytes, XXH3_128bits_digest(hs)))
		__atomic_fetch_add(&cnt->distinct_bytes, 1, __ATOMIC_RELAXED);
	/*
	 * One state is checked once per set of promises: the same bytes at a
	 * later crash point must hold more (checkpoints acknowledged since),
	 * so the key also covers what the rules depend on there.
	 */
	uint64_t req[5] = { 0, created_pos < pc->k, 0, 0, 0 };
	for (unsigned i = 0; i < npersists; i++)
		req[4] += persists[i].pos < (persists[i].done ? pc->k : pc->end);
	for (unsigned i = 0; i < nacks; i++)
		req[0] += acks[i].pos < pc->k;
	for (unsigned i = 0; i < nkeeps; i++)
		req[2] += keeps[i].pos < pc->end;
	for (unsigned i = 0; i < nbegins; i++)
		req[3] += begins[i].pos < pc->end;
	XXH3_128bits_update(hs, req, sizeof(req));
	XXH128_hash_t h = XXH3_128bits_digest(hs);
	XXH3_freeState(hs);
	if (!seen_insert(seen, h))
		return;
	uint64_t n = __atomic_add_fetch(&cnt->distinct, 1, __ATOMIC_RELAXED);
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
	__atomic_fetch_add(&cnt->points, 1, __ATOMIC_RELAXED);
	if (ninf > cnt->max_inflight)
		cnt->max_inflight = ninf;        /* a hint only; races are harmless */
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
		if (opt.max_states && cnt->distinct >= opt.max_states)
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

/* parse_probe -- --probe OFF:LEN[,OFF:LEN...] (C numbers: 0x... allowed) */
static void
parse_probe(const char *arg)
{
	const char *p = arg;
	while (*p) {
		char *e;
		if (opt.nprobe == sizeof(opt.probe_off) / sizeof(opt.probe_off[0]))
			break;
		uint64_t off = strtoull(p, &e, 0);
		if (*e != ':')
			break;
		uint64_t len = strtoull(e + 1, &e, 0);
		if (!len || (*e && *e != ','))
			break;
		opt.probe_off[opt.nprobe] = off;
		opt.probe_len[opt.nprobe++] = len;
		p = *e ? e + 1 : e;
	}
	if (*p || !opt.nprobe) {
		fprintf(stderr, "crashcheck: bad --probe %s (OFF:LEN[,OFF:LEN...], at most 8)\n",
			arg);
		exit(2);
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
		"  --strict-keep    rule 2 without the cow allowance (a lineage one short while\n"
		"                   a checkpoint recycles): the test that recycling is exercised\n"
		"  --dump           print the log (writes merged per op run) and stop\n"
		"  --probe OFF:LEN[,OFF:LEN...]  no rules: print what these ranges hold in\n"
		"                   every state (the recorder's test; --inspect not needed)\n"
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
		{ "posix-dir", 0, 0, 'P' }, { "strict-keep", 0, 0, 'K' },
		{ "probe", 1, 0, 'R' }, { 0, 0, 0, 0 },
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
		case 'K': opt.strict_keep = 1; break;
		case 'R': parse_probe(optarg); break;
		case 'j': opt.jobs = (unsigned)atoi(optarg) ? (unsigned)atoi(optarg) : 1; break;
		case 'v': opt.verbose++; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || (!opt.inspect && !opt.dump && !opt.nprobe))
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
	cnt = mmap(NULL, sizeof(*cnt), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	seen = mmap(NULL, HASH_SLOTS * sizeof(*seen), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	seen_bytes = mmap(NULL, HASH_SLOTS * sizeof(*seen), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (cnt == MAP_FAILED || seen == MAP_FAILED || seen_bytes == MAP_FAILED) {
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
	uint64_t checked = cnt->checked;
	printf("log %s: %zu records, grain %u, file up to %llu bytes, %u acks\n",
		opt.logdir, nrecs, grain, (unsigned long long)max_size, nacks);
	printf("crash points %llu, states generated %llu, distinct %llu, checked %llu, "
		"failures %llu, distinct contents %llu\n", (unsigned long long)cnt->points,
		(unsigned long long)cnt->generated, (unsigned long long)cnt->distinct,
		(unsigned long long)checked, (unsigned long long)cnt->failures,
		(unsigned long long)cnt->distinct_bytes);
	printf("  refused (unreadable, before create returned) %llu, no checkpoint listed %llu, "
		"opened a checkpoint %llu, verify warnings (dead heaps) %llu, "
		"most writes in flight at a point %llu, lineage one short (recycling) %llu, "
		"newest published but not acknowledged (heap of a checkpoint under way) %llu, "
		"dead cow heaps checked against their last persist %llu\n",
		(unsigned long long)cnt->refused, (unsigned long long)cnt->unpublished,
		(unsigned long long)cnt->opened, (unsigned long long)cnt->dead_heap_warnings,
		(unsigned long long)cnt->max_inflight, (unsigned long long)cnt->one_short,
		(unsigned long long)cnt->unacked, (unsigned long long)cnt->dead_persisted);
	printf("counts: points=%llu generated=%llu distinct=%llu checked=%llu failures=%llu "
		"contents=%llu\n", (unsigned long long)cnt->points,
		(unsigned long long)cnt->generated, (unsigned long long)cnt->distinct,
		(unsigned long long)checked, (unsigned long long)cnt->failures,
		(unsigned long long)cnt->distinct_bytes);
	if (bad)
		return 2;
	if (opt.expect_fail)
		return cnt->failures ? 0 : 1;
	return cnt->failures ? 1 : 0;
}
