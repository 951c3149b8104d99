/* SPDX-License-Identifier: MIT */
/*
 * test/resolve.c: name resolution, on every backend configuration:
 * tide_getaddrinfo (numeric hosts at once, without a thread; "localhost"
 * from /etc/hosts on the executor; errors), tide_getnameinfo, and
 * create_connection resolving its host.
 *
 * The hard part is that tests never leave the machine: the errors come
 * from the hook of src/net/resolve-hooks.h standing in for getaddrinfo, so no
 * test sends a DNS query. That hook is a hidden symbol: this program links
 * the library's objects.
 */
#include "config.h"
#include "net-fixture.h"
#include "net/resolve-hooks.h" /* src/net: the hidden resolver hook */

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int gate[2];

static int64_t gate_job(void *arg)
{
	char c;

	(void)arg;
	while (read(gate[0], &c, 1) < 0 && errno == EINTR)
		;
	return 7;
}

static struct addrinfo *gai_run(struct tide_loop *loop, struct tide_future *f, double secs)
{
	RUN_UNTIL_FOR(loop, tide_future_done(f), secs);
	return fut_take(f);
}

/*
 * Numeric hosts need no thread: they complete while the loop's default
 * executor (one worker) is blocked by a job that waits for us.
 */
START_TEST(test_getaddrinfo_numeric)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_executor_opts eo = { sizeof(eo), 1 };
	struct tide_executor *ex;
	struct tide_future *fj, *f4, *f6, *fp, *fnone;
	struct addrinfo hints, *ai;
	int err;

	tt_pipe(gate, 0);
	ck_assert_int_eq(tide_executor_new(&eo, &ex), 0);
	ck_assert_int_eq(tide_loop_set_default_executor(loop, ex), 0);
	ck_assert_int_eq(tide_run_in_executor(loop, ex, gate_job, NULL, &fj), 0);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	ck_assert_int_eq(tide_getaddrinfo(loop, "127.0.0.1", "80", &hints, &f4), 0);
	ck_assert_int_eq(tide_getaddrinfo(loop, "::1", "443", &hints, &f6), 0);
	hints.ai_family = AF_INET;
	hints.ai_flags = AI_PASSIVE;
	ck_assert_int_eq(tide_getaddrinfo(loop, NULL, "8080", &hints, &fp), 0);

	ai = gai_run(loop, f4, 3.0);
	ck_assert_ptr_nonnull(ai);
	ck_assert_int_eq(ai->ai_family, AF_INET);
	ck_assert_int_eq(ai->ai_socktype, SOCK_STREAM);
	ck_assert(is_loopback4(ai->ai_addr));
	ck_assert_int_eq(addr_port(ai->ai_addr), 80);
	freeaddrinfo(ai);
	ai = gai_run(loop, f6, 3.0);
	ck_assert_ptr_nonnull(ai);
	ck_assert_int_eq(ai->ai_family, AF_INET6);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr));
	ck_assert_int_eq(addr_port(ai->ai_addr), 443);
	freeaddrinfo(ai);
	ai = gai_run(loop, fp, 3.0);
	ck_assert_ptr_nonnull(ai);
	ck_assert_int_eq(ai->ai_family, AF_INET);
	ck_assert_uint_eq(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr, htonl(INADDR_ANY));
	ck_assert_int_eq(addr_port(ai->ai_addr), 8080);
	freeaddrinfo(ai);
	/* The executor's job is still blocked: none of that used a thread. */
	ck_assert_int_eq(tide_future_done(fj), 0);
	tt_write_all(gate[1], "g", 1);
	tt_run_until_complete(loop, fj, 0);
	ck_assert_int_eq(tt_result(fj), 7);
	/* Neither host nor port: an error, not a crash. */
	err = tide_getaddrinfo(loop, NULL, NULL, &hints, &fnone);
	if (err == 0) {
		(void)tide_loop_run_until_complete(loop, fnone);
		err = tide_future_error(fnone);
		tide_future_unref(fnone);
	}
	ck_assert_int_lt(err, 0);
	tide_future_unref(f4);
	tide_future_unref(f6);
	tide_future_unref(fp);
	tide_future_unref(fj);
	close(gate[0]);
	close(gate[1]);
	finish(loop);
	ck_assert_int_eq(tide_executor_free(ex), 0);
}
END_TEST

