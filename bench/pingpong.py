# SPDX-License-Identifier: MIT
"""pingpong.py: the asyncio peer of bench/bench-task.c.

    python3 bench/pingpong.py MODE N

runs one workload once on a fresh event loop (after a warm-up of N/10 on the
same loop) and prints one number on stdout; bench-task runs it once per
repetition and takes the median, as for every other side. The workloads
mirror bench-task.c line by line:

    yield     one task awaiting asyncio.sleep(0) N times    -> ns per yield
    switch    two tasks doing that N times each             -> ns per task switch
    spawn     N tasks that return at once, created in batches of 1000,
              run_until_complete(last of the batch)          -> tasks/s
    pingpong  two tasks bouncing an item through two asyncio.Queue() N
              times (put on one, get from the other)        -> round-trips/s
    memory    N tasks awaiting a future that never completes: RSS growth
              (/proc/self/statm) divided by N, then all cancelled
                                                             -> bytes per task
    version   the interpreter's version
"""
import asyncio
import gc
import os
import sys
import time

BATCH = 1000


async def yield_loop(n):
    for _ in range(n):
        await asyncio.sleep(0)


def run_yield(loop, n):
    t0 = time.perf_counter_ns()
    loop.run_until_complete(yield_loop(n))
    return (time.perf_counter_ns() - t0) / n


def run_switch(loop, n):
    t0 = time.perf_counter_ns()
    a = loop.create_task(yield_loop(n))
    b = loop.create_task(yield_loop(n))
    loop.run_until_complete(a)
    loop.run_until_complete(b)
    return (time.perf_counter_ns() - t0) / (2 * n)


async def noop():
    return 0


def run_spawn(loop, n):
    done = 0
    t0 = time.perf_counter_ns()
    while done < n:
        k = min(BATCH, n - done)
        tasks = [loop.create_task(noop()) for _ in range(k)]
        loop.run_until_complete(tasks[-1])
        for t in tasks:
            assert t.done()
        done += k
    return n * 1e9 / (time.perf_counter_ns() - t0)


async def ping(q1, q2, n):
    for i in range(n):
        await q1.put(i)
        await q2.get()


async def pong(q1, q2, n):
    for _ in range(n):
        x = await q1.get()
        await q2.put(x)


def run_pingpong(loop, n):
    async def main():
        q1, q2 = asyncio.Queue(), asyncio.Queue()
        t0 = time.perf_counter_ns()
        await asyncio.gather(ping(q1, q2, n), pong(q1, q2, n))
        return n * 1e9 / (time.perf_counter_ns() - t0)
    return loop.run_until_complete(main())


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_memory(loop, n):
    fut = loop.create_future()

    async def idle():
        try:
            await fut
        except asyncio.CancelledError:
            pass

    gc.collect()
    before = rss_bytes()
    tasks = [loop.create_task(idle()) for _ in range(n)]
    loop.run_until_complete(asyncio.sleep(0))  # every task parks on fut
    after = rss_bytes()
    for t in tasks:
        t.cancel()
    loop.run_until_complete(asyncio.gather(*tasks))
    return (after - before) / n


MODES = {
    "yield": run_yield,
    "switch": run_switch,
    "spawn": run_spawn,
    "pingpong": run_pingpong,
    "memory": run_memory,
}


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "version":
        print(sys.version.split()[0])
        return
    if len(sys.argv) != 3 or sys.argv[1] not in MODES:
        sys.exit("usage: pingpong.py {%s|version} N" % "|".join(MODES))
    fn, n = MODES[sys.argv[1]], int(sys.argv[2])
    loop = asyncio.new_event_loop()
    try:
        if fn is not run_memory:  # memory: a first, cold measurement
            fn(loop, max(1, n // 10))
        print("%.6g" % fn(loop, n))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
