/*
 * auth.h -- who may use kvstore, in Redis's terms: requirepass (a client
 * runs nothing but AUTH and QUIT until it gives the password: -NOAUTH),
 * and protected mode (with no requirepass, a TCP client from anywhere but
 * the loopback interface is refused with Redis's -DENIED message and
 * closed; Unix-socket clients are local and always accepted).
 *
 * Owns nothing: the password is server.opt.requirepass.
 */
#ifndef KV_AUTH_H
#define KV_AUTH_H

#include <stddef.h>
#include <sys/socket.h>

#define AUTH_MAX_PASSWORD 512   /* longer requirepass is refused at start */

#define ERR_NOAUTH "NOAUTH Authentication required."
#define ERR_WRONGPASS "WRONGPASS invalid username-password pair or user is disabled."

/*
 * auth_password_ok -- whether p (n bytes) is requirepass; the time it
 * takes does not depend on either's contents or length
 */
int auth_password_ok(const char *p, size_t n);

/* auth_peer_denied -- protected mode refuses a TCP client from this address */
int auth_peer_denied(const struct sockaddr *sa, socklen_t len);

/* auth_denied_message -- the -DENIED line a refused client gets, with CRLF */
const char *auth_denied_message(void);

#endif /* KV_AUTH_H */
