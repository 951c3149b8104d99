/* SPDX-License-Identifier: MIT */
/*
 * resolve.c: getaddrinfo and getnameinfo, on the loop's default executor as
 * asyncio does, since glibc's resolver blocks. Numeric hosts (and numeric
 * getnameinfo) complete at once without a thread.
 *
 * The hard part is ownership when the caller cancels: the future is
 * cancelled at once, the job runs to its end anyway (a started getaddrinfo
 * cannot be stopped), and its result is freed when it lands. A result that
 * reaches its future is the future's: freed with it, unless the caller
 * took it (tide_future_take_ptr).
 */
#include "net/net.h"
#include "net/resolve-hooks.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>

static tide__getaddrinfo_cb getaddrinfo_hook;

void tide__set_getaddrinfo_hook(tide__getaddrinfo_cb fn)
{
	getaddrinfo_hook = fn;
}

int tide__system_getaddrinfo(const char *host, const char *port, const struct addrinfo *hints,
			     struct addrinfo **res)
{
	return (getaddrinfo_hook ? getaddrinfo_hook : getaddrinfo)(host, port, hints, res);
}

int tide__eai_error(int eai, int saved_errno)
{
	if (eai == 0)
		return 0;
	if (eai == EAI_SYSTEM)
		return saved_errno ? -saved_errno : -EIO;
	if (eai == EAI_MEMORY)
		return -ENOMEM;
	return TIDE_EAI_BASE + eai;
}

struct gai_req {
	struct tide_future *out;   /* the caller's future (a reference) */
	char *host, *port;         /* copies: the job reads them on a worker */
	struct addrinfo hints;
	bool has_hints;
	struct addrinfo *res;      /* what the worker got */
	int err;
	/* getnameinfo */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int flags;
	char *names;               /* "host\0service\0" */
};

static void addrinfo_release(void *list)
{
	freeaddrinfo(list);
}

/* The list is glibc's (freeaddrinfo), the names ours (tide__free). */
static void set_list(struct tide_future *f, struct addrinfo *list)
{
	f->ptr_release = addrinfo_release;
	tide_future_set_result(f, 0, list);
}

static void set_names(struct tide_future *f, char *names)
{
	f->ptr_release = tide__free;
	tide_future_set_result(f, 0, names);
}

static void req_free(struct gai_req *r)
{
	tide__free(r->host);
	tide__free(r->port);
	tide__free(r);
}

static char *dup_str(const char *s, int *err)
{
	char *d;

	if (!s)
		return NULL;
	if (!(d = tide__malloc(strlen(s) + 1))) {
		*err = -ENOMEM;
		return NULL;
	}
	return strcpy(d, s);
}

/* Runs job(r) on the default executor; landed(r) completes f on the loop. */
static int start_job(struct tide_loop *loop, tide_job_cb job, tide_future_cb landed, struct gai_req *r,
		     struct tide_future *f, struct tide_future **out)
{
	struct tide_future *jf;
	int err = tide_run_in_executor(loop, NULL, job, r, &jf);

	if (!err)
		err = tide_future_add_done_callback(jf, landed, r);
	if (err) {
		/* A job that was queued would still run: only reached when
		 * adding the callback failed, which needs ENOMEM on a free list. */
		req_free(r);
		tide_future_unref(f);
		return err;
	}
	r->out = tide_future_ref(f);
	*out = f;
	return 0;
}

static int64_t gai_job(void *arg)
{
	struct gai_req *r = arg;
	int e;

	errno = 0;
	e = tide__system_getaddrinfo(r->host, r->port, r->has_hints ? &r->hints : NULL, &r->res);
	r->err = tide__eai_error(e, errno);
	return 0;
}

/* Back on the loop: hand the list over, or free it if nobody waits. */
static void gai_landed(struct tide_future *job, void *arg)
{
	struct gai_req *r = arg;
	int err = tide_future_error(job);

	tide_future_unref(job);
	if (!err)
		err = r->err;
	if (tide_future_done(r->out)) {
		if (r->res)
			freeaddrinfo(r->res);
	} else if (err) {
		if (r->res)
			freeaddrinfo(r->res);
		tide_future_set_error(r->out, err);
	} else {
		set_list(r->out, r->res);
	}
	tide_future_unref(r->out);
	req_free(r);
}

