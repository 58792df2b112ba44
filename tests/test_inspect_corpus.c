/*
 * test_inspect_corpus -- damaged pools never crash or hang ckpt-inspect.
 *
 * A real pool is made with the library (checkpoints, a dead heap, slabs with
 * free lists, large blocks); then, one at a time, the test damages a copy of
 * it (bit flips in the header, commit word and catalog, allocator metadata in
 * a checkpoint whose checksum is re-sealed so only the heap walker can see
 * the damage, loops in free and slab lists, huge counts and offsets,
 * truncations) and checks that
 *   - inspect_verify_path (library side, run in a child with a time limit)
 *     finishes and reports an error where there is damage, and nothing
 *     where there is none (the non-current catalog copy);
 *   - the ckpt-inspect binary (info, list, verify, heap, dump) never dies of
 *     a signal, never hangs (30 s limit), always exits 0 or 1 (never 2: the
 *     command lines are valid); verify exits 1 on damage; damage in the
 *     header or commit word (and truncation), which every command reads,
 *     makes every command exit 1 with a message on stderr naming the
 *     problem; damage in the current catalog copy makes the tools fall back
 *     to the intact backup copy (issue 16, item 4): verify exits 1 naming
 *     the damage, info and list exit 0 with a warning on stderr; damage
 *     past them leaves info and list at 0; heap exits 1 on a damaged heap.
 * Every damage is undone before the next, and no binary is committed: the
 * corpus is generated here.
 *
 * Over 800 lines: each damage is a few lines, and all of them share the
 * pool they damage and the harness that runs every command on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "libckpt.h"
#include "testutil.h"
#include "catalog.h"
#include "inspect.h"
#include "layout.h"

static char pool[512], work[512], inspect_bin[512];
static struct pool_hdr H;
static uint32_t ck_seg, ck_seg_old, dead_seg;   /* newest checkpoint, oldest, a dead heap */
static uint64_t ck_id, ck_id_old, ck_used;
static int fd = -1;                             /* work file */

/* -- pokes that remember what they overwrote ------------------------------- */

struct saved {
	uint64_t off;
	uint32_t len;
	unsigned char old[64];
};
static struct saved saves[64];
static unsigned nsaves;

static void
rd(uint64_t off, void *buf, size_t len)
{
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
}

static void
poke(uint64_t off, const void *buf, size_t len)
{
	assert_true(len <= 64 && nsaves < 64);
	struct saved *s = &saves[nsaves++];
	s->off = off;
	s->len = (uint32_t)len;
	rd(off, s->old, len);
	assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
}

static void
poke64(uint64_t off, uint64_t v)
{
	poke(off, &v, 8);
}

static void
poke32(uint64_t off, uint32_t v)
{
	poke(off, &v, 4);
}

static uint32_t
peek32(uint64_t off)
{
	uint32_t v;
	rd(off, &v, 4);
	return v;
}

static uint64_t
peek64(uint64_t off)
{
	uint64_t v;
	rd(off, &v, 8);
	return v;
}

static void
restore(void)
{
	while (nsaves) {
		struct saved *s = &saves[--nsaves];
		assert_int_equal(pwrite(fd, s->old, s->len, (off_t)s->off), (ssize_t)s->len);
	}
}

static uint64_t
commit_word(void)
{
	return peek64(POOL_COMMIT_OFF);
}

static uint64_t
cur_cat(void)
{
	return layout_cat_off(&H, commit_word() & 1);
}

static uint64_t
entry_off(uint32_t i)
{
	return cur_cat() + sizeof(struct cat_hdr) + (uint64_t)i * sizeof(struct cat_entry);
}

static void
reseal_header(void)
{
	struct pool_hdr h;
	rd(0, &h, sizeof(h));
	layout_seal(&h);
	poke64(offsetof(struct pool_hdr, checksum), h.checksum);
}

static void
reseal_catalog(void)
{
	uint64_t off = cur_cat();
	unsigned char *c = malloc(H.cat_size);
	assert_non_null(c);
	rd(off, c, H.cat_size);
	struct cat_hdr *h = (struct cat_hdr *)c;
	h->checksum = 0;
	uint64_t sum = XXH64(c, H.cat_size, 0);
	free(c);
	poke64(off + offsetof(struct cat_hdr, checksum), sum);
}

/* reseal_ckpt -- make checkpoint seg's checksum match its (damaged) bytes */
static void
reseal_ckpt(uint32_t seg)
{
	uint64_t used = peek64(entry_off(seg) + offsetof(struct cat_entry, used));
	unsigned char *b = malloc(used ? used : 1);
	assert_non_null(b);
	rd(layout_seg_off(&H, seg), b, used);
	uint64_t sum = XXH3_64bits(b, used);
	free(b);
	poke64(entry_off(seg) + offsetof(struct cat_entry, checksum), sum);
	reseal_catalog();
}

