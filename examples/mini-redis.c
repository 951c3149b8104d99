/* SPDX-License-Identifier: MIT */
/*
 * mini-redis: a small Redis server on tide's protocols, enough for
 * redis-cli and redis-benchmark's tests of the commands it has.
 *
 * usage: mini-redis [--host H] [--port P] [--threads N] [--idle-timeout S]
 *                   [--request-timeout S] [--max-clients N] [--max-buffered BYTES]
 *                   [--max-query BYTES] [--max-bulk BYTES]
 *
 *   --host H     listen on H (default 127.0.0.1: there is no
 *                authentication, so only this machine, as Redis's
 *                protected mode)
 *   --port P     default 6379, Redis's port (the tutorial has no Redis
 *                example to follow); 0 takes a free port (the "Serving on"
 *                line says which)
 *   --threads N  N loops, one per thread, each with its own listening
 *                socket on the port (SO_REUSEPORT); default 1
 *   --idle-timeout S     a client without traffic for S seconds is closed
 *                (Redis's timeout, which is off by default there);
 *                default 300, 0 never
 *   --request-timeout S  a command must arrive whole within S seconds of
 *                its first byte, or the client is closed (Redis has no
 *                such limit: a client sending a byte a minute is served
 *                forever); default 30, 0 no limit
 *   --max-clients N      clients at once over all threads; more get
 *                "-ERR max number of clients reached" and are closed
 *                (Redis's maxclients); default the fd limit less 32, at
 *                most 10,000
 *   --max-buffered BYTES commands still arriving, over all clients (k, m,
 *                g: KiB, MiB, GiB); a client that needs more is closed;
 *                default 256m
 *   --max-query BYTES    a command still arriving, per client (Redis's
 *                client-query-buffer-limit, 1 GiB there); default 32m
 *   --max-bulk BYTES     one argument (Redis's proto-max-bulk-len, 512 MiB
 *                there); default 8m
 *
 * SIGINT or SIGTERM stops it gracefully: no more accepts, the clients
 * closed, one line on how many connections and commands were served, exit
 * status 0.
 *
 * Commands: PING [msg], ECHO msg, SET key value [NX|XX] [GET]
 * [EX s|PX ms|EXAT t|PXAT t|KEEPTTL], GET, DEL key..., EXISTS key...,
 * INCR, DECR, INCRBY, DECRBY, EXPIRE key s, PEXPIRE key ms, TTL, PTTL,
 * DBSIZE, FLUSHDB, FLUSHALL, SELECT 0, QUIT, and what clients ask at
 * start: CONFIG GET (save, appendonly; redis-benchmark asks for both) and
 * COMMAND (an empty array). Anything else is Redis 7's "-ERR unknown
 * command ...". Values are strings only. Requests are RESP multibulk
 * (what clients send) or inline commands (what you type into nc or
 * telnet, with Redis's quoting), pipelined as deep as the client likes:
 * every complete command in what arrived is answered in one write.
 *
 * The keyspace is one hash table shared by every thread under a mutex
 * (a single-threaded run takes it uncontended). Keys expire twice over, as
 * in Redis: lazily, when a command finds a key past its deadline, and
 * actively, by a tide_call_later timer armed by EXPIRE (or SET EX) on the
 * loop that ran the command. The hard part is that the timer may outlive
 * its expiry: the key can be deleted, set again, or given another
 * deadline (by another thread) before it fires, and handles must not be
 * cancelled from another loop's thread. So each deadline gets a
 * generation number from the store, and a timer only deletes the key when
 * the entry still carries the generation it was armed for; a stale timer
 * does nothing but free itself.
 *
 * Limits: a bulk argument up to --max-bulk, 1,048,576 arguments, an
 * inline command up to 64 KiB (Redis: the same two), --max-query bytes
 * buffered for a command not complete yet, --max-buffered for all of them.
 * A protocol error is answered with "-ERR Protocol error: ..." and the
 * connection closed, as Redis does; past a buffer limit the connection is
 * closed without an answer. Slow clients cannot take the server down: the
 * timeouts cut one that says nothing or sends a command a byte at a time,
 * and past --max-clients new ones are refused rather than left waiting
 * for a descriptor. The parser is resp-parse.c, on its own so that it can
 * be tested and fuzzed; it keeps its place in a command still arriving,
 * so a big one sent in pieces is parsed once.
 */
