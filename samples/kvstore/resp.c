/*
 * resp.c -- RESP2 request parsing and reply encoding (see resp.h).
 *
 * The parser is incremental: it remembers how far it got, so a request
 * arriving a few bytes at a time, or a large value arriving over many reads,
 * is scanned once. Arguments are ranges of the query buffer (no copies);
 * they are valid until the next resp_read_space.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

/* -- parsing ---------------------------------------------------------------- */

#define RESP_SKIP 2     /* internal: an empty request was consumed, parse on */

/*
 * parse_num -- a decimal integer in [p, end), optionally negative; 0 or -1
 * (not a number, or more than 18 digits)
 */
static int
parse_num(const char *p, const char *end, long *out)
{
	int neg = 0;
	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	if (p == end || end - p > 18)
		return -1;
	long v = 0;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	*out = neg ? -v : v;
	return 0;
}

/* push_arg -- append an argument range to the current request */
static int
push_arg(struct resp_in *in, size_t off, size_t len)
{
	if (in->argc == in->argv_cap) {
		int cap = in->argv_cap ? in->argv_cap * 2 : 8;
		struct resp_arg *a = realloc(in->argv, (size_t)cap * sizeof(*a));
		if (!a)
			return -1;
		in->argv = a;
		in->argv_cap = cap;
	}
	in->argv[in->argc].off = off - in->start;
	in->argv[in->argc].len = len;
	in->argc++;
	return 0;
}

/*
 * parse_inline -- a request typed as one line of words ("SET k v\r\n");
 * RESP_SKIP for an empty line
 */
static int
parse_inline(struct resp_in *in, const char **err)
{
	char *b = in->buf;
	char *nl = memchr(b + in->pos, '\n', in->len - in->pos);
	if (!nl) {
		if (in->len - in->start > RESP_MAX_INLINE) {
			*err = "Protocol error: too big inline request";
			return RESP_ERROR;
		}
		in->pos = in->len;      /* scanned: no newline yet */
		return RESP_NEED_MORE;
	}
	size_t end = (size_t)(nl - b);
	if (end - in->start > RESP_MAX_INLINE) {
		*err = "Protocol error: too big inline request";
		return RESP_ERROR;
	}
	size_t lineend = end;
	if (lineend > in->start && b[lineend - 1] == '\r')
		lineend--;
	in->argc = 0;
	size_t i = in->start;
	while (i < lineend) {
		while (i < lineend && (b[i] == ' ' || b[i] == '\t'))
			i++;
		if (i == lineend)
			break;
		size_t s = i;
		while (i < lineend && b[i] != ' ' && b[i] != '\t')
			i++;
		if (push_arg(in, s, i - s) < 0) {
			*err = "out of memory";
			return RESP_ERROR;
		}
	}
	in->pos = end + 1;
	if (in->argc == 0) {                    /* empty line: skip it */
		resp_consume(in);
		return RESP_SKIP;
	}
	return RESP_REQUEST;
}

/*
 * header_line -- the "<c><number>\r\n" line at pos: its number, and pos
 * moved past it; RESP_NEED_MORE if the line is incomplete
 */
static enum resp_status
header_line(struct resp_in *in, long *num, const char **err, const char *what)
{
	char *b = in->buf;
	size_t avail = in->len - in->pos;
	char *cr = memchr(b + in->pos, '\r', avail < 32 ? avail : 32);
	if (!cr) {
		if (avail >= 32) {
			*err = what;
			return RESP_ERROR;
		}
		return RESP_NEED_MORE;
	}
	if ((size_t)(cr - b) + 1 >= in->len)
		return RESP_NEED_MORE;          /* the \n is still to come */
	if (cr[1] != '\n' || parse_num(b + in->pos + 1, cr, num) < 0) {
		*err = what;
		return RESP_ERROR;
	}
	in->pos = (size_t)(cr - b) + 2;
	return RESP_REQUEST;
}

