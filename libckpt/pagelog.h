/*
 * pagelog.h -- a checkpoint's page log (format 1.9): the pages in which a
 * checkpoint image differs from the bytes of its segment, written in
 * sequence into the segment's log slot (layout_log_off) instead of in
 * place, and laid over the segment by every reader until the log is folded
 * into it. pagelog.c's top comment tells why; docs/FORMAT.md says the same
 * byte by byte.
 *
 * A log slot (seg_size / LAYOUT_LOG_RATIO bytes):
 *
 *   0              struct plog_hdr                   one 4 KiB page
 *   4096           npages struct plog_ent            the table
 *   pages_off      npages pages of 4 KiB, in table order
 *
 * pages_off == align_up(4096 + npages * 16, 4096). A slot's bytes mean
 * something only while the catalog entry of its segment is a CKPT with
 * CAT_F_LOGGED; otherwise they are stale or holes.
 */
#ifndef CKPT_PAGELOG_H
#define CKPT_PAGELOG_H 1

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "internal.h"

#define PLOG_MAGIC "CKPTPLOG"   /* 8 bytes, no NUL */
#define PLOG_VERSION 1u
#define PLOG_PAGE ((uint64_t)4096)

/*
 * plog_hdr -- at the start of a log slot.
 * Invariants (plog_load checks each against the slot and the catalog entry):
 *  - magic == PLOG_MAGIC, version == PLOG_VERSION, reserved bytes zero,
 *  - checksum == XXH3-64 of the bytes before it,
 *  - used == the entry's used, image_sum == the entry's checksum (a log
 *    left by an earlier checkpoint of the segment does not match),
 *  - pages_off + npages * 4096 <= the slot's size,
 *  - table_sum == XXH3-64 of the npages table entries.
 */
struct plog_hdr {
	char magic[8];
	uint32_t version;
	uint32_t reserved0;
	uint64_t npages;        /* table entries, and pages after the table */
	uint64_t used;          /* the checkpoint's used bytes */
	uint64_t image_sum;     /* the checkpoint's catalog checksum */
	uint64_t table_sum;     /* XXH3-64 of the table */
	uint8_t reserved[72];
	uint64_t checksum;      /* XXH3-64 of bytes [0, offsetof(checksum)) */
};

/*
 * plog_ent -- one logged page.
 * Invariants: page < used / 4096, strictly increasing along the table;
 * sum is the page's sum (sums_page) as the image holds it, which is also
 * its entry in the segment's page-sum slot.
 */
struct plog_ent {
	uint64_t page;          /* page index in the image */
	uint64_t sum;
};

/* plog -- a log read and checked by plog_load */
struct plog {
	uint64_t n;             /* pages logged */
	struct plog_ent *e;     /* n entries, page strictly increasing */
	uint64_t pages_off;     /* file offset of the first logged page */
};

/* plog_capacity -- the most pages a log slot of slot_len bytes holds */
CKPT_HIDDEN uint64_t plog_capacity(uint64_t slot_len);

/*
 * plog_write -- write a log into the slot at slot_off (slot_len bytes): the
 * pages set in bits below used (page-multiple), gathered from the image's
 * bytes at img (the heap, quiesced), with their sums from sums[] and the
 * image's checksum image_sum. Not durable: the caller syncs. Returns 1
 * (written; *bytes: page bytes written), 0 when they do not fit the slot
 * (nothing written), -1 (ckpt_err_set) on an I/O error.
 */
CKPT_HIDDEN int plog_write(int fd, uint64_t slot_off, uint64_t slot_len, const void *img,
		const uint64_t *bits, uint64_t used, const uint64_t *sums, uint64_t image_sum,
		uint64_t *bytes);

/*
 * plog_check_hdr -- check a log header read from an untrusted slot of
 * slot_len bytes against the checkpoint's used bytes and checksum;
 * plog_check_table then its table (h->npages entries, read from the slot at
 * offset 4096). 0, or -1 with EINVAL and a message naming the problem.
 */
CKPT_HIDDEN int plog_check_hdr(const struct plog_hdr *h, uint64_t slot_len, uint64_t used,
		uint64_t image_sum);
CKPT_HIDDEN int plog_check_table(const struct plog_hdr *h, const struct plog_ent *t);

/* plog_pages_off -- offset in the slot of the first of n logged pages */
CKPT_HIDDEN uint64_t plog_pages_off(uint64_t n);

/*
 * plog_load -- read and check the log in the slot at slot_off (slot_len
 * bytes) of a checkpoint whose catalog entry says used and checksum
 * image_sum; the slot is untrusted. 0 and *l filled, or -1 with EINVAL
 * (damaged or not this checkpoint's log: the message says which), ENOMEM
 * or the read's errno.
 */
CKPT_HIDDEN int plog_load(int fd, uint64_t slot_off, uint64_t slot_len, uint64_t used,
		uint64_t image_sum, struct plog *l);

/* plog_free -- release what plog_load allocated (idempotent) */
CKPT_HIDDEN void plog_free(struct plog *l);

/* plog_find -- the index in l->e of the first entry with page >= pg (l->n: none) */
CKPT_HIDDEN uint64_t plog_find(const struct plog *l, uint64_t pg);

/*
 * plog_pread -- read len bytes at offset off of the image: the segment's
 * bytes (at file offset seg_off) with the log's pages over them. -1
 * (ckpt_err_set) on a read error or a short file.
 */
CKPT_HIDDEN int plog_pread(int fd, uint64_t seg_off, const struct plog *l, void *buf,
		uint64_t len, uint64_t off);

/*
 * plog_overlay -- put the log's pages over buf, which holds len bytes of
 * the segment at offset off (the part of each page that falls in it)
 */
CKPT_HIDDEN int plog_overlay(int fd, const struct plog *l, void *buf, uint64_t len, uint64_t off);

/*
 * plog_fold -- write every logged page to its place in the segment at file
 * offset seg_off (the page cache), then start their writeback and wait for
 * it (sync_file_range): afterwards the segment's bytes are the image, and
 * the next fdatasync of the file makes them durable at little cost. Not
 * durable by itself; idempotent. -1 (ckpt_err_set) on an I/O error.
 */
CKPT_HIDDEN int plog_fold(int fd, uint64_t seg_off, const struct plog *l);

#endif /* CKPT_PAGELOG_H */