#define _GNU_SOURCE /* FNM_CASEFOLD */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "net-common.h"
#include "resp-parse.h"
#include "tide.h"

/* What a command may be (--max-bulk; the rest are resp-parse.h's). */
static struct resp_limits limits = { .max_bulk = 8 << 20 };

/* ------------------------------------------------------------ the store -- */

struct entry {
	struct entry *next;  /* in its bucket */
	uint64_t hash;
	uint64_t expire_ns;  /* deadline on tide_loop_now_ns's clock; 0: none */
	uint64_t gen;        /* this deadline's generation (see the top) */
	char *val;
	size_t vlen;
	size_t klen;
	char key[];
};

static struct {
	pthread_mutex_t lock;   /* guards everything here, and every entry */
	struct entry **buckets;
	size_t mask;            /* buckets - 1, a power of two minus one */
	size_t count;
	uint64_t gen;           /* the last generation handed out */
} store = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* FNV-1a. */
static uint64_t hash_key(const char *k, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)k[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* The entry slot for key (where it is, or where it would be linked). */
static struct entry **store_slot(const char *key, size_t klen, uint64_t h)
{
	struct entry **pp;

	if (!store.buckets)
		return NULL;
	for (pp = &store.buckets[h & store.mask]; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->klen == klen && !memcmp((*pp)->key, key, klen))
			break;
	return pp;
}

static void entry_free(struct entry *e)
{
	free(e->val);
	free(e);
}

static void store_unlink(struct entry **pp)
{
	struct entry *e = *pp;

	*pp = e->next;
	store.count--;
	entry_free(e);
}

/* The live entry for key, or NULL; deletes it if it is past its deadline. */
static struct entry *store_lookup(const char *key, size_t klen, uint64_t now)
{
	struct entry **pp = store_slot(key, klen, hash_key(key, klen));

	if (!pp || !*pp)
		return NULL;
	if ((*pp)->expire_ns && (*pp)->expire_ns <= now) {
		store_unlink(pp);
		return NULL;
	}
	return *pp;
}

static int store_grow(void)
{
	size_t n = store.buckets ? (store.mask + 1) * 2 : 1024;
	struct entry **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	if (store.buckets) {
		for (size_t i = 0; i <= store.mask; i++) {
			struct entry *e = store.buckets[i], *next;

			for (; e; e = next) {
				next = e->next;
				e->next = b[e->hash & (n - 1)];
				b[e->hash & (n - 1)] = e;
			}
		}
		free(store.buckets);
	}
	store.buckets = b;
	store.mask = n - 1;
	return 0;
}

/* Sets key's value (a copy), keeping its deadline; the entry, or NULL. */
static struct entry *store_set(const char *key, size_t klen, const char *val, size_t vlen, uint64_t now)
{
	struct entry *e = store_lookup(key, klen, now), **pp;
	char *v = malloc(vlen ? vlen : 1);

	if (!v)
		return NULL;
	memcpy(v, val, vlen);
	if (e) {
		free(e->val);
		e->val = v;
		e->vlen = vlen;
		return e;
	}
	if ((!store.buckets || store.count >= store.mask + 1) && store_grow() < 0 && !store.buckets) {
		free(v);
		return NULL;
	}
	e = malloc(sizeof(*e) + klen);
	if (!e) {
		free(v);
		return NULL;
	}
	e->hash = hash_key(key, klen);
	e->expire_ns = 0;
	e->gen = ++store.gen;
	e->val = v;
	e->vlen = vlen;
	e->klen = klen;
	memcpy(e->key, key, klen);
	pp = &store.buckets[e->hash & store.mask];
	e->next = *pp;
	*pp = e;
	store.count++;
	return e;
}

static int store_delete(const char *key, size_t klen, uint64_t now)
{
	struct entry **pp;

	if (!store_lookup(key, klen, now))
		return 0;
	pp = store_slot(key, klen, hash_key(key, klen));
	store_unlink(pp);
	return 1;
}

static void store_flush(void)
{
	for (size_t i = 0; store.buckets && i <= store.mask; i++) {
		struct entry *e = store.buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			entry_free(e);
		}
		store.buckets[i] = NULL;
	}
	store.count = 0;
}

