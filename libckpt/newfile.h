/*
 * newfile.h -- a new pool file that appears at its path only when it is
 * complete (see newfile.c): opened nameless or hidden, written through its
 * descriptor, then linked into place, never over anything.
 */
#ifndef CKPT_NEWFILE_H
#define CKPT_NEWFILE_H 1

#include <sys/types.h>

#include "internal.h"

#define NEWFILE_PATH_MAX 4096

struct newfile {
	int fd;                       /* the file; the caller closes it */
	int linked;                   /* newfile_publish gave it the target's name */
	char tmp[NEWFILE_PATH_MAX];   /* its hidden name, or "" (unnamed, O_TMPFILE) */
};

/*
 * newfile_open -- a file for target path, not yet visible there, with
 * permissions mode (less the umask). EEXIST if path exists.
 */
CKPT_HIDDEN int newfile_open(struct newfile *nf, const char *path, mode_t mode);

/*
 * newfile_publish -- give the written, synced file the name path (EEXIST
 * if something took it meanwhile) and make the name durable. Crash point
 * create:after-publish: the name is given, the hidden one not yet removed.
 */
CKPT_HIDDEN int newfile_publish(struct newfile *nf, const char *path);

/* newfile_abandon -- remove what newfile_open and newfile_publish made; keeps errno */
CKPT_HIDDEN void newfile_abandon(struct newfile *nf, const char *path);

#endif
