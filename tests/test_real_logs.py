"""Logs from public projects that no one here wrote (../shared/real-logs): read them all."""

from __future__ import annotations

import bz2
import gzip
import re
from pathlib import Path

import pytest

from logdiag.reader import LogReader
from tests.conftest import REAL_LOGS

FILES = sorted(p.name for p in REAL_LOGS.iterdir() if p.name != "README.md") if REAL_LOGS.is_dir() else []

#: Formats, from the shared README's table.
EXPECTED_FORMAT = {
    "anonymize.log": "csvlog",
    "weeknumber.log": "csvlog",
    "csv_statement_without_duration.log": "csvlog",
    "begin_end.log": "stderr",
    "light.postgres.log.bz2": "stderr",
    "multiline_param.log": "stderr",
    "postgresql_param_range.log": "stderr",
    "queryid.log.gz": "stderr",
    "stmt_type.log": "stderr",
    "tempfile_only.log.gz": "stderr",
    "pg_vacuums.log.gz": "stderr",
    "pg_vacuums.json.gz": "jsonlog",
    "pg-timezones.log": "stderr",
    "rds.log.bz2": "stderr",
    "pg-syslog.1.bz2": "syslog",
    "pg-syslog.2.gz": "syslog",
    "logplex.gz": "logplex",
    "cloudsql.log.gz": "cloudsql",
    "cnpg.log.gz": "cnpg",
    "pg_rawcsv.log": "stderr",
}


def _text_lines(path: Path) -> list[str]:
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return handle.read().splitlines()


def _lines_not_from_the_server(path: Path) -> int:
    """Lines of the file that PostgreSQL did not write, counted from the file itself."""
    lines = _text_lines(path)
    if path.name.startswith("pg-syslog"):
        return sum(1 for line in lines if not re.search(r" postgres\[\d+\]: ", line))
    if path.name == "pg_rawcsv.log":  # pg_ctl's own output mixed into the file
        return sum(1 for line in lines if line and not re.match(r"\d{4}-\d\d-\d\d ", line))
    if path.name == "cnpg.log.gz":  # the operator's messages, and one HINT the fixture lists before its LOG
        return sum(1 for line in lines if '"logger":"postgres"' not in line) + 1
    return 0


@pytest.mark.parametrize("name", FILES)
def test_real_log_is_read(real_logs: Path, name: str) -> None:
    """Detected format, no exception, every server line accounted for by a record."""
    reader = LogReader([str(real_logs / name)])
    records = list(reader)
    stats = reader.inputs[0]
    assert stats.format == EXPECTED_FORMAT[name]
    assert stats.error is None
    assert records, "no record read"
    assert stats.skipped_total == _lines_not_from_the_server(real_logs / name), stats.skipped
    assert stats.records == len(records)


@pytest.mark.parametrize("name", [n for n in FILES if EXPECTED_FORMAT[n] in ("csvlog", "jsonlog", "stderr")])
def test_real_log_records_read_by_polars(real_logs: Path, tmp_path: Path, read_record_by_record, name: str) -> None:
    """``logdiag export`` has polars read a csvlog's, jsonlog's or stderr log's records: the
    readers' values, row for row (every record through the analysis is the reference). A stderr
    log with carriage returns, blank lines or other programs' lines is read record by record."""
    import polars as pl
    from polars.testing import assert_frame_equal

    from logdiag.export.parquet import export

    path = real_logs / name
    for fast, out in ((True, "fast"), (False, "every")):
        export([str(path)], tmp_path / out, fast=fast)
    glob = "records.parquet/*.parquet"
    fast_rows, every_row = (pl.read_parquet(tmp_path / out / glob).sort("line") for out in ("fast", "every"))
    assert_frame_equal(fast_rows, every_row)
    if EXPECTED_FORMAT[name] != "stderr":
        assert fast_rows.height == len(_text_lines(path))  # one line each in these
    raw = "\n".join(_text_lines(path))
    messy = "\r" in _raw_text(path) or "\n\n" in raw or _lines_not_from_the_server(path)
    assert read_record_by_record == ([str(path)] if messy else [])


def _raw_text(path: Path) -> str:
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
        return handle.read()


def test_every_real_log_is_listed(real_logs: Path) -> None:
    """A new file in shared/real-logs must be given its expected format here."""
    assert set(FILES) == set(EXPECTED_FORMAT)


def test_rds_prefix_fields(real_logs: Path) -> None:
    """RDS's %t:%r:%u@%d:[%p]: yields the client with its port and the pid."""
    reader = LogReader([str(real_logs / "rds.log.bz2")])
    with_client = next(r for r in reader if r.client and r.user)
    assert re.fullmatch(r"[\d.]+:\d+|\[local\]", with_client.client)
    assert with_client.pid is not None and with_client.timestamp is not None


def test_syslog_multiline_message_is_one_record(real_logs: Path) -> None:
    """logplex's [19-1]...[19-10] pieces of the deadlock make one ERROR with a 3-line DETAIL."""
    records = list(LogReader([str(real_logs / "logplex.gz")]))
    deadlock = next(r for r in records if r.sqlstate == "40P01" and r.severity == "ERROR")
    assert deadlock.message == "deadlock detected"
    assert deadlock.detail is not None and deadlock.detail.count("\n") == 5
    assert deadlock.hint == "See server log for query details."
    assert deadlock.statement is not None and deadlock.statement.startswith("WITH redacted_table")


@pytest.mark.parametrize("name", FILES)
def test_pre_filters_change_nothing(real_logs: Path, name: str) -> None:
    """The file pre-filter (forced on however small the file) and, for compressed files, the
    look-back give the counts and errors that reading every record gives."""
    from logdiag.diagnosis.sessions import SessionTracker
    from logdiag.pipeline import Run

    def run(fast: bool):
        tracker = SessionTracker()
        reader = LogReader([str(real_logs / name)], fast=fast, fast_min_bytes=0, on_forgotten=tracker.forget)
        analysis = Run(reader, tracker)
        incidents = [i.to_dict() for i in analysis.incidents()]
        stats = analysis.inputs[0]
        # The other errors whole (session, DETAIL, HINT, CONTEXT, STATEMENT): errors.parquet has them.
        return incidents, [*analysis.other_errors], stats.records, dict(stats.skipped), stats.lines

    assert run(fast=True) == run(fast=False)
