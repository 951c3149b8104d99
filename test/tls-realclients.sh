#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tls-realclients.sh: the TLS examples against real TLS peers, on each
# backend configuration (io_uring, io_uring with the optional ops masked,
# epoll). The certificates are made here with the openssl CLI: a CA and a
# leaf for localhost and 127.0.0.1 signed by it.
#
# - examples/tls-echo-server (the CA's leaf) against `openssl s_client`:
#   the bytes come back exactly, and the server prints what
#   echo-server-stream prints; then examples/tls-echo-client against it,
#   its lines exact.
# - examples/tls-echo-client against `openssl s_server -rev` (which sends
#   back each line reversed): its lines exact.
# - examples/https-hello (the CA's leaf) against `curl --cacert`, plain,
#   --http1.1 and --http2 (ALPN h2 and http/1.1 offered: http/1.1 chosen):
#   status, protocol and body exact; ALPN with `openssl s_client`:
#   http/1.1 is agreed, an h2-only client is refused with the
#   no_application_protocol alert (and the server serves on); SIGTERM,
#   with a keep-alive client still connected, closes that client and
#   stops the server with exit 0, its summary counting what it served.
# - https-hello's own self-signed certificate (--write-cert): the
#   fingerprint it prints is the one `openssl x509 -fingerprint -sha256`
#   gives of the file, and curl trusting that file gets the answer.
# - Verification failures: tls-echo-client trusting the CA against a
#   server with a self-signed certificate, and against the leaf under
#   another name, exits 1 and prints the reason tide_strerror gives,
#   which must be what `openssl verify` says of that certificate.
#
# Everything listens on 127.0.0.1 (port 0) and connects there only. An
# automake test run from the top build folder; it prints a Check-style
# summary line, and exits 77 (skip) with the reason when the library was
# built without OpenSSL, the examples are not built, openssl or curl is
# missing, or TIDE_TEST_REALCLIENTS=0 (as test/realclients.sh).
set -u

top_builddir=${TIDE_TOP_BUILDDIR:-$PWD}
ex=$top_builddir/examples
. "$(dirname "${BASH_SOURCE[0]}")/servers.sh"
servers_init tls-realclients

skip() {
	echo "Skipped: the TLS examples against openssl and curl: $1"
	exit 77
}
[ "${TIDE_TEST_REALCLIENTS:-}" != 0 ] || skip "TIDE_TEST_REALCLIENTS=0"
[ "${TIDE_EXAMPLES:-yes}" != no ] || skip "configured with --disable-examples"
[ "${TIDE_OPENSSL:-yes}" != no ] || skip "the library is built without OpenSSL (configure found no OpenSSL 3)"
command -v openssl >/dev/null 2>&1 || skip "the openssl command is not installed"
command -v curl >/dev/null 2>&1 || skip "curl is not installed"
for p in https-hello tls-echo-server tls-echo-client; do
	if [ ! -x "$ex/$p" ]; then
		echo "$me: $ex/$p is not built (run make first)"
		exit 99
	fi
done

# ---------------------------------------------------------- certificates --

# A CA, and a leaf for localhost and 127.0.0.1 that it signs; 2 days.
make_certs() {
	local d=$tmp
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >"$d/leaf.ext"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=tide test CA" -keyout "$d/ca.key" -out "$d/ca.pem" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-subj "/CN=localhost" -keyout "$d/leaf.key" -out "$d/leaf.csr" &&
		openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -set_serial 2 \
			-days 2 -extfile "$d/leaf.ext" -out "$d/leaf.pem"
}
if ! make_certs >"$tmp/openssl.log" 2>&1; then
	echo "$me: the openssl command could not make the test certificates:"
	sed 's/^/  | /' "$tmp/openssl.log"
	exit 99
fi
leaf=(--cert "$tmp/leaf.pem" --key "$tmp/leaf.key")

# stop_server NAME: SIGTERM; the server must exit 0 within 30 s.
stop_server() {
	kill -TERM "$server_pid" 2>/dev/null
	await_exit "stop $1"
	check "$1 exits 0 on SIGTERM" [ $server_rc -eq 0 ] || sed 's/^/  | /' "$log"
}

