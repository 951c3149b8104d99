# stdin: bench JSON lines; argv: prefix fields. Prints TSV rows: prefix + bench, unit, tide value.
import sys, json
pre = sys.argv[1:]
for l in sys.stdin:
    if not l.startswith('{'): continue
    d = json.loads(l)
    print("\t".join(pre + [d["bench"], d["unit"], repr(d["tide"])]))
