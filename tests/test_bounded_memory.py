"""Memory stays bounded whatever the input (issue 27): a line longer than the limit is cut there,
counted and reported, and reading goes on."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logdiag.source.framing import cut_long_lines, cut_long_readlines
from logdiag.source.stats import LineCuts

LOGDIAG = [sys.executable, "-m", "logdiag"]
#: The statement the scenario logs: longer than the limit the tests set, shorter than the default.
LONG_TEXT_BYTES = 3 << 20
LIMIT = "1M"


def _expected_cut(data: bytes, limit: int) -> tuple[bytes, list[int]]:
    """What cutting lines at ``limit`` bytes must give, written the plain way: line by line."""
    if not data:
        return b"", []
    lines = data.split(b"\n")
    out, starts, offset = [], [], 0
    for number, line in enumerate(lines):
        last = number == len(lines) - 1
        if last and not line:
            break
        if len(line) > limit:
            starts.append(offset)
            out.append(line[:limit] + b"\n")
        else:
            out.append(line + (b"" if last else b"\n"))
        offset += len(line) + 1
    return b"".join(out), starts


@settings(max_examples=400, deadline=None)
@given(
    data=st.lists(st.sampled_from([b"\n", b"a", b"bc", b"x" * 17, b"\r\n"]), max_size=40).map(b"".join),
    limit=st.integers(1, 24),
    cut_points=st.lists(st.integers(0, 400), max_size=6),
)
def test_lines_are_cut_at_the_limit_however_the_bytes_come(data, limit, cut_points):
    """Both framers (pieces, buffered lines) cut exactly the lines longer than the limit."""
    expected = _expected_cut(data, limit)
    points = sorted({0, len(data), *(p for p in cut_points if p < len(data))})
    pieces = [data[a:b] for a, b in itertools.pairwise(points)]
    cuts = LineCuts(limit=limit)
    assert (b"".join(cut_long_lines(pieces, cuts)), sorted(cuts.starts)) == expected
    cuts = LineCuts(limit=limit)
    read = b"".join(cut_long_readlines(io.BufferedReader(io.BytesIO(data)), cuts))  # type: ignore[arg-type]
    assert (read, sorted(cuts.starts)) == expected


# --- a real server's log with a statement longer than the limit ------------------------------------

@pytest.fixture(scope="module")
def long_statement_logs(pg_cluster, tmp_path_factory):
    """A session logs a 3 MB statement; another then fails at COMMIT on a deferred foreign key."""
    from tests.conftest import copy_logs

    with pg_cluster() as cluster:
        with psycopg.connect(cluster.conninfo, autocommit=True, application_name="long") as conn:
            conn.execute(
                "CREATE TABLE bm_parent (id int PRIMARY KEY); CREATE TABLE bm_child (id int PRIMARY KEY,"
                " parent_id int REFERENCES bm_parent DEFERRABLE INITIALLY DEFERRED)"
            )
            conn.execute(f"SELECT length('{'x' * LONG_TEXT_BYTES}')")
        with psycopg.connect(cluster.conninfo, application_name="culprit",
                             cursor_factory=psycopg.ClientCursor) as conn:
            conn.execute("INSERT INTO bm_child VALUES (1, 4242)")
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.commit()
        cluster.stop()
        return copy_logs(cluster, tmp_path_factory.mktemp("long-statement"))


def _culprit_line(log: Path) -> int:
    """The physical line of the culprit's statement, found in the log the way a person would."""
    for number, line in enumerate(log.read_bytes().split(b"\n"), start=1):
        if b"INSERT INTO bm_child VALUES (1, 4242)" in line:
            return number
    raise AssertionError("the culprit is not in the log")


