"""Following without loss (issue 27 §4-§7): fast rotation, logrotate's create and copytruncate,
a file that shrinks while it is read, a directory still without a log, FIFOs in a directory.

Every log here is a real server's, rotated by the server itself or by Debian's real logrotate;
logdiag runs as a process. Where a race decides whether a line is lost (the server writes again
before logdiag looks), logdiag is stopped (SIGSTOP) over the race, so that it loses it every time
unless it reads without loss, and continued (SIGCONT) afterwards.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from logdiag.exitcodes import ExitStatus

LOGROTATE = "/usr/sbin/logrotate"
#: Seconds a test waits at most for what it polls for: generous, on a loaded machine.
PATIENCE = 120.0


class _Process:
    """``logdiag analyze --format jsonl`` running: its incidents and its stderr, read as they come."""

    def __init__(self, *arguments: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "logdiag", "analyze", "--format", "jsonl", *arguments],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self.out = self.popen.stdout.fileno()
        self.err_fd = self.popen.stderr.fileno()
        self.pending = b""
        self.errors = b""
        self.incidents: list[dict] = []

    def _pump(self, timeout: float) -> None:
        """Read what stdout and stderr have (waiting up to ``timeout`` seconds for something)."""
        ready, _, _ = select.select([self.out, self.err_fd], [], [], timeout)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if fd == self.err_fd:
                self.errors += chunk
                continue
            self.pending += chunk
            *lines, self.pending = self.pending.split(b"\n")
            self.incidents.extend(json.loads(line) for line in lines)

    def wait_for(self, predicate, what: str) -> None:
        """Poll until ``predicate(self)`` holds; fail after :data:`PATIENCE` seconds."""
        deadline = time.monotonic() + PATIENCE
        while not predicate(self):
            if time.monotonic() > deadline or self.popen.poll() is not None:
                self._pump(0.5)  # what it said last
                pytest.fail(f"{what}: not seen; stderr: {self.errors.decode(errors='replace')}")
            self._pump(0.2)

    def keys(self) -> list[int]:
        return sorted(int(incident["key"]["parent_id"]) for incident in self.incidents)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """logdiag stopped (SIGSTOP) meanwhile: whatever happens, happens before it looks again."""
        self.popen.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.popen.send_signal(signal.SIGCONT)

    def stop(self, how: signal.Signals = signal.SIGTERM) -> str:
        """Signal logdiag; its last stderr, all of it."""
        self.popen.send_signal(how)
        rest, errors = self.popen.communicate(timeout=60)
        self.pending += rest
        self.incidents.extend(json.loads(line) for line in self.pending.split(b"\n") if line)
        self.pending = b""
        self.errors += errors
        return self.errors.decode(errors="replace")


def _tables(cluster) -> None:
    cluster.psql(
        "CREATE TABLE live_parent (id int PRIMARY KEY);"
        "CREATE TABLE live_child (id int, parent_id int REFERENCES live_parent DEFERRABLE INITIALLY DEFERRED);",
        check=True,
    )


def _fail_at_commit(conn: psycopg.Connection, parent_id: int) -> str:
    """Commit a child row whose parent does not exist (a commit-time 23503); the culprit."""
    statement = f"INSERT INTO live_child VALUES ({parent_id}, {parent_id})"
    conn.execute(statement)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.commit()
    return statement


def _connect(cluster, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(cluster.conninfo, application_name="follow", autocommit=autocommit,
                           cursor_factory=psycopg.ClientCursor)


def _following(name: str):
    return lambda process: f"logdiag: following {name}".encode() in process.errors


@pytest.mark.postgres
def test_a_directory_rotated_every_tenth_of_a_second_loses_no_file(pg_cluster):
    """50 files written 0.1 s apart, one commit-time incident in each: 50 incidents (it was
    about half: --follow DIR jumped to the newest file, skipping those rotated meanwhile). Then
    one SIGINT: the summary, exit 130, no traceback and no "Exception ignored" line."""
    settings = {"log_destination": "csvlog", "log_filename": "postgresql-%Y%m%d_%H%M%S.log"}
    # The server's clock runs ten times as fast (libfaketime): log_filename's seconds, the finest
    # a name can tell, go by every 0.1 s, and pg_rotate_logfile() makes a new file each time.
    with pg_cluster(fake_time="2026-03-01 10:00:00 x10", **settings) as cluster:
        _tables(cluster)
        process = _Process("--follow", str(cluster.log_dir))
        try:
            process.wait_for(lambda p: b"logdiag: following" in p.errors, "logdiag following the directory")
            culprits = {}
            with _connect(cluster) as conn, _connect(cluster, autocommit=True) as admin:
                for n in range(50):
                    culprits[n] = _fail_at_commit(conn, n)
                    admin.execute("SELECT pg_rotate_logfile()")
                    time.sleep(0.1)
            process.wait_for(lambda p: len(p.incidents) >= 50, "50 incidents")
        finally:
            stderr = process.stop(signal.SIGINT)
        files = sorted(cluster.log_dir.glob("*.csv"))
        assert len(files) >= 25, f"the server rotated too slowly for the test: {len(files)} files"
        assert process.keys() == list(range(50))
        assert {i["key"]["parent_id"]: i["culprits"][0]["statement"] for i in process.incidents} == {
            str(n): statement for n, statement in culprits.items()
        }
        # The files were read in their order (two rotations within one of the server's seconds
        # give one file two incidents).
        named = [Path(i["raised_by"]["source"]["file"]) for i in process.incidents]
        assert named == sorted(named)
        assert process.popen.returncode == ExitStatus.INTERRUPTED
        assert "logdiag: stopped after" in stderr and "50 incidents" in stderr
        assert "Traceback" not in stderr and "Exception ignored" not in stderr


def _logrotate(tmp_path: Path, log: Path, *directives: str) -> None:
    """Rotate ``log`` with Debian's logrotate, forced, as an administrator's cron job would."""
    config = tmp_path / "logrotate.conf"
    config.write_text(
        f"{log} {{\n    su postgres postgres\n    rotate 5\n    nocompress\n    missingok\n"
        + "".join(f"    {d}\n" for d in directives) + "}\n"
    )
    config.chmod(0o644)
    result = subprocess.run(
        [LOGROTATE, "--force", "--state", str(tmp_path / "logrotate.state"), str(config)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr


def _needs_logrotate() -> None:
    if not os.path.exists(LOGROTATE):
        if os.environ.get("CI"):
            pytest.fail(f"{LOGROTATE} is missing: install Debian's logrotate package")
        pytest.skip(f"{LOGROTATE} is missing (Debian's logrotate package)")


@pytest.mark.postgres
def test_follow_a_file_through_logrotate_copytruncate(pg_cluster, tmp_path):
    """logrotate copies the file and truncates it, and the server writes more than its old size
    before logdiag looks again: the end of the copy and the new text are both read (it lost a
    session every time: the new text was read from the old offset)."""
    _needs_logrotate()
    with pg_cluster(log_destination="stderr") as cluster:
        _tables(cluster)
        log = cluster.log_file("stderr")
        process = _Process("--follow", str(log))
        try:
            process.wait_for(_following(log), "logdiag following the file")
            with _connect(cluster) as conn:
                _fail_at_commit(conn, 1)
                process.wait_for(lambda p: p.keys() == [1], "the incident before rotation")
                with process.paused():
                    _fail_at_commit(conn, 2)  # logdiag has not read it: it goes with the copy
                    _logrotate(tmp_path, log, "copytruncate")
                    copied = (log.parent / (log.name + ".1")).stat().st_size
                    n = 3
                    while log.stat().st_size <= copied:  # more than the old size, at once
                        _fail_at_commit(conn, n)
                        n += 1
                process.wait_for(lambda p: p.keys() == list(range(1, n)), f"incidents 1 to {n - 1}")
                _fail_at_commit(conn, n)  # and following goes on
                process.wait_for(lambda p: p.keys() == list(range(1, n + 1)), f"incident {n}")
        finally:
            stderr = process.stop()
        assert process.popen.returncode == ExitStatus.TERMINATED
        assert f"{log} was truncated; its end was read from its copy {log}.1" in stderr
        assert "warning" not in stderr and "Traceback" not in stderr


@pytest.mark.postgres
def test_follow_warns_when_copytruncate_leaves_no_copy(pg_cluster, tmp_path):
    """logrotate's copytruncate with ``compress`` (no ``delaycompress``): the copy is compressed
    at once, so what the server wrote after logdiag's last read is in no file it follows. The
    new text is read from its start, and a warning names the file (it was lost in silence)."""
    _needs_logrotate()
    with pg_cluster(log_destination="stderr") as cluster:
        _tables(cluster)
        log = cluster.log_file("stderr")
        process = _Process("--follow", str(log))
        try:
            process.wait_for(_following(log), "logdiag following the file")
            with _connect(cluster) as conn:
                _fail_at_commit(conn, 1)
                process.wait_for(lambda p: p.keys() == [1], "the incident before rotation")
                with process.paused():
                    _fail_at_commit(conn, 2)  # only in the compressed copy
                    _logrotate(tmp_path, log, "copytruncate", "compress")
                    assert (log.parent / (log.name + ".1.gz")).exists()
                    _fail_at_commit(conn, 3)
                process.wait_for(lambda p: p.keys() == [1, 3], "the incident after the truncation")
        finally:
            stderr = process.stop()
        assert process.popen.returncode == ExitStatus.TERMINATED
        assert f"logdiag: warning: {log} was truncated; what was written to it after byte " in stderr
        assert f"if anything, was lost (no copy of it found in {log.parent})" in stderr
        assert "Traceback" not in stderr


@pytest.mark.postgres
def test_follow_a_file_through_logrotate_create(pg_cluster, tmp_path):
    """logrotate renames the file and creates an empty one; the server writes to the renamed
    file until it is told to reopen its log (pg_rotate_logfile(), as a postrotate script would):
    those lines are read too, then the new file (they were lost: logdiag moved to the new, empty
    file at once)."""
    _needs_logrotate()
    with pg_cluster(log_destination="stderr") as cluster:
        _tables(cluster)
        log = cluster.log_file("stderr")
        process = _Process("--follow", str(log))
        try:
            process.wait_for(_following(log), "logdiag following the file")
            with _connect(cluster) as conn, _connect(cluster, autocommit=True) as admin:
                _fail_at_commit(conn, 1)
                process.wait_for(lambda p: p.keys() == [1], "the incident before rotation")
                _logrotate(tmp_path, log, "create 0640 postgres postgres")
                assert log.stat().st_size == 0 and (log.parent / (log.name + ".1")).exists()
                time.sleep(1)  # logdiag looks at the file system meanwhile (every 0.2 s)
                _fail_at_commit(conn, 2)  # the server still writes the renamed file
                admin.execute("SELECT pg_rotate_logfile()")
                process.wait_for(lambda p: p.keys() == [1, 2], "the incident written to the renamed file")
                _fail_at_commit(conn, 3)  # into the new file
                process.wait_for(lambda p: p.keys() == [1, 2, 3], "the incident in the new file")
        finally:
            stderr = process.stop()
        assert process.popen.returncode == ExitStatus.TERMINATED
        assert stderr.count(f"logdiag: following {log}") == 2
        assert "warning" not in stderr and "Traceback" not in stderr


@pytest.mark.postgres
def test_follow_waits_for_a_log_directory_without_a_file(pg_cluster):
    """--follow of a log directory that has no log file yet waits for one, saying so (it exited
    with 2 at once); the server's first file there is read from its start."""
    with pg_cluster(log_destination="csvlog") as cluster:
        _tables(cluster)
        directory = cluster.base / "new-log-directory"  # where the server's account may write
        directory.mkdir()
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        process = _Process("--follow", str(directory))
        try:
            process.wait_for(
                lambda p: f"logdiag: {directory} holds no log file yet: waiting for one".encode() in p.errors,
                "the line saying logdiag waits",
            )
            assert process.popen.poll() is None
            with _connect(cluster, autocommit=True) as admin:
                admin.execute(f"ALTER SYSTEM SET log_directory = '{directory}'")
                admin.execute("SELECT pg_reload_conf()")
            with _connect(cluster) as conn:
                # The server moves to the new directory at its next message: this one.
                culprit = _fail_at_commit(conn, 7)
            process.wait_for(lambda p: p.keys() == [7], "the incident in the directory's first file")
        finally:
            stderr = process.stop()
        assert process.incidents[0]["culprits"][0]["statement"] == culprit
        assert Path(process.incidents[0]["raised_by"]["source"]["file"]).parent == directory
        assert process.popen.returncode == ExitStatus.TERMINATED and "Traceback" not in stderr


