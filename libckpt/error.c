/*
 * error.c -- the per-thread "last failure" message behind ckpt_errormsg().
 *
 * Each thread keeps one fixed buffer; setting a message never allocates, so
 * it is safe in fork handlers and on out-of-memory paths.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "libckpt.h"
#include "internal.h"

static __thread char errmsg[CKPT_ERRMSG_MAX];

int
ckpt_err_set(int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	errno = errnum;
	return -1;
}

void
ckpt_err_prefix(const char *fmt, ...)
{
	int saved = errno;
	char old[CKPT_ERRMSG_MAX];
	memcpy(old, errmsg, sizeof(old));
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(errmsg))
		snprintf(errmsg + n, sizeof(errmsg) - (size_t)n, "%s", old);
	errno = saved;
}

void
ckpt_err_clear(void)
{
	errmsg[0] = '\0';
}

CKPT_EXPORT const char *
ckpt_errormsg(void)
{
	return errmsg;
}
