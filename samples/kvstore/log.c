/*
 * log.c -- kvstore's log lines (see log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* vlog -- format one line with its time stamp and write it */
static void
vlog(char level, const char *suffix, const char *fmt, va_list ap)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	localtime_r(&tv.tv_sec, &tm);
	char when[64];
	strftime(when, sizeof(when), "%d %b %Y %H:%M:%S", &tm);
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "%d:M %s.%03d %c %s%s\n", (int)getpid(), when,
		(int)(tv.tv_usec / 1000), level, msg, suffix);
}

void
kv_log(char level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, "", fmt, ap);
	va_end(ap);
}

void
kv_log_limited(struct kv_log_limit *lim, char level, const char *fmt, ...)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	if (now < lim->next_us) {
		lim->skipped++;
		return;
	}
	char suffix[96] = "";
	if (lim->skipped)
		snprintf(suffix, sizeof(suffix), " (and %lu more like this since the last)",
			lim->skipped);
	lim->skipped = 0;
	lim->next_us = now + KV_LOG_INTERVAL_US;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, suffix, fmt, ap);
	va_end(ap);
}
