/*
 * rectest.c -- a known sequence of writes and ordering points on one file,
 * for the recorder's own test (test_crash_recorder.sh): every interposed
 * call must show up in the log with the range it touched.
 *
 *   rectest PATH          (under LD_PRELOAD of the recorder)
 *
 * The sequence, and what the log must say (offsets in bytes):
 *   ftruncate 1 MiB                        SIZE 1048576
 *   pwrite 4096 x 'A' at 0                 WRITE pwrite [0, 4096)
 *   pwritev 2 x 512 at 8192                WRITE pwrite [8192, 9216)
 *   write 1024 at 16384 (after lseek)      WRITE write [16384, 17408)
 *   fdatasync                              DURABLE fdatasync, the whole file
 *   stores through a MAP_SHARED mapping at 20480 and 40960,
 *   msync(MS_SYNC) of the page at 20480    WRITE msync (both pages), DURABLE
 *                                          msync [0x5000, +0x1000)
 *   copy_file_range 4096 from 0 to 65536   WRITE copy_file_range [65536, 69632)
 *   fallocate punch [0, 4096)              WRITE punch [0, 4096) (zeros)
 *   pmem_persist of 64 bytes at 40960      pmem mode: DURABLE pmem_persist
 *                                          [0xa000, +0x40); else nothing
 *   pmem_msync of the page at 40960        DURABLE pmem_msync [0xa000, +0x1000)
 *   fsync                                  DURABLE fsync, the whole file
 *   marker "done"                          MARK "done"
 * libpmem is called as libckpt calls it: through the PLT of libpmem.so.1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <libpmem.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static void
check(int ok, const char *what)
{
	if (!ok) {
		perror(what);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: rectest PATH\n");
		return 2;
	}
	int fd = open(argv[1], O_RDWR | O_CREAT | O_EXCL, 0600);
	check(fd >= 0, "open");
	check(ftruncate(fd, 1 << 20) == 0, "ftruncate");
	char buf[4096];
	memset(buf, 'A', sizeof(buf));
	check(pwrite(fd, buf, 4096, 0) == 4096, "pwrite");
	struct iovec iov[2] = { { buf, 512 }, { buf, 512 } };
	check(pwritev(fd, iov, 2, 8192) == 1024, "pwritev");
	check(lseek(fd, 16384, SEEK_SET) == 16384, "lseek");
	check(write(fd, buf, 1024) == 1024, "write");
	check(fdatasync(fd) == 0, "fdatasync");
	char *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	check(m != MAP_FAILED, "mmap");
	m[20480] = 'B';
	m[40960] = 'C';
	check(msync(m + 20480, 4096, MS_SYNC) == 0, "msync");
	loff_t in = 0, out = 65536;
	check(copy_file_range(fd, &in, fd, &out, 4096, 0) == 4096, "copy_file_range");
	check(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0,
		"fallocate");
	m[40961] = 'D';
	pmem_persist(m + 40960, 64);
	check(pmem_msync(m + 40960, 4096) == 0, "pmem_msync");
	check(munmap(m, 65536) == 0, "munmap");
	check(fsync(fd) == 0, "fsync");
	void (*mark)(const char *) = (void (*)(const char *))dlsym(RTLD_DEFAULT,
			"ckpt_rec_mark");
	check(mark != NULL, "ckpt_rec_mark not found (recorder not preloaded?)");
	mark("done");
	close(fd);
	return 0;
}
