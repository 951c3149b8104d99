# SPDX-License-Identifier: MIT
# The tutorial's examples, built with the library (not installed) and run by
# ./quickstart demo.
noinst_PROGRAMS += examples/seed-stopper examples/seed-future \
	examples/seed-print-sum examples/seed-task examples/seed-zen
examples_seed_stopper_SOURCES = examples/seed-stopper.c
examples_seed_stopper_LDADD = src/libtide.la
examples_seed_future_SOURCES = examples/seed-future.c
examples_seed_future_LDADD = src/libtide.la
examples_seed_print_sum_SOURCES = examples/seed-print-sum.c
examples_seed_print_sum_LDADD = src/libtide.la
examples_seed_task_SOURCES = examples/seed-task.c
examples_seed_task_LDADD = src/libtide.la
# zen(): python3 -c "import this" read line by line (test/seed-zen.sh
# checks it prints what python3 prints).
examples_seed_zen_SOURCES = examples/seed-zen.c
examples_seed_zen_LDADD = src/libtide.la

# The tutorial's networking examples (echo over protocols and over streams),
# and two servers for real clients: http-hello (wrk) and mini-redis
# (redis-benchmark, redis-cli). ./quickstart demo runs them;
# test/realclients.sh drives the servers with wrk and redis-benchmark.
NET_EXAMPLES = examples/echo-server-protocol examples/echo-client-protocol \
	examples/echo-server-stream examples/echo-client-stream \
	examples/http-hello examples/mini-redis
noinst_PROGRAMS += $(NET_EXAMPLES)
NET_EXAMPLES_LDADD = src/libtide.la -lpthread
# What they share (options, repr(), the servers' loops and connections).
NET_COMMON = examples/net-common.c examples/net-common.h
examples_echo_server_protocol_SOURCES = examples/echo-server-protocol.c $(NET_COMMON)
examples_echo_server_protocol_LDADD = $(NET_EXAMPLES_LDADD)
examples_echo_client_protocol_SOURCES = examples/echo-client-protocol.c $(NET_COMMON)
examples_echo_client_protocol_LDADD = $(NET_EXAMPLES_LDADD)
examples_echo_server_stream_SOURCES = examples/echo-server-stream.c $(NET_COMMON)
examples_echo_server_stream_LDADD = $(NET_EXAMPLES_LDADD)
examples_echo_client_stream_SOURCES = examples/echo-client-stream.c $(NET_COMMON)
examples_echo_client_stream_LDADD = $(NET_EXAMPLES_LDADD)
examples_http_hello_SOURCES = examples/http-hello.c examples/http-parse.c examples/http-parse.h $(NET_COMMON)
examples_http_hello_LDADD = $(NET_EXAMPLES_LDADD)
examples_mini_redis_SOURCES = examples/mini-redis.c examples/resp-parse.c examples/resp-parse.h $(NET_COMMON)
examples_mini_redis_LDADD = $(NET_EXAMPLES_LDADD)

# The same over TLS, with OpenSSL only: https-hello, tls-echo-server and
# tls-echo-client are http-hello.c, echo-server-stream.c and
# echo-client-stream.c built with EX_TLS (each file includes its plain
# one), and tls-common.c makes their contexts (a self-signed certificate
# by default). ./quickstart demo runs them; test/tls-realclients.sh
# drives them with curl and openssl s_client / s_server.
if HAVE_OPENSSL
TLS_EXAMPLES = examples/https-hello examples/tls-echo-server examples/tls-echo-client
noinst_PROGRAMS += $(TLS_EXAMPLES)
TLS_COMMON = examples/tls-common.c examples/tls-common.h $(NET_COMMON)
TLS_EXAMPLES_CPPFLAGS = $(AM_CPPFLAGS) $(OPENSSL_CFLAGS)
TLS_EXAMPLES_LDADD = src/libtide.la $(OPENSSL_LIBS) -lpthread
examples_https_hello_SOURCES = examples/https-hello.c examples/http-parse.c examples/http-parse.h $(TLS_COMMON)
examples_https_hello_CPPFLAGS = $(TLS_EXAMPLES_CPPFLAGS)
examples_https_hello_LDADD = $(TLS_EXAMPLES_LDADD)
examples_tls_echo_server_SOURCES = examples/tls-echo-server.c $(TLS_COMMON)
examples_tls_echo_server_CPPFLAGS = $(TLS_EXAMPLES_CPPFLAGS)
examples_tls_echo_server_LDADD = $(TLS_EXAMPLES_LDADD)
examples_tls_echo_client_SOURCES = examples/tls-echo-client.c $(TLS_COMMON)
examples_tls_echo_client_CPPFLAGS = $(TLS_EXAMPLES_CPPFLAGS)
examples_tls_echo_client_LDADD = $(TLS_EXAMPLES_LDADD)
endif

# README.md's opening example, verbatim (test/readme.sh checks that the two
# agree and that it echoes).
noinst_PROGRAMS += examples/readme-echo
examples_readme_echo_SOURCES = examples/readme-echo.c
examples_readme_echo_LDADD = src/libtide.la
