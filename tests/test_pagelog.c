/*
 * test_pagelog.c -- the page log (pagelog.c, format 1.9) on a real file:
 *  - a log written from scattered pages reads back (plog_load) with its
 *    table in order, and plog_pread gives the image (the segment's bytes
 *    with the log's pages over them) at any offset and length, across
 *    page boundaries;
 *  - plog_fold makes the segment's own bytes the image, and folding again
 *    (a fold cut short by a crash is done again) changes nothing;
 *  - pages that do not fit the slot are not logged (0, nothing written);
 *  - a slot that is not this checkpoint's log, or is damaged in any field
 *    of its header or table, is refused with EINVAL and a message, and
 *    never read past its slot (checked under valgrind and ASan), also
 *    after thousands of random bit flips, some with forged checksums.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "libckpt.h"
#include "pagelog.h"
#include "sums.h"
#include "testutil.h"

#define PAGE 4096u
#define NPAGES 256u                     /* the image: 1 MiB */
#define SLOT_OFF ((uint64_t)PAGE)       /* the slot, then the segment */
#define SLOT_LEN ((uint64_t)64 * PAGE)  /* holds up to 62 pages */
#define SEG_OFF (SLOT_OFF + SLOT_LEN)
#define USED ((uint64_t)NPAGES * PAGE)
#define SUM 0x1234abcdull               /* the catalog's checksum, as far as the log knows */

struct fixture {
	int fd;
	unsigned char *old;     /* the segment's bytes */
	unsigned char *img;     /* the image: old with some pages rewritten */
	uint64_t bits[NPAGES / 64];
	uint64_t sums[NPAGES];
};

static void
fill(unsigned char *b, size_t n, unsigned seed)
{
	srand(seed);
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)rand();
}

/* setup -- a file holding the old segment; img differs in every 7th page and a run of 5 */
static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->old = malloc(USED);
	f->img = malloc(USED);
	assert_true(f->old && f->img);
	fill(f->old, USED, 1);
	memcpy(f->img, f->old, USED);
	for (unsigned pg = 0; pg < NPAGES; pg++)
		if (pg % 7 == 3 || (pg >= 100 && pg < 105)) {
			fill(f->img + pg * PAGE, PAGE, 100 + pg);
			f->bits[pg / 64] |= 1ull << (pg % 64);
		}
	for (unsigned pg = 0; pg < NPAGES; pg++)
		f->sums[pg] = sums_page(f->img + pg * PAGE);
	f->fd = open(tu_path("pagelog.file"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(f->fd >= 0);
	assert_int_equal(pwrite(f->fd, f->old, USED, (off_t)SEG_OFF), (ssize_t)USED);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	close(f->fd);
	free(f->old);
	free(f->img);
	free(f);
	return 0;
}

static uint64_t
logged_pages(const struct fixture *f)
{
	uint64_t n = 0;
	for (unsigned w = 0; w < NPAGES / 64; w++)
		n += (uint64_t)__builtin_popcountll(f->bits[w]);
	return n;
}

/* write_log -- the fixture's log into its slot; must fit */
static void
write_log(struct fixture *f)
{
	uint64_t bytes = 0;
	assert_int_equal(plog_write(f->fd, SLOT_OFF, SLOT_LEN, f->img, f->bits, USED, f->sums,
			SUM, &bytes), 1);
	assert_int_equal(bytes, logged_pages(f) * PAGE);
}

static void
test_capacity(void **state)
{
	(void)state;
	assert_int_equal(plog_capacity(PAGE), 0);
	/* header page, one table page, n pages: 16 n <= 4096 */
	assert_int_equal(plog_capacity(3 * PAGE), 1);
	assert_int_equal(plog_capacity(SLOT_LEN), 62);
	for (uint64_t len = 2 * PAGE; len < 600 * PAGE; len += 37 * PAGE) {
		uint64_t n = plog_capacity(len);
		assert_true(plog_pages_off(n) + n * PAGE <= len);
		assert_true(plog_pages_off(n + 1) + (n + 1) * PAGE > len);
	}
}

/* the log reads back, and the image reads through it at any offset */
static void
test_roundtrip_and_pread(void **state)
{
	struct fixture *f = *state;
	write_log(f);
	struct plog l;
	assert_int_equal(plog_load(f->fd, SLOT_OFF, SLOT_LEN, USED, SUM, &l), 0);
	assert_int_equal(l.n, logged_pages(f));
	for (uint64_t i = 0; i < l.n; i++) {
		assert_true(f->bits[l.e[i].page / 64] >> (l.e[i].page % 64) & 1);
		assert_int_equal(l.e[i].sum, f->sums[l.e[i].page]);
	}
	unsigned char *buf = malloc(USED);
	assert_non_null(buf);
	assert_int_equal(plog_pread(f->fd, SEG_OFF, &l, buf, USED, 0), 0);
	assert_memory_equal(buf, f->img, USED);
	/* pieces that start and end inside pages, logged or not */
	static const uint64_t cuts[][2] = {
		{ 1, 10 }, { 3 * PAGE - 5, 11 }, { 3 * PAGE + 100, 3 * PAGE }, { 99 * PAGE + 1, 7 * PAGE },
		{ USED - 17, 17 }, { 0, PAGE },
	};
	for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
		memset(buf, 0, USED);
		assert_int_equal(plog_pread(f->fd, SEG_OFF, &l, buf, cuts[k][1], cuts[k][0]), 0);
		assert_memory_equal(buf, f->img + cuts[k][0], cuts[k][1]);
	}
	free(buf);
	plog_free(&l);
	plog_free(&l);          /* idempotent */
}