/* "localhost" comes from /etc/hosts (no network), on the executor; several at once. */
START_TEST(test_getaddrinfo_localhost)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f[4];
	struct addrinfo hints, *ai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(tide_getaddrinfo(loop, "localhost", i % 2 ? "8080" : "8000", &hints, &f[i]), 0);
	for (int i = 0; i < 4; i++) {
		ai = gai_run(loop, f[i], 30.0);
		ck_assert_ptr_nonnull(ai);
		ck_assert_int_eq(ai->ai_family, AF_INET);
		ck_assert(is_loopback4(ai->ai_addr));
		ck_assert_int_eq(addr_port(ai->ai_addr), i % 2 ? 8080 : 8000);
		freeaddrinfo(ai);
		tide_future_unref(f[i]);
	}
	finish(loop);
}
END_TEST

START_TEST(test_getnameinfo)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f4, *f6;
	struct sockaddr_storage s4, s6;
	socklen_t l4 = loopback(&s4, AF_INET, 8080), l6 = loopback(&s6, AF_INET6, 4242);
	char *p;

	ck_assert_int_eq(tide_getnameinfo(loop, (struct sockaddr *)&s4, l4, NI_NUMERICHOST | NI_NUMERICSERV, &f4), 0);
	ck_assert_int_eq(tide_getnameinfo(loop, (struct sockaddr *)&s6, l6, NI_NUMERICHOST | NI_NUMERICSERV, &f6), 0);
	/* Our copy of the address may go: the op owns what it reads. */
	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	RUN_UNTIL(loop, tide_future_done(f4) && tide_future_done(f6));
	p = fut_take(f4);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, "127.0.0.1");
	ck_assert_str_eq(p + strlen(p) + 1, "8080");
	tide_free(p);
	p = fut_take(f6);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, "::1");
	ck_assert_str_eq(p + strlen(p) + 1, "4242");
	tide_free(p);
	tide_future_unref(f4);
	tide_future_unref(f6);
	finish(loop);
}
END_TEST

/*
 * Resolution errors without a resolver: the hook of src/net/resolve-hooks.h
 * stands in for the system's getaddrinfo, so no test sends a DNS query. It
 * answers "localhost" from the real one (/etc/hosts) and fails every other
 * name as a resolver would, by the name's first word.
 */
static atomic_int hook_calls;

static int fake_getaddrinfo(const char *host, const char *port, const struct addrinfo *hints,
			    struct addrinfo **res)
{
	atomic_fetch_add(&hook_calls, 1);
	if (host && strcmp(host, "localhost") == 0)
		return getaddrinfo(host, port, hints, res);
	if (host && strncmp(host, "again-", 6) == 0)
		return EAI_AGAIN;
	if (host && strncmp(host, "system-", 7) == 0) {
		errno = EMFILE;
		return EAI_SYSTEM;
	}
	return EAI_NONAME;
}

static int hooked(void)
{
	return atomic_load(&hook_calls);
}

static void use_fake_resolver(void)
{
	atomic_store(&hook_calls, 0);
	tide__set_getaddrinfo_hook(fake_getaddrinfo);
}

/* tide_getaddrinfo(host) on the executor: its error. */
static int lookup_error(struct tide_loop *loop, const char *host, const struct addrinfo *hints)
{
	struct tide_future *f;

	ck_assert_int_eq(tide_getaddrinfo(loop, host, "80", hints, &f), 0);
	return done_error(loop, f);
}

START_TEST(test_getaddrinfo_invalid)
{
	struct tide_loop *loop = tt_loop_new();
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM };
	struct tide_future *f;
	int err;

	use_fake_resolver();
	err = lookup_error(loop, "no-such-host", NULL);
	ck_assert_msg(err == TIDE_EAI_BASE + EAI_NONAME, "[%s] getaddrinfo(no-such-host): %d (%s)", tt_cfg->name,
		      err, tide_strerror(err));
	ck_assert_int_eq(hooked(), 1);
	ck_assert_int_eq(lookup_error(loop, "again-host", NULL), TIDE_EAI_BASE + EAI_AGAIN);
	/* EAI_SYSTEM is the errno behind it, read on the worker thread. */
	ck_assert_int_eq(lookup_error(loop, "system-host", NULL), -EMFILE);
	ck_assert_int_eq(hooked(), 3);
	/* A name the caller wants numeric fails at once, with no lookup. */
	ck_assert_int_eq(tide_getaddrinfo(loop, "no-such-host", "80", &hints, &f), 0);
	ck_assert_int_eq(tide_future_done(f), 1);
	ck_assert_int_eq(tide_future_error(f), TIDE_EAI_BASE + EAI_NONAME);
	tide_future_unref(f);
	ck_assert_int_eq(hooked(), 3);
	ck_assert_str_eq(tide_strerror(TIDE_EAI_BASE + EAI_NONAME), gai_strerror(EAI_NONAME));
	ck_assert_str_eq(tide_strerror(TIDE_EAI_BASE + EAI_AGAIN), gai_strerror(EAI_AGAIN));
	finish(loop);
	tide__set_getaddrinfo_hook(NULL);
}
END_TEST

