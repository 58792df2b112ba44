#!/usr/bin/env python3
"""alloc_summary.py -- medians and ckpt/peer ratios from run-alloc.sh output.

    alloc_summary.py [--check] RESULTS.jsonl

Reads the JSON lines written by bench/run-alloc.sh (one per process plus a
"meta" line) and prints Markdown: the machine and command, the medians of
pairs/s per workload and allocator over the measured rounds (1..N; round 0
is the warm-up and is shown apart), the ratios ckpt/peer next to the
targets, and the page faults taken during the timed part. With a
"ckpt-base" variant (run-alloc.sh --base-bin: the library before a change,
in the same run), also its ratios to glibc and mimalloc and ckpt/ckpt-base.

--check (the smoke test): exit 1 unless every allocator that was run
produced a positive figure on every workload, clean. Speed is not checked.
"""
import json
import statistics
import sys

VARIANTS = ["ckpt", "ckpt-base", "glibc", "jemalloc", "mimalloc", "pmemobj", "pmemobj-msync"]
CONFIGS = [("small", 1), ("small", 2), ("mixed", 1), ("mixed", 2)]
# ckpt / peer >= target
TARGETS = [("glibc", 1.0), ("mimalloc", 0.8), ("pmemobj", 20.0)]
OTHER_RATIOS = ["jemalloc"]
EXPECT_LIB = {"glibc": "libc.so", "jemalloc": "libjemalloc", "mimalloc": "libmimalloc"}


def fmt_rate(x):
    if x is None:
        return "pending"
    if x >= 1e6:
        return "%.2f M" % (x / 1e6)
    if x >= 1e3:
        return "%.1f k" % (x / 1e3)
    return "%.0f" % x


