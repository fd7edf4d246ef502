"""Parquet that queries cleanly (issue 29 §5): every column selectable unquoted, a schema version
in every part file, other errors with their session and context, a summary of all of it at the
width of a pipe, and the queries of docs/parquet.md run against a real export."""

from __future__ import annotations

import ast
import glob
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl
import psycopg
import pyarrow.parquet as pq
import pytest
from pglast.keywords import RESERVED_KEYWORDS

from logdiag.export.parquet import export
from logdiag.export.summary import summarize
from tests.conftest import REPO
from tests.scenarios import SCENARIOS

pytestmark = pytest.mark.postgres

TABLES = ("incidents", "findings", "records", "errors")
SCHEMA = (
    "CREATE TABLE orders_parent (id int PRIMARY KEY);"
    "CREATE TABLE orders_child (id int, parent_id int REFERENCES orders_parent DEFERRABLE INITIALLY DEFERRED);"
    "CREATE TABLE accounts (id int, email text UNIQUE DEFERRABLE INITIALLY DEFERRED);"
)
FK, UNIQUE = "orders_child_parent_id_fkey", "accounts_email_key"
DIVISION = "SELECT 1/0;"


def _fk_failures(cluster, keys: list[int], application: str) -> None:
    for key in keys:
        with psycopg.connect(cluster.conninfo, application_name=application, cursor_factory=psycopg.ClientCursor) as conn:
            conn.execute(f"INSERT INTO orders_child VALUES ({key}, {key})")
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.commit()


