#!/usr/bin/env python3
"""Time logdiag (and pgBadger, when installed) on big real logs; print a Markdown table.

Usage:
    python bench/run.py LOGDIR [--prefix '%m [%p] %q%u@%d %c %v %x %e '] [--skip-slow] [--repeat N]

LOGDIR holds postgresql.csv, postgresql.json and postgresql.log as written by
bench/make_logs.sh (a real PostgreSQL 15 driven by pgbench plus commit-time FK failures).
Each run is timed with /usr/bin/time -v: wall time, peak RSS; MB/s and records/s follow from
the file size and the record count logdiag reports. The file runs (and zcat) are repeated (3
times by default) and the median is given with the range: a shared VM's runs differ by up to a
fifth. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

LOGDIAG = [sys.executable, "-m", "logdiag"]
DEFAULT_PREFIX = "%m [%p] %q%u@%d %c %v %x %e "  # what make_big_logs.sh configures


@dataclass
class Run:
    what: str
    file: Path
    seconds: list[float]  # one per repetition
    rss_mb: float  # the highest of the repetitions
    records: int | None = None
    incidents: int | None = None
    plain: Path | None = None  # for a compressed file: the same log uncompressed (MB and MB/s are of it)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def megabytes(self) -> float:
        return (self.plain or self.file).stat().st_size / 1e6

    @property
    def seconds_nonzero(self) -> float:
        """The median, at least 0.01 s (/usr/bin/time gives hundredths: a tiny log takes "0.00")."""
        return max(self.median, 0.01)

    def row(self) -> str:
        seconds = self.seconds_nonzero
        rate = f"{self.records / seconds:,.0f}" if self.records else ""
        found = "" if self.incidents is None else str(self.incidents)
        spread = f" ({min(self.seconds):.1f}–{max(self.seconds):.1f})" if len(self.seconds) > 1 else ""
        name = f"{self.file.name} (plain: {self.megabytes:,.0f} MB)" if self.plain else self.file.name
        return (
            f"| {self.what} | {name} | {self.megabytes:,.0f} | {self.median:.1f}{spread} | "
            f"{self.megabytes / seconds:,.0f} | {rate} | {self.rss_mb:,.0f} | {found} |"
        )


def timed(command: list[str] | str, stdout: int | None = subprocess.DEVNULL, shell: bool = False) -> tuple[float, float, str]:
    """Run under /usr/bin/time -v: (wall seconds, peak RSS in MB, stdout)."""
    with tempfile.NamedTemporaryFile("w+") as report, tempfile.TemporaryFile("w+") as out:
        if shell:
            full = f"/usr/bin/time -v -o {report.name} sh -c {json.dumps(command)}"
        else:
            full = ["/usr/bin/time", "-v", "-o", report.name, *command]
        subprocess.run(full, stdout=out, stderr=subprocess.DEVNULL, check=True, shell=shell)
        text = Path(report.name).read_text()
        out.seek(0)
        body = out.read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)[1]
    parts = [float(p) for p in wall.split(":")]
    seconds = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) == 3 else 0)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)[1]) / 1024
    return seconds, rss, body


def warm(path: Path) -> None:
    """Read the file once, so that the timed run finds it in the page cache (as the issue asks).

    On this VM the page cache holds only a few GB, so a file read minutes ago may be gone.
    """
    with path.open("rb") as handle:
        while handle.read(1 << 24):
            pass


def repeated(times: int, command: list[str] | str, path: Path, shell: bool = False) -> tuple[list[float], float, str]:
    """Run a command ``times`` times, the file read once just before each: (seconds of each run,
    the highest peak RSS in MB, the last run's stdout)."""
    seconds, peak, body = [], 0.0, ""
    for _ in range(times):
        warm(path)
        wall, rss, body = timed(command, stdout=subprocess.PIPE, shell=shell)
        seconds.append(wall)
        peak = max(peak, rss)
    return seconds, peak, body


def logdiag_json(what: str, path: Path, args: list[str], via_stdin: bool = False, times: int = 1,
                 plain: Path | None = None) -> Run:
    if via_stdin:
        command: list[str] | str = f"cat {path} | {' '.join(LOGDIAG)} analyze - -q --format json " + " ".join(
            json.dumps(a) for a in args
        )
    else:
        command = [*LOGDIAG, "analyze", "-q", "--format", "json", *args, str(path)]
    seconds, rss, body = repeated(times, command, path, shell=via_stdin)
    report = json.loads(body)
    return Run(what, path, seconds, rss, report["stats"]["records"], len(report["incidents"]), plain)


def export_run(fmt: str, path: Path, times: int, args: list[str], records: int | None) -> Run:
    """``logdiag export`` of a log into a new directory each time (an export of the same file
    into the same directory again would skip it)."""
    out = Path(tempfile.mkdtemp(prefix="logdiag-bench-export-"))
    command = f'{" ".join(LOGDIAG)} export -q {" ".join(json.dumps(a) for a in args)} {path} -o "$(mktemp -d -p {out})"'
    try:
        seconds, rss, _ = repeated(times, command, path, shell=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return Run(f"export ({fmt})", path, seconds, rss, records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logdir", type=Path)
    parser.add_argument("--prefix", default=DEFAULT_PREFIX)
    parser.add_argument("--skip-slow", action="store_true", help="skip the unfiltered stream and pgBadger")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="run each file and .gz command N times and give the median (default 3): "
                             "on a shared VM one run can be 20 %% off the next")
    options = parser.parse_args()
    d = options.logdir
    prefix = ["--log-line-prefix", options.prefix]
    runs: list[Run] = []
    files = {"csvlog": d / "postgresql.csv", "jsonlog": d / "postgresql.json", "stderr": d / "postgresql.log"}
    for fmt, path in files.items():
        runs.append(logdiag_json(f"analyze ({fmt})", path, prefix if fmt == "stderr" else [], times=options.repeat))
    records = {fmt: run.records for fmt, run in zip(files, runs, strict=True)}
    # The issue's yardstick: polars' own scan-and-filter of the csvlog (its ERROR records), in the same run.
    scan = f"import polars as pl; pl.scan_csv({str(files['csvlog'])!r}, has_header=False, infer_schema=False)" \
        ".filter(pl.col('column_11') == 'ERROR').collect()"
    seconds, rss, _ = repeated(options.repeat, [sys.executable, "-c", scan], files["csvlog"])
    runs.append(Run("polars scan_csv + filter (yardstick)", files["csvlog"], seconds, rss))
    for fmt, path in files.items():  # each log gzipped (once), against decompressing it alone
        gz = path.with_name(path.name + ".gz")
        if not gz.exists():
            subprocess.run(["gzip", "-k", "-1", str(path)], check=True)
        seconds, rss, _ = repeated(options.repeat, f"zcat {gz} > /dev/null", gz, shell=True)
        runs.append(Run(f"zcat alone ({fmt})", gz, seconds, rss, plain=path))
        args = prefix if fmt == "stderr" else []
        runs.append(logdiag_json(f"analyze ({fmt}.gz)", gz, args, times=options.repeat, plain=path))
    for fmt, path in files.items():
        args = prefix if fmt == "stderr" else []
        runs.append(logdiag_json(f"analyze - ({fmt} on stdin, look-back)", path, args, via_stdin=True))
    for fmt, path in files.items():  # their records read by polars
        runs.append(export_run(fmt, path, options.repeat, prefix if fmt == "stderr" else [], records[fmt]))
    if not options.skip_slow:
        runs.append(logdiag_json("analyze - --no-fast-path (stdin, every record)", files["csvlog"], ["--no-fast-path"],
                                 via_stdin=True))
        if shutil.which("pgbadger"):
            for fmt, flag in (("csvlog", "csv"), ("stderr", "stderr"), ("jsonlog", "jsonlog")):
                html = Path(tempfile.mkdtemp()) / "out.html"
                extra = ["--prefix", options.prefix] if fmt == "stderr" else []
                command = ["pgbadger", "-q", "-f", flag, *extra, "-o", str(html), str(files[fmt])]
                seconds, rss, _ = repeated(1, command, files[fmt])
                runs.append(Run(f"pgBadger ({fmt})", files[fmt], seconds, rss))
    print(f"machine: {os.cpu_count()} cores; {Path('/proc/meminfo').read_text().split()[1]} kB memory")
    print("| run | file | MB | seconds: median (range) | MB/s | records/s | peak RSS MB | incidents |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(run.row())
    by_name = {r.what: r for r in runs}
    yardstick = by_name["polars scan_csv + filter (yardstick)"]
    print(f"csvlog: logdiag analyze takes {by_name['analyze (csvlog)'].median / yardstick.seconds_nonzero:.2f}x "
          "the time of polars' own scan-and-filter")
    for fmt in files:
        ours, theirs = by_name[f"analyze ({fmt}.gz)"], by_name[f"zcat alone ({fmt})"]
        print(f"{fmt}.gz: logdiag analyze takes {ours.median / theirs.seconds_nonzero:.2f}x the time of zcat alone")
    for fmt in ("csvlog", "stderr", "jsonlog"):
        ours, theirs = by_name.get(f"analyze ({fmt})"), by_name.get(f"pgBadger ({fmt})")
        if ours and theirs:
            print(f"{fmt}: logdiag is {theirs.median / ours.seconds_nonzero:.1f}x faster than pgBadger")


if __name__ == "__main__":
    main()
