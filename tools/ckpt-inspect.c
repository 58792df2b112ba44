/*
 * ckpt-inspect -- dump what a pool holds, for people and for tools.
 *
 *   ckpt-inspect COMMAND POOL [ARGS] [--json]
 *
 * Read-only always: the pool is opened O_RDONLY through libckpt/inspect.c,
 * which validates everything it reads. Exit status: 0 success, 1 damaged
 * pool or failed check, 2 bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inspect.h"
#include "libckpt.h"

#define EXIT_DAMAGED 1
#define EXIT_USAGE 2

static int json;

static const char *fork_mode_names[] = { "auto", "copy", "reflink", "cow", "shared" };

/* human_size -- "12.0 MiB" style into buf */
static const char *
human_size(uint64_t v, char *buf, size_t len)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	int u = 0;
	while (d >= 1024 && u < 4) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)v);
	else
		snprintf(buf, len, "%.1f %s", d, units[u]);
	return buf;
}

/* iso_time -- local ISO 8601 time of a CLOCK_REALTIME ns value */
static const char *
iso_time(uint64_t ns, char *buf, size_t len)
{
	if (ns == 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S%z", &tm);
	return buf;
}

/* json_string -- print s as a JSON string literal */
static void
json_string(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void
uuid_string(const uint8_t u[16], char *buf)
{
	static const int dash[] = { 4, 6, 8, 10 };
	int k = 0;
	for (int i = 0; i < 16; i++) {
		for (int d = 0; d < 4; d++)
			if (i == dash[d])
				buf[k++] = '-';
		k += sprintf(buf + k, "%02x", u[i]);
	}
	buf[k] = '\0';
}

static int
cmd_info(struct inspect *in, int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return EXIT_USAGE;
	const struct pool_hdr *h = &in->hdr;
	uint32_t used = 0;
	for (uint32_t i = 0; i < in->cat.n; i++)
		used += in->cat.e[i].state != CAT_FREE;
	char uuid[40];
	uuid_string(h->uuid, uuid);
	const char *kind = in->dax ? "pmem" : "emulated";
	const char *fm = h->fork_mode <= CKPT_FORK_SHARED ? fork_mode_names[h->fork_mode] : "?";
	if (json) {
		printf("{\"format_version\":\"%u.%u\",\"uuid\":\"%s\",\"base\":\"0x%llx\","
			"\"heap_size\":%llu,\"segment_size\":%llu,\"segments_used\":%u,"
			"\"segments_total\":%u,\"persistence\":\"%s\",\"fork_mode\":\"%s\","
			"\"keep_checkpoints\":%u,\"next_checkpoint_id\":%llu,\"file_size\":%llu}\n",
			h->major, h->minor, uuid, (unsigned long long)h->base,
			(unsigned long long)h->heap_size, (unsigned long long)h->seg_size,
			used, h->max_segments, kind, fm, h->keep_checkpoints,
			(unsigned long long)in->cat.h->next_ckpt_id,
			(unsigned long long)h->file_size);
		return 0;
	}
	char b1[32], b2[32];
	printf("format version   %u.%u\n", h->major, h->minor);
	printf("uuid             %s\n", uuid);
	printf("base             0x%llx\n", (unsigned long long)h->base);
	printf("heap size        %s (segment %s)\n", human_size(h->heap_size, b1, sizeof(b1)),
		human_size(h->seg_size, b2, sizeof(b2)));
	printf("segments         %u used of %u\n", used, h->max_segments);
	printf("persistence      %s\n", in->dax ? "pmem (DAX, cache flushes)" : "emulated (ordinary file, msync)");
	printf("fork mode        %s\n", fm);
	printf("keep checkpoints %u\n", h->keep_checkpoints);
	return 0;
}

static int
cmd_list(struct inspect *in, int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return EXIT_USAGE;
	if (json)
		printf("{\"segments\":[");
	else
		printf("%-4s %-10s %6s %-16s %8s %6s %-25s %10s\n", "SEG", "STATE", "CKPT",
			"LABEL", "PID", "PARENT", "TIME", "USED");
	int first = 1;
	for (uint32_t i = 0; i < in->cat.n; i++) {
		const struct cat_entry *e = &in->cat.e[i];
		if (e->state == CAT_FREE)
			continue;
		const char *st = inspect_state_name(in, i);
		char t[40], sz[32];
		iso_time(e->time_ns, t, sizeof(t));
		if (json) {
			printf("%s{\"segment\":%u,\"state\":\"%s\",", first ? "" : ",", i, st);
			if (e->state == CAT_CKPT)
				printf("\"checkpoint\":%llu,", (unsigned long long)e->ckpt_id);
			else
				printf("\"checkpoint\":null,");
			printf("\"label\":");
			json_string(e->label);
			printf(",\"pid\":%d,\"parent\":", e->owner.pid);
			if (e->parent == CAT_NONE)
				printf("null");
			else
				printf("%u", e->parent);
			printf(",\"source\":");
			if (e->source == CAT_NONE)
				printf("null");
			else
				printf("%u", e->source);
			printf(",\"time\":\"%s\",\"used\":%llu,\"in_use\":%llu}", t,
				(unsigned long long)e->used, (unsigned long long)e->in_use);
		} else {
			char ck[24] = "-", par[16] = "-";
			if (e->state == CAT_CKPT)
				snprintf(ck, sizeof(ck), "%llu", (unsigned long long)e->ckpt_id);
			if (e->parent != CAT_NONE)
				snprintf(par, sizeof(par), "%u", e->parent);
			printf("%-4u %-10s %6s %-16.16s %8d %6s %-25s %10s\n", i, st, ck,
				e->label[0] ? e->label : "-", e->owner.pid, par, t,
				human_size(e->used, sz, sizeof(sz)));
		}
		first = 0;
	}
	if (json)
		printf("]}\n");
	return 0;
}

struct command {
	const char *name;
	const char *args;
	const char *help;
	int (*fn)(struct inspect *in, int argc, char **argv);
};

static const struct command commands[] = {
	{ "info", "POOL", "header: version, uuid, base, sizes, segments, pmem or emulated", cmd_info },
	{ "list", "POOL", "one row per segment: state, checkpoint, label, pid, parent, time, bytes", cmd_list },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: ckpt-inspect COMMAND POOL [ARGS] [--json]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-6s %-22s %s\n", commands[i].name, commands[i].args,
			commands[i].help);
	fprintf(f, "\nexit status: 0 success, 1 damaged pool or failed check, 2 bad usage\n");
}

int
main(int argc, char **argv)
{
	char *args[argc + 1];
	int n = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else
			args[n++] = argv[i];
	}
	if (n < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(args[0], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "ckpt-inspect: unknown command '%s'\n", args[0]);
		usage(stderr);
		return EXIT_USAGE;
	}
	struct inspect in;
	if (inspect_open(&in, args[1]) < 0) {
		fprintf(stderr, "ckpt-inspect: %s\n", ckpt_errormsg());
		return errno == ENOENT || errno == EISDIR ? EXIT_USAGE : EXIT_DAMAGED;
	}
	int rc = cmd->fn(&in, n - 2, args + 2);
	if (rc == EXIT_USAGE) {
		fprintf(stderr, "ckpt-inspect: bad arguments for '%s'\n", cmd->name);
		usage(stderr);
	}
	inspect_close(&in);
	return rc;
}
