"""Parquet export and summaries, on logs written by the real test cluster."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl
import psycopg
import pyarrow.dataset as ds
import pytest
from polars.testing import assert_frame_equal

import logdiag.export.parquet
import logdiag.fastpath.record_frames
from logdiag.export.parquet import export, key_text

pytestmark = pytest.mark.postgres


def _analyze_json(path: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "logdiag", "analyze", "--format", "json", str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout)


def _incidents(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "incidents.parquet" / "**" / "*.parquet", hive_partitioning=True)


class TestExportMatchesAnalyze:
    """What export writes is what analyze reports."""

    def test_incidents_one_to_one(self, scenario_logs, tmp_path):
        """Each incident of analyze --format json is one Parquet row: constraint, key, culprit line."""
        log = scenario_logs["csvlog"]
        export([str(log)], tmp_path / "out")
        rows = _incidents(tmp_path / "out").sort("line")
        report = _analyze_json(log)
        expected = [
            (i["constraint"], key_text(i["key"]), i["culprits"][0]["source"]["line"] if i["culprits"] else None)
            for i in report["incidents"]
        ]
        assert len(expected) > 25
        assert list(zip(rows["constraint_name"], rows["key_text"], rows["culprit_line"], strict=True)) == expected

    def test_records_and_errors(self, scenario_logs, tmp_path):
        """records.parquet holds every record, typed; errors.parquet every other error."""
        log = scenario_logs["jsonlog"]
        result = export([str(log)], tmp_path / "out", host="db1")
        records = pl.read_parquet(tmp_path / "out" / "records.parquet" / "*.parquet")
        assert records.height == result.rows["records"] == len(log.read_text().splitlines())
        assert records.schema["timestamp"] == pl.Datetime("us", "UTC")
        assert records.schema["pid"] == pl.Int64
        assert set(records["host"]) == {"db1"}
        errors = pl.read_parquet(tmp_path / "out" / "errors.parquet" / "*.parquet")
        assert errors.height == len(_analyze_json(log)["other_errors"]) >= 3
        assert {"42601", "22012", "42P01"} <= set(errors["sqlstate"])

    def test_every_record_of_a_big_log(self, scenario_logs, tmp_path, monkeypatch):
        """Logs big enough for analyze's pre-filter still export every record, not only failing sessions."""
        import logdiag.fastpath.scan

        monkeypatch.setattr(logdiag.fastpath, "FAST_PATH_MIN_BYTES", 0)
        log = scenario_logs["jsonlog"]
        result = export([str(log)], tmp_path / "out")
        assert result.rows["records"] == len(log.read_text().splitlines())

    def test_other_engines_read_it(self, scenario_logs, tmp_path):
        """pyarrow and DuckDB read the partitioned export, partitions included."""
        export([str(scenario_logs["csvlog"])], tmp_path / "out", partition_by="day")
        glob = str(tmp_path / "out" / "incidents.parquet" / "**" / "*.parquet")
        table = ds.dataset(tmp_path / "out" / "incidents.parquet", format="parquet", partitioning="hive").to_table()
        count = duckdb.sql(f"SELECT count(*), count(DISTINCT date) FROM read_parquet('{glob}', hive_partitioning = true)").fetchall()[0]
        assert table.num_rows == count[0] == _incidents(tmp_path / "out").height
        assert count[1] >= 1


