/* SPDX-License-Identifier: MIT */
/*
 * test/ownership.c: who frees a future's ptr. Every producer whose future
 * carries memory or a reference (getaddrinfo's list, getnameinfo's names,
 * a transport, a server, a stream server, a shield of them) releases it
 * with the future, unless the caller took it with tide_future_take_ptr and
 * released it as the producer says. Either way nothing leaks and nothing
 * is freed twice.
 *
 * The hard part is seeing every allocation: the library's go through a
 * replaced allocator that keeps the set of live pointers (a free of a
 * pointer not in it is a double free), and the resolver's lists, which
 * glibc allocates, through getaddrinfo and freeaddrinfo interposed by this
 * program. Each test runs in a fresh process (Check's fork mode), since the
 * allocator can only be replaced before a process's first loop.
 */
#include "config.h"
#include "helpers.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------ pointer sets -- */

/* Live pointers, by linear probing; executor workers allocate too. */
#define NSLOTS (1u << 16)
struct ptrset {
	pthread_mutex_t lock;
	uintptr_t slot[NSLOTS];
	long live;
	long bad;  /* frees of a pointer not live: double or foreign frees */
};

static struct ptrset g_mem = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct ptrset g_lists = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t slot_of(uintptr_t p)
{
	return (size_t)(((uint64_t)(p >> 4) * 0x9E3779B97F4A7C15ull) >> 48) & (NSLOTS - 1);
}

static void set_add(struct ptrset *s, void *ptr)
{
	uintptr_t p = (uintptr_t)ptr;
	size_t i;

	if (!p)
		return;
	pthread_mutex_lock(&s->lock);
	for (i = slot_of(p); s->slot[i]; i = (i + 1) & (NSLOTS - 1))
		;
	s->slot[i] = p;
	s->live++;
	pthread_mutex_unlock(&s->lock);
}

/* Removes ptr; false (and counted as bad) if it was not live. */
static bool set_del(struct ptrset *s, void *ptr)
{
	uintptr_t p = (uintptr_t)ptr;
	size_t i, j;

	pthread_mutex_lock(&s->lock);
	for (i = slot_of(p); s->slot[i] && s->slot[i] != p; i = (i + 1) & (NSLOTS - 1))
		;
	if (s->slot[i] != p) {
		s->bad++;
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	/* Deletion without tombstones: shift back the entries behind it. */
	s->slot[i] = 0;
	for (j = (i + 1) & (NSLOTS - 1); s->slot[j]; j = (j + 1) & (NSLOTS - 1)) {
		size_t k = slot_of(s->slot[j]);

		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			s->slot[i] = s->slot[j];
			s->slot[j] = 0;
			i = j;
		}
	}
	s->live--;
	pthread_mutex_unlock(&s->lock);
	return true;
}

static long set_live(struct ptrset *s)
{
	long n;

	pthread_mutex_lock(&s->lock);
	n = s->live;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static long set_bad(struct ptrset *s)
{
	long n;

	pthread_mutex_lock(&s->lock);
	n = s->bad;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ------------------------------------------------- the library's memory -- */

static void *cnt_malloc(size_t n)
{
	void *p = malloc(n);

	set_add(&g_mem, p);
	return p;
}

static void *cnt_calloc(size_t n, size_t m)
{
	void *p = calloc(n, m);

	set_add(&g_mem, p);
	return p;
}

static void *cnt_realloc(void *p, size_t n)
{
	void *q;

	/* A pointer that is not live is refused, not handed to realloc. */
	if (p && !set_del(&g_mem, p))
		return NULL;
	q = realloc(p, n);
	if (q)
		set_add(&g_mem, q);
	else if (p && n)
		set_add(&g_mem, p); /* failed: p is still live */
	return q;
}

static void cnt_free(void *p)
{
	/* A double free is counted, and not done (it would corrupt the heap
	 * before the test could say what happened). */
	if (p && set_del(&g_mem, p))
		free(p);
}

/* ------------------------------------------------ the resolver's lists -- */

/*
 * glibc allocates the lists: this program's getaddrinfo and freeaddrinfo
 * stand in front of glibc's (the library calls them through the dynamic
 * linker, which finds this program's first) to keep their set.
 */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	int e;

	if (!real)
		real = (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))dlsym(
			RTLD_NEXT, "getaddrinfo");
	e = real(node, service, hints, res);
	if (e == 0)
		set_add(&g_lists, *res);
	return e;
}

void freeaddrinfo(struct addrinfo *ai)
{
	static void (*real)(struct addrinfo *);

	if (!real)
		real = (void (*)(struct addrinfo *))dlsym(RTLD_NEXT, "freeaddrinfo");
	if (ai && set_del(&g_lists, ai))
		real(ai);
}

