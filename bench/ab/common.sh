# Shared helpers (sourced). BEFORE/AFTER build dirs.
# The two build folders to compare (each with the bench programs built:
# make bench/bench-call-soon ... bench/tide-echo), and where results go.
BEFORE=${AB_BEFORE:?AB_BEFORE: the build folder of the "before" tree}
AFTER=${AB_AFTER:?AB_AFTER: the build folder of the "after" tree}
OUT=${AB_OUT:-/tmp/tide-ab}
mkdir -p "$OUT"
# /proc/stat aggregate cpu line -> "total steal idle" ticks
stat_snap() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t, $9, $5+$6; exit}' /proc/stat; }
# steal% and others% between two snaps; $3 = our own cpu seconds (user+sys)
stat_delta() { # a_total a_steal a_idle b_total b_steal b_idle own_s
	awk -v at=$1 -v as=$2 -v ai=$3 -v bt=$4 -v bs=$5 -v bi=$6 -v own=$7 'BEGIN{
	  t=bt-at; if(t<=0)t=1; st=100*(bs-as)/t; busy=t-(bi-ai)-(bs-as);
	  oth=100*(busy-own*100)/t; if(oth<0)oth=0; printf "%.1f %.1f", st, oth }'
}
build_of() { [ "$1" = before ] && echo $BEFORE || echo $AFTER; }
# Extra tide-echo options of a side (AB_BEFORE_ARGS, AB_AFTER_ARGS).
args_of() { [ "$1" = before ] && echo "${AB_BEFORE_ARGS:-}" || echo "${AB_AFTER_ARGS:-}"; }
