# SPDX-License-Identifier: MIT
# net.gp: server CPU time per message, per workload and server (clustered
# bars, log scale: the workloads span 0.1 to 50 us). bench/net.sh calls it as
#   gnuplot -e "datafile='cpu.dat'; outfile='net.svg'" bench/net.gp
# where cpu.dat comes from bench/net-table.sh --dat (a header row of server
# names, then one row per workload; "?" where a cell is missing).
set terminal svg size 1300,520 dynamic font "sans,11" background "white"
set output outfile
set title "Server CPU time per message (µs, log scale), lower is better" noenhanced
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set ylabel "µs per message"
set xtics noenhanced nomirror scale 0
set grid ytics
set bmargin 4
set key outside right top noenhanced
ncols = system(sprintf("head -n 1 '%s' | wc -w", datafile)) + 0
plot for [i=2:ncols] datafile using i:xtic(1) title columnheader(i)
