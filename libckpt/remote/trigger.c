/*
 * trigger.c -- the background push of published checkpoints.
 *
 * With a remote store configured when a checkpoint is published
 * (CKPT_REMOTE, else the pool's own POOL.remote.url: config.c), a publish hook
 * (checkpoint.h) records the checkpoint as "pending" in POOL.remote and
 * starts `ckpt-remote push --background POOL ID URL` with posix_spawn
 * (which runs no fork handlers and copies no page tables), its output to
 * /dev/null; that process records "pushed" or "failed" with why. A detached
 * thread reaps it. The checkpoint has returned durable before any of this,
 * and nothing here can fail it: a push that cannot start is recorded as
 * failed. The network code (hiredis, librados) stays out of libckpt.so:
 * it lives in the tool, which reads the checkpoint from the pool file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "checkpoint.h"
#include "config.h"
#include "threads.h"
#include "remote/state.h"
#include "remote/trigger.h"

extern char **environ;

/* reaper -- wait for one push process so it leaves no zombie */
static void *
reaper(void *arg)
{
	pid_t pid = (pid_t)(intptr_t)arg;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return NULL;
}

/* push_published -- checkpoint_publish_hook: start the push of id */
static void
push_published(struct ckpt_pool *p, ckpt_id id)
{
	char buf[CONFIG_REMOTE_URL_MAX];
	const char *url = config_remote_url(p->path, buf, sizeof(buf));
	if (!url)
		return;
	const char *tool = config_remote_tool();
	char ids[32];
	snprintf(ids, sizeof(ids), "%" PRIu64, id);
	remote_state_record(p->path, id, "pending", url, "push started");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	char *argv[] = { (char *)"ckpt-remote", (char *)"push", (char *)"--background",
		p->path, ids, (char *)url, NULL };
	pid_t pid;
	int rc = posix_spawn(&pid, tool, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		char why[300];
		snprintf(why, sizeof(why), "cannot start %s: %s", tool, strerror(rc));
		remote_state_record(p->path, id, "failed", url, why);
		return;
	}
	/* without a thread the process stays a zombie until we exit: harmless */
	pthread_t t;
	(void)lib_thread_start(&t, "ckpt-reaper", 1, reaper, (void *)(intptr_t)pid);
}

void
remote_arm(struct ckpt_pool *p)
{
	(void)p;
	/* the store is resolved at each publish, so that a `ckpt-remote
	 * config` of an open pool counts from its next checkpoint; without one
	 * the hook costs a getenv and a failed open beside a checkpoint's
	 * fdatasync */
	checkpoint_on_publish(push_published);
}
