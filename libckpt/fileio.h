/*
 * fileio.h -- whole reads and writes at an offset: the pread/pwrite loops
 * every file that moves bytes of the pool with them shares (fileio.c).
 */
#ifndef CKPT_FILEIO_H
#define CKPT_FILEIO_H 1

#include <stdint.h>

#include "internal.h"

/*
 * fio_pread_all, fio_pwrite_all -- all of len bytes at off, resuming after
 * short transfers and EINTR; 0, or -1 with errno (EIO when the file ends
 * before len bytes, or a write makes no progress). No message: the caller
 * says what it was reading or writing.
 */
CKPT_HIDDEN int fio_pread_all(int fd, void *buf, uint64_t len, uint64_t off);
CKPT_HIDDEN int fio_pwrite_all(int fd, const void *buf, uint64_t len, uint64_t off);

#endif /* CKPT_FILEIO_H */
