/* SPDX-License-Identifier: MIT */
/*
 * task.c: asyncio.Task in C. A task is a future whose body runs as a
 * stackful coroutine; tide_await() parks it on another future and switches
 * back to the loop, and the future's done callback switches into it again.
 *
 * The hard part is cancellation, with asyncio's semantics and DESIGN.md's
 * ownership rule on top: tide_task_cancel() counts a request, owes the task
 * one -ECANCELED (must_cancel) and cancels the future it awaits. The await
 * only returns once that future is really done, so an op's buffer is never
 * abandoned to the kernel; if the op delivered data instead of cancelling,
 * the data is returned and the owed -ECANCELED comes at the next await (or
 * cancels the task as its body returns, as asyncio does).
 */
#include "task/coro.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>

/*
 * What a park, wake-up and step touch (fut.loop, parked, the flags, and
 * coro's sp and stack) is 40 contiguous bytes: the future's last field
 * and the four after it, one or two cache lines (a server with thousands
 * of tasks finds each one cold).
 */
struct tide__task {
	struct tide_future fut;       /* must be first: a task is a future */
	struct tide__park *parked;    /* the park of a sync primitive or stream */
	bool must_cancel;             /* one -ECANCELED is owed to the body */
	bool cancel_delegated;        /* the awaited future took a cancel for us */
	bool started;                 /* the body has begun */
	bool finished;                /* the body returned; the stack can go */
	uint32_t cancel_requests;     /* tide_task_cancelling() (fills the hole here) */
	struct tide__coro coro;       /* its stack and saved context (sp first) */
	struct tide_future *waiting;  /* the future tide_await parked on */
	tide_task_cb fn;              /* the body */
	void *arg;
	int64_t ret;                  /* what the body returned */
	struct tide__list link;       /* in the loop's tasks, or its free_tasks */
	uint64_t number;              /* "Task-N" */
	char *name;                   /* set by the user, or NULL */
	char autoname[24];            /* "Task-N", formatted on first use */
	/* Called as the task ends, right after its future completes (cfuture.c). */
	void (*on_finish)(struct tide_future *task, void *arg);
	void *on_finish_arg;
};

/* The running task of this thread (tasks never run nested). */
static TIDE__TLS struct tide__task *current;

/* What a task plugs into its future (core knows no task). */
static void task_release(struct tide_future *f);
static void step_soon(void *arg);
static const struct tide__future_hooks task_hooks = {
	/* A task is cancelled through its body, as asyncio's Task.cancel. */
	.cancel = tide_task_cancel,
	.release = task_release,
	.run = step_soon,
};

static struct tide__task *task_of(const struct tide_future *f)
{
	return f && f->hooks == &task_hooks ? (struct tide__task *)f : NULL;
}

static const char *task_name(struct tide__task *t)
{
	if (t->name)
		return t->name;
	if (!t->autoname[0]) {
		/* Formatted by hand: this also runs in the SIGSEGV handler. */
		char digits[21];
		int n = 0, i = 0;
		uint64_t v = t->number;

		do
			digits[n++] = (char)('0' + v % 10);
		while ((v /= 10) && n < 20);
		memcpy(t->autoname, "Task-", 5);
		i = 5;
		while (n)
			t->autoname[i++] = digits[--n];
		t->autoname[i] = '\0';
	}
	return t->autoname;
}

const char *tide__overflow_name(void)
{
	return current ? task_name(current) : "?";
}

static char *dup_name(const char *name)
{
	size_t n = strlen(name) + 1;
	char *copy = tide__malloc(n);

	if (copy)
		memcpy(copy, name, n);
	return copy;
}

/* ------------------------------------------------------------ stepping -- */

static void task_entry(void *arg)
{
	struct tide__task *t = arg;
	struct tide_loop *loop = t->fut.loop;

	tide__coro_started(&t->coro, loop->sched);
	t->started = true;
	/* asyncio: a task cancelled before its first step never runs its body. */
	if (t->must_cancel) {
		t->must_cancel = false;
		t->ret = -ECANCELED;
	} else {
		t->ret = t->fn(t->arg);
	}
	t->finished = true;
	tide__coro_switch_to(&t->coro, loop->sched, true);
	__builtin_unreachable();
}

static void task_finish(struct tide__task *t)
{
	struct tide_loop *loop = t->fut.loop;
	int64_t ret = t->ret;

	tide__coro_destroy(&t->coro);
	tide__stack_put(loop, t->coro.stack);
	t->coro.stack = NULL;
	/* Off the live list. */
	tide__list_del(&t->link);
	loop->tasks_alive--;
	/* asyncio: a cancellation still owed when the body returns wins. */
	if (t->must_cancel && ret >= 0)
		ret = -ECANCELED;
	t->must_cancel = false;
	tide__future_complete_res(&t->fut, ret);
	if (t->on_finish)
		t->on_finish(&t->fut, t->on_finish_arg);
	/* The loop's reference, held while the body could still run. */
	tide_future_unref(&t->fut);
}