/* parse_one -- resp_parse, but RESP_SKIP after an empty request */
static int
parse_one(struct resp_in *in, const char **err)
{
	int st;
	if (in->mbulk == 0) {
		if (in->pos >= in->len)
			return RESP_NEED_MORE;
		if (in->buf[in->start] != '*')
			return parse_inline(in, err);
		long n;
		st = header_line(in, &n, err, "Protocol error: invalid multibulk length");
		if (st != RESP_REQUEST)
			return st;
		if (n > RESP_MAX_MULTIBULK) {
			*err = "Protocol error: invalid multibulk length";
			return RESP_ERROR;
		}
		if (n <= 0) {                   /* "*0" or "*-1": nothing to run */
			resp_consume(in);
			return RESP_SKIP;
		}
		in->mbulk = n;
		in->argc = 0;
		in->bulklen = -1;
	}
	while (in->mbulk > 0) {
		if (in->bulklen < 0) {
			if (in->pos >= in->len)
				return RESP_NEED_MORE;
			if (in->buf[in->pos] != '$') {
				static char msg[64];
				snprintf(msg, sizeof(msg), "Protocol error: expected '$', got '%c'",
					in->buf[in->pos] >= ' ' && in->buf[in->pos] < 127 ?
					in->buf[in->pos] : '?');
				*err = msg;
				return RESP_ERROR;
			}
			long n;
			st = header_line(in, &n, err, "Protocol error: invalid bulk length");
			if (st != RESP_REQUEST)
				return st;
			if (n < 0 || n > RESP_MAX_BULK) {
				*err = "Protocol error: invalid bulk length";
				return RESP_ERROR;
			}
			in->bulklen = n;
		}
		size_t need = (size_t)in->bulklen + 2;
		if (in->len - in->pos < need)
			return RESP_NEED_MORE;
		if (in->buf[in->pos + need - 2] != '\r' || in->buf[in->pos + need - 1] != '\n') {
			*err = "Protocol error: bulk not terminated by CRLF";
			return RESP_ERROR;
		}
		if (push_arg(in, in->pos, (size_t)in->bulklen) < 0) {
			*err = "out of memory";
			return RESP_ERROR;
		}
		in->pos += need;
		in->bulklen = -1;
		in->mbulk--;
	}
	return RESP_REQUEST;
}

enum resp_status
resp_parse(struct resp_in *in, const char **err)
{
	int st;
	while ((st = parse_one(in, err)) == RESP_SKIP)
		;
	return (enum resp_status)st;
}

void
resp_consume(struct resp_in *in)
{
	in->start = in->pos;
	in->mbulk = 0;
	in->bulklen = -1;
	in->argc = 0;
}

int
resp_read_space(struct resp_in *in, size_t min)
{
	if (in->start > 0) {            /* drop consumed requests */
		memmove(in->buf, in->buf + in->start, in->len - in->start);
		in->len -= in->start;
		in->pos -= in->start;
		in->start = 0;
	}
	if (in->len == 0 && in->cap > (1 << 20)) {    /* idle after a big request */
		free(in->buf);
		in->buf = NULL;
		in->cap = 0;
	}
	if (in->cap - in->len >= min)
		return 0;
	size_t cap = in->cap ? in->cap : 16384;
	while (cap - in->len < min)
		cap *= 2;
	char *b = realloc(in->buf, cap);
	if (!b)
		return -1;
	in->buf = b;
	in->cap = cap;
	return 0;
}

void
resp_in_free(struct resp_in *in)
{
	free(in->buf);
	free(in->argv);
	memset(in, 0, sizeof(*in));
}

/* -- replies ---------------------------------------------------------------- */

/*
 * out_append -- append n bytes to the reply buffer; past its limit, mark
 * it over instead (the bytes are not kept: the connection is closed)
 */
static void
out_append(struct resp_out *o, const void *p, size_t n)
{
	if (o->oom || o->over)
		return;
	if (o->limit && resp_pending(o) + n > o->limit) {
		o->over = 1;
		return;
	}
	if (o->cap - o->len < n) {
		if (o->sent > 0) {      /* drop what was written */
			memmove(o->buf, o->buf + o->sent, o->len - o->sent);
			o->len -= o->sent;
			o->sent = 0;
		}
		size_t cap = o->cap ? o->cap : 16384;
		while (cap - o->len < n)
			cap *= 2;
		if (cap != o->cap) {
			char *b = realloc(o->buf, cap);
			if (!b) {
				o->oom = 1;
				return;
			}
			o->buf = b;
			o->cap = cap;
		}
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

/* out_line -- a type byte, a number and CRLF */
static void
out_line(struct resp_out *o, char type, long long v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%c%lld\r\n", type, v);
	out_append(o, tmp, (size_t)n);
}

void
resp_status(struct resp_out *o, const char *s)
{
	out_append(o, "+", 1);
	out_append(o, s, strlen(s));
	out_append(o, "\r\n", 2);
}

void
resp_error(struct resp_out *o, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(tmp))
		n = sizeof(tmp) - 1;
	for (int i = 0; i < n; i++)     /* an error is one line */
		if (tmp[i] == '\r' || tmp[i] == '\n')
			tmp[i] = ' ';
	out_append(o, "-", 1);
	out_append(o, tmp, (size_t)n);
	out_append(o, "\r\n", 2);
}

void
resp_int(struct resp_out *o, long long v)
{
	out_line(o, ':', v);
}

void
resp_bulk(struct resp_out *o, const char *p, size_t n)
{
	out_line(o, '$', (long long)n);
	out_append(o, p, n);
	out_append(o, "\r\n", 2);
}

void
resp_bulkstr(struct resp_out *o, const char *s)
{
	resp_bulk(o, s, strlen(s));
}

void
resp_null(struct resp_out *o)
{
	out_append(o, "$-1\r\n", 5);
}

void
resp_array(struct resp_out *o, long n)
{
	out_line(o, '*', n);
}

void
resp_out_free(struct resp_out *o)
{
	free(o->buf);
	memset(o, 0, sizeof(*o));
}