/* ------------------------------------------------- per loop, per conn -- */

/* A timer armed for one deadline of one key. */
struct expiry {
	struct expiry *prev, *next; /* in its loop's list, to free them at exit */
	struct rworker *w;
	struct tide_handle handle;
	uint64_t gen;               /* the deadline's generation */
	size_t klen;
	char key[];
};

/* What each loop keeps (struct ex_worker's data). */
struct rworker {
	struct tide_loop *loop;
	struct resp_cmd cmd;       /* the command being run (its arguments) */
	struct expiry expiries;    /* list head: the armed timers */
};

/* ------------------------------------------------------------ replies -- */

static void reply_int(struct ex_out *o, long long v)
{
	char b[32];

	ex_out_put(o, b, (size_t)snprintf(b, sizeof(b), ":%lld\r\n", v));
}

static void reply_bulk(struct ex_out *o, const void *p, size_t n)
{
	char b[32];

	ex_out_put(o, b, (size_t)snprintf(b, sizeof(b), "$%zu\r\n", n));
	ex_out_put(o, p, n);
	EX_OUT_LIT(o, "\r\n");
}

static void reply_array(struct ex_out *o, size_t n)
{
	char b[32];

	ex_out_put(o, b, (size_t)snprintf(b, sizeof(b), "*%zu\r\n", n));
}

