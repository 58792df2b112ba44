/*
 * log.c -- kvstore's log lines (see log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

void
kv_log(char level, const char *fmt, ...)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	localtime_r(&tv.tv_sec, &tm);
	char when[64];
	strftime(when, sizeof(when), "%d %b %Y %H:%M:%S", &tm);
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%d:M %s.%03d %c %s\n", (int)getpid(), when,
		(int)(tv.tv_usec / 1000), level, msg);
}
