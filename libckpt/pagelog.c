/*
 * pagelog.c -- a checkpoint's page log: write it, read it back untrusted,
 * read an image through it, fold it into its segment.
 *
 * Why a log. A cow checkpoint that recycles an old image R writes only the
 * pages in which the heap differs from R, a few percent of it, scattered
 * over the segment. Written in place, each is one small write for the disk
 * at the checkpoint's fdatasync, and those writes were most of the
 * checkpoint's time (docs/DESIGN.md, "What a steady-state checkpoint
 * costs"). Written in sequence into R's log slot, the same bytes go out as
 * a few large writes. The checkpoint is then R's bytes with the log laid
 * over them (CAT_F_LOGGED), until the engine folds the log into R, off the
 * checkpoint's path, and a later commit clears the flag.
 *
 * What makes a log safe to read at any time:
 *  - it is written before its checkpoint is published and never changed
 *    while the entry says CAT_F_LOGGED; a slot is rewritten only when its
 *    segment is reserved anew (BUSY), which clears the flag first;
 *  - the fold writes into the segment exactly the bytes the log holds, so
 *    the segment with the log over it is the image before, during and
 *    after a fold, and a fold cut short by a crash is simply done again;
 *  - the header names the checkpoint it belongs to (used, checksum), and
 *    the table has its own checksum: a reader that finds a stale, torn or
 *    hostile slot refuses it with a message, never reads past the slot.
 *
 * The pages' bytes are not checked here: every reader of an image checks
 * page sums or the image checksum already, and a logged page's sum is in
 * the segment's page-sum slot like any other.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fileio.h"
#include "pagelog.h"
#include "sums.h"
#include "testhook.h"

_Static_assert(sizeof(struct plog_hdr) == 128, "log header size");
_Static_assert(sizeof(struct plog_ent) == 16, "log entry size");

/* pages_off -- offset in the slot of the first logged page */
static uint64_t
pages_off(uint64_t n)
{
	return align_up(PLOG_PAGE + n * sizeof(struct plog_ent), PLOG_PAGE);
}

uint64_t
plog_capacity(uint64_t slot_len)
{
	if (slot_len < 2 * PLOG_PAGE)
		return 0;
	/* 16 bytes of table and 4096 of page per entry, after the header */
	uint64_t n = (slot_len - PLOG_PAGE) / (PLOG_PAGE + sizeof(struct plog_ent));
	while (n && pages_off(n) + n * PLOG_PAGE > slot_len)
		n--;
	return n;
}

/* hdr_sum -- the header's own checksum */
static uint64_t
hdr_sum(const struct plog_hdr *h)
{
	return XXH3_64bits(h, offsetof(struct plog_hdr, checksum));
}

