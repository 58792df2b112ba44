/*
 * lazy.h -- a restarted heap whose pages arrive on first access, each
 * chunk verified against its page sums before the program can see it
 * (cow mode; lazy.c's top comment gives the design).
 */
#ifndef CKPT_ENGINE_LAZY_H
#define CKPT_ENGINE_LAZY_H 1

#include <stdint.h>

#include "internal.h"

struct lazy;

/*
 * lazy_source -- where a lazy fill's bytes come from when they are not a
 * file's image (lazy_start): produce writes the image's bytes [off, off +
 * len) (len <= a chunk, off chunk-aligned) into buf, checked by whatever
 * means the caller has, and returns 0; or -1 with a message (ckpt_err_set,
 * naming what failed): the chunk is then fenced and the message printed.
 * It runs on the fill's thread (one call at a time; for first, on the
 * caller's, before the thread starts), and ctx must outlive
 * lazy_finish/lazy_stop.
 */
struct lazy_source {
	int (*produce)(void *ctx, uint64_t off, uint64_t len, void *buf);
	void *ctx;
	uint64_t first;         /* the chunks holding [0, first) are produced
	                           before lazy_start returns, and a failure there
	                           fails it (what the caller reads at once); with
	                           produce NULL (the image file is the source),
	                           those pages are checked against their sums
	                           before it returns, and a failure fails it */
};

/*
 * lazy_open -- a userfaultfd whose missing-page faults may be taken by the
 * kernel too (read(2) into the heap waits instead of failing), or -1 with
 * a message saying why not (privileges, kernel, CKPT_TEST_NO_UFFD): the
 * restart then verifies the whole image before it returns
 */
CKPT_HIDDEN int lazy_open(void);

/*
 * lazy_fetch -- "fetch before verify": an image whose bytes are still
 * arriving (a checkpoint being pulled from a remote store). Before a chunk
 * is verified, fetch(arg, off, len, wait, sums) must make the image's
 * bytes [off, off + len) present in the file and their page sums valid in
 * sums[0, len / 4096) (a pointer into lazy_start's sums): 1 done; 0 not
 * yet (only when wait is 0: the fill thread's own prefetch, which must not
 * block the faults); -1 they cannot come, with a message: the chunk is
 * fenced as a damaged one is. end(arg) (may be NULL) when the fill ends.
 */
struct lazy_fetch {
	int (*fetch)(void *arg, uint64_t off, uint64_t len, int wait, uint64_t *sums);
	void (*end)(void *arg);
	void *arg;
};

/*
 * lazy_start -- take over the heap's range [base, base + used rounded up
 * to a chunk), which must map fd's image at img_off privately (the caller
 * mapped it): the range is emptied, and a thread verifies each chunk
 * against sums (used / 4096 page sums, already checked against the
 * image's checksum; they must outlive lazy_finish/lazy_stop) and maps it,
 * the chunks the program touches first, then the others in order. uffd
 * (lazy_open's) is the lazy state's from here on, even on failure.
 * what names the image in messages ("pool P, checkpoint N"). fetch (may be
 * NULL; copied, its end called even on failure) is the fetch hook above.
 * With src (may be NULL; produce set: fd, img_off, sums and fetch unused)
 * the range must be the caller's empty private anonymous memory, and stays
 * its mapping: each chunk is what produce wrote, copied in (lazy.c's top
 * comment).
 * Where no thread can be started the chunks are verified and mapped here.
 * NULL with *done 1: already all mapped and verified (no thread); NULL with
 * *done 0: failed, the range is not a verified heap (a damaged chunk, or
 * an error), with a message.
 */
CKPT_HIDDEN struct lazy *lazy_start(int uffd, int fd, uint64_t img_off, void *base,
		uint64_t used, uint64_t *sums, const char *what, int *done,
		const struct lazy_fetch *fetch, const struct lazy_source *src);

/*
 * lazy_finish -- have the thread map every chunk left (prefetch on), wait
 * for it, then free l. Before a fork (a child would not inherit the
 * userfaultfd: its holes would read as zeros) and before a checkpoint.
 * Returns the number of chunks fenced (they raise SIGBUS when touched).
 */
CKPT_HIDDEN uint64_t lazy_finish(struct lazy *l);

/*
 * lazy_stop -- stop at once and free l; chunks not yet mapped are left as
 * empty anonymous memory, so the caller unmaps the heap right after (close)
 */
CKPT_HIDDEN void lazy_stop(struct lazy *l);

#endif
