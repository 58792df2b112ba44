/*
 * fuzz_inspect -- libFuzzer harness over everything ckpt-inspect parses:
 * the pool header, the commit word and catalog copies, and heaps inside
 * segments (heap_walk).
 *
 * Random bytes would die at the first checksum, so the input is a list of
 * patches applied to real templates that LLVMFuzzerInitialize builds with
 * the library itself (no binary corpus in the tree):
 *
 *   byte 0, bit 0 -- 0: heap mode, 1: pool mode
 *   heap mode: patches on a copy of a real heap (4 MiB segment with blocks
 *     of many size classes, frees, frees from another thread waiting in
 *     rbits, a root), as format 4 writes it, or with byte 0 bit 3 as
 *     version 3 wrote it (the waiting blocks on remote-free lists:
 *     heap_downgrade), then heap_walk on a buffer of the patched heap, cut
 *     short when byte 0 bit 1 is set; with bit 2 (and not cut short)
 *     heap_attach (which upgrades a version 3 heap), heap_validate_all
 *     (the slabs' first-use checks) and allocations and frees on it, which
 *     must agree with the walker and never crash.
 *   pool mode: patches on a real pool file (header, catalog, three
 *     checkpoints and a dead heap) held in a memfd, or with byte 0 bit 6 on
 *     a cow pool of format 1.9 whose newest checkpoint is logged (its page
 *     log not folded) beside a dead cow heap; byte 0 bit 1 re-seals
 *     the header checksum, bit 2 re-seals the current catalog copy's
 *     checksum, bit 7 the page log's table and header checksums (so the
 *     fuzzer gets past them), bits 3 and 5 together
 *     truncate the file at (last byte / 256) of its size, bit 4 verifies
 *     with INSPECT_VERIFY_STRICT.
 *     Then what ckpt-inspect does: inspect_open_header, inspect_verify,
 *     inspect_resolve of a few REFs, inspect_read_heap + heap_walk, and
 *     inspect_read.
 *   patch: 1 selector byte (region in bits 0-2, length-1 in bits 3-5),
 *     a 3-byte little-endian offset inside the region, then length bytes.
 *
 * Every patch is undone after the run, so runs are independent.
 * Build: cmake -DCKPT_FUZZ=ON -DCMAKE_C_COMPILER=clang (docs/ckpt-inspect.md).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "libckpt.h"
#include "catalog.h"
#include "heap.h"
#include "inspect.h"
#include "layout.h"
#include "pagelog.h"

#define HEAP_TPL_SIZE ((size_t)4 << 20)

static uint8_t *heap_tpl;      /* the template heap, HEAP_TPL_SIZE bytes */
static uint8_t *heap_tpl3;     /* the same heap as version 3 wrote it */
static uint8_t *heap_work;     /* patched copy */
static uint8_t *heap_cur;      /* the template heap_work is a copy of */
static size_t heap_hw;         /* template's high-water mark */

/* the template's data T->extents, to restore what a truncation cut away */
struct extent {
	uint64_t off, len;
	uint8_t *bytes;
};

/*
 * tpl -- a template pool held in a memfd: 0, copy mode; 1, cow mode with
 * a logged checkpoint (format 1.9, its fold held back), whose log slot is
 * log_off (0: the machine gave no log, and region 7 is the whole file)
 */
struct tpl {
	int fd;
	char path[64];
	uint64_t size;
	struct pool_hdr hdr;
	struct extent extents[256];
	unsigned nextents;
	uint64_t log_off;
};
static struct tpl tpls[2];
static struct tpl *T;          /* the one pool_mode patches */

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_inspect: %s: %s\n", what, ckpt_errormsg());
	abort();
}

/* remote_frees -- another thread frees every fifth kept block: rbits (format 4),
 * remote-free lists (version 3) */
static void *
remote_frees(void *arg)
{
	void **keep = arg;
	for (int i = 1; i < 200; i += 5)
		heap_free((struct heap *)keep[200], keep[i]);
	return NULL;
}

