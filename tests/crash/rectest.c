/*
 * rectest.c -- known sequences of writes and ordering points on one file,
 * for the recorder's own test (test_recorder.sh): every interposed call
 * must show up in the log with the range it touched, and the range syncs
 * must give the crash states they promise.
 *
 *   rectest PATH          (under LD_PRELOAD of the recorder)
 *   rectest PATH range
 *   rectest PATH append
 *
 * The first sequence, and what the log must say (offsets in bytes):
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
 *
 * The range sequence (writes of 4 KiB of one letter; the crash points are
 * after the ordering points, test_recorder.sh checks their states with
 * crashcheck --probe):
 *   ftruncate 1 MiB, fdatasync             crash point 1: a 1 MiB file
 *   (a) pwritev2 'E' at 0x1000, RWF_DSYNC  crash point 2: every state holds
 *       pwrite 'F' at 0x3000                 the E page; some lack F, G, H
 *   (b) pwritev2 'G' at the file position    (pwritev2 without RWF_DSYNC and
 *       (off -1, lseek'd to 0x5000), no      sync_file_range are no points)
 *       flags                                some state holds H: the value
 *   (c) store 'H' into the page at 0x7000    sync_file_range sent to the disk
 *       through a mapping, sync_file_range   before the page became I
 *       (WRITE | WAIT_AFTER) of it, store 'I'
 *   fdatasync                              crash point 3: all durable
 *   (d) pwritev64v2 'D' at 1 MiB (past the crash point 4: every state holds
 *       end: the file grows), RWF_SYNC       D where the size reaches it;
 *                                            some keep the size 1 MiB
 *
 * The append sequence: ftruncate 4 KiB, fdatasync; pwritev2 'A' with
 * RWF_APPEND (logged: WRITE pwritev2 [0x1000, 0x2000), SIZE 8192); then
 * pwritev2 with RWF_APPEND | RWF_DSYNC, which the recorder refuses (the
 * range it syncs is not known): a marker in the log, exit status 99.
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

/* range_sequence -- pwritev2 with and without RWF_DSYNC, sync_file_range */
static void
range_sequence(int fd)
{
	char buf[4096];
	struct iovec iov = { buf, sizeof(buf) };
	check(ftruncate(fd, 1 << 20) == 0, "ftruncate");
	check(fdatasync(fd) == 0, "fdatasync");
	memset(buf, 'E', sizeof(buf));
	check(pwritev2(fd, &iov, 1, 0x1000, RWF_DSYNC) == 4096, "pwritev2 RWF_DSYNC");
	memset(buf, 'F', sizeof(buf));
	check(pwrite(fd, buf, 4096, 0x3000) == 4096, "pwrite");
	memset(buf, 'G', sizeof(buf));
	check(lseek(fd, 0x5000, SEEK_SET) == 0x5000, "lseek");
	check(pwritev2(fd, &iov, 1, -1, 0) == 4096, "pwritev2");
	check(lseek(fd, 0, SEEK_CUR) == 0x6000, "pwritev2 at the file position");
	char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0x7000);
	check(m != MAP_FAILED, "mmap");
	memset(m, 'H', 4096);
	check(sync_file_range(fd, 0x7000, 4096,
			SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) == 0,
		"sync_file_range");
	memset(m, 'I', 4096);
	check(munmap(m, 4096) == 0, "munmap");
	check(fdatasync(fd) == 0, "fdatasync");
	memset(buf, 'D', sizeof(buf));
	check(pwritev64v2(fd, &iov, 1, 1 << 20, RWF_SYNC) == 4096, "pwritev64v2 RWF_SYNC");
}

/* append_sequence -- pwritev2 RWF_APPEND, then with RWF_DSYNC: refused */
static void
append_sequence(int fd)
{
	char buf[4096];
	struct iovec iov = { buf, sizeof(buf) };
	check(ftruncate(fd, 4096) == 0, "ftruncate");
	check(fdatasync(fd) == 0, "fdatasync");
	memset(buf, 'A', sizeof(buf));
	check(pwritev2(fd, &iov, 1, 0, RWF_APPEND) == 4096, "pwritev2 RWF_APPEND");
	check(pwritev2(fd, &iov, 1, 0, RWF_APPEND | RWF_DSYNC) == 4096,
		"pwritev2 RWF_APPEND | RWF_DSYNC");
}

int
main(int argc, char **argv)
{
	const char *seq = argc == 3 ? argv[2] : "";
	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(seq, "range") != 0 &&
			strcmp(seq, "append") != 0)) {
		fprintf(stderr, "usage: rectest PATH [range|append]\n");
		return 2;
	}
	int fd = open(argv[1], O_RDWR | O_CREAT | O_EXCL, 0600);
	check(fd >= 0, "open");
	if (argc == 3) {
		if (strcmp(seq, "range") == 0)
			range_sequence(fd);
		else
			append_sequence(fd);
		close(fd);
		return 0;
	}
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
