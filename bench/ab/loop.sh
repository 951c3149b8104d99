#!/bin/bash
# Interleaved before/after runs of the loop and task bench programs.
# Usage: loop.sh NPAIRS   -> appends to $OUT/loop-raw.tsv (one row per workload per run)
. "$(dirname "$0")/common.sh"
N=${1:-13}
RAW=$OUT/loop-raw.tsv
[ -s $RAW ] || echo -e "pair\tprog\tside\tpos\tsteal_pct\tothers_pct\twall_s\tbench\tunit\tvalue" > $RAW
# program:BENCH_SCALE (each run: 1 warm-up + BENCH_REPS=3 reps, median, tide side only)
PROGS="bench-call-soon:4 bench-timers:0.3 bench-threadsafe:3 bench-executor:0.5 bench-alloc:0.3 bench-task:0.5"
for ((p=1; p<=N; p++)); do
  for ps in $PROGS; do
    prog=${ps%%:*}; scale=${ps#*:}
    # alternate which side goes first (ABBA over consecutive pairs)
    if (( p % 2 )); then order="before after"; else order="after before"; fi
    pos=0
    for side in $order; do
      pos=$((pos+1)); B=$(build_of $side)
      s0=$(stat_snap)
      env LD_LIBRARY_PATH=$B/src/.libs BENCH_NO_PEER=1 BENCH_REPS=3 BENCH_SCALE=$scale \
        /usr/bin/time -f "%e %U %S" -o $OUT/.time \
        $B/bench/.libs/$prog > $OUT/.out 2> $OUT/.err || { echo "FAIL $prog $side" >&2; cat $OUT/.err >&2; }
      s1=$(stat_snap)
      read e u s < $OUT/.time
      read st oth < <(stat_delta $s0 $s1 $(echo "$u + $s" | bc))
      python3 "$(dirname "$0")/parse_json.py" "$p" "$prog" "$side" "$pos" "$st" "$oth" "$e" < $OUT/.out >> $RAW
      echo "pair $p $prog $side steal=$st others=$oth wall=$e" >&2
    done
  done
done
