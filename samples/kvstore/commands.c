/*
 * commands.c -- kvstore's commands: the table of names and arities and
 * one function per command. Each runs to completion between two requests
 * (the server is single-threaded), so the dataset is consistent whenever a
 * checkpoint or the fork of BGSAVE happens.
 *
 * Data: PING ECHO GET MGET SET MSET DEL EXISTS DBSIZE FLUSHALL/FLUSHDB.
 * Persistence: SAVE BGSAVE LASTSAVE SHUTDOWN. Introspection: INFO.
 * Access: AUTH (with --requirepass, a client runs nothing else until it
 * has authenticated, but QUIT). Stubs the stock tools send: COMMAND,
 * CONFIG GET, SELECT 0, CLIENT, QUIT.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth.h"
#include "commands.h"
#include "log.h"
#include "server.h"

#define KVSTORE_VERSION "0.1.0"

/* arg_is -- whether argument i equals s, ignoring case */
static int
arg_is(struct client *c, int i, const char *s)
{
	size_t n = strlen(s);
	return c->in.argv[i].len == n && strncasecmp(resp_argp(&c->in, i), s, n) == 0;
}

static struct kv_dict *
dict(void)
{
	return &server.store.root->dict;
}

static void
cmd_ping(struct client *c)
{
	if (c->in.argc == 2)
		resp_bulk(&c->out, resp_argp(&c->in, 1), c->in.argv[1].len);
	else
		resp_status(&c->out, "PONG");
}

static void
cmd_echo(struct client *c)
{
	resp_bulk(&c->out, resp_argp(&c->in, 1), c->in.argv[1].len);
}

static void
cmd_get(struct client *c)
{
	struct kv_entry *e = dict_find(server.store.pool, dict(), resp_argp(&c->in, 1),
			c->in.argv[1].len);
	if (e)
		resp_bulk(&c->out, kv_val(e), e->vlen);
	else
		resp_null(&c->out);
}

static void
cmd_mget(struct client *c)
{
	resp_array(&c->out, c->in.argc - 1);
	/* over client-output-buffer-limit, stop: the client is closed */
	for (int i = 1; i < c->in.argc && !resp_out_failed(&c->out); i++) {
		struct kv_entry *e = dict_find(server.store.pool, dict(), resp_argp(&c->in, i),
				c->in.argv[i].len);
		if (e)
			resp_bulk(&c->out, kv_val(e), e->vlen);
		else
			resp_null(&c->out);
	}
}

static void
cmd_set(struct client *c)
{
	if (c->in.argc != 3) {  /* EX, NX, ... are not supported */
		resp_error(&c->out, "ERR syntax error");
		return;
	}
	if (dict_set(server.store.pool, dict(), resp_argp(&c->in, 1), c->in.argv[1].len,
			resp_argp(&c->in, 2), c->in.argv[2].len) < 0) {
		if (errno == E2BIG)
			resp_error(&c->out, "ERR string exceeds maximum allowed size");
		else
			resp_error(&c->out, "OOM command not allowed: the heap is full (%s)",
				ckpt_errormsg());
		return;
	}
	server.store.dirty++;
	resp_status(&c->out, "OK");
}

/*
 * cmd_mset -- MSET key value [key value ...]. When the heap fills midway,
 * the pairs before the one that failed stay set (the reply says OOM).
 */
static void
cmd_mset(struct client *c)
{
	if (c->in.argc % 2 == 0) {
		resp_error(&c->out, "ERR wrong number of arguments for 'mset' command");
		return;
	}
	for (int i = 1; i < c->in.argc; i += 2) {
		if (dict_set(server.store.pool, dict(), resp_argp(&c->in, i), c->in.argv[i].len,
				resp_argp(&c->in, i + 1), c->in.argv[i + 1].len) < 0) {
			if (errno == E2BIG)
				resp_error(&c->out, "ERR string exceeds maximum allowed size");
			else
				resp_error(&c->out, "OOM command not allowed: the heap is full (%s)",
					ckpt_errormsg());
			return;
		}
		server.store.dirty++;
	}
	resp_status(&c->out, "OK");
}

static void
cmd_del(struct client *c)
{
	long long n = 0;
	for (int i = 1; i < c->in.argc; i++)
		n += dict_delete(server.store.pool, dict(), resp_argp(&c->in, i), c->in.argv[i].len);
	server.store.dirty += (uint64_t)n;
	resp_int(&c->out, n);
}

