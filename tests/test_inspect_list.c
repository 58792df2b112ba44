/*
 * test_inspect_list -- `ckpt-inspect list` shows every segment with one of
 * the states API.md names (free, live, dead, checkpoint), busy entries as
 * live or dead by their owner with "busy" beside it, and the parent segment.
 *
 * The pool is real: a process makes a heap and a checkpoint, forks a child
 * that is killed inside its own checkpoint (CKPT_TEST_CRASH_AT, after the
 * segment was reserved: a busy entry of a dead owner), and exits without
 * closing (a dead heap). A busy entry of a live owner only exists while a
 * checkpoint, fork or restart is being written, too briefly to catch, so the
 * test writes one as checkpoint.c does when it reserves a segment: a free
 * entry turned busy, owned by this (running) test process, catalog
 * checksum re-sealed. The tool is then run as a user runs it and its output,
 * text and JSON, is checked with python3.
 *
 * test_list_lineage: checkpoints of heaps restarted (and closed) one after
 * the other show where each was restarted from (see there);
 * test_list_format_1_0: the same in a pool of format 1.0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "libckpt.h"
#include "testutil.h"
#include "catalog.h"
#include "layout.h"
#include "owner.h"

#define NSEG 10

static char inspect_bin[512];

/* make_pool -- the real pool described above; 0 or exit status of the maker */
static void
make_pool(const char *path)
{
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ckpt_config cfg = { .heap_size = 4u << 20, .max_segments = NSEG,
			.fork_mode = CKPT_FORK_COPY };
		ckpt_pool *p = ckpt_create(path, &cfg);
		if (!p)
			_exit(3);
		char *x = ckpt_alloc(p, 1000);
		if (!x)
			_exit(4);
		strcpy(x, "list test");
		ckpt_set_root(p, x);
		if (ckpt_checkpoint(p, "one", NULL) < 0)
			_exit(5);
		pid_t c = fork();
		if (c < 0)
			_exit(6);
		if (c == 0) {
			setenv("CKPT_TEST_CRASH_AT", "checkpoint:before-copy", 1);
			ckpt_checkpoint(p, "never", NULL);
			_exit(7);   /* not reached: the crash point kills us */
		}
		int st;
		if (waitpid(c, &st, 0) != c || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
			_exit(8);
		_exit(0);       /* no ckpt_close: our heap stays, dead */
	}
	assert_int_equal(tu_wait_exit(pid), 0);
}

/* make_live_busy -- turn free entry seg into a busy entry of this process */
static void
make_live_busy(const char *path, uint32_t seg)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	struct pool_hdr h;
	assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	uint64_t w;
	assert_int_equal(pread(fd, &w, 8, POOL_COMMIT_OFF), 8);
	uint64_t off = layout_cat_off(&h, w & 1);
	unsigned char *c = malloc(h.cat_size);
	assert_non_null(c);
	assert_int_equal(pread(fd, c, h.cat_size, (off_t)off), (ssize_t)h.cat_size);
	struct cat_hdr *ch = (struct cat_hdr *)c;
	struct cat_entry *e = (struct cat_entry *)(c + sizeof(*ch)) + seg;
	assert_int_equal(e->state, CAT_FREE);
	e->state = CAT_BUSY;
	assert_int_equal(owner_self(&e->owner), 0);
	e->time_ns = (uint64_t)time(NULL) * 1000000000ull;
	e->life = ch->next_life++;
	e->lineage = e->life;
	snprintf(e->label, sizeof(e->label), "in progress");
	ch->checksum = 0;
	ch->checksum = XXH64(c, h.cat_size, 0);
	assert_int_equal(pwrite(fd, c, h.cat_size, (off_t)off), (ssize_t)h.cat_size);
	free(c);
	close(fd);
}

