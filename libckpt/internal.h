/*
 * internal.h -- what every file of the library shares: symbol visibility,
 * error reporting, small helpers. Nothing here is exported.
 *
 * Error convention (as PMDK's ERR/errno): a failing internal function calls
 * ckpt_err_set(), which sets errno and the calling thread's one-line message
 * that ckpt_errormsg() returns, then returns -1 or NULL. A caller that adds
 * context prefixes the message with ckpt_err_prefix().
 */
#ifndef CKPT_INTERNAL_H
#define CKPT_INTERNAL_H 1

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <time.h>

#define CKPT_EXPORT __attribute__((visibility("default")))
#define CKPT_HIDDEN __attribute__((visibility("hidden")))

#define CKPT_LIKELY(x) __builtin_expect(!!(x), 1)
#define CKPT_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define CKPT_ERRMSG_MAX 256

/* ckpt_err_set -- set errno to errnum and the thread's message; returns -1 */
CKPT_HIDDEN int ckpt_err_set(int errnum, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ckpt_err_prefix -- prepend context to the thread's current message, keep errno */
CKPT_HIDDEN void ckpt_err_prefix(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* ckpt_err_clear -- forget the thread's message (used by probes that may fail) */
CKPT_HIDDEN void ckpt_err_clear(void);

/* align_up -- round x up to a power-of-two alignment a; the caller checks overflow */
static inline uint64_t
align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* add_overflows -- true if a + b does not fit in uint64_t; *sum set otherwise */
static inline int
add_overflows(uint64_t a, uint64_t b, uint64_t *sum)
{
	return __builtin_add_overflow(a, b, sum);
}

static inline int
mul_overflows(uint64_t a, uint64_t b, uint64_t *prod)
{
	return __builtin_mul_overflow(a, b, prod);
}

/* now_ns -- CLOCK_REALTIME in ns: the time stamps of catalog entries */
static inline uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* mono_ns -- CLOCK_MONOTONIC in ns: ages, deadlines and timeouts */
static inline uint64_t
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif /* CKPT_INTERNAL_H */
