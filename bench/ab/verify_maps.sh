#!/bin/bash
# Checks which libtide each side's binaries really map (/proc/PID/maps).
. "$(dirname "$0")/common.sh"
for side in before after; do B=$(build_of $side)
  env LD_LIBRARY_PATH=$B/src/.libs BENCH_NO_PEER=1 BENCH_REPS=1 BENCH_ONLY=task_spawn $B/bench/.libs/bench-task >/dev/null & pid=$!
  sleep 0.3; echo "$side bench-task: $(grep -o '/[^ ]*libtide[^ ]*' /proc/$pid/maps | sort -u | tr '\n' ' ')"; wait $pid
  port=$($B/bench/echo-load --free-port)
  env LD_LIBRARY_PATH=$B/src/.libs $B/bench/.libs/tide-echo --api protocol --mode echo --port $port & pid=$!
  $B/bench/echo-load --port $port --wait
  echo "$side tide-echo: $(grep -o '/[^ ]*libtide[^ ]*' /proc/$pid/maps | sort -u | tr '\n' ' ')"; kill $pid; wait $pid 2>/dev/null
  echo "$side md5: $(md5sum $B/src/.libs/libtide.so.0.0.0 | cut -c1-12)"
done
