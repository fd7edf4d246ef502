"""Parquet export and summaries, on logs written by the real test cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import psycopg
import pyarrow.dataset as ds
import pytest

from logdiag.export import export, key_text
from logdiag.summary import summarize

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
        assert list(zip(rows["constraint"], rows["key_text"], rows["culprit_line"], strict=True)) == expected

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
        import logdiag.scan

        monkeypatch.setattr(logdiag.scan, "FAST_PATH_MIN_BYTES", 0)
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


def _fk_failures(cluster, table: str, keys: list[int], application: str) -> None:
    for key in keys:
        with psycopg.connect(cluster.conninfo, application_name=application, cursor_factory=psycopg.ClientCursor) as conn:
            conn.execute(f"INSERT INTO {table}_child VALUES ({key}, {key})")
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.commit()


def _unique_failure(cluster, application: str) -> None:
    with psycopg.connect(cluster.conninfo, application_name=application, cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute("INSERT INTO accounts VALUES (1, 'a@example.com')")
        conn.execute("INSERT INTO accounts VALUES (2, 'a@example.com')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.commit()


SCHEMA = (
    "CREATE TABLE orders_parent (id int PRIMARY KEY);"
    "CREATE TABLE orders_child (id int, parent_id int REFERENCES orders_parent DEFERRABLE INITIALLY DEFERRED);"
    "CREATE TABLE accounts (id int, email text UNIQUE DEFERRABLE INITIALLY DEFERRED);"
)


def test_summary_across_days_and_hosts(pg_cluster, tmp_path):
    """Two servers on two days (their clocks set with libfaketime): summary gives the counts played."""
    out = tmp_path / "exports"
    plays = {
        ("east", "2026-03-01 10:00:00"): lambda c: _fk_failures(c, "orders", [42, 43], "billing"),
        ("west", "2026-03-02 16:00:00"): lambda c: (_fk_failures(c, "orders", [44], "billing"), _unique_failure(c, "signup")),
    }
    for (host, day), play in plays.items():
        with pg_cluster(fake_time=day, log_line_prefix="%m [%p] ") as cluster:
            cluster.psql(SCHEMA, check=True)
            play(cluster)
            cluster.stop()
            export([str(cluster.log_file("csvlog"))], out, host=host, partition_by="day")
    summary = summarize(out).to_dict()
    assert summary["incidents"] == 4
    assert {(r["constraint"], r["incidents"]) for r in summary["by_constraint"]} == {
        ("orders_child_parent_id_fkey", 3), ("accounts_email_key", 1),
    }
    assert {(r["host"], r["incidents"]) for r in summary["by_host"]} == {("east", 2), ("west", 2)}
    assert {(r["application"], r["incidents"]) for r in summary["by_client"]} == {("billing", 3), ("signup", 1)}
    assert [(r["hour"][:13], r["incidents"]) for r in summary["by_hour"]] == [("2026-03-01T10", 2), ("2026-03-02T16", 2)]
    shapes = {r["example"].split(" VALUES")[0]: r["incidents"] for r in summary["culprit_shapes"]}
    assert shapes["INSERT INTO orders_child"] == 3  # the same shape with different keys
    days = sorted(p.name for p in (out / "incidents.parquet").iterdir())
    assert days == ["date=2026-03-01", "date=2026-03-02"]


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
