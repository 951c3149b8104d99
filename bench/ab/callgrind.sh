#!/bin/bash
# callgrind instruction counts (Ir), before vs after, tide side only.
# Usage: callgrind.sh  -> $OUT/cg/<side>.<prog>.<only>.out + cg-summary.txt
. "$(dirname "$0")/common.sh"
mkdir -p $OUT/cg
# prog:BENCH_SCALE:BENCH_ONLY ("" = all workloads of the program)
RUNS="bench-call-soon:0.05:call_soon_chain bench-call-soon:0.05:batch_oneshot bench-call-soon:0.05:
bench-timers:0.02:timers bench-timers:0.02:half
bench-task:0.05:task_switch bench-task:0.05:task_yield bench-task:0.05:task_spawn bench-task:0.05:queue_pingpong bench-task:0.05:coro_switch bench-task:0.05:"
for r in $RUNS; do
  IFS=: read prog scale only <<< "$r"
  for side in before after; do B=$(build_of $side)
    f=$OUT/cg/$side.$prog.${only:-ALL}.out
    env LD_LIBRARY_PATH=$B/src/.libs BENCH_NO_PEER=1 BENCH_REPS=1 BENCH_SCALE=$scale BENCH_ONLY=$only \
      valgrind --tool=callgrind --callgrind-out-file=$f $B/bench/.libs/$prog > $f.stdout 2> $f.stderr
    echo "$side $prog ${only:-ALL} $(grep -m1 '^summary:\|^totals:' $f)" >&2
  done
done