static void
cmd_exists(struct client *c)
{
	long long n = 0;
	for (int i = 1; i < c->in.argc; i++)
		n += dict_find(server.store.pool, dict(), resp_argp(&c->in, i),
				c->in.argv[i].len) != NULL;
	resp_int(&c->out, n);
}

static void
cmd_dbsize(struct client *c)
{
	resp_int(&c->out, (long long)dict_size(dict()));
}

static void
cmd_flushall(struct client *c)
{
	server.store.dirty += dict_size(dict()) + 1;
	dict_clear(server.store.pool, dict());
	resp_status(&c->out, "OK");
}

static void
cmd_save(struct client *c)
{
	if (server.store.bg_pid) {
		resp_error(&c->out, "ERR Background save already in progress");
		return;
	}
	if (store_save(&server.store, "SAVE") < 0)
		resp_error(&c->out, "ERR checkpoint failed: %s", server.store.last_error);
	else
		resp_status(&c->out, "OK");
}

static void
cmd_bgsave(struct client *c)
{
	if (c->in.argc > 1 && !arg_is(c, 1, "SCHEDULE")) {
		resp_error(&c->out, "ERR syntax error");
		return;
	}
	if (store_bgsave(&server.store, "BGSAVE") < 0) {
		if (errno == EBUSY)
			resp_error(&c->out, "ERR Background save already in progress");
		else
			resp_error(&c->out, "ERR background checkpoint failed: %s",
				server.store.last_error);
		return;
	}
	resp_status(&c->out, "Background saving started");
}

static void
cmd_lastsave(struct client *c)
{
	resp_int(&c->out, server.store.last_save_time);
}

static void
cmd_shutdown(struct client *c)
{
	int save = 1;
	if (c->in.argc > 1) {
		if (arg_is(c, 1, "NOSAVE"))
			save = 0;
		else if (!arg_is(c, 1, "SAVE")) {
			resp_error(&c->out, "ERR syntax error");
			return;
		}
	}
	server.shutdown = 1;
	server.shutdown_save = save;
	c->close_after_reply = 1;
}

/* cmd_auth -- AUTH password, or AUTH default password (the one user there is) */
static void
cmd_auth(struct client *c)
{
	if (c->in.argc > 3) {
		resp_error(&c->out, "ERR syntax error");
		return;
	}
	if (!server.opt.requirepass) {
		resp_error(&c->out, "ERR AUTH <password> called without any password configured "
			"for the default user. Are you sure your configuration is correct?");
		return;
	}
	int pw = c->in.argc - 1;
	int ok = auth_password_ok(resp_argp(&c->in, pw), c->in.argv[pw].len);
	if (c->in.argc == 3 && !arg_is(c, 1, "default"))
		ok = 0;
	if (!ok) {
		resp_error(&c->out, ERR_WRONGPASS);
		return;
	}
	c->authenticated = 1;
	resp_status(&c->out, "OK");
}

static void
cmd_quit(struct client *c)
{
	resp_status(&c->out, "OK");
	c->close_after_reply = 1;
}

static void
cmd_select(struct client *c)
{
	if (arg_is(c, 1, "0"))
		resp_status(&c->out, "OK");
	else
		resp_error(&c->out, "ERR DB index is out of range");
}

/* cmd_command -- COMMAND [COUNT|DOCS|INFO ...]: redis-cli asks, an empty answer will do */
static void
cmd_command(struct client *c)
{
	if (c->in.argc > 1 && arg_is(c, 1, "COUNT"))
		resp_int(&c->out, (long long)commands_count());
	else
		resp_array(&c->out, 0);
}

/*
 * cmd_config -- CONFIG GET: redis-benchmark asks for "save" and
 * "appendonly" to print them; CONFIG SET/RESETSTAT are accepted and ignored
 */