# same_file NAME EXPECTED-FILE ACTUAL-FILE: byte for byte, else both shown.
same_file() {
	if ! same "$1" same "$(cmp "$2" "$3" 2>&1 && echo same)"; then
		echo "  expected:"; sed 's/^/  | /' "$2"
		echo "  got:"; sed 's/^/  | /' "$3"
	fi
}

# ---------------------------------------------------------- echo pair --

test_echo() {
	local log=$tmp/tls-echo-server.log out rc

	start_server "$log" "$ex/tls-echo-server" --port 0 "${leaf[@]}" || return
	# s_client sends the bytes, keeps reading (-quiet implies -ign_eof)
	# until the server's close, and prints only what it received.
	printf 'hello over TLS' | timeout 20 openssl s_client -connect "127.0.0.1:$port" \
		-servername localhost -CAfile "$tmp/ca.pem" -verify_return_error -quiet \
		>"$tmp/s_client.out" 2>"$tmp/s_client.err"
	check "s_client exits 0" [ $? -eq 0 ] || sed 's/^/  | /' "$tmp/s_client.err"
	printf 'hello over TLS' >"$tmp/expected"
	same_file "s_client gets its bytes back" "$tmp/expected" "$tmp/s_client.out"

	out=$(timeout 20 "$ex/tls-echo-client" --port "$port" --cafile "$tmp/ca.pem" \
		--server-name localhost 'Hello World!' 2>&1)
	rc=$?
	check "tls-echo-client exits 0" [ $rc -eq 0 ]
	same "tls-echo-client's lines" \
		"$(printf "TLS: TLSv1.3 -\nSend: 'Hello World!'\nReceived: 'Hello World!'\nClose the socket")" \
		"$(sed 's/^TLS: \(TLSv1.3\) TLS_[A-Z0-9_]*$/TLS: \1 -/' <<<"$out")"

	stop_server tls-echo-server
	# What echo-server-stream prints, after the certificate's line.
	sed -e 's/, SHA-256 fingerprint [0-9A-F:]*$/, SHA-256 fingerprint -/' \
		-e "s/^Serving on ('127.0.0.1', [0-9]*)$/Serving on ('127.0.0.1', -)/" \
		-e "s/ from ('127.0.0.1', [0-9]*)$/ from ('127.0.0.1', -)/" "$log" >"$tmp/server.out"
	cat >"$tmp/expected" <<EOF
tls-echo-server: certificate /CN=localhost, SHA-256 fingerprint -
Serving on ('127.0.0.1', -)
Received 'hello over TLS' from ('127.0.0.1', -)
Send: 'hello over TLS'
Close the client socket
Received 'Hello World!' from ('127.0.0.1', -)
Send: 'Hello World!'
Close the client socket
EOF
	same_file "tls-echo-server's lines" "$tmp/expected" "$tmp/server.out"
}

# tls-echo-client against openssl s_server -rev: one line, reversed.
test_client_vs_s_server() {
	local log=$tmp/s_server.log out i pid

	: >"$log"
	openssl s_server -accept 127.0.0.1:0 -naccept 1 -rev "${leaf[@]}" >"$log" 2>&1 &
	pid=$!
	port=
	for ((i = 0; i < 600; i++)); do
		port=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log")
		[ -n "$port" ] && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.05
	done
	if ! check "openssl s_server starts" [ -n "$port" ]; then
		sed 's/^/  | /' "$log"
		kill $pid 2>/dev/null
		wait $pid
		return
	fi
	out=$(timeout 20 "$ex/tls-echo-client" --port "$port" --cafile "$tmp/ca.pem" \
		--server-name localhost $'Hello World!\n' 2>&1)
	check "tls-echo-client exits 0 against s_server" [ $? -eq 0 ]
	same "tls-echo-client's lines against s_server -rev" \
		"$(printf "TLS: TLSv1.3 -\nSend: 'Hello World!\\\\n'\nReceived: '!dlroW olleH\\\\n'\nClose the socket")" \
		"$(sed 's/^TLS: \(TLSv1.3\) TLS_[A-Z0-9_]*$/TLS: \1 -/' <<<"$out")"
	# -naccept 1: it exits once that client is gone.
	for ((i = 0; i < 200; i++)); do
		kill -0 $pid 2>/dev/null || break
		sleep 0.05
	done
	kill $pid 2>/dev/null
	wait $pid 2>/dev/null
}

