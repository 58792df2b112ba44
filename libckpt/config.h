/*
 * config.h -- the one place that turns a caller's struct ckpt_config and
 * the environment into the settings a pool is created or opened with.
 *
 * Precedence, for create and open alike: the environment (CKPT_FORK_MODE,
 * CKPT_RESTART)
 * over the caller's config (but the caller's key_file over CKPT_KEY_FILE) over, on open, what the pool's header records
 * over the library's defaults. A config passed to ckpt_open is read for
 * fork_mode, keep_checkpoints and key_file only (the rest is the pool's); its
 * fork_mode counts whatever its value, CKPT_FORK_AUTO included, while
 * keep_checkpoints 0 means "the pool's". Every value is checked here,
 * before anything is written, and a bad one is EINVAL naming its source.
 */
#ifndef CKPT_CONFIG_H
#define CKPT_CONFIG_H 1

#include <stdint.h>
#include <sys/types.h>

#include "libckpt.h"
#include "format.h"
#include "internal.h"

/* pool_config -- resolved settings; fields marked create are unused on open */
struct pool_config {
	uint64_t heap_size;             /* create: bytes of one segment */
	uint64_t max_segments;          /* create */
	uint64_t base;                  /* create: 0 picks the first free default */
	mode_t mode;                    /* create: permissions of the file */
	enum ckpt_fork_mode fork_mode;  /* as requested; auto until config_fork_mode */
	int fork_mode_set;              /* 1 if the environment or the config chose it */
	const char *fork_mode_from;     /* where it came from, for messages */
	enum ckpt_fork_mode pool_fork_mode; /* create: the mode the header records:
	                                   the config's (auto stays auto, settled by
	                                   each opener; the environment is per process) */
	unsigned keep;                  /* keep_checkpoints; 0 on open: the pool's */
	const uint8_t *uuid;            /* create: 16 bytes the header records (a pool
	                                   rebuilt from a remote manifest); NULL: random */
	const char *key_file;           /* the key file (ckpt_config.key_file, else
	                                   CKPT_KEY_FILE), or NULL: create makes a
	                                   sealed pool with it; open needs it for one */
	const char *key_from;           /* where it came from, for messages */
	const uint8_t *key_id;          /* pool_create_keyless: the sealed pool's key
	                                   id (16 bytes), the key itself not at hand */
	int keyless;                    /* open: a sealed pool opened without its key,
	                                   to add ciphertext it never reads (a pull);
	                                   no heap may be restarted from it */
	ckpt_key_fn key_fn;             /* no key file: the program's key callback
	                                   (ckpt_set_key_callback), or NULL */
	void *key_arg;                  /* its argument */
	int eager_restart;              /* open: CKPT_RESTART=eager: a cow restart
	                                   verifies the whole image before it returns
	                                   (default: each page on first access where
	                                   the kernel allows) */
	unsigned fill_wait_ms;          /* open: CKPT_REMOTE_FILL_TIMEOUT (seconds,
	                                   default 60): how long a lazy restart of a
	                                   checkpoint still being pulled waits for one
	                                   region before it fences it (fill.h) */
	int remote_fill;                /* create: the pool may hold checkpoints being
	                                   pulled (POOL_F_REMOTE_FILL; ckpt-remote pull
	                                   --lazy) */
	uint64_t purge_min;             /* CKPT_PURGE_MIN: the shortest free run of
	                                   pages the heap gives back (heap/purge.c; a
	                                   size, default 256K; 0 or "off": never) */
	unsigned purge_delay_ms;        /* CKPT_PURGE_DELAY_MS (0 to 60000, default
	                                   250): how long a run stays free first */
};

/*
 * config_resolve -- defaults, the environment and cfg (may be NULL) into c,
 * checked. create: 1 for ckpt_create, 0 for ckpt_open.
 */
CKPT_HIDDEN int config_resolve(struct pool_config *c, const struct ckpt_config *cfg,
		int create);