/* "-ERR ...": msg without the minus; CR and LF become spaces, as Redis. */
static void reply_error(struct ex_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_error(struct ex_out *o, const char *fmt, ...)
{
	char b[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(b))
		n = sizeof(b) - 1;
	for (int i = 0; i < n; i++)
		if (b[i] == '\r' || b[i] == '\n')
			b[i] = ' ';
	EX_OUT_LIT(o, "-");
	ex_out_put(o, b, (size_t)n);
	EX_OUT_LIT(o, "\r\n");
}

#define NOT_INTEGER "ERR value is not an integer or out of range"

/* --------------------------------------------------------------- expiry -- */

static void expiry_fire(void *arg);

/* Arms a timer for e's current deadline, on w's loop. Store lock held. */
static void expiry_arm(struct rworker *w, const struct entry *e, uint64_t now)
{
	struct expiry *x = malloc(sizeof(*x) + e->klen);

	if (!x)
		return; /* the key still expires lazily */
	x->w = w;
	x->gen = e->gen;
	x->klen = e->klen;
	memcpy(x->key, e->key, e->klen);
	if (tide_call_later(w->loop, (double)(e->expire_ns - now) / 1e9, expiry_fire, x, &x->handle) < 0) {
		free(x);
		return;
	}
	x->next = w->expiries.next;
	x->prev = &w->expiries;
	x->next->prev = x;
	w->expiries.next = x;
}

static void expiry_fire(void *arg)
{
	struct expiry *x = arg;
	struct rworker *w = x->w;
	uint64_t now = tide_loop_now_ns(w->loop);
	struct entry **pp;

	pthread_mutex_lock(&store.lock);
	pp = store_slot(x->key, x->klen, hash_key(x->key, x->klen));
	if (pp && *pp && (*pp)->gen == x->gen && (*pp)->expire_ns) {
		if ((*pp)->expire_ns <= now) {
			store_unlink(pp);
		} else if (tide_call_later(w->loop, (double)((*pp)->expire_ns - now) / 1e9, expiry_fire, x,
					   &x->handle) == 0) {
			/* Early by the clock's rounding: again for the rest. */
			pthread_mutex_unlock(&store.lock);
			return;
		}
	}
	pthread_mutex_unlock(&store.lock);
	x->prev->next = x->next;
	x->next->prev = x->prev;
	free(x);
}

/* Gives e the deadline now + ms (ms > 0), or none (ms 0). Store lock held. */
static void set_deadline(struct rworker *w, struct entry *e, uint64_t now, long long ms)
{
	e->gen = ++store.gen; /* any timer armed before is stale now */
	if (ms <= 0) {
		e->expire_ns = 0;
		return;
	}
	e->expire_ns = now + (uint64_t)ms * 1000000;
	expiry_arm(w, e, now);
}

/* ------------------------------------------------------------ commands -- */

static uint64_t now_ns(struct rworker *w)
{
	return tide_loop_now_ns(w->loop);
}

static int is(const struct resp_arg *a, const char *s)
{
	return a->n == strlen(s) && !strncasecmp(a->p, s, a->n);
}

static void cmd_ping(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	if (argc == 1)
		EX_OUT_LIT(c->out, "+PONG\r\n");
	else
		reply_bulk(c->out, argv[1].p, argv[1].n);
}

static void cmd_echo(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	reply_bulk(c->out, argv[1].p, argv[1].n);
}

static void cmd_get(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	struct entry *e;

	pthread_mutex_lock(&store.lock);
	e = store_lookup(argv[1].p, argv[1].n, now_ns(c->w));
	if (e)
		reply_bulk(c->out, e->val, e->vlen);
	else
		EX_OUT_LIT(c->out, "$-1\r\n");
	pthread_mutex_unlock(&store.lock);
}

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL] */
static void cmd_set(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	struct rworker *w = c->w;
	int nx = 0, xx = 0, get = 0, keepttl = 0, expire = 0; /* expire: 1 relative, 2 absolute */
	long long ms = 0;
	uint64_t now = now_ns(w);
	struct entry *e;

	for (int i = 3; i < argc; i++) {
		long long v, unit = 1;

		if (is(&argv[i], "NX") && !xx) {
			nx = 1;
		} else if (is(&argv[i], "XX") && !nx) {
			xx = 1;
		} else if (is(&argv[i], "GET")) {
			get = 1;
		} else if (is(&argv[i], "KEEPTTL") && !expire) {
			keepttl = 1;
		} else if ((is(&argv[i], "EX") || is(&argv[i], "PX") || is(&argv[i], "EXAT") ||
			    is(&argv[i], "PXAT")) && !expire && !keepttl && i + 1 < argc) {
			unit = toupper((unsigned char)argv[i].p[0]) == 'E' ? 1000 : 1;
			expire = argv[i].n == 4 ? 2 : 1;
			i++;
			if (resp_string2ll(argv[i].p, argv[i].n, &v) < 0) {
				reply_error(c->out, NOT_INTEGER);
				return;
			}
			if (v <= 0 || v > LLONG_MAX / unit) {
				reply_error(c->out, "ERR invalid expire time in 'set' command");
				return;
			}
			ms = v * unit;
		} else {
			reply_error(c->out, "ERR syntax error");
			return;
		}
	}
	if (expire == 2) {
		/* EXAT/PXAT are Unix times: the deadline's distance from now. */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ms -= (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		if (ms <= 0)
			ms = 1; /* in the past: gone at once, after this reply */
	}
	if (ms > (long long)((UINT64_MAX - now) / 1000000))
		ms = (long long)((UINT64_MAX - now) / 1000000);

	pthread_mutex_lock(&store.lock);
	e = store_lookup(argv[1].p, argv[1].n, now);
	if (get) {
		if (e)
			reply_bulk(c->out, e->val, e->vlen);
		else
			EX_OUT_LIT(c->out, "$-1\r\n");
	}
	if ((nx && e) || (xx && !e)) {
		if (!get)
			EX_OUT_LIT(c->out, "$-1\r\n");
		pthread_mutex_unlock(&store.lock);
		return;
	}
	e = store_set(argv[1].p, argv[1].n, argv[2].p, argv[2].n, now);
	if (!e) {
		pthread_mutex_unlock(&store.lock);
		if (!get)
			reply_error(c->out, "OOM command not allowed when used memory > 'maxmemory'.");
		return;
	}
	if (!keepttl)
		set_deadline(w, e, now, ms);
	pthread_mutex_unlock(&store.lock);
	if (!get)
		EX_OUT_LIT(c->out, "+OK\r\n");
}

static void cmd_del(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	uint64_t now = now_ns(c->w);
	long long n = 0;

	pthread_mutex_lock(&store.lock);
	for (int i = 1; i < argc; i++)
		n += store_delete(argv[i].p, argv[i].n, now);
	pthread_mutex_unlock(&store.lock);
	reply_int(c->out, n);
}

static void cmd_exists(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	uint64_t now = now_ns(c->w);
	long long n = 0;

	pthread_mutex_lock(&store.lock);
	for (int i = 1; i < argc; i++)
		n += store_lookup(argv[i].p, argv[i].n, now) != NULL;
	pthread_mutex_unlock(&store.lock);
	reply_int(c->out, n);
}

/* INCR, DECR, INCRBY, DECRBY: the deadline stays, as in Redis. */
static void incr_by(struct ex_conn *c, const struct resp_arg *key, long long by)
{
	uint64_t now = now_ns(c->w);
	struct entry *e;
	long long v = 0;
	char b[32];
	int n;

	pthread_mutex_lock(&store.lock);
	e = store_lookup(key->p, key->n, now);
	if (e && resp_string2ll(e->val, e->vlen, &v) < 0) {
		pthread_mutex_unlock(&store.lock);
		reply_error(c->out, NOT_INTEGER);
		return;
	}
	if ((by < 0 && v < LLONG_MIN - by) || (by > 0 && v > LLONG_MAX - by)) {
		pthread_mutex_unlock(&store.lock);
		reply_error(c->out, "ERR increment or decrement would overflow");
		return;
	}
	v += by;
	n = snprintf(b, sizeof(b), "%lld", v);
	if (!store_set(key->p, key->n, b, (size_t)n, now)) {
		pthread_mutex_unlock(&store.lock);
		reply_error(c->out, "OOM command not allowed when used memory > 'maxmemory'.");
		return;
	}
	pthread_mutex_unlock(&store.lock);
	reply_int(c->out, v);
}

static void cmd_incr(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	incr_by(c, &argv[1], 1);
}

static void cmd_decr(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	incr_by(c, &argv[1], -1);
}

static void cmd_incrby(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	long long by;

	if (resp_string2ll(argv[2].p, argv[2].n, &by) < 0)
		reply_error(c->out, NOT_INTEGER);
	else
		incr_by(c, &argv[1], by);
}

static void cmd_decrby(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	long long by;

	if (resp_string2ll(argv[2].p, argv[2].n, &by) < 0 || by == LLONG_MIN)
		reply_error(c->out, by == LLONG_MIN ? "ERR decrement would overflow" : NOT_INTEGER);
	else
		incr_by(c, &argv[1], -by);
}

/* EXPIRE key seconds / PEXPIRE key ms: 1 if set, 0 if there is no key. */
static void expire_generic(struct ex_conn *c, struct resp_arg *argv, long long unit, const char *name)
{
	uint64_t now = now_ns(c->w);
	struct entry *e;
	long long v;

	if (resp_string2ll(argv[2].p, argv[2].n, &v) < 0) {
		reply_error(c->out, NOT_INTEGER);
		return;
	}
	if (v > LLONG_MAX / unit || v < LLONG_MIN / unit) {
		reply_error(c->out, "ERR invalid expire time in '%s' command", name);
		return;
	}
	v *= unit;
	if (v > (long long)((UINT64_MAX - now) / 1000000))
		v = (long long)((UINT64_MAX - now) / 1000000);
	pthread_mutex_lock(&store.lock);
	e = store_lookup(argv[1].p, argv[1].n, now);
	if (!e) {
		pthread_mutex_unlock(&store.lock);
		reply_int(c->out, 0);
		return;
	}
	if (v <= 0)
		store_delete(argv[1].p, argv[1].n, now); /* a deadline in the past */
	else
		set_deadline(c->w, e, now, v);
	pthread_mutex_unlock(&store.lock);
	reply_int(c->out, 1);
}

static void cmd_expire(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	expire_generic(c, argv, 1000, "expire");
}

static void cmd_pexpire(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	expire_generic(c, argv, 1, "pexpire");
}

/* TTL / PTTL: -2 no key, -1 no deadline, else the time left. */
static void ttl_generic(struct ex_conn *c, struct resp_arg *argv, int ms)
{
	uint64_t now = now_ns(c->w);
	struct entry *e;
	long long v;

	pthread_mutex_lock(&store.lock);
	e = store_lookup(argv[1].p, argv[1].n, now);
	if (!e)
		v = -2;
	else if (!e->expire_ns)
		v = -1;
	else
		v = (long long)((e->expire_ns - now) / 1000000);
	pthread_mutex_unlock(&store.lock);
	if (v >= 0 && !ms)
		v = (v + 500) / 1000;
	reply_int(c->out, v);
}

static void cmd_ttl(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	ttl_generic(c, argv, 0);
}

static void cmd_pttl(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	ttl_generic(c, argv, 1);
}

static void cmd_dbsize(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	size_t n;

	pthread_mutex_lock(&store.lock);
	n = store.count;
	pthread_mutex_unlock(&store.lock);
	reply_int(c->out, (long long)n);
}

static void cmd_flushall(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	pthread_mutex_lock(&store.lock);
	store_flush();
	pthread_mutex_unlock(&store.lock);
	EX_OUT_LIT(c->out, "+OK\r\n");
}

static void cmd_select(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	long long db;

	if (resp_string2ll(argv[1].p, argv[1].n, &db) < 0)
		reply_error(c->out, NOT_INTEGER);
	else if (db != 0)
		reply_error(c->out, "ERR DB index is out of range");
	else
		EX_OUT_LIT(c->out, "+OK\r\n");
}

static void cmd_quit(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	EX_OUT_LIT(c->out, "+OK\r\n");
	c->closing = 1;
}

/* CONFIG GET pattern...: the two settings redis-benchmark reads at start. */
static void cmd_config(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	static const char *const config[][2] = { { "save", "" }, { "appendonly", "no" } };
	const size_t nconfig = sizeof(config) / sizeof(config[0]);
	int match[sizeof(config) / sizeof(config[0])] = { 0 };
	size_t n = 0;

	if (!is(&argv[1], "GET")) {
		reply_error(c->out, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.", (int)argv[1].n,
			    argv[1].p);
		return;
	}
	if (argc < 3) {
		reply_error(c->out, "ERR wrong number of arguments for 'config|get' command");
		return;
	}
	for (int i = 2; i < argc; i++) {
		char pattern[256];

		snprintf(pattern, sizeof(pattern), "%.*s", (int)argv[i].n, argv[i].p);
		for (size_t k = 0; k < nconfig; k++)
			if (!match[k] && fnmatch(pattern, config[k][0], FNM_CASEFOLD) == 0) {
				match[k] = 1;
				n++;
			}
	}
	reply_array(c->out, 2 * n);
	for (size_t k = 0; k < nconfig; k++) {
		if (match[k]) {
			reply_bulk(c->out, config[k][0], strlen(config[k][0]));
			reply_bulk(c->out, config[k][1], strlen(config[k][1]));
		}
	}
}

/* COMMAND [...]: no command table to give, an empty one. */
static void cmd_command(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	reply_array(c->out, 0);
}

struct command {
	const char *name;
	int arity; /* as Redis: n exactly, -n at least n (the name counts) */
	void (*fn)(struct ex_conn *c, int argc, struct resp_arg *argv);
};

static const struct command commands[] = {
	{ "get", 2, cmd_get },         { "set", -3, cmd_set },       { "ping", -1, cmd_ping },
	{ "incr", 2, cmd_incr },       { "del", -2, cmd_del },       { "expire", 3, cmd_expire },
	{ "echo", 2, cmd_echo },       { "exists", -2, cmd_exists }, { "decr", 2, cmd_decr },
	{ "incrby", 3, cmd_incrby },   { "decrby", 3, cmd_decrby },  { "pexpire", 3, cmd_pexpire },
	{ "ttl", 2, cmd_ttl },         { "pttl", 2, cmd_pttl },      { "dbsize", 1, cmd_dbsize },
	{ "flushdb", -1, cmd_flushall }, { "flushall", -1, cmd_flushall },
	{ "select", 2, cmd_select },   { "quit", -1, cmd_quit },     { "config", -2, cmd_config },
	{ "command", -1, cmd_command },
};

static void execute(struct ex_conn *c, int argc, struct resp_arg *argv)
{
	const struct command *cmd = NULL;

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (is(&argv[0], commands[i].name)) {
			cmd = &commands[i];
			break;
		}
	}
	if (!cmd) {
		/* Redis 7: the name, then the first arguments (128 bytes in all). */
		char args[160];
		size_t used = 0;

		args[0] = '\0';
		for (int i = 1; i < argc && used < 128; i++) {
			int n = snprintf(args + used, sizeof(args) - used, "'%.*s' ",
					 (int)(argv[i].n < 128 - used ? argv[i].n : 128 - used), argv[i].p);
			if (n < 0)
				break;
			used += (size_t)n;
		}
		reply_error(c->out, "ERR unknown command '%.*s', with args beginning with: %s",
			    (int)(argv[0].n < 128 ? argv[0].n : 128), argv[0].p, args);
		return;
	}
	if ((cmd->arity > 0 && argc != cmd->arity) || (cmd->arity < 0 && argc < -cmd->arity)) {
		reply_error(c->out, "ERR wrong number of arguments for '%s' command", cmd->name);
		return;
	}
	cmd->fn(c, argc, argv);
}

