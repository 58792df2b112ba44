/*
 * testhook.h -- named points where the test suite can stop the process
 * (kill -9 semantics) to prove crash atomicity, and test-only switches.
 *
 * Set CKPT_TEST_CRASH_AT to a point name (e.g. "checkpoint:before-publish");
 * the process then sends itself SIGKILL when it reaches that point. Unset,
 * a point costs a getenv and a branch. The points:
 *   checkpoint:before-reserve, checkpoint:before-copy, checkpoint:mid-copy,
 *   checkpoint:before-persist, checkpoint:after-persist,
 *   checkpoint:before-publish, checkpoint:after-publish   (checkpoint.c)
 *   checkpoint:after-log  a cow checkpoint wrote its page log (format 1.9),
 *                        before its page sums and fdatasync (engine/image.c);
 *                        checkpoint:mid-copy is also passed inside the log's
 *                        write, its pages written, its header not yet
 *                        (pagelog.c)
 *   fold:before-sync     fold_now folded a logged checkpoint's log into its
 *                        segment, before its fdatasync and the commit that
 *                        clears CAT_F_LOGGED                 (engine/fold.c)
 *   fork:before-copy, fork:mid-copy, fork:after-copy  (the parent's prepare,
 *                         filling the child's segment), fork:child-before-claim,
 *   fork:child-ready                                   (the child)  (fork.c)
 *   restart:mid-copy     ckpt_open(path, id) copying the checkpoint into the
 *                        process's new live segment           (restart.c)
 *   catalog:repair-mid   between the two rewrites of a damaged catalog
 *                        copy's repair                           (catalog.c)
 *   create:mid-write     ckpt_create between the catalog and the header of
 *                        the still nameless file                    (pool.c)
 *   create:before-publish  ckpt_create, the pool complete, not yet linked
 *                        to its path                                (pool.c)
 *   create:after-publish   linked, the hidden name (if any) and the
 *                        directory not yet synced                (newfile.c)
 *   catalog:after-grow   a commit synced the file's size (it extended the
 *                        file, or names a segment past the durable size:
 *                        a young heap's unsynced extension), the catalog
 *                        not yet published                      (filesize.c)
 *   catalog:before-trim  a commit published a catalog that needs less, the
 *                        file not yet cut back                  (filesize.c)
 *   attach:young-claimed, attach:young-formatted  a new process's young heap:
 *                        its segment held by the lease, then formatted;
 *   attach:before-publish, attach:after-publish   its publication, inside
 *                        the transaction and after the commit   (attach.c)
 * A "mid-copy" point is passed to segcopy, which fires it after the first
 * chunk of data when more follows, with small chunks while it is armed.
 *
 * Switches (environment, "1" turns one on):
 *   CKPT_TEST_NO_OFFLOAD  segcopy uses neither FICLONERANGE nor
 *                         copy_file_range, as on a filesystem and kernel
 *                         without them (segcopy.c)
 *   CKPT_TEST_NO_UFFD     dirty tracking does not try userfaultfd, as under
 *                         a kernel or seccomp filter that refuses it: a
 *                         MAP_PRIVATE file range gets private-scan, any
 *                         other every-page (engine/dirty.c); a restart is
 *                         not lazy (engine/lazy.c)
 *   CKPT_TEST_MANIFEST_V1  manifests are read as a libckpt that knows only
 *                         version 1 (plaintext checkpoints) reads them: a
 *                         sealed checkpoint's (version 2) is refused with
 *                         ENOTSUP (remote/manifest.c)
 *   CKPT_TEST_LAZY_NO_THREAD  a lazy restart starts no thread: it verifies
 *                         and maps every chunk before it returns, as where
 *                         no thread can be made (engine/lazy.c)
 *   CKPT_TEST_LAZY_NO_PREFETCH  a lazy restart's thread fills only the
 *                         chunks that are touched (and all of them when a
 *                         fork or checkpoint asks it to finish), so tests
 *                         know a first access meets a hole (engine/lazy.c)
 *   CKPT_TEST_FILL_STALL=N  the filler of a lazy pull fetches regions in
 *                         address order only up to region N, then only those
 *                         a restarting process asks for, so a test knows
 *                         which regions are missing (remote/filler.c)
 *   CKPT_TEST_FORMAT_1_1  ckpt_create makes a format 1.1 pool (no page-sum
 *                         area, full size), as an older libckpt did (pool.c)
 *   CKPT_TEST_FORMAT_1_3  ckpt_create makes a format 1.3 pool (no young
 *                         heaps), as an older libckpt did (pool.c)
 *   CKPT_TEST_FORMAT_1_7  ckpt_create makes a pool of minor 7 (no durable
 *                         size in the catalog, no headroom), as a libckpt
 *                         of format 1.7 did (pool.c)
 *   CKPT_TEST_FORMAT_1_8  ckpt_create makes a pool of minor 8 (no page-log
 *                         slots), as a libckpt of format 1.8 did (pool.c)
 *   CKPT_TEST_NO_LOG      a cow heap never starts logging: it re-bases at
 *                         every checkpoint, as in a pool without page-log
 *                         slots (engine/image.c)
 *   CKPT_TEST_NO_GROW     a logging cow heap grown past its write-protect
 *                         tracking cannot grow the tracking, as when
 *                         registering the range fails (engine/image.c)
 *   CKPT_TEST_SKIP_STEP0  ckpt_checkpoint skips step 0 (a cow checkpoint
 *                         beside other threads), as when the heap grows
 *                         past its tracking after it: the build meets the
 *                         growth itself (checkpoint.c, engine/image.c)
 *   CKPT_TEST_NO_FOLD     a logged checkpoint's fold thread is not started:
 *                         the checkpoint stays logged (CAT_F_LOGGED) until a
 *                         reader folds it, so tests can read through a log
 *                         and kill a process with one (engine/fold.c)
 *   CKPT_TEST_NO_TMPFILE  ckpt_create builds the pool under a hidden name
 *                         and links it, as where O_TMPFILE is refused
 *                         (newfile.c)
 *   CKPT_TEST_SKIP_FLUSH  ckpt_checkpoint skips step 3's fdatasync, so a
 *                         checkpoint is published before its copy is durable:
 *                         the broken ordering tests/crash must catch
 *                         (checkpoint.c)
 *   CKPT_TEST_SKIP_SIZE_SYNC  a catalog commit that extends the file keeps
 *                         no headroom and records its size as durable
 *                         without the fdatasync: the broken ordering
 *                         tests/crash must catch (filesize.c)
 *   CKPT_TEST_STEP_TIMES  ckpt_checkpoint writes one line to stderr per
 *                         step as it ends, "ckpt-step NAME MICROSECONDS"
 *                         (the time since the previous step ended), so a
 *                         benchmark can tell where the time goes
 *                         (checkpoint.c, engine/image.c; the steps are
 *                         listed in docs/BENCHMARKS.md)
 */
