#!/bin/bash
# callgrind Ir per echoed message of tide-echo (--api protocol, 100 conns x 64 B, depth 1).
# Server under callgrind; a priming load run (0.5 s), then counters zeroed
# (callgrind_control -z), a measured load run (--warmup 0 --duration D), a dump
# (callgrind_control -d): Ir of that dump / messages echo-load completed
# (includes accepting and closing the 100 connections).
# Usage: callgrind-echo.sh [DUR] [REPS]
# AB_BEFORE_ARGS / AB_AFTER_ARGS: more tide-echo options for one side (with
# AB_BEFORE = AB_AFTER, the same build with and without, e.g.,
# --idle-timeout 60); AB_API: the API (default protocol).
. "$(dirname "$0")/common.sh"
DUR=${1:-3}; REPS=${2:-2}
LOAD=$BEFORE/bench/echo-load
mkdir -p $OUT/cg/echo
echo -e "rep\tbackend\tside\tIr\tmsgs\tIr_per_msg" > $OUT/cg-echo.tsv
for ((r=1; r<=REPS; r++)); do
 for be in uring epoll; do
  for side in before after; do B=$(build_of $side)
    port=$($LOAD --free-port); envb=; [ $be = epoll ] && envb="TIDE_BACKEND=epoll"
    f=$OUT/cg/echo/$side.$be.$r
    env $envb LD_LIBRARY_PATH=$B/src/.libs valgrind --tool=callgrind --callgrind-out-file=$f.%p.out \
      $B/bench/.libs/tide-echo --api ${AB_API:-protocol} --mode echo --port $port $(args_of $side) 2> $f.stderr &
    vpid=$!
    $LOAD --port $port --wait || { echo "no server" >&2; kill $vpid; continue; }
    $LOAD --port $port --conns 100 --size 64 --depth 1 --duration 0.5 --warmup 0.2 > /dev/null
    sleep 0.5
    callgrind_control -z $vpid > /dev/null
    $LOAD --port $port --conns 100 --size 64 --depth 1 --duration $DUR --warmup 0 > $f.load
    sleep 0.5
    callgrind_control -d $vpid > /dev/null
    sleep 0.5
    kill $vpid; sleep 1; kill -9 $vpid 2>/dev/null; wait $vpid 2>/dev/null
    part=$f.$vpid.out.1
    ir=$(grep -m1 '^summary:\|^totals:' $part | awk '{print $2}')
    msgs=$(grep -o '"msgs":[0-9]*' $f.load | cut -d: -f2)
    echo -e "$r\t$be\t$side\t$ir\t$msgs\t$(echo "scale=1; $ir / $msgs" | bc)" | tee -a $OUT/cg-echo.tsv
  done
 done
done