/* Runs the task until its next await (or its end): one asyncio __step. */
static void task_step(void *arg)
{
	struct tide__task *t = arg;
	struct tide_loop *loop = t->fut.loop;

	tide__bug_on(current != NULL, "a task step inside a task");
	current = t;
	tide__cur_stack = t->coro.stack;
	tide__coro_switch_to(loop->sched, &t->coro, false);
	tide__cur_stack = NULL;
	current = NULL;
	if (t->finished)
		task_finish(t);
}

/* Parks the running task: back to the loop until something steps it. */
static void task_suspend(struct tide__task *t)
{
	tide__coro_switch_to(&t->coro, t->fut.loop->sched, false);
}

/* ------------------------------------------------------------- spawning -- */

/* Debug mode's slow-callback report: a task's step is named as asyncio
 * names a Task ("<Task pending name='Task-1' coro=<body>>"). */
static int task_describe(tide_call_cb fn, void *arg, char *buf, size_t cap)
{
	struct tide__task *t = arg;
	Dl_info info;
	const char *body = NULL;

	if (fn != task_step && fn != step_soon)
		return 0;
	if (dladdr((void *)t->fn, &info) && info.dli_sname && info.dli_saddr == (void *)t->fn)
		body = info.dli_sname;
	return snprintf(buf, cap, "<Task %s name='%s' coro=<%s %p>>", t->finished ? "finished" : "pending",
			task_name(t), body ? body : "body", (void *)t->fn);
}

static int ensure_sched(struct tide_loop *loop)
{
	/* Atomic: loops on several threads store the same value. */
	__atomic_store_n(&tide__describe_hook, task_describe, __ATOMIC_RELAXED);
	if (loop->sched)
		return 0;
	loop->sched = tide__calloc(1, sizeof(struct tide__coro));
	if (!loop->sched)
		return -ENOMEM;
	tide__coro_init_sched(loop->sched);
	return 0;
}

TIDE_EXTERN int tide_task_spawn(struct tide_loop *loop, tide_task_cb fn, void *arg,
				const struct tide_task_opts *opts, struct tide_future **out)
{
	struct tide__stack *stack;
	struct tide__task *t;
	struct tide__list *l;
	size_t size = 0;
	const char *name = NULL;
	int err;

	if (!loop || !fn || !out || TIDE__OPTS_BAD(opts))
		return -EINVAL;
	if (tide__loop_closed(loop))
		return TIDE_ECLOSED;
	name = TIDE__OPT(opts, name, (const char *)NULL);
	size = TIDE__OPT(opts, stack_size, (size_t)0);
	if (!size)
		size = loop->task_stack_size;
	if (size < 16 * 1024 || size > (size_t)1 << 30)
		return -EINVAL;
	if ((err = ensure_sched(loop)))
		return err;
	tide__overflow_arm();
	if ((err = tide__stack_get(loop, size, &stack)))
		return err;
	if ((l = tide__list_first(&loop->free_tasks))) {
		tide__list_del(l);
		t = tide__list_entry(l, struct tide__task, link);
	} else if (!(t = tide__malloc(sizeof(*t)))) {
		tide__stack_put(loop, stack);
		return -ENOMEM;
	}
	memset(t, 0, sizeof(*t));
	tide__future_init(loop, &t->fut);
	t->fut.hooks = &task_hooks;
	t->fn = fn;
	t->arg = arg;
	t->number = ++loop->task_counter;
	if (name && !(t->name = dup_name(name))) {
		tide__stack_put(loop, stack);
		tide_future_unref(&t->fut);
		return -ENOMEM;
	}
	tide__coro_prepare(&t->coro, stack, task_entry, t);
	err = tide__ready_call(loop, task_step, t);
	if (err) {
		tide__coro_destroy(&t->coro);
		tide__stack_put(loop, stack);
		t->coro.stack = NULL;
		tide_future_unref(&t->fut);
		return err;
	}
	/* Live list, and the loop's reference until the body is over. */
	tide__list_add_head(&loop->tasks, &t->link);
	loop->tasks_alive++;
	tide_future_ref(&t->fut);
	*out = &t->fut;
	return 0;
}

void tide__task_on_finish(struct tide_future *task, void (*cb)(struct tide_future *task, void *arg), void *arg)
{
	struct tide__task *t = task_of(task);

	t->on_finish = cb;
	t->on_finish_arg = arg;
}

/* A task's memory goes back when its future's last reference does. */
static void task_release(struct tide_future *f)
{
	struct tide__task *t = (struct tide__task *)f;
	struct tide_loop *loop = f->loop;

	tide__free(t->name);
	t->name = NULL;
	tide__list_add_head(&loop->free_tasks, &t->link);
}

