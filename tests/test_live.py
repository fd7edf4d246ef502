"""On-call mode: incidents come out while the log is still being written."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from itertools import cycle, islice

import psycopg
import pytest

from logdiag.diagnosis.sessions import SessionTracker
from logdiag.exitcodes import ExitStatus
from logdiag.reader import LogReader

DEFAULT_PREFIX = "%m [%p] "


def _read_line(stream, timeout: float) -> str | None:
    """One line from a pipe, or None if none arrives within ``timeout`` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else None


def _fail_at_commit(cluster, parent_id: int) -> str:
    """Commit a child row whose parent does not exist; return the culprit's text as executed."""
    statement = f"INSERT INTO live_child VALUES ({parent_id}, {parent_id})"
    with psycopg.connect(cluster.conninfo, application_name="live", autocommit=False,
                         cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute(statement)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.commit()
    return statement


@pytest.mark.postgres
def test_follow_a_log_directory_across_rotation(pg_cluster):
    """--follow LOGDIR reports an incident within seconds, and again after pg_rotate_logfile()."""
    settings = {"log_line_prefix": DEFAULT_PREFIX, "log_filename": "postgresql-%Y%m%d_%H%M%S.log"}
    with pg_cluster(**settings) as cluster:
        cluster.psql(
            "CREATE TABLE live_parent (id int PRIMARY KEY);"
            "CREATE TABLE live_child (id int, parent_id int REFERENCES live_parent DEFERRABLE INITIALLY DEFERRED);",
            check=True,
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "logdiag", "analyze", "--follow", str(cluster.log_dir), "--format", "jsonl"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            time.sleep(1.5)  # let it open the current file and go to its end
            culprit = _fail_at_commit(cluster, 42)
            line = _read_line(process.stdout, timeout=10)
            assert line is not None, "no incident within 10 s"
            first = json.loads(line)
            assert first["key"] == {"parent_id": "42"} and first["culprits"][0]["statement"] == culprit
            time.sleep(1.1)  # log_filename has one-second resolution
            cluster.psql("SELECT pg_rotate_logfile();", check=True)
            time.sleep(0.5)
            culprit = _fail_at_commit(cluster, 43)
            line = _read_line(process.stdout, timeout=10)
            assert line is not None, "no incident after rotation"
            second = json.loads(line)
            assert second["key"] == {"parent_id": "43"} and second["culprits"][0]["statement"] == culprit
            assert second["raised_by"]["source"]["file"] != first["raised_by"]["source"]["file"]
            # A transaction across a rotation: its INSERT is in one file, its COMMIT in the next.
            time.sleep(1.1)
            culprit = "INSERT INTO live_child VALUES (44, 44)"
            with psycopg.connect(cluster.conninfo, application_name="live", autocommit=False,
                                 cursor_factory=psycopg.ClientCursor) as conn:
                conn.execute(culprit)
                time.sleep(1.5)  # read, and held, before the file changes
                cluster.psql("SELECT pg_rotate_logfile();", check=True)
                time.sleep(0.5)
                with pytest.raises(psycopg.errors.ForeignKeyViolation):
                    conn.commit()
            line = _read_line(process.stdout, timeout=10)
            assert line is not None, "no incident for the transaction across the rotation"
            third = json.loads(line)
            assert third["key"] == {"parent_id": "44"} and third["culprits"][0]["statement"] == culprit
            assert third["culprits"][0]["source"]["file"] == second["raised_by"]["source"]["file"]
            assert third["raised_by"]["source"]["file"] != second["raised_by"]["source"]["file"]
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=10)
        assert process.returncode == ExitStatus.TERMINATED
        assert "Traceback" not in stderr and "3 incidents" in stderr


def _fail_and_stay(cluster, parent_id: int) -> tuple[psycopg.Connection, str]:
    """Commit a child row whose parent does not exist, and keep the session connected and silent
    (as a pooled connection waits); return it and the culprit's text as executed."""
    statement = f"INSERT INTO live_child VALUES ({parent_id}, {parent_id})"
    conn = psycopg.connect(cluster.conninfo, application_name="pooled", autocommit=False,
                           cursor_factory=psycopg.ClientCursor)
    conn.execute(statement)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.commit()
    return conn, statement


@contextmanager
def _others_busy(cluster, every: float = 0.1) -> Iterator[None]:
    """Another session logs a statement every ``every`` seconds meanwhile: the log never goes
    quiet, so no quiet period can complete a record."""
    stop = threading.Event()
    conn = psycopg.connect(cluster.conninfo, application_name="busy", autocommit=True)

    def run() -> None:
        while not stop.wait(every):
            conn.execute("SELECT 1")

    thread = threading.Thread(target=run, name="busy-session")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        conn.close()


class _Incidents:
    """logdiag's stdout (``--format jsonl``), read a line at a time as it comes."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.fd = process.stdout.fileno()
        self.pending = b""

    def next(self, timeout: float) -> dict | None:
        """The next incident, or None if none comes within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)


