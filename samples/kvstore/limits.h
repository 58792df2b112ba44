/*
 * limits.h -- kvstore's limits on clients, in Redis's terms:
 *
 *  - maxclients: at most this many connected clients; one more is told
 *    "-ERR max number of clients reached" and closed. At start the limit on
 *    open files is raised to maxclients + 32 if it can be, else maxclients
 *    is lowered to fit (as Redis does), with a warning.
 *  - the file-descriptor limit itself (EMFILE/ENFILE from accept, when
 *    something else holds descriptors): a reserve descriptor is closed to
 *    accept the pending connection, which gets the same error and is
 *    closed (libuv's and nginx's trick); when even that fails, the
 *    listening sockets leave the epoll set until a client leaves or the
 *    next timer tick. The loop never spins on a readable listener it cannot
 *    accept from.
 *  - client-output-buffer-limit: the replies pending for one client, also
 *    within one command (an MGET stops building its reply once over); the
 *    client is closed once over.
 *  - client-query-buffer-limit (one client) and client-query-buffer-total
 *    (all clients): unparsed request bytes; over the total, the client
 *    with the largest query buffer is closed.
 *
 * Owns the reserve descriptor and the accounting of query buffers.
 */
#ifndef KV_LIMITS_H
#define KV_LIMITS_H

struct client;

#define LIMITS_RESERVED_FDS 32          /* descriptors kept beyond maxclients (Redis: 32) */

#define ERR_MAXCLIENTS "-ERR max number of clients reached\r\n"

/*
 * limits_init -- fit maxclients and the open-files limit to each other,
 * open the reserve descriptor; 0, or -1 (logged) when no client would fit
 */
int limits_init(void);

/*
 * limits_turn_away -- accept on lfd failed with EMFILE/ENFILE: accept one
 * pending connection with the reserve descriptor, refuse it, close it.
 * 1: one was turned away (try again); 0: none was pending; -1: no
 * descriptor even so (stop watching the listeners for a while)
 */
int limits_turn_away(int lfd);

/* limits_refuse -- write an error line to a new connection (best effort), close it */
void limits_refuse(int fd, const char *msg);

/* limits_track_query -- bring server.qbuf_total up to date with c's query buffer */
void limits_track_query(struct client *c);

/*
 * limits_query_victim -- when the query buffers of all clients hold more
 * than client-query-buffer-total, the client to close (the one holding the
 * most, not yet closing); else NULL
 */
struct client *limits_query_victim(void);

/* limits_close_in_child -- a forked child does not keep the reserve descriptor */
void limits_close_in_child(void);

#endif /* KV_LIMITS_H */
