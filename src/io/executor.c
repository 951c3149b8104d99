/* SPDX-License-Identifier: MIT */
/*
 * executor.c: the thread pool behind tide_run_in_executor (asyncio's
 * run_in_executor over a ThreadPoolExecutor) and behind regular-file I/O on
 * the epoll backend.
 *
 * Workers are started lazily up to the maximum, as ThreadPoolExecutor does.
 * A job's result crosses back to its loop through the loop's threadsafe
 * queue, so futures are only ever touched on their loop's thread. The hard
 * part is cancellation: whether a job is still queued is decided under the
 * executor's lock, so a job cancelled there never runs. A started job
 * always comes back to its loop: a cancel then completes its future at
 * once (asyncio's) and the job, cut off from the future, stays counted in
 * live_jobs until the worker delivers it, when its memory goes back; or,
 * for TIDE_JOB_CANCEL_QUEUED_ONLY, the cancel is refused and the future
 * gets the job's result (concurrent.futures's).
 */
#include "io/io.h"

#include <errno.h>
#include <unistd.h>

enum { JOB_QUEUED, JOB_RUNNING, JOB_CANCELLED };

struct tide_executor {
	pthread_mutex_t lock;      /* guards everything below */
	pthread_cond_t work;       /* workers wait here for jobs */
	pthread_cond_t drained;    /* shutdown waits here for queue and workers to empty */
	struct tide__list queue;   /* queued jobs, FIFO (qlink) */
	unsigned max_threads;      /* upper bound on workers */
	unsigned nthreads;         /* workers started */
	unsigned idle;             /* workers waiting on `work` */
	unsigned running;          /* jobs being run now */
	bool shutdown;             /* no new jobs; workers exit once the queue is empty */
	pthread_t *threads;        /* started workers, joined by free */
};

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n + 4 < 32 ? (unsigned)n + 4 : 32;
}

TIDE_EXTERN int tide_executor_new(const struct tide_executor_opts *opts, struct tide_executor **out)
{
	struct tide_executor *ex;
	unsigned threads = 0;

	if (!out || TIDE__OPTS_BAD(opts))
		return -EINVAL;
	threads = TIDE__OPT(opts, threads, 0u);
	if (!threads)
		threads = default_threads();
	if (threads > 1024)
		return -EINVAL;
	ex = tide__calloc(1, sizeof(*ex));
	if (!ex)
		return -ENOMEM;
	ex->threads = tide__calloc(threads, sizeof(pthread_t));
	if (!ex->threads) {
		tide__free(ex);
		return -ENOMEM;
	}
	ex->max_threads = threads;
	pthread_mutex_init(&ex->lock, NULL);
	tide__list_init(&ex->queue);
	pthread_cond_init(&ex->work, NULL);
	pthread_cond_init(&ex->drained, NULL);
	*out = ex;
	return 0;
}

static void *worker(void *arg)
{
	struct tide_executor *ex = arg;

	pthread_mutex_lock(&ex->lock);
	for (;;) {
		struct tide__list *l = tide__list_first(&ex->queue);
		struct tide__job *job;

		if (!l) {
			if (ex->shutdown)
				break;
			ex->idle++;
			pthread_cond_wait(&ex->work, &ex->lock);
			ex->idle--;
			continue;
		}
		tide__list_del(l);
		job = tide__list_entry(l, struct tide__job, qlink);
		job->state = JOB_RUNNING;
		ex->running++;
		pthread_mutex_unlock(&ex->lock);

		job->result = job->fn(job->arg);
		/* From here the job belongs to its loop again (which may free it
		 * at once): only a RUNNING job's absence from the queue matters to
		 * a cancel, so nothing of it is touched after the push. */
		tide__ts_push(job->loop, &job->node);

		pthread_mutex_lock(&ex->lock);
		ex->running--;
		if (!ex->running && tide__list_empty(&ex->queue))
			pthread_cond_broadcast(&ex->drained);
	}
	pthread_mutex_unlock(&ex->lock);
	return NULL;
}

