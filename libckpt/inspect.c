/*
 * inspect.c -- read-only walk of a pool for ckpt-inspect and tests.
 *
 * Opens the file O_RDONLY, validates the header (layout_check), maps the
 * metadata read-only and takes a lockless catalog snapshot; segments are
 * mapped read-only on demand and never past the end of the file. Only a
 * regular file or a device is opened, and never in a way that can block (a
 * FIFO put in place of the pool would wait for a writer forever).
 *
 * What a reader builds on: resolving a segment or checkpoint reference,
 * bounded reads, a checkpoint's heap read whole (decrypted when sealed) and
 * its checksum recomputed. The checks of `ckpt-inspect verify` are in
 * inspect_verify.c, a cow heap's persisted pages in inspect_persist.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


#include "filesize.h"
#include "heap.h"
#include "libckpt.h"
#include "inspect.h"
#include "layout.h"
#include "map.h"
#include "sums.h"
#include "seal/chunks.h"

int
inspect_open(struct inspect *in, const char *path)
{
	if (inspect_open_header(in, path) < 0)
		return -1;
	if (inspect_refresh(in) < 0) {
		int saved = errno;
		inspect_close(in);
		errno = saved;
		return -1;
	}
	return 0;
}

/* file_kind -- what a non-pool file type is called in messages */
static const char *
file_kind(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" :
		S_ISLNK(m) ? "a symbolic link" : "not a regular file";
}

/* inspect_file_type -- 0 if st is something a pool can live in: a regular file or a device */
int
inspect_file_type(const char *path, const struct stat *st)
{
	if (S_ISREG(st->st_mode) || S_ISBLK(st->st_mode) || S_ISCHR(st->st_mode))
		return 0;
	return ckpt_err_set(S_ISDIR(st->st_mode) ? EISDIR : EINVAL,
		"%s is %s, not a pool (a pool is a regular file or a DAX device)", path,
		file_kind(st->st_mode));
}

