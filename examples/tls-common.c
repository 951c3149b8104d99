/* SPDX-License-Identifier: MIT */
/*
 * tls-common.c: the TLS examples' contexts (tls-common.h says what each
 * function is for). The self-signed certificate is made with OpenSSL 3's
 * API the way `openssl req -x509 -newkey ec` makes one: a fresh key, a
 * random serial, the subject as its own issuer, signed with SHA-256.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls-common.h"
#include "tide.h"

/* OpenSSL's reason for the last failure, or "unknown error". */
static const char *ssl_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_get_error();

	if (!e)
		return "unknown error";
	ERR_error_string_n(e, buf, cap);
	ERR_clear_error();
	return buf;
}

/* Adds one v3 extension, in `openssl x509 -extfile`'s syntax; 0 or -1. */
static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* A self-signed certificate for localhost and 127.0.0.1, and its key. */
static int make_self_signed(X509 **xout, EVP_PKEY **kout)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIGNUM *serial = BN_new();
	X509_NAME *name;
	int ok = 0;

	if (!key || !x || !serial)
		goto out;
	name = X509_get_subject_name(x);
	ok = X509_set_version(x, X509_VERSION_3) &&
	     BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
	     BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) &&
	     /* An hour back: a client whose clock is a little behind. */
	     X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400) &&
	     X509_set_pubkey(x, key) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0) &&
	     X509_set_issuer_name(x, name) &&
	     add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") == 0 &&
	     add_ext(x, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
	     add_ext(x, NID_key_usage, "critical,digitalSignature") == 0 &&
	     add_ext(x, NID_ext_key_usage, "serverAuth") == 0 &&
	     add_ext(x, NID_subject_key_identifier, "hash") == 0 &&
	     X509_sign(x, key, EVP_sha256()) > 0;
out:
	BN_free(serial);
	if (!ok) {
		X509_free(x);
		EVP_PKEY_free(key);
		return -1;
	}
	*xout = x;
	*kout = key;
	return 0;
}

/* "NAME: certificate CN=..., SHA-256 fingerprint AB:CD:..." on stdout. */
static int print_fingerprint(const char *name, X509 *x, int self_signed)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char hex[3 * EVP_MAX_MD_SIZE + 1], subject[256];

	if (!X509_digest(x, EVP_sha256(), md, &n))
		return -1;
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + 3 * i, 4, "%02X%s", md[i], i + 1 < n ? ":" : "");
	X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
	printf("%s: certificate %s%s, SHA-256 fingerprint %s\n", name, subject,
	       self_signed ? " (self-signed, made at start)" : "", hex);
	return 0;
}

/* PEM of x into path; 0, or -1 after a message. */
static int write_pem(const char *name, const char *path, X509 *x)
{
	char why[256];
	FILE *f = fopen(path, "w");
	int ok;

	if (!f) {
		fprintf(stderr, "%s: cannot write the certificate to %s: %s\n", name, path, strerror(errno));
		return -1;
	}
	ok = PEM_write_X509(f, x);
	if (fclose(f) != 0 || !ok) {
		fprintf(stderr, "%s: cannot write the certificate to %s: %s\n", name, path,
			ok ? strerror(errno) : ssl_reason(why, sizeof(why)));
		return -1;
	}
	return 0;
}

int ex_tls_server_context(const char *name, const struct ex_tls_args *a, SSL_CTX **out)
{
	SSL_CTX *ctx = NULL;
	X509 *x = NULL;
	EVP_PKEY *key = NULL;
	char why[256];
	int err;

	if (a->cert) {
		err = tide_tls_server_context_new(a->cert, a->key, &ctx);
		if (err < 0) {
			fprintf(stderr, "%s: cannot use the certificate %s and key %s: %s\n", name, a->cert,
				a->key ? a->key : a->cert, tide_strerror(err));
			return err;
		}
		if (print_fingerprint(name, SSL_CTX_get0_certificate(ctx), 0) < 0)
			goto failed;
		*out = ctx;
		return 0;
	}
	if (make_self_signed(&x, &key) < 0)
		goto failed;
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    print_fingerprint(name, x, 1) < 0)
		goto failed;
	if (a->write_cert && write_pem(name, a->write_cert, x) < 0)
		goto fail_quietly;
	X509_free(x);
	EVP_PKEY_free(key);
	*out = ctx;
	return 0;
failed:
	fprintf(stderr, "%s: cannot make the TLS context: %s\n", name, ssl_reason(why, sizeof(why)));
fail_quietly:
	SSL_CTX_free(ctx);
	X509_free(x);
	EVP_PKEY_free(key);
	return TIDE_ETLS;
}

int ex_tls_client_context(const char *name, const struct ex_tls_args *a, SSL_CTX **out)
{
	SSL_CTX *ctx;
	char why[256];
	int err = tide_tls_client_context_new(&ctx);

	if (err < 0) {
		fprintf(stderr, "%s: cannot make the TLS context: %s\n", name, tide_strerror(err));
		return err;
	}
	if (a->cafile && SSL_CTX_load_verify_file(ctx, a->cafile) != 1) {
		fprintf(stderr, "%s: cannot load the CA certificates of %s: %s\n", name, a->cafile,
			ssl_reason(why, sizeof(why)));
		SSL_CTX_free(ctx);
		return TIDE_ETLS;
	}
	*out = ctx;
	return 0;
}
