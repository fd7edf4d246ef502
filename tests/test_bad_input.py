"""Damaged and unusual input: no traceback, a counted skip or a clear error, and every good record."""

from __future__ import annotations

import contextlib
import gzip
import io
import sys
import types
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logdiag.errors import LogdiagError
from logdiag.reader import LogReader

FORMATS = ["stderr", "csvlog", "jsonlog"]


def _read(path: Path):
    reader = LogReader([str(path)])
    return [(r.severity, r.message, r.detail, r.statement) for r in reader], reader.inputs[0]


def _record_starts(path: Path) -> list[int]:
    return [r.source.line for r in LogReader([str(path)])]


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", FORMATS)
class TestDamagedServerLogs:
    """A real log, damaged the way logs get damaged."""

    def test_garbage_lines_are_counted_and_skipped(self, server_logs, tmp_path, fmt):
        """Lines from elsewhere between records: each one counted, every record still read."""
        clean = server_logs[fmt]
        lines = clean.read_bytes().split(b"\n")
        starts = set(_record_starts(clean)[1::5])
        garbage = [b"garbage line \x01 with \"an odd quote", b"}{ not json", b"\xff\xfe binary \x80"]
        damaged, inserted = [], 0
        for number, line in enumerate(lines, start=1):
            if number in starts:
                damaged.append(garbage[inserted % len(garbage)])
                inserted += 1
            damaged.append(line)
        path = tmp_path / clean.name
        path.write_bytes(b"\n".join(damaged))
        records, stats = _read(path)
        assert records == _read(clean)[0]
        assert stats.skipped_total == inserted > 0

    def test_truncated_last_record(self, server_logs, tmp_path, fmt):
        """A log cut in the middle of its last record: every earlier record comes out."""
        clean = server_logs[fmt]
        data = clean.read_bytes()
        last_start = _record_starts(clean)[-1]
        lines = data.split(b"\n")
        offset = sum(len(line) + 1 for line in lines[: last_start - 1])
        path = tmp_path / clean.name
        path.write_bytes(data[: offset + len(lines[last_start - 1]) * 2 // 3])
        records, stats = _read(path)
        expected = _read(clean)[0]
        assert records[: len(expected) - 1] == expected[:-1]
        # csvlog and jsonlog can tell the record is cut short; a stderr line cannot.
        assert len(records) == len(expected) - (fmt != "stderr")
        assert stats.skipped_total == (fmt != "stderr")

    @pytest.mark.parametrize("how", ["file", "gzip", "stdin"])
    def test_a_log_after_many_blank_lines_is_read(self, server_logs, tmp_path, monkeypatch, fmt, how):
        """300 blank lines (more than the sample detection looks at) before a real log: every
        record read, the blank lines counted (the log was reported empty, exit 0: issue 27)."""
        def read(data: bytes, name: str):
            """Read as the fast path does (standard input and .gz through the pre-filter)."""
            path = tmp_path / (name + (".gz" if how == "gzip" else ""))
            path.write_bytes(gzip.compress(data) if how == "gzip" else data)
            if how == "stdin":
                monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BufferedReader(io.BytesIO(data))))
            reader = LogReader(["-" if how == "stdin" else str(path)], fast=True, fast_min_bytes=0)
            return [(r.severity, r.message, r.detail, r.statement) for r in reader], reader.inputs[0]

        clean = server_logs[fmt].read_bytes()
        expected, _ = read(clean, "clean")
        records, stats = read(b"\n" * 300 + clean, "blank-first")
        assert len(expected) > 10
        assert records == expected
        assert (stats.blank, stats.skipped_total) == (300, 0)

    def test_nul_bytes(self, server_logs, tmp_path, fmt):
        """A run of NUL bytes (what a crash can leave in a file) is skipped, counted."""
        clean = server_logs[fmt]
        lines = clean.read_bytes().split(b"\n")
        middle = _record_starts(clean)[len(lines) // 3] - 1
        path = tmp_path / clean.name
        path.write_bytes(b"\n".join([*lines[:middle], b"\x00" * 4096, *lines[middle:]]))
        records, stats = _read(path)
        assert records == _read(clean)[0]
        assert stats.skipped == {"NUL bytes": 1}

    def test_crlf(self, server_logs, tmp_path, fmt):
        """The same log with Windows line endings gives the same records."""
        clean = server_logs[fmt]
        path = tmp_path / clean.name
        path.write_bytes(clean.read_bytes().replace(b"\n", b"\r\n"))
        records, stats = _read(path)
        assert records == _read(clean)[0]
        assert stats.skipped_total == 0

    def test_truncated_gzip(self, server_logs, tmp_path, fmt):
        """A .gz cut short: the records before the cut come out and the reader says it stopped early."""
        clean = server_logs[fmt]
        packed = gzip.compress(clean.read_bytes())
        path = tmp_path / (clean.name + ".gz")
        path.write_bytes(packed[: len(packed) * 2 // 3])
        records, stats = _read(path)
        expected = _read(clean)[0]
        assert 0 < len(records) < len(expected)
        assert records[:-1] == expected[: len(records) - 1]
        assert stats.error is not None and "ends early" in stats.error


@pytest.mark.postgres
@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_hostile_json_lines_are_counted_skips(server_logs, tmp_path, monkeypatch, stdin):
    """A JSON line nested 100,000 deep (Python's parser gives up with RecursionError) and a
    line_num of 1e999999 (an infinite float) between a real jsonlog's records: the first is a
    counted skip, the second a record without a line number, and every real record is read, from
    a file as from a pipe (a file used to end there, exit 70: issue 27, case 8)."""
    clean = server_logs["jsonlog"]
    lines = clean.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    hostile = [b"[" * 100_000 + b"]" * 100_000 + b"\n", b'{"line_num":1e999999,"error_severity":"LOG","message":"m"}\n']
    path = tmp_path / clean.name
    path.write_bytes(b"".join(lines[:middle] + hostile + lines[middle:]))
    if stdin:
        monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(path.read_bytes())))
    reader = LogReader(["-" if stdin else str(path)])
    records = [(r.severity, r.message, r.detail, r.statement) for r in reader]
    expected, _ = _read(clean)
    assert [r for r in records if r[1] != "m"] == expected
    assert ("LOG", "m", None, None) in records
    stats = reader.inputs[0]
    assert stats.skipped_total == 1 and stats.records == len(expected) + 1


@pytest.mark.postgres
class TestServerWrittenOddities:
    """Unusual content that a real server writes."""

    def test_latin1_database(self, pg_cluster):
        """A LATIN1 database logs its statements in LATIN1: read them, counted, without loss."""
        with pg_cluster(log_line_prefix="%m [%p] %q%u@%d ") as cluster:
            cluster.psql("CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C';")
            conninfo = cluster.conninfo.replace("dbname=postgres", "dbname=latin")
            with psycopg.connect(conninfo, client_encoding="LATIN1", autocommit=True) as conn:
                conn.execute("SELECT 'café crème' AS drink")
                conn.execute("SELECT 'after'")
            cluster.stop()
            for fmt in FORMATS:
                reader = LogReader([str(cluster.log_file(fmt))])
                messages = [r.message for r in reader]
                assert "statement: SELECT 'café crème' AS drink" in messages, fmt
                assert "statement: SELECT 'after'" in messages
                assert reader.inputs[0].skipped_total == 0

    def test_ten_megabyte_statement(self, pg_cluster):
        """A 10 MB statement (and the same text as an ERROR's STATEMENT) is read whole."""
        big = "x" * (10 * 1024 * 1024)
        with pg_cluster(log_line_prefix="%m [%p] %q%u@%d app=%a ") as cluster:
            with psycopg.connect(cluster.conninfo, autocommit=True) as conn:
                with contextlib.suppress(psycopg.errors.InvalidTextRepresentation):
                    conn.execute(f"SELECT '{big}'::int")
                conn.execute("SELECT 'after'")
            cluster.stop()
            for fmt in FORMATS:
                prefix = "%m [%p] %q%u@%d app=%a " if fmt == "stderr" else None
                records = list(LogReader([str(cluster.log_file(fmt))], log_line_prefix=prefix))
                error = next(r for r in records if r.severity == "ERROR")
                assert error.statement == f"SELECT '{big}'::int", fmt
                assert records[-1].message is not None
                assert any(r.message == "statement: SELECT 'after'" for r in records)


@pytest.mark.postgres
def test_a_csvlog_with_a_column_more_is_the_same_error_from_a_file_and_a_pipe(server_logs, monkeypatch, tmp_path):
    """Every row of a real csvlog with a column PostgreSQL does not write: one error naming the
    layout, from a file and from standard input alike (the pipe's pre-filter read it as 38
    records, no skip, no incident, exit 0; the file as 38 skipped lines, issue 27)."""
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(server_logs["csvlog"].read_text(), newline="")):
        writer.writerow([*row, "extra"])
    data = out.getvalue().encode()
    path = tmp_path / "extra.csv"
    path.write_bytes(data)
    errors = []
    for source in (str(path), "-"):
        monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BufferedReader(io.BytesIO(data))))
        with pytest.raises(LogdiagError) as raised:
            list(LogReader([source], fast=True))
        errors.append(str(raised.value).split(": ", 1)[1])
    assert errors[0] == errors[1]
    assert errors[0].startswith("csv whose records have 27 columns, a layout no PostgreSQL csvlog has")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise_anything_else(tmp_path_factory, data):
    """Whatever the bytes, reading raises nothing but a LogdiagError."""
    path = tmp_path_factory.mktemp("fuzz") / "input.log"
    path.write_bytes(data)
    with contextlib.suppress(LogdiagError):
        list(LogReader([str(path)]))


@pytest.mark.postgres
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mangled_server_log_never_raises(server_logs, tmp_path_factory, data):
    """Bytes of a real log flipped, cut or repeated: still nothing but LogdiagError."""
    fmt = data.draw(st.sampled_from(FORMATS))
    original = bytearray(server_logs[fmt].read_bytes())
    for _ in range(data.draw(st.integers(1, 20))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(original)))
    path = tmp_path_factory.mktemp("mangled") / server_logs[fmt].name
    path.write_bytes(bytes(original[:cut]))
    with contextlib.suppress(LogdiagError):
        list(LogReader([str(path)]))