TIDE_EXTERN int tide_getaddrinfo(struct tide_loop *loop, const char *host, const char *port,
				 const struct addrinfo *hints, struct tide_future **out)
{
	struct addrinfo h = { 0 }, *res = NULL;
	struct tide_future *f;
	struct gai_req *r;
	int err = 0, e, numeric_only;

	if (!loop || !out || (!host && !port))
		return -EINVAL;
	if ((err = tide__loop_refuses(loop)))
		return err;
	if (hints)
		h = *hints;
	if ((err = tide_future_new(loop, &f)))
		return err;
	/* A numeric host needs no resolver: answer now, as asyncio's
	 * _ipaddr_info short cut does. So does a name the caller asked to be
	 * numeric (AI_NUMERICHOST): its EAI_NONAME is final. */
	numeric_only = hints && (hints->ai_flags & AI_NUMERICHOST);
	h.ai_flags |= AI_NUMERICHOST;
	e = getaddrinfo(host, port, &h, &res);
	if (e == 0 || e != EAI_NONAME || !host || numeric_only) {
		if (e)
			tide_future_set_error(f, tide__eai_error(e, errno));
		else
			set_list(f, res);
		*out = f;
		return 0;
	}
	if (!(r = tide__calloc(1, sizeof(*r)))) {
		tide_future_unref(f);
		return -ENOMEM;
	}
	r->host = dup_str(host, &err);
	r->port = dup_str(port, &err);
	if (hints) {
		r->hints = *hints;
		r->hints.ai_addr = NULL;
		r->hints.ai_canonname = NULL;
		r->hints.ai_next = NULL;
		r->has_hints = true;
	}
	if (err) {
		req_free(r);
		tide_future_unref(f);
		return err;
	}
	return start_job(loop, gai_job, gai_landed, r, f, out);
}

static int64_t gni_job(void *arg)
{
	struct gai_req *r = arg;
	char host[NI_MAXHOST], serv[NI_MAXSERV];
	size_t hl, sl;
	int e;

	errno = 0;
	e = getnameinfo((struct sockaddr *)&r->addr, r->addrlen, host, sizeof(host), serv, sizeof(serv), r->flags);
	if ((r->err = tide__eai_error(e, errno)))
		return 0;
	hl = strlen(host);
	sl = strlen(serv);
	if (!(r->names = tide__malloc(hl + sl + 2))) {
		r->err = -ENOMEM;
		return 0;
	}
	memcpy(r->names, host, hl + 1);
	memcpy(r->names + hl + 1, serv, sl + 1);
	return 0;
}

static void gni_landed(struct tide_future *job, void *arg)
{
	struct gai_req *r = arg;
	int err = tide_future_error(job);

	tide_future_unref(job);
	if (!err)
		err = r->err;
	if (tide_future_done(r->out) || err) {
		tide__free(r->names);
		if (!tide_future_done(r->out))
			tide_future_set_error(r->out, err);
	} else {
		set_names(r->out, r->names);
	}
	tide_future_unref(r->out);
	req_free(r);
}

TIDE_EXTERN int tide_getnameinfo(struct tide_loop *loop, const struct sockaddr *addr, socklen_t addrlen, int flags,
				 struct tide_future **out)
{
	struct tide_future *f;
	struct gai_req *r;
	int err;

	if (!loop || !out || !addr || !addrlen || addrlen > sizeof(struct sockaddr_storage))
		return -EINVAL;
	if ((err = tide__loop_refuses(loop)))
		return err;
	if (!(r = tide__calloc(1, sizeof(*r))))
		return -ENOMEM;
	memcpy(&r->addr, addr, addrlen);
	r->addrlen = addrlen;
	r->flags = flags;
	if ((err = tide_future_new(loop, &f))) {
		req_free(r);
		return err;
	}
	if ((flags & (NI_NUMERICHOST | NI_NUMERICSERV)) == (NI_NUMERICHOST | NI_NUMERICSERV)) {
		/* Nothing to look up: format here. */
		gni_job(r);
		if (r->err)
			tide_future_set_error(f, r->err);
		else
			set_names(f, r->names);
		req_free(r);
		*out = f;
		return 0;
	}
	return start_job(loop, gni_job, gni_landed, r, f, out);
}