def _start_analyze(
    cluster, fmt: str, path: str, *options: str, from_start: bool = False,
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes] | None]:
    """logdiag analyze --format jsonl on the cluster's log (from its end, or its start): through
    ``tail -F`` on stdin, or ``--follow`` its directory; returns it and the tail."""
    command = [sys.executable, "-m", "logdiag", "analyze", "--format", "jsonl", "--quiet", *options]
    if path == "stdin":
        tail = subprocess.Popen(["tail", "-n", "+1" if from_start else "0", "-F", str(cluster.log_file(fmt))],
                                stdout=subprocess.PIPE)
        assert tail.stdout is not None
        process = subprocess.Popen([*command, "-"], stdin=tail.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        tail.stdout.close()  # logdiag holds it
        return process, tail
    command += ["--follow", str(cluster.log_dir), *(["--from-start"] if from_start else [])]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE), None


def _stop_analyze(process: subprocess.Popen[bytes], tail: subprocess.Popen[bytes] | None) -> bytes:
    """SIGTERM logdiag (and the tail); its stderr."""
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    if tail is not None:
        tail.terminate()
        tail.wait(timeout=10)
    assert process.returncode == ExitStatus.TERMINATED
    assert b"Traceback" not in stderr
    return stderr


@pytest.mark.postgres
@pytest.mark.parametrize("fast", ["--fast-path", "--no-fast-path"])
@pytest.mark.parametrize("path", ["stdin", "follow"])
@pytest.mark.parametrize("fmt", ["stderr", "csvlog", "jsonlog"])
def test_incident_arrives_while_the_failing_session_stays_idle(pg_cluster, fmt, path, fast):
    """An incident comes out while its session stays connected and silent after its COMMIT failed,
    on a quiet server (its record among the lines that tell the format) and while another
    session keeps the log busy (issue 24, section 4: through the fast path, a stderr incident
    waited for the failing session's next line)."""
    with pg_cluster(log_line_prefix=DEFAULT_PREFIX, log_destination=fmt) as cluster:
        cluster.psql(
            "CREATE TABLE live_parent (id int PRIMARY KEY);"
            "CREATE TABLE live_child (id int, parent_id int REFERENCES live_parent DEFERRABLE INITIALLY DEFERRED);",
            check=True,
        )
        idle: list[psycopg.Connection] = []
        conn, culprit = _fail_and_stay(cluster, 42)  # before logdiag starts: nothing else logs
        idle.append(conn)
        process, tail = _start_analyze(cluster, fmt, path, fast, from_start=True)
        try:
            incidents = _Incidents(process)
            first = incidents.next(timeout=20)  # logdiag's start-up included
            assert first is not None, "no incident while the failing session was idle on a quiet server"
            assert first["key"] == {"parent_id": "42"} and first["culprits"][0]["statement"] == culprit
            with _others_busy(cluster):
                conn, culprit = _fail_and_stay(cluster, 43)
                idle.append(conn)
                second = incidents.next(timeout=10)
            assert second is not None, "no incident while the failing session was idle and another busy"
            assert second["key"] == {"parent_id": "43"} and second["culprits"][0]["statement"] == culprit
            assert not any(conn.closed for conn in idle)  # the failing sessions never spoke again
        finally:
            for conn in idle:
                conn.close()
            _stop_analyze(process, tail)


@pytest.mark.postgres
@pytest.mark.parametrize("path", ["stdin", "follow"])
@pytest.mark.parametrize("fmt", ["stderr", "csvlog"])
def test_first_incident_on_time_when_the_log_never_goes_quiet(pg_cluster, fmt, path):
    """A log that gets a line every 0.1 s from the moment logdiag starts never goes quiet: the
    lines that tell its format must not be waited for until there are 200 of them (20 s here;
    issue 24, section 4)."""
    with pg_cluster(log_line_prefix="%m [%p] %q%u@%d %c %v %x %e ", log_destination=fmt) as cluster:
        cluster.psql(
            "CREATE TABLE live_parent (id int PRIMARY KEY);"
            "CREATE TABLE live_child (id int, parent_id int REFERENCES live_parent DEFERRABLE INITIALLY DEFERRED);",
            check=True,
        )
        idle: list[psycopg.Connection] = []
        with _others_busy(cluster):
            process, tail = _start_analyze(cluster, fmt, path)
            try:
                time.sleep(1.5)  # logdiag is up, reading the busy session's lines
                conn, culprit = _fail_and_stay(cluster, 42)
                idle.append(conn)
                incident = _Incidents(process).next(timeout=10)
            finally:
                for conn in idle:
                    conn.close()
                _stop_analyze(process, tail)
        assert incident is not None, "no incident within 10 s while the log never went quiet"
        assert incident["key"] == {"parent_id": "42"} and incident["culprits"][0]["statement"] == culprit