/* A create_connection that fails: its error. */
static int dial_error(struct tide_loop *loop, const char *host, int port, struct conn *c)
{
	struct tide_future *f;

	ck_assert_int_eq(tide_create_connection(loop, host, port, &conn_ops, c, &f), 0);
	return done_error(loop, f);
}

/*
 * create_connection resolves names (on the executor): "localhost" works; a
 * refused port and a name that does not resolve fail the future, and the
 * protocol never hears of a connection.
 */
START_TEST(test_create_connection_errors)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *refused = conn_new(), *noname = conn_new();
	int err;

	use_fake_resolver();
	s.tmpl.echo = 1;
	sv = serve(loop, lo4, 1, NULL, &s);
	echo_roundtrip(loop, "localhost", tide_server_port(sv), &s, 0);
	ck_assert_int_eq(dial_error(loop, "127.0.0.1", closed_port(SOCK_STREAM), refused), -ECONNREFUSED);
	err = dial_error(loop, "no-such-host", 80, noname);
	ck_assert_msg(err == TIDE_EAI_BASE + EAI_NONAME, "[%s] create_connection(no-such-host): %d (%s)",
		      tt_cfg->name, err, tide_strerror(err));
	/* "localhost" and the bad name both asked the (fake) resolver. */
	ck_assert_int_eq(hooked(), 2);
	run_for(loop, 0.02);
	ck_assert_int_eq(refused->made + refused->lost + noname->made + noname->lost, 0);
	finish_all(loop, sv);
	tide__set_getaddrinfo_hook(NULL);
}
END_TEST

/*
 * A datagram endpoint's host names are looked up on the executor, as
 * create_connection's (asyncio's create_datagram_endpoint awaits
 * getaddrinfo): the call returns at once with the future pending, and a
 * failed lookup is the future's error; numeric hosts never ask a resolver.
 */
START_TEST(test_datagram_endpoint_resolves_names)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = { .size = sizeof(o), .remote_host = "localhost" };
	struct tide_datagram_opts bad = { .size = sizeof(bad), .remote_host = "no-such-host", .remote_port = 9 };
	struct tide_datagram_opts num = { .size = sizeof(num), .local_host = "127.0.0.1" };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct conn *c = conn_new(), *n = conn_new();
	struct tide_future *f;
	int err;

	use_fake_resolver();
	o.remote_port = closed_port(SOCK_DGRAM);
	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &o, &dgram_ops, c, &f), 0);
	ck_assert_msg(!tide_future_done(f), "[%s] a name was resolved on the loop thread", tt_cfg->name);
	tt_run_until_complete(loop, f, 0);
	ck_assert_ptr_eq(fut_ptr(f), c->t);
	tide_future_unref(f);
	ck_assert_int_eq(hooked(), 1);
	ck_assert_int_eq(tide_transport_get_extra_info(c->t, "peername", &ss, &len), 0);
	ck_assert_int_eq(addr_port(&ss), o.remote_port);

	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &bad, &dgram_ops, NULL, &f), 0);
	RUN_UNTIL(loop, tide_future_done(f));
	err = tide_future_error(f);
	ck_assert_msg(err == TIDE_EAI_BASE + EAI_NONAME, "[%s] datagram endpoint to no-such-host: %d (%s)",
		      tt_cfg->name, err, tide_strerror(err));
	tide_future_unref(f);
	ck_assert_int_eq(hooked(), 2);

	/* Numeric: made in the call, no resolver asked. */
	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &num, &dgram_ops, n, &f), 0);
	ck_assert_int_eq(tide_future_done(f), 1);
	ck_assert_ptr_eq(fut_ptr(f), n->t);
	tide_future_unref(f);
	ck_assert_int_eq(hooked(), 2);
	tide__set_getaddrinfo_hook(NULL);
	tide_transport_close(c->t);
	tide_transport_close(n->t);
	RUN_UNTIL(loop, c->lost && n->lost);
	finish_all(loop, NULL);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_getaddrinfo_numeric, test_getaddrinfo_localhost, test_getnameinfo,
		test_getaddrinfo_invalid, test_create_connection_errors, test_datagram_endpoint_resolves_names,
	};

	return net_main("resolve", 300, tests, NET_COUNT(tests), NULL, 0);
}
