# SPDX-License-Identifier: MIT
# loop.gp: bar chart of the tide / libuv ratios. `make bench` calls it as
#   gnuplot -e "datafile='ratios.dat'; outfile='loop.svg'" bench/loop.gp
# where ratios.dat holds "workload ratio" lines (bench/table.sh --dat).
set terminal svg size 900,480 dynamic font "sans,12" background "white"
set output outfile
set title "tide / libuv 1.44, higher is better (dashed: 1.0x parity, dotted: 1.5x goal for call_soon and timers)" noenhanced
set style fill solid 0.8 border -1
set boxwidth 0.6
set yrange [0:*]
set offsets 0.5, 0.5, graph 0.12, 0
set ylabel "ratio"
set xtics rotate by 30 right noenhanced nomirror
set grid ytics
set bmargin 8
set key off
set arrow 1 from graph 0, first 1.0 to graph 1, first 1.0 nohead dt 2 lw 2 lc rgb "#444444" front
set arrow 2 from graph 0, first 1.5 to graph 1, first 1.5 nohead dt 3 lw 2 lc rgb "#d83b3b" front
plot datafile using 0:2:xtic(1) with boxes lc rgb "#3b7dd8", \
     datafile using 0:2:(sprintf("%.2fx", $2)) with labels offset 0,0.8 noenhanced