static void
make_heap(void)
{
	heap_tpl = mmap(NULL, HEAP_TPL_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	heap_work = mmap(NULL, HEAP_TPL_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (heap_tpl == MAP_FAILED || heap_work == MAP_FAILED)
		abort();
	if (heap_format(heap_tpl, HEAP_TPL_SIZE, NULL, NULL) < 0)
		die("heap_format");
	struct heap *h = heap_attach(heap_tpl, HEAP_TPL_SIZE, NULL, NULL);
	if (!h)
		die("heap_attach");
	static void *keep[201];
	static const size_t sizes[] = { 8, 16, 40, 100, 256, 700, 3000, 9000, 20000, 70000 };
	for (int i = 0; i < 200; i++) {
		keep[i] = heap_alloc(h, sizes[i % 10] + (size_t)i);
		if (!keep[i])
			die("heap_alloc");
		memset(keep[i], i, sizes[i % 10]);
	}
	for (int i = 0; i < 200; i += 3)
		heap_free(h, keep[i]);
	keep[200] = h;
	pthread_t t;
	if (pthread_create(&t, NULL, remote_frees, keep) != 0)
		abort();
	pthread_join(t, NULL);
	heap_set_root(h, keep[2]);
	heap_hw = heap_high_water(h);
	heap_detach(h);
	if (heap_check(heap_tpl, heap_hw, NULL) < 0)
		die("template heap does not check");
	heap_tpl3 = mmap(NULL, HEAP_TPL_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (heap_tpl3 == MAP_FAILED)
		abort();
	memcpy(heap_tpl3, heap_tpl, HEAP_TPL_SIZE);
	heap_downgrade(heap_tpl3, 3);
	if (heap_check(heap_tpl3, heap_hw, NULL) < 0)
		die("version 3 template heap does not check");
	memcpy(heap_work, heap_tpl, HEAP_TPL_SIZE);
	heap_cur = heap_tpl;
}

static void
make_pool(struct tpl *t, int cow)
{
	T = t;
	char dir[] = "/var/tmp/fuzz-inspect-XXXXXX";    /* not tmpfs: logs */
	if (!mkdtemp(dir))
		abort();
	char path[128];
	snprintf(path, sizeof(path), "%s/pool", dir);
	struct ckpt_config cfg = { .heap_size = 4u << 20, .max_segments = 6,
		.fork_mode = cow ? CKPT_FORK_COW : CKPT_FORK_COPY, .keep_checkpoints = 2 };
	if (cow)
		setenv("CKPT_TEST_NO_FOLD", "1", 1);    /* its last checkpoint stays logged */
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p)
		die("ckpt_create");
	void *last = NULL;
	for (int round = 0; round < (cow ? 5 : 3); round++) {
		/* cow: the later rounds change a few bytes, a log that fits */
		for (int i = 0; i < 40 && (round < 3 || i < 2); i++) {
			void *x = ckpt_alloc(p, (size_t)(16 << (i % 12)) + (size_t)i);
			if (!x)
				die("ckpt_alloc");
			memset(x, i, 16);
			if (i % 4 == 0)
				ckpt_free(p, x);
			else
				last = x;
		}
		ckpt_set_root(p, last);
		if (ckpt_checkpoint(p, round == 1 ? "middle" : "fuzz", NULL) < 0)
			die("ckpt_checkpoint");
	}
	/* copy the file (data only: holes stay holes) into a memfd, leave the
	 * pool open so its live heap shows as a dead one in the copy */
	int fd = open(path, O_RDONLY);
	T->fd = memfd_create("fuzz-pool", 0);
	if (fd < 0 || T->fd < 0)
		abort();
	T->size = (uint64_t)lseek(fd, 0, SEEK_END);
	if (ftruncate(T->fd, (off_t)T->size) < 0)
		abort();
	static char buf[1 << 16];
	off_t off = 0;
	for (;;) {
		off_t d = lseek(fd, off, SEEK_DATA);
		if (d < 0)
			break;
		off_t hole = lseek(fd, d, SEEK_HOLE);
		if (T->nextents == sizeof(T->extents) / sizeof(T->extents[0]))
			abort();
		struct extent *x = &T->extents[T->nextents++];
		x->off = (uint64_t)d;
		x->len = (uint64_t)(hole - d);
		x->bytes = malloc(x->len);
		if (!x->bytes || pread(fd, x->bytes, x->len, d) != (ssize_t)x->len)
			abort();
		for (off_t o = d; o < hole;) {
			ssize_t n = pread(fd, buf, sizeof(buf) < (size_t)(hole - o) ?
					sizeof(buf) : (size_t)(hole - o), o);
			if (n <= 0)
				abort();
			if (pwrite(T->fd, buf, (size_t)n, o) != n)
				abort();
			o += n;
		}
		off = hole;
	}
	close(fd);
	if (pread(T->fd, &T->hdr, sizeof(T->hdr), 0) != sizeof(T->hdr))
		abort();
	snprintf(T->path, sizeof(T->path), "/proc/self/fd/%d", T->fd);
	unlink(path);
	rmdir(dir);
	unsetenv("CKPT_TEST_NO_FOLD");
	struct inspect in;
	if (cow && inspect_open(&in, T->path) == 0) {
		for (uint32_t i = 0; i < in.cat.n; i++)
			if (in.cat.e[i].state == CAT_CKPT && (in.cat.e[i].flags & CAT_F_LOGGED))
				t->log_off = layout_log_off(&in.hdr, i);
		inspect_close(&in);
		if (!t->log_off)
			fprintf(stderr, "fuzz_inspect: the cow template holds no logged "
				"checkpoint here (no write-protect tracking?): the page log "
				"is not fuzzed\n");
	}
	struct inspect_verify_result r;
	if (inspect_verify_path(T->path, 0, NULL, NULL, &r) != 0)
		die("template pool does not verify");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	make_heap();
	make_pool(&tpls[1], 1);
	make_pool(&tpls[0], 0);
	return 0;
}

/* -- patches ---------------------------------------------------------------- */

#define MAX_PATCHES 64

struct patch {
	uint64_t off;
	uint8_t len;
	uint8_t old[8];
};

struct cursor {
	const uint8_t *p;
	size_t n;
};

/* next_patch -- region base/size for selector, parsed offset and bytes */
static int
next_patch(struct cursor *c, const uint64_t *rbase, const uint64_t *rsize, unsigned nregions,
		uint64_t *off, const uint8_t **val, unsigned *len)
{
	if (c->n < 5)
		return 0;
	unsigned sel = c->p[0];
	unsigned region = (sel & 7) % nregions;
	*len = ((sel >> 3) & 7) + 1;
	uint64_t o = (uint64_t)c->p[1] | (uint64_t)c->p[2] << 8 | (uint64_t)c->p[3] << 16;
	c->p += 4;
	c->n -= 4;
	if (*len > c->n)
		*len = (unsigned)c->n;
	uint64_t size = rsize[region];
	if (size < *len)
		return 0;
	*off = rbase[region] + o % (size - *len + 1);
	*val = c->p;
	c->p += *len;
	c->n -= *len;
	return 1;
}

/*
 * attach_and_use -- heap_attach the patched heap (it checks the metadata),
 * check every slab as its first use would (heap_validate_all), and allocate
 * and free in it: never a crash; what the walker refused (wrc != 0) must be
 * refused by attach or by the slab checks, and what it accepted by neither
 */
static void
attach_and_use(int wrc)
{
	struct heap *h = heap_attach(heap_work, HEAP_TPL_SIZE, NULL, NULL);
	if (!h) {
		if (wrc == 0 && !strstr(ckpt_errormsg(), "formatted for"))
			die("walk accepted, attach refused");
		return;
	}
	int vrc = heap_validate_all(h);
	if ((wrc == 0) != (vrc == 0))
		die(wrc == 0 ? "walk accepted, slab check refused" :
				"walk refused, attach and slab checks accepted");
	void *p[16];
	for (int i = 0; i < 16; i++)
		p[i] = heap_alloc(h, (size_t)i * 300 + 8);
	for (int i = 0; i < 16; i++)
		heap_free(h, p[i]);
	heap_detach(h);
}

static void
heap_mode(const uint8_t *data, size_t size)
{
	/* regions: header, thread slots, page map + bitmap, whole heap, first slabs */
	const uint64_t rbase[] = { 0, 4096, 69632, 0, 131072 };
	const uint64_t rsize[] = { 4096, 65536, 65536, heap_hw, 262144 };
	struct patch pt[MAX_PATCHES];
	unsigned np = 0;
	struct cursor c = { data + 1, size - 1 };
	uint8_t *tpl = (data[0] & 8) ? heap_tpl3 : heap_tpl;
	if (tpl != heap_cur) {
		memcpy(heap_work, tpl, HEAP_TPL_SIZE);
		heap_cur = tpl;
	}
	uint64_t off;
	const uint8_t *val;
	unsigned len;
	while (np < MAX_PATCHES && next_patch(&c, rbase, rsize, 5, &off, &val, &len)) {
		if (off + len > heap_hw)
			continue;
		pt[np].off = off;
		pt[np].len = (uint8_t)len;
		memcpy(pt[np].old, heap_work + off, len);
		memcpy(heap_work + off, val, len);
		np++;
	}
	size_t blen = heap_hw;
	if (data[0] & 2)
		blen = size > 1 ? (size_t)data[size - 1] * 8192 : 0;
	if (blen > heap_hw)
		blen = heap_hw;
	uint64_t hw;
	heap_peek_high_water(heap_work, blen, &hw);
	struct heap_summary s;
	int wrc = heap_walk(heap_work, blen, NULL, NULL, &s);
	if (blen == heap_hw && (data[0] & 4)) {
		attach_and_use(wrc);
		memcpy(heap_work, tpl, HEAP_TPL_SIZE);    /* attach wrote to it */
		return;
	}
	while (np--)
		memcpy(heap_work + pt[np].off, pt[np].old, pt[np].len);
}

static void
reseal_catalog(void)
{
	uint64_t w;
	if (pread(T->fd, &w, 8, POOL_COMMIT_OFF) != 8)
		return;
	uint64_t off = layout_cat_off(&T->hdr, w & 1);
	size_t cs = T->hdr.cat_size;
	uint8_t *copy = malloc(cs);
	if (!copy || pread(T->fd, copy, cs, (off_t)off) != (ssize_t)cs) {
		free(copy);
		return;
	}
	struct cat_hdr *h = (struct cat_hdr *)copy;
	h->checksum = 0;
	h->checksum = XXH64(copy, cs, 0);
	if (pwrite(T->fd, &h->checksum, 8, (off_t)(off + offsetof(struct cat_hdr, checksum))) != 8)
		abort();
	free(copy);
}

/*
 * reseal_log -- recompute the logged checkpoint's log checksums (table,
 * then header) over whatever the patches made of them, saving their old
 * bytes as patches pt[*np ..] to be undone
 */
static void
reseal_log(struct patch *pt, unsigned *np)
{
	struct plog_hdr h;
	if (!T->log_off || pread(T->fd, &h, sizeof(h), (off_t)T->log_off) != sizeof(h))
		return;
	uint64_t n = h.npages <= 256 ? h.npages : 256;     /* the table's first pages */
	struct plog_ent t[256];
	if (pread(T->fd, t, n * sizeof(t[0]), (off_t)(T->log_off + PLOG_PAGE)) !=
	    (ssize_t)(n * sizeof(t[0])))
		return;
	static const size_t at[2] = { offsetof(struct plog_hdr, table_sum),
		offsetof(struct plog_hdr, checksum) };
	for (int k = 0; k < 2; k++) {
		pt[*np].off = T->log_off + at[k];
		pt[*np].len = 8;
		memcpy(pt[*np].old, (const char *)&h + at[k], 8);
		++*np;
	}
	h.table_sum = XXH3_64bits(t, n * sizeof(t[0]));
	h.checksum = XXH3_64bits(&h, offsetof(struct plog_hdr, checksum));
	if (pwrite(T->fd, &h, sizeof(h), (off_t)T->log_off) != sizeof(h))
		abort();
}

static void
pool_mode(const uint8_t *data, size_t size)
{
	T = &tpls[(data[0] >> 6) & 1];
	const struct pool_hdr *H = &T->hdr;
	/* regions: header, commit word + catalog copies, segment 0..2 metadata,
	 * the catalog entries, the whole file, the logged checkpoint's log
	 * header and table (the whole file when the template has none) */
	const uint64_t rbase[] = { 0, POOL_COMMIT_OFF, H->data_off, H->data_off + H->seg_size,
		H->data_off + 2 * H->seg_size, POOL_CATALOG_OFF, 0, T->log_off };
	const uint64_t rsize[] = { 256, POOL_PAGE + 2 * H->cat_size, 262144, 262144, 262144,
		2 * H->cat_size, T->size, T->log_off ? 3 * PLOG_PAGE : T->size };
	struct patch pt[MAX_PATCHES + 4];
	unsigned np = 0;
	struct cursor c = { data + 1, size - 1 };
	uint64_t off;
	const uint8_t *val;
	unsigned len;
	while (np < MAX_PATCHES && next_patch(&c, rbase, rsize, 8, &off, &val, &len)) {
		pt[np].off = off;
		pt[np].len = (uint8_t)len;
		if (pread(T->fd, pt[np].old, len, (off_t)off) != (ssize_t)len ||
		    pwrite(T->fd, val, len, (off_t)off) != (ssize_t)len)
			abort();
		np++;
	}
	/* re-seals are patches too: undone with the rest */
	if (data[0] & 0x80)
		reseal_log(pt, &np);
	uint64_t w = 0;
	if (pread(T->fd, &w, 8, POOL_COMMIT_OFF) != 8)
		abort();
	uint64_t cat_ck = layout_cat_off(H, w & 1) + offsetof(struct cat_hdr, checksum);
	if ((data[0] & 4) && cat_ck + 8 <= T->size) {
		pt[np].off = cat_ck;
		pt[np].len = 8;
		if (pread(T->fd, pt[np].old, 8, (off_t)cat_ck) != 8)
			abort();
		np++;
		reseal_catalog();
	}
	if (data[0] & 2) {
		struct pool_hdr h;
		if (pread(T->fd, &h, sizeof(h), 0) != sizeof(h))
			abort();
		pt[np].off = offsetof(struct pool_hdr, checksum);
		pt[np].len = 8;
		memcpy(pt[np].old, &h.checksum, 8);
		np++;
		layout_seal(&h);
		if (pwrite(T->fd, &h.checksum, 8, (off_t)offsetof(struct pool_hdr, checksum)) != 8)
			abort();
	}
	uint64_t cut = T->size;
	if ((data[0] & 40) == 40) {
		cut = size > 1 ? (uint64_t)data[size - 1] * (T->size / 256) : 0;
		if (ftruncate(T->fd, (off_t)cut) < 0)
			abort();
	}

	struct inspect in;
	if (inspect_open_header(&in, T->path) == 0) {
		struct inspect_verify_result r;
		inspect_verify(&in, data[0] & 16 ? INSPECT_VERIFY_STRICT : 0, NULL, NULL, NULL,
				NULL, &r);
		if (in.cat.h) {
			static const char *refs[] = { "latest", "1", "2", "seg:0", "seg:3", "seg:5" };
			for (unsigned i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
				uint32_t seg;
				if (inspect_resolve(&in, refs[i], &seg) < 0)
					continue;
				inspect_state_name(&in, seg);
				void *buf;
				size_t blen;
				if (inspect_read_heap(&in, seg, &buf, &blen, NULL, NULL) == 0) {
					struct heap_summary s;
					heap_walk(buf, blen, NULL, NULL, &s);
					inspect_free_heap(buf, blen);
				}
				uint8_t tmp[64];
				inspect_read(&in, seg, 0, tmp, sizeof(tmp));
				inspect_read(&in, seg, in.hdr.seg_size - 16, tmp, 16);
			}
		}
		inspect_close(&in);
	}

	if (cut < T->size) {
		/* put back what the cut took away */
		if (ftruncate(T->fd, (off_t)T->size) < 0)
			abort();
		for (unsigned i = 0; i < T->nextents; i++) {
			const struct extent *x = &T->extents[i];
			if (x->off + x->len <= cut)
				continue;
			uint64_t from = x->off < cut ? cut : x->off;
			uint64_t n = x->off + x->len - from;
			if (pwrite(T->fd, x->bytes + (from - x->off), n, (off_t)from) != (ssize_t)n)
				abort();
		}
	}
	while (np--)
		if (pwrite(T->fd, pt[np].old, pt[np].len, (off_t)pt[np].off) != pt[np].len)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		pool_mode(data, size);
	else
		heap_mode(data, size);
	return 0;
}
