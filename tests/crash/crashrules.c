/*
 * crashrules.c -- the rules every crash state must pass (crashcheck.c's
 * top comment and docs/CRASH-STATES.md list them): the pool as the library
 * reads it, with every listed checkpoint whole; every acknowledged
 * checkpoint still there unless retention may have dropped it (or, in a
 * cow pool, a checkpoint under way recycled it); an
 * unreadable pool only before ckpt_create returned; `ckpt-inspect verify`
 * (spawned, with a timeout) exiting 0 or 1 as the pool is readable or not;
 * ckpt_open(CKPT_LATEST) in a forked child (with a timeout) restarting from
 * the newest listed checkpoint with exactly the heap the driver
 * checkpointed. The first broken rule of a state is reported, and the
 * state kept as a file.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "catalog.h"
#include "crashcheck.h"
#include "heap.h"
#include "inspect.h"
#include "layout.h"
#include "pagelog.h"
#include "sums.h"
#include "test_checkpoint_util.h"

extern char **environ;

/* -- checking one state ------------------------------------------------ */

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
 * logged_image -- the image of logged checkpoint e (segment i) in W: its
 * segment's bytes with its page log over them (pagelog.h), in a buffer the
 * caller frees; NULL if the log is damaged or lies past the file
 */
static unsigned char *
logged_image(const struct pool_hdr *hdr, const struct cat_entry *e, uint32_t i)
{
	uint64_t slot = layout_log_off(hdr, i), slot_len = hdr->seg_size / LAYOUT_LOG_RATIO;
	const struct plog_hdr *h = (const void *)(W + slot);
	if (!(hdr->flags & POOL_F_LOG_AREA) || slot + slot_len > W_size ||
	    plog_check_hdr(h, slot_len, e->used, e->checksum) < 0 ||
	    plog_check_table(h, (const void *)(W + slot + PLOG_PAGE)) < 0)
		return NULL;
	unsigned char *img = malloc(e->used ? e->used : 1);
	if (!img)
		return NULL;
	memcpy(img, W + layout_seg_off(hdr, i), e->used);
	const struct plog_ent *t = (const void *)(W + slot + PLOG_PAGE);
	const unsigned char *pages = W + slot + plog_pages_off(h->npages);
	for (uint64_t k = 0; k < h->npages; k++)
		memcpy(img + t[k].page * PLOG_PAGE, pages + k * PLOG_PAGE, PLOG_PAGE);
	return img;
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
		int ok = so + e[i].used <= W_size;
		if (ok) {
			/* whole (XXH3 of the bytes) or, for a cow image
			 * (CAT_F_PAGE_SUMS), XXH3 of its 4 KiB page sums: sums.h,
			 * the library's own definition; a logged image (format
			 * 1.9) with its page log laid over the segment */
			unsigned char *img = (e[i].flags & CAT_F_LOGGED) ?
				logged_image(hdr, &e[i], i) : NULL;
			struct sums sm;
			sums_begin(&sm, (e[i].flags & CAT_F_PAGE_SUMS) != 0, NULL);
			sums_update(&sm, img ? img : W + so, e[i].used);
			ok = sums_end(&sm) == e[i].checksum &&
				(img || !(e[i].flags & CAT_F_LOGGED));
			free(img);
		}
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

/*
 * under_way -- 1 if the checkpoint of marker begins[b] is under way at the
 * crash point: begun before the end of the epoch, its ack not before the
 * point
 */
static int
under_way(unsigned b, const struct point_ctx *pc)
{
	if (begins[b].pos >= pc->end)
		return 0;
	for (unsigned i = 0; i < nacks; i++)
		if (acks[i].group == begins[b].group && acks[i].pos > begins[b].pos &&
		    acks[i].pos < pc->k)
			return 0;
	return 1;
}

/*
 * recycling -- 1 if a checkpoint of group g is under way at the point: in
 * cow mode it may have recycled the lineage's oldest checkpoint in its
 * first commit (image.c, image_reserve)
 */
static int
recycling(int g, const struct point_ctx *pc)
{
	for (unsigned i = 0; i < nbegins; i++)
		if (begins[i].group == g && under_way(i, pc))
			return 1;
	return 0;
}

/* gen_under_way -- 1 if a checkpoint under way at the point began at gen */
static int
gen_under_way(int64_t gen, const struct point_ctx *pc)
{
	for (unsigned i = 0; i < nbegins; i++)
		if (under_way(i, pc) && (int64_t)begins[i].gen == gen)
			return 1;
	return 0;
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
	int64_t gen;            /* an unacknowledged checkpoint's heap: ts_check */
	uint64_t from;
	int root;               /* opened: the heap has a root */
	char msg[512];
};

/* run_open -- ckpt_open(path, CKPT_LATEST) in a child; -1 crash/timeout (why in r->msg) */
static int
run_open(const char *path, struct open_result *r, const struct ack *want, uint64_t nodes)
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
		sh->root = ckpt_root(p) != NULL;
		sh->status = 0;
		if (!want && nodes) {
			char err[256];
			sh->gen = ts_check(ckpt_root(p), nodes, err, sizeof(err));
			if (sh->gen < 0)
				snprintf(sh->msg, sizeof(sh->msg), "%s", err);
		}
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

/*
 * persisted_at -- the last "persisted" marker before the crash point when
 * no later persist began by the end of the epoch (its pages may be torn
 * in flight), else NULL: the dead cow heap must then hold exactly its
 * generation (rule 6), or, once a checkpoint began after it, that
 * checkpoint's (*alt: it moves the base to an image of that generation
 * in one commit); *alt is -1 when none did
 */
static const struct persistm *
persisted_at(const struct point_ctx *pc, int64_t *alt)
{
	const struct persistm *last = NULL;
	*alt = -1;
	for (unsigned i = 0; i < npersists; i++)
		if (persists[i].done && persists[i].pos < pc->k)
			last = &persists[i];
	if (!last)
		return NULL;
	for (unsigned i = 0; i < npersists; i++)
		if (!persists[i].done && persists[i].pos > last->pos && persists[i].pos < pc->end)
			return NULL;
	for (unsigned i = 0; i < nbegins; i++)
		if (begins[i].pos > last->pos && begins[i].pos < pc->end) {
			if (*alt >= 0)
				return NULL;    /* two checkpoints: not in these workloads */
			*alt = (int64_t)begins[i].gen;
		}
	return last;
}

/*
 * dead_cow_gen -- in a child: the generation of the structure in the
 * newest dead cow heap of path, read as ckpt-inspect reads it (its base
 * with its persisted pages over it) and mapped at the pool's base; -1
 * with why in msg (no such heap: -2)
 */
static int64_t
dead_cow_gen(const char *path, uint64_t nodes, char *msg, size_t msglen)
{
	struct res { int64_t gen; char msg[256]; };
	struct res *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -1;
	sh->gen = -1;
	snprintf(sh->msg, sizeof(sh->msg), "the reading child gave no result");
	pid_t pid = fork();
	if (pid == 0) {
		alarm(opt.timeout);
		struct inspect in;
		if (inspect_open(&in, path) < 0) {
			snprintf(sh->msg, sizeof(sh->msg), "inspect_open: %s", ckpt_errormsg());
			_exit(0);
		}
		int seg = -1;
		for (uint32_t i = 0; i < in.cat.n; i++)
			if (inspect_is_cow_heap(&in, i) &&
			    (seg < 0 || in.cat.e[i].life > in.cat.e[seg].life))
				seg = (int)i;
		void *buf;
		size_t len;
		struct heap_summary sum;
		if (seg < 0) {
			sh->gen = -2;
		} else if (inspect_read_cow_heap(&in, (uint32_t)seg, &buf, &len, NULL) < 0) {
			snprintf(sh->msg, sizeof(sh->msg), "segment %d: %s", seg, ckpt_errormsg());
		} else if (heap_check(buf, len, &sum) < 0 || !sum.root_offset) {
			snprintf(sh->msg, sizeof(sh->msg), "segment %d: heap: %s", seg,
					ckpt_errormsg());
		} else {
			void *at = mmap((void *)(uintptr_t)in.hdr.base, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (at != (void *)(uintptr_t)in.hdr.base) {
				snprintf(sh->msg, sizeof(sh->msg), "cannot map at the base");
				_exit(0);
			}
			memcpy(at, buf, len);
			char err[200];
			sh->gen = ts_check((char *)at + sum.root_offset, nodes, err, sizeof(err));
			snprintf(sh->msg, sizeof(sh->msg), "segment %d: %s", seg, err);
		}
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	int64_t gen = sh->gen;
	snprintf(msg, msglen, "%s%s", sh->msg, WIFSIGNALED(status) ?
			" (the reading child was killed by a signal)" : "");
	munmap(sh, sizeof(*sh));
	return WIFSIGNALED(status) ? -1 : gen;
}

FILE *failf;

/* report -- a failure of state desc at point pc; keep the state */
static void
report(const struct point_ctx *pc, const char *desc, const char *fmt, ...)
{
	char why[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	uint64_t n = __atomic_fetch_add(&cnt->failures, 1, __ATOMIC_RELAXED);
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
void
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
		__atomic_fetch_add(&cnt->refused, 1, __ATOMIC_RELAXED);
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
		__atomic_fetch_add(&cnt->unpublished, 1, __ATOMIC_RELAXED);
	/* every checkpoint acknowledged before the point, unless retention */
	int short_used = 0;
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
		/*
		 * cow mode: a checkpoint that recycles the lineage's oldest unlists
		 * it in its first commit, before the new one is published, so
		 * while a checkpoint of the group is under way the lineage may be
		 * one short of keep (DESIGN.md): keep - 1 newer listed suffice,
		 * and only then (keep >= 2: recycling needs two)
		 */
		int cow = readable && hdr.fork_mode == CKPT_FORK_COW;
		unsigned need = k;
		if (cow && k >= 2 && !opt.strict_keep && recycling(acks[a].group, pc))
			need = k - 1;
		if (!present && !(k && newer >= need)) {
			report(pc, desc, "checkpoint %llu (group %s), acknowledged before this "
				"point, is gone (%u newer of its group listed, keep %u%s)%s%s",
				(unsigned long long)acks[a].id, groups[acks[a].group], newer, k,
				need < k ? ", one short allowed: a checkpoint of the group "
				"under way may recycle its oldest" : "",
				readable ? "" : "; pool unreadable: ", readable ? "" : why);
			failed = 1;
		} else if (!present && newer < k) {
			short_used = 1;
		}
	}
	if (short_used && !failed)
		__atomic_fetch_add(&cnt->one_short, 1, __ATOMIC_RELAXED);
	write_state(path);
	/* ckpt-inspect verify */
	char out[8192];
	int rc = run_inspect(path, out, sizeof(out));
	if (rc == 0 && strstr(out, "\"warnings\":0") == NULL)
		__atomic_fetch_add(&cnt->dead_heap_warnings, 1, __ATOMIC_RELAXED);
	if (!failed && rc != (readable ? 0 : 1)) {
		report(pc, desc, "ckpt-inspect verify exited %d (expected %d): %.600s",
				rc, readable ? 0 : 1, out);
		failed = 1;
	}
	/* rule 6: a dead cow heap holds what its last persist made durable */
	int64_t alt;
	const struct persistm *pm = readable && !failed ? persisted_at(pc, &alt) : NULL;
	if (pm) {
		char msg[512];
		int64_t g = dead_cow_gen(path, pm->nodes, msg, sizeof(msg));
		if (g == (int64_t)pm->gen || (alt >= 0 && g == alt))
			__atomic_fetch_add(&cnt->dead_persisted, 1, __ATOMIC_RELAXED);
		else {
			report(pc, desc, "the dead cow heap holds %s %lld, not generation %llu "
				"its last ckpt_persist returned with%s: %s",
				g == -2 ? "nothing (no cow heap listed)" : g < 0 ?
				"no structure:" : "generation", (long long)g,
				(unsigned long long)pm->gen, alt >= 0 ? " (nor that of the "
				"checkpoint under way)" : "", msg);
			failed = 1;
		}
	}
	/* ckpt_open(LATEST) */
	struct open_result r;
	const struct ack *want = ack_of(newest);
	/* a listed checkpoint not acknowledged yet was published by a
	 * checkpoint under way: its heap is the one that checkpoint began with */
	uint64_t nodes = 0;
	for (unsigned i = 0; i < nbegins; i++)
		if (under_way(i, pc))
			nodes = begins[i].nodes;
	if (run_open(path, &r, want, want ? 0 : nodes) < 0) {
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
			else if (!want && nodes && !gen_under_way(r.gen, pc))
				report(pc, desc, "ckpt_open(LATEST) restarted from %llu, not "
					"acknowledged yet, whose heap is %s %lld, not that of a "
					"checkpoint under way", (unsigned long long)newest,
					r.gen < 0 ? r.msg : "at generation", (long long)r.gen);
			else {
				__atomic_fetch_add(&cnt->opened, 1, __ATOMIC_RELAXED);
				if (!want && nodes)
					__atomic_fetch_add(&cnt->unacked, 1, __ATOMIC_RELAXED);
			}
		} else if (readable) {
			/* never checkpointed: an empty heap, as ckpt_create gives;
			 * one that may have lost its checkpoints: ENOENT */
			if (r.status == 0 ? r.from != 0 || r.root
			    : r.status != 1 || r.err != ENOENT)
				report(pc, desc, "pool without checkpoints: ckpt_open gave %s "
					"(errno %d, %s, restarted from %llu%s), expected an "
					"empty heap or ENOENT",
					r.status == 1 ? "an error" : "a pool", r.err, r.msg,
					(unsigned long long)r.from, r.root ? ", with a root" : "");
		} else if (r.status != 1 || !r.msg[0]) {
			report(pc, desc, "unreadable pool (%s) %s", why,
				r.status == 1 ? "refused without a message" : "was opened");
		}
	}
	__atomic_fetch_add(&cnt->checked, 1, __ATOMIC_RELAXED);
}
