/* SPDX-License-Identifier: MIT */
/*
 * test/datagram.c: datagram endpoints, on every backend configuration,
 * checked as CPython's test_events.py checks asyncio's: echo between UDP
 * endpoints (bound, unbound, connected), ICMP errors through
 * error_received, and error_received with a queue to flush: each failed
 * sendto reported in order, never re-entrantly, and abort or sendto
 * called from inside it.
 *
 * The hard part is when error_received runs: from the loop, never from
 * inside a transport call made by another callback, so a protocol that
 * sends again from error_received cannot recurse.
 */
#include "config.h"
#include "net-fixture.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------ utilities -- */

static int endpoint_port(struct conn *c, const char *which)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(tide_transport_get_extra_info(c->t, which, &ss, &len), 0);
	return addr_port(&ss);
}

static void close_endpoints(struct tide_loop *loop, struct conn **cs, int n)
{
	for (int i = 0; i < n; i++)
		tide_transport_close(cs[i]->t);
	for (int i = 0; i < n; i++)
		RUN_UNTIL(loop, cs[i]->lost);
	run_for(loop, 0.02);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(cs[i]->lost, 1);
		ck_assert_int_eq(cs[i]->lost_err, 0);
		ck_assert_int_eq(cs[i]->after_lost, 0);
		ck_assert_int_eq(cs[i]->log[cs[i]->nlog - 1], 'L');
	}
}

/*
 * A datagram socket bound to a fresh Unix path, dir/rx, which *su gets
 * (dir, a template such as "/tmp/tide-net-XXXXXX", becomes the folder).
 */
static int unix_dgram_rx(char *dir, struct sockaddr_un *su)
{
	int rx;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	memset(su, 0, sizeof(*su));
	su->sun_family = AF_UNIX;
	snprintf(su->sun_path, sizeof(su->sun_path), "%s/rx", dir);
	rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(rx, 0);
	ck_assert_int_eq(bind(rx, (struct sockaddr *)su, sizeof(*su)), 0);
	return rx;
}

/* ------------------------------------------------------------ datagrams -- */

START_TEST(test_datagram_echo)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts oa = { .size = sizeof(oa), .local_host = "127.0.0.1" };
	struct tide_datagram_opts ob = { .size = sizeof(ob), .local_host = "127.0.0.1" };
	struct tide_datagram_opts oc = { .size = sizeof(oc), .family = AF_INET };
	struct conn *a = conn_new(), *b = conn_new(), *c = conn_new();
	struct conn *all[3] = { a, b, c };
	static const char *const msgs[] = { "one", "two", "three" };
	struct tide_transport *bt;
	struct sockaddr_storage dst;
	socklen_t dlen;
	int pa, pb;

	a->echo_dgram = 1;
	endpoint(loop, &oa, a);
	endpoint(loop, &ob, b);
	endpoint(loop, &oc, c);
	pa = endpoint_port(a, "sockname");
	pb = endpoint_port(b, "sockname");
	ck_assert_int_gt(pa, 0);
	dlen = loopback(&dst, AF_INET, pa);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tide_transport_sendto(b->t, msgs[i], strlen(msgs[i]), (struct sockaddr *)&dst, dlen), 0);
	/* From an endpoint that never bound: the kernel picks its port. */
	ck_assert_int_eq(tide_transport_sendto(c->t, "auto", 4, (struct sockaddr *)&dst, dlen), 0);
	RUN_UNTIL(loop, b->ndgram == 3 && c->ndgram == 1 && a->ndgram == 4);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(b->dg[i].n, strlen(msgs[i]));
		ck_assert_mem_eq(b->dg[i].data, msgs[i], strlen(msgs[i]));
		ck_assert_uint_eq(b->dg[i].fromlen, sizeof(struct sockaddr_in));
		ck_assert(is_loopback4(&b->dg[i].from));
		ck_assert_int_eq(addr_port(&b->dg[i].from), pa);
	}
	ck_assert_mem_eq(c->dg[0].data, "auto", 4);
	ck_assert_int_eq(addr_port(&c->dg[0].from), pa);
	/* The echo side saw who sent what. */
	for (int i = 0; i < 4; i++) {
		int from = addr_port(&a->dg[i].from);

		ck_assert(from == pb || from == endpoint_port(c, "sockname"));
	}
	ck_assert_int_eq(a->nerr + b->nerr + c->nerr, 0);
	/* A reference keeps b's transport to look at after connection_lost. */
	bt = tide_transport_ref(b->t);
	close_endpoints(loop, all, 3);
	ck_assert_int_eq(tide_transport_is_closing(bt), 1);
	ck_assert_int_eq(tide_transport_sendto(bt, "x", 1, (struct sockaddr *)&dst, dlen), TIDE_ECLOSED);
	tide_transport_unref(bt);
	finish_all(loop, NULL);
}
END_TEST