void tide__tasks_fini(struct tide_loop *loop)
{
	struct tide__list *l;

	while ((l = tide__list_first(&loop->free_tasks))) {
		tide__list_del(l);
		tide__free(tide__list_entry(l, struct tide__task, link));
	}
	tide__stack_pool_fini(loop);
	tide__free(loop->sched);
	loop->sched = NULL;
}

TIDE_EXTERN int tide_future_is_task(const struct tide_future *fut)
{
	return task_of(fut) != NULL;
}

TIDE_EXTERN struct tide_future *tide_current_task(void)
{
	return current ? &current->fut : NULL;
}

/* -------------------------------------------------------------- awaiting -- */

static void await_wake(struct tide_future *f, void *arg)
{
	task_step(arg);
}

TIDE_EXTERN int64_t tide_await(struct tide_future *f)
{
	struct tide__task *t = current;
	int64_t value = 0;
	bool backed;
	int err;

	if (!t)
		return TIDE_ENOT_IN_TASK;
	if (!f || f->loop != t->fut.loop)
		return -EINVAL;
	if (f == &t->fut)
		return -EDEADLK;
	/* A done future does not suspend: its outcome, as in asyncio. */
	if (tide_future_done(f)) {
		err = tide_future_result(f, &value, NULL);
		return err ? err : value;
	}
	/* An op or job stands behind f: what it delivers is never dropped. */
	backed = f->cancel_hook != NULL;
	/* First in line: park in the future's waiter slot, no handle needed. */
	if (!f->callbacks && !f->waiter)
		f->waiter = &t->fut;
	else if ((err = tide_future_add_done_callback(f, await_wake, t)))
		return err;
	/* asyncio's __step: a cancellation owed since the task last ran goes
	 * to the future it now awaits, if that future takes it. */
	t->waiting = tide_future_ref(f);
	t->cancel_delegated = false;
	if (t->must_cancel && tide_future_cancel(f)) {
		t->must_cancel = false;
		t->cancel_delegated = true;
	}
	task_suspend(t);
	t->waiting = NULL;
	err = tide_future_result(f, &value, NULL);
	/* err is -ECANCELED for a cancelled f; the outcome is copied, f can go. */
	tide_future_unref(f);
	if (err == -ECANCELED) {
		/* One -ECANCELED answers every request made so far. */
		t->must_cancel = false;
		return -ECANCELED;
	}
	if (t->must_cancel) {
		/* The cancel was refused or came too late: asyncio throws it here,
		 * but an op's or job's outcome is kept and the cancel stays owed
		 * for the next await. */
		if (backed)
			return err ? err : value;
		t->must_cancel = false;
		return -ECANCELED;
	}
	if (t->cancel_delegated && backed) {
		/* The op finished instead of cancelling: deliver, owe the cancel. */
		t->must_cancel = true;
	}
	return err ? err : value;
}

static void step_soon(void *arg)
{
	task_step(arg);
}

/* Queues a parked task's next step (what it waits on is done). */
static void task_wake_soon(struct tide__task *t)
{
	tide__ready_call_must(t->fut.loop, step_soon, t);
}

TIDE_EXTERN int tide_yield(void)
{
	struct tide__task *t = current;
	int err;

	if (!t)
		return TIDE_ENOT_IN_TASK;
	if (t->must_cancel) {
		t->must_cancel = false;
		return -ECANCELED;
	}
	if ((err = tide__ready_call(t->fut.loop, step_soon, t)))
		return err;
	task_suspend(t);
	if (t->must_cancel) {
		t->must_cancel = false;
		return -ECANCELED;
	}
	return 0;
}

static void sleep_done(void *arg)
{
	struct tide_future *f = arg;

	if (!tide_future_done(f))
		tide_future_set_result(f, 0, NULL);
}

TIDE_EXTERN int tide_sleep(double seconds)
{
	struct tide__task *t = current;
	struct tide_handle h;
	struct tide_future *f;
	int64_t r;
	int err;

	if (!t)
		return TIDE_ENOT_IN_TASK;
	if (seconds != seconds)
		return -EINVAL;
	if (seconds <= 0)
		return tide_yield();
	if ((err = tide_future_new(t->fut.loop, &f)))
		return err;
	if ((err = tide_call_later(t->fut.loop, seconds, sleep_done, f, &h))) {
		tide_future_unref(f);
		return err;
	}
	r = tide_await(f);
	/* Cancelled early: the timer must not touch the future afterwards. */
	tide_handle_cancel(&h);
	tide_future_unref(f);
	return (int)r;
}