int tide__executor_submit(struct tide_loop *loop, struct tide_executor *ex, struct tide__job *job)
{
	int err = 0;

	job->ex = ex;
	job->loop = loop;
	job->state = JOB_QUEUED;
	pthread_mutex_lock(&ex->lock);
	if (ex->shutdown) {
		pthread_mutex_unlock(&ex->lock);
		return TIDE_ECLOSED;
	}
	tide__list_add_tail(&ex->queue, &job->qlink);
	if (ex->idle > 0) {
		pthread_cond_signal(&ex->work);
	} else if (ex->nthreads < ex->max_threads) {
		pthread_attr_t attr;

		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		err = -pthread_create(&ex->threads[ex->nthreads], &attr, worker, ex);
		pthread_attr_destroy(&attr);
		if (!err)
			ex->nthreads++;
		else if (ex->nthreads > 0)
			err = 0; /* the running workers will get to it */
		else
			tide__list_del(&job->qlink);
	}
	pthread_mutex_unlock(&ex->lock);
	if (!err)
		loop->live_jobs++;
	return err;
}

int tide__executor_unqueue(struct tide__job *job)
{
	struct tide_executor *ex = job->ex;
	int removed = 0;

	pthread_mutex_lock(&ex->lock);
	if (job->state == JOB_QUEUED) {
		tide__list_del(&job->qlink);
		job->state = JOB_CANCELLED;
		removed = 1;
		if (!ex->running && tide__list_empty(&ex->queue))
			pthread_cond_broadcast(&ex->drained);
	}
	pthread_mutex_unlock(&ex->lock);
	if (removed)
		job->loop->live_jobs--;
	return removed;
}

/* Waits until nothing is queued or running, without stopping the executor. */
static void executor_drain(struct tide_executor *ex)
{
	pthread_mutex_lock(&ex->lock);
	while (!tide__list_empty(&ex->queue) || ex->running)
		pthread_cond_wait(&ex->drained, &ex->lock);
	pthread_mutex_unlock(&ex->lock);
}

TIDE_EXTERN int tide_executor_free(struct tide_executor *ex)
{
	unsigned i;

	if (!ex)
		return -EINVAL;
	pthread_mutex_lock(&ex->lock);
	ex->shutdown = true;
	pthread_cond_broadcast(&ex->work);
	pthread_mutex_unlock(&ex->lock);
	/* Workers finish the queue, then exit. */
	for (i = 0; i < ex->nthreads; i++)
		pthread_join(ex->threads[i], NULL);
	pthread_cond_destroy(&ex->work);
	pthread_cond_destroy(&ex->drained);
	pthread_mutex_destroy(&ex->lock);
	tide__free(ex->threads);
	tide__free(ex);
	return 0;
}

/*
 * A forked child's copy of an executor: its workers stayed in the parent
 * (fork copies only the calling thread) and its lock may have been copied
 * held, so neither is touched; only the memory goes. Jobs it held are the
 * parent's.
 */
void tide__executor_forget(struct tide_executor *ex)
{
	tide__free(ex->threads);
	tide__free(ex);
}

struct tide_executor *tide__loop_executor(struct tide_loop *loop, int *err)
{
	if (!loop->default_ex) {
		struct tide_executor_opts o = { .size = sizeof(o), .threads = loop->executor_threads };
		*err = tide_executor_new(&o, &loop->default_ex);
		if (*err)
			return NULL;
		loop->default_ex_owned = true;
	}
	return loop->default_ex;
}

TIDE_EXTERN int tide_loop_set_default_executor(struct tide_loop *loop, struct tide_executor *ex)
{
	if (!loop || !ex)
		return -EINVAL;
	if (loop->default_ex && loop->default_ex_owned) {
		/* Replacing the loop's own pool: let its jobs finish, then free it. */
		tide_executor_free(loop->default_ex);
	}
	loop->default_ex = ex;
	loop->default_ex_owned = false;
	return 0;
}

TIDE_EXTERN int tide_loop_shutdown_default_executor(struct tide_loop *loop)
{
	if (!loop)
		return -EINVAL;
	if (!loop->default_ex)
		return 0;
	if (loop->default_ex_owned)
		tide_executor_free(loop->default_ex);
	else
		executor_drain(loop->default_ex);
	loop->default_ex = NULL;
	loop->default_ex_owned = false;
	return 0;
}

/* -------------------------------------------------------------- jobs -- */

/* Jobs are made and freed on the loop thread: a per-loop free list, no lock. */
static struct tide__job *job_new(struct tide_loop *loop)
{
	struct tide__job *job = loop->free_jobs;

	if (job)
		loop->free_jobs = job->next;
	else if (!(job = tide__malloc(sizeof(*job))))
		return NULL;
	memset(job, 0, sizeof(*job));
	return job;
}