#ifndef CKPT_TESTHOOK_H
#define CKPT_TESTHOOK_H 1

#include "internal.h"

/* test_point -- SIGKILL the process if CKPT_TEST_CRASH_AT names this point */
CKPT_HIDDEN void test_point(const char *name);

/* test_armed -- 1 if CKPT_TEST_CRASH_AT names this point */
CKPT_HIDDEN int test_armed(const char *name);

/*
 * test_fork_snapshot -- on 1 (fork prepare): copy CKPT_TEST_CRASH_AT, which
 * test_armed reads instead of the environment until called with 0 (after
 * the fork, parent and child): the child's environment may be in a heap
 * not mapped yet
 */
CKPT_HIDDEN void test_fork_snapshot(int on);

/* test_flag -- 1 if the test switch env (see above) is set to "1" */
CKPT_HIDDEN int test_flag(const char *env);

/*
 * test_step -- with CKPT_TEST_STEP_TIMES set to "1", write "ckpt-step NAME
 * US" to stderr: the microseconds since the calling thread's previous step
 * (NULL: start counting, write nothing)
 */
CKPT_HIDDEN void test_step(const char *name);

/* test_number -- the test setting env as a decimal number, 0 when unset */
CKPT_HIDDEN unsigned long test_number(const char *env);

#endif