/* writev_all -- pwritev of iov[0 .. n) at off, in calls of at most IOV_MAX vectors */
static int
writev_all(int fd, struct iovec *iov, unsigned n, uint64_t off)
{
	while (n) {
		unsigned k = n < IOV_MAX ? n : IOV_MAX;
		ssize_t w = pwritev(fd, iov, (int)k, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return ckpt_err_set(w < 0 ? errno : EIO, "cannot write the page log: %s",
					strerror(w < 0 ? errno : EIO));
		off += (uint64_t)w;
		/* skip what was written; a short write resumes mid-vector */
		while (n && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n && w) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int
plog_write(int fd, uint64_t slot_off, uint64_t slot_len, const void *img, const uint64_t *bits,
		uint64_t used, const uint64_t *sums, uint64_t image_sum, uint64_t *bytes)
{
	uint64_t npages = used / PLOG_PAGE, n = 0, runs = 0;
	for (uint64_t pg = 0; pg < npages; pg++) {
		int set = bits[pg / 64] >> (pg % 64) & 1;
		n += set;
		runs += set && (pg == 0 || !(bits[(pg - 1) / 64] >> ((pg - 1) % 64) & 1));
	}
	*bytes = 0;
	if (n == 0 || n > plog_capacity(slot_len))
		return 0;
	uint64_t po = pages_off(n);
	struct plog_hdr *h = calloc(1, po);     /* header, table, padding */
	struct iovec *iov = calloc(runs + 1, sizeof(*iov));
	if (!h || !iov) {
		free(h);
		free(iov);
		return ckpt_err_set(ENOMEM, "out of memory");
	}
	struct plog_ent *t = (struct plog_ent *)((char *)h + PLOG_PAGE);
	unsigned ni = 1;
	uint64_t k = 0;
	for (uint64_t pg = 0; pg < npages;) {
		if (!(bits[pg / 64] >> (pg % 64) & 1)) {
			pg++;
			continue;
		}
		uint64_t end = pg;
		for (; end < npages && (bits[end / 64] >> (end % 64) & 1); end++, k++)
			t[k] = (struct plog_ent){ .page = end, .sum = sums[end] };
		iov[ni++] = (struct iovec){ (char *)img + pg * PLOG_PAGE, (end - pg) * PLOG_PAGE };
		pg = end;
	}
	memcpy(h->magic, PLOG_MAGIC, sizeof(h->magic));
	h->version = PLOG_VERSION;
	h->npages = n;
	h->used = used;
	h->image_sum = image_sum;
	h->table_sum = XXH3_64bits(t, n * sizeof(*t));
	h->checksum = hdr_sum(h);
	/* the pages, then the header and table that make them a log (the
	 * catalog's flag is what publishes it; a log torn here is never read) */
	int rc = writev_all(fd, iov + 1, ni - 1, slot_off + po);
	if (rc == 0) {
		test_point("checkpoint:mid-copy");
		iov[0] = (struct iovec){ h, po };
		rc = writev_all(fd, iov, 1, slot_off);
	}
	free(h);
	free(iov);
	if (rc < 0)
		return -1;
	*bytes = n * PLOG_PAGE;
	return 1;
}

/* read_all -- pread exactly len bytes at off; a short file is EIO */
static int
read_all(int fd, void *buf, uint64_t len, uint64_t off, const char *what)
{
	if (fio_pread_all(fd, buf, len, off) < 0)
		return ckpt_err_set(errno, "cannot read %s: %s", what,
				errno == EIO ? "file too short, or an I/O error" : strerror(errno));
	return 0;
}

int
plog_check_hdr(const struct plog_hdr *h, uint64_t slot_len, uint64_t used, uint64_t image_sum)
{
	static const uint8_t zero[sizeof(h->reserved)];
	if (memcmp(h->magic, PLOG_MAGIC, sizeof(h->magic)) != 0)
		return ckpt_err_set(EINVAL, "page log: bad magic");
	if (h->checksum != hdr_sum(h))
		return ckpt_err_set(EINVAL, "page log: header checksum mismatch");
	if (h->version != PLOG_VERSION || h->reserved0 || memcmp(h->reserved, zero, sizeof(zero)))
		return ckpt_err_set(EINVAL, "page log: version %u or reserved bytes not understood",
				h->version);
	if (h->used != used || h->image_sum != image_sum)
		return ckpt_err_set(EINVAL, "page log: it belongs to another checkpoint "
				"(used %llu, checksum %016llx; the catalog says %llu, %016llx)",
				(unsigned long long)h->used, (unsigned long long)h->image_sum,
				(unsigned long long)used, (unsigned long long)image_sum);
	if (h->npages == 0 || h->npages > plog_capacity(slot_len))
		return ckpt_err_set(EINVAL, "page log: %llu pages do not fit its slot",
				(unsigned long long)h->npages);
	return 0;
}

int
plog_check_table(const struct plog_hdr *h, const struct plog_ent *t)
{
	if (XXH3_64bits(t, h->npages * sizeof(*t)) != h->table_sum)
		return ckpt_err_set(EINVAL, "page log: table checksum mismatch");
	for (uint64_t i = 0; i < h->npages; i++)
		if (t[i].page >= h->used / PLOG_PAGE || (i && t[i].page <= t[i - 1].page))
			return ckpt_err_set(EINVAL, "page log: entry %llu (page %llu) is out of "
					"order or past the image", (unsigned long long)i,
					(unsigned long long)t[i].page);
	return 0;
}

uint64_t
plog_pages_off(uint64_t n)
{
	return pages_off(n);
}

int
plog_load(int fd, uint64_t slot_off, uint64_t slot_len, uint64_t used, uint64_t image_sum,
		struct plog *l)
{
	memset(l, 0, sizeof(*l));
	struct plog_hdr h;
	if (read_all(fd, &h, sizeof(h), slot_off, "the page log") < 0 ||
	    plog_check_hdr(&h, slot_len, used, image_sum) < 0)
		return -1;
	l->e = malloc(h.npages * sizeof(*l->e));
	if (!l->e)
		return ckpt_err_set(ENOMEM, "out of memory");
	if (read_all(fd, l->e, h.npages * sizeof(*l->e), slot_off + PLOG_PAGE,
			"the page log's table") < 0 || plog_check_table(&h, l->e) < 0) {
		plog_free(l);
		return -1;
	}
	l->n = h.npages;
	l->pages_off = slot_off + pages_off(h.npages);
	return 0;
}

void
plog_free(struct plog *l)
{
	free(l->e);
	memset(l, 0, sizeof(*l));
}

uint64_t
plog_find(const struct plog *l, uint64_t pg)
{
	uint64_t lo = 0, hi = l->n;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (l->e[mid].page < pg)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
plog_pread(int fd, uint64_t seg_off, const struct plog *l, void *buf, uint64_t len, uint64_t off)
{
	if (read_all(fd, buf, len, seg_off + off, "a checkpoint image") < 0)
		return -1;
	return plog_overlay(fd, l, buf, len, off);
}

int
plog_overlay(int fd, const struct plog *l, void *buf, uint64_t len, uint64_t off)
{
	/* the logged pages that overlap [off, off + len) */
	for (uint64_t i = plog_find(l, off / PLOG_PAGE); i < l->n; i++) {
		uint64_t p0 = l->e[i].page * PLOG_PAGE;
		if (p0 >= off + len)
			break;
		uint64_t a = p0 > off ? p0 : off;
		uint64_t b = p0 + PLOG_PAGE < off + len ? p0 + PLOG_PAGE : off + len;
		if (read_all(fd, (char *)buf + (a - off), b - a, l->pages_off + i * PLOG_PAGE +
				(a - p0), "the page log") < 0)
			return -1;
	}
	return 0;
}

int
plog_fold(int fd, uint64_t seg_off, const struct plog *l)
{
	/* runs of consecutive pages, which sit consecutive in the log too */
	char *buf = NULL;
	uint64_t cap = 0;
	for (uint64_t i = 0; i < l->n;) {
		uint64_t j = i + 1;
		while (j < l->n && l->e[j].page == l->e[j - 1].page + 1 && j - i < 256)
			j++;
		uint64_t len = (j - i) * PLOG_PAGE;
		if (len > cap) {
			char *nb = realloc(buf, len);
			if (!nb) {
				free(buf);
				return ckpt_err_set(ENOMEM, "out of memory");
			}
			buf = nb;
			cap = len;
		}
		if (read_all(fd, buf, len, l->pages_off + i * PLOG_PAGE, "the page log") < 0)
			goto fail;
		if (fio_pwrite_all(fd, buf, len, seg_off + l->e[i].page * PLOG_PAGE) < 0) {
			ckpt_err_set(errno, "cannot fold the page log: %s", strerror(errno));
			goto fail;
		}
		i = j;
	}
	free(buf);
	/* written back now, so that the next fdatasync finds them clean (an
	 * error here is the fdatasync's to report: the pages are written) */
	if (l->n)
		sync_file_range(fd, (off_t)(seg_off + l->e[0].page * PLOG_PAGE),
				(off_t)((l->e[l->n - 1].page - l->e[0].page + 1) * PLOG_PAGE),
				SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				SYNC_FILE_RANGE_WAIT_AFTER);
	return 0;
fail:
	free(buf);
	return -1;
}