/* -- running the checks ---------------------------------------------------- */

struct collect {
	int wfd;
};

static void
on_finding(void *arg, const struct inspect_finding *f)
{
	struct collect *c = arg;
	if (f->severity != INSPECT_ERROR)
		return;
	char line[700];
	int n = snprintf(line, sizeof(line), "%s: %s\n", f->where, f->message);
	if (write(c->wfd, line, (size_t)n) < 0)
		_exit(5);
}

/* verify_lib -- inspect_verify_path on path in a child (30 s limit); errors found,
 * first error lines into msgs */
static int
verify_lib(const char *path, unsigned flags, char *msgs, size_t mlen)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		alarm(30);
		struct collect c = { p[1] };
		int errs = inspect_verify_path(path, flags, on_finding, &c, NULL);
		_exit(errs < 0 ? 100 : errs > 99 ? 99 : errs);
	}
	close(p[1]);
	size_t got = 0;
	ssize_t n;
	char sink[4096];
	while ((n = read(p[0], got + 1 < mlen ? msgs + got : sink,
			got + 1 < mlen ? mlen - 1 - got : sizeof(sink))) > 0)
		if (got + 1 < mlen)
			got += (size_t)n;
	msgs[got] = '\0';
	close(p[0]);
	int st = tu_wait_exit(pid);
	if (st >= 128) {
		fail_msg("inspect_verify_path died of signal %d on %s", st - 128, path);
	}
	assert_true(st != 100);
	return st;
}

/* cli -- run ckpt-inspect ARGS on path (30 s limit, then SIGALRM): exit
 * status; fails on a signal (a crash or a hang). Its stdout and stderr are
 * left in cli_out and cli_err (NUL-terminated, cut at 4 KiB). */
static char cli_out[4096], cli_err[4096];
static char outp[512], errp[512];     /* where they are written (set up once) */
static const char *cli_cmd;

static void
slurp(const char *path, char *buf, size_t len)
{
	int f = open(path, O_RDONLY);
	assert_true(f >= 0);
	ssize_t n = read(f, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(f);
}

static int
cli(const char *path, const char *a, const char *b, const char *c, const char *d)
{
	static char cmd[700];
	snprintf(cmd, sizeof(cmd), "ckpt-inspect %s %s %s %s %s", a, path, b ? b : "",
		c ? c : "", d ? d : "");
	cli_cmd = cmd;
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0)
			_exit(126);
		dup2(o, 1);
		dup2(e, 2);
		alarm(30);
		execl(inspect_bin, "ckpt-inspect", a, path, b, c, d, (char *)NULL);
		_exit(127);
	}
	int st = tu_wait_exit(pid);
	if (st == 128 + SIGALRM)
		fail_msg("%s hung: killed after 30 s", cmd);
	if (st >= 128)
		fail_msg("%s died of signal %d", cmd, st - 128);
	assert_int_not_equal(st, 127);
	assert_int_not_equal(st, 126);
	slurp(outp, cli_out, sizeof(cli_out));
	slurp(errp, cli_err, sizeof(cli_err));
	/* every command line here is valid: 2 (bad usage) is never right */
	if (st != 0 && st != 1)
		fail_msg("%s exited %d (0 or 1 expected); stderr: %s", cmd, st, cli_err);
	return st;
}

/*
 * What a damaged pool must give:
 *   CLEAN        nothing is wrong: every command exits 0
 *   META         the header or commit word is damaged, or both catalog copies
 *                (or the file truncated): every command reads them, so every
 *                command exits 1 with a message on stderr naming the problem
 *   FALLBACK     the current catalog copy is damaged, the backup copy is
 *                intact: verify exits 1 naming the damage; info and list
 *                read the backup copy, exit 0 and warn on stderr
 *   CATDAMAGE    FALLBACK or META (a flipped bit in the commit word: whether
 *                a copy matches the generation it names depends on the bit)
 *   DAMAGE       the header and catalog are sound (info and list exit 0),
 *                what verify checks beyond them is not: verify exits 1
 *   HEAP_DAMAGE  as DAMAGE, and heap of the damaged checkpoint exits 1
 *   ANY          no crash, no hang, exit 0 or 1
 */
enum expect { CLEAN, META, FALLBACK, CATDAMAGE, DAMAGE, HEAP_DAMAGE, ANY };

