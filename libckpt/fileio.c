/*
 * fileio.c -- whole reads and writes at an offset. pread and pwrite may
 * move fewer bytes than asked (a signal, a large request) and a read past
 * the end of the file moves none; every caller wants all of its bytes or
 * an errno, so the loop lives here once.
 */
#include <errno.h>
#include <unistd.h>

#include "fileio.h"

/* xfer -- pread or pwrite all of len bytes at off (write: buf is only read) */
static int
xfer(int fd, void *buf, uint64_t len, uint64_t off, int write)
{
	char *b = buf;
	while (len) {
		ssize_t n = write ? pwrite(fd, b, len, (off_t)off) : pread(fd, b, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		b += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

int
fio_pread_all(int fd, void *buf, uint64_t len, uint64_t off)
{
	return xfer(fd, buf, len, off, 0);
}

int
fio_pwrite_all(int fd, const void *buf, uint64_t len, uint64_t off)
{
	return xfer(fd, (void *)buf, len, off, 1);
}
