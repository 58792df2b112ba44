/*
 * inspect-heap.c -- the commands that read inside a segment: `heap` (every
 * block of a heap, its root and a summary), `dump` (hexdump -C of a range
 * of a heap's addresses) and `verify` (every check of inspect_verify.c,
 * printed as it is found).
 *
 * A heap is read whole through libckpt/inspect.c (bounded by its segment
 * and the file, decrypted when sealed and a key is given) and walked by the
 * untrusting heap walker: a damaged heap is reported, never followed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"
#include "inspect.h"
#include "layout.h"
#include "libckpt.h"
#include "remote/state.h"
#include "ckpt-inspect.h"

struct heapctx {
	uint64_t base;
	uint64_t n;
};

static int
print_block(const struct heap_block_info *b, void *arg)
{
	struct heapctx *c = arg;
	const char *st = b->state == HEAP_BLOCK_ALLOCATED ? "allocated" : "free";
	if (json) {
		printf("%s{\"address\":\"0x%" PRIx64 "\",\"offset\":%" PRIu64 ",\"size\":%" PRIu64
			",\"state\":\"%s\"}", c->n ? "," : "", c->base + b->offset, b->offset,
			b->size, st);
	} else {
		char h[32];
		printf("0x%012" PRIx64 "  %14" PRIu64 "  %10s  %s\n", c->base + b->offset, b->size,
			human_size(b->size, h, sizeof(h)), st);
	}
	c->n++;
	return 0;
}

static double
fragmentation(const struct heap_summary *s)
{
	return s->bytes_free ? 1.0 - (double)s->largest_free / (double)s->bytes_free : 0.0;
}

int
cmd_heap(struct inspect *in, int argc, char **argv)
{
	if (argc != 1)
		return bad_args();
	uint32_t seg;
	void *buf = NULL;
	size_t len = 0;
	struct heap_summary sum;
	char msg[CKPT_ERRMSG_MAX] = "";
	int ok = 0;
	const struct cat_entry *e;
	/*
	 * A live heap may be caught mid-operation, and a checkpoint may be
	 * removed by retention while we read it: take a few fresh copies, and
	 * for a checkpoint that went away, resolve REF again.
	 */
	for (int tries = 0; tries < 3 && !ok; tries++) {
		if (tries) {
			usleep(10000);
			if (inspect_refresh(in) < 0) {
				snprintf(msg, sizeof(msg), "%s", ckpt_errormsg());
				break;
			}
		}
		int rc = resolve(in, argv[0], &seg);
		if (rc)
			return rc;
		e = &in->cat.e[seg];
		if (e->state == CAT_FREE)
			return fail(EXIT_DAMAGED, "segment %u is free: it holds no heap", seg);
		struct cat_entry snap = *e;
		int changing = e->state != CAT_CKPT &&
			strcmp(inspect_state_name(in, seg), "dead") != 0;
		inspect_free_heap(buf, len);
		buf = NULL;
		if (inspect_read_heap(in, seg, &buf, &len, show_progress ? progress : NULL,
				NULL) == 0 && heap_check(buf, len, &sum) == 0) {
			ok = 1;
			break;
		}
		snprintf(msg, sizeof(msg), "%s", ckpt_errormsg());
		if (!changing && inspect_entry_unchanged(in, seg, &snap))
			break;   /* a checkpoint or dead heap that stayed: damage */
	}
	progress_done();
	e = &in->cat.e[seg];
	char d[96];
	seg_desc(in, seg, d, sizeof(d));
	if (!buf) {
		int r = fail(EXIT_DAMAGED, "%s: %s", d, msg);
		return r;
	}
	struct heapctx c = { .base = in->hdr.base };
	int busy;
	const char *st = api_state(in, seg, &busy);
	if (json) {
		printf("{\"segment\":%u,\"state\":\"%s\",\"busy\":%s,\"checkpoint\":", seg,
			st, busy ? "true" : "false");
		if (e->state == CAT_CKPT || e->state == CAT_FILLING)
			printf("%" PRIu64, e->ckpt_id);
		else
			printf("null");
		printf(",\"base\":\"0x%" PRIx64 "\",\"root\":", in->hdr.base);
		if (ok && sum.root_offset)
			printf("\"0x%" PRIx64 "\"", in->hdr.base + sum.root_offset);
		else
			printf("null");
		if (!summary_only) {
			printf(",\"blocks\":[");
			if (ok)
				heap_walk(buf, len, print_block, &c, NULL);
			printf("]");
		}
		if (ok)
			printf(",\"summary\":{\"blocks\":%" PRIu64 ",\"blocks_allocated\":%" PRIu64
				",\"blocks_free\":%" PRIu64 ",\"bytes_allocated\":%" PRIu64
				",\"bytes_free\":%" PRIu64 ",\"largest_free\":%" PRIu64
				",\"fragmentation\":%.4f,\"high_water\":%" PRIu64 "},\"error\":null}\n",
				sum.blocks_allocated + sum.blocks_free, sum.blocks_allocated,
				sum.blocks_free, sum.bytes_allocated, sum.bytes_free, sum.largest_free,
				fragmentation(&sum), sum.high_water);
		else {
			printf(",\"summary\":null,\"error\":");
			json_string(msg);
			printf("}\n");
		}
	} else {
		printf("%s, base 0x%" PRIx64 "\n", d, in->hdr.base);
		if (!ok) {
			fprintf(stderr, "ckpt-inspect: %s: heap is damaged: %s\n", d, msg);
			inspect_free_heap(buf, len);
			return EXIT_DAMAGED;
		}
		if (sum.root_offset)
			printf("root     0x%012" PRIx64 "\n", in->hdr.base + sum.root_offset);
		else
			printf("root     (none)\n");
		if (!summary_only) {
			printf("\n%-14s  %14s  %10s  %s\n", "ADDRESS", "SIZE", "", "STATE");
			heap_walk(buf, len, print_block, &c, NULL);
			printf("\n");
		}
		char a[32], b[32], l[32], h[32];
		printf("blocks         %" PRIu64 " (%" PRIu64 " allocated, %" PRIu64 " free)\n",
			sum.blocks_allocated + sum.blocks_free, sum.blocks_allocated,
			sum.blocks_free);
		printf("allocated      %s (%" PRIu64 " bytes)\n",
			human_size(sum.bytes_allocated, a, sizeof(a)), sum.bytes_allocated);
		printf("free           %s (%" PRIu64 " bytes)\n",
			human_size(sum.bytes_free, b, sizeof(b)), sum.bytes_free);
		printf("largest free   %s\n", human_size(sum.largest_free, l, sizeof(l)));
		printf("fragmentation  %.1f%%\n", 100.0 * fragmentation(&sum));
		printf("high water     %s\n", human_size(sum.high_water, h, sizeof(h)));
	}
	inspect_free_heap(buf, len);
	return ok ? 0 : EXIT_DAMAGED;
}