/* meta_failed -- the last cli() exited 1 with a message naming substr */
static void
meta_failed(const char *name, int st, const char *substr)
{
	if (st != 1)
		fail_msg("%s: %s exited %d on a damaged header/catalog", name, cli_cmd, st);
	if (strncmp(cli_err, "ckpt-inspect: ", 14) != 0 || strlen(cli_err) < 20)
		fail_msg("%s: %s gave no error message on stderr: '%s'", name, cli_cmd, cli_err);
	if (substr && !strstr(cli_err, substr))
		fail_msg("%s: %s: the message does not mention '%s': %s", name, cli_cmd, substr,
			cli_err);
}

/* fell_back -- the last cli() exited 0 and warned that it shows the backup catalog copy */
static void
fell_back(const char *name, int st)
{
	if (st != 0)
		fail_msg("%s: %s exited %d with an intact backup catalog copy: %s", name,
			cli_cmd, st, cli_err);
	if (!strstr(cli_err, "ckpt-inspect: warning: ") || !strstr(cli_err, "damaged"))
		fail_msg("%s: %s did not warn that it reads the backup catalog copy: '%s'",
			name, cli_cmd, cli_err);
}

/* meta_or_fell_back -- META or FALLBACK, by the exit status */
static void
meta_or_fell_back(const char *name, int st)
{
	if (st == 0)
		fell_back(name, st);
	else
		meta_failed(name, st, NULL);
}

/* check -- the current state of the work file (or path) against what is expected */
static void
check_path(const char *name, const char *path, enum expect ex, const char *substr)
{
	char msgs[4096];
	int errs = verify_lib(path, 0, msgs, sizeof(msgs));
	if (ex == CLEAN && errs != 0)
		fail_msg("%s: verify found %d errors in a sound pool:\n%s", name, errs, msgs);
	if (ex == META || ex == FALLBACK || ex == CATDAMAGE || ex == DAMAGE ||
	    ex == HEAP_DAMAGE) {
		if (errs == 0)
			fail_msg("%s: verify found no error", name);
		if (substr && !strstr(msgs, substr))
			fail_msg("%s: no error mentions '%s':\n%s", name, substr, msgs);
	}
	char id[24], id_old[24], segref[24], base[32];
	snprintf(id, sizeof(id), "%llu", (unsigned long long)ck_id);
	snprintf(id_old, sizeof(id_old), "%llu", (unsigned long long)ck_id_old);
	snprintf(segref, sizeof(segref), "seg:%u", dead_seg);
	snprintf(base, sizeof(base), "0x%llx", (unsigned long long)H.base);
	int damaged = ex == META || ex == FALLBACK || ex == CATDAMAGE || ex == DAMAGE ||
		ex == HEAP_DAMAGE;

	int v = cli(path, "verify", NULL, NULL, NULL);
	if (ex != ANY && v != damaged)
		fail_msg("%s: verify exited %d", name, v);
	if (damaged && (!strstr(cli_out, "DAMAGED") || (substr && !strstr(cli_out, substr))))
		fail_msg("%s: verify's report does not say DAMAGED%s%s:\n%s", name,
			substr ? " and name " : "", substr ? substr : "", cli_out);
	v = cli(path, "verify", "--json", "--strict", NULL);
	if (ex != ANY && v != damaged)
		fail_msg("%s: verify --json --strict exited %d", name, v);

	/* info and list read the header and the current catalog copy, no more */
	int i = cli(path, "info", "--json", NULL, NULL);
	if (ex == META)
		meta_failed(name, i, substr);
	else if (ex == FALLBACK)
		fell_back(name, i);
	else if (ex == CATDAMAGE)
		meta_or_fell_back(name, i);
	else if (ex != ANY && i != 0)
		fail_msg("%s: info exited %d with a sound header and catalog: %s", name, i,
			cli_err);
	int l = cli(path, "list", NULL, NULL, NULL);
	if (ex == META)
		meta_failed(name, l, substr);
	else if (ex == FALLBACK)
		fell_back(name, l);
	else if (ex == CATDAMAGE)
		meta_or_fell_back(name, l);
	else if (ex != ANY && l != 0)
		fail_msg("%s: list exited %d with a sound header and catalog: %s", name, l,
			cli_err);

	/* heap and dump read them too, then the segment */
	int h = cli(path, "heap", id, NULL, NULL);
	if (ex == META)
		meta_failed(name, h, substr);
	if (ex == HEAP_DAMAGE && h != 1)
		fail_msg("%s: heap %s exited %d on a damaged heap", name, id, h);
	if (ex == CLEAN)
		assert_int_equal(h, 0);
	h = cli(path, "heap", id_old, "--json", NULL);
	if (ex == META)
		meta_failed(name, h, substr);
	if (ex == CLEAN)
		assert_int_equal(h, 0);
	h = cli(path, "heap", segref, "--summary", NULL);
	if (ex == META)
		meta_failed(name, h, substr);
	if (ex == CLEAN)
		assert_int_equal(h, 0);
	int d = cli(path, "dump", "latest", base, "4096");
	if (ex == META)
		meta_failed(name, d, substr);
	if (ex == CLEAN)
		assert_int_equal(d, 0);
}

