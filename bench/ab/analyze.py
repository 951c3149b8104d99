#!/usr/bin/env python3
# Paired after/before ratios from loop-raw.tsv and net-raw.tsv.
# Loop/task: every metric turned into a cost per op (1/rate for rates), so
# ratio = cost_after / cost_before: > 1 means AFTER is slower.
# A pair is discarded when either run's steal (from /proc/stat) > STEAL_MAX.
import csv, json, os, statistics as st, sys
STEAL_MAX = float(os.environ.get("STEAL_MAX", 20))
OTHERS_MAX = float(os.environ.get("OTHERS_MAX", 1e9))  # optional extra filter (sensitivity)
D = os.environ.get("AB_OUT", "/tmp/tide-ab")
def q(v, f):
    v = sorted(v); k = (len(v) - 1) * f; i = int(k)
    return v[i] if i + 1 >= len(v) else v[i] + (v[i + 1] - v[i]) * (k - i)
def summ(name, metric, pairs):
    kept = [r for r, ok in pairs if ok]; disc = len(pairs) - len(kept)
    if not kept:
        print(f"{name:26s} {metric:22s} no pairs kept ({disc} discarded)"); return
    print(f"{name:26s} {metric:22s} {st.median(kept):7.3f}  min-max {min(kept):.3f}-{max(kept):.3f}"
          f"  IQR {q(kept,.25):.3f}-{q(kept,.75):.3f}  n={len(kept)} kept / {disc} discarded")
if os.path.exists(f"{D}/loop-raw.tsv"):
    rows = list(csv.DictReader(open(f"{D}/loop-raw.tsv"), delimiter="\t"))
    by = {}
    for r in rows:
        by.setdefault((r["bench"], r["unit"]), {}).setdefault(r["pair"], {})[r["side"]] = r
    print("# loop/task: cost per op after/before (>1 = after slower)")
    for (b, u), ps in by.items():
        pairs = []
        for p, s in sorted(ps.items(), key=lambda x: int(x[0])):
            if "before" not in s or "after" not in s: continue
            vb, va = float(s["before"]["value"]), float(s["after"]["value"])
            ok = all(float(s[x]["steal_pct"]) <= STEAL_MAX and float(s[x]["others_pct"]) <= OTHERS_MAX for x in s)
            if u.startswith("mallocs"):
                pairs.append((1.0 if va == vb else float("nan"), ok)); continue
            rate = u.endswith("/s")
            cb, ca = (1 / vb, 1 / va) if rate else (vb, va)
            pairs.append((ca / cb if cb > 0 else float("nan"), ok))
        metric = ("1/" + u if u.endswith("/s") else u) if not u.startswith("mallocs") else u + " (equal=1)"
        summ(b, metric, pairs)
if os.path.exists(f"{D}/net-raw.tsv"):
    rows = list(csv.DictReader(open(f"{D}/net-raw.tsv"), delimiter="\t"))
    by = {}
    for r in rows:
        by.setdefault(r["config"], {}).setdefault(r["pair"], {})[r["side"]] = r
    print("# net echo_100c_64B: server CPU per message after/before (>1 = after costs more)")
    for cfg, ps in by.items():
        for key, label in (("cpu_us_per_msg", "cpu/msg (schedstat)"), ("ticks", "cpu/msg (utime+stime)"),
                           ("msgs_per_s", "msgs/s (info)")):
            pairs = []
            for p, s in sorted(ps.items(), key=lambda x: int(x[0])):
                if "before" not in s or "after" not in s: continue
                j = {x: json.loads(s[x]["json"]) for x in s}
                if key == "ticks":
                    vb, va = float(s["before"]["stat_ticks_us_per_msg"]), float(s["after"]["stat_ticks_us_per_msg"])
                else:
                    vb, va = j["before"][key], j["after"][key]
                ok = all(float(s[x]["steal_pct"]) <= STEAL_MAX and j[x]["errors"] == 0 for x in s)
                pairs.append((va / vb, ok))
            summ("tide-echo " + cfg, label, pairs)
