/* SPDX-License-Identifier: MIT */
/*
 * util.c: the replaceable allocator, the monotonic clock, error texts and
 * the caller-bug panic. The one hard part is the allocator switch: it must
 * happen before any allocation, so it locks once the first loop exists.
 */
#include "core/core.h"

#include <netdb.h>
#ifdef TIDE_HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#endif

#include <errno.h>
#include <time.h>

static void *(*alloc_malloc)(size_t) = malloc;
static void *(*alloc_realloc)(void *, size_t) = realloc;
static void *(*alloc_calloc)(size_t, size_t) = calloc;
static void (*alloc_free)(void *) = free;
atomic_bool tide__allocator_locked;

void *tide__malloc(size_t n) { return alloc_malloc(n); }
void *tide__calloc(size_t n, size_t m) { return alloc_calloc(n, m); }
void *tide__realloc(void *p, size_t n) { return alloc_realloc(p, n); }
void tide__free(void *p)
{
	if (p)
		alloc_free(p);
}

/*
 * For memory the library allocated and a caller took (a future's ptr):
 * only the allocator that made it may free it, and the caller may not know
 * which one tide_replace_allocator installed.
 */
TIDE_EXTERN void tide_free(void *p)
{
	tide__free(p);
}

TIDE_EXTERN int tide_replace_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
				       void *(*calloc_fn)(size_t, size_t), void (*free_fn)(void *))
{
	if (!malloc_fn || !realloc_fn || !calloc_fn || !free_fn)
		return -EINVAL;
	if (atomic_load(&tide__allocator_locked))
		return -EBUSY;
	alloc_malloc = malloc_fn;
	alloc_realloc = realloc_fn;
	alloc_calloc = calloc_fn;
	alloc_free = free_fn;
	return 0;
}

uint64_t tide__clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void tide__panic(const char *file, int line, const char *msg)
{
	fprintf(stderr, "tide: %s:%d: %s\n", file, line, msg);
	fflush(stderr);
	abort();
}

TIDE_EXTERN const char *tide_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case TIDE_EINVALID_STATE: return "invalid state (the future is not in a state that allows this)";
	case TIDE_ECLOSED: return "closed (the loop, transport or stream was closed)";
	case TIDE_ESTOPPED: return "the loop stopped before the future completed";
	case TIDE_ERUNNING: return "the loop is already running";
	case TIDE_ELIMIT_OVERRUN: return "limit overrun (separator not found within the limit)";
	case TIDE_EINCOMPLETE_READ: return "incomplete read (EOF before the expected bytes)";
	case TIDE_EQUEUE_FULL: return "queue full";
	case TIDE_EQUEUE_EMPTY: return "queue empty";
	case TIDE_ENOT_IN_TASK: return "not inside a task";
	case TIDE_EBROKEN_BARRIER: return "broken barrier";
	case TIDE_EFORKED: return "the loop belongs to the parent process (this process was forked after it was made): make a new loop";
	case TIDE_ETLS: return "TLS error (OpenSSL gave no reason)";
	case TIDE_ESSL_CLOSED: return "the transport is under a TLS transport now (start_tls took it)";
	default: break;
	}
	if (err < TIDE_EAI_BASE && err > TIDE_ETLS_VERIFY_BASE)
		return gai_strerror(err - TIDE_EAI_BASE);
	/* OpenSSL's texts, read from the library directly: the net layer's
	 * TLS codes name them, and they are static strings. */
	if (err < TIDE_ETLS_VERIFY_BASE && err > TIDE_ETLS_VERIFY_BASE - 500) {
#ifdef TIDE_HAVE_OPENSSL
		return X509_verify_cert_error_string(TIDE_ETLS_VERIFY_BASE - err);
#else
		return "TLS certificate verification failed";
#endif
	}
	if (err < TIDE_ETLS_BASE && err > TIDE_ETLS_BASE - 0x800000) {
#ifdef TIDE_HAVE_OPENSSL
		const char *s;

		/* The SSL library's texts load with it, maybe not yet. */
		OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS, NULL);
		s = ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, TIDE_ETLS_BASE - err));
		return s ? s : "TLS error (a reason OpenSSL has no text for)";
#else
		return "TLS error";
#endif
	}
	if (err < 0 && err > -4096) {
		/* strerrordesc_np is thread-safe and never formats into a shared buffer. */
		const char *s = strerrordesc_np(-err);
		return s ? s : "unknown error";
	}
	return "unknown error";
}

TIDE_EXTERN const char *tide_version(void)
{
	return PACKAGE_VERSION;
}

const char *tide__getenv(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}