static void
check(const char *name, enum expect ex, const char *substr)
{
	check_path(name, work, ex, substr);
	restore();
}

/* -- the pool --------------------------------------------------------------- */

static int
setup(void **state)
{
	(void)state;
	const char *bindir = getenv("CKPT_TEST_BINDIR");
	snprintf(inspect_bin, sizeof(inspect_bin), "%s/tools/ckpt-inspect", bindir ? bindir : ".");
	snprintf(pool, sizeof(pool), "%s", tu_path("pool"));
	snprintf(work, sizeof(work), "%s", tu_path("work"));
	snprintf(outp, sizeof(outp), "%s", tu_path("cli.out"));
	snprintf(errp, sizeof(errp), "%s", tu_path("cli.err"));
	pid_t pid = tu_fork();
	if (pid == 0) {
		struct ckpt_config cfg = { .heap_size = 4u << 20, .max_segments = 6,
			.fork_mode = CKPT_FORK_COPY };
		ckpt_pool *p = ckpt_create(pool, &cfg);
		if (!p)
			_exit(3);
		void *keep[300];
		for (int i = 0; i < 300; i++) {
			keep[i] = ckpt_alloc(p, (size_t)(i % 7 == 6 ? 70000 : 16 + (i % 6) * 40));
			if (!keep[i])
				_exit(4);
			memset(keep[i], i, 16);
		}
		for (int i = 0; i < 300; i += 2)
			ckpt_free(p, keep[i]);
		ckpt_set_root(p, keep[1]);
		if (ckpt_checkpoint(p, "old", NULL) < 0)
			_exit(5);
		for (int i = 0; i < 300; i += 4)
			ckpt_free(p, keep[i + 1]);
		if (ckpt_checkpoint(p, "new", NULL) < 0)
			_exit(6);
		_exit(0);   /* no close: a dead heap stays */
	}
	assert_int_equal(tu_wait_exit(pid), 0);
	tu_copy_file(pool, work);
	fd = open(work, O_RDWR);
	assert_true(fd >= 0);
	struct tu_catalog c;
	tu_catalog_read(work, &c);
	H = c.hdr;
	ck_id = 0;
	for (uint32_t i = 0; i < c.n; i++) {
		if (c.e[i].state == CAT_CKPT && c.e[i].ckpt_id > ck_id) {
			ck_id = c.e[i].ckpt_id;
			ck_seg = i;
			ck_used = c.e[i].used;
		}
		if (c.e[i].state == CAT_LIVE)
			dead_seg = i;
	}
	ck_id_old = ck_id;
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_CKPT && c.e[i].ckpt_id < ck_id_old) {
			ck_id_old = c.e[i].ckpt_id;
			ck_seg_old = i;
		}
	assert_true(ck_id_old < ck_id);
	tu_catalog_free(&c);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (fd >= 0)
		close(fd);
	return 0;
}

static void
test_sound(void **state)
{
	(void)state;
	check("sound pool", CLEAN, NULL);
}

/* -- header, commit word, truncation ---------------------------------------- */

