# SPDX-License-Identifier: MIT
"""spawn.py: the asyncio peer of bench/bench-proc.c.

    python3 bench/spawn.py spawn N RSS_MIB
    python3 bench/spawn.py read BYTES
    python3 bench/spawn.py version

runs one workload once on a fresh event loop (spawn warms up on N/10 first)
and prints one line on stdout:

    WALL_NS SELF_CPU_NS CHILDREN_CPU_NS COUNT RSS_KIB

the wall time, the CPU time (user + system) of this process and of its
reaped children over the measured part, how many operations it counted
(spawns, or bytes read) and the process's VmRSS just before the measured
part. bench-proc runs it once per repetition, as every other side. The
workloads mirror bench-proc.c:

    spawn  N times in turn: asyncio.create_subprocess_exec('/bin/true')
           then `await proc.wait()`, with this process grown to RSS_MIB MiB
           resident first (a touched bytearray) when it is smaller
    read   `head -c BYTES /dev/zero` with stdout=PIPE, read in 64 KiB
           `await proc.stdout.read(65536)` calls to EOF, then wait
"""
import asyncio
import os
import resource
import sys
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ns(who):
    r = resource.getrusage(who)
    return int((r.ru_utime + r.ru_stime) * 1e9)


async def spawn_loop(n):
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec("/bin/true")
        code = await proc.wait()
        if code != 0:
            raise SystemExit("spawn.py: /bin/true exited with %d" % code)


async def read_once(nbytes):
    proc = await asyncio.create_subprocess_exec(
        "head", "-c", str(nbytes), "/dev/zero", stdout=asyncio.subprocess.PIPE)
    got = 0
    while True:
        data = await proc.stdout.read(65536)
        if not data:
            break
        got += len(data)
    code = await proc.wait()
    if code != 0 or got != nbytes:
        raise SystemExit("spawn.py: head exited with %d after %d of %d bytes" % (code, got, nbytes))
    return got


def measure(loop, coro):
    rss = rss_kib()
    t0, s0, c0 = time.perf_counter_ns(), cpu_ns(resource.RUSAGE_SELF), cpu_ns(resource.RUSAGE_CHILDREN)
    count = loop.run_until_complete(coro)
    t1, s1, c1 = time.perf_counter_ns(), cpu_ns(resource.RUSAGE_SELF), cpu_ns(resource.RUSAGE_CHILDREN)
    return t1 - t0, s1 - s0, c1 - c0, count, rss


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "version":
        print("%d.%d.%d" % sys.version_info[:3])
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    if mode == "spawn":
        n, rss_mib = int(sys.argv[2]), int(sys.argv[3])
        ballast = None
        grow = rss_mib * 1024 - rss_kib()
        if grow > 0:
            ballast = bytearray(grow * 1024)
            ballast[::PAGE] = b"\1" * len(range(0, len(ballast), PAGE))  # touch every page
        loop.run_until_complete(spawn_loop(max(n // 10, 1)))

        async def run():
            await spawn_loop(n)
            return n
        r = measure(loop, run())
    elif mode == "read":
        r = measure(loop, read_once(int(sys.argv[2])))
    else:
        raise SystemExit("usage: spawn.py spawn N RSS_MIB | read BYTES | version")
    loop.close()
    print("%d %d %d %d %d" % r)


if __name__ == "__main__":
    main()