/* run -- ckpt-inspect ARGS > out; its exit status */
static int
run(const char *out, const char *a, const char *path, const char *b)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "'%s' %s '%s' %s >'%s'", inspect_bin, a, path, b ? b : "", out);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static const char check_py[] =
	"import json, re, sys\n"
	"d = json.load(open(sys.argv[1]))\n"
	"text = open(sys.argv[2]).read().splitlines()\n"
	"me, nseg = int(sys.argv[3]), int(sys.argv[4])\n"
	"segs = d['segments']\n"
	"def need(ok, what):\n"
	"    if not ok:\n"
	"        print('FAIL:', what); print(json.dumps(segs, indent=1)); print('\\n'.join(text)); sys.exit(1)\n"
	"need(d['segments_total'] == nseg, 'segments_total')\n"
	"need(sorted(s['segment'] for s in segs) == list(range(nseg)), 'every segment once')\n"
	"states = {'free', 'live', 'dead', 'checkpoint'}\n"
	"need(all(s['state'] in states for s in segs), 'states are the API ones')\n"
	"need(all(isinstance(s['busy'], bool) for s in segs), 'busy is a boolean')\n"
	"busy = [s for s in segs if s['busy']]\n"
	"need(len(busy) == 2, 'two busy entries')\n"
	"mine = [s for s in busy if s['pid'] == me]\n"
	"need(len(mine) == 1 and mine[0]['state'] == 'live' and mine[0]['owner_alive'] is True, 'busy of a live owner shows live')\n"
	"dead = [s for s in busy if s['pid'] != me]\n"
	"need(len(dead) == 1 and dead[0]['state'] == 'dead' and dead[0]['owner_alive'] is False, 'busy of a dead owner shows dead')\n"
	"free = [s['segment'] for s in segs if s['state'] == 'free']\n"
	"need(len(free) == nseg - 5, 'free segments listed')\n"
	"need(all(s['pid'] is None and s['busy'] is False and s['checkpoint'] is None for s in segs if s['state'] == 'free'), 'free fields')\n"
	"need(sum(s['state'] == 'checkpoint' for s in segs) == 1, 'one checkpoint')\n"
	"need(sum(s['state'] == 'dead' for s in segs) == 3, 'two dead heaps and a dead busy entry')\n"
	"bys = {s['segment']: s for s in segs}\n"
	"# text: header, one row per used segment, then the free ones as ranges on the last row\n"
	"hdr = text[0].split()\n"
	"need(hdr[:5] == ['SEGMENT', 'STATE', 'PARENT', 'CKPT', 'FROM'] and hdr[-1] == 'NOTE', 'text header')\n"
	"runs = []\n"
	"for f in free:\n"
	"    if runs and runs[-1][1] == f - 1: runs[-1][1] = f\n"
	"    else: runs.append([f, f])\n"
	"need(len(text) == 1 + (nseg - len(free)) + 1, 'text row count')\n"
	"need(text[-1].split()[1] == 'free', 'the free segments are on the last row')\n"
	"seen_free = []\n"
	"for line in text[1:]:\n"
	"    tok = line.split()\n"
	"    st = [i for i, t in enumerate(tok) if t in states]\n"
	"    need(st, 'row without an API state: ' + line)\n"
	"    i = st[0]\n"
	"    need('busy' not in tok[:i + 1], 'busy in the state column: ' + line)\n"
	"    seg = tok[i - 1]\n"
	"    if tok[i] == 'free':\n"
	"        for rg in seg.split(','):\n"
	"            a, _, b = rg.partition('-')\n"
	"            seen_free.append([int(a), int(b or a)])\n"
	"        continue\n"
	"    s = bys[int(seg)]\n"
	"    need(tok[i] == s['state'], 'text state of %s' % seg)\n"
	"    want = '-' if s['tree_parent'] is None else str(s['tree_parent'])\n"
	"    need(tok[i + 1] == want, 'parent column of %s' % seg)\n"
	"    need(line.rstrip().endswith(')') == s['busy'] and (('busy (' in line) == s['busy']), 'busy note of %s' % seg)\n"
	"need(seen_free == runs, 'free runs %s, want %s' % (seen_free, runs))\n"
	"# the dead heap's fork child (the crashed checkpointer) hangs under it\n"
	"kid = [s for s in segs if s['state'] == 'dead' and not s['busy'] and s['parent'] is not None]\n"
	"need(len(kid) == 1 and kid[0]['tree_parent'] == kid[0]['parent'], 'fork child under its parent')\n"
	"print('list checks passed')\n";

static void
test_list_states(void **state)
{
	(void)state;
	const char *path = tu_path("list.pool");
	make_pool(path);
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(tu_catalog_count(&c, CAT_BUSY), 1);
	assert_int_equal(tu_catalog_count(&c, CAT_LIVE), 2);
	assert_int_equal(tu_catalog_count(&c, CAT_CKPT), 1);
	/* a free entry with a free neighbour on neither side if possible, so
	 * the text shows more than one run of free segments */
	uint32_t fr = NSEG;
	for (uint32_t i = 1; i + 1 < c.n && fr == NSEG; i++)
		if (c.e[i].state == CAT_FREE && c.e[i - 1].state == CAT_FREE &&
		    c.e[i + 1].state == CAT_FREE)
			fr = i;
	assert_true(fr < NSEG);
	tu_catalog_free(&c);
	make_live_busy(path, fr);

	const char *js = tu_path("list.json"), *tx = tu_path("list.txt");
	assert_int_equal(run(js, "list", path, "--json"), 0);
	assert_int_equal(run(tx, "list", path, NULL), 0);
	const char *py = tu_path("check.py");
	tu_write_file(py, check_py, strlen(check_py));
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "python3 '%s' '%s' '%s' %d %d", py, js, tx, (int)getpid(),
		NSEG);
	int st = system(cmd);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char show[2048];
		snprintf(show, sizeof(show), "cat '%s'", tx);
		if (system(show) < 0)
			perror("system");
		fail_msg("ckpt-inspect list output does not match the contract");
	}

	/* heap names the state the same way */
	assert_int_equal(run(js, "heap", path, "latest --summary --json"), 0);
	snprintf(cmd, sizeof(cmd), "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
		"sys.exit(0 if d[\"state\"] == \"checkpoint\" and d[\"busy\"] is False else 1)' '%s'",
		js);
	assert_int_equal(system(cmd), 0);
}

