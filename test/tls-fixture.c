/* SPDX-License-Identifier: MIT */
/*
 * tls-fixture.c: the TLS tests' certificates (see tls-fixture.h), made
 * with OpenSSL's API: P-256 keys, SHA-256 signatures, the extensions a
 * verifying client looks at (basicConstraints, keyUsage, subjectAltName,
 * the key identifiers).
 *
 * The hard part is the names: a client verifies 127.0.0.1 against the
 * IP entry and "localhost" against the DNS entry of subjectAltName, so
 * the leaves carry both; the expired leaf differs from the good one only
 * in its dates, the self-signed one only in its issuer.
 */
#include "config.h"
#include "tls-fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static long g_serial = 1;
static int g_made_dir;

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	if (!(ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)))
		return -1;
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return 0;
}

/* A certificate for key, named cn, valid from now + from to now + to
 * seconds, signed by issuer (NULL: itself). */
static X509 *cert_new(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, long from, long to, int ca)
{
	X509 *x = X509_new();
	X509_NAME *name;

	if (!x)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)getpid() * 100 + g_serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"tide tests", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	if (add_ext(x, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
	    add_ext(x, issuer, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") ||
	    add_ext(x, issuer, NID_subject_key_identifier, "hash") ||
	    (issuer && add_ext(x, issuer, NID_authority_key_identifier, "keyid:always")) ||
	    (!ca && add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth")) ||
	    (!ca && add_ext(x, issuer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1")) ||
	    !X509_sign(x, ikey ? ikey : key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int write_cert(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");
	int ok = f && PEM_write_X509(f, x);

	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

static int write_key(const char *path, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");
	int ok = f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);

	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

static SSL_CTX *server_ctx(const struct tt_pem *p)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, p->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, p->key, SSL_FILETYPE_PEM) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int paths(struct tt_certs *c, struct tt_pem *p, const char *name)
{
	int a = snprintf(p->cert, sizeof(p->cert), "%s/%s.pem", c->dir, name);
	int b = snprintf(p->key, sizeof(p->key), "%s/%s-key.pem", c->dir, name);

	return a < (int)sizeof(p->cert) && b < (int)sizeof(p->key) ? 0 : -1;
}

int tt_certs_make(struct tt_certs *c, const char *dir)
{
	EVP_PKEY *cak = NULL, *lk = NULL, *sk = NULL;
	X509 *ca = NULL, *leaf = NULL, *old = NULL, *self = NULL;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (dir) {
		snprintf(c->dir, sizeof(c->dir), "%s", dir);
	} else {
		const char *tmp = getenv("TMPDIR");

		snprintf(c->dir, sizeof(c->dir), "%s/tide-tls.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(c->dir)) {
			perror("tls-fixture: mkdtemp");
			return -1;
		}
		g_made_dir = 1;
	}
	snprintf(c->ca, sizeof(c->ca), "%s/ca.pem", c->dir);
	if (paths(c, &c->leaf, "localhost") || paths(c, &c->expired, "expired") || paths(c, &c->self, "self-signed"))
		goto out;
	if (!(cak = EVP_EC_gen("P-256")) || !(lk = EVP_EC_gen("P-256")) || !(sk = EVP_EC_gen("P-256")))
		goto out;
	if (!(ca = cert_new(cak, "tide test CA", NULL, NULL, -3600, 30L * 86400, 1)) ||
	    !(leaf = cert_new(lk, "localhost", ca, cak, -3600, 30L * 86400, 0)) ||
	    !(old = cert_new(lk, "localhost", ca, cak, -2L * 86400, -86400, 0)) ||
	    !(self = cert_new(sk, "localhost", NULL, NULL, -3600, 30L * 86400, 0)))
		goto out;
	if (write_cert(c->ca, ca) || write_cert(c->leaf.cert, leaf) || write_key(c->leaf.key, lk) ||
	    write_cert(c->expired.cert, old) || write_key(c->expired.key, lk) || write_cert(c->self.cert, self) ||
	    write_key(c->self.key, sk))
		goto out;
	if (!(c->server = server_ctx(&c->leaf)) || !(c->server_expired = server_ctx(&c->expired)) ||
	    !(c->server_self = server_ctx(&c->self)))
		goto out;
	if (!(c->client = SSL_CTX_new(TLS_client_method())) || !(c->client_noverify = SSL_CTX_new(TLS_client_method())))
		goto out;
	if (!SSL_CTX_set_min_proto_version(c->client, TLS1_2_VERSION) ||
	    !X509_STORE_add_cert(SSL_CTX_get_cert_store(c->client), ca))
		goto out;
	SSL_CTX_set_verify(c->client, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify(c->client_noverify, SSL_VERIFY_NONE, NULL);
	rc = 0;
out:
	if (rc) {
		fprintf(stderr, "tls-fixture: cannot make the test certificates in %s:\n", c->dir);
		ERR_print_errors_fp(stderr);
	}
	X509_free(ca);
	X509_free(leaf);
	X509_free(old);
	X509_free(self);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(lk);
	EVP_PKEY_free(sk);
	return rc;
}

void tt_certs_free(struct tt_certs *c)
{
	SSL_CTX_free(c->server);
	SSL_CTX_free(c->server_expired);
	SSL_CTX_free(c->server_self);
	SSL_CTX_free(c->client);
	SSL_CTX_free(c->client_noverify);
	if (g_made_dir) {
		const char *files[] = { c->ca, c->leaf.cert, c->leaf.key, c->expired.cert, c->expired.key,
					c->self.cert, c->self.key };

		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
			unlink(files[i]);
		rmdir(c->dir);
		g_made_dir = 0;
	}
	memset(c, 0, sizeof(*c));
}
