/*
 * inspect.h -- read-only access to a pool for tools: never writes a byte,
 * never takes the pool lock, never trusts the file.
 */
#ifndef CKPT_INSPECT_H
#define CKPT_INSPECT_H 1

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "libckpt.h"
#include "catalog.h"
#include "format.h"
#include "pagelog.h"

struct seal_key;

/* inspect -- an open pool; invariant: hdr passed layout_check, cat is a
 * validated snapshot of the current catalog */
struct inspect {
	int fd;
	uint64_t file_size;
	struct pool_hdr hdr;
	const void *meta;        /* read-only mapping of [0, layout_meta_len) */
	void *cat_copy;          /* cat_size bytes */
	struct cat_view cat;
	struct cat_source src;   /* the copy the snapshot came from; src.fallback:
	                            the current one is damaged, cat is the older one */
	int dax;                 /* the file accepts MAP_SYNC: real pmem */
	const struct seal_key *key; /* a sealed pool's key (checked against the
	                            header by the caller), or NULL: its
	                            checkpoints' heaps cannot be read */
	struct inspect_log *logs; /* max_segments of them once a logged
	                            checkpoint was read (format 1.9), or NULL */
};

/* inspect_log -- a logged checkpoint's page log, loaded and checked once
 * for the entry it was loaded for (a refreshed snapshot may name another) */
struct inspect_log {
	int loaded;
	ckpt_id id;
	uint64_t used, checksum;
	struct plog log;
};

/*
 * inspect_image_log -- *lp: the page log of checkpoint segment seg when
 * the snapshot says it is logged (format 1.9: its image is the segment's
 * bytes with the log over them), loaded and checked on first use; NULL
 * when it is not logged. -1 (ckpt_err_set, naming the checkpoint) when
 * its log is damaged or unreadable.
 */
CKPT_HIDDEN int inspect_image_log(struct inspect *in, uint32_t seg, const struct plog **lp);

/* inspect_overlay -- buf holds n bytes of segment seg from offset off: lay its log over them */
CKPT_HIDDEN int inspect_overlay(struct inspect *in, uint32_t seg, void *buf, uint64_t n,
		uint64_t off);

/* inspect_open -- open path read-only and snapshot its catalog */
CKPT_HIDDEN int inspect_open(struct inspect *in, const char *path);

/*
 * inspect_file_type -- 0 if st (of path) is a kind of file a pool can live
 * in: a regular file or a device; else -1 with errno and a message naming
 * what it is (a directory, a FIFO, ...).
 */
CKPT_HIDDEN int inspect_file_type(const char *path, const struct stat *st);

/*
 * inspect_open_header -- open path read-only and validate its header only;
 * in->cat.h stays NULL until inspect_refresh() succeeds. verify uses it to
 * report a damaged catalog as a finding instead of failing to open.
 */
CKPT_HIDDEN int inspect_open_header(struct inspect *in, const char *path);
CKPT_HIDDEN void inspect_close(struct inspect *in);

/* inspect_refresh -- take a new catalog snapshot (in->src says from which copy) */
CKPT_HIDDEN int inspect_refresh(struct inspect *in);

/*
 * inspect_map_segment -- read-only mapping of segment i, of *len bytes:
 * the segment, cut short where the file is (so a truncated file cannot
 * SIGBUS). Unmap with inspect_unmap_segment.
 */
CKPT_HIDDEN const void *inspect_map_segment(struct inspect *in, uint32_t i, size_t *len);
CKPT_HIDDEN void inspect_unmap_segment(const void *addr, size_t len);

/* inspect_state_name -- "free", "live", "dead", "checkpoint" or "busy" for segment i */
CKPT_HIDDEN const char *inspect_state_name(const struct inspect *in, uint32_t i);

/*
 * inspect_resolve -- the segment a REF names: a checkpoint id ("7"),
 * "latest" (the newest checkpoint) or "seg:N" (segment N, any state).
 * EINVAL for a malformed REF, ENOENT when it names nothing; message set.
 */
CKPT_HIDDEN int inspect_resolve(const struct inspect *in, const char *ref, uint32_t *seg);

/* inspect_progress_fn -- done of total bytes of the current step (what) */
typedef void (*inspect_progress_fn)(void *arg, const char *what, uint64_t done,
		uint64_t total);

/*
 * inspect_read_heap -- a private copy of the heap held in segment seg, as
 * of now: the bytes [0, used) for a checkpoint (used from the catalog
 * snapshot; a sealed one decrypted with in->key, every chunk authenticated,
 * ENOKEY without it), [0, recorded high-water mark) for any other state. Copied
 * with pread, so later writes to the file cannot change what a walker
 * sees. *len may be shorter than the heap needs when the file is
 * truncated (the walker then reports the truncation). Free with
 * inspect_free_heap. progress may be NULL.
 */
CKPT_HIDDEN int inspect_read_heap(struct inspect *in, uint32_t seg, void **buf, size_t *len,
		inspect_progress_fn progress, void *parg);
CKPT_HIDDEN void inspect_free_heap(void *buf, size_t len);