/* config_from_pool -- on open: take from the pool's header what c leaves unset */
CKPT_HIDDEN void config_from_pool(struct pool_config *c, const struct pool_hdr *h);

/*
 * config_fork_mode -- settle the fork mode for the pool file fd with header
 * h (path for messages). auto becomes cow where the cow engine does all a
 * heap may ask (h of format 1.7 or later, so ckpt_persist works; not on
 * pmem, DAX or PMEM_IS_PMEM_FORCE=1, where the heap stays on the pmem),
 * else the best segment mode the filesystem allows (reflink, else copy).
 * A mode the file cannot do is ENOTSUP naming the mode and where it was
 * asked for; so is cow on a pool of format 1.0 (no POOL_F_IN_MEMORY_HEAPS),
 * and any mode but copy on a sealed pool (POOL_F_SEALED: auto settles to
 * copy; its heap is in memory, and a fork child's is the kernel's copy).
 */
CKPT_HIDDEN int config_fork_mode(struct pool_config *c, int fd, const char *path,
		const struct pool_hdr *h);

/*
 * config_parse_size -- "512M", "4G", "65536" (suffixes K, M, G, T, powers
 * of 1024, optionally followed by i and B) into bytes; EINVAL naming s.
 * For CKPT_HEAP_SIZE and ckpt-run --size.
 */
CKPT_HIDDEN int config_parse_size(const char *s, uint64_t *out);

/* config_parse_fork_mode -- "auto" ... "shared" as a mode, -1 if unknown */
CKPT_HIDDEN int config_parse_fork_mode(const char *s);

/* config_check_keep -- 0 if n is a valid keep_checkpoints, else EINVAL */
CKPT_HIDDEN int config_check_keep(unsigned n);

/* config_fork_mode_name -- "auto", "copy", "reflink", "cow", "shared" or "?" */
CKPT_HIDDEN const char *config_fork_mode_name(unsigned mode);

#define CONFIG_REMOTE_URL_SUFFIX ".remote.url"  /* the pool's own remote store */
#define CONFIG_REMOTE_URL_MAX 1024                /* its longest URL, NUL included */

/*
 * config_remote_url -- the remote store the pool at path pushes every
 * published checkpoint to: CKPT_REMOTE when set (the value "none": no push
 * from this process), else the pool's own setting (the first line of
 * POOL.remote.url, written by `ckpt-remote config`), else NULL. buf (len
 * bytes) receives the pool's setting.
 */
CKPT_HIDDEN const char *config_remote_url(const char *path, char *buf, size_t len);

/* config_pool_remote_url -- the pool's own setting alone (POOL.remote.url), or NULL */
CKPT_HIDDEN const char *config_pool_remote_url(const char *path, char *buf, size_t len);

/* config_remote_url_path -- POOL.remote.url for the pool at path into out; -1 if too long */
CKPT_HIDDEN int config_remote_url_path(const char *path, char *out, size_t len);

/*
 * config_remote_tool -- the ckpt-remote program a background push runs:
 * CKPT_REMOTE_TOOL, else the installed one
 */
CKPT_HIDDEN const char *config_remote_tool(void);

/*
 * config_remote_retries -- how often a remote store operation that failed
 * transiently is tried again (CKPT_REMOTE_RETRIES; default 5)
 */
CKPT_HIDDEN unsigned config_remote_retries(void);

/*
 * config_remote_lock_wait -- seconds a push or GC waits for the other
 * kind's lease before EBUSY (CKPT_REMOTE_LOCK_WAIT; default 60)
 */
CKPT_HIDDEN unsigned config_remote_lock_wait(void);

/*
 * config_remote_lease_ttl -- seconds a push or GC lease lives unrenewed
 * (CKPT_REMOTE_LEASE_TTL; default 60): how long a killed holder blocks
 */
CKPT_HIDDEN unsigned config_remote_lease_ttl(void);

#endif
