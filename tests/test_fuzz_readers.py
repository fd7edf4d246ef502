"""Every format's reader, fed a real server's log mangled by hypothesis: records and counted skips,
never an exception (issue 27, "Every bad record is a counted skip").

The seeds are logs a real PostgreSQL server wrote (csvlog, jsonlog, stderr with three
``log_line_prefix`` settings, syslog as a real rsyslogd writes it). Hypothesis flips, inserts,
deletes and repeats bytes and lines, and puts in what breaks parsers: quotes, braces, deep
nesting, huge numbers, NUL bytes, CR, invalid UTF-8, cut lines. Each reader is chosen by its
format (no detection, which may rightly refuse a mangled file), csvlog, jsonlog and stderr's
also through the fast path (``fast_min_bytes=0``), and must:

- raise nothing, not even a :class:`~logdiag.errors.LogdiagError`;
- count every physical line it was given, and every record it gives;
- give each record the number of a line of the input, in order.

Examples are drawn the same way on every run (the suite's hypothesis profile is derandomized), a
bounded number per reader, so the whole module runs in well under a minute.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logdiag.errors import LogdiagError
from logdiag.formats.base import LogFormat
from logdiag.reader import LogReader
from tests.conftest import IN_CI, ClusterFactory
from tests.syslogd import IDENT_PREFIX, SyslogUnavailable, running_syslogd
from tests.traffic import run_driver_traffic, run_psql_traffic

#: Prefixes of the stderr seeds besides server_logs' Debian one: PostgreSQL's default, and a rich
#: one with the session id, line number, vxid, SQLSTATE and a padded application name.
STDERR_PREFIXES = ("%m [%p] ", "%t [%p]: [%l-1] %c %v %e user=%u,db=%d,app=%-12a,client=%h ")
#: Examples per reader; ``LOGDIAG_FUZZ_EXAMPLES=2000`` for a longer hunt.
EXAMPLES = int(os.environ.get("LOGDIAG_FUZZ_EXAMPLES", "40"))

#: Bytes that break parsers, put in by hypothesis among the log's own.
HOSTILE = (
    b'"', b'""', b",", b"{", b"}", b"[" * 2000, b'{"a":' * 500, b"\\", b'\\"', b"1e999999", b"-1e999999",
    b"9" * 5000, b"\x00", b"\x00" * 300, b"\r", b"\r\n", b"\t", b"\n", b"\n\n", b"\xff\xfe", b"\xc3",
    b"\xef\xbb\xbf", b"\x1b[2J", b" ERROR:  ", b"LOG:  ", b"DETAIL:  ", b"#012", b"[1-2] ", b"<134>1 ",
    b"2026-01-01 00:00:00.000 UTC [1] ", b"2026-01-01 00:00:00.000 UTC,", b'{"timestamp":"x"}',
    b'{"line_num":null,"message":[]}', b'{"error_severity":{"a":1}}',
)
#: What a value of the log's own (a run of digits: a pid, a line number, a port...) becomes.
VALUES = (
    b"1e999999", b"-1e999999", b"9" * 5000, b"-" + b"9" * 30, b"1.5", b"-0", b"null", b"true", b'"7"', b"[]",
    b"{}", "²".encode(), "٣".encode(),
    b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 2000 + b"1" + b"}" * 2000,
)


@st.composite
def mangled(draw: st.DrawFn, seed: bytes) -> bytes:
    """A real log changed in a few places: bytes changed, hostile pieces put in, ranges cut or
    repeated, lines swapped, the end cut off."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(("flip", "insert", "hostile", "line", "value", "cut", "repeat", "swap")))
        if action == "flip" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif action == "hostile":
            data[position:position] = draw(st.sampled_from(HOSTILE))
        elif action == "line":  # a whole line of its own, between two of the log's
            start = data.find(b"\n", position) + 1
            data[start:start] = draw(st.sampled_from(HOSTILE + VALUES)) + b"\n"
        elif action == "value" and (digits := _DIGITS.search(bytes(data), position)) is not None:
            data[digits.start() : digits.end()] = draw(st.sampled_from(VALUES))
        elif action == "cut":
            del data[position : position + draw(st.integers(1, 400))]
        elif action == "repeat":
            data[position:position] = data[position : position + draw(st.integers(1, 400))]
        elif action == "swap":
            lines = bytes(data).split(b"\n")
            first, second = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[first], lines[second] = lines[second], lines[first]
            data = bytearray(b"\n".join(lines))
    return bytes(data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data)


_DIGITS = re.compile(rb"[0-9]+")
#: A number that is a field of its own: csvlog's pid, line and xid, a JSON value, stderr's [%p].
_FIELD_NUMBER = re.compile(rb"(?<=[,:\[])[0-9]+(?=[,\]}])")