/* the fold makes the segment the image; a second fold changes nothing */
static void
test_fold_idempotent(void **state)
{
	struct fixture *f = *state;
	write_log(f);
	struct plog l;
	assert_int_equal(plog_load(f->fd, SLOT_OFF, SLOT_LEN, USED, SUM, &l), 0);
	unsigned char *buf = malloc(USED);
	assert_non_null(buf);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(plog_fold(f->fd, SEG_OFF, &l), 0);
		assert_int_equal(pread(f->fd, buf, USED, (off_t)SEG_OFF), (ssize_t)USED);
		assert_memory_equal(buf, f->img, USED);
	}
	/* a half-done fold (some pages in place, others not) and the log over
	 * it still read as the image */
	assert_int_equal(pwrite(f->fd, f->old, USED / 2, (off_t)SEG_OFF), (ssize_t)(USED / 2));
	assert_int_equal(plog_pread(f->fd, SEG_OFF, &l, buf, USED, 0), 0);
	assert_memory_equal(buf, f->img, USED);
	free(buf);
	plog_free(&l);
}

/* more pages than the slot holds: not logged, nothing written */
static void
test_too_many_pages(void **state)
{
	struct fixture *f = *state;
	memset(f->bits, 0xff, sizeof(f->bits));
	uint64_t bytes = 1;
	assert_int_equal(plog_write(f->fd, SLOT_OFF, SLOT_LEN, f->img, f->bits, USED, f->sums,
			SUM, &bytes), 0);
	assert_int_equal(bytes, 0);
	struct plog l;
	assert_int_equal(plog_load(f->fd, SLOT_OFF, SLOT_LEN, USED, SUM, &l), -1);
	assert_int_equal(errno, EINVAL);    /* still a hole: zeros */
	assert_non_null(strstr(ckpt_errormsg(), "bad magic"));
}

/* expect_refused -- plog_load fails with EINVAL and a message containing what */
static void
expect_refused(struct fixture *f, uint64_t used, uint64_t sum, const char *what)
{
	struct plog l;
	errno = 0;
	assert_int_equal(plog_load(f->fd, SLOT_OFF, SLOT_LEN, used, sum, &l), -1);
	assert_int_equal(errno, EINVAL);
	if (!strstr(ckpt_errormsg(), what))
		fail_msg("want \"%s\" in \"%s\"", what, ckpt_errormsg());
	assert_null(l.e);
}

/* poke -- write len bytes of v at offset off of the slot */
static void
poke(struct fixture *f, uint64_t off, const void *v, size_t len)
{
	assert_int_equal(pwrite(f->fd, v, len, (off_t)(SLOT_OFF + off)), (ssize_t)len);
}

/* rehash -- recompute the header's checksum after a change, so that the check after it runs */
static void
rehash(struct fixture *f)
{
	struct plog_hdr h;
	assert_int_equal(pread(f->fd, &h, sizeof(h), (off_t)SLOT_OFF), (ssize_t)sizeof(h));
	h.checksum = XXH3_64bits(&h, offsetof(struct plog_hdr, checksum));
	poke(f, 0, &h, sizeof(h));
}

