/*
 * open.c -- the entry points that give the calling process a live heap in
 * a pool: ckpt_create (a new pool, an empty heap) and ckpt_open (a restart
 * from a checkpoint).
 *
 * Both are the same three steps, each owned by a lower file:
 *   1. resolve the settings: the caller's config, the environment and (on
 *      open) the pool's header, every value checked before the disk is
 *      touched (config.c);
 *   2. make the live segment: create the file with an empty heap in
 *      segment 0 (pool.c), or open the file and fill a new segment from
 *      the checkpoint (pool.c, restart.c);
 *   3. arm fork handling, so a fork() gives the child a heap of its own
 *      (fork.c), the forked path of a cow checkpoint beside other threads
 *      (bgsave.c), and with CKPT_REMOTE the background push of checkpoints
 *      (remote/trigger.c).
 * ckpt_close, the way back, is in pool.c.
 */
#include "bgsave.h"
#include "fork.h"
#include "pool.h"
#include "restart.h"
#include "remote/trigger.h"

CKPT_EXPORT ckpt_pool *
ckpt_create(const char *path, const struct ckpt_config *cfg)
{
	struct pool_config c;
	if (!path || !*path) {
		ckpt_err_set(EINVAL, "pool path is empty");
		return NULL;
	}
	if (config_resolve(&c, cfg, 1) < 0)
		return NULL;
	struct ckpt_pool *p = pool_create(path, &c);
	if (p) {
		fork_register(p);
		bgsave_arm();
		remote_arm(p);
	}
	return p;
}

CKPT_EXPORT ckpt_pool *
ckpt_open(const char *path, ckpt_id from, const struct ckpt_config *cfg)
{
	struct ckpt_pool *p = pool_open_path(path, cfg);
	if (!p)
		return NULL;
	if (restart_into(p, from) < 0) {
		pool_discard(p);
		return NULL;
	}
	fork_register(p);
	bgsave_arm();
	remote_arm(p);
	return p;
}
