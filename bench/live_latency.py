#!/usr/bin/env python3
"""Time live incidents: from a failed COMMIT (its session then idle) to the incident on stdout.

Usage:
    python bench/live_latency.py [--traffic quiet|steady|busy|unbroken] [--formats stderr,csvlog,jsonlog]

A real PostgreSQL cluster (tests/pgcluster.py) logs to stderr, csvlog and jsonlog; for each
format, input (``tail -n0 -F FILE | logdiag analyze -`` and ``logdiag analyze --follow FILE``) and
fast path on and off, logdiag starts at the end of the log, a session commits a row whose parent
does not exist and stays connected and silent, and the time from the COMMIT's error to the
incident on logdiag's stdout (``--format jsonl``) is printed. ``--traffic``: ``quiet``, nothing
else logs (the failure is among the first lines logdiag reads, which tell the format);
``steady``, 250 statements first (the format is told), then nothing; ``busy``, the same and
another session logging a statement every 0.2 s meanwhile; ``unbroken``, that session logging from
before logdiag starts, so the log never goes quiet while its format is told. An incident that has not come after
``--idle`` seconds is waited for after the session's next statement. docs/live.md has the
figures. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from tests.pgcluster import PgCluster, find_bindir, make_template, running_cluster


def _busy(cluster: PgCluster, stop: threading.Event) -> None:
    with psycopg.connect(cluster.conninfo, application_name="busy", autocommit=True) as conn:
        while not stop.wait(0.2):
            conn.execute("SELECT 1")


def _one(cluster: PgCluster, fmt: str, path: str, fast: bool, traffic: str, parent: int, idle: float) -> str:
    log = cluster.log_file(fmt)
    stop = threading.Event()
    if traffic == "unbroken":
        threading.Thread(target=_busy, args=(cluster, stop), daemon=True).start()
        time.sleep(0.5)
    command = [sys.executable, "-m", "logdiag", "analyze", "--format", "jsonl", "--quiet"]
    command += [] if fast else ["--no-fast-path"]
    if path == "stdin":
        shell = f"tail -n0 -F {log} | {' '.join(command)} -"
        process = subprocess.Popen(["bash", "-c", shell], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True)
    else:
        process = subprocess.Popen([*command, "--follow", str(log)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True)
    try:
        time.sleep(1.5)  # logdiag (or tail) opens the file and goes to its end
        if traffic in ("steady", "busy"):
            with psycopg.connect(cluster.conninfo, application_name="burst", autocommit=True) as conn:
                for _ in range(250):
                    conn.execute("SELECT 2")
            time.sleep(2.5)
        if traffic == "busy":
            threading.Thread(target=_busy, args=(cluster, stop), daemon=True).start()
            time.sleep(1)
        assert process.stdout is not None
        with psycopg.connect(cluster.conninfo, application_name="idle", autocommit=False) as conn:
            conn.execute(f"INSERT INTO c VALUES ({parent}, {parent})")
            with contextlib.suppress(psycopg.errors.ForeignKeyViolation):
                conn.commit()
            failed = time.monotonic()
            ready = select.select([process.stdout], [], [], idle)[0]
            took = f"{time.monotonic() - failed:.2f} s" if ready else f"none after {idle:.0f} s"
            if not ready:
                conn.execute("SELECT 1")
                conn.commit()
                ready = select.select([process.stdout], [], [], 10)[0]
                took += f", {time.monotonic() - failed:.2f} s after its next statement" if ready else ", nor after"
        key = json.loads(process.stdout.readline())["key"] if ready else None
        return f"{traffic:6} {fmt:7} {path:6} {'fast' if fast else 'no-fast':7} {took}  key={key}"
    finally:
        stop.set()
        os.killpg(process.pid, signal.SIGTERM)  # its own process group: tail and logdiag
        process.communicate(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traffic", choices=["quiet", "steady", "busy", "unbroken"], default="busy")
    parser.add_argument("--formats", default="stderr,csvlog,jsonlog")
    parser.add_argument("--idle", type=float, default=6.0)
    args = parser.parse_args()
    bindir = find_bindir()
    directory = Path(tempfile.mkdtemp(prefix="logdiag-bench-"))
    os.chmod(directory, 0o755)
    try:
        _measure(bindir, make_template(bindir, directory), args)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _measure(bindir: Path, template: Path, args: argparse.Namespace) -> None:
    with running_cluster(bindir, template, {"log_line_prefix": "%m [%p] %q%u@%d "}) as cluster:
        cluster.psql(
            "CREATE TABLE p (id int PRIMARY KEY);"
            "CREATE TABLE c (id int, pid int REFERENCES p DEFERRABLE INITIALLY DEFERRED);",
            check=True,
        )
        parent = 100
        for fmt in args.formats.split(","):
            for path in ("stdin", "follow"):
                for fast in (True, False):
                    print(_one(cluster, fmt, path, fast, args.traffic, parent, args.idle), flush=True)
                    parent += 1


if __name__ == "__main__":
    main()
