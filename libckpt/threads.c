/*
 * threads.c -- the process's threads as libckpt sees them.
 *
 * libckpt runs a few threads of its own: the fold of a logged checkpoint
 * (engine/fold.c, "ckpt-fold"), the fill of a lazy restart (engine/lazy.c,
 * "ckpt-lazy") and the reaper of a background push (remote/trigger.c,
 * "ckpt-reaper"); ckpt-run's preload library one more, which takes
 * periodic background checkpoints ("ckpt-run-ckpt", preload/preload.c,
 * named there). None of them stores into the program's heap while a
 * checkpoint builds its image: a checkpoint finishes a lazy fill before it
 * reads the heap, and the fold writes only the pool file. The program's
 * threads may store anywhere, at any time, and a cow checkpoint that
 * re-bases the heap must not run beside them (checkpoint.c, step 0). So
 * libckpt starts its threads here, under names of its own, and a
 * checkpoint asks the kernel how many of the process's threads are
 * something else.
 *
 * The kernel's list (/proc/self/task) is read whole, and a thread is
 * libckpt's by its name (comm), not by a count kept here: a thread that
 * has returned from its function, even one already joined, is still in
 * the list for a moment (the kernel wakes the joiner before it takes the
 * thread out of the group), and a count would call it the program's. The
 * name is set by the thread itself as it starts: until then it has its
 * creator's, and counts as the program's, which can only send a checkpoint
 * the safe way. Threads that other libraries start (librados, for one) are
 * the program's here: they are not libckpt's to vouch for. A program's
 * thread that names itself after one of libckpt's would be taken for it.
 * A thread whose name cannot be read for any reason but its end (no
 * descriptor left, say) is the program's: the error goes the safe way.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>

#include "threads.h"

/* the names of libckpt's threads (lib_thread_start's callers) */
static const char *const own_names[] = { "ckpt-fold", "ckpt-lazy", "ckpt-reaper",
	"ckpt-run-ckpt" };

struct start {
	void *(*fn)(void *);
	void *arg;
	char name[16];
};

/* trampoline -- name the thread, then run its function */
static void *
trampoline(void *arg)
{
	struct start s = *(struct start *)arg;
	free(arg);
	prctl(PR_SET_NAME, s.name, 0, 0, 0);
	return s.fn(s.arg);
}

int
lib_thread_start(pthread_t *t, const char *name, int detached, void *(*fn)(void *),
		void *arg)
{
	struct start *s = malloc(sizeof(*s));
	if (!s)
		return ENOMEM;
	s->fn = fn;
	s->arg = arg;
	snprintf(s->name, sizeof(s->name), "%s", name);
	pthread_attr_t a;
	pthread_attr_init(&a);
	if (detached)
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(t, &a, trampoline, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	if (rc)
		free(s);
	return rc;
}

/* is_own -- 1 if thread tid of this process bears one of libckpt's names */
static int
is_own(const char *tid)
{
	char path[300], comm[32];
	snprintf(path, sizeof(path), "/proc/self/task/%s/comm", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)     /* gone since the listing: not a thread any more */
		return errno == ENOENT || errno == ESRCH;
	ssize_t n = read(fd, comm, sizeof(comm) - 1);
	int err = errno;
	close(fd);
	if (n < 0)
		return err == ESRCH;
	if (n == 0)
		return 0;
	comm[n] = 0;
	comm[strcspn(comm, "\n")] = 0;
	for (size_t i = 0; i < sizeof(own_names) / sizeof(own_names[0]); i++)
		if (strcmp(comm, own_names[i]) == 0)
			return 1;
	return 0;
}

int
threads_of_program(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	char me[24];
	snprintf(me, sizeof(me), "%d", (int)gettid());
	int others = 0;
	struct dirent *de;
	while ((de = readdir(d)) && !others)      /* one is enough to know */
		if (de->d_name[0] != '.' && strcmp(de->d_name, me) != 0 && !is_own(de->d_name))
			others++;
	closedir(d);
	return others;
}
