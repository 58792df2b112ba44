/*
 * ckpt-run -- run an unmodified program with its heap in a pool.
 *
 *   ckpt-run [--pool PATH] [--size SIZE] [--fork-mode MODE]
 *            [--checkpoint-every SECS] [--checkpoint-on SIGNAL]
 *            [--on-exit checkpoint|none] [--durable-after MS] [--quiet]
 *            -- PROGRAM [ARGS]
 *
 * Everything that can be checked before the program starts is checked
 * here, so a mistake is a clear message and exit status 127 (2 for bad
 * usage) rather than a program that dies in its loader:
 *   - PROGRAM is found (PATH), executable, dynamically linked (an ELF
 *     file with an interpreter; a static binary ignores LD_PRELOAD), and
 *     not setuid/setgid to someone else (the loader then ignores
 *     LD_PRELOAD);
 *   - the pool is created (with --size) or, when it exists, opened the way
 *     the program will open it, up to attaching a heap (attach_check: an
 *     unwritable pool, a pool of another format, a base this address space
 *     cannot take, a fork mode its filesystem cannot do all fail here);
 *     --size on an existing pool of another size is an error;
 *   - the preload library is found: CKPT_PRELOAD, else next to this
 *     executable (the build tree, or LIBDIR relative to an installed
 *     prefix), else the configured install path.
 * The fork mode is --fork-mode, else CKPT_FORK_MODE, else copy (not auto:
 * auto settles to cow, whose heap between checkpoints is private memory,
 * so a killed program, which never calls ckpt_persist, would leave only
 * its last checkpoint instead of its heap as a dead segment).
 * Then it forks; the child sets the environment (LD_PRELOAD, CKPT_POOL,
 * CKPT_FORK_MODE and the CKPT_RUN_* settings preload.c reads, with
 * CKPT_RUN_PID its own pid) and execs PROGRAM. The parent forwards
 * SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 (and the --checkpoint-on signal)
 * to it, ignores SIGINT and SIGQUIT while it runs (the terminal sends them
 * to both), and exits with its status (128 + N when signal N killed it),
 * after saying where its heap is unless --quiet.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach.h"
#include "config.h"
#include "libckpt.h"

#define EXIT_USAGE 2
#define EXIT_CANNOT 127

static int quiet;
static pid_t child;

static void __attribute__((noreturn))
usage(const char *fmt, const char *arg)
{
	/* --help (no fmt): the synopsis on stdout, exit 0; a mistake: stderr, 2 */
	FILE *f = fmt ? stderr : stdout;
	if (fmt) {
		fprintf(stderr, "ckpt-run: ");
		fprintf(stderr, fmt, arg);
		fprintf(stderr, "\n");
	}
	fprintf(f, "usage: ckpt-run [--pool PATH] [--size SIZE] [--fork-mode MODE]\n"
		"                [--checkpoint-every SECS] [--checkpoint-on SIGNAL]\n"
		"                [--on-exit checkpoint|none] [--durable-after MS] [--quiet]\n"
		"                -- PROGRAM [ARGS]\n");
	exit(fmt ? EXIT_USAGE : 0);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
cannot(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "ckpt-run: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(EXIT_CANNOT);
}

/* parse_signal -- "USR1", "SIGUSR1" or "10" as a signal number, -1 */
static int
parse_signal(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*s && !*end)
		return n > 0 && n < NSIG && n != SIGKILL && n != SIGSTOP ? (int)n : -1;
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (int i = 1; i < NSIG; i++) {
		const char *name = sigabbrev_np(i);
		if (name && strcmp(name, s) == 0)
			return i == SIGKILL || i == SIGSTOP ? -1 : i;
	}
	return -1;
}

/* find_program -- PROGRAM as execvp would find it, into out; -1 */
static int
find_program(const char *prog, char *out, size_t n)
{
	if (strchr(prog, '/')) {
		snprintf(out, n, "%s", prog);
		return access(out, X_OK);
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");
		snprintf(out, n, "%.*s%s%s", (int)len, path, len ? "/" : "", prog);
		struct stat st;
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
		path += len + (path[len] == ':');
	}
	errno = ENOENT;
	return -1;
}