START_TEST(test_datagram_connected)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts oa = { .size = sizeof(oa), .local_host = "127.0.0.1" };
	struct tide_datagram_opts ob = { .size = sizeof(ob), .remote_host = "127.0.0.1" };
	struct conn *a = conn_new(), *b = conn_new();
	struct conn *all[2] = { a, b };
	int pa;

	a->echo_dgram = 1;
	endpoint(loop, &oa, a);
	pa = endpoint_port(a, "sockname");
	ob.remote_port = pa;
	endpoint(loop, &ob, b);
	ck_assert_int_eq(endpoint_port(b, "peername"), pa);
	ck_assert_int_eq(tide_transport_sendto(b->t, "hi", 2, NULL, 0), 0);
	ck_assert_int_eq(tide_transport_sendto(b->t, "there", 5, NULL, 0), 0);
	RUN_UNTIL(loop, b->ndgram == 2);
	ck_assert_mem_eq(b->dg[0].data, "hi", 2);
	ck_assert_mem_eq(b->dg[1].data, "there", 5);
	ck_assert_int_eq(addr_port(&b->dg[0].from), pa);
	ck_assert_int_eq(addr_port(&a->dg[0].from), endpoint_port(b, "sockname"));
	close_endpoints(loop, all, 2);
	finish_all(loop, NULL);
}
END_TEST

static void resend_cb(void *arg)
{
	struct conn *c = arg;

	if (c->nerr == 0 && !c->lost) {
		ck_assert_int_eq(tide_transport_sendto(c->t, "x", 1, NULL, 0), 0);
		ck_assert_int_eq(tide_call_later(c->loop, 0.02, resend_cb, c, &c->toggle_h), 0);
	}
}

/* A connected UDP socket learns of ICMP port unreachable: error_received(-ECONNREFUSED). */
START_TEST(test_datagram_error_received)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts ob = { .size = sizeof(ob), .remote_host = "127.0.0.1" };
	struct conn *b = conn_new();

	ob.remote_port = closed_port(SOCK_DGRAM);
	endpoint(loop, &ob, b);
	resend_cb(b);
	RUN_UNTIL(loop, b->nerr >= 1);
	tide_handle_cancel(&b->toggle_h);
	ck_assert_msg(b->last_err == -ECONNREFUSED, "[%s] error_received(%d: %s)", tt_cfg->name, b->last_err,
		      tide_strerror(b->last_err));
	/* An error is not the end of a datagram transport. */
	ck_assert_int_eq(b->lost, 0);
	ck_assert_int_eq(tide_transport_is_closing(b->t), 0);
	close_endpoints(loop, &b, 1);
	ck_assert_str_eq(b->log, "ML");
	finish_all(loop, NULL);
}
END_TEST

static struct sockaddr_un g_dq_dst;
static int g_dq_depth, g_dq_maxdepth;

static void dq_err_abort(struct tide_transport *t, int err, void *p)
{
	on_dgram_error(t, err, p);
	tide_transport_abort(t);
}

/* Sends again from error_received for the first 3 errors, then closes. */
static void dq_err_resend(struct tide_transport *t, int err, void *p)
{
	struct conn *c = p;

	if (++g_dq_depth > g_dq_maxdepth)
		g_dq_maxdepth = g_dq_depth;
	on_dgram_error(t, err, p);
	if (c->nerr <= 3)
		ck_assert_int_eq(tide_transport_sendto(t, "again", 5, (struct sockaddr *)&g_dq_dst, sizeof(g_dq_dst)),
				 0);
	else
		tide_transport_close(t);
	g_dq_depth--;
}

static const struct tide_protocol_ops dgram_abort_ops = { LOG_OPS, .datagram_received = on_dgram,
							  .error_received = dq_err_abort };

static const struct tide_protocol_ops dgram_resend_ops = { LOG_OPS, .datagram_received = on_dgram,
							   .error_received = dq_err_resend };

/*
 * Datagrams queued for a Unix receiver whose queue is full; then the
 * receiver goes, so each queued datagram fails (ECONNREFUSED) while the
 * queue is flushed, and error_received runs in the middle of that flush.
 * Regressions (review of 2026-11-26, the reviewer's reproducers; run them
 * under ASan): they guard the flush against what error_received may do
 * while the flush still walks the queue, abort the transport or send
 * again (a sendto behind queued datagrams leaves the flush to POLLOUT).
 */
static void dgram_error_in_flush(const struct tide_protocol_ops *ops)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = { .size = sizeof(o), .family = AF_UNIX };
	struct conn *c = conn_new();
	char dir[] = "/tmp/tide-net-XXXXXX", msg[64] = "x";
	int rx = unix_dgram_rx(dir, &g_dq_dst), i;

	g_dq_depth = g_dq_maxdepth = 0;
	endpoint_ops(loop, &o, ops, c);
	/* Nobody reads rx: its queue fills, then sendto has to queue. */
	for (i = 0; i < 100000 && tide_transport_get_write_buffer_size(c->t) == 0; i++)
		ck_assert_int_eq(tide_transport_sendto(c->t, msg, sizeof(msg), (struct sockaddr *)&g_dq_dst,
						       sizeof(g_dq_dst)),
				 0);
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(tide_transport_sendto(c->t, msg, sizeof(msg), (struct sockaddr *)&g_dq_dst,
						       sizeof(g_dq_dst)),
				 0);
	ck_assert_uint_ge(tide_transport_get_write_buffer_size(c->t), 9 * sizeof(msg));
	ck_assert_int_eq(c->nerr, 0);
	close(rx);
	RUN_UNTIL(loop, c->lost);
	run_for(loop, 0.05);
	ck_assert_int_ge(c->nerr, ops == &dgram_resend_ops ? 4 : 1);
	ck_assert_msg(c->last_err == -ECONNREFUSED, "[%s] error_received(%d: %s)", tt_cfg->name, c->last_err,
		      tide_strerror(c->last_err));
	check_conn(c, "ML", 0);
	unlink(g_dq_dst.sun_path);
	rmdir(dir);
	finish_all(loop, NULL);
}

