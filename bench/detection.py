#!/usr/bin/env python3
"""How long working out a stderr log's log_line_prefix takes, against the whole read.

    python bench/detection.py LOG [--repeat N]

Prints the median time of detection (format and prefix, from the first 200 lines) for the file,
and of the well-known-prefix list alone (what detection cost before prefixes were worked out), in
milliseconds. Detection runs once per input file; compare with `bench/run.py`'s read times.
"""

from __future__ import annotations

import argparse
import statistics
import time
from itertools import islice

from logdiag.formats.detect import detect
from logdiag.formats.infer import best_known, find_prefix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with open(args.log, encoding="utf-8", errors="replace") as log:
        sample = [line.rstrip("\n") for line in islice(log, 200)]
    heads = [line for line in sample if line and not line.startswith("\t")]
    timings: dict[str, list[float]] = {"detect (format + prefix)": [], "find_prefix": [], "known list only": []}
    for _ in range(args.repeat):
        for name, work in (
            ("detect (format + prefix)", lambda: detect(sample, args.log)),
            ("find_prefix", lambda: find_prefix(heads)),
            ("known list only", lambda: best_known(heads)),
        ):
            started = time.perf_counter()
            work()
            timings[name].append(time.perf_counter() - started)
    found = find_prefix(heads)
    print(f"{args.log}: prefix {found.prefix if found else None!r}")
    for name, values in timings.items():
        print(f"  {name:28} {statistics.median(values) * 1000:8.1f} ms (median of {args.repeat})")


if __name__ == "__main__":
    main()
