/*
 * auth.c -- requirepass and protected mode (see auth.h).
 *
 * The password compare runs over AUTH_MAX_PASSWORD bytes whatever the
 * lengths (as Redis's time_independent_strcmp did), so its time tells a
 * client nothing about how much of a guess was right.
 */
#include <netinet/in.h>
#include <string.h>

#include "auth.h"
#include "server.h"

int
auth_password_ok(const char *p, size_t n)
{
	const char *pw = server.opt.requirepass;
	size_t pwlen = pw ? strlen(pw) : 0;
	unsigned char a[AUTH_MAX_PASSWORD], b[AUTH_MAX_PASSWORD];
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memcpy(a, p, n < sizeof(a) ? n : sizeof(a));
	if (pw)
		memcpy(b, pw, pwlen < sizeof(b) ? pwlen : sizeof(b));
	unsigned diff = 0;
	for (size_t i = 0; i < sizeof(a); i++)
		diff |= a[i] ^ b[i];
	diff |= (unsigned)(n != pwlen);         /* both at most 512: a and b hold all of them */
	diff |= (unsigned)(n > sizeof(a));
	return pw && diff == 0;
}

int
auth_peer_denied(const struct sockaddr *sa, socklen_t len)
{
	if (!server.opt.protected_mode || server.opt.requirepass)
		return 0;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) != 127;       /* 127.0.0.0/8 */
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6))
		return !IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return sa->sa_family != AF_UNIX;
}

const char *
auth_denied_message(void)
{
	return "-DENIED kvstore is running in protected mode because protected mode is "
		"enabled and no password is set for the default user. In this mode "
		"connections are only accepted from the loopback interface. If you want "
		"to connect from external computers to kvstore you may adopt one of the "
		"following solutions: 1) Restart it with the '--protected-mode no' option, "
		"however MAKE SURE kvstore is not publicly accessible from the internet if "
		"you do so. 2) Set up an authentication password for the default user "
		"(--requirepass). NOTE: You only need to do one of the above things in "
		"order for the server to start accepting connections from the outside.\r\n";
}