static void
test_header(void **state)
{
	(void)state;
	poke(3, "X", 1);
	check("magic", META, "magic");
	poke32(offsetof(struct pool_hdr, max_segments), 7);
	check("unsealed field", META, "checksum");
	poke(200, "\x01", 1);
	check("reserved byte", META, "checksum");

	struct { const char *name; size_t off; uint64_t v; int w; const char *msg; } cases[] = {
		{ "max_segments huge", offsetof(struct pool_hdr, max_segments), 0xffffffffu, 4, NULL },
		{ "max_segments 0", offsetof(struct pool_hdr, max_segments), 0, 4, NULL },
		{ "heap_size huge", offsetof(struct pool_hdr, heap_size), 1ull << 62, 8, NULL },
		{ "seg_size off", offsetof(struct pool_hdr, seg_size), 6u << 20, 8, "geometry" },
		{ "data_off huge", offsetof(struct pool_hdr, data_off), ~0ull, 8, NULL },
		{ "cat_size 0", offsetof(struct pool_hdr, cat_size), 0, 8, NULL },
		{ "file_size huge", offsetof(struct pool_hdr, file_size), 1ull << 62, 8, NULL },
		{ "base unaligned", offsetof(struct pool_hdr, base), 0x300000000123ull, 8, "base" },
		{ "base too high", offsetof(struct pool_hdr, base), 0x7ffffffff000ull, 8, "base" },
		{ "base 0", offsetof(struct pool_hdr, base), 0, 8, "base" },
		{ "flags", offsetof(struct pool_hdr, flags), 0x80000001u, 4, "flags" },
		{ "major 2", offsetof(struct pool_hdr, major), 2, 4, "newer" },
		{ "major 0", offsetof(struct pool_hdr, major), 0, 4, "not supported" },
		{ "fork mode", offsetof(struct pool_hdr, fork_mode), 99, 4, "fork mode" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].w == 4)
			poke32(cases[i].off, (uint32_t)cases[i].v);
		else
			poke64(cases[i].off, cases[i].v);
		reseal_header();
		check(cases[i].name, META, cases[i].msg);
	}
}

static void
test_commit_word(void **state)
{
	(void)state;
	uint64_t w = commit_word();
	poke64(POOL_COMMIT_OFF, 0);
	check("commit word 0", META, "commit word");
	/* the copy the word should name, or the one before, is intact: used */
	poke64(POOL_COMMIT_OFF, w ^ 1);
	check("commit word names the other copy", FALLBACK, "commit word");
	poke64(POOL_COMMIT_OFF, w + 2);
	check("commit word generation ahead", FALLBACK, "generation");
	/* neither copy holds the generation it names, or the one before */
	poke64(POOL_COMMIT_OFF, w + 4);
	check("commit word generation two ahead", META, "no intact copy");
	poke64(POOL_COMMIT_OFF, w - 4);
	check("commit word generation behind", META, "no intact copy");
	poke64(POOL_COMMIT_OFF, ~0ull);
	check("commit word all ones", META, NULL);
}

static void
test_truncated(void **state)
{
	(void)state;
	/* the file ends with the highest segment in use (format 1.3): a cut
	 * before data_off takes the header or catalog (every command fails),
	 * one after it a segment in use (verify reports the file truncated) */
	struct stat st;
	assert_int_equal(stat(work, &st), 0);
	uint64_t size = (uint64_t)st.st_size;
	assert_true(size < H.file_size);
	uint64_t cuts[] = { 0, 100, 255, 4096, 8192 + 100, H.data_off - 1, H.data_off,
		H.data_off + 5000, layout_seg_off(&H, ck_seg) + ck_used / 2, size - 1 };
	char t[512];    /* tu_path's buffer rotates: keep our own copy */
	snprintf(t, sizeof(t), "%s", tu_path("truncated"));
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		tu_copy_file(work, t);
		assert_int_equal(truncate(t, (off_t)cuts[i]), 0);
		char name[64];
		snprintf(name, sizeof(name), "truncated at %llu", (unsigned long long)cuts[i]);
		check_path(name, t, cuts[i] < H.data_off ? META : DAMAGE,
				cuts[i] < 256 ? NULL : "truncated");
	}
	/* longer than it needs, up to its full size and past it: no damage */
	const uint64_t longer[] = { size + 12345, H.file_size, H.file_size + 12345 };
	for (size_t i = 0; i < sizeof(longer) / sizeof(longer[0]); i++) {
		tu_copy_file(work, t);
		assert_int_equal(truncate(t, (off_t)longer[i]), 0);
		check_path("file longer than the pool needs", t, CLEAN, NULL);
	}
}

/* -- catalog ----------------------------------------------------------------- */