def _analyze(*args: str, stdin: bytes | None = None) -> tuple[int, dict, str]:
    done = subprocess.run([*LOGDIAG, "analyze", "--format", "json", *args], input=stdin, check=False,
                          capture_output=True, timeout=300)
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr
    return done.returncode, json.loads(done.stdout), stderr


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", ["stderr", "csvlog", "jsonlog"])
@pytest.mark.parametrize("how", ["file", "file-no-fast-path", "stdin", "gzip"])
def test_a_line_over_the_limit_is_cut_counted_and_the_rest_diagnosed(long_statement_logs, tmp_path, fmt, how):
    log = long_statement_logs[fmt]
    options = ["--max-line-bytes", LIMIT]
    if how == "stdin":
        status, report, stderr = _analyze("-", *options, stdin=log.read_bytes())
    else:
        path = log
        if how == "gzip":
            path = tmp_path / (log.name + ".gz")
            path.write_bytes(gzip.compress(log.read_bytes()))
        extra = ["--no-fast-path"] if how == "file-no-fast-path" else []
        status, report, stderr = _analyze(str(path), *options, *extra)
    assert status == 3
    assert report["inputs"][0]["cut_lines"] == 1
    assert "line longer than 1 MiB, cut there (--max-line-bytes): 1 line" in stderr
    [incident] = report["incidents"]
    assert (incident["sqlstate"], incident["key"]) == ("23503", {"parent_id": "4242"})
    assert incident["culprits"][0]["source"]["line"] == _culprit_line(log)


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", ["stderr", "csvlog", "jsonlog"])
def test_a_line_within_the_default_limit_is_read_whole(long_statement_logs, fmt):
    status, report, _ = _analyze(str(long_statement_logs[fmt]))
    assert status == 0
    assert report["inputs"][0]["cut_lines"] == 0
    assert report["incidents"][0]["key"] == {"parent_id": "4242"}


def _peak_rss_mb_of(command: list[str], feed=lambda stdin: stdin.close()) -> tuple[int, str, str, float]:
    """Run ``command`` with ``feed(stdin)`` writing its input: its exit status, stdout, stderr and
    peak memory (resident, MB), as the kernel counted it for that process."""
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    writer = threading.Thread(target=feed, args=(child.stdin,))
    writer.start()
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(child.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    stdout = child.stdout.read().decode()
    reader.join()
    writer.join()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, stdout, errors[0].decode(), usage.ru_maxrss / 1024


@pytest.mark.postgres
def test_an_endless_line_on_standard_input_keeps_memory_flat(long_statement_logs):
    """A real log followed by 400 MB without a newline (the old reader held it all: 1.5 GB per 100 MB)."""
    log = long_statement_logs["csvlog"].read_bytes()

    def feed(stdin) -> None:
        try:
            stdin.write(log)
            block = b"y" * (4 << 20)
            for _ in range(100):
                stdin.write(block)
        except BrokenPipeError:
            pass
        finally:
            stdin.close()

    status, _, stderr, peak_mb = _peak_rss_mb_of([*LOGDIAG, "analyze", "-", "--format", "jsonl"], feed)
    assert "Traceback" not in stderr and "MemoryError" not in stderr
    assert status == 3
    assert "line longer than 64 MiB, cut there (--max-line-bytes): 1 line" in stderr
    # About 12 times the line limit at most (0.8 GB measured); the old reader took 6 GB for this.
    assert peak_mb < 1500, f"peak memory {peak_mb:.0f} MB"


@pytest.mark.postgres
def test_a_100_mb_line_in_a_file_keeps_memory_flat(long_statement_logs, tmp_path):
    """A 100 MB line in the middle of a real log: every record around it read, memory bounded."""
    lines = long_statement_logs["stderr"].read_bytes().split(b"\n")
    path = tmp_path / "with-a-huge-line.log"
    with path.open("wb") as out:
        out.write(b"\n".join(lines[:3]) + b"\n")
        block = b"z" * (1 << 20)
        for _ in range(100):
            out.write(block)
        out.write(b"\n" + b"\n".join(lines[3:]))
    status, stdout, stderr, peak_mb = _peak_rss_mb_of([*LOGDIAG, "analyze", str(path), "--format", "json"])
    assert "Traceback" not in stderr
    assert status == 3
    report = json.loads(stdout)
    assert report["inputs"][0]["cut_lines"] == 1
    assert report["incidents"][0]["culprits"][0]["source"]["line"] == _culprit_line(path)
    assert peak_mb < 1500, f"peak memory {peak_mb:.0f} MB"  # the old reader: 1.1 GB per 100 MB line


def test_sizes_are_read_as_people_write_them():
    done = subprocess.run([*LOGDIAG, "analyze", "-", "--max-line-bytes", "lots"], input=b"", check=False,
                          capture_output=True, timeout=60)
    assert done.returncode == 2
    assert "'lots' is not a size such as 1048576," in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()