/* -- dump ------------------------------------------------------------------- */

/* parse_num -- decimal or 0x hex, optional k/m/g (binary) suffix when suffix */
static int
parse_num(const char *s, int suffix, uint64_t *v)
{
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	if (suffix && *end) {
		unsigned sh = 0;
		switch (*end) {
		case 'k': case 'K': sh = 10; break;
		case 'm': case 'M': sh = 20; break;
		case 'g': case 'G': sh = 30; break;
		default: return -1;
		}
		if (end[1] && strcmp(end + 1, "iB") != 0 && strcmp(end + 1, "B") != 0)
			return -1;
		if (x > (UINT64_MAX >> sh))
			return -1;
		x <<= sh;
		end += strlen(end);
	}
	if (*end)
		return -1;
	*v = x;
	return 0;
}

struct hexdump {
	unsigned char prev[16];
	int have_prev, squeezing;
};

static void
hex_line(struct hexdump *h, uint64_t addr, const unsigned char *p, size_t n)
{
	if (n == 16 && h->have_prev && memcmp(p, h->prev, 16) == 0) {
		if (!h->squeezing)
			printf("*\n");
		h->squeezing = 1;
		return;
	}
	h->squeezing = 0;
	if (n == 16) {
		memcpy(h->prev, p, 16);
		h->have_prev = 1;
	}
	char line[100];
	int k = sprintf(line, "%012" PRIx64 " ", addr);
	for (size_t i = 0; i < 16; i++) {
		if (i == 8)
			line[k++] = ' ';
		if (i < n)
			k += sprintf(line + k, " %02x", p[i]);
		else
			k += sprintf(line + k, "   ");
	}
	k += sprintf(line + k, "  |");
	for (size_t i = 0; i < n; i++)
		line[k++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
	line[k++] = '|';
	line[k] = '\0';
	puts(line);
}

int
cmd_dump(struct inspect *in, int argc, char **argv)
{
	if (argc != 3)
		return bad_args();
	uint32_t seg;
	int rc = resolve(in, argv[0], &seg);
	if (rc)
		return rc;
	uint64_t addr, len, end;
	if (parse_num(argv[1], 0, &addr) < 0)
		return fail(EXIT_USAGE, "bad address '%s': expected 0xHEX or a decimal number",
			argv[1]);
	if (parse_num(argv[2], 1, &len) < 0)
		return fail(EXIT_USAGE, "bad length '%s': expected a number, optionally with "
			"K, M or G", argv[2]);
	const struct cat_entry *e = &in->cat.e[seg];
	if (e->state == CAT_FREE)
		return fail(EXIT_DAMAGED, "segment %u is free: it holds no heap", seg);
	uint64_t lo = in->hdr.base, hi = in->hdr.base + in->hdr.seg_size;
	if (addr < lo || addr >= hi || add_overflows(addr, len, &end) || end > hi)
		return fail(EXIT_USAGE, "range 0x%" PRIx64 " + %" PRIu64 " is outside the heap "
			"[0x%" PRIx64 ", 0x%" PRIx64 ") of segment %u", addr, len, lo, hi, seg);
	uint64_t off = addr - lo;
	if (e->state == CAT_CKPT && end - lo > e->used && !json)
		fprintf(stderr, "ckpt-inspect: note: bytes past 0x%" PRIx64 " (the checkpoint's "
			"high-water mark) were never written by the heap\n", lo + e->used);
	/* a sealed checkpoint is decrypted whole (every chunk authenticated);
	 * a cow heap is its base with its persisted pages over it */
	void *plain = NULL;
	size_t plain_len = 0;
	if (((e->state == CAT_CKPT && (e->flags & CAT_F_SEALED)) || inspect_is_cow_heap(in, seg)) &&
	    inspect_read_heap(in, seg, &plain, &plain_len, NULL, NULL) < 0)
		return fail(EXIT_DAMAGED, "%s", ckpt_errormsg());
	unsigned char chunk[65536];
	struct hexdump h = { .have_prev = 0 };
	uint64_t done = 0;
	if (json)
		printf("{\"segment\":%u,\"address\":\"0x%" PRIx64 "\",\"length\":%" PRIu64
			",\"data\":\"", seg, addr, len);
	while (done < len) {
		size_t c = len - done < sizeof(chunk) ? (size_t)(len - done) : sizeof(chunk);
		if (plain) {
			/* past the image: never written by the heap, zeros */
			uint64_t at = off + done;
			size_t have = at < plain_len ? plain_len - (size_t)at : 0;
			memset(chunk, 0, c);
			memcpy(chunk, (char *)plain + (at < plain_len ? at : 0), have < c ? have : c);
		} else if (inspect_read(in, seg, off + done, chunk, c) < 0) {
			if (json)
				printf("\",\"error\":");
			else
				fflush(stdout);
			if (json) {
				json_string(ckpt_errormsg());
				printf("}\n");
			}
			fprintf(stderr, "ckpt-inspect: %s\n", ckpt_errormsg());
			return EXIT_DAMAGED;
		}
		if (json) {
			for (size_t i = 0; i < c; i++)
				printf("%02x", chunk[i]);
		} else {
			for (size_t i = 0; i < c; i += 16)
				hex_line(&h, addr + done + i, chunk + i, c - i < 16 ? c - i : 16);
		}
		done += c;
		if (show_progress && len > ((uint64_t)64 << 20))
			progress(NULL, "dump", done, len);
	}
	inspect_free_heap(plain, plain_len);
	if (json)
		printf("\",\"error\":null}\n");
	else if (len)
		printf("%012" PRIx64 "\n", addr + len);
	return 0;
}

/* -- verify ----------------------------------------------------------------- */

static const char *sev_names[] = { "error", "warning", "note" };

struct vout {
	unsigned n;
};

static void
on_finding(void *arg, const struct inspect_finding *f)
{
	struct vout *o = arg;
	if (show_progress)
		fprintf(stderr, "\r\033[K");
	if (json) {
		printf("%s{\"severity\":\"%s\",\"where\":", o->n ? "," : "", sev_names[f->severity]);
		json_string(f->where);
		printf(",\"segment\":");
		if (f->segment < 0)
			printf("null");
		else
			printf("%" PRId64, f->segment);
		printf(",\"offset\":");
		if (f->offset == UINT64_MAX)
			printf("null");
		else
			printf("%" PRIu64, f->offset);
		printf(",\"message\":");
		json_string(f->message);
		printf("}");
	} else {
		printf("%-8s %s", sev_names[f->severity], f->where);
		if (f->offset != UINT64_MAX)
			printf(" (file offset 0x%" PRIx64 ")", f->offset);
		printf(": %s\n", f->message);
	}
	fflush(stdout);
	o->n++;
}

int
cmd_verify(struct inspect *in, int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return bad_args();
	struct vout o = { 0 };
	struct inspect_verify_result r;
	unsigned flags = (strict ? INSPECT_VERIFY_STRICT : 0) |
		(no_heaps ? INSPECT_VERIFY_NO_HEAPS : 0);
	if (json)
		printf("{\"pool\":");
	if (json) {
		json_string(pool_path);
		printf(",\"findings\":[");
	}
	int errs;
	if (!in) {
		errs = inspect_verify_path(pool_path, flags, on_finding, &o, &r);
	} else {
		errs = inspect_verify(in, flags, on_finding, &o,
				show_progress ? progress : NULL, NULL, &r);
	}
	progress_done();
	if (errs < 0)
		return fail(EXIT_DAMAGED, "verify could not run: %s", ckpt_errormsg());
	if (json) {
		printf("],\"ok\":%s,\"errors\":%u,\"warnings\":%u,\"notes\":%u,"
			"\"checkpoints_verified\":%u,\"heaps_walked\":%u,\"skipped\":%u}\n",
			r.errors ? "false" : "true", r.errors, r.warnings, r.notes,
			r.checkpoints_verified, r.segments_walked, r.skipped);
	} else {
		printf("%s: %u error%s, %u warning%s; %u checkpoint%s verified, %u heap%s "
			"walked%s\n", r.errors ? "DAMAGED" : "ok", r.errors, r.errors == 1 ? "" : "s",
			r.warnings, r.warnings == 1 ? "" : "s", r.checkpoints_verified,
			r.checkpoints_verified == 1 ? "" : "s", r.segments_walked,
			r.segments_walked == 1 ? "" : "s", r.skipped ? " (some changed under us)" : "");
	}
	return r.errors ? EXIT_DAMAGED : 0;
}