static void
test_catalog(void **state)
{
	(void)state;
	uint64_t c = cur_cat();
	poke(c + 5, "\x55", 1);
	check("catalog magic", FALLBACK, "magic");
	poke(entry_off(ck_seg) + 30, "\x01", 1);
	check("catalog entry byte", FALLBACK, "checksum");
	/* both copies damaged: nothing to fall back to */
	poke(c + 5, "\x55", 1);
	poke(layout_cat_off(&H, (commit_word() & 1) ^ 1) + 700, "\x55", 1);
	check("both catalog copies", META, "no intact copy");

	/* the backup copy is not used while the current one is intact: damage
	 * there is a warning, not an error */
	uint64_t other = layout_cat_off(&H, (commit_word() & 1) ^ 1);
	poke(other, "garbage!", 8);
	poke(other + 700, "\xff\xff\xff\xff", 4);
	check("other catalog copy damaged", CLEAN, NULL);

	/* FALLBACK: cat_validate rejects the copy, every command reads the
	 * backup copy; DAMAGE: the copy is valid, verify's own entry checks or
	 * the checksum see it */
	struct { const char *name; uint64_t off; uint64_t v; int w; const char *msg;
		enum expect ex; } cases[] = {
		{ "nentries huge", c + offsetof(struct cat_hdr, nentries), 0xffffffffu, 4, "entries", FALLBACK },
		{ "next id 0", c + offsetof(struct cat_hdr, next_ckpt_id), 0, 8, "next checkpoint", FALLBACK },
		{ "next id below ids", c + offsetof(struct cat_hdr, next_ckpt_id), 1, 8, "out of range", FALLBACK },
		{ "bad state", entry_off(1) + offsetof(struct cat_entry, state), 9, 4, "state", FALLBACK },
		/* a checkpoint being pulled (format 1.6) in a pool without POOL_F_REMOTE_FILL */
		{ "filling in a pool that cannot hold one", entry_off(ck_seg) +
			offsetof(struct cat_entry, state), CAT_FILLING, 4, "cannot hold one", FALLBACK },
		{ "parent out of range", entry_off(ck_seg) + offsetof(struct cat_entry, parent), 5000, 4, "parent", FALLBACK },
		{ "source out of range", entry_off(ck_seg) + offsetof(struct cat_entry, source), 4096, 4, "source", FALLBACK },
		{ "used past segment", entry_off(ck_seg) + offsetof(struct cat_entry, used), H.seg_size + 1, 8, "used", FALLBACK },
		{ "used huge", entry_off(ck_seg) + offsetof(struct cat_entry, used), ~0ull, 8, "used", FALLBACK },
		{ "used zero", entry_off(ck_seg) + offsetof(struct cat_entry, used), 0, 8, NULL, DAMAGE },
		{ "used short", entry_off(ck_seg) + offsetof(struct cat_entry, used), ck_used - 16384, 8, NULL, DAMAGE },
		{ "checkpoint id 0", entry_off(ck_seg) + offsetof(struct cat_entry, ckpt_id), 0, 8, "checkpoint id", FALLBACK },
		{ "duplicate id", entry_off(ck_seg) + offsetof(struct cat_entry, ckpt_id), ck_id_old, 8, "same checkpoint id", FALLBACK },
		{ "checksum", entry_off(ck_seg) + offsetof(struct cat_entry, checksum), 12345, 8, "checksum mismatch", DAMAGE },
		{ "live owner pid 0", entry_off(dead_seg) + offsetof(struct cat_entry, owner.pid), 0, 4, "pid", DAMAGE },
		{ "self parent", entry_off(dead_seg) + offsetof(struct cat_entry, parent), dead_seg, 4, "own parent", DAMAGE },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].w == 4)
			poke32(cases[i].off, (uint32_t)cases[i].v);
		else
			poke64(cases[i].off, cases[i].v);
		reseal_catalog();
		check(cases[i].name, cases[i].ex, cases[i].msg);
	}
	/* a cycle in the tree list draws (dead heap's parent is its own checkpoint) */
	poke32(entry_off(dead_seg) + offsetof(struct cat_entry, parent), ck_seg);
	poke32(entry_off(ck_seg) + offsetof(struct cat_entry, source), dead_seg);
	reseal_catalog();
	check("tree cycle", ANY, NULL);
	char label[CAT_LABEL_MAX];
	memset(label, 'x', sizeof(label));
	poke(entry_off(ck_seg) + offsetof(struct cat_entry, label), label, sizeof(label));
	reseal_catalog();
	check("label not terminated", FALLBACK, "label");
	/* free entry turned checkpoint of a hole: checksum mismatch, walker fails */
	uint32_t fr = 0;
	while (fr == ck_seg || fr == ck_seg_old || fr == dead_seg)
		fr++;
	struct tu_catalog tc;
	tu_catalog_read(work, &tc);
	for (fr = 0; fr < tc.n && tc.e[fr].state != CAT_FREE; fr++)
		;
	assert_true(fr < tc.n);
	tu_catalog_free(&tc);
	poke32(entry_off(fr) + offsetof(struct cat_entry, state), CAT_CKPT);
	poke64(entry_off(fr) + offsetof(struct cat_entry, ckpt_id), ck_id + 1);
	poke64(c + offsetof(struct cat_hdr, next_ckpt_id), ck_id + 2);
	poke64(entry_off(fr) + offsetof(struct cat_entry, used), 1 << 20);
	reseal_catalog();
	check("checkpoint of a hole", FALLBACK, NULL);
}