/*
 * The lineage of checkpoints whose heaps are gone (issue 16, item 10): runs
 * that each restart from a checkpoint, take one and close, as a service
 * restarted again and again does. Every checkpoint but the first names the
 * checkpoint its heap was restarted from (FROM, "restarted_from") and hangs
 * under it, a rollback to an older checkpoint included; the free segments,
 * segment 0 among them, share the last row.
 */

/* run_once -- a process: create (create) or open from, checkpoint label, close */
static void
run_once(const char *path, int create, ckpt_id from, const char *label)
{
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ckpt_config cfg = { .heap_size = 4u << 20, .max_segments = NSEG,
			.fork_mode = CKPT_FORK_COPY };
		ckpt_pool *p = create ? ckpt_create(path, &cfg) : ckpt_open(path, from, NULL);
		if (!p)
			_exit(3);
		if (!ckpt_root(p)) {
			char *x = ckpt_alloc(p, 64);
			if (!x)
				_exit(4);
			ckpt_set_root(p, x);
		}
		strcpy(ckpt_root(p), label);
		if (ckpt_checkpoint(p, label, NULL) < 0)
			_exit(5);
		_exit(ckpt_close(p) < 0 ? 6 : 0);
	}
	assert_int_equal(tu_wait_exit(pid), 0);
}

static const char lineage_py[] =
	"import json, sys\n"
	"d = json.load(open(sys.argv[1]))\n"
	"text = open(sys.argv[2]).read().splitlines()\n"
	"segs = d['segments']\n"
	"def need(ok, what):\n"
	"    if not ok:\n"
	"        print('FAIL:', what); print(json.dumps(segs, indent=1)); print(chr(10).join(text)); sys.exit(1)\n"
	"ck = {s['checkpoint']: s for s in segs if s['state'] == 'checkpoint'}\n"
	"need(sorted(ck) == [1, 2, 3, 4], 'four checkpoints')\n"
	"need(all(s['state'] in ('checkpoint', 'free') for s in segs), 'only checkpoints and free segments')\n"
	"# run 1 created the heap; runs 2 and 3 restarted from the latest; run 4 rolled back to 1\n"
	"want = {1: None, 2: 1, 3: 2, 4: 1}\n"
	"for i, f in want.items():\n"
	"    need(ck[i]['restarted_from'] == f, 'restarted_from of checkpoint %d' % i)\n"
	"    up = None if f is None else ck[f]['segment']\n"
	"    need(ck[i]['tree_parent'] == up, 'tree parent of checkpoint %d' % i)\n"
	"    need(ck[i]['depth'] == {1: 0, 2: 1, 3: 2, 4: 1}[i], 'depth of checkpoint %d' % i)\n"
	"need(len({s['lineage'] for s in ck.values()}) == 1, 'one lineage')\n"
	"need(all(s['lineage'] is None for s in segs if s['state'] == 'free'), 'free: no lineage')\n"
	"# text: FROM names the checkpoint restarted from; the tree nests them\n"
	"hdr = text[0].split()\n"
	"need(hdr[:5] == ['SEGMENT', 'STATE', 'PARENT', 'CKPT', 'FROM'], 'text header')\n"
	"rows = [l.split() for l in text[1:]]\n"
	"free = [s['segment'] for s in segs if s['state'] == 'free']\n"
	"need(0 in free, 'segment 0 is free (the first run closed)')\n"
	"need(len(rows) == 4 + 1 and rows[-1][1] == 'free', 'one free row, last')\n"
	"got = []\n"
	"for rg in rows[-1][0].split(','):\n"
	"    a, _, b = rg.partition('-')\n"
	"    got += range(int(a), int(b or a) + 1)\n"
	"need(got == free, 'the free row lists every free segment in order')\n"
	"for r in rows[:-1]:\n"
	"    i = [k for k, t in enumerate(r) if t == 'checkpoint'][0]\n"
	"    c = ck[int(r[i + 2])]\n"
	"    need(r[i + 3] == ('-' if c['restarted_from'] is None else str(c['restarted_from'])), 'FROM of ' + str(r))\n"
	"    need(r[i + 1] == ('-' if c['tree_parent'] is None else str(c['tree_parent'])), 'PARENT of ' + str(r))\n"
	"need(any(l.startswith(chr(0x2502) + '  ' + chr(0x2514) + chr(0x2500)) for l in text[1:]), 'nested tree drawn')\n"
	"print('lineage checks passed')\n"
