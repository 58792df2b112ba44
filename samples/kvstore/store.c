/*
 * store.c -- kvstore's dataset in a libckpt pool (see store.h).
 *
 * A restart is ckpt_open(path, CKPT_LATEST): the process gets a new live
 * heap equal to the newest checkpoint, at the same address, so the root
 * pointer and every pointer in the hash table are valid as they are; there
 * is nothing to load or parse. A new store takes a first checkpoint at once,
 * so the pool always has one to restart from. A restart from a dataset of
 * layout 1 (store.h) upgrades it in the live heap and checkpoints it before
 * serving, so the upgrade is durable, and happens, once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store.h"

int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* mono_us -- monotonic microseconds, for durations */
static int64_t
mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* pool_config -- how kvstore sizes a pool */
static struct ckpt_config
pool_config(size_t heap_size)
{
	struct ckpt_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.heap_size = heap_size;
	/* live + BGSAVE child + checkpoints + dead ones; retention keeps up to
	 * keep_checkpoints per past run, and there is no call yet to drop an
	 * earlier run's, so room for many restarts (the file is sparse: an
	 * unused segment costs no disk) */
	cfg.max_segments = 64;
	cfg.keep_checkpoints = 2;       /* the newest and the one before */
	return cfg;
}

/* lock_holder -- the pid holding a flock on the file dev:ino (/proc/locks), or 0 */
static int
lock_holder(dev_t dev, ino_t ino)
{
	FILE *f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	char line[256], type[16];
	int pid = 0, p;
	unsigned maj, min;
	unsigned long long i;
	while (!pid && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu", type, &p, &maj, &min, &i) == 5 &&
		    strcmp(type, "FLOCK") == 0 && maj == major(dev) && min == minor(dev) &&
		    i == (unsigned long long)ino)
			pid = p;
	fclose(f);
	return pid;
}

/*
 * lock_pool -- take the pool file's exclusive flock for as long as this
 * server runs; 0, or -1 after logging why (another server holds it).
 * flock, not fcntl: libckpt's own leases are OFD locks on ranges of the
 * same file, and neither kind sees the other.
 */
static int
lock_pool(struct store *st, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		kv_log('#', "cannot open pool %s to lock it: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		struct stat sb;
		int pid = fstat(fd, &sb) == 0 ? lock_holder(sb.st_dev, sb.st_ino) : 0;
		if (err == EWOULDBLOCK && pid)
			kv_log('#', "pool %s is in use by another kvstore (pid %d): one pool is "
				"served by one server at a time; refusing to start", path, pid);
		else if (err == EWOULDBLOCK)
			kv_log('#', "pool %s is in use by another kvstore: one pool is served by "
				"one server at a time; refusing to start", path);
		else
			kv_log('#', "cannot lock pool %s: %s", path, strerror(err));
		close(fd);
		return -1;
	}
	st->lock_fd = fd;
	return 0;
}

/* create_store -- a new pool with an empty dataset and a first checkpoint */
static int
create_store(struct store *st, const char *path, size_t heap_size)
{
	struct ckpt_config cfg = pool_config(heap_size);
	st->pool = ckpt_create(path, &cfg);
	if (!st->pool) {
		kv_log('#', "cannot create pool %s: %s", path, ckpt_errormsg());
		return -1;
	}
	struct kv_root *r = ckpt_calloc(st->pool, 1, sizeof(*r));
	if (!r) {
		kv_log('#', "cannot allocate the root: %s", ckpt_errormsg());
		return -1;
	}
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)now_us() ^ (uint64_t)getpid() << 32;
	dict_init(&r->dict, seed);
	r->created = now_us() / 1000000;
	memcpy(r->magic, KV_MAGIC, sizeof(KV_MAGIC));
	if (ckpt_set_root(st->pool, r) < 0) {
		kv_log('#', "cannot set the root: %s", ckpt_errormsg());
		return -1;
	}
	st->root = r;
	if (lock_pool(st, path) < 0)
		return -1;
	if (store_save(st, "created") < 0) {
		kv_log('#', "first checkpoint failed: %s", st->last_error);
		return -1;
	}
	kv_log('*', "created pool %s (heap %zu MiB) with an empty dataset", path,
		heap_size >> 20);
	return 0;
}

/*
 * upgrade_layout -- bring a layout-1 dataset to layout 2: long values to
 * blocks of their own, the new magic, and a checkpoint. Until that
 * checkpoint the pool still holds layout 1, so a crash in between only
 * means the next start upgrades again. 0, or -1 after logging why (the
 * heap is full: nothing is checkpointed then).
 */
static int
upgrade_layout(struct store *st)
{
	int64_t t0 = mono_us();
	int64_t moved = dict_split_values(st->pool, &st->root->dict);
	if (moved < 0) {
		kv_log('#', "cannot upgrade the dataset to layout 2: the heap is full");
		return -1;
	}
	memcpy(st->root->magic, KV_MAGIC, sizeof(KV_MAGIC));
	kv_log('*', "upgraded the dataset from layout 1 to 2 in %.3f ms: %lld values "
		"moved to blocks of their own", (double)(mono_us() - t0) / 1000.0,
		(long long)moved);
	return store_save(st, "layout 2");
}