/* ------------------------------------------------------------ harness -- */

/* The library allocates through cnt_*: false (skipped) when a loop exists
 * already in this process, as without Check's fork mode. */
static bool counting(const char *test)
{
	return tt_allocator_replaced(tide_replace_allocator(cnt_malloc, cnt_realloc, cnt_calloc, cnt_free), test);
}


/* Frees the loop, then: nothing the library or glibc's resolver gave out is left, nothing went twice. */
static void finish(struct tide_loop *loop)
{
	ck_assert_int_eq(tide_loop_shutdown(loop, 30.0 * slow_factor()), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	ck_assert_msg(set_bad(&g_mem) == 0, "%ld frees of memory that was not live (freed twice?)",
		      set_bad(&g_mem));
	ck_assert_msg(set_bad(&g_lists) == 0, "%ld freeaddrinfo of lists that were not live (freed twice?)",
		      set_bad(&g_lists));
	ck_assert_msg(set_live(&g_mem) == 0, "%ld allocations of the library are still live", set_live(&g_mem));
	ck_assert_msg(set_live(&g_lists) == 0, "%ld resolver lists are still live", set_live(&g_lists));
}

static void wait_done(struct tide_loop *loop, struct tide_future *f)
{
	RUN_UNTIL(loop, tide_future_done(f));
	ck_assert_int_eq(tide_future_error(f), 0);
}

/* ----------------------------------------------------------- resolver -- */

static struct tide_future *resolve(struct tide_loop *loop, const char *host)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_getaddrinfo(loop, host, "80", &hints, &f), 0);
	wait_done(loop, f);
	return f;
}

static struct tide_future *names(struct tide_loop *loop, int flags)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(8080) };
	struct tide_future *f = NULL;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(tide_getnameinfo(loop, (struct sockaddr *)&sin, sizeof(sin), flags, &f), 0);
	wait_done(loop, f);
	return f;
}

/*
 * getaddrinfo's list and getnameinfo's names, on the loop (numeric) and
 * from the executor: freed with the future, or taken and freed by the
 * caller (freeaddrinfo, tide_free).
 */
START_TEST(test_resolver_ptrs)
{
	static const char *const hosts[] = { "127.0.0.1", "localhost" };
	static const int flags[] = { NI_NUMERICHOST | NI_NUMERICSERV, NI_NUMERICHOST };
	struct tide_loop *loop;

	if (!counting("test_resolver_ptrs"))
		return;
	loop = tt_loop_new();
	for (int i = 0; i < 2; i++) {
		struct tide_future *f = resolve(loop, hosts[i]);
		struct addrinfo *ai = NULL;
		void *p = NULL;
		char *s;

		/* Left with the future: valid while it is, then freed with it. */
		ck_assert_int_eq(tide_future_result(f, NULL, &p), 0);
		ck_assert_ptr_nonnull(p);
		ck_assert_int_eq(((struct addrinfo *)p)->ai_family, AF_INET);
		ck_assert_int_eq(set_live(&g_lists), 1);
		tide_future_unref(f);
		ck_assert_int_eq(set_live(&g_lists), 0);

		/* Taken: the caller's to free, after the future is gone. */
		f = resolve(loop, hosts[i]);
		ai = tide_future_take_ptr(f);
		ck_assert_ptr_nonnull(ai);
		ck_assert_ptr_null(tide_future_take_ptr(f));
		ck_assert_int_eq(tide_future_result(f, NULL, &p), 0);
		ck_assert_ptr_null(p);
		tide_future_unref(f);
		ck_assert_int_eq(set_live(&g_lists), 1);
		ck_assert_int_eq(ai->ai_family, AF_INET);
		freeaddrinfo(ai);

		f = names(loop, flags[i]);
		ck_assert_int_eq(tide_future_result(f, NULL, &p), 0);
		ck_assert_str_eq(p, "127.0.0.1");
		tide_future_unref(f);

		f = names(loop, flags[i]);
		s = tide_future_take_ptr(f);
		tide_future_unref(f);
		ck_assert_str_eq(s, "127.0.0.1");
		/* The service: "8080", or its name from /etc/services. */
		ck_assert_uint_gt(strlen(s + strlen(s) + 1), 0);
		if (!i)
			ck_assert_str_eq(s + strlen(s) + 1, "8080");
		tide_free(s);
	}
	finish(loop);
}
END_TEST

/* ------------------------------------------------ transports, servers -- */

struct peer {
	int lost;
};

static void peer_lost(struct tide_transport *t, int err, void *proto)
{
	(void)t;
	(void)err;
	((struct peer *)proto)->lost++;
}

