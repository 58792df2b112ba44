/*
 * owner.c -- process identity for catalog entries.
 *
 * A pid alone is not an identity: pids are reused, and after a reboot every
 * pid is. An owner is (pid, start time in clock ticks since boot, boot id).
 * A segment whose owner no longer matches a running, non-zombie process is
 * reported dead, however its pid has been reused since.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "owner.h"

/* read_small -- read up to len-1 bytes of a /proc file into buf, NUL-terminated */
static int
read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return -1;
	}
	buf[n] = '\0';
	return 0;
}

/* boot_id -- the kernel's boot id, as 16 bytes */
static int
boot_id(uint8_t id[16])
{
	static uint8_t cached[16];
	static int have;
	if (!have) {
		char s[64];
		if (read_small("/proc/sys/kernel/random/boot_id", s, sizeof(s)) < 0)
			return -1;
		int j = 0;
		for (const char *p = s; *p && j < 32; p++) {
			int v;
			if (*p >= '0' && *p <= '9')
				v = *p - '0';
			else if (*p >= 'a' && *p <= 'f')
				v = *p - 'a' + 10;
			else
				continue;
			if (j % 2 == 0)
				cached[j / 2] = (uint8_t)(v << 4);
			else
				cached[j / 2] |= (uint8_t)v;
			j++;
		}
		if (j != 32)
			return -1;
		have = 1;
	}
	memcpy(id, cached, 16);
	return 0;
}

/*
 * proc_stat -- state letter and start time of pid from /proc/PID/stat.
 * The command name (field 2) may hold spaces and parentheses: parse after
 * the last ')'.
 */
static int
proc_stat(int pid, char *state, uint64_t *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -1;
	p += 2;
	*state = *p;
	/* fields after ')' start at field 3 (state); starttime is field 22 */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (errno || end == p)
		return -1;
	*start = v;
	return 0;
}

int
owner_self(struct cat_owner *o)
{
	memset(o, 0, sizeof(*o));
	o->pid = (int32_t)getpid();
	char st;
	if (proc_stat(o->pid, &st, &o->start_time) < 0 || boot_id(o->boot_id) < 0)
		return ckpt_err_set(EIO, "cannot read process identity from /proc: %s",
				strerror(errno));
	return 0;
}

int
owner_alive(const struct cat_owner *o)
{
	uint8_t id[16];
	if (o->pid <= 0)
		return 0;
	if (boot_id(id) < 0 || memcmp(id, o->boot_id, 16) != 0)
		return 0;
	char st;
	uint64_t start;
	if (proc_stat(o->pid, &st, &start) < 0)
		return 0;
	if (start != o->start_time)
		return 0;
	return st != 'Z' && st != 'X';
}

int
owner_equal(const struct cat_owner *a, const struct cat_owner *b)
{
	return a->pid == b->pid && a->start_time == b->start_time &&
		memcmp(a->boot_id, b->boot_id, 16) == 0;
}