int
store_open(struct store *st, const char *path, size_t heap_size)
{
	memset(st, 0, sizeof(*st));
	st->lock_fd = -1;
	st->path = path;
	st->heap_size = heap_size;
	st->last_status_ok = 1;
	st->restart_time = now_us() / 1000000;
	struct stat sb;
	if (stat(path, &sb) < 0) {
		if (errno != ENOENT) {
			kv_log('#', "cannot use pool %s: %s", path, strerror(errno));
			return -1;
		}
		return create_store(st, path, heap_size);
	}

	if (lock_pool(st, path) < 0)
		return -1;
	int64_t t0 = mono_us();
	struct ckpt_config cfg = pool_config(heap_size);
	st->pool = ckpt_open(path, CKPT_LATEST, &cfg);
	if (!st->pool) {
		kv_log('#', "cannot restart from pool %s: %s", path, ckpt_errormsg());
		return -1;
	}
	struct kv_root *r = ckpt_root(st->pool);
	int v1 = r && memcmp(r->magic, KV_MAGIC_V1, sizeof(KV_MAGIC_V1)) == 0;
	if (!r || (!v1 && memcmp(r->magic, KV_MAGIC, sizeof(KV_MAGIC)) != 0)) {
		kv_log('#', "pool %s does not hold a kvstore dataset of layout 1 or 2 (its root is %s)",
			path, !r ? "not set" : strncmp(r->magic, "kvstore-", 8) == 0 ?
			"a kvstore dataset of another layout" : "something else");
		return -1;
	}
	st->root = r;
	st->restarted = 1;
	st->restart_keys = dict_size(&r->dict);
	st->restart_ms = (double)(mono_us() - t0) / 1000.0;
	kv_log('*', "restarted from the latest checkpoint of %s in %.3f ms: %llu keys",
		path, st->restart_ms, (unsigned long long)st->restart_keys);
	return v1 ? upgrade_layout(st) : 0;
}

int
store_save(struct store *st, const char *label)
{
	int64_t t0 = mono_us();
	uint64_t dirty = st->dirty;
	ckpt_id id;
	if (ckpt_checkpoint(st->pool, label, &id) < 0) {
		snprintf(st->last_error, sizeof(st->last_error), "%s", ckpt_errormsg());
		st->last_status_ok = 0;
		kv_log('#', "checkpoint failed: %s", st->last_error);
		return -1;
	}
	st->last_save_ms = (double)(mono_us() - t0) / 1000.0;
	st->dirty -= dirty;
	st->checkpoints++;
	st->last_id = id;
	st->last_save_time = now_us() / 1000000;
	st->last_status_ok = 1;
	kv_log('*', "checkpoint %llu (%s) taken in %.3f ms: %llu keys",
		(unsigned long long)id, label ? label : "", st->last_save_ms,
		(unsigned long long)dict_size(&st->root->dict));
	return 0;
}

int
store_bgsave(struct store *st, const char *label)
{
	if (st->bg_pid) {
		snprintf(st->last_error, sizeof(st->last_error),
			"Background save already in progress");
		errno = EBUSY;
		return -1;
	}
	int64_t t0 = mono_us();
	pid_t pid = ckpt_checkpoint_background(st->pool, label);
	if (pid < 0) {
		snprintf(st->last_error, sizeof(st->last_error), "%s", ckpt_errormsg());
		st->last_status_ok = 0;
		kv_log('#', "background checkpoint failed to start: %s", st->last_error);
		return -1;
	}
	st->latest_fork_usec = mono_us() - t0;
	st->bg_pid = pid;
	st->bg_start_us = t0;
	st->dirty_at_bgsave = st->dirty;
	kv_log('*', "background checkpoint started by pid %d (fork took %lld us)", (int)pid,
		st->latest_fork_usec);
	return 0;
}

void
store_poll(struct store *st)
{
	if (!st->bg_pid)
		return;
	ckpt_id id;
	if (ckpt_checkpoint_wait(st->pool, st->bg_pid, &id, CKPT_WNOHANG) < 0) {
		if (errno == EAGAIN)
			return;
		snprintf(st->last_error, sizeof(st->last_error), "%s", ckpt_errormsg());
		st->last_status_ok = 0;
		st->bg_pid = 0;
		kv_log('#', "background checkpoint failed: %s", st->last_error);
		return;
	}
	st->bg_pid = 0;
	st->last_save_ms = (double)(mono_us() - st->bg_start_us) / 1000.0;
	st->dirty -= st->dirty_at_bgsave;
	st->checkpoints++;
	st->last_id = id;
	st->last_save_time = now_us() / 1000000;
	st->last_status_ok = 1;
	kv_log('*', "background checkpoint %llu done in %.3f ms",
		(unsigned long long)id, st->last_save_ms);
}

void
store_close(struct store *st)
{
	if (st->bg_pid) {
		ckpt_id id;
		if (ckpt_checkpoint_wait(st->pool, st->bg_pid, &id, 0) == 0)
			kv_log('*', "background checkpoint %llu done", (unsigned long long)id);
		st->bg_pid = 0;
	}
	if (st->pool && ckpt_close(st->pool) < 0)
		kv_log('#', "closing the pool: %s", ckpt_errormsg());
	st->pool = NULL;
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	st->lock_fd = -1;
}

void
store_close_lock_in_child(struct store *st)
{
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	st->lock_fd = -1;
}
