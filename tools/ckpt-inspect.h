/*
 * ckpt-inspect.h -- what the files of ckpt-inspect share: the options main()
 * parsed, the exit codes, the output helpers (text and --json) and the
 * lookups every command makes on a pool opened with libckpt/inspect.c.
 *
 * ckpt-inspect.c holds main, info and these helpers; inspect-list.c the
 * segment tree of `list`; inspect-heap.c `heap`, `dump` and `verify`, the
 * commands that read inside a segment.
 */
#ifndef CKPT_TOOLS_INSPECT_H
#define CKPT_TOOLS_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "inspect.h"

#define EXIT_DAMAGED 1    /* damaged pool, failed check, failed lookup */
#define EXIT_USAGE 2

/* options, set once by main before the command runs */
extern int json;          /* --json: one JSON document on stdout */
extern int summary_only;  /* heap --summary */
extern int strict;        /* verify --strict */
extern int no_heaps;      /* verify --no-heaps */
extern int show_progress; /* stderr is a terminal and --no-progress not given */
extern const char *pool_path;

/* output */
const char *human_size(uint64_t v, char *buf, size_t len);
const char *iso_time(uint64_t ns, char *buf, size_t len);
void json_string(const char *s);
int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int bad_args(void);
void progress(void *arg, const char *what, uint64_t done, uint64_t total);
void progress_done(void);

/* lookups on the opened pool */
const char *api_state(const struct inspect *in, uint32_t i, int *busy);
uint64_t restarted_from(const struct cat_entry *e);
int entry_tree_up(const struct inspect *in, uint32_t i);
int resolve(struct inspect *in, const char *ref, uint32_t *seg);
const char *seg_desc(struct inspect *in, uint32_t seg, char *buf, size_t len);

/* the commands */
int cmd_list(struct inspect *in, int argc, char **argv);
int cmd_heap(struct inspect *in, int argc, char **argv);
int cmd_dump(struct inspect *in, int argc, char **argv);
int cmd_verify(struct inspect *in, int argc, char **argv);

#endif