static void job_free(struct tide_loop *loop, struct tide__job *job)
{
	job->next = loop->free_jobs;
	loop->free_jobs = job;
}

/* On the loop thread: the user job's result completes its future, unless
 * a cancel cut the two apart while it ran (the result is dropped). */
static void user_job_delivered(struct tide__tsnode *n)
{
	struct tide__job *job = (struct tide__job *)n;
	struct tide_future *f = job->fut;

	job->loop->live_jobs--;
	if (!f) {
		job_free(job->loop, job);
		return;
	}
	f->cancel_hook = NULL;
	tide__future_complete_res(f, job->result);
	tide_future_unref(f);
	job_free(job->loop, job);
}

static int user_job_cancel(struct tide_future *f, void *arg)
{
	struct tide__job *job = arg;
	bool queued = tide__executor_unqueue(job);

	if (!queued && job->queued_only)
		return 0; /* running: concurrent.futures refuses */
	f->cancel_hook = NULL;
	tide_future_set_error(f, -ECANCELED);
	tide_future_unref(f);
	if (queued) {
		job_free(job->loop, job);
	} else {
		/* Running, or done with its delivery on the way: asyncio
		 * cancels its future now and lets the thread finish. The job
		 * lives (and counts in live_jobs) until user_job_delivered. */
		job->fut = NULL;
	}
	return 1;
}

TIDE_EXTERN int tide_run_in_executor(struct tide_loop *loop, struct tide_executor *ex, tide_job_cb fn, void *arg,
				     struct tide_future **out)
{
	return tide_run_in_executor_ex(loop, ex, fn, arg, NULL, out);
}

TIDE_EXTERN int tide_run_in_executor_ex(struct tide_loop *loop, struct tide_executor *ex, tide_job_cb fn, void *arg,
					const struct tide_job_opts *opts, struct tide_future **out)
{
	struct tide__job *job;
	struct tide_future *f;
	unsigned flags;
	int err;

	if (!loop || !fn || !out || TIDE__OPTS_BAD(opts))
		return -EINVAL;
	flags = TIDE__OPT(opts, flags, 0u);
	if (flags & ~(unsigned)TIDE_JOB_CANCEL_QUEUED_ONLY)
		return -EINVAL;
	if ((err = tide__loop_refuses(loop)))
		return err;
	if (!ex && !(ex = tide__loop_executor(loop, &err)))
		return err;
	if (!(job = job_new(loop)))
		return -ENOMEM;
	err = tide_future_new(loop, &f);
	if (err) {
		job_free(loop, job);
		return err;
	}
	job->node.run = user_job_delivered;
	job->fn = fn;
	job->arg = arg;
	job->fut = tide_future_ref(f);
	job->queued_only = flags & TIDE_JOB_CANCEL_QUEUED_ONLY;
	err = tide__executor_submit(loop, ex, job);
	if (err) {
		tide_future_unref(f);
		tide_future_unref(f);
		job_free(loop, job);
		return err;
	}
	f->cancel_hook = user_job_cancel;
	f->cancel_arg = job;
	*out = f;
	return 0;
}

/* ------------------------------------------------- executor-path ops -- */

static void op_job_delivered(struct tide__tsnode *n)
{
	struct tide__job *job = (struct tide__job *)n;
	struct tide__op *op = job->op;
	int64_t res = job->result;

	job->loop->live_jobs--;
	op->job = NULL;
	job_free(job->loop, job);
	tide__op_complete(op, (int)res);
}

int tide__op_submit_executor(struct tide__op *op)
{
	struct tide_loop *loop = op->loop;
	struct tide_executor *ex;
	struct tide__job *job;
	int err = 0;

	if (!(ex = tide__loop_executor(loop, &err)))
		return err;
	if (!(job = job_new(loop)))
		return -ENOMEM;
	job->node.run = op_job_delivered;
	job->fn = tide__op_blocking;
	job->arg = op;
	job->op = op;
	err = tide__executor_submit(loop, ex, job);
	if (err) {
		job_free(loop, job);
		return err;
	}
	op->job = job;
	return 0;
}

int tide__op_cancel_executor(struct tide__op *op)
{
	struct tide__job *job = op->job;

	if (!job || !tide__executor_unqueue(job))
		return 0;
	op->job = NULL;
	job_free(op->loop, job);
	return 1;
}