static const struct tide_protocol_ops peer_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_lost = peer_lost,
};

static int peer_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	*ops = &peer_ops;
	*proto = arg;
	return 0;
}

static struct tide_future *serve(struct tide_loop *loop, struct peer *srv)
{
	static const char *const hosts[] = { "127.0.0.1" };
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_create_server(loop, hosts, 1, 0, NULL, peer_factory, srv, &f), 0);
	wait_done(loop, f);
	return f;
}

static struct tide_future *dial(struct tide_loop *loop, int port, struct peer *cli)
{
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_create_connection(loop, "127.0.0.1", port, &peer_ops, cli, &f), 0);
	wait_done(loop, f);
	return f;
}

/*
 * create_connection's transport (a reference) and create_server's server:
 * released with the future (the server then stops), or taken and released
 * by the caller (tide_transport_unref, tide_server_free).
 */
START_TEST(test_net_ptrs)
{
	struct peer srv = { 0 }, cli = { 0 };
	struct tide_future *fs, *fc;
	struct tide_transport *t;
	struct tide_server *sv;
	struct tide_loop *loop;
	void *p = NULL;
	int port;

	if (!counting("test_net_ptrs"))
		return;
	loop = tt_loop_new();

	/* A server left with its future goes with it: nobody can reach it. */
	fs = serve(loop, &srv);
	ck_assert_int_eq(tide_future_result(fs, NULL, &p), 0);
	port = tide_server_port(p);
	ck_assert_int_gt(port, 0);
	tide_future_unref(fs);

	/* Taken, it serves until the caller frees it. */
	fs = serve(loop, &srv);
	sv = tide_future_take_ptr(fs);
	ck_assert_ptr_nonnull(sv);
	tide_future_unref(fs);
	port = tide_server_port(sv);
	ck_assert_int_eq(tide_server_is_serving(sv), 1);

	/* A transport left with its future: the future's reference goes
	 * with it, the connection stays open until closed. */
	fc = dial(loop, port, &cli);
	ck_assert_int_eq(tide_future_result(fc, NULL, &p), 0);
	t = p;
	tide_future_unref(fc);
	tide_transport_close(t);
	RUN_UNTIL(loop, cli.lost == 1 && srv.lost == 1);

	/* Taken: the caller holds the reference, past connection_lost. */
	fc = dial(loop, port, &cli);
	t = tide_future_take_ptr(fc);
	ck_assert_ptr_nonnull(t);
	tide_future_unref(fc);
	tide_transport_close(t);
	RUN_UNTIL(loop, cli.lost == 2 && srv.lost == 2);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	tide_transport_unref(t);

	tide_server_free(sv);
	finish(loop);
}
END_TEST

static int64_t hi_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	(void)r;
	(void)arg;
	return tide_stream_write(w, "hi\n", 3);
}

/* A datagram endpoint's transport and a stream server: the same two ways. */
START_TEST(test_stream_dgram_ptrs)
{
	static const char *const hosts[] = { "127.0.0.1" };
	struct tide_datagram_opts o = { .size = sizeof(o), .local_host = "127.0.0.1" };
	struct tide_future *f = NULL;
	struct tide_transport *t;
	struct tide_server *sv;
	struct tide_loop *loop;
	struct peer d = { 0 };
	void *p = NULL;
	char buf[8];
	int fd;

	if (!counting("test_stream_dgram_ptrs"))
		return;
	loop = tt_loop_new();

	ck_assert_int_eq(tide_start_server(loop, hosts, 1, 0, NULL, hi_handler, NULL, &f), 0);
	wait_done(loop, f);
	tide_future_unref(f); /* the server goes with it */

	ck_assert_int_eq(tide_start_server(loop, hosts, 1, 0, NULL, hi_handler, NULL, &f), 0);
	wait_done(loop, f);
	sv = tide_future_take_ptr(f);
	ck_assert_ptr_nonnull(sv);
	tide_future_unref(f);
	{
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)tide_server_port(sv)) };

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		ck_assert_int_ge(fd, 0);
		ck_assert(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 || errno == EINPROGRESS);
	}
	RUN_UNTIL(loop, recv(fd, buf, sizeof(buf), MSG_PEEK) == 3);
	close(fd);
	tide_server_free(sv);

	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &o, &peer_ops, &d, &f), 0);
	wait_done(loop, f);
	ck_assert_int_eq(tide_future_result(f, NULL, &p), 0);
	t = p;
	tide_future_unref(f); /* the reference goes; the endpoint stays open */
	ck_assert_int_eq(tide_transport_is_closing(t), 0);
	tide_transport_close(t);
	RUN_UNTIL(loop, d.lost == 1);
	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &o, &peer_ops, &d, &f), 0);
	wait_done(loop, f);
	t = tide_future_take_ptr(f);
	tide_future_unref(f);
	tide_transport_close(t);
	RUN_UNTIL(loop, d.lost == 2);
	tide_transport_unref(t);
	finish(loop);
}
END_TEST

