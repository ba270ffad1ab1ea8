#!/usr/bin/python3
"""Per-kernel GPU time of one evaluation, from Nsight Compute's CSV.

Usage: ncu_summary.py FILE.csv
FILE.csv: `ncu --metrics gpu__time_duration.sum --csv ...` over a `distilmd
bench` run with one warm-up and one timed graph replay; the kernels of the
last replay (from the last launch of the first kernel's name onward) are
listed in order with their durations, and their sum."""
import csv
import re
import sys

UNITS = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3,
         "second": 1e6, "s": 1e6}


def short_name(name):
    name = name.replace("<unnamed>::", "").replace("void ", "")
    name = re.sub(r"\(.*$", "", name)          # arguments
    base = re.sub(r"<.*$", "", name)           # template arguments
    base = base.split("::")[-1]
    args = re.search(r"<(.*)>", name)
    if args and base.startswith(("gemm", "filter", "message")):
        nums = re.findall(r"\b\d+\b", args.group(1))
        base += "<" + ",".join(nums[:6]) + ">"
    return base


def main(path):
    rows = []
    with open(path, newline="") as f:
        lines = [l for l in f if l.startswith('"')]
    reader = csv.reader(lines)
    header = None
    for r in reader:
        if header is None:
            if "Kernel Name" in r and "Metric Value" in r:
                header = r
            continue
        rec = dict(zip(header, r))
        if rec.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(rec["Metric Value"].replace(",", ""))
        rows.append((short_name(rec["Kernel Name"]), rec.get("Grid Size", ""),
                     rec.get("Block Size", ""), value * UNITS.get(rec["Metric Unit"], 1.0)))
    if not rows:
        print("no kernel timings in %s" % path)
        return 1
    first = rows[0][0]
    starts = [i for i, r in enumerate(rows) if r[0] == first]
    last = rows[starts[-1]:]
    total = sum(r[3] for r in last)
    print("%-46s %14s %10s %9s %6s" % ("kernel (last replay)", "grid", "block", "us", "%"))
    for name, grid, block, us in last:
        print("%-46s %14s %10s %9.2f %5.1f%%" % (name[:46], grid, block, us, 100 * us / total))
    print("%-46s %14s %10s %9.2f" % ("sum of kernel times", "", "", total))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