/* inspect_pread -- read up to len bytes at off; the count read (short at EOF) or -1 */
CKPT_HIDDEN ssize_t inspect_pread(int fd, void *buf, size_t len, uint64_t off);

/*
 * inspect_is_cow_heap -- 1 if segment seg is a heap kept in memory in fork
 * mode cow in a pool of format 1.7 or later: what it left in the file is
 * its base checkpoint with its persisted pages over it (inspect_persist.c)
 */
CKPT_HIDDEN int inspect_is_cow_heap(const struct inspect *in, uint32_t seg);

/* inspect_cow_info -- what inspect_read_cow_heap put together */
struct inspect_cow_info {
	uint64_t base_id;        /* the base checkpoint's id, 0: none */
	uint32_t base_seg;       /* its segment, CAT_NONE: an empty base */
	uint64_t pages;          /* persisted pages laid over it */
	uint64_t stale;          /* stored pages that did not match (torn, older
	                            base, earlier life): the base's stand */
};

/*
 * inspect_read_cow_heap -- for an inspect_is_cow_heap segment: a private
 * copy of its base checkpoint's image with the pages its process persisted
 * (their sums match) laid over it, of the length that covers both; ENOENT
 * when the base is gone. info may be NULL. Free with inspect_free_heap.
 */
CKPT_HIDDEN int inspect_read_cow_heap(struct inspect *in, uint32_t seg, void **buf,
		size_t *len, struct inspect_cow_info *info);

/*
 * inspect_read -- len bytes of segment seg at offset off (from the segment
 * start) into out; -1 with EINVAL if the range leaves the segment, EIO if
 * the file ends first.
 */
CKPT_HIDDEN int inspect_read(struct inspect *in, uint32_t seg, uint64_t off, void *out,
		size_t len);

/*
 * inspect_ckpt_checksum -- the checksum of segment bytes [0, used) of the
 * kind the entry's flags name (sums.h), as the library computes it when it
 * publishes a checkpoint.
 */
CKPT_HIDDEN int inspect_ckpt_checksum(struct inspect *in, uint32_t seg, uint64_t used,
		uint32_t flags, uint64_t *sum, inspect_progress_fn progress, void *parg);

/*
 * inspect_entry_unchanged -- 1 if entry seg of a fresh catalog snapshot is
 * still the segment *old describes (same state, checkpoint id, owner, time,
 * used, checksum); 0 if it changed or went away meanwhile. A reader that
 * finds a segment's bytes inconsistent asks this before calling it damage.
 */
CKPT_HIDDEN int inspect_entry_unchanged(struct inspect *in, uint32_t seg,
		const struct cat_entry *old);

/* -- verify ---------------------------------------------------------------- */

enum inspect_severity {
	INSPECT_ERROR = 0,    /* damage: verify fails */
	INSPECT_WARNING = 1,  /* suspicious, or unverifiable now (a live heap mid-operation) */
	INSPECT_NOTE = 2,     /* information (the state of the backup catalog copy) */
};

/* inspect_finding -- one thing verify found; strings valid during the callback */
struct inspect_finding {
	enum inspect_severity severity;
	const char *where;    /* "header", "catalog", "catalog copy 1", "segment 3" */
	int64_t segment;      /* segment index, or -1 */
	uint64_t offset;      /* file offset of the damaged structure, or UINT64_MAX */
	const char *message;
};
typedef void (*inspect_finding_fn)(void *arg, const struct inspect_finding *f);

#define INSPECT_VERIFY_STRICT 0x1u   /* live/dead heaps that fail the walk are errors */
#define INSPECT_VERIFY_NO_HEAPS 0x2u /* skip the allocator walks */

struct inspect_verify_result {
	unsigned errors, warnings, notes;
	unsigned segments_walked;     /* heaps walked (any state) */
	unsigned checkpoints_verified; /* checkpoints whose checksum matched */
	unsigned skipped;             /* segments changed or freed under us, not judged */
};

/*
 * inspect_verify -- check everything in an open pool (opened with
 * inspect_open or inspect_open_header): the header, both catalog copies
 * (the current one must be valid; the other's state is a note), the tree
 * references, every checkpoint's checksum and allocator invariants, and
 * the allocator invariants of live, dead and busy heaps (warnings unless
 * INSPECT_VERIFY_STRICT: they may be mid-operation). Findings go to fn.
 * Returns the number of errors (0: the pool is sound), or -1 if verify
 * itself could not run (out of memory).
 */
CKPT_HIDDEN int inspect_verify(struct inspect *in, unsigned flags, inspect_finding_fn fn,
		void *arg, inspect_progress_fn progress, void *parg,
		struct inspect_verify_result *res);

/*
 * inspect_verify_path -- open path with inspect_open_header and verify it;
 * a file that cannot be opened as a pool is one error finding ("file" or
 * "header"). Returns errors found, as inspect_verify.
 */
CKPT_HIDDEN int inspect_verify_path(const char *path, unsigned flags, inspect_finding_fn fn,
		void *arg, struct inspect_verify_result *res);

#endif