int tide__park(struct tide__park *p)
{
	struct tide__task *t = current;

	if (!t)
		return TIDE_ENOT_IN_TASK;
	p->task = t;
	p->code = 0;
	/* As awaiting a fresh future: an owed cancellation is taken at once. */
	if (t->must_cancel) {
		t->must_cancel = false;
		p->state = TIDE__PARK_CANCELLED;
		return -ECANCELED;
	}
	p->state = TIDE__PARK_PENDING;
	t->parked = p;
	task_suspend(t);
	t->parked = NULL;
	if (p->state == TIDE__PARK_CANCELLED) {
		t->must_cancel = false;
		return -ECANCELED;
	}
	/* Chosen, then cancelled before it ran: asyncio raises here, and the
	 * caller (seeing state CHOSEN) passes the wake-up on. */
	if (t->must_cancel) {
		t->must_cancel = false;
		return -ECANCELED;
	}
	return p->code;
}

void tide__park_owe_cancel(void)
{
	if (current)
		current->must_cancel = true;
}

bool tide__unpark(struct tide__park *p, int code)
{
	struct tide__task *t = p->task;

	if (p->state != TIDE__PARK_PENDING)
		return false;
	p->state = TIDE__PARK_CHOSEN;
	p->code = code;
	task_wake_soon(t);
	return true;
}

/* ---------------------------------------------------------- cancelling -- */

TIDE_EXTERN int tide_task_cancel(struct tide_future *task)
{
	struct tide__task *t = task_of(task);

	if (!t)
		return -EINVAL;
	if (tide_future_done(task) || t->finished)
		return 0;
	t->cancel_requests++;
	/* asyncio: a waited-on future that takes the cancel carries it (the
	 * await wakes with -ECANCELED, or an op's raced data); otherwise the
	 * task owes it and its next resumption gets it. */
	/* asyncio: the waited-on future is cancelled with the task's message. */
	if (t->waiting && t->fut.cancel_msg && !tide_future_done(t->waiting))
		(void)tide__future_set_cancel_msg(t->waiting, t->fut.cancel_msg);
	if (t->waiting && tide_future_cancel(t->waiting)) {
		t->cancel_delegated = true;
		return 1;
	}
	if (t->parked && t->parked->state == TIDE__PARK_PENDING) {
		/* A park is a future nobody else holds: it always takes the cancel. */
		t->parked->state = TIDE__PARK_CANCELLED;
		task_wake_soon(t);
		return 1;
	}
	t->must_cancel = true;
	return 1;
}

TIDE_EXTERN int tide_task_cancelling(const struct tide_future *task)
{
	const struct tide__task *t = task_of(task);

	return t ? (int)t->cancel_requests : -EINVAL;
}

TIDE_EXTERN int tide_task_uncancel(struct tide_future *task)
{
	struct tide__task *t = task_of(task);

	if (!t)
		return -EINVAL;
	if (t->cancel_requests > 0)
		t->cancel_requests--;
	/* asyncio 3.13: with no request left, an owed cancellation is void. */
	if (t->cancel_requests == 0)
		t->must_cancel = false;
	return (int)t->cancel_requests;
}

TIDE_EXTERN const char *tide_task_name(struct tide_future *task)
{
	struct tide__task *t = task_of(task);

	return t ? task_name(t) : NULL;
}

TIDE_EXTERN int tide_task_set_name(struct tide_future *task, const char *name)
{
	struct tide__task *t = task_of(task);
	char *copy;

	if (!t || !name)
		return -EINVAL;
	if (!(copy = dup_name(name)))
		return -ENOMEM;
	tide__free(t->name);
	t->name = copy;
	return 0;
}

/* Cancels the live tasks numbered after *mark (newest first in the list),
 * and moves *mark to the newest task: tide_loop_shutdown's sweep. */
void tide__tasks_cancel_since(struct tide_loop *loop, uint64_t *mark)
{
	struct tide__list *l, *tmp;

	tide__list_for_each_safe(l, tmp, &loop->tasks) {
		struct tide__task *t = tide__list_entry(l, struct tide__task, link);

		if (t->number <= *mark)
			break;
		tide_future_cancel(&t->fut);
	}
	*mark = loop->task_counter;
}

TIDE_EXTERN size_t tide_all_tasks(struct tide_loop *loop, struct tide_future **out, size_t cap)
{
	struct tide__list *l;
	size_t n = 0;

	if (!loop)
		return 0;
	tide__list_for_each(l, &loop->tasks) {
		if (out && n < cap)
			out[n] = &tide__list_entry(l, struct tide__task, link)->fut;
		n++;
	}
	return n;
}

/* ------------------------------------------------------ awaitable ops -- */

/* asyncio throws an owed cancellation before the next operation starts:
 * whether a task may start an op now (await.c). */
int tide__task_op_may_start(void)
{
	if (!current)
		return TIDE_ENOT_IN_TASK;
	if (current->must_cancel) {
		current->must_cancel = false;
		return -ECANCELED;
	}
	return 0;
}
