/*
 * crashcheck.h -- what the parts of crashcheck share: the options, the log
 * and its replay (crashlog.c), the working image of one crash state, the
 * rules checked on it (crashrules.c), and the counters. crashcheck.c holds
 * the generator and main; its top comment is the design.
 */
#ifndef CKPT_CRASHCHECK_H
#define CKPT_CRASHCHECK_H 1

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "reclog.h"

#define MAX_ACKS 4096
#define MAX_GROUPS 64
#define HASH_SLOTS ((size_t)1 << 21)

/* options -- the command line (crashcheck.c) */
struct options {
	const char *logdir;
	const char *out;
	const char *inspect;
	unsigned prefixes;      /* evenly spaced prefixes per point, 0: all */
	unsigned subsets;
	unsigned torn;
	uint64_t seed;
	unsigned jobs;
	uint64_t max_states;    /* distinct states to check at most, 0: no cap */
	unsigned timeout;
	int verbose;
	int expect_fail;        /* self-test: exit 0 iff failures were found */
	int dump;               /* print the log and stop */
	int posix_dir;          /* the file's name is durable only after its directory's fsync */
	int strict_keep;        /* no cow recycling allowance in rule 2 (its own test) */
	unsigned nprobe;        /* --probe: print these ranges of every state, no rules */
	uint64_t probe_off[8], probe_len[8];
};
extern struct options opt;

/* -- the log and its replay (crashlog.c) -------------------------------- */

/* rec -- one record of the log, mapped */
struct rec {
	const struct rec_hdr *h;
	const unsigned char *pay;
};
extern struct rec *recs;
extern size_t nrecs;
extern unsigned grain;          /* sector size of the model */
extern uint64_t max_size;       /* largest size the file ever had */

/* ack -- marker "ack ID GROUP GEN NODES" at log position pos */
struct ack { uint64_t id, gen, nodes; size_t pos; int group; };
extern struct ack acks[MAX_ACKS];
extern unsigned nacks;
extern char groups[MAX_GROUPS][32];
/* keepm -- marker "keep GROUP K" */
struct keepm { size_t pos; int group; unsigned k; };
extern struct keepm keeps[MAX_ACKS];
extern unsigned nkeeps;
/* beginm -- marker "begin GROUP GEN NODES": a checkpoint of GROUP was
 * called, of a heap at generation GEN */
struct beginm { size_t pos; int group; uint64_t gen, nodes; };
extern struct beginm begins[MAX_ACKS];
extern unsigned nbegins;
extern size_t created_pos;      /* position of "created", SIZE_MAX if none */

/* item -- a piece of a WRITE (or a SIZE) in flight */
struct item {
	uint64_t seq;
	uint64_t off, len;      /* SIZE: off is the size, len 0 */
	const unsigned char *data;
	int is_size;
};
extern unsigned char *D;        /* durable image, max_size bytes */
extern uint64_t D_size;
extern int name_durable;        /* the file's directory entry is durable */
extern struct item *pend;       /* in flight, in seq order */
extern size_t npend;

/* load_log -- map and index opt.logdir/rec.log, parse the markers (exits on error) */
void load_log(void);
/* dump_log -- print the log, one line per record or run of writes */
void dump_log(void);
/* apply_rec -- replay record i into D and the in-flight list */
void apply_rec(size_t i);
/* is_point -- record i is an ordering point (a crash point follows it) */
int is_point(size_t i);

/* persistm -- marker "persisting GEN" (pos, done 0) or "persisted GEN NODES"
 * (done 1): a ckpt_persist of the whole heap at generation GEN was called
 * or returned (cow mode, format 1.7) */
struct persistm { size_t pos; int done; uint64_t gen, nodes; };
extern struct persistm persists[MAX_ACKS];
extern unsigned npersists;

/* -- one crash state ---------------------------------------------------- */

extern unsigned char *W;        /* the state's bytes: D plus chosen items */
extern uint64_t W_size;

/* point_ctx -- the crash point a state belongs to */
struct point_ctx {
	size_t k;               /* crash point: after record k (0: log start) */
	size_t end;             /* the next ordering point (or nrecs) */
	const char *after;      /* name of the ordering point */
	uint64_t seq;
};

/* stats -- counters of the whole run, shared by the workers */
struct stats {
	uint64_t points, generated, distinct, checked, failures;
	uint64_t distinct_bytes;        /* distinct by contents alone */
	uint64_t refused, unpublished, dead_heap_warnings, opened;
	uint64_t max_inflight;
	uint64_t one_short;             /* states allowed by the recycling rule only */
	uint64_t unacked;               /* opened a published, unacknowledged checkpoint */
	uint64_t dead_persisted;        /* a dead cow heap checked against its last persist */
};
extern struct stats *cnt;

/* -- the rules (crashrules.c) ------------------------------------------- */

extern FILE *failf;             /* failures.txt, or NULL */

/* check_state -- write W to path and check the rules on it; failures are reported */
void check_state(const struct point_ctx *pc, const char *desc, const char *path);

#endif
