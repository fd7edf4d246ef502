#!/usr/bin/env python3
"""Time logdiag (and pgBadger, when installed) on big real logs; print a Markdown table.

Usage:
    python bench/run.py LOGDIR [--prefix '%m [%p] %q%u@%d %c %v %x %e '] [--skip-slow]

LOGDIR holds postgresql.csv, postgresql.json and postgresql.log as written by
bench/make_logs.sh (a real PostgreSQL 15 driven by pgbench plus commit-time FK failures).
Each run is timed with /usr/bin/time -v: wall time, peak RSS; MB/s and records/s follow from
the file size and the record count logdiag reports. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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
    seconds: float
    rss_mb: float
    records: int | None = None
    incidents: int | None = None

    @property
    def mb_per_s(self) -> float:
        return self.file.stat().st_size / 1e6 / self.seconds

    def row(self) -> str:
        rate = f"{self.records / self.seconds:,.0f}" if self.records else ""
        found = "" if self.incidents is None else str(self.incidents)
        return (
            f"| {self.what} | {self.file.name} | {self.file.stat().st_size / 1e6:,.0f} | {self.seconds:.1f} | "
            f"{self.mb_per_s:,.0f} | {rate} | {self.rss_mb:,.0f} | {found} |"
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


def logdiag_json(what: str, path: Path, args: list[str], via_stdin: bool = False) -> Run:
    warm(path)
    if via_stdin:
        command = f"cat {path} | {' '.join(LOGDIAG)} analyze - -q --format json " + " ".join(
            json.dumps(a) for a in args
        )
        seconds, rss, body = timed(command, stdout=subprocess.PIPE, shell=True)
    else:
        seconds, rss, body = timed([*LOGDIAG, "analyze", "-q", "--format", "json", *args, str(path)])
    report = json.loads(body)
    return Run(what, path, seconds, rss, report["stats"]["records"], len(report["incidents"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logdir", type=Path)
    parser.add_argument("--prefix", default=DEFAULT_PREFIX)
    parser.add_argument("--skip-slow", action="store_true", help="skip the unfiltered stream, export and pgBadger")
    options = parser.parse_args()
    d = options.logdir
    prefix = ["--log-line-prefix", options.prefix]
    runs: list[Run] = []
    files = {"csvlog": d / "postgresql.csv", "jsonlog": d / "postgresql.json", "stderr": d / "postgresql.log"}
    for fmt, path in files.items():
        runs.append(logdiag_json(f"analyze ({fmt})", path, prefix if fmt == "stderr" else []))
    gz = d / "postgresql.csv.gz"
    if not gz.exists():
        subprocess.run(["gzip", "-k", "-1", str(files["csvlog"])], check=True)
    warm(gz)
    seconds, rss, _ = timed(f"zcat {gz} > /dev/null", shell=True)
    runs.append(Run("zcat alone", gz, seconds, rss))
    runs.append(logdiag_json("analyze (csvlog.gz)", gz, []))
    for fmt, path in files.items():
        args = prefix if fmt == "stderr" else []
        runs.append(logdiag_json(f"analyze - ({fmt} on stdin, look-back)", path, args, via_stdin=True))
    if not options.skip_slow:
        runs.append(logdiag_json("analyze - --no-fast-path (stdin, every record)", files["csvlog"], ["--no-fast-path"],
                                 via_stdin=True))
        out = Path(tempfile.mkdtemp(prefix="logdiag-bench-export-"))
        warm(files["csvlog"])
        seconds, rss, _ = timed([*LOGDIAG, "export", "-q", str(files["csvlog"]), "-o", str(out)])
        runs.append(Run("export (csvlog)", files["csvlog"], seconds, rss, runs[0].records))
        shutil.rmtree(out, ignore_errors=True)
        if shutil.which("pgbadger"):
            for fmt, flag in (("csvlog", "csv"), ("stderr", "stderr"), ("jsonlog", "jsonlog")):
                html = Path(tempfile.mkdtemp()) / "out.html"
                extra = ["--prefix", options.prefix] if fmt == "stderr" else []
                warm(files[fmt])
                seconds, rss, _ = timed(["pgbadger", "-q", "-f", flag, *extra, "-o", str(html), str(files[fmt])])
                runs.append(Run(f"pgBadger ({fmt})", files[fmt], seconds, rss))
    print(f"machine: {os.cpu_count()} cores; {Path('/proc/meminfo').read_text().split()[1]} kB memory")
    print("| run | file | MB | seconds | MB/s | records/s | peak RSS MB | incidents |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(run.row())
    by_name = {r.what: r for r in runs}
    for fmt in ("csvlog", "stderr", "jsonlog"):
        ours, theirs = by_name.get(f"analyze ({fmt})"), by_name.get(f"pgBadger ({fmt})")
        if ours and theirs:
            print(f"{fmt}: logdiag is {theirs.seconds / ours.seconds:.1f}x faster than pgBadger")


if __name__ == "__main__":
    main()
