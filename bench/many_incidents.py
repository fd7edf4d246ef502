#!/usr/bin/env python3
"""Time per incident as incidents grow: logs with N commit-time failures, each its own session.

    python bench/many_incidents.py [--counts 1000,5000,20000] [--ok-per-failure 4]

For each N, a throwaway PostgreSQL cluster (tests/pgcluster.py: Debian's 15, run as the postgres
account) logs N sessions that fail at COMMIT on a deferred foreign key, between sessions that
commit (``--ok-per-failure`` each; with ``--temp-tables`` each creates a temporary table), in csvlog, jsonlog and stderr at once; then ``logdiag analyze
--format jsonl`` reads each file. Prints the log size, the incidents found (they must be N), the
whole run's time and its time per incident. Before issue 27, 20,000 failing sessions ended in an
internal error (the fast path named every failing session in one regular expression).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pgcluster import find_bindir, make_template, running_cluster

SETTINGS = {
    "log_line_prefix": "%m [%p] %q%u@%d %c %v %x %e ",
    "log_statement": "all",
    "max_connections": "40",
}


def _session(conninfo: str, number: int, ok_per_failure: int, temp_tables: bool) -> None:
    for ok in range(ok_per_failure):
        with psycopg.connect(conninfo, application_name="ok") as conn:
            if temp_tables:  # DDL in every session, as some frameworks' sessions have
                conn.execute("CREATE TEMP TABLE scratch (id int PRIMARY KEY, note text)")
            conn.execute(f"INSERT INTO parent VALUES ({number * 100 + ok + 1})")
    with psycopg.connect(conninfo, application_name="failing", cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute(f"INSERT INTO child VALUES ({number}, {-number - 1})")
        try:
            conn.commit()
        except psycopg.errors.ForeignKeyViolation:
            pass
        else:
            raise AssertionError("the commit should have failed")


def make_logs(count: int, ok_per_failure: int, out: Path, temp_tables: bool = False) -> dict[str, Path]:
    bindir = find_bindir("15")
    template = make_template(bindir, out / "template")
    with running_cluster(bindir, template, SETTINGS) as cluster:
        with psycopg.connect(cluster.conninfo, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE parent (id int PRIMARY KEY);"
                " CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED)"
            )
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: _session(cluster.conninfo, n, ok_per_failure, temp_tables), range(count)))
        cluster.stop()
        logs = {}
        for fmt in ("csvlog", "jsonlog", "stderr"):
            source = cluster.log_file(fmt)
            logs[fmt] = out / f"{count}-{source.name}"
            logs[fmt].write_bytes(source.read_bytes())
        return logs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1000,5000,20000")
    parser.add_argument("--ok-per-failure", type=int, default=4)
    parser.add_argument("--work", default="/tmp/logdiag-many-incidents")
    parser.add_argument("--temp-tables", action="store_true",
                        help="every committing session creates a temporary table first (DDL throughout the log)")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"{'N':>6} {'format':8} {'MB':>6} {'incidents':>9} {'run s':>7} {'ms/incident':>11}")
    for count in (int(c) for c in args.counts.split(",")):
        shutil.rmtree(work / str(count), ignore_errors=True)
        (work / str(count)).mkdir()
        logs = make_logs(count, args.ok_per_failure, work / str(count), args.temp_tables)
        for fmt, log in logs.items():
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "logdiag", "analyze", str(log), "--format", "jsonl", "-q"],
                capture_output=True, text=True, check=False,
            )
            took = time.perf_counter() - started
            found = len(done.stdout.splitlines())
            status = "" if done.returncode == 0 else f"  exit {done.returncode}: {done.stderr.strip()[:100]}"
            print(f"{count:>6} {fmt:8} {log.stat().st_size / 2**20:>6.1f} {found:>9} {took:>7.2f}"
                  f" {1000 * took / max(found, 1):>11.3f}{status}", flush=True)


if __name__ == "__main__":
    main()
