/*
 * sums.c -- computing a checkpoint's checksum from its bytes (see sums.h).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<sys/platform/x86.h>)
#include <sys/platform/x86.h>       /* glibc 2.33: CPU_FEATURE_ACTIVE */
#endif
#endif

#include "libckpt.h"
#include "fileio.h"
#include "sums.h"

/* library_xxh3 -- libxxhash's XXH3-64 (its signature, as a pointer takes it) */
static uint64_t
library_xxh3(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}

uint64_t (*sums_xxh3_fn)(const void *, size_t) = library_xxh3;

/*
 * pick_xxh3 -- at load: the AVX2 build of the same hash where the CPU has
 * AVX2 and the kernel saves its registers. glibc answers from the features
 * it read at start-up; libgcc's __builtin_cpu_supports would run its own
 * CPUID probe in every process that loads us, and in a virtual machine
 * each CPUID traps to the hypervisor: about 5% of a short process's time
 * under ckpt-run (perf, 2026-12-04). Where the C library has no
 * CPU_FEATURE_ACTIVE (glibc before 2.33, which had CPU_FEATURE_USABLE in
 * 2.32 and no header before; musl), libgcc's probe it is.
 */
static void __attribute__((constructor))
pick_xxh3(void)
{
#if defined(__x86_64__) && defined(CKPT_HAVE_AVX2_SUMS)
#ifdef CPU_FEATURE_ACTIVE
	if (CPU_FEATURE_ACTIVE(AVX2))
#else
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
#endif
		sums_xxh3_fn = sums_xxh3_avx2;
#endif
}

int
sums_store(int fd, uint64_t off, const uint64_t *sums, uint64_t npages)
{
	if (fio_pwrite_all(fd, sums, npages * sizeof(*sums), off) < 0)
		return ckpt_err_set(errno, "cannot write the checkpoint's page sums: %s",
				strerror(errno));
	return 0;
}

int
sums_check_stored(int fd, uint64_t off, uint64_t npages, uint64_t checksum)
{
	uint64_t buf[4096];
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	for (uint64_t done = 0; done < npages;) {
		uint64_t n = npages - done < 4096 ? npages - done : 4096;
		if (fio_pread_all(fd, buf, n * sizeof(*buf), off + done * sizeof(*buf)) < 0)
			return ckpt_err_set(errno, "cannot read the page sums: %s",
					strerror(errno));
		XXH3_64bits_update(&st, buf, n * sizeof(*buf));
		done += n;
	}
	if (XXH3_64bits_digest(&st) != checksum)
		return ckpt_err_set(EINVAL, "its stored page sums are damaged: checksum mismatch");
	return 0;
}

int
sums_load(int fd, uint64_t off, uint64_t npages, uint64_t checksum, uint64_t *out)
{
	if (fio_pread_all(fd, out, npages * sizeof(*out), off) < 0)
		return ckpt_err_set(errno, "cannot read the page sums: %s", strerror(errno));
	if (sums_top(out, npages) != checksum)
		return ckpt_err_set(EINVAL, "its stored page sums are damaged: checksum mismatch");
	return 0;
}

void
sums_begin(struct sums *s, int paged, uint64_t *out)
{
	XXH3_64bits_reset(&s->st);
	s->paged = paged;
	s->out = out;
	s->npages = 0;
}

void
sums_update(struct sums *s, const void *data, size_t len)
{
	if (!s->paged)
		XXH3_64bits_update(&s->st, data, len);
	if (!s->paged && !s->out)
		return;
	const char *b = data;
	for (size_t off = 0; off < len; off += SUMS_PAGE) {
		size_t n = len - off < SUMS_PAGE ? len - off : SUMS_PAGE;
		uint64_t h = sums_xxh3(b + off, n);
		if (s->paged)
			XXH3_64bits_update(&s->st, &h, sizeof(h));
		if (s->out)
			s->out[s->npages] = h;
		s->npages++;
	}
}

uint64_t
sums_end(struct sums *s)
{
	return XXH3_64bits_digest(&s->st);
}

int
sums_update_file(struct sums *s, int fd, uint64_t off, uint64_t len, char *buf, uint64_t *at)
{
	for (uint64_t o = 0; o < len; o += SUMS_READ) {
		uint64_t n = len - o < SUMS_READ ? len - o : SUMS_READ;
		if (fio_pread_all(fd, buf, n, off + o) < 0) {
			*at = o;
			return -1;
		}
		sums_update(s, buf, n);
	}
	return 0;
}

int
sums_check_file(int fd, uint64_t off, uint64_t len, const uint64_t *want, char *buf,
		uint64_t *bad)
{
	for (uint64_t o = 0; o < len; o += SUMS_READ) {
		uint64_t n = len - o < SUMS_READ ? len - o : SUMS_READ;
		if (fio_pread_all(fd, buf, n, off + o) < 0) {
			*bad = o;
			return -2;
		}
		if (sums_check(buf, n, want + o / SUMS_PAGE, bad) < 0) {
			*bad += o;
			return -1;
		}
	}
	return 0;
}

int
sums_check(const char *bytes, uint64_t len, const uint64_t *want, uint64_t *bad)
{
	for (uint64_t p = 0; p < len; p += SUMS_PAGE)
		if (sums_page(bytes + p) != want[p / SUMS_PAGE]) {
			*bad = p;
			return -1;
		}
	return 0;
}