def _physical_lines(data: bytes) -> int:
    """Lines as a reader counts them: a last line without its newline is one too."""
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def _read_mangled(
    directory: Path, name: str, data: bytes, fmt: LogFormat | None, prefix: str | None, fast: bool
) -> None:
    path = directory / name
    path.write_bytes(data)
    reader = LogReader([str(path)], format=fmt, log_line_prefix=prefix, fast=fast, fast_min_bytes=0)
    if fmt is None:  # detection may rightly say a mangled file is no log, in a LogdiagError
        with contextlib.suppress(LogdiagError):
            list(reader)
        return
    records = list(reader)  # anything raised here fails the test
    (stats,) = reader.inputs
    # The fast path gives the records a diagnosis needs, of those its scan counted.
    assert len(records) <= stats.records if fast else stats.records == len(records)
    assert stats.lines == _physical_lines(data)
    lines = [record.source.line for record in records]
    assert lines == sorted(lines)
    assert all(1 <= line <= stats.lines for line in lines)
    assert stats.skipped_total <= stats.lines


def _fuzz(
    seed_path: Path, fmt: LogFormat | None, prefix: str | None, fast: bool = False, examples: int = EXAMPLES
) -> None:
    seed = seed_path.read_bytes()
    directory = Path(tempfile.mkdtemp(prefix="logdiag-fuzz-"))
    every_number = [_FIELD_NUMBER.sub(value.replace(b"\\", b"\\\\"), seed) for value in VALUES]

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=mangled(seed))
    def read(data: bytes) -> None:
        _read_mangled(directory, seed_path.name, data, fmt, prefix, fast)

    try:
        _read_mangled(directory, seed_path.name, seed, fmt, prefix, fast)  # the seed itself reads cleanly
        for data in every_number:  # each hostile value in place of every number, once
            _read_mangled(directory, seed_path.name, data, fmt, prefix, fast)
        read()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def stderr_seeds(pg_cluster: ClusterFactory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """stderr logs of the same traffic under each of :data:`STDERR_PREFIXES`."""
    out = tmp_path_factory.mktemp("fuzz-stderr")
    seeds = {}
    for number, prefix in enumerate(STDERR_PREFIXES):
        with pg_cluster(log_line_prefix=prefix) as cluster:
            run_psql_traffic(cluster)
            run_driver_traffic(cluster)
            cluster.stop()
            seeds[prefix] = out / f"stderr{number}.log"
            shutil.copyfile(cluster.log_file("stderr"), seeds[prefix])
    return seeds


@pytest.fixture(scope="module")
def syslog_seed(pg_cluster: ClusterFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The same traffic through syslog, as rsyslogd's RFC 3339 file format writes it."""
    directory = Path(tempfile.mkdtemp(prefix="logdiag-fuzz-syslog-"))
    ident = f"{IDENT_PREFIX}_fuzz"
    try:
        try:
            daemon = running_syslogd(directory)
            syslogd = daemon.__enter__()
        except SyslogUnavailable as exc:
            if IN_CI:  # in CI a test that needs rsyslog must fail, never skip
                pytest.fail(f"rsyslog is required in CI: {exc}", pytrace=False)
            pytest.skip(f"rsyslog not available: {exc}")
        try:
            settings = {
                "log_destination": "syslog", "syslog_facility": "LOCAL0", "syslog_ident": ident,
                "log_line_prefix": "%m [%p] %q%u@%d ",
            }
            with pg_cluster(**settings) as cluster:
                run_psql_traffic(cluster)
                with contextlib.suppress(psycopg.Error):
                    run_driver_traffic(cluster)
                cluster.stop()
        finally:
            daemon.__exit__(None, None, None)
        seed = tmp_path_factory.mktemp("fuzz-syslog") / "syslog.log"
        shutil.copyfile(syslogd.file(ident, "rfc3339"), seed)
        yield seed
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.postgres
@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast-path"])
@pytest.mark.parametrize("fmt", [LogFormat.CSVLOG, LogFormat.JSONLOG])
def test_fields_formats(server_logs: dict[str, Path], fmt: LogFormat, fast: bool) -> None:
    """csvlog and jsonlog, mangled, read record by record and through the fast path (which
    reads its ERROR lines itself): records and counted skips, never an exception."""
    _fuzz(server_logs[fmt.value], fmt, None, fast)


@pytest.mark.postgres
@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast-path"])
def test_stderr_debian_prefix(server_logs: dict[str, Path], fast: bool) -> None:
    """stderr with Debian's prefix, mangled, both ways: records and counted skips, never an exception."""
    _fuzz(server_logs["stderr"], LogFormat.STDERR, "%m [%p] %q%u@%d ", fast)


@pytest.mark.postgres
@pytest.mark.parametrize("prefix", STDERR_PREFIXES)
def test_stderr_other_prefixes(stderr_seeds: dict[str, Path], prefix: str) -> None:
    """stderr with PostgreSQL's default and a rich prefix, mangled: never an exception."""
    _fuzz(stderr_seeds[prefix], LogFormat.STDERR, prefix)


@pytest.mark.postgres
def test_syslog(syslog_seed: Path) -> None:
    """syslog as rsyslogd writes it, mangled: records and counted skips, never an exception."""
    _fuzz(syslog_seed, LogFormat.SYSLOG, "%m [%p] %q%u@%d ")


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
def test_detection(server_logs: dict[str, Path], fmt: str) -> None:
    """Each seed, mangled, with its format detected: records, counted skips or a LogdiagError
    saying it is no log, never another exception. (Working a prefix out takes longer: stderr
    gets a quarter of the examples.)"""
    _fuzz(server_logs[fmt], None, None, examples=EXAMPLES // 4 if fmt == "stderr" else EXAMPLES)