/* ------------------------------------------------------------- parsing -- */

/*
 * ex_serve_opts.answer: the command at p, run. The parser's state
 * (c->state) keeps how far an incomplete command was parsed, so a big one
 * arriving in 4 KiB receives is parsed once, not from its first byte on
 * every receive.
 */
static long answer_command(struct ex_conn *c, const char *p, size_t n)
{
	struct rworker *w = c->w;
	long r = resp_parse(c->state, &limits, &w->cmd, p, n);

	if (r < 0)
		reply_error(c->out, "ERR Protocol error: %s", w->cmd.error);
	else if (r > 0 && w->cmd.argc > 0)
		execute(c, (int)w->cmd.argc, w->cmd.argv);
	return r;
}

/* ---------------------------------------------------------------- loops -- */

static int loop_init(struct ex_worker *ew)
{
	struct rworker *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->loop = ew->loop;
	w->expiries.next = w->expiries.prev = &w->expiries;
	ew->data = w;
	return 0;
}

static void loop_fini(struct ex_worker *ew)
{
	struct rworker *w = ew->data;
	struct expiry *x, *next;

	if (!w)
		return;
	for (x = w->expiries.next; x != &w->expiries; x = next) {
		next = x->next;
		tide_handle_cancel(&x->handle);
		free(x);
	}
	resp_cmd_free(&w->cmd);
	free(w);
	ew->data = NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mini-redis [--host H] [--port P] [--threads N] [--idle-timeout S]\n"
		   "                  [--request-timeout S] [--max-clients N] [--max-buffered BYTES]\n"
		   "                  [--max-query BYTES] [--max-bulk BYTES]\n"
		   "  --host H     listen on H (default 127.0.0.1)\n"
		   "  --port P     listen on port P (default 6379; 0: a free port)\n"
		   "  --threads N  N loops in N threads sharing the port and the keys (default 1)\n"
		   "  --idle-timeout S     close a client after S seconds without traffic\n"
		   "                       (Redis's timeout; default 300; 0: never)\n"
		   "  --request-timeout S  close a client whose command takes more than S seconds\n"
		   "                       from its first byte to its last (default 30; 0: no limit)\n"
		   "  --max-clients N      clients at once; more get an error and are closed\n"
		   "                       (default: the fd limit less 32, at most 10000)\n"
		   "  --max-buffered BYTES commands still arriving, over all clients (default 256m)\n"
		   "  --max-query BYTES    a command still arriving, per client (default 32m)\n"
		   "  --max-bulk BYTES     one argument (default 8m)\n"
		   "BYTES takes a k, m or g suffix (KiB, MiB, GiB); a client past a limit is closed.\n");
}

int main(int argc, char **argv)
{
	struct ex_serve_opts o = { .name = "mini-redis", .host = "127.0.0.1", .port = 6379,
				   .threads = 1, .answer = answer_command, .state_size = sizeof(struct resp_state),
				   .max_pending = 32 << 20, .max_pending_total = 256 << 20,
				   .idle_timeout = 300, .request_timeout = 30,
				   .refuse = "-ERR max number of clients reached\r\n",
				   .loop_init = loop_init, .loop_fini = loop_fini };
	const struct ex_size_opt sizes[] = { { "--max-query", &o.max_pending },
					     { "--max-bulk", &limits.max_bulk },
					     { NULL, NULL } };
	const struct ex_args args = { .usage = usage, .host = &o.host, .port = &o.port,
				      .threads = &o.threads, .idle_timeout = &o.idle_timeout,
				      .request_timeout = &o.request_timeout, .max_clients = &o.max_clients,
				      .max_buffered = &o.max_pending_total, .sizes = sizes };
	int rc = ex_parse_args(argc, argv, &args);

	if (rc >= 0)
		return rc;
	rc = ex_serve(&o);
	store_flush();
	free(store.buckets);
	return rc;
}