/* check_program -- refuse what LD_PRELOAD cannot reach, with the reason */
static void
check_program(const char *prog, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		cannot("%s: %s", prog, strerror(errno));
	if (!S_ISREG(st.st_mode))
		cannot("%s: not a regular file", prog);
	if (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
	    ((st.st_mode & S_ISGID) && st.st_gid != getegid()))
		cannot("%s is setuid or setgid: the loader ignores LD_PRELOAD for it, "
		       "so its heap cannot be in a pool", prog);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		cannot("%s: %s", prog, strerror(errno));
	Elf64_Ehdr eh;
	ssize_t n = pread(fd, &eh, sizeof(eh), 0);
	if (n != (ssize_t)sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
		close(fd);      /* a script: its interpreter is checked when it runs */
		return;
	}
	int interp = 0;
	if (eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(Elf64_Phdr)) {
		for (unsigned i = 0; i < eh.e_phnum && i < 256; i++) {
			Elf64_Phdr ph;
			if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) !=
			    (ssize_t)sizeof(ph))
				break;
			if (ph.p_type == PT_INTERP)
				interp = 1;
		}
	} else {
		close(fd);
		cannot("%s is not a 64-bit ELF program of this machine", prog);
	}
	close(fd);
	if (!interp)
		cannot("%s is statically linked: LD_PRELOAD cannot replace its allocator, "
		       "so its heap cannot be in a pool", prog);
}

/* find_preload -- the preload library's path into out */
static void
find_preload(char *out, size_t n)
{
	const char *env = getenv("CKPT_PRELOAD");
	if (env && *env) {
		if (access(env, R_OK) < 0)
			cannot("CKPT_PRELOAD=%s: %s", env, strerror(errno));
		snprintf(out, n, "%s", env);
		return;
	}
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len > 0) {
		exe[len] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			const char *cand[] = { "../preload/libckpt-preload.so",
				"../" CKPT_LIBDIR "/libckpt/libckpt-preload.so" };
			for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
				if (snprintf(out, n, "%s/%s", exe, cand[i]) < (int)n &&
				    access(out, R_OK) == 0)
					return;
			}
		}
	}
	snprintf(out, n, "%s", CKPT_PRELOAD_PATH);
	if (access(out, R_OK) < 0)
		cannot("cannot find the preload library libckpt-preload.so (looked next to "
		       "ckpt-run and at %s); set CKPT_PRELOAD", CKPT_PRELOAD_PATH);
}

/*
 * prepare_pool -- create the pool, or check that the program can run on it
 * (attach_check: opened read-write, valid, its base free here; nothing
 * written)
 */
static void
prepare_pool(const char *path, uint64_t size)
{
	ckpt_pool *p;
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		struct ckpt_config cfg = { .heap_size = size };
		p = ckpt_create(path, &cfg);
		if (!p && errno != EEXIST)
			cannot("%s", ckpt_errormsg());
		if (p) {
			ckpt_close(p);
			return;
		}
	}
	size_t seg;
	if (attach_check(path, NULL, &seg) < 0)
		cannot("cannot run on pool %s: %s", path, ckpt_errormsg());
	if (size && (size + (2u << 20) - 1) / (2u << 20) * (2u << 20) != seg)
		cannot("pool %s exists with a heap of %zu bytes; --size asks for %llu "
		       "(remove the pool or leave --size out)", path, seg,
		       (unsigned long long)size);
}