/* -- allocator metadata, behind a re-sealed checksum ------------------------- */

/* heap header fields (libckpt/heap/types.h, struct heap_hdr) */
#define HH_NPAGES 24
#define HH_DATA_PAGE 36
#define HH_SLOTS_OFF 40
#define HH_PMAP_OFF 48
#define HH_ROOT 72
#define HH_HIGH_WATER 80
#define HH_FREE_HINT 88
#define HH_IN_USE_BASE 96
#define HH_LARGE_IN_USE 104
#define HP_SHIFT 14

static uint64_t seg0;

/* find_page -- first page of kind (page map top 4 bits) below high water; 0 if none */
static uint32_t
find_page(unsigned kind)
{
	uint32_t dp = peek32(seg0 + HH_DATA_PAGE);
	uint64_t pm = peek64(seg0 + HH_PMAP_OFF);
	uint32_t hwp = (uint32_t)(peek64(seg0 + HH_HIGH_WATER) >> HP_SHIFT);
	for (uint32_t p = dp; p < hwp; p++)
		if ((peek32(seg0 + pm + 4ull * p) >> 28) == kind)
			return p;
	return 0;
}

/* find_slab_with_free -- a slab whose free list is not empty; its page */
static uint32_t
find_slab_with_free(void)
{
	uint32_t dp = peek32(seg0 + HH_DATA_PAGE);
	uint64_t pm = peek64(seg0 + HH_PMAP_OFF);
	uint32_t hwp = (uint32_t)(peek64(seg0 + HH_HIGH_WATER) >> HP_SHIFT);
	for (uint32_t p = dp; p < hwp; p++)
		if ((peek32(seg0 + pm + 4ull * p) >> 28) == 2 &&
		    peek64(seg0 + ((uint64_t)p << HP_SHIFT) + 32) != 0)
			return p;
	return 0;
}

static void
heap_case_ex(const char *name, uint64_t off, uint64_t v, int w, const char *msg, enum expect ex)
{
	if (w == 4)
		poke32(seg0 + off, (uint32_t)v);
	else if (w == 2) {
		uint16_t x = (uint16_t)v;
		poke(seg0 + off, &x, 2);
	} else
		poke64(seg0 + off, v);
	reseal_ckpt(ck_seg);
	check(name, ex, msg);
}

static void
heap_case(const char *name, uint64_t off, uint64_t v, int w, const char *msg)
{
	heap_case_ex(name, off, v, w, msg, HEAP_DAMAGE);
}