/* ------------------------------------------------------ shield, states -- */

/*
 * A shield shows its inner's ptr, which stays the inner's: taken from
 * the outer it is taken from the inner, and it is freed once whichever
 * future goes last.
 */
START_TEST(test_shield_ptrs)
{
	struct tide_future *in, *out;
	struct tide_loop *loop;
	void *p = NULL, *q = NULL;
	char *s;

	if (!counting("test_shield_ptrs"))
		return;
	loop = tt_loop_new();
	for (int order = 0; order < 2; order++) {
		/* Not taken: the outer keeps the inner, and the names, alive. */
		in = names(loop, NI_NUMERICHOST | NI_NUMERICSERV);
		ck_assert_int_eq(tide_shield(in, &out), 0);
		ck_assert_int_eq(tide_future_result(in, NULL, &p), 0);
		ck_assert_int_eq(tide_future_result(out, NULL, &q), 0);
		ck_assert_ptr_eq(p, q);
		if (order) {
			tide_future_unref(in);
			ck_assert_str_eq(q, "127.0.0.1");
			tide_future_unref(out);
		} else {
			tide_future_unref(out);
			tide_future_unref(in);
		}
	}
	/* Shielded while pending: the outer mirrors it once it is done. */
	{
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_int_eq(tide_getnameinfo(loop, (struct sockaddr *)&sin, sizeof(sin), NI_NUMERICHOST, &in), 0);
		ck_assert_int_eq(tide_shield(in, &out), 0);
		ck_assert_ptr_null(tide_future_take_ptr(out)); /* pending: nothing to take */
		wait_done(loop, out);
		/* Taken through the outer: the inner no longer has it. */
		s = tide_future_take_ptr(out);
		ck_assert_ptr_nonnull(s);
		ck_assert_int_eq(tide_future_result(in, NULL, &p), 0);
		ck_assert_ptr_null(p);
		ck_assert_ptr_null(tide_future_take_ptr(in));
		tide_future_unref(in);
		tide_future_unref(out);
		ck_assert_str_eq(s, "127.0.0.1");
		tide_free(s);
	}
	finish(loop);
}
END_TEST

/*
 * take_ptr's answers: NULL while pending, for an error, for a cancelled
 * future and once taken; a ptr set by the caller is only handed back (the
 * future never frees it).
 */
START_TEST(test_take_ptr_states)
{
	struct tide_future *f;
	struct tide_loop *loop;
	char *mine;
	void *p = NULL;

	if (!counting("test_take_ptr_states"))
		return;
	loop = tt_loop_new();
	mine = malloc(4); /* not the library's: the futures must leave it alone */
	ck_assert_ptr_nonnull(mine);

	ck_assert_int_eq(tide_future_new(loop, &f), 0);
	ck_assert_ptr_null(tide_future_take_ptr(f));
	tide_future_set_result(f, 7, mine);
	ck_assert_ptr_eq(tide_future_take_ptr(f), mine);
	ck_assert_ptr_null(tide_future_take_ptr(f));
	ck_assert_int_eq(tide_future_result(f, NULL, &p), 0);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(tt_result(f), 7); /* the value stays */
	tide_future_unref(f);

	ck_assert_int_eq(tide_future_new(loop, &f), 0);
	tide_future_set_result(f, 0, mine);
	tide_future_unref(f); /* not taken: still not the future's to free */

	ck_assert_int_eq(tide_future_new(loop, &f), 0);
	tide_future_set_error(f, -EIO);
	ck_assert_ptr_null(tide_future_take_ptr(f));
	ck_assert_int_eq(tide_future_error(f), -EIO);
	tide_future_unref(f);

	ck_assert_int_eq(tide_future_new(loop, &f), 0);
	ck_assert_int_eq(tide_future_cancel(f), 1);
	ck_assert_ptr_null(tide_future_take_ptr(f));
	tide_future_unref(f);

	ck_assert_ptr_null(tide_future_take_ptr(NULL));
	tide_free(NULL);
	free(mine);
	finish(loop);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "ownership", 120);
	tt_add(&ts, test_resolver_ptrs);
	tt_add(&ts, test_net_ptrs);
	tt_add(&ts, test_stream_dgram_ptrs);
	tt_add(&ts, test_shield_ptrs);
	tt_add(&ts, test_take_ptr_states);
	return tt_run(&ts);
}