# The client refuses what it cannot verify: exit 1, tide_strerror's text,
# which is OpenSSL's reason (what `openssl verify` says).
test_verify_failure() {
	local log=$tmp/self-signed.log out why

	start_server "$log" "$ex/tls-echo-server" --port 0 --write-cert "$tmp/self.pem" || return
	why=$(openssl verify -CAfile "$tmp/ca.pem" "$tmp/self.pem" 2>&1 | sed -n 's/^error [0-9]* at 0 depth lookup: //p')
	check "openssl verify refuses the self-signed certificate" [ -n "$why" ]
	out=$(timeout 20 "$ex/tls-echo-client" --port "$port" --cafile "$tmp/ca.pem" \
		--server-name localhost 'Hello World!' 2>&1)
	same "tls-echo-client exits 1 on a certificate it does not trust" 1 $?
	same "tls-echo-client says why" "tls-echo-client: cannot connect to 127.0.0.1 port $port: $why" "$out"
	stop_server tls-echo-server

	start_server "$log" "$ex/tls-echo-server" --port 0 "${leaf[@]}" || return
	why=$(openssl verify -CAfile "$tmp/ca.pem" -verify_hostname example.com "$tmp/leaf.pem" 2>&1 |
	      sed -n 's/^error [0-9]* at 0 depth lookup: //p')
	check "openssl verify refuses the leaf for example.com" [ -n "$why" ]
	out=$(timeout 20 "$ex/tls-echo-client" --port "$port" --cafile "$tmp/ca.pem" \
		--server-name example.com 'Hello World!' 2>&1)
	same "tls-echo-client exits 1 on a certificate for another name" 1 $?
	same "tls-echo-client says why (another name)" "tls-echo-client: cannot connect to 127.0.0.1 port $port: $why" "$out"
	stop_server tls-echo-server
}

# ------------------------------------------------------------ https-hello --

# get NAME EXPECTED CURL-ARGS...: curl's "STATUS HTTP-VERSION BODY", exact.
get() {
	local name=$1 expected=$2 out
	shift 2
	out=$(timeout 20 curl -sS --resolve "localhost:$port:127.0.0.1" -w ' %{http_code} %{http_version}' \
		"$@" "https://localhost:$port/" 2>&1)
	same "curl $name" "$expected" "$out"
}