int
inspect_open_header(struct inspect *in, const char *path)
{
	memset(in, 0, sizeof(*in));
	in->fd = -1;
	/* what is not a file or a device is refused before it is opened: an
	 * open of a FIFO waits for a writer, one of a socket fails obscurely */
	struct stat st;
	if (stat(path, &st) < 0)
		return ckpt_err_set(errno, "cannot open %s: %s", path, strerror(errno));
	if (inspect_file_type(path, &st) < 0)
		return -1;
	/* O_NONBLOCK: the path may have been replaced by a FIFO since */
	in->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (in->fd < 0)
		return ckpt_err_set(errno, "cannot open %s: %s", path, strerror(errno));
	if (fstat(in->fd, &st) < 0) {
		ckpt_err_set(errno, "cannot stat %s: %s", path, strerror(errno));
		goto fail;
	}
	if (inspect_file_type(path, &st) < 0)
		goto fail;
	int fl = fcntl(in->fd, F_GETFL);
	if (fl < 0 || fcntl(in->fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		ckpt_err_set(errno, "cannot use %s: %s", path, strerror(errno));
		goto fail;
	}
	in->file_size = (uint64_t)st.st_size;
	ssize_t n = pread(in->fd, &in->hdr, sizeof(in->hdr), 0);
	if (n < 0) {
		ckpt_err_set(errno, "cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	if (layout_check(&in->hdr, (size_t)n < sizeof(in->hdr) ? (uint64_t)n : in->file_size) < 0)
		goto fail;
	void *m = mmap(NULL, layout_meta_len(&in->hdr), PROT_READ, MAP_SHARED, in->fd, 0);
	if (m == MAP_FAILED) {
		ckpt_err_set(errno, "cannot map %s: %s", path, strerror(errno));
		goto fail;
	}
	in->meta = m;
	in->dax = map_is_dax(in->fd);
	in->cat_copy = malloc(in->hdr.cat_size);
	if (!in->cat_copy) {
		ckpt_err_set(ENOMEM, "out of memory");
		goto fail;
	}
	return 0;
fail:
	{
		int saved = errno;
		inspect_close(in);
		errno = saved;
	}
	return -1;
}

int
inspect_refresh(struct inspect *in)
{
	if (cat_snapshot_src(&in->hdr, in->meta, in->cat_copy, &in->src) < 0) {
		memset(&in->cat, 0, sizeof(in->cat));
		return -1;
	}
	cat_view_of(&in->cat, in->cat_copy, in->hdr.max_segments);
	return 0;
}

int
inspect_image_log(struct inspect *in, uint32_t seg, const struct plog **lp)
{
	*lp = NULL;
	if (!in->cat.h || seg >= in->cat.n || !(in->hdr.flags & POOL_F_LOG_AREA))
		return 0;
	const struct cat_entry *e = &in->cat.e[seg];
	if (e->state != CAT_CKPT || !(e->flags & CAT_F_LOGGED))
		return 0;
	if (!in->logs && !(in->logs = calloc(in->hdr.max_segments, sizeof(*in->logs))))
		return ckpt_err_set(ENOMEM, "out of memory");
	struct inspect_log *l = &in->logs[seg];
	if (l->loaded && (l->id != e->ckpt_id || l->used != e->used || l->checksum != e->checksum)) {
		plog_free(&l->log);     /* loaded for an entry the segment held before */
		l->loaded = 0;
	}
	if (!l->loaded) {
		if (plog_load(in->fd, layout_log_off(&in->hdr, seg),
				in->hdr.seg_size / LAYOUT_LOG_RATIO, e->used, e->checksum,
				&l->log) < 0) {
			ckpt_err_prefix("checkpoint %" PRIu64 " (segment %u): ", e->ckpt_id, seg);
			return -1;
		}
		l->loaded = 1;
		l->id = e->ckpt_id;
		l->used = e->used;
		l->checksum = e->checksum;
	}
	*lp = &l->log;
	return 0;
}

int
inspect_overlay(struct inspect *in, uint32_t seg, void *buf, uint64_t n, uint64_t off)
{
	const struct plog *l;
	if (inspect_image_log(in, seg, &l) < 0)
		return -1;
	return l ? plog_overlay(in->fd, l, buf, n, off) : 0;
}

void
inspect_close(struct inspect *in)
{
	if (in->logs)
		for (uint32_t i = 0; i < in->hdr.max_segments; i++)
			plog_free(&in->logs[i].log);
	free(in->logs);
	in->logs = NULL;
	if (in->meta)
		munmap((void *)in->meta, layout_meta_len(&in->hdr));
	free(in->cat_copy);
	if (in->fd >= 0)
		close(in->fd);
	memset(in, 0, sizeof(*in));
	in->fd = -1;
}

const void *
inspect_map_segment(struct inspect *in, uint32_t i, size_t *len)
{
	if (i >= in->hdr.max_segments) {
		ckpt_err_set(EINVAL, "segment %u does not exist (pool has %u)", i,
				in->hdr.max_segments);
		return NULL;
	}
	uint64_t off = layout_seg_off(&in->hdr, i);
	uint64_t l = in->hdr.seg_size;
	if (off >= in->file_size)
		l = 0;
	else if (in->file_size - off < l)
		l = in->file_size - off;
	*len = (size_t)l;
	if (l == 0) {
		ckpt_err_set(EINVAL, "segment %u lies past the end of the file", i);
		return NULL;
	}
	const struct plog *log;
	if (inspect_image_log(in, i, &log) < 0)
		return NULL;
	/* a logged image: a private view, with the log's pages put over it */
	void *m = mmap(NULL, l, log ? PROT_READ | PROT_WRITE : PROT_READ,
			log ? MAP_PRIVATE : MAP_SHARED, in->fd, (off_t)off);
	if (m == MAP_FAILED) {
		ckpt_err_set(errno, "cannot map segment %u: %s", i, strerror(errno));
		return NULL;
	}
	if (log && (plog_overlay(in->fd, log, m, l, 0) < 0 || mprotect(m, l, PROT_READ) < 0)) {
		ckpt_err_prefix("segment %u: ", i);
		munmap(m, l);
		return NULL;
	}
	return m;
}

void
inspect_unmap_segment(const void *addr, size_t len)
{
	if (addr)
		munmap((void *)addr, len);
}

const char *
inspect_state_name(const struct inspect *in, uint32_t i)
{
	const struct cat_entry *e = &in->cat.e[i];
	switch (e->state) {
	case CAT_FREE:
		return "free";
	case CAT_CKPT:
		return "checkpoint";
	case CAT_FILLING:
		return "filling";
	case CAT_LIVE:
		return cat_entry_dead(in->fd, e, i) ? "dead" : "live";
	case CAT_BUSY:
		return cat_entry_dead(in->fd, e, i) ? "dead" : "busy";
	default:
		return "invalid";
	}
}

/* -- REF ------------------------------------------------------------------- */

/* parse_u64 -- whole string as a decimal number; 0 on success */
static int
parse_u64(const char *s, uint64_t *v)
{
	if (!*s || *s < '0' || *s > '9')
		return -1;
	uint64_t x = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (mul_overflows(x, 10, &x) || add_overflows(x, (uint64_t)(*s - '0'), &x))
			return -1;
	}
	*v = x;
	return 0;
}

int
inspect_resolve(const struct inspect *in, const char *ref, uint32_t *seg)
{
	if (!in->cat.h)
		return ckpt_err_set(EINVAL, "the catalog could not be read");
	uint64_t v;
	if (strcmp(ref, "latest") == 0) {
		int best = -1;
		for (uint32_t i = 0; i < in->cat.n; i++)
			if (in->cat.e[i].state == CAT_CKPT &&
			    (best < 0 || in->cat.e[i].ckpt_id > in->cat.e[best].ckpt_id))
				best = (int)i;
		if (best < 0)
			return ckpt_err_set(ENOENT, "the pool holds no checkpoint");
		*seg = (uint32_t)best;
		return 0;
	}
	if (strncmp(ref, "seg:", 4) == 0) {
		if (parse_u64(ref + 4, &v) < 0)
			return ckpt_err_set(EINVAL,
				"bad segment reference '%s': expected seg:N", ref);
		if (v >= in->hdr.max_segments)
			return ckpt_err_set(ENOENT, "segment %" PRIu64 " does not exist (pool has %u)",
				v, in->hdr.max_segments);
		*seg = (uint32_t)v;
		return 0;
	}
	if (parse_u64(ref, &v) < 0 || v == 0)
		return ckpt_err_set(EINVAL,
			"bad reference '%s': expected a checkpoint id, latest or seg:N", ref);
	for (uint32_t i = 0; i < in->cat.n; i++)
		if (in->cat.e[i].state == CAT_CKPT && in->cat.e[i].ckpt_id == v) {
			*seg = i;
			return 0;
		}
	return ckpt_err_set(ENOENT, "no checkpoint %" PRIu64 " in the pool", v);
}

/* -- reading segments ------------------------------------------------------ */

#define READ_CHUNK ((size_t)16 << 20)

ssize_t
inspect_pread(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int
inspect_read(struct inspect *in, uint32_t seg, uint64_t off, void *out, size_t len)
{
	uint64_t end;
	if (seg >= in->hdr.max_segments)
		return ckpt_err_set(EINVAL, "segment %u does not exist (pool has %u)", seg,
				in->hdr.max_segments);
	if (add_overflows(off, len, &end) || end > in->hdr.seg_size)
		return ckpt_err_set(EINVAL,
			"range [0x%" PRIx64 ", +%zu) leaves the segment (%" PRIu64 " bytes)",
			off, len, in->hdr.seg_size);
	ssize_t n = inspect_pread(in->fd, out, len, layout_seg_off(&in->hdr, seg) + off);
	if (n < 0)
		return ckpt_err_set(errno, "cannot read segment %u: %s", seg, strerror(errno));
	if ((size_t)n < len)
		return ckpt_err_set(EIO, "segment %u: the file ends at segment offset 0x%" PRIx64
				" (truncated)", seg, off + (uint64_t)n);
	return inspect_overlay(in, seg, out, len, off);
}

void
inspect_free_heap(void *buf, size_t len)
{
	if (buf)
		munmap(buf, len ? len : 1);
}

/* read_sealed -- inspect_read_heap of a sealed checkpoint: decrypted, or ENOKEY */
static int
read_sealed(struct inspect *in, uint32_t seg, const struct cat_entry *e, void **bufp,
		size_t *lenp)
{
	if (!in->key)
		return ckpt_err_set(ENOKEY, "checkpoint %llu is sealed: its heap can be read "
				"only with the pool's key (--key-file)",
				(unsigned long long)e->ckpt_id);
	if (e->used > in->hdr.seg_size)
		return ckpt_err_set(EINVAL, "checkpoint %llu: used %llu exceeds the segment",
				(unsigned long long)e->ckpt_id, (unsigned long long)e->used);
	size_t len = (size_t)e->used;
	void *buf = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED)
		return ckpt_err_set(errno, "cannot allocate %zu bytes for segment %u: %s",
				len, seg, strerror(errno));
	if (seal_read_image(in->fd, &in->hdr, seg, e, in->key, buf) < 0) {
		int saved = errno;
		munmap(buf, len ? len : 1);
		errno = saved;
		return -1;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

int
inspect_read_heap(struct inspect *in, uint32_t seg, void **bufp, size_t *lenp,
		inspect_progress_fn progress, void *parg)
{
	*bufp = NULL;
	*lenp = 0;
	if (!in->cat.h)
		return ckpt_err_set(EINVAL, "the catalog could not be read");
	if (seg >= in->cat.n)
		return ckpt_err_set(EINVAL, "segment %u does not exist (pool has %u)", seg,
				in->cat.n);
	const struct cat_entry *e = &in->cat.e[seg];
	uint64_t want;
	if (e->state == CAT_FREE)
		return ckpt_err_set(ENOENT, "segment %u is free: it holds no heap", seg);
	if (e->state == CAT_CKPT && (e->flags & CAT_F_SEALED))
		return read_sealed(in, seg, e, bufp, lenp);
	if (inspect_is_cow_heap(in, seg))
		return inspect_read_cow_heap(in, seg, bufp, lenp, NULL);
	if (e->state == CAT_CKPT) {
		want = e->used;
	} else {
		/* the heap header says how much of the segment holds the heap */
		unsigned char hh[HEAP_HDR_BYTES];
		uint64_t so = layout_seg_off(&in->hdr, seg);
		uint64_t have = in->file_size > so ? in->file_size - so : 0;
		if (have > in->hdr.seg_size)
			have = in->hdr.seg_size;
		memset(hh, 0, sizeof(hh));
		ssize_t n = inspect_pread(in->fd, hh, sizeof(hh), so);
		if (n < 0)
			return ckpt_err_set(errno, "cannot read segment %u: %s", seg,
					strerror(errno));
		int rc = heap_peek_high_water(hh, (size_t)have, &want);
		if (rc < 0) {
			ckpt_err_prefix("segment %u: ", seg);
			return -1;
		}
		if (want > in->hdr.seg_size)
			want = in->hdr.seg_size;
	}
	uint64_t seg_off = layout_seg_off(&in->hdr, seg);
	uint64_t avail = in->file_size > seg_off ? in->file_size - seg_off : 0;
	if (want > avail)
		want = avail;  /* the walker reports what is missing */
	size_t len = (size_t)want;
	void *buf = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED)
		return ckpt_err_set(errno, "cannot allocate %zu bytes for segment %u: %s",
				len, seg, strerror(errno));
	size_t done = 0;
	while (done < len) {
		size_t c = len - done < READ_CHUNK ? len - done : READ_CHUNK;
		ssize_t n = inspect_pread(in->fd, (char *)buf + done, c, seg_off + done);
		if (n < 0) {
			int saved = errno;
			munmap(buf, len ? len : 1);
			return ckpt_err_set(saved, "cannot read segment %u: %s", seg,
					strerror(saved));
		}
		if (inspect_overlay(in, seg, (char *)buf + done, (uint64_t)n, done) < 0) {
			munmap(buf, len ? len : 1);
			return -1;
		}
		done += (size_t)n;
		if (progress)
			progress(parg, "reading", done, len);
		if ((size_t)n < c)
			break;  /* the file shrank under us: the walker sees it */
	}
	*bufp = buf;
	*lenp = done;
	return 0;
}

int
inspect_ckpt_checksum(struct inspect *in, uint32_t seg, uint64_t used, uint32_t flags,
		uint64_t *sum, inspect_progress_fn progress, void *parg)
{
	if (seg >= in->hdr.max_segments || used > in->hdr.seg_size)
		return ckpt_err_set(EINVAL, "segment %u: bad range for a checksum", seg);
	size_t cl = used < READ_CHUNK ? (size_t)used : READ_CHUNK;
	void *chunk = malloc(cl ? cl : 1);
	struct sums *st = malloc(sizeof(*st));
	if (!chunk || !st) {
		free(chunk);
		free(st);
		return ckpt_err_set(ENOMEM, "out of memory");
	}
	sums_begin(st, (flags & CAT_F_PAGE_SUMS) != 0, NULL);
	uint64_t off = layout_seg_off(&in->hdr, seg), done = 0;
	int ret = 0;
	while (done < used) {
		size_t c = used - done < cl ? (size_t)(used - done) : cl;
		ssize_t n = inspect_pread(in->fd, chunk, c, off + done);
		if (n < 0) {
			ret = ckpt_err_set(errno, "cannot read segment %u: %s", seg,
					strerror(errno));
			break;
		}
		if ((size_t)n < c) {
			ret = ckpt_err_set(EIO, "segment %u: the file ends at segment offset 0x%"
					PRIx64 ", before the %" PRIu64 " bytes the checkpoint holds",
					seg, done + (uint64_t)n, used);
			break;
		}
		if ((ret = inspect_overlay(in, seg, chunk, c, done)) < 0)
			break;
		sums_update(st, chunk, c);
		done += c;
		if (progress)
			progress(parg, "checksum", done, used);
	}
	if (ret == 0)
		*sum = sums_end(st);
	free(st);
	free(chunk);
	return ret;
}