;

static void
test_list_lineage(void **state)
{
	(void)state;
	const char *path = tu_path("lineage.pool");
	run_once(path, 1, 0, "run 1");
	run_once(path, 0, CKPT_LATEST, "run 2");
	run_once(path, 0, CKPT_LATEST, "run 3");
	run_once(path, 0, 1, "rollback");
	const char *js = tu_path("lineage.json"), *tx = tu_path("lineage.txt");
	assert_int_equal(run(js, "list", path, "--json"), 0);
	assert_int_equal(run(tx, "list", path, NULL), 0);
	const char *py = tu_path("lineage.py");
	tu_write_file(py, lineage_py, strlen(lineage_py));
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "python3 '%s' '%s' '%s'", py, js, tx);
	int st = system(cmd);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("ckpt-inspect list does not show the lineage");
	tu_inspect_verify(path);
}

/*
 * A format 1.0 pool (checkpoints without restarted_from, header minor 0),
 * made from a 1.1 one by clearing what 1.1 adds: it opens and lists, its
 * old checkpoints' origin is unknown (null, no parent), and checkpoints a
 * 1.1 libckpt publishes in it record theirs.
 */
static void
downgrade_to_1_0(const char *path)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	struct pool_hdr h;
	assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	h.minor = 0;
	layout_seal(&h);
	assert_int_equal(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	uint64_t w;
	assert_int_equal(pread(fd, &w, 8, POOL_COMMIT_OFF), 8);
	uint64_t off = layout_cat_off(&h, w & 1);
	unsigned char *c = malloc(h.cat_size);
	assert_non_null(c);
	assert_int_equal(pread(fd, c, h.cat_size, (off_t)off), (ssize_t)h.cat_size);
	struct cat_hdr *ch = (struct cat_hdr *)c;
	struct cat_entry *e = (struct cat_entry *)(c + sizeof(*ch));
	for (uint32_t i = 0; i < h.max_segments; i++) {
		e[i].flags &= ~CAT_F_ORIGIN;
		e[i].restarted_from = 0;
	}
	ch->checksum = 0;
	ch->checksum = XXH64(c, h.cat_size, 0);
	assert_int_equal(pwrite(fd, c, h.cat_size, (off_t)off), (ssize_t)h.cat_size);
	free(c);
	close(fd);
}

static const char format10_py[] =
	"import json, sys\n"
	"d = json.load(open(sys.argv[1]))\n"
	"ck = {s['checkpoint']: s for s in d['segments'] if s['state'] == 'checkpoint'}\n"
	"ok = sorted(ck) == [1, 2, 3]\n"
	"ok = ok and ck[2]['restarted_from'] is None and ck[2]['tree_parent'] is None\n"
	"ok = ok and ck[3]['restarted_from'] == 2 and ck[3]['tree_parent'] == ck[2]['segment']\n"
	"sys.exit(0 if ok else 1)\n";

static void
test_list_format_1_0(void **state)
{
	(void)state;
	const char *path = tu_path("format10.pool");
	run_once(path, 1, 0, "run 1");
	run_once(path, 0, CKPT_LATEST, "run 2");
	downgrade_to_1_0(path);
	const char *js = tu_path("format10.json");
	assert_int_equal(run(js, "info", path, "--json"), 0);
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
		"sys.exit(0 if d[\"format_version\"] == \"1.0\" else 1)' '%s'", js);
	assert_int_equal(system(cmd), 0);
	tu_inspect_verify(path);
	run_once(path, 0, CKPT_LATEST, "run 3");   /* a 1.1 libckpt in a 1.0 pool */
	assert_int_equal(run(js, "list", path, "--json"), 0);
	const char *py = tu_path("format10.py");
	tu_write_file(py, format10_py, strlen(format10_py));
	snprintf(cmd, sizeof(cmd), "python3 '%s' '%s'", py, js);
	int st = system(cmd);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(cmd, sizeof(cmd), "cat '%s'", js);
		if (system(cmd) < 0)
			perror("system");
		fail_msg("list of a 1.0 pool: origins wrong");
	}
	tu_inspect_verify(path);
}

int
main(void)
{
	const char *bindir = getenv("CKPT_TEST_BINDIR");
	snprintf(inspect_bin, sizeof(inspect_bin), "%s/tools/ckpt-inspect", bindir ? bindir : ".");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_states),
		cmocka_unit_test(test_list_lineage),
		cmocka_unit_test(test_list_format_1_0),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
