/* SPDX-License-Identifier: MIT */
/*
 * test/tls-certs DIR: writes the TLS tests' certificates (test/tls-fixture.h)
 * into DIR, which must exist, for shell tests that run real TLS clients
 * and servers: ca.pem, localhost.pem and localhost-key.pem (signed by the
 * CA, for DNS:localhost and IP:127.0.0.1), expired.pem and expired-key.pem,
 * self-signed.pem and self-signed-key.pem. Prints the CA's path.
 */
#include "config.h"
#include "tls-fixture.h"

#include <stdio.h>

int main(int argc, char **argv)
{
	struct tt_certs c;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	if (tt_certs_make(&c, argv[1]) < 0)
		return 1;
	printf("%s\n", c.ca);
	tt_certs_free(&c);
	return 0;
}