static void
cmd_config(struct client *c)
{
	if (arg_is(c, 1, "GET") && c->in.argc == 3) {
		char maxclients[24], obuf[64], qbuf[24], qtotal[24], perm[16];
		snprintf(maxclients, sizeof(maxclients), "%ld", server.opt.maxclients);
		snprintf(obuf, sizeof(obuf), "normal %zu 0 0", server.opt.obuf_limit);
		snprintf(qbuf, sizeof(qbuf), "%zu", server.opt.qbuf_limit);
		snprintf(qtotal, sizeof(qtotal), "%zu", server.opt.qbuf_total);
		snprintf(perm, sizeof(perm), "%o", server.opt.unixsocketperm < 0 ? 0 :
			(unsigned)server.opt.unixsocketperm);
		const char *const params[][2] = {
			{ "save", "" },
			{ "appendonly", "no" },
			{ "databases", "1" },
			{ "maxclients", maxclients },
			{ "client-output-buffer-limit", obuf },
			{ "client-query-buffer-limit", qbuf },
			{ "client-query-buffer-total", qtotal },
			{ "protected-mode", server.opt.protected_mode ? "yes" : "no" },
			{ "unixsocketperm", perm },
		};
		const char *pat = resp_argp(&c->in, 2);
		size_t plen = c->in.argv[2].len;
		long n = 0;
		int all = plen == 1 && pat[0] == '*';
		for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
			n += all || (strlen(params[i][0]) == plen &&
					strncasecmp(params[i][0], pat, plen) == 0);
		resp_array(&c->out, n * 2);
		for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
			if (all || (strlen(params[i][0]) == plen &&
					strncasecmp(params[i][0], pat, plen) == 0)) {
				resp_bulkstr(&c->out, params[i][0]);
				resp_bulkstr(&c->out, params[i][1]);
			}
	} else if (arg_is(c, 1, "SET") || arg_is(c, 1, "RESETSTAT")) {
		resp_status(&c->out, "OK");
	} else {
		resp_error(&c->out, "ERR unknown CONFIG subcommand or wrong number of arguments");
	}
}

static void
cmd_client(struct client *c)
{
	if (arg_is(c, 1, "ID"))
		resp_int(&c->out, c->fd);
	else
		resp_status(&c->out, "OK");
}

/* info_section -- whether INFO's argument asks for section name */
static int
info_section(struct client *c, const char *name)
{
	if (c->in.argc < 2 || arg_is(c, 1, "all") || arg_is(c, 1, "everything") ||
	    arg_is(c, 1, "default"))
		return 1;
	for (int i = 1; i < c->in.argc; i++)
		if (arg_is(c, i, name))
			return 1;
	return 0;
}

static void
cmd_info(struct client *c)
{
	struct store *st = &server.store;
	char buf[4096];
	size_t n = 0;
#define ADD(...) do { \
		int k_ = snprintf(buf + n, sizeof(buf) - n, __VA_ARGS__); \
		if (k_ > 0) n += (size_t)k_ < sizeof(buf) - n ? (size_t)k_ : sizeof(buf) - n - 1; \
	} while (0)
	int64_t now = now_us();
	if (info_section(c, "server")) {
		ADD("# Server\r\nredis_version:7.0.0\r\nkvstore_version:%s\r\n"
		    "redis_mode:standalone\r\nmultiplexing_api:epoll\r\nprocess_id:%d\r\n"
		    "tcp_port:%d\r\nuptime_in_seconds:%lld\r\npool:%s\r\nheap_size:%zu\r\n\r\n",
		    KVSTORE_VERSION, (int)getpid(), server.opt.port,
		    (long long)((now - server.start_us) / 1000000), st->path, st->heap_size);
	}
	if (info_section(c, "clients"))
		ADD("# Clients\r\nconnected_clients:%ld\r\nmaxclients:%ld\r\n"
		    "total_query_buffers:%zu\r\n\r\n",
		    server.nclients, server.opt.maxclients, server.qbuf_total);
	if (info_section(c, "persistence")) {
		ADD("# Persistence\r\nloading:0\r\n"
		    "restarted_from_checkpoint:%d\r\nlast_restart_time:%lld\r\n"
		    "last_restart_ms:%.3f\r\nlast_restart_keys:%llu\r\n"
		    "checkpoints_taken:%llu\r\nlast_checkpoint_id:%llu\r\n"
		    "last_checkpoint_ms:%.3f\r\ncheckpoint_every_seconds:%d\r\n"
		    "rdb_changes_since_last_save:%llu\r\nrdb_bgsave_in_progress:%d\r\n"
		    "rdb_last_save_time:%lld\r\nrdb_last_bgsave_status:%s\r\n"
		    "latest_fork_usec:%lld\r\n\r\n",
		    st->restarted, (long long)st->restart_time, st->restart_ms,
		    (unsigned long long)st->restart_keys, (unsigned long long)st->checkpoints,
		    (unsigned long long)st->last_id, st->last_save_ms,
		    server.opt.checkpoint_every, (unsigned long long)st->dirty,
		    st->bg_pid != 0, (long long)st->last_save_time,
		    st->last_status_ok ? "ok" : "err", st->latest_fork_usec);
	}
	if (info_section(c, "stats"))
		ADD("# Stats\r\ntotal_connections_received:%llu\r\n"
		    "total_commands_processed:%llu\r\nrejected_connections:%llu\r\n"
		    "client_query_buffer_limit_disconnections:%llu\r\n"
		    "client_output_buffer_limit_disconnections:%llu\r\n"
		    "eventloop_cycles:%llu\r\n\r\n",
		    (unsigned long long)server.total_connections,
		    (unsigned long long)server.total_commands,
		    (unsigned long long)server.rejected_connections,
		    (unsigned long long)server.qbuf_disconnections,
		    (unsigned long long)server.obuf_disconnections,
		    (unsigned long long)server.eventloop_cycles);
	if (info_section(c, "keyspace")) {
		const struct kv_dict *d = dict();
		ADD("# Keyspace\r\n");
		if (dict_size(d))
			ADD("db0:keys=%llu,expires=0,avg_ttl=0\r\n",
			    (unsigned long long)dict_size(d));
		ADD("hashtable_buckets:%llu\r\nhashtable_rehashing:%d\r\n",
		    (unsigned long long)(d->ht[0].size + d->ht[1].size), dict_is_rehashing(d));
	}