def _fionread(fd: int) -> int:
    """Bytes waiting in a pipe."""
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)


def _position(pid: int, path: Path) -> int | None:
    """Where process ``pid`` stands in ``path`` (its open file's offset), None: not open."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if Path(os.readlink(fd)) == path:
                return int((Path(f"/proc/{pid}/fdinfo") / fd.name).read_text().split()[1])
        except OSError:
            continue
    return None


@pytest.mark.postgres
def test_a_file_that_shrinks_while_it_is_read(pg_cluster, tmp_path):
    """A log truncated while analyze reads it: a warning naming the file, and the "incomplete
    read" exit code 3 (it was exit 0, a third of the incidents, no word)."""
    with pg_cluster(log_destination="csvlog") as cluster:
        _tables(cluster)
        with _connect(cluster) as conn:
            for n in range(300):
                _fail_at_commit(conn, n)
        cluster.stop()
        log = tmp_path / "postgresql.csv"
        shutil.copyfile(cluster.log_file("csvlog"), log)
    size = log.stat().st_size
    # logdiag's stdout is not read: it stops writing incidents when the pipe is full (64 KB, a
    # few dozen incidents), partway through the file; the file is cut there, and then logdiag
    # goes on.
    process = subprocess.Popen(
        [sys.executable, "-m", "logdiag", "analyze", "--format", "jsonl", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        deadline = time.monotonic() + PATIENCE
        while _fionread(process.stdout.fileno()) < 32768 or (_position(process.pid, log) or 0) == 0:
            assert process.poll() is None and time.monotonic() < deadline, "logdiag did not block on its output"
            time.sleep(0.05)
        with _paused(process):
            position = _position(process.pid, log)
            assert position is not None and 0 < position < size, (position, size)
            os.truncate(log, position)
        out, err = process.communicate(timeout=PATIENCE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    incidents = [json.loads(line) for line in out.splitlines()]
    assert 0 < len(incidents) < 300
    assert process.returncode == ExitStatus.INCOMPLETE, err.decode()
    assert f"logdiag: warning: {log}: the file shrank from {size} to {position} bytes while it was read".encode() in err
    assert b"Traceback" not in err


@contextmanager
def _paused(process: subprocess.Popen[bytes]) -> Iterator[None]:
    process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        process.send_signal(signal.SIGCONT)


@pytest.mark.postgres
def test_a_fifo_in_a_log_directory_is_a_reported_skip(server_logs, tmp_path):
    """A FIFO (or a character device) in a log directory is not read, and says so: skipped with
    its reason among the files that are not logs (it was left out silently); the log beside it
    is read, and the run does not wait for the FIFO's writer."""
    directory = tmp_path / "logs"
    directory.mkdir()
    shutil.copyfile(server_logs["csvlog"], directory / "postgresql.csv")

    def analyze() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "logdiag", "analyze", "--format", "jsonl", str(directory)],
            capture_output=True, text=True, check=False, timeout=PATIENCE,
        )

    alone = analyze()
    os.mkfifo(directory / "postgresql-1.csv")  # no writer: opening it would block
    result = analyze()
    assert result.returncode == 0, result.stderr
    keys = [json.loads(line)["key"] for line in result.stdout.splitlines()]
    assert {"customer_id": "42"} in keys  # the traffic's (tests/traffic.py)
    assert result.stdout == alone.stdout  # the FIFO takes nothing away
    assert (
        f"logdiag: warning: 1 file is not a PostgreSQL log, skipped: {directory / 'postgresql-1.csv'} "
        "(a FIFO: name it alone to read it as a stream)"
    ) in result.stderr
