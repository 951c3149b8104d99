#!/usr/bin/env python3
# Compares callgrind outputs before/after: total Ir and per-function self Ir
# (callgrind_annotate --inclusive=no, functions keyed by name, file ignored since
# the refactor moved files). Lists functions whose Ir changed by > 5 % and that
# hold >= FLOOR of either side's total (default 0.1 %), plus functions present
# on one side only above the floor.
import glob, os, re, subprocess, sys
D = os.path.join(os.environ.get("AB_OUT", "/tmp/tide-ab"), "cg"); FLOOR = float(os.environ.get("FLOOR", 0.001))
def load(f):
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--auto=no", "--threshold=100", f],
                         capture_output=True, text=True).stdout
    tot = None; fn = {}
    for l in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+PROGRAM TOTALS", l) or re.match(r"\s*([\d,]+)\s+PROGRAM TOTALS", l)
        if m: tot = int(m.group(1).replace(",", "")); continue
        m = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(\S.*?)(?:\s+\[.*\])?$", l)
        if m and ":" in m.group(2) and tot is not None:
            name = m.group(2).split(":", 1)[1].strip() if not m.group(2).startswith("???") else m.group(2)
            name = re.sub(r"'\d+$", "", name)  # cycle/recursion suffixes
            fn[name] = fn.get(name, 0) + int(m.group(1).replace(",", ""))
    return tot, fn
for fb in sorted(glob.glob(f"{D}/before.*.out")):
    fa = fb.replace("/before.", "/after.")
    if not os.path.exists(fa): continue
    tb, b = load(fb); ta, a = load(fa)
    tag = os.path.basename(fb)[7:-4]
    print(f"{tag}: total Ir before {tb:,} after {ta:,} ratio {ta/tb:.4f}")
    for n in sorted(set(a) | set(b), key=lambda n: -max(a.get(n, 0), b.get(n, 0))):
        vb, va = b.get(n, 0), a.get(n, 0)
        if max(vb / tb, va / ta) < FLOOR: continue
        if vb == 0 or va == 0 or abs(va / vb - 1) > 0.05:
            r = f"{va/vb:.3f}" if vb and va else ("after only" if va else "before only")
            print(f"    {n:50s} {vb:>14,} -> {va:>14,}  {r}")