def _unique_failure(cluster, application: str) -> None:
    with psycopg.connect(cluster.conninfo, application_name=application, cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute("INSERT INTO accounts VALUES (1, 'a@example.com')")
        conn.execute("INSERT INTO accounts VALUES (2, 'a@example.com')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.commit()


#: Two servers on two days of this week (their clocks set with libfaketime), what each one played:
#: east, two days ago: foreign-key keys 42 and 43 from billing, and a division by zero from psql
#: (app "noise"); west, yesterday: key 44 from billing, and the same duplicate email twice from signup.
DAYS = {"east": 2, "west": 1}
HOURS = {"east": 10, "west": 16}


def _day(host: str) -> datetime:
    day = datetime.now(timezone.utc) - timedelta(days=DAYS[host])
    return day.replace(hour=HOURS[host], minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def fleet(pg_cluster, tmp_path_factory) -> Path:
    """An export directory named ``exports``, of two hosts' logs over two days, by day."""
    out = tmp_path_factory.mktemp("fleet") / "exports"
    plays = {
        "east": lambda c: (_fk_failures(c, [42, 43], "billing"), c.psql(DIVISION, application="noise")),
        "west": lambda c: (_fk_failures(c, [44], "billing"), _unique_failure(c, "signup"), _unique_failure(c, "signup")),
    }
    for host, play in plays.items():
        with pg_cluster(fake_time=_day(host).strftime("%Y-%m-%d %H:%M:%S"), log_line_prefix="%m [%p] ") as cluster:
            cluster.psql(SCHEMA, check=True)
            play(cluster)
            cluster.stop()
            export([str(cluster.log_file("csvlog"))], out, host=host, partition_by="day")
    return out


def _glob(root: Path, table: str) -> str:
    return str(root / f"{table}.parquet" / "**" / "*.parquet")


class TestCleanColumns:
    """Every column of every table queries unquoted."""

    def test_every_column_selects_unquoted_in_duckdb(self, scenario_logs, tmp_path):
        """``SELECT <column> FROM read_parquet(...)`` parses and runs in DuckDB for every column,
        the ``date`` partition included, and no column is a word PostgreSQL reserves (``user``
        is ``current_user`` there)."""
        out = tmp_path / "out"
        export([str(scenario_logs["jsonlog"])], out, host="db1", partition_by="day")
        seen = 0
        for table in TABLES:
            source = f"read_parquet('{_glob(out, table)}', hive_partitioning = true)"
            columns = [row[0] for row in duckdb.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()]
            assert "date" in columns, table
            for column in columns:
                assert column.lower() not in RESERVED_KEYWORDS, (table, column)
                duckdb.sql(f"SELECT {column} FROM {source} LIMIT 1").fetchall()
                seen += 1
        assert seen > 80

    def test_schema_version_in_every_part(self, scenario_logs, tmp_path):
        """Each part file says, in its key-value metadata, its table and the schema's version."""
        out = tmp_path / "out"
        export([str(scenario_logs["csvlog"])], out, partition_by="day")
        for table in TABLES:
            parts = glob.glob(_glob(out, table), recursive=True)
            assert parts, table
            for part in parts:
                metadata = pq.read_metadata(part).metadata
                assert metadata[b"logdiag.schema_version"] == b"2"
                assert metadata[b"logdiag.table"] == table.encode()


class TestOlderDatasets:
    """An export into a directory an older logdiag wrote into says so."""

    def test_an_export_next_to_version_1_parts_says_so(self, scenario_logs, tmp_path):
        """The state of an export of version 1 (no schema version recorded): one note naming both
        versions' columns; a directory of version 2 only: none."""
        import json

        out = tmp_path / "out"
        notes: list[str] = []
        export([str(scenario_logs["csvlog"])], out, notify=notes.append)
        assert notes == []
        state_file = out / "_logdiag_export.json"
        state = json.loads(state_file.read_text())
        for record in state["exports"].values():
            del record["schema_version"]
        state_file.write_text(json.dumps(state))
        export([str(scenario_logs["jsonlog"])], out, notify=notes.append)
        assert len(notes) == 1
        assert "schema version 1 (columns at, constraint, table, user)" in notes[0]
        assert "version 2 (logged_at, constraint_name, table_name, user_name)" in notes[0]


class TestOtherErrors:
    """errors.parquet carries what incidents carry: the session, the DETAIL, HINT, CONTEXT and STATEMENT."""

    @pytest.mark.parametrize("fmt", ["stderr", "jsonlog"])
    def test_session_and_context_of_other_errors(self, scenario_logs, tmp_path, fmt):
        """The scenarios' division by zero (psql, app "noise") and serialization failure (app rollbacks-b)."""
        out = tmp_path / "out"
        export([str(scenario_logs[fmt])], out)
        errors = pl.read_parquet(_glob(out, "errors"))
        divisions = errors.filter(pl.col("sqlstate") == "22012")
        assert ("noise", DIVISION, "postgres", "postgres") in divisions.select(
            "application", "statement", "user_name", "database").rows()
        assert divisions["session_id"].null_count() == divisions["pid"].null_count() == 0
        # SERIALIZABLE write skew: rollbacks-b's COMMIT fails, with a DETAIL and a HINT (a deadlock,
        # which has a CONTEXT too, is an incident since issue 28)
        skew = errors.filter((pl.col("sqlstate") == "40001") & (pl.col("statement") == "COMMIT;")).row(0, named=True)
        assert skew["application"] == "rollbacks-b"
        assert skew["detail"].startswith("Reason code:")
        assert skew["hint"] == "The transaction might succeed if retried."
        assert skew["vxid"] and skew["xid"]


def _summary_cli(path: Path, *options: str, columns: int = 80) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "logdiag", "summary", str(path), *options],
        capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": str(columns)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


class TestSummary:
    """logdiag summary of the fleet: the counts played, other errors, keys and shapes per constraint."""

    def test_counts_across_days_and_hosts(self, fleet):
        """Two servers on two days: summary gives the counts played."""
        summary = summarize(fleet).to_dict()
        assert summary["incidents"] == 5
        assert {(r["constraint_name"], r["incidents"]) for r in summary["by_constraint"]} == {(FK, 3), (UNIQUE, 2)}
        assert {(r["host"], r["incidents"]) for r in summary["by_host"]} == {("east", 2), ("west", 3)}
        assert {(r["application"], r["incidents"]) for r in summary["by_client"]} == {("billing", 3), ("signup", 2)}
        assert [(r["hour"][:13], r["incidents"]) for r in summary["by_hour"]] == [
            (_day("east").strftime("%Y-%m-%dT%H"), 2), (_day("west").strftime("%Y-%m-%dT%H"), 3),
        ]
        days = sorted(p.name for p in (fleet / "incidents.parquet").iterdir())
        assert days == sorted({f"date={_day(h):%Y-%m-%d}" for h in DAYS})

    def test_other_errors_keys_and_shapes(self, fleet):
        """The other error played, and per constraint its keys and its one culprit shape."""
        summary = summarize(fleet).to_dict()
        assert summary["other_errors"] == 1
        assert [(r["sqlstate"], r["errors"]) for r in summary["other_errors_by_sqlstate"]] == [("22012", 1)]
        detail = {c["constraint_name"]: c for c in summary["by_constraint_detail"]}
        assert {(k["key_text"], k["incidents"]) for k in detail[FK]["keys"]} == {
            ("parent_id=42", 1), ("parent_id=43", 1), ("parent_id=44", 1),
        }
        assert [(s["shape"], s["incidents"]) for s in detail[FK]["shapes"]] == [
            ("INSERT INTO orders_child VALUES ($1, $2)", 3),
        ]
        assert [(k["key_text"], k["incidents"]) for k in detail[UNIQUE]["keys"]] == [("email=a@example.com", 2)]
        assert [s["shape"] for s in detail[UNIQUE]["shapes"]] == ["INSERT INTO accounts VALUES ($1, $2)"]

    @pytest.mark.parametrize("columns", [80, 60])
    def test_nothing_cut_at_80_columns(self, fleet, columns):
        """At the width of a pipe (and narrower) every name, key and shape is whole on one line,
        and no line is wider."""
        shown = _summary_cli(fleet, columns=columns)
        lines = shown.splitlines()
        assert max(len(line) for line in lines) <= columns
        for name in (FK, UNIQUE, "orders_child", "accounts", "billing", "signup", "east", "west",
                     "parent_id=42", "email=a@example.com", "INSERT INTO orders_child VALUES ($1, $2)",
                     "division by zero", "22012"):
            assert any(name in line for line in lines), name
        assert "5 incidents, 1 other error" in shown

    def test_scenario_names_whole_at_80_columns(self, scenario_logs, tmp_path):
        """The scenarios' constraint names, long ones included, are never folded at 80 columns."""
        export([str(scenario_logs["csvlog"])], tmp_path / "out")
        lines = _summary_cli(tmp_path / "out", columns=80).splitlines()
        names = {s.expected.constraint for s in SCENARIOS if s.expected and s.expected.constraint}
        assert len(names) > 40
        missing = [n for n in names if not any(n in line for line in lines)]
        assert missing == []

    def test_a_dataset_of_schema_version_1_reads(self, fleet, tmp_path):
        """An export directory that an older logdiag wrote into (columns ``at``, ``constraint``,
        ``table``, ``user``, no schema version), alongside parts of version 2: the same summary."""
        expected = summarize(fleet).to_dict()
        import shutil

        mixed = tmp_path / "exports"
        shutil.copytree(fleet, mixed)
        version_1 = {"logged_at": "at", "constraint_name": "constraint", "table_name": "table", "user_name": "user"}
        for table in ("incidents", "errors"):
            for part in sorted(glob.glob(_glob(mixed, table), recursive=True))[::2]:
                frame = pl.read_parquet(part)
                frame.rename({k: v for k, v in version_1.items() if k in frame.columns}).write_parquet(part)
        assert summarize(mixed).to_dict() == expected


# --- docs/parquet.md's queries, run --------------------------------------------------------

def _doc_blocks() -> list[tuple[str, str]]:
    """The fenced sql and python blocks of the "Questions people ask" section, in order."""
    text = (REPO / "docs" / "parquet.md").read_text()
    section = text.split("## Questions people ask", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(sql|python)\n(.*?)```", section, re.DOTALL)


def _run_python(code: str, namespace: dict) -> object:
    """Run a block; the value of its last expression, if it ends with one."""
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "docs/parquet.md", "exec"), namespace)  # noqa: S102  # the docs' own code, to test it
    return None if last is None else eval(compile(ast.Expression(last.value), "docs/parquet.md", "eval"), namespace)


#: What each question of the section answers on the fleet, in the order of the section.
ANSWERS = [
    [("east", FK, 2), ("west", UNIQUE, 2)],  # which constraint broke most this week, per host
    [("billing", 3), ("signup", 2)],  # which application
    # which statement shape
    [("INSERT INTO orders_child VALUES ($1, $2)", 3), ("INSERT INTO accounts VALUES ($1, $2)", 2)],
    [("22012", "noise", DIVISION, 1)],  # other errors: what, by whom
]


def test_docs_queries_answer_on_a_real_export(fleet, monkeypatch):
    """Every query of docs/parquet.md's questions, in DuckDB and in polars, gives the answer the
    servers played, from the directory the page names (``exports/``), with no quoted column."""
    monkeypatch.chdir(fleet.parent)
    blocks = _doc_blocks()
    setup = [code for lang, code in blocks if lang == "python" and "scan_parquet" in code and "group_by" not in code]
    namespace: dict = {}
    for code in setup:
        _run_python(code, namespace)
    queries = [(lang, code) for lang, code in blocks if code not in setup]
    sql = [code for lang, code in queries if lang == "sql"]
    python = [code for lang, code in queries if lang == "python"]
    assert len(sql) == len(python) == len(ANSWERS)
    for query, code, answer in zip(sql, python, ANSWERS, strict=True):
        assert '"' not in re.sub(r"'[^']*'", "''", query), query  # no quoted identifier
        assert duckdb.sql(query).fetchall() == answer, query
        frame = _run_python(code, namespace)
        assert isinstance(frame, pl.DataFrame), code
        assert frame.rows() == answer, code



def test_more_queries_of_the_page_run(fleet, monkeypatch):
    """The other queries of docs/parquet.md run on a real export and find rows."""
    monkeypatch.chdir(fleet.parent)
    text = (REPO / "docs" / "parquet.md").read_text()
    section = text.split("## More queries", 1)[1].split("\n## ", 1)[0]
    queries = re.findall(r"```sql\n(.*?)```", section, re.DOTALL)
    assert len(queries) == 2
    for query in queries:
        assert duckdb.sql(query).fetchall(), query
