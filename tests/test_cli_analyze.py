"""`logdiag analyze` as a user runs it: output contract, streams, exit codes, safe rendering."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from logdiag.exitcodes import ExitStatus

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_logs"
CONTRACT_KEYS = [
    "sqlstate", "condition", "timing", "at", "constraint", "constraint_kind", "table", "referenced_table", "key",
    "message", "detail", "session", "transaction", "raised_by", "culprits", "related", "explanation", "hints", "group",
]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logdiag", *args], capture_output=True, text=True, check=False, env=env,
    )


class TestSampleLogs:
    """The bundled sample logs (written by a real PostgreSQL 15; see sample_logs/README.md)."""

    @pytest.mark.parametrize("name", ["postgresql.csv", "postgresql.json", "postgresql.log"])
    def test_json_contract(self, name):
        """The JSON report has the contract's keys and the scenario's answer: key 42, the INSERT of 1002."""
        result = _run("analyze", "--format", "json", str(SAMPLE / name))
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert list(report) == [
            "logdiag", "inputs", "skipped_files", "incidents", "groups", "findings", "settings_advice", "other_errors",
            "stats",
        ]
        assert report["findings"] == []  # the sample has no SET CONSTRAINTS pitfall
        assert [(g["id"], g["count"], g["incidents"]) for g in report["groups"]] == [(1, 1, [0])]
        (incident,) = report["incidents"]
        assert list(incident) == CONTRACT_KEYS
        assert incident["key"] == {"customer_id": "42"}
        assert incident["timing"] == "commit"
        assert incident["culprits"][0]["statement"] == (
            "INSERT INTO orders (id, customer_id, total_cents) VALUES (1002, 42, 4999);"
        )

    @pytest.mark.parametrize("name", ["postgresql.csv", "postgresql.json", "postgresql.log"])
    def test_the_storm_is_two_groups(self, name):
        """sample_logs/storm: 40 + 20 INSERTs of missing customers and 3 UPDATEs (see
        scripts/make_sample_logs.py --storm) are two groups of one constraint; the text report
        shows each group's first incident in full and fits 80 columns."""
        result = _run("analyze", "--format", "json", str(SAMPLE / "storm" / name))
        report = json.loads(result.stdout)
        groups = [(g["constraint"], g["count"], g["shape"].split(" (")[0].split(" SET")[0]) for g in report["groups"]]
        assert groups == [("orders_customer_id_fkey", 60, "INSERT INTO orders"), ("orders_customer_id_fkey", 3, "UPDATE orders")]
        if name != "postgresql.log":  # Debian's prefix has no %a
            assert report["groups"][0]["applications"] == {"billing-job": 40, "shop-api": 20}
            assert report["groups"][1]["applications"] == {"shop-api": 3}
        text = _run("analyze", str(SAMPLE / "storm" / name), env={**os.environ, "COLUMNS": "80"}).stdout
        assert text.count("╭─ #") == 2 and "… and 54 more" in text
        assert max(len(line) for line in text.splitlines()) <= 80

    def test_sigterm_ends_a_live_run_with_the_group_summary(self):
        """Standard input left open, then SIGTERM (a service manager stopping it): the group
        summary is printed, exit 143."""
        import os
        import signal
        import time

        data = (SAMPLE / "storm" / "postgresql.csv").read_bytes()
        live = subprocess.Popen([sys.executable, "-m", "logdiag", "analyze", "-"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "100"})
        assert live.stdin is not None and live.stdout is not None
        live.stdin.write(data)
        live.stdin.flush()
        seen, deadline = b"", time.monotonic() + 120
        while b"#63 " not in seen and time.monotonic() < deadline:  # the storm's last incident
            seen += os.read(live.stdout.fileno(), 65536)
        live.send_signal(signal.SIGTERM)
        rest, _ = live.communicate(timeout=60)
        assert live.returncode == ExitStatus.TERMINATED
        assert b"Summary: 2 groups of 63 incidents" in seen + rest

    def test_a_compressed_log_cut_short_is_an_input_error_in_the_report(self, tmp_path):
        """A .gz cut short: the JSON report says so in its input's ``error`` (a tool reading it
        sees it, not only a person reading stderr) and the run is incomplete (exit 3); a whole
        one has none."""
        packed = gzip.compress((SAMPLE / "postgresql.csv").read_bytes())
        whole, cut = tmp_path / "whole.csv.gz", tmp_path / "cut.csv.gz"
        whole.write_bytes(packed)
        cut.write_bytes(packed[: len(packed) // 2])
        reports = {}
        for path in (whole, cut):
            result = _run("analyze", "--format", "json", str(path))
            assert result.returncode == (ExitStatus.INCOMPLETE if path == cut else ExitStatus.OK), result.stderr
            reports[path] = json.loads(result.stdout)
        assert reports[whole]["inputs"][0]["error"] is None
        (cut_input,) = reports[cut]["inputs"]
        assert cut_input["error"].startswith("input ends early or is corrupt after line ")
        assert 0 < cut_input["records"] < reports[whole]["inputs"][0]["records"]
        assert "ends early" in result.stderr

    def test_jsonl_is_one_incident_per_line_and_nothing_else(self):
        """jsonl: every stdout line is an incident object; the input summary goes to stderr."""
        result = _run("analyze", "--format", "jsonl", str(SAMPLE / "postgresql.csv"))
        lines = result.stdout.splitlines()
        assert len(lines) == 1 and list(json.loads(lines[0])) == CONTRACT_KEYS
        assert "csvlog" in result.stderr

    def test_markdown(self):
        """Markdown names the constraint and fences the culprit's SQL."""
        result = _run("analyze", "--format", "markdown", str(SAMPLE / "postgresql.json"))
        assert "orders\\_customer\\_id\\_fkey" in result.stdout
        assert "```sql\nINSERT INTO orders (id, customer_id, total_cents) VALUES (1002, 42, 4999);\n```" in result.stdout

    def test_fail_on_incident(self):
        """--fail-on-incident exits 1 when there is an incident."""
        assert _run("analyze", "-q", "--fail-on-incident", str(SAMPLE / "postgresql.csv")).returncode == ExitStatus.INCIDENTS

    def test_text_without_a_terminal_has_no_colour(self):
        """Piped text output carries no ANSI escapes."""
        result = _run("analyze", str(SAMPLE / "postgresql.csv"))
        assert result.returncode == 0 and "\x1b[" not in result.stdout
        assert "customer_id = 42" in result.stdout


@pytest.mark.postgres
def test_markup_and_escapes_in_the_log_print_as_text(pg_cluster, tmp_path):
    """A statement holding [bold] and an ANSI escape is shown literally, even with colours forced on."""
    with pg_cluster(log_statement="all") as cluster:
        cluster.psql(
            "CREATE TABLE p (id text PRIMARY KEY);"
            "CREATE TABLE c (id int, p text REFERENCES p DEFERRABLE INITIALLY DEFERRED);"
        )
        with psycopg.connect(cluster.conninfo, application_name="[red]evil[/red]") as conn:
            conn.execute("INSERT INTO c VALUES (1, '[bold]x[/bold]' || chr(27) || '[31m')")
            conn.execute("INSERT INTO c VALUES (1, %s)", ("[bold]x[/bold]\x1b[31m",))
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.commit()
        cluster.stop()
        log = tmp_path / "postgresql.csv"
        log.write_bytes(cluster.log_file("csvlog").read_bytes())
    env = {"FORCE_COLOR": "1", "COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    result = _run("analyze", str(log), env=env)
    assert result.returncode == 0, result.stderr
    assert "[bold]x[/bold]" in result.stdout
    assert "[red]evil[/red]" in result.stdout
    assert "\\x1b[31m" in result.stdout  # the escape from the log, made visible
    assert "[/bold]\x1b[31m" not in result.stdout  # and never passed through raw


@pytest.mark.postgres
class TestIncompleteRead:
    """Lines that could have held records and were not read are never an all-clear: a warning on
    stderr and exit 3 (the server wrote its stderr log with Debian's prefix, ``%m [%p] %q%u@%d ``)."""

    WRONG_PREFIX = "%t [%p] "  # no milliseconds: none of the server's lines fits it

    def test_a_wrong_prefix_exits_3_and_says_which_fits(self, server_logs):
        """Every line unread: exit 3, the count, an example, the prefix that fits; no all-clear."""
        log = server_logs["stderr"]
        result = _run("analyze", "--log-line-prefix", self.WRONG_PREFIX, str(log))
        assert result.returncode == ExitStatus.INCOMPLETE, result.stderr
        lines = log.read_bytes().count(b"\n")
        assert f"logdiag: warning: {log}: {lines} of {lines} lines could not be read" in result.stderr
        assert "e.g. line 1: " in result.stderr
        assert "Those lines fit --log-line-prefix '%m [%p] %q%u@%d '" in result.stderr
        assert "No constraint violation in this log." not in result.stdout
        assert f"No constraint violation in what could be read; {lines} lines could not be read." in result.stdout

    def test_json_carries_the_counts_and_quiet_keeps_the_warning(self, server_logs):
        """--format json -q: exit 3, inputs[] says how many lines were not read, stderr still warns."""
        result = _run("analyze", "-q", "--format", "json", "--log-line-prefix", self.WRONG_PREFIX, str(server_logs["stderr"]))
        assert result.returncode == ExitStatus.INCOMPLETE
        (read,) = json.loads(result.stdout)["inputs"]
        assert read["records"] == 0
        assert read["unread"] == read["lines"] == server_logs["stderr"].read_bytes().count(b"\n")
        assert "lines could not be read" in result.stderr

    def test_an_explicit_skip_is_the_users_choice(self, server_logs):
        """--on-bad-line skip, given: the lines are counted in the summary, and the exit is 0."""
        result = _run("analyze", "--on-bad-line", "skip", "--log-line-prefix", self.WRONG_PREFIX, str(server_logs["stderr"]))
        assert result.returncode == ExitStatus.OK
        assert "could not be read" not in result.stderr
        assert "skipped (" in result.stderr

    def test_the_right_prefix_reads_every_line(self, server_logs):
        """The server's own prefix: nothing unread, exit 0, no warning."""
        result = _run("analyze", "--format", "json", "--log-line-prefix", "%m [%p] %q%u@%d ", str(server_logs["stderr"]))
        assert result.returncode == ExitStatus.OK, result.stderr
        (read,) = json.loads(result.stdout)["inputs"]
        assert (read["unread"], read["skipped"]) == (0, 0)
        assert "could not be read" not in result.stderr
