/*
 * reclog.h -- the persistence log written by the recorder (recorder.c) and
 * read by the crash-state checker (crashcheck.c).
 *
 * The log is one file, CKPT_REC_LOG/rec.log: a sequence of records, each a
 * fixed header followed by `paylen` bytes, padded with zeros to a multiple
 * of 8 (REC_PAD) so every header is aligned. Every record carries a sequence
 * number; the file order is the sequence order (records are appended under
 * one lock shared by every process of the recorded run).
 *
 * Records:
 *   REC_BEGIN    first record: grain (bytes per sector of the model, 512 or
 *                64), pmem mode flag in `arg`
 *   REC_WRITE    content of [off, off+len) changed to the payload (len bytes,
 *                a multiple of the grain, never crossing a 4 KiB page): a
 *                write in flight until an ordering point makes it durable
 *   REC_SIZE     the file's size changed to `off` (ftruncate, create)
 *   REC_DURABLE  ordering point: every WRITE/SIZE with seq <= arg inside
 *                [off, off+len) (len == REC_ALL: the whole file and its
 *                size; a range never makes the size durable) is durable
 *                from here on
 *   REC_FLUSH    pmem: [off, off+len) flushed by thread `tid` with writes up
 *                to seq arg; durable at that thread's next REC_DRAIN
 *   REC_DRAIN    pmem: thread `tid`'s flushed ranges are durable
 *   REC_MARK     a driver marker; payload is a NUL-free text line
 *   REC_DIRSYNC  fsync/fdatasync of the pool's directory returned: the
 *                file's name is durable (crashcheck --posix-dir)
 */
#ifndef CKPT_RECLOG_H
#define CKPT_RECLOG_H 1

#include <stdint.h>

#define REC_MAGIC 0x52434b43u           /* "CKCR" */
#define REC_ALL UINT64_MAX
#define REC_PAD(n) (((n) + 7u) & ~7u)

enum rec_type {
	REC_BEGIN = 1,
	REC_WRITE,
	REC_SIZE,
	REC_DURABLE,
	REC_FLUSH,
	REC_DRAIN,
	REC_MARK,
	REC_DIRSYNC,
};

/* what produced a record (for reports) */
enum rec_op {
	OP_NONE = 0,
	OP_PWRITE, OP_WRITE, OP_COPY_RANGE, OP_CLONE, OP_FALLOCATE, OP_PUNCH,
	OP_FTRUNCATE, OP_FDATASYNC, OP_FSYNC, OP_SYNCFS, OP_SYNC, OP_MSYNC,
	OP_PMEM_MSYNC, OP_PMEM_PERSIST, OP_PMEM_FLUSH, OP_PMEM_DRAIN,
	OP_PMEM_MEMCPY, OP_INIT, OP_LINK, OP_PWRITEV2, OP_SYNC_FILE_RANGE,
	OP_COUNT
};

static const char *const rec_op_names[OP_COUNT] = {
	"none", "pwrite", "write", "copy_file_range", "clone", "fallocate",
	"punch", "ftruncate", "fdatasync", "fsync", "syncfs", "sync", "msync",
	"pmem_msync", "pmem_persist", "pmem_flush", "pmem_drain",
	"pmem_memcpy", "init", "link", "pwritev2", "sync_file_range",
};

struct rec_hdr {
	uint32_t magic;
	uint16_t type;          /* enum rec_type */
	uint16_t op;            /* enum rec_op */
	uint32_t pid;
	uint32_t tid;
	uint64_t seq;
	uint64_t off;
	uint64_t len;
	uint64_t arg;           /* DURABLE/FLUSH: cutoff seq; BEGIN: pmem flag */
	uint32_t paylen;
	uint32_t grain;         /* BEGIN: sector size of the model */
};

_Static_assert(sizeof(struct rec_hdr) == 56, "rec_hdr is 56 bytes");

#endif
