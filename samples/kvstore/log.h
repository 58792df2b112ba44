/*
 * log.h -- kvstore's log lines, on stderr, in Redis's format
 * ("pid:role dd Mon yyyy hh:mm:ss.mmm * message") so its users read them
 * as they read Redis's.
 */
#ifndef KV_LOG_H
#define KV_LOG_H

/* kv_log -- one log line; level is '*' (notice), '#' (warning) or '.' (debug) */
void kv_log(char level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* KV_LOG_H */