def main(argv):
    check = "--check" in argv
    paths = [a for a in argv if not a.startswith("--")]
    if len(paths) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    meta, meta_end, rows = {}, {}, []
    with open(paths[0]) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            if d.get("meta"):
                meta = d
            elif d.get("meta_end"):
                meta_end = d
            else:
                rows.append(d)

    problems = []
    for d in rows:
        v = d.get("variant", "?")
        if not d.get("ok"):
            problems.append("%s %s %st round %s: failed" % (v, d.get("workload"), d.get("threads"), d.get("round")))
            continue
        lib = EXPECT_LIB.get(v)
        if lib and not d.get("malloc_lib", "").startswith(lib):
            problems.append("%s: malloc came from %s, not %s (preload did not take)" % (v, d.get("malloc_lib"), lib))
            d["ok"] = False
        if v == "pmemobj" and d.get("pmem_is_pmem_force") != "1":
            problems.append("pmemobj ran without PMEM_IS_PMEM_FORCE=1")
            d["ok"] = False

    ran = [v for v in VARIANTS if any(d.get("variant") == v for d in rows)]
    max_round = max([d.get("round", 0) for d in rows] or [0])
    measured = (lambda r: r >= 1) if max_round >= 1 else (lambda r: True)

    def sel(v, wl, th, rounds):
        return [d for d in rows if d.get("variant") == v and d.get("workload") == wl
                and d.get("threads") == th and d.get("ok") and rounds(d.get("round", 0))]

    med, spread, warm, faults, n = {}, {}, {}, {}, {}
    for wl, th in CONFIGS:
        for v in ran:
            m = sel(v, wl, th, measured)
            n[v, wl, th] = len(m)
            if m:
                xs = [d["pairs_per_s"] for d in m]
                med[v, wl, th] = statistics.median(xs)
                spread[v, wl, th] = (max(xs) - min(xs)) / 2 / med[v, wl, th] if med[v, wl, th] else 0
                faults[v, wl, th] = statistics.median(d["minflt"] for d in m)
            w = sel(v, wl, th, lambda r: r == 0)
            if w and max_round >= 1:
                warm[v, wl, th] = w[0]["pairs_per_s"]

    if check:
        for wl, th in CONFIGS:
            for v in ran:
                if not med.get((v, wl, th), 0) > 0:
                    problems.append("%s %s %st: no figure" % (v, wl, th))
        for p in problems:
            print("alloc_summary: " + p, file=sys.stderr)
        print("alloc bench smoke: %d allocators x %d workloads: %s" %
              (len(ran), len(CONFIGS), "ok" if not problems else "FAILED"))
        return 1 if problems else 0

    out = []
    p = out.append
    p("Command: `%s`  " % meta.get("command", "bench/run-alloc.sh"))
    p("Date: %s; machine: nproc %s, kernel %s, %s; load average at start %s, "
      "at end %s; git %s  " %
      (meta.get("date"), meta.get("nproc"), meta.get("kernel"), meta.get("cpu"),
       meta.get("loadavg_start"), meta_end.get("loadavg_end", "?"), meta.get("git")))
    vs = meta.get("versions", {})
    p("Versions: glibc %s, jemalloc %s, mimalloc %s, libpmemobj %s  " %
      (vs.get("glibc"), vs.get("jemalloc"), vs.get("mimalloc"), vs.get("libpmemobj")))
    p("Window %s live blocks per thread; timed pairs per thread: small %s, mixed %s "
      "(pmemobj 1/%s of that; pmemobj-msync window %s, %s pairs); pools in %s (%s), "
      "msync pool in %s (%s); medians of rounds 1..%s, round 0 (warm-up) apart." %
      (meta.get("window"), meta.get("ops_small"), meta.get("ops_mixed"),
       meta.get("pmemobj_ops_divisor"), meta.get("msync_window"), meta.get("msync_ops"),
       meta.get("dir"), meta.get("fs"), meta.get("msync_dir"), meta.get("msync_fs"),
       meta.get("rounds")))
    p("")
    p("Median alloc+free pairs per second, all threads together "
      "(± half the range over the measured rounds, as % of the median):")
    p("")
    cols = [v for v in VARIANTS if v != "ckpt-base" or v in ran]
    p("| workload | threads | " + " | ".join(cols) + " |")
    p("| --- | --- |" + " --- |" * len(cols))
    for wl, th in CONFIGS:
        cells = []
        for v in cols:
            if v not in ran:
                cells.append("pending" if v == "ckpt" else "-")
            elif (v, wl, th) not in med:
                cells.append("failed")
            else:
                cells.append("%s ±%.0f%%" % (fmt_rate(med[v, wl, th]), 100 * spread[v, wl, th]))
        p("| %s | %d | %s |" % (wl, th, " | ".join(cells)))
    p("")
    p("Ratios ckpt / peer (target in brackets):")
    p("")
    heads = ["ckpt/%s (>= %.1fx)" % (v, t) for v, t in TARGETS] + ["ckpt/%s" % v for v in OTHER_RATIOS]
    p("| workload | threads | " + " | ".join(heads) + " |")
    p("| --- | --- |" + " --- |" * len(heads))
    misses = []
    for wl, th in CONFIGS:
        c = med.get(("ckpt", wl, th))
        cells = []
        for v, t in TARGETS + [(v, None) for v in OTHER_RATIOS]:
            peer = med.get((v, wl, th))
            if c is None or not peer:
                cells.append("pending")
                continue
            r = c / peer
            if t is None:
                cells.append("%.2fx" % r)
            else:
                ok = r >= t
                cells.append("%.2fx %s" % (r, "met" if ok else "**MISSED**"))
                if not ok:
                    misses.append("%s %dt vs %s: %.2fx < %.1fx" % (wl, th, v, r, t))
        p("| %s | %d | %s |" % (wl, th, " | ".join(cells)))
    p("")
    if "ckpt-base" in ran:
        p("Before (ckpt-base) and after (ckpt), same run:")
        p("")
        p("| workload | threads | ckpt-base/glibc | ckpt/glibc | ckpt-base/mimalloc | ckpt/mimalloc | ckpt/ckpt-base |")
        p("| --- | --- | --- | --- | --- | --- | --- |")
        for wl, th in CONFIGS:
            c, b = med.get(("ckpt", wl, th)), med.get(("ckpt-base", wl, th))
            g, mi = med.get(("glibc", wl, th)), med.get(("mimalloc", wl, th))
            f = lambda x, y: "%.2fx" % (x / y) if x and y else "-"
            p("| %s | %d | %s | %s | %s | %s | %s |" % (wl, th, f(b, g), f(c, g), f(b, mi),
                                                     f(c, mi), f(c, b)))
        p("")
    if warm:
        p("Round 0 (warm-up, not in the medians), pairs/s:")
        p("")
        p("| workload | threads | " + " | ".join(ran) + " |")
        p("| --- | --- |" + " --- |" * len(ran))
        for wl, th in CONFIGS:
            p("| %s | %d | %s |" % (wl, th, " | ".join(fmt_rate(warm.get((v, wl, th))) for v in ran)))
        p("")
    p("Page faults during the timed part (median minor faults per process; "
      "first touch of the window is before it):")
    p("")
    p("| workload | threads | " + " | ".join(ran) + " |")
    p("| --- | --- |" + " --- |" * len(ran))
    for wl, th in CONFIGS:
        p("| %s | %d | %s |" % (wl, th, " | ".join(
            "%d" % faults[v, wl, th] if (v, wl, th) in faults else "-" for v in ran)))
    p("")
    p("Runs per cell: %s." % ", ".join(
        "%s %d" % (v, min(n.get((v, wl, th), 0) for wl, th in CONFIGS)) for v in ran))
    if misses:
        p("")
        p("Targets missed: " + "; ".join(misses) + ".")
    if problems:
        p("")
        p("Problems: " + "; ".join(problems) + ".")
    print("\n".join(out))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
