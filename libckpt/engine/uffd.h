/*
 * uffd.h -- opening a userfaultfd, shared by the dirty tracker (dirty.c)
 * and the lazy restart (lazy.c).
 *
 * There are three ways, tried in this order by callers that can use
 * either: the userfaultfd(2) syscall (needs CAP_SYS_PTRACE or
 * vm.unprivileged_userfaultfd=1 for faults the kernel itself takes),
 * /dev/userfaultfd (needs access to that device, 0600 root by default),
 * and the syscall with UFFD_USER_MODE_ONLY (no privilege; a fault taken by
 * the kernel, as in read(2) into the range, is EFAULT instead of waiting).
 */
#ifndef CKPT_ENGINE_UFFD_H
#define CKPT_ENGINE_UFFD_H 1

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uffd_uapi.h"

#define UFFD_WAYS 3
#define UFFD_WAY_USER_ONLY 2    /* the last way: user-mode faults only */

/* uffd_open -- a non-blocking userfaultfd by the way-th way (above), or -1 with errno */
static inline int
uffd_open(int way)
{
	switch (way) {
	case 0:
		return (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	case 1: {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev < 0)
			return -1;
		int fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		int e = errno;
		close(dev);
		errno = e;
		return fd;
	}
	default:
		return (int)syscall(SYS_userfaultfd,
				O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	}
}

/* uffd_way_name -- how way opens it, for messages */
static inline const char *
uffd_way_name(int way)
{
	return way == 0 ? "userfaultfd(2)" : way == 1 ? "/dev/userfaultfd"
		: "userfaultfd(2) user-mode-only";
}

#endif