static void
forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pool", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 's' },
		{ "fork-mode", required_argument, NULL, 'f' },
		{ "checkpoint-every", required_argument, NULL, 'e' },
		{ "checkpoint-on", required_argument, NULL, 'o' },
		{ "on-exit", required_argument, NULL, 'x' },
		{ "durable-after", required_argument, NULL, 'd' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *pool = getenv("CKPT_POOL"), *mode = NULL, *on_exit = NULL, *after = NULL;
	uint64_t size = 0;
	long every = 0;
	int sig = 0, c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pool = optarg;
			break;
		case 's':
			if (config_parse_size(optarg, &size) < 0)
				usage("--size: %s", ckpt_errormsg());
			break;
		case 'f':
			if (config_parse_fork_mode(optarg) < 0)
				usage("--fork-mode %s: expected auto, copy, reflink, cow or shared",
				      optarg);
			mode = optarg;
			break;
		case 'e': {
			char *end;
			every = strtol(optarg, &end, 10);
			if (!*optarg || *end || every <= 0 || every > 86400 * 365)
				usage("--checkpoint-every %s: expected a positive number of seconds",
				      optarg);
			break;
		}
		case 'o':
			sig = parse_signal(optarg);
			if (sig < 0)
				usage("--checkpoint-on %s: not a signal that can be caught", optarg);
			break;
		case 'x':
			if (strcmp(optarg, "checkpoint") != 0 && strcmp(optarg, "none") != 0)
				usage("--on-exit %s: expected checkpoint or none", optarg);
			on_exit = optarg;
			break;
		case 'd': {
			char *end;
			errno = 0;
			unsigned long long ms = strtoull(optarg, &end, 10);
			if (!*optarg || *end || errno || optarg[0] == '-' || ms > 86400000ull)
				usage("--durable-after %s: expected milliseconds, 0 to 86400000",
				      optarg);
			after = optarg;
			break;
		}
		case 'q':
			quiet = 1;
			break;
		case 'h':
			usage(NULL, NULL);
		default:
			usage("unknown option or missing argument: %s", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		usage("no PROGRAM to run", NULL);
	const char *prog = argv[optind];

	char path[PATH_MAX], preload[PATH_MAX], poolabs[PATH_MAX];
	if (find_program(prog, path, sizeof(path)) < 0)
		cannot("%s: %s", prog, errno == ENOENT ? "command not found" : strerror(errno));
	check_program(prog, path);
	find_preload(preload, sizeof(preload));

	if (!pool || !*pool) {
		const char *b = strrchr(prog, '/');
		snprintf(poolabs, sizeof(poolabs), "%s.pool", b ? b + 1 : prog);
		pool = poolabs;
	}
	char abs[PATH_MAX];
	if (pool[0] != '/') {
		if (!getcwd(abs, sizeof(abs)) ||
		    snprintf(abs + strlen(abs), sizeof(abs) - strlen(abs), "/%s", pool) < 0)
			cannot("cannot resolve pool path %s", pool);
		pool = abs;
	}
	/* copy unless asked otherwise: auto would settle to cow, where a
	 * heap between checkpoints is private memory and a killed program
	 * (which never calls ckpt_persist) would leave only its last
	 * checkpoint, not the dead heap ckpt-run promises */
	if (!mode)
		mode = getenv("CKPT_FORK_MODE");
	if (!mode || !*mode)
		mode = "copy";
	if (setenv("CKPT_FORK_MODE", mode, 1) < 0)
		cannot("setenv: %s", strerror(errno));
	prepare_pool(pool, size);

	/* the environment the program and its descendants run with */
	const char *old = getenv("LD_PRELOAD");
	char *ld;
	if (asprintf(&ld, "%s%s%s", preload, old && *old ? ":" : "", old ? old : "") < 0)
		cannot("out of memory");
	char num[32];
	setenv("LD_PRELOAD", ld, 1);
	setenv("CKPT_POOL", pool, 1);
	unsetenv("CKPT_RUN_CHECKPOINT_EVERY");
	unsetenv("CKPT_RUN_CHECKPOINT_ON");
	unsetenv("CKPT_RUN_ON_EXIT");
	unsetenv("CKPT_RUN_DURABLE_AFTER");
	if (every) {
		snprintf(num, sizeof(num), "%ld", every);
		setenv("CKPT_RUN_CHECKPOINT_EVERY", num, 1);
	}
	if (sig) {
		snprintf(num, sizeof(num), "%d", sig);
		setenv("CKPT_RUN_CHECKPOINT_ON", num, 1);
	}
	if (on_exit)
		setenv("CKPT_RUN_ON_EXIT", on_exit, 1);
	if (after)
		setenv("CKPT_RUN_DURABLE_AFTER", after, 1);
	free(ld);

	fflush(NULL);
	child = fork();
	if (child < 0)
		cannot("fork: %s", strerror(errno));
	if (child == 0) {
		snprintf(num, sizeof(num), "%ld", (long)getpid());
		setenv("CKPT_RUN_PID", num, 1);
		execv(path, argv + optind);
		fprintf(stderr, "ckpt-run: cannot run %s: %s\n", prog, strerror(errno));
		_exit(EXIT_CANNOT);
	}
	struct sigaction sa = { .sa_handler = forward, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	int fwd[] = { SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, sig };
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		if (fwd[i] > 0)
			sigaction(fwd[i], &sa, NULL);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			cannot("waitpid: %s", strerror(errno));
	int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (!quiet && !(WIFEXITED(st) && WEXITSTATUS(st) == EXIT_CANNOT))
		fprintf(stderr, "ckpt-run: %s (pid %ld) %s %d; its heap is in pool %s unless it "
			"ended young (ckpt-inspect list %s)\n", prog, (long)child,
			WIFEXITED(st) ? "exited with status" : "was killed by signal",
			WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), pool, pool);
	return rc;
}
