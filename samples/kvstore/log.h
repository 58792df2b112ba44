/*
 * log.h -- kvstore's log lines, on stderr, in Redis's format
 * ("pid:role dd Mon yyyy hh:mm:ss.mmm * message") so its users read them
 * as they read Redis's.
 *
 * Lines about events a client can repeat at will (refused connections,
 * clients closed for their limits, accept errors) go through a rate limit:
 * at most one line a second for each kind, and the next line says how many
 * were left out. A flood of such events can never flood the log.
 */
#ifndef KV_LOG_H
#define KV_LOG_H

#include <stdint.h>

/* kv_log -- one log line; level is '*' (notice), '#' (warning) or '.' (debug) */
void kv_log(char level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* kv_log_limit -- the state of one rate-limited kind of line (zero it to start) */
struct kv_log_limit {
	int64_t next_us;        /* monotonic time the next line may be written */
	unsigned long skipped;  /* lines left out since the last one written */
};

#define KV_LOG_INTERVAL_US 1000000      /* one line a second per kind */

/* kv_log_limited -- kv_log, unless a line of this kind was written less than a second ago */
void kv_log_limited(struct kv_log_limit *lim, char level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* KV_LOG_H */
