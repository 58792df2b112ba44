/*
 * commands.h -- kvstore's command table and dispatcher (commands.c).
 */
#ifndef KV_COMMANDS_H
#define KV_COMMANDS_H

#include <stddef.h>

struct client;

/* command_run -- run the client's parsed request, appending its reply */
void command_run(struct client *c);

/* commands_count -- how many commands the table has (COMMAND COUNT) */
size_t commands_count(void);

#endif /* KV_COMMANDS_H */
