/* SPDX-License-Identifier: MIT */
/*
 * tls-fixture.h: certificates for the TLS tests, made with OpenSSL's API
 * when a test program starts (never keys checked in): a CA, a leaf for
 * "localhost" (SAN DNS:localhost, IP:127.0.0.1) that it signs, an expired
 * leaf it signs, a self-signed leaf; their PEM files in a mkdtemp folder
 * (test/tls-certs writes them where a shell test asks), server contexts
 * for each leaf and client contexts that trust the CA.
 *
 * The hard part is only that every test program forks per configuration:
 * the files and contexts are made once, before, and shared read-only.
 */
#ifndef TIDE_TEST_TLS_FIXTURE_H
#define TIDE_TEST_TLS_FIXTURE_H

#include <openssl/ssl.h>

/* The PEM files of one certificate and its key. */
struct tt_pem {
	char cert[256];
	char key[256];
};

struct tt_certs {
	char dir[200];          /* where the files are */
	char ca[256];           /* the CA's certificate (PEM) */
	struct tt_pem leaf;     /* "localhost", 127.0.0.1; signed by the CA */
	struct tt_pem expired;  /* the same names, signed by the CA, expired yesterday */
	struct tt_pem self;     /* the same names, self-signed */
	/* Server contexts (TLS 1.2 at least) of each leaf. */
	SSL_CTX *server, *server_expired, *server_self;
	/* A client context that trusts the CA and verifies (SSL_VERIFY_PEER). */
	SSL_CTX *client;
	/* A client context that verifies nothing. */
	SSL_CTX *client_noverify;
};

/*
 * Makes the certificates and writes them into dir (NULL: a new mkdtemp
 * folder under $TMPDIR or /tmp, removed by tt_certs_free), and the
 * contexts. 0, or -1 with a reason printed.
 */
int tt_certs_make(struct tt_certs *c, const char *dir);
/* Frees the contexts; removes the files if tt_certs_make made the folder. */
void tt_certs_free(struct tt_certs *c);

#endif