START_TEST(test_datagram_abort_in_error_received)
{
	dgram_error_in_flush(&dgram_abort_ops);
}
END_TEST

START_TEST(test_datagram_sendto_in_error_received)
{
	dgram_error_in_flush(&dgram_resend_ops);
}
END_TEST

/*
 * The same flush, for the header's promise that callbacks never run
 * re-entrantly from a transport call made inside another callback: a
 * sendto inside error_received must not run error_received again before
 * it returns.
 */
START_TEST(test_datagram_error_received_not_reentrant)
{
	dgram_error_in_flush(&dgram_resend_ops);
	ck_assert_msg(g_dq_maxdepth == 1,
		      "[%s] error_received ran nested %d deep: tide_transport_sendto called inside "
		      "error_received flushed the queue (and called error_received) re-entrantly",
		      tt_cfg->name, g_dq_maxdepth);
}
END_TEST

/*
 * Each failed sendto gets its own error_received, in order, from the loop.
 * Regression (2026-11-26, after the review): guards against errors that
 * came before the loop ran folding into one call with the last error.
 */
START_TEST(test_datagram_errors_each_reported)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = { .size = sizeof(o), .family = AF_UNIX };
	struct conn *c = conn_new();
	struct sockaddr_un dst;
	char dir[] = "/tmp/tide-net-XXXXXX";

	/* Bound, then closed: the path stays, nobody receives (ECONNREFUSED). */
	close(unix_dgram_rx(dir, &dst));
	endpoint(loop, &o, c);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tide_transport_sendto(c->t, "x", 1, (struct sockaddr *)&dst, sizeof(dst)), 0);
	ck_assert_int_eq(c->nerr, 0); /* not from inside sendto */
	RUN_UNTIL(loop, c->nerr >= 3);
	run_for(loop, 0.02);
	ck_assert_int_eq(c->nerr, 3);
	ck_assert_int_eq(c->last_err, -ECONNREFUSED);
	tide_transport_close(c->t);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "ML", 0);
	unlink(dst.sun_path);
	rmdir(dir);
	finish_all(loop, NULL);
}
END_TEST

/*
 * The other way error_received runs: a sendto with nothing queued fails at
 * once (a Unix path nobody is bound to). Sending again from inside
 * error_received must not run error_received nested either.
 * Regression (review of 2026-11-26): guards against a sendto that fails at
 * once calling error_received from inside sendto, so that a protocol
 * sending again from error_received recursed without bound.
 */
START_TEST(test_datagram_sendto_error_in_callback_not_reentrant)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = { .size = sizeof(o), .family = AF_UNIX };
	struct conn *c = conn_new();
	char dir[] = "/tmp/tide-net-XXXXXX";

	/* Bound, then closed: the path stays, nobody receives (ECONNREFUSED). */
	close(unix_dgram_rx(dir, &g_dq_dst));
	g_dq_depth = g_dq_maxdepth = 0;
	endpoint_ops(loop, &o, &dgram_resend_ops, c);
	/* Outside any callback, this sendto may call error_received at once
	 * (as asyncio's does); the sendto inside that call may not. */
	ck_assert_int_eq(tide_transport_sendto(c->t, "x", 1, (struct sockaddr *)&g_dq_dst, sizeof(g_dq_dst)), 0);
	RUN_UNTIL(loop, c->lost);
	run_for(loop, 0.05);
	ck_assert_int_eq(c->nerr, 4);
	ck_assert_int_eq(c->last_err, -ECONNREFUSED);
	check_conn(c, "ML", 0);
	unlink(g_dq_dst.sun_path);
	rmdir(dir);
	finish_all(loop, NULL);
	ck_assert_msg(g_dq_maxdepth == 1,
		      "[%s] error_received ran nested %d deep: a failing tide_transport_sendto inside "
		      "error_received called error_received re-entrantly",
		      tt_cfg->name, g_dq_maxdepth);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_datagram_echo, test_datagram_connected, test_datagram_error_received,
		test_datagram_errors_each_reported, test_datagram_abort_in_error_received,
		test_datagram_sendto_in_error_received, test_datagram_error_received_not_reentrant,
		test_datagram_sendto_error_in_callback_not_reentrant,
	};

	return net_main("datagram", 300, tests, NET_COUNT(tests), NULL, 0);
}
