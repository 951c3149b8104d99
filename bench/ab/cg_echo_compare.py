#!/usr/bin/env python3
# Per-function self Ir per message, tide-echo before vs after (rep 1 dumps).
import os, subprocess, re, glob, csv
rows = list(csv.DictReader(open(os.path.join(os.environ.get("AB_OUT", "/tmp/tide-ab"), "cg-echo.tsv")), delimiter="\t"))
def load(f):
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--auto=no", "--threshold=100", f], capture_output=True, text=True).stdout
    fn = {}
    for l in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*?)(?:\s+\[.*\])?$", l)
        if m and ":" in m.group(2):
            n = m.group(2).split(":", 1)[1]
            fn[n] = fn.get(n, 0) + int(m.group(1).replace(",", ""))
    return fn
for be in ("uring", "epoll"):
    per = {}
    for side in ("before", "after"):
        r = [x for x in rows if x["backend"] == be and x["side"] == side and x["rep"] == "1"][0]
        f = glob.glob(os.environ.get("AB_OUT", "/tmp/tide-ab") + f"/cg/echo/{side}.{be}.1.*.out.1")[0]
        per[side] = {k: v / int(r["msgs"]) for k, v in load(f).items()}
    b, a = per["before"], per["after"]
    msgs = {s: int([x for x in rows if x["backend"] == be and x["side"] == s and x["rep"] == "1"][0]["msgs"]) for s in per}
    tb = int([x for x in rows if x["backend"] == be and x["side"] == "before" and x["rep"] == "1"][0]["Ir"]) / msgs["before"]
    ta = int([x for x in rows if x["backend"] == be and x["side"] == "after" and x["rep"] == "1"][0]["Ir"]) / msgs["after"]
    print(f"{be}: Ir/msg before {tb:.1f} after {ta:.1f} ratio {ta/tb:.3f}")
    for n in sorted(set(a) | set(b), key=lambda n: -max(a.get(n, 0), b.get(n, 0))):
        vb, va = b.get(n, 0), a.get(n, 0)
        if max(vb, va) < 2: continue   # below 2 Ir per message
        if n in ("(below main)", "serve", "main") or n.startswith(("__libc_start_main", "0x")): continue  # frames live at the dump (mid-run artefact)
        if not vb or not va or abs(va / vb - 1) > 0.05:
            print(f"    {n:45s} {vb:8.1f} -> {va:8.1f}  " + (f"{va/vb:.3f}" if vb and va else ("after only" if va else "before only")))
