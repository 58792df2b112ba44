/*
 * inspect.c -- read-only walk of a pool for ckpt-inspect and tests.
 *
 * Opens the file O_RDONLY, validates the header (layout_check), maps the
 * metadata read-only and takes a lockless catalog snapshot; segments are
 * mapped read-only on demand and never past the end of the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inspect.h"
#include "layout.h"
#include "owner.h"

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

int
inspect_open(struct inspect *in, const char *path)
{
	memset(in, 0, sizeof(*in));
	in->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (in->fd < 0)
		return ckpt_err_set(errno, "cannot open %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(in->fd, &st) < 0) {
		ckpt_err_set(errno, "cannot stat %s: %s", path, strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		ckpt_err_set(EISDIR, "%s is a directory", path);
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
	void *m = mmap(NULL, in->hdr.data_off, PROT_READ, MAP_SHARED, in->fd, 0);
	if (m == MAP_FAILED) {
		ckpt_err_set(errno, "cannot map %s: %s", path, strerror(errno));
		goto fail;
	}
	in->meta = m;
	void *probe = mmap(NULL, 4096, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC, in->fd, 0);
	if (probe != MAP_FAILED) {
		in->dax = 1;
		munmap(probe, 4096);
	}
	in->cat_copy = malloc(in->hdr.cat_size);
	if (!in->cat_copy) {
		ckpt_err_set(ENOMEM, "out of memory");
		goto fail;
	}
	if (inspect_refresh(in) < 0)
		goto fail;
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
	if (cat_snapshot(&in->hdr, in->meta, in->cat_copy) < 0)
		return -1;
	cat_view_of(&in->cat, in->cat_copy, in->hdr.max_segments);
	return 0;
}

void
inspect_close(struct inspect *in)
{
	if (in->meta)
		munmap((void *)in->meta, in->hdr.data_off);
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
	void *m = mmap(NULL, l, PROT_READ, MAP_SHARED, in->fd, (off_t)off);
	if (m == MAP_FAILED) {
		ckpt_err_set(errno, "cannot map segment %u: %s", i, strerror(errno));
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
	case CAT_LIVE:
		return cat_entry_dead(in->fd, e, i) ? "dead" : "live";
	case CAT_BUSY:
		return cat_entry_dead(in->fd, e, i) ? "dead" : "busy";
	default:
		return "invalid";
	}
}