/* every field damaged in turn: refused, with what is wrong */
static void
test_hostile_slot(void **state)
{
	struct fixture *f = *state;
	write_log(f);
	/* not this checkpoint's log */
	expect_refused(f, USED, SUM + 1, "belongs to another checkpoint");
	expect_refused(f, USED - PAGE, SUM, "belongs to another checkpoint");

	struct plog_hdr h0;
	assert_int_equal(pread(f->fd, &h0, sizeof(h0), (off_t)SLOT_OFF), (ssize_t)sizeof(h0));
	struct plog_hdr h = h0;
	h.magic[0] ^= 1;
	poke(f, 0, &h, sizeof(h));
	expect_refused(f, USED, SUM, "bad magic");

	h = h0;
	h.npages += 1;          /* the checksum no longer matches */
	poke(f, 0, &h, sizeof(h));
	expect_refused(f, USED, SUM, "header checksum");

	static const uint64_t bad_counts[] = { 0, 63, 1ull << 40, UINT64_MAX };
	for (size_t k = 0; k < sizeof(bad_counts) / sizeof(bad_counts[0]); k++) {
		h = h0;
		h.npages = bad_counts[k];
		poke(f, 0, &h, sizeof(h));
		rehash(f);
		expect_refused(f, USED, SUM, "do not fit its slot");
	}
	h = h0;
	h.version = 2;
	poke(f, 0, &h, sizeof(h));
	rehash(f);
	expect_refused(f, USED, SUM, "not understood");
	h = h0;
	h.reserved[5] = 1;
	poke(f, 0, &h, sizeof(h));
	rehash(f);
	expect_refused(f, USED, SUM, "not understood");

	/* the table: a flipped byte, then entries out of order or past the
	 * image with a table checksum that matches them */
	poke(f, 0, &h0, sizeof(h0));
	struct plog_ent e[2];
	assert_int_equal(pread(f->fd, e, sizeof(e), (off_t)(SLOT_OFF + PAGE)), (ssize_t)sizeof(e));
	struct plog_ent bad = e[0];
	bad.sum ^= 1;
	poke(f, PAGE, &bad, sizeof(bad));
	expect_refused(f, USED, SUM, "table checksum");
	uint64_t n = h0.npages;
	struct plog_ent *t = malloc(n * sizeof(*t));
	assert_non_null(t);
	assert_int_equal(pread(f->fd, t, n * sizeof(*t), (off_t)(SLOT_OFF + PAGE)),
			(ssize_t)(n * sizeof(*t)));
	for (int kind = 0; kind < 3; kind++) {
		struct plog_ent *u = malloc(n * sizeof(*u));
		assert_non_null(u);
		memcpy(u, t, n * sizeof(*u));
		if (kind == 0)
			u[1].page = u[0].page;          /* twice */
		else if (kind == 1)
			u[n - 1].page = NPAGES;         /* past used */
		else
			u[2].page = u[1].page - 1;      /* backwards */
		poke(f, PAGE, u, n * sizeof(*u));
		h = h0;
		h.table_sum = XXH3_64bits(u, n * sizeof(*u));
		poke(f, 0, &h, sizeof(h));
		rehash(f);
		expect_refused(f, USED, SUM, "out of order or past the image");
		free(u);
	}
	free(t);
}

/*
 * random damage to the header and table, many times: every load either
 * refuses with EINVAL or returns a table that passes the checks (in order,
 * inside the image) and reads through without leaving the slot
 */
static void
test_random_damage(void **state)
{
	struct fixture *f = *state;
	write_log(f);
	uint64_t tlen = PAGE + 2 * PAGE;        /* header page and the table's pages */
	unsigned char *good = malloc(tlen), *bad = malloc(tlen), *buf = malloc(USED);
	assert_true(good && bad && buf);
	assert_int_equal(pread(f->fd, good, tlen, (off_t)SLOT_OFF), (ssize_t)tlen);
	srand(7);
	unsigned refused = 0, loaded = 0;
	for (int k = 0; k < 3000; k++) {
		memcpy(bad, good, tlen);
		int flips = 1 + rand() % 4;
		for (int j = 0; j < flips; j++) {
			/* mostly the header and the table's start */
			uint64_t at = rand() % 3 ? (uint64_t)(rand() % 256) :
				PAGE + (uint64_t)(rand() % (int)(2 * PAGE));
			bad[at] ^= (unsigned char)(1u << (rand() % 8));
		}
		if (k % 5 == 0) {
			/* a forged header: its checksums recomputed over the damage */
			struct plog_hdr *h = (struct plog_hdr *)bad;
			h->table_sum = XXH3_64bits(bad + PAGE, h->npages <= 512 ?
					h->npages * sizeof(struct plog_ent) : 0);
			h->checksum = XXH3_64bits(h, offsetof(struct plog_hdr, checksum));
		}
		poke(f, 0, bad, tlen);
		struct plog l;
		if (plog_load(f->fd, SLOT_OFF, SLOT_LEN, USED, SUM, &l) < 0) {
			assert_int_equal(errno, EINVAL);
			refused++;
			continue;
		}
		loaded++;
		assert_true(l.n >= 1 && l.n <= plog_capacity(SLOT_LEN));
		assert_true(l.pages_off + l.n * PAGE <= SLOT_OFF + SLOT_LEN);
		assert_int_equal(plog_pread(f->fd, SEG_OFF, &l, buf, USED, 0), 0);
		plog_free(&l);
	}
	printf("random damage: %u refused, %u loaded (flips in padding, or a consistent forgery)\n",
			refused, loaded);
	assert_true(refused > 1000 && loaded > 0);     /* both paths taken */
	free(good);
	free(bad);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capacity),
		cmocka_unit_test_setup_teardown(test_roundtrip_and_pread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_damage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
