/*
 * resp.h -- the Redis protocol (RESP2) as kvstore speaks it: an incremental
 * request parser (multibulk requests as redis-cli and redis-benchmark send
 * them, and inline commands typed into nc/telnet) and reply encoders.
 *
 * Owns a connection's query buffer and reply buffer (ordinary DRAM: only the
 * dataset lives in the pool). Hostile input is bounded: a request larger
 * than the limits below is a protocol error, answered with an error reply
 * after which the server closes the connection.
 */
#ifndef KV_RESP_H
#define KV_RESP_H

#include <stddef.h>
#include <stdint.h>

#define RESP_MAX_BULK      (512L << 20)      /* one argument (Redis: proto-max-bulk-len) */
#define RESP_MAX_MULTIBULK (1024L * 1024)    /* arguments of one request */
#define RESP_MAX_INLINE    (64 << 10)        /* one inline request line */

/* resp_arg -- one argument: a range of the query buffer */
struct resp_arg {
	size_t off;             /* from the start of the request */
	size_t len;
};

/* resp_in -- a connection's query buffer and the parse state of its next request */
struct resp_in {
	char *buf;
	size_t len, cap;        /* bytes read / allocated */
	size_t start;           /* first byte of the request being parsed */
	size_t pos;             /* parse position */
	long mbulk;             /* arguments still to come; 0: no request started */
	long bulklen;           /* length of the bulk being read; -1: its header */
	int argc, argv_cap;
	struct resp_arg *argv;
};

enum resp_status {
	RESP_NEED_MORE = 0,     /* no complete request yet: read more */
	RESP_REQUEST = 1,       /* argc/argv hold a request */
	RESP_ERROR = -1,        /* protocol error: reply with the message, close */
};

/*
 * resp_parse -- parse the next request from the buffer. On RESP_ERROR,
 * *err is the message (without "-ERR ").
 */
enum resp_status resp_parse(struct resp_in *in, const char **err);

/* resp_argp -- pointer to argument i of the current request */
static inline const char *
resp_argp(const struct resp_in *in, int i)
{
	return in->buf + in->start + in->argv[i].off;
}

/* resp_consume -- the current request is done: move on to the next */
void resp_consume(struct resp_in *in);

/*
 * resp_read_space -- make room for at least min more bytes at buf + len
 * (drops consumed requests first); 0, or -1 when out of memory
 */
int resp_read_space(struct resp_in *in, size_t min);

/* resp_in_free -- release the buffers */
void resp_in_free(struct resp_in *in);

/* resp_out -- a connection's reply buffer: replies not yet written */
struct resp_out {
	char *buf;
	size_t len, cap;
	size_t sent;            /* bytes of buf already written to the socket */
	size_t limit;           /* most bytes pending at once; 0: no limit */
	int oom;                /* an append failed: the connection must close */
	int over;               /* an append would have passed limit: likewise */
};

void resp_status(struct resp_out *o, const char *s);           /* +s */
void resp_error(struct resp_out *o, const char *fmt, ...)      /* -fmt (give "ERR ...") */
	__attribute__((format(printf, 2, 3)));
void resp_int(struct resp_out *o, long long v);                 /* :v */
void resp_bulk(struct resp_out *o, const char *p, size_t n);    /* $n p */
void resp_bulkstr(struct resp_out *o, const char *s);
void resp_null(struct resp_out *o);                             /* $-1 */
void resp_array(struct resp_out *o, long n);                    /* *n, then n replies */
void resp_out_free(struct resp_out *o);

/*
 * resp_out_failed -- whether the reply buffer refused an append (out of
 * memory, or over its limit): nothing more is appended, the connection is
 * to be closed, and a command building a long reply may stop
 */
static inline int resp_out_failed(const struct resp_out *o) { return o->oom | o->over; }

/* resp_pending -- reply bytes not yet written */
static inline size_t resp_pending(const struct resp_out *o) { return o->len - o->sent; }

#endif /* KV_RESP_H */
