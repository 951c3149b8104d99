#!/bin/bash
# Interleaved before/after tide-echo runs driven by echo-load (the approach of
# bench/net.sh: fresh server per cell on a kernel-picked free port, server
# pinned to CPU 0, load to CPU 1, echo-load --server-pid measures the
# server's CPU over the measured interval only).
# Usage: net.sh NPAIRS [DURATION WARMUP]  -> appends $OUT/net-raw.tsv
. "$(dirname "$0")/common.sh"
N=${1:-11}; DUR=${2:-2}; WARM=${3:-0.5}
CONNS=100 SIZE=64 DEPTH=1     # echo_100c_64B of bench/net.sh
RAW=$OUT/net-raw.tsv
[ -s $RAW ] || echo -e "pair\tconfig\tside\tpos\tsteal_pct\tsteal_cpu0_pct\tbusy_all_pct\tstat_ticks_us_per_msg\tjson" > $RAW
LOAD=$BEFORE/bench/echo-load   # the same load generator for both sides
# per-cpu steal for cpu0 (server's CPU)
cpu0_snap() { awk '/^cpu0 /{t=0; for(i=2;i<=NF;i++) t+=$i; print t, $9; exit}' /proc/stat; }
# utime+stime ticks of pid (all threads)
ticks() { awk '{sub(/^.*\) /,""); print $12+$13}' /proc/$1/stat; }
CONFIGS="uring-protocol epoll-protocol uring-stream"
spid=
trap '[ -n "$spid" ] && kill $spid 2>/dev/null' EXIT
for ((p=1; p<=N; p++)); do
  for cfg in $CONFIGS; do
    be=${cfg%%-*}; api=${cfg#*-}
    if (( p % 2 )); then order="before after"; else order="after before"; fi
    pos=0
    for side in $order; do
      pos=$((pos+1)); B=$(build_of $side)
      port=$($LOAD --free-port)
      envb=; [ $be = epoll ] && envb="TIDE_BACKEND=epoll"
      env $envb LD_LIBRARY_PATH=$B/src/.libs taskset -c 0 $B/bench/.libs/tide-echo --api $api --mode echo --port $port &
      spid=$!
      $LOAD --port $port --wait || { echo "server did not start" >&2; kill $spid; continue; }
      s0=$(stat_snap); c0=$(cpu0_snap); t0=$(ticks $spid)
      taskset -c 1 $LOAD --port $port --conns $CONNS --size $SIZE --depth $DEPTH \
        --duration $DUR --warmup $WARM --server-pid $spid > $OUT/.net
      t1=$(ticks $spid); s1=$(stat_snap); c1=$(cpu0_snap)
      grep -q "/wt-$side/build/src/.libs/libtide" /proc/$spid/maps || echo "WRONG LIB $side" >&2
      kill $spid; wait $spid 2>/dev/null; spid=
      json=$(grep '^{' $OUT/.net | tail -1)
      # the server's utime+stime over the whole load run (warm-up included),
      # per message estimated over warm-up + measured time
      tk=$(python3 -c "
import json,sys; d=json.loads('''$json''')
m=d['msgs']*(d['seconds']+$WARM)/d['seconds']
print('%.3f' % (($t1-$t0)*1e4/m))")
      read st oth < <(stat_delta $s0 $s1 0)
      st0=$(echo "$c0 $c1" | awk '{t=$3-$1; print (t>0? sprintf("%.1f",100*($4-$2)/t):"0")}')
      echo -e "$p\t$cfg\t$side\t$pos\t$st\t$st0\t$oth\t$tk\t$json" >> $RAW
      echo "pair $p $cfg $side steal=$st cpu0steal=$st0 $(echo $json | grep -o '"msgs_per_s":[^,]*,\|"cpu_us_per_msg":[^,]*')" >&2
    done
  done
done
