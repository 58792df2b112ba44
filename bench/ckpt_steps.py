#!/usr/bin/env python3
"""ckpt_steps.py -- where the time of a checkpoint goes, from ckpt_bench's stderr.

    CKPT_TEST_STEP_TIMES=1 CKPT_FORK_MODE=cow build-bench/bench/ckpt_bench \\
        --sizes 256M,1G --reps 5 --rewrite 1 --keep 2 2>steps.txt
    bench/ckpt_steps.py [--from K] steps.txt

With CKPT_TEST_STEP_TIMES=1, libckpt writes a line "ckpt-step NAME US" to
stderr as each step of ckpt_checkpoint ends (the microseconds since the
previous one ended), and ckpt_bench a line "ckpt-bench checkpoint MIB K"
before its K-th checkpoint of a heap of MIB MiB. Prints, per heap size, the
median and range in ms of every step over the checkpoints K >= --from
(default 2: with keep 2, the first two build their images by copy; the
later ones recycle), and of their sum. The steps are listed in
docs/BENCHMARKS.md ("Where the time of a cow checkpoint goes").
"""
import statistics
import sys


def main(argv):
    start = 2
    if len(argv) >= 3 and argv[1] == "--from":
        start = int(argv[2])
        argv = argv[2:]
    if len(argv) != 2:
        sys.exit(__doc__)
    runs = {}           # size -> list of {step: ms}, in order
    order = []          # step names in the order they were first seen
    cur = None
    with open(argv[1]) as f:
        for line in f:
            w = line.split()
            if len(w) == 4 and w[:2] == ["ckpt-bench", "checkpoint"]:
                cur = {} if int(w[3]) >= start else None
                if cur is not None:
                    runs.setdefault(int(w[2]), []).append(cur)
            elif len(w) == 3 and w[0] == "ckpt-step" and cur is not None:
                cur[w[1]] = cur.get(w[1], 0.0) + int(w[2]) / 1000.0
                if w[1] not in order:
                    order.append(w[1])
    if not runs:
        sys.exit("no checkpoint steps in %s (was CKPT_TEST_STEP_TIMES=1 set?)" % argv[1])
    for size, cps in runs.items():
        print("\n%d MiB: %d checkpoints (K >= %d), ms\n" % (size, len(cps), start))
        print("| step | median | range |")
        print("| --- | ---: | ---: |")
        for name in order + ["sum"]:
            v = [sum(c.values()) if name == "sum" else c.get(name, 0.0) for c in cps]
            print("| %s | %.1f | %.1f-%.1f |" % (name, statistics.median(v), min(v), max(v)))


if __name__ == "__main__":
    main(sys.argv)