static void
test_allocator(void **state)
{
	(void)state;
	seg0 = layout_seg_off(&H, ck_seg);
	/* unsealed: the checksum catches it */
	poke(seg0 + 100, "\x42", 1);
	check("heap byte, checksum not resealed", DAMAGE, "checksum mismatch");

	uint64_t pm = peek64(seg0 + HH_PMAP_OFF);
	uint32_t npages = peek32(seg0 + HH_NPAGES);
	heap_case("heap magic", 0, 0x4141414141414141ull, 8, "magic");
	heap_case("heap version", 8, 77, 4, "version");
	heap_case("heap high water huge", HH_HIGH_WATER, 1ull << 60, 8, "high-water");
	heap_case("heap high water below metadata", HH_HIGH_WATER, 4096, 8, "high-water");
	heap_case("heap npages huge", HH_NPAGES, 0x0fffffff, 4, NULL);
	heap_case("heap seg_size huge", 16, 1ull << 50, 8, NULL);
	heap_case("heap pmap_off huge", HH_PMAP_OFF, ~0ull - 4, 8, NULL);
	heap_case("root misaligned", HH_ROOT, peek64(seg0 + HH_ROOT) + 8, 8, "root");
	heap_case("root past high water", HH_ROOT, 1ull << 40, 8, "root");
	heap_case("free hint huge", HH_FREE_HINT, npages + 5, 4, "hint");
	/* reserved header words (byte counters in earlier drafts): any outcome but a crash */
	heap_case_ex("reserved word", HH_IN_USE_BASE, 123456789, 8, NULL, ANY);
	heap_case_ex("reserved word huge", HH_LARGE_IN_USE, ~0ull, 8, NULL, ANY);
	heap_case("metadata page map", pm, 0, 4, "metadata page");

	uint32_t slab = find_slab_with_free();
	assert_true(slab != 0);
	uint64_t so = (uint64_t)slab << HP_SHIFT;
	heap_case("slab page map garbage", pm + 4ull * slab, 0xf0000000u, 4, NULL);
	heap_case("slab page map class huge", pm + 4ull * slab, (2u << 28) | 0x0fffffffu, 4, "class");
	heap_case("slab magic", so, 0, 4, "slab");
	heap_case("slab bump huge", so + 12, 0xffffffffu, 4, "out of range");
	heap_case("slab used huge", so + 16, 0xfffffff0u, 4, NULL);
	heap_case("slab capacity", so + 8, 1000, 4, NULL);
	heap_case("slab next out of range", so + 24, 0x0fffffff, 4, NULL);
	heap_case("slab list loop", so + 24, slab, 4, NULL);
	heap_case("slab owner huge", so + 6, 0xffff, 2, NULL);
	heap_case("slab remote list outside", so + 40, 1ull << 62, 8, "remote-free");
	heap_case("slab free list outside", so + 32, 8, 8, "free list");
	heap_case("slab free list huge", so + 32, ~0ull, 8, "free list");
	/* a loop in the free list: the first free block links to itself */
	uint64_t head = peek64(seg0 + so + 32);
	heap_case("free list loop", head, head, 8, "loop");
	/* ... or back to the head from further down */
	uint64_t second = peek64(seg0 + head);
	if (second)
		heap_case("free list cycle", second, head, 8, "loop");

	uint32_t large = find_page(4);
	assert_true(large != 0);
	heap_case("large block pages huge", pm + 4ull * large, (4u << 28) | 0x0fffffffu, 4, "high-water");
	heap_case("large block pages 0", pm + 4ull * large, 4u << 28, 4, NULL);
	heap_case("page map tail garbage", pm + 4ull * large + 4, 0x30000007u, 4, NULL);

	uint64_t slots = peek64(seg0 + HH_SLOTS_OFF);
	heap_case("slot state", slots, 7, 4, "slot");
	heap_case_ex("slot reserved word", slots + 512 + 4, 1, 4, NULL, ANY);
	heap_case("slot avail list outside", slots + 512 * 2 + 64, 0x0ffffff0u, 4, NULL);
	heap_case("abandoned list garbage", 112 + 4 * 3, 12345678, 4, NULL);
	/* a slot whose avail list loops through the same slab */
	for (unsigned c = 0; c < 44; c++) {
		uint32_t h = peek32(seg0 + slots + 512 + 64 + 4 * c);
		if (h) {
			heap_case("avail list loop", ((uint64_t)h << HP_SHIFT) + 24, h, 4, NULL);
			break;
		}
	}
}

/* -- random flips ------------------------------------------------------------ */

static void
test_random_flips(void **state)
{
	(void)state;
	unsigned seed = 424242;
	const char *e = getenv("CKPT_TEST_SCALE");
	int rounds = e && strcmp(e, "small") == 0 ? 40 : 160;
	seg0 = layout_seg_off(&H, ck_seg);
	for (int r = 0; r < rounds; r++) {
		int region = r % 6;
		uint64_t off;
		enum expect ex = ANY;
		switch (region) {
		/* the header and the current catalog copy are covered by
		 * checksums (and the commit word must name a copy of its
		 * generation, or the one before): every flip there is damage;
		 * in the current catalog copy, the backup copy is read instead */
		case 0: off = rand_r(&seed) % 256; ex = META; break;
		case 1: off = POOL_COMMIT_OFF + rand_r(&seed) % 8; ex = CATDAMAGE; break;
		case 2: off = cur_cat() + rand_r(&seed) % H.cat_size; ex = FALLBACK; break;
		case 3: off = layout_cat_off(&H, (commit_word() & 1) ^ 1) + rand_r(&seed) % H.cat_size;
			ex = CLEAN; break;
		case 4: off = seg0 + rand_r(&seed) % ck_used; ex = DAMAGE; break;
		default: off = seg0 + rand_r(&seed) % (256 << 10); break;  /* resealed below */
		}
		unsigned char b;
		rd(off, &b, 1);
		b ^= (unsigned char)(1u << (rand_r(&seed) % 8));
		poke(off, &b, 1);
		if (region == 5)
			reseal_ckpt(ck_seg);
		char name[64];
		snprintf(name, sizeof(name), "random flip %d (region %d, offset %llu)", r, region,
			(unsigned long long)off);
		/* a flip in a segment byte the heap never uses is not damage the
		 * checksum can miss: region 4 is inside [0, used) */
		check(name, ex, NULL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sound),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_commit_word),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_catalog),
		cmocka_unit_test(test_allocator),
		cmocka_unit_test(test_random_flips),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