@pytest.mark.postgres
@pytest.mark.parametrize("path", ["stdin", "follow"])
def test_incident_found_after_a_start_of_postmaster_lines_only(pg_cluster, path):
    """The first lines logdiag sees are a restarting server's own, which stop where %q stands:
    the prefix worked out from them is short of a client's lines, which must still be read
    (the pre-filter would drop them as lines that do not match; issue 24)."""
    prefix = "%m [%p] %q%u@%d %c %v %x %e "
    with pg_cluster(log_line_prefix=prefix, log_destination="stderr") as cluster:
        cluster.psql(
            "CREATE TABLE live_parent (id int PRIMARY KEY);"
            "CREATE TABLE live_child (id int, parent_id int REFERENCES live_parent DEFERRABLE INITIALLY DEFERRED);",
            check=True,
        )
        process, tail = _start_analyze(cluster, "stderr", path)
        try:
            time.sleep(1.5)  # logdiag is at the end of the log
            cluster.stop()
            cluster.start()  # only the postmaster's and background processes' lines
            time.sleep(1.5)  # logdiag has worked out the format from them and gone quiet
            culprit = _fail_at_commit(cluster, 42)
            incident = _Incidents(process).next(timeout=10)
        finally:
            stderr = _stop_analyze(process, tail)
        assert incident is not None, f"no incident after a start of postmaster lines: {stderr.decode()}"
        assert incident["key"] == {"parent_id": "42"} and incident["culprits"][0]["statement"] == culprit


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
def test_incident_arrives_while_the_pipe_is_open(server_logs, fmt):
    """A writer feeds a real log through a pipe and keeps it open: the incident comes out anyway."""
    lines = server_logs[fmt].read_bytes().splitlines(keepends=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "logdiag", "analyze", "-", "--format", "jsonl"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        for line in lines:
            process.stdin.write(line)
            process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 10)
        assert ready, "no incident while the pipe was open"
        incident = json.loads(process.stdout.readline())
        assert incident["key"] == {"customer_id": "42"}
        assert process.poll() is None  # still running: the pipe is open
    finally:
        process.stdin.close()
        process.wait(timeout=10)
    assert process.returncode == 0


@pytest.mark.postgres
def test_memory_stays_under_the_caps(server_logs):
    """Two million records (real records, replayed as ever new sessions that never disconnect,
    and one transaction that never ends) keep retained sessions and statements under the caps."""
    records = [r for r in LogReader([str(server_logs["csvlog"])]) if not (r.message or "").startswith("disconnection")]
    statements = [r for r in records if (r.message or "").startswith("statement: INSERT")]
    long_running = statements[0]
    tracker = SessionTracker(max_sessions=500, max_statements=200, idle_timeout=60)
    # 4,000 sessions' worth of replayed records, log time moving on by a second every thousand.
    pool = [
        replace(base, session_id=f"{base.session_id}.{n // 50}", timestamp=base.timestamp + timedelta(seconds=n // 1000))
        for n, base in zip(range(200_000), cycle(records), strict=False)
    ]
    total = 2_000_000
    replayed = cycle(pool)
    for n in range(total):
        record = long_running if n % 3 == 0 else next(replayed)  # one transaction that never ends
        for _ in tracker.feed(record):
            pass
        if n % 100_000 == 0:
            assert len(tracker.sessions) <= 500
            assert all(len(s.transaction.entries) <= 200 for s in tracker.sessions.values())
    assert tracker.stats.records == total
    assert tracker.stats.evicted_sessions + tracker.stats.idle_sessions > 0
    assert tracker.stats.dropped_statements > 0


def test_follow_needs_one_path(tmp_path):
    """--follow with two paths, or with stdin, is a one-line error."""
    result = subprocess.run(
        [sys.executable, "-m", "logdiag", "analyze", "--follow", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == ExitStatus.ERROR
    assert result.stderr == "logdiag: error: --follow takes one log file or log directory\n"
    assert list(islice(os.scandir(tmp_path), 1)) == []


def test_stdin_reader_lets_logdiag_exit_while_the_pipe_stays_open():
    """logdiag may stop before its input ends (``| head``, an error): the thread that reads
    standard input must not make the interpreter abort at exit ("could not acquire lock for
    <stdin>"), which it did while it waited inside the buffered reader."""
    script = (
        "import sys\n"
        "from logdiag.source.live import stdin_chunks\n"
        "print(next(stdin_chunks(sys.stdin.buffer, 0.2)))\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    child.stdin.write(b"first bytes\n")
    child.stdin.flush()  # and the pipe stays open, as a live one does
    try:
        code = child.wait(timeout=30)  # its output is a line: the pipes cannot fill up
    finally:
        child.stdin.close()
    assert code == 0, child.stderr.read().decode()
    assert b"first bytes" in child.stdout.read()
