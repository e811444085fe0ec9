#!/usr/bin/env python3
"""Deterministic tree of small files for bench/swarm's files/s row.

  smallfiles.py OUT --files N [--seed S] [--max BYTES] [--per-dir K]

N files of 1 .. BYTES (default 16384) bytes, uniformly distributed sizes, in
directories of K (default 200) files: OUT/dNNN/fNNNNNN.bin. Content is
incompressible (random.Random seeded per file), so the same arguments give a
byte-identical tree. Prints a JSON line with the counts.
"""
import argparse
import json
import os
import random
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--files", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max", type=int, default=16384)
    p.add_argument("--per-dir", type=int, default=200)
    a = p.parse_args()
    if a.files < 1 or a.max < 1 or a.per_dir < 1:
        sys.exit("smallfiles.py: --files, --max and --per-dir must be positive")
    sizes = random.Random(f"sizes/{a.seed}")
    total = 0
    for i in range(a.files):
        d = os.path.join(a.out, f"d{i // a.per_dir:03d}")
        if i % a.per_dir == 0:
            os.makedirs(d, exist_ok=True)
        n = sizes.randint(1, a.max)
        data = random.Random(f"file/{a.seed}/{i}").randbytes(n)
        with open(os.path.join(d, f"f{i:06d}.bin"), "wb") as f:
            f.write(data)
        total += n
    print(json.dumps({"files": a.files, "bytes": total, "max": a.max}))


if __name__ == "__main__":
    main()