test_https() {
	local log=$tmp/https-hello.log out held i

	start_server "$log" "$ex/https-hello" --host 127.0.0.1 --port 0 "${leaf[@]}" || return
	get "--cacert" "Hello, World! 200 1.1" --cacert "$tmp/ca.pem"
	get "--http1.1" "Hello, World! 200 1.1" --cacert "$tmp/ca.pem" --http1.1
	# h2 and http/1.1 offered: the server picks http/1.1.
	if curl -V | grep -q HTTP2; then
		get "--http2 (ALPN)" "Hello, World! 200 1.1" --cacert "$tmp/ca.pem" --http2
	else
		get "--http2 (ALPN; curl without HTTP/2: again 1.1)" "Hello, World! 200 1.1" --cacert "$tmp/ca.pem"
	fi
	# HEAD: the headers only, and the status line exact.
	out=$(timeout 20 curl -sS -I --resolve "localhost:$port:127.0.0.1" --cacert "$tmp/ca.pem" \
		"https://localhost:$port/" 2>&1 | tr -d '\r' | sed '/^Date: /d')
	same "curl -I: headers" "$(printf 'HTTP/1.1 200 OK\nServer: tide\nContent-Type: text/plain\nContent-Length: 13\n')" "$out"

	# ALPN with openssl s_client.
	out=$(timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
		-CAfile "$tmp/ca.pem" -alpn http/1.1 </dev/null 2>&1)
	check "s_client -alpn http/1.1 agrees on http/1.1" grep -q '^ALPN protocol: http/1.1$' <<<"$out" ||
		sed 's/^/  | /' <<<"$out" | head -40
	out=$(timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
		-CAfile "$tmp/ca.pem" -alpn h2 </dev/null 2>&1)
	same "s_client -alpn h2 is refused" 1 $?
	check "s_client -alpn h2 gets no_application_protocol" \
		grep -q 'alert no application protocol' <<<"$out" || sed 's/^/  | /' <<<"$out" | head -40
	# Served on after the refusal; no ALPN at all is served too.
	out=$(printf 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
		timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
			-CAfile "$tmp/ca.pem" -verify_return_error -quiet 2>/dev/null | tr -d '\r' |
		sed '/^Date: /d')
	same "s_client without ALPN: the answer" \
		"$(printf 'HTTP/1.1 200 OK\nServer: tide\nContent-Type: text/plain\nContent-Length: 13\nConnection: close\n\nHello, World!')" "$out"

	# A keep-alive client still connected when SIGTERM comes: the server
	# closes it (s_client then exits), and exits 0.
	mkfifo "$tmp/held.in"
	timeout 60 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
		-CAfile "$tmp/ca.pem" -quiet <"$tmp/held.in" >"$tmp/held.out" 2>/dev/null &
	held=$!
	exec 5>"$tmp/held.in"
	printf 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n' >&5
	for ((i = 0; i < 400; i++)); do
		grep -q 'Hello, World!' "$tmp/held.out" && break
		sleep 0.05
	done
	check "the held connection is answered" grep -q 'Hello, World!' "$tmp/held.out"
	stop_server https-hello
	for ((i = 0; i < 400; i++)); do
		kill -0 $held 2>/dev/null || break
		sleep 0.05
	done
	check "https-hello closes the held connection on SIGTERM" eval '! kill -0 $held 2>/dev/null'
	exec 5>&-
	wait $held 2>/dev/null
	rm -f "$tmp/held.in"
	# curl x4 (one HEAD), s_client with http/1.1 (no request), the one
	# without ALPN, the held one; the refused handshake never became a
	# connection.
	check "https-hello's summary" grep -qx "https-hello: stopped by SIGTERM after 7 connections, 6 requests" "$log" ||
		sed 's/^/  | /' "$log"
}

# https-hello's own certificate: its fingerprint line, and curl trusting it.
test_https_self_signed() {
	local log=$tmp/https-self.log fp

	start_server "$log" "$ex/https-hello" --host 127.0.0.1 --port 0 --write-cert "$tmp/hello.pem" || return
	fp=$(openssl x509 -noout -fingerprint -sha256 -in "$tmp/hello.pem" | sed 's/^.*=//')
	check "the written certificate has a fingerprint" [ -n "$fp" ]
	check "https-hello prints the written certificate's fingerprint" grep -qx \
		"https-hello: certificate /CN=localhost (self-signed, made at start), SHA-256 fingerprint $fp" "$log" ||
		sed 's/^/  | /' "$log"
	get "--cacert (the self-signed one)" "Hello, World! 200 1.1" --cacert "$tmp/hello.pem"
	out=$(timeout 20 curl -sS --cacert "$tmp/hello.pem" -w ' %{http_code}' "https://127.0.0.1:$port/" 2>&1)
	same "curl --cacert by IP address (subjectAltName IP:127.0.0.1)" "Hello, World! 200" "$out"
	out=$(timeout 20 curl -sS --cacert "$tmp/ca.pem" -w ' %{http_code}' "https://127.0.0.1:$port/" 2>&1)
	check "curl refuses it without --cacert of it" [ $? -ne 0 ]
	stop_server https-hello
}

# ------------------------------------------------------------------ run --

for c in io_uring io_uring-masked epoll; do
	use_config "$c"
	echo "$me: configuration $config"
	test_echo
	test_client_vs_s_server
	test_verify_failure
	test_https
	test_https_self_signed
done

servers_summary