class TestIncremental:
    """Exporting the same logs again processes only what is new, and never duplicates a row."""

    def test_append_then_export_again(self, scenario_logs, tmp_path):
        """Half a log, then the rest appended: the two exports together equal one export of the whole."""
        full = scenario_logs["jsonlog"].read_bytes().splitlines(keepends=True)
        log = tmp_path / "postgresql.json"
        log.write_bytes(b"".join(full[: len(full) // 2]))
        first = export([str(log)], tmp_path / "out")
        with log.open("ab") as handle:
            handle.write(b"".join(full[len(full) // 2 :]))
        second = export([str(log)], tmp_path / "out")
        third = export([str(log)], tmp_path / "out")
        assert first.rows["records"] == len(full) // 2
        assert second.rows["records"] == len(full) - len(full) // 2
        assert third.files_skipped == [str(log)] and third.rows["records"] == 0
        records = pl.read_parquet(tmp_path / "out" / "records.parquet" / "*.parquet")
        assert records.height == len(full) and records["line"].n_unique() == len(full)
        whole = tmp_path / "whole.json"
        shutil.copyfile(scenario_logs["jsonlog"], whole)
        export([str(whole)], tmp_path / "once")
        assert sorted(_incidents(tmp_path / "out")["key_text"]) == sorted(_incidents(tmp_path / "once")["key_text"])
        assert _incidents(tmp_path / "out")["incident_id"].n_unique() == _incidents(tmp_path / "out").height


def _table(out: Path, name: str) -> pl.DataFrame:
    frame = pl.read_parquet(out / f"{name}.parquet" / "**" / "*.parquet", hive_partitioning=True)
    return frame.sort("file", "line")


def _exports_agree(paths: list[str], tmp_path: Path, **options) -> None:
    """Export with records read by polars, then with every record through the analysis: the
    same tables, row for row."""
    fast = export(paths, tmp_path / "fast", **options)
    every = export(paths, tmp_path / "every", fast=False, **options)
    assert fast.rows == every.rows
    assert fast.rows["records"] > 0
    for table in ("records", "incidents", "errors"):
        assert_frame_equal(_table(tmp_path / "fast", table), _table(tmp_path / "every", table))


class TestRecordsReadByPolars:
    """records.parquet of csvlog, jsonlog and stderr files is read by polars: the same rows as
    the readers'."""

    @pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
    def test_same_rows_as_every_record(self, scenario_logs, tmp_path, monkeypatch, read_record_by_record, fmt):
        """Every scenario's records, in blocks of 2 kB (1 kB for stderr) so that records cross them."""
        from tests.scenarios import RICH_PREFIX

        monkeypatch.setattr(logdiag.fastpath.record_frames, "BLOCK_BYTES", 2048)
        log = str(scenario_logs[fmt])
        _exports_agree([log], tmp_path, host="db1", partition_by="day", batch_rows=500, log_line_prefix=RICH_PREFIX)
        assert read_record_by_record == []

    @pytest.mark.parametrize("prefix", [
        "%t [%p] %q%r %u@%d %a ",
        "%n [%p-%l] %q%h %-12u%12d %i %b ",
        "%m [%p] %q%u@%d %c %v %x %e %Q ",
        "",
    ])
    def test_stderr_prefixes(self, pg_cluster, tmp_path, monkeypatch, read_record_by_record, prefix):
        """stderr under other prefixes (no session id, a TCP client, padded names, epoch times,
        none at all) and terse and verbose errors: a statement over several lines, a syntax error
        (stderr appends its cursor position), a deferred foreign key failing at COMMIT with its
        DETAIL, a NOTICE with HINT and CONTEXT, a constraint trigger's 40002."""
        monkeypatch.setattr(logdiag.fastpath.record_frames, "BLOCK_BYTES", 2048)
        with socket.socket() as probe:  # a free TCP port: the client address is part of some prefixes
            probe.bind(("127.0.0.1", 0))
            port = str(probe.getsockname()[1])
        settings = {"log_line_prefix": prefix, "compute_query_id": "on", "listen_addresses": "'127.0.0.1'",
                    "log_min_messages": "notice"}
        with pg_cluster(port=port, **settings) as cluster:
            tcp = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
            for verbosity in ("default", "verbose"):
                with psycopg.connect(tcp, autocommit=True, application_name=f"app {verbosity}") as conn:
                    conn.execute(f"SET log_error_verbosity = {verbosity}")
                    conn.execute(f"CREATE TABLE p_{verbosity} (id int PRIMARY KEY);\n"
                                 f"CREATE TABLE c_{verbosity} (\n  id int,\n  p int REFERENCES p_{verbosity}\n"
                                 "    DEFERRABLE INITIALLY DEFERRED)")
                    with pytest.raises(psycopg.errors.SyntaxError):
                        conn.execute("SELEC 1")
                    conn.execute("DO $$ BEGIN RAISE NOTICE 'look' USING HINT = 'twice',\n"
                                 "  DETAIL = 'on two\nlines'; END $$")
                    with pytest.raises(psycopg.errors.ForeignKeyViolation), conn.transaction():
                        conn.execute(f"INSERT INTO c_{verbosity} VALUES (1, 42)")
                    with pytest.raises(psycopg.errors.TransactionIntegrityConstraintViolation):
                        conn.execute("DO $$ BEGIN RAISE SQLSTATE '40002' USING MESSAGE = 'integrity'; END $$")
            cluster.stop()
            log = str(cluster.log_file("stderr"))
            text = Path(log).read_text()
            assert "NOTICE:  look" in text and "\tlines" in text and "\t  p int REFERENCES" in text
            assert "LOCATION:  " in text
            _exports_agree([log], tmp_path, log_line_prefix=prefix)
        assert read_record_by_record == []
        records = _table(tmp_path / "fast", "records")
        failed = records.filter(pl.col("message").str.contains("violates foreign key constraint"))
        assert failed["detail"].to_list() == ['Key (p)=(42) is not present in table "p_default".',
                                              'Key (p)=(42) is not present in table "p_verbose".']
        assert failed["statement"].to_list() == ["COMMIT"] * 2
        # A verbose message's SQLSTATE is taken off its text (the default's is known with %e).
        assert failed["sqlstate"].to_list() == ["23503" if "%e" in prefix else None, "23503"]
        raised = records.filter(pl.col("severity") == "ERROR", pl.col("message") == "integrity")
        assert raised["sqlstate"].to_list()[1:] == ["40002"]
        syntax = records.filter(pl.col("statement") == "SELEC 1")
        assert syntax["message"].to_list() == ['syntax error at or near "SELEC"'] * 2
        notices = records.filter(pl.col("severity") == "NOTICE", pl.col("message") == "look")
        assert notices["detail"].to_list() == ["on two\nlines"] * 2 and notices["hint"].to_list() == ["twice"] * 2
        if "%r" in prefix:
            assert records.filter(pl.col("user_name") == "postgres")["client"].str.starts_with("127.0.0.1:").all()

    def test_zones_with_and_without_daylight_saving(self, pg_cluster, tmp_path, read_record_by_record):
        """Timestamps in MSK (a zone with a history of offsets), CET (fixed) and -03 (numeric),
        switched while the server runs: the UTC times of the statements as they were run."""
        zones = ("Europe/Moscow", "Europe/Paris", "America/Sao_Paulo")
        started = datetime.now(timezone.utc)
        with pg_cluster(log_line_prefix="%m [%p] ", log_statement="all", log_timezone=zones[0]) as cluster:
            for zone in zones:
                cluster.psql(f"ALTER SYSTEM SET log_timezone = '{zone}'; SELECT pg_reload_conf();", check=True)
                time.sleep(0.5)  # the reload reaches the next connection
                cluster.psql(f"SELECT '{zone}' AS zone, {len(zone)} AS n; SELECT now();", check=True)
            cluster.stop()
            logs = [str(cluster.log_file("csvlog")), str(cluster.log_file("jsonlog"))]
            ended = datetime.now(timezone.utc)
            text = Path(logs[0]).read_text()
            assert all(name in text for name in (" MSK,", " CET,", " -03,"))
            _exports_agree(logs, tmp_path)
        assert read_record_by_record == []
        records = _table(tmp_path / "fast", "records")
        assert records["timestamp"].null_count() == 0
        assert started - timedelta(seconds=1) <= records["timestamp"].min()
        assert records["timestamp"].max() <= ended + timedelta(seconds=1)
        for zone in zones:
            assert records.filter(pl.col("message").str.contains(f"'{zone}' AS zone")).height == 2

    @pytest.mark.parametrize(("odd", "record_by_record"), [("\r\n", ("csvlog", "stderr")), ("\x1f", ("stderr",))])
    def test_a_file_polars_cannot_read_exactly_is_read_record_by_record(
        self, pg_cluster, tmp_path, monkeypatch, read_record_by_record, odd, record_by_record,
    ):
        """A statement sent with CRLF line ends puts a carriage return in csvlog and stderr
        (jsonlog escapes it); an information separator, which Python's regular expressions take
        for white space and polars' do not, goes into stderr as it is. Such a file is read again
        record by record, and what polars wrote of it before is gone."""
        monkeypatch.setattr(logdiag.fastpath.record_frames, "BLOCK_BYTES", 2048)
        with pg_cluster(log_line_prefix="%m [%p] ", log_statement="all") as cluster:
            with psycopg.connect(cluster.conninfo, autocommit=True) as conn:
                for n in range(40):
                    conn.execute(f"SELECT {n} AS before_it")
                conn.execute(f"SELECT 1 AS a, 'one{odd}two' AS b")
                for n in range(40):
                    conn.execute(f"SELECT {n} AS after_it")
            cluster.stop()
            logs = {fmt: str(cluster.log_file(fmt)) for fmt in ("csvlog", "jsonlog", "stderr")}
            assert odd.encode() in Path(logs["stderr"]).read_bytes()
            # Small batches: polars' rows of the file were written; big ones: they were waiting.
            for batch_rows in (7, 1000):
                _exports_agree(list(logs.values()), tmp_path / str(batch_rows), batch_rows=batch_rows,
                               log_line_prefix="%m [%p] ")
        assert read_record_by_record == [logs[fmt] for fmt in record_by_record] * 2
        records = _table(tmp_path / "7" / "fast", "records")
        for path in logs.values():
            statements = records.filter(pl.col("file") == path)["message"]
            assert statements.str.contains("AS before_it").sum() == statements.str.contains("AS after_it").sum() == 40
            assert statements.str.contains("1 AS a,").sum() == 1

    def test_a_stderr_detail_after_another_process_line(self, scenario_logs, tmp_path, read_record_by_record):
        """A tool that merges lines (a log shipper, syslog) can put another process's line between
        a message and its DETAIL: the readers still join them by process, so that file is read
        record by record. The scenario's stderr log with one such line moved in."""
        from tests.scenarios import RICH_PREFIX

        lines = scenario_logs["stderr"].read_bytes().splitlines(keepends=True)
        error = next(i for i, line in enumerate(lines) if b" ERROR:  " in line and b" DETAIL:  " in lines[i + 1])
        pid = re.search(rb" \[\d+\] ", lines[error])[0]
        other = next(i for i in range(error + 2, len(lines) - 1) if b" LOG:  " in lines[i]
                     and pid not in lines[i] and lines[i + 1].startswith(b"20"))
        lines.insert(error + 1, lines.pop(other))
        log = tmp_path / "merged.log"
        log.write_bytes(b"".join(lines))
        _exports_agree([str(log)], tmp_path, log_line_prefix=RICH_PREFIX)
        assert read_record_by_record == [str(log)]
        records = _table(tmp_path / "fast", "records")
        assert records.filter(pl.col("line") == error + 1)["detail"].to_list() == [
            lines[error + 2].split(b" DETAIL:  ", 1)[1].decode().rstrip("\n")
        ]


@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
def test_a_log_written_to_during_the_export(scenario_logs, tmp_path, monkeypatch, read_record_by_record, fmt):
    """Lines the server writes after the analysis read the file wait for the next export: the
    two exports hold each record once, as one export of the whole log does."""
    from tests.scenarios import RICH_PREFIX

    whole = scenario_logs[fmt].read_bytes()
    cut = _record_boundary(whole, fmt)
    log = tmp_path / scenario_logs[fmt].name
    log.write_bytes(whole[:cut])
    export_records = logdiag.export.parquet._export_records

    def written_to_meanwhile(stats, *args):
        with log.open("ab") as handle:
            handle.write(whole[cut:])
        monkeypatch.setattr(logdiag.export.parquet, "_export_records", export_records)
        export_records(stats, *args)

    monkeypatch.setattr(logdiag.export.parquet, "_export_records", written_to_meanwhile)
    first = export([str(log)], tmp_path / "out", log_line_prefix=RICH_PREFIX)
    second = export([str(log)], tmp_path / "out", log_line_prefix=RICH_PREFIX)
    assert first.rows["records"] == first.run.inputs[0].records
    assert second.rows["records"] > 0
    assert read_record_by_record == []
    export([str(scenario_logs[fmt])], tmp_path / "once", fast=False, log_line_prefix=RICH_PREFIX)
    assert_frame_equal(_table(tmp_path / "out", "records").drop("file"), _table(tmp_path / "once", "records").drop("file"))


def _record_boundary(log: bytes, fmt: str) -> int:
    """The offset of a line near the middle of a log that starts a record: a csvlog line outside
    quotes, a jsonlog line, a stderr LOG line (not a DETAIL or STATEMENT line of the one before)."""
    offset = len(log) // 2
    while True:
        offset = log.index(b"\n", offset) + 1
        line = log[offset:log.index(b"\n", offset)]
        starts = {
            "jsonlog": line.startswith(b'{"'),
            "csvlog": line.startswith(b"20") and log.count(b'"', 0, offset) % 2 == 0,
            "stderr": line.startswith(b"20") and b" LOG:  " in line,
        }
        if starts[fmt]:
            return offset


def test_summary_cli_formats(scenario_logs, tmp_path):
    """logdiag summary prints text, json and markdown from an export directory."""
    export([str(scenario_logs["csvlog"])], tmp_path / "out")
    for fmt, marker in (("text", "Incidents by constraint"), ("json", '"by_constraint"'), ("markdown", "## By table")):
        result = subprocess.run(
            [sys.executable, "-m", "logdiag", "summary", str(tmp_path / "out"), "--format", fmt],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stderr
        assert marker in result.stdout


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", ["csvlog", "stderr"])
def test_export_of_a_fifo_reads_it_once(scenario_logs, tmp_path, fmt):
    """A FIFO is exported like standard input: read once, every record kept as it passes (it used
    to be opened a second time for its records, which waits for a writer forever: issue 27), and
    not remembered in the state file as a file already exported."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", 'cat "$1" > "$2"', "sh", str(scenario_logs[fmt]), str(fifo)])
    try:
        result = subprocess.run(
            [sys.executable, "-m", "logdiag", "export", str(fifo), "-o", str(tmp_path / "out")],
            capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        writer.kill()
        writer.wait()
    assert result.returncode == 0, result.stderr
    expected = export([str(scenario_logs[fmt])], tmp_path / "file")
    assert _table(tmp_path / "out", "records").height == expected.rows["records"]
    assert sorted(_incidents(tmp_path / "out")["key_text"]) == sorted(_incidents(tmp_path / "file")["key_text"])
    state = json.loads((tmp_path / "out" / "_logdiag_export.json").read_text())
    assert not any(key.endswith(str(fifo)) for key in state["files"])