#undef ADD
	resp_bulk(&c->out, buf, n);
}

/* command -- a name, its arity (Redis's: n exact, -n at least n), its function */
struct command {
	const char *name;
	int arity;
	void (*fn)(struct client *c);
};

static const struct command table[] = {
	{ "ping", -1, cmd_ping },
	{ "echo", 2, cmd_echo },
	{ "get", 2, cmd_get },
	{ "mget", -2, cmd_mget },
	{ "set", -3, cmd_set },
	{ "mset", -3, cmd_mset },
	{ "del", -2, cmd_del },
	{ "unlink", -2, cmd_del },
	{ "exists", -2, cmd_exists },
	{ "dbsize", 1, cmd_dbsize },
	{ "flushall", -1, cmd_flushall },
	{ "flushdb", -1, cmd_flushall },
	{ "info", -1, cmd_info },
	{ "save", 1, cmd_save },
	{ "bgsave", -1, cmd_bgsave },
	{ "lastsave", 1, cmd_lastsave },
	{ "shutdown", -1, cmd_shutdown },
	{ "quit", -1, cmd_quit },
	{ "select", 2, cmd_select },
	{ "command", -1, cmd_command },
	{ "config", -2, cmd_config },
	{ "client", -2, cmd_client },
	{ "auth", -2, cmd_auth },
};

size_t
commands_count(void)
{
	return sizeof(table) / sizeof(table[0]);
}

void
command_run(struct client *c)
{
	server.total_commands++;
	size_t n = c->in.argv[0].len;
	const char *name = resp_argp(&c->in, 0);
	for (size_t i = 0; i < commands_count(); i++) {
		const struct command *cmd = &table[i];
		if (strlen(cmd->name) != n || strncasecmp(cmd->name, name, n) != 0)
			continue;
		if (!c->authenticated && cmd->fn != cmd_auth && cmd->fn != cmd_quit) {
			resp_error(&c->out, ERR_NOAUTH);
			return;
		}
		if ((cmd->arity > 0 && c->in.argc != cmd->arity) ||
		    (cmd->arity < 0 && c->in.argc < -cmd->arity)) {
			resp_error(&c->out, "ERR wrong number of arguments for '%s' command",
				cmd->name);
			return;
		}
		cmd->fn(c);
		return;
	}
	if (!c->authenticated) {        /* the command table is not for strangers */
		resp_error(&c->out, ERR_NOAUTH);
		return;
	}
	/* quote at most 64 printable bytes of the unknown name */
	char shown[65];
	size_t k = n < 64 ? n : 64;
	for (size_t i = 0; i < k; i++)
		shown[i] = name[i] >= ' ' && name[i] < 127 ? name[i] : '?';
	shown[k] = '\0';
	resp_error(&c->out, "ERR unknown command '%s'", shown);
}
