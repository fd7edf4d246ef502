"""Terminal control sequences in log text reach no output as they are (issue 27 §9).

A real server logs a constraint named, and a statement written, with ESC[2J (clear screen), OSC 0
(window title), OSC 8 (hyperlink), BEL, CR, BS, the one-character CSI U+009B and a right-to-left
override; every output format of every command must show them escaped.
"""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

pytestmark = pytest.mark.postgres

LOGDIAG = [sys.executable, "-m", "logdiag"]
#: Short enough for a constraint name (63 bytes at most).
EVIL_NAME = "fk\x1b[2J\x1b]0;t\x07\r\x08\u009b1m\u202e"
EVIL_TEXT = "\x1b[2J\x1b]0;pwned\x07\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\\r\x08\u009b31m\u202e"
#: What no output may hold as it is.
RAW = ["\x1b", "\x07", "\x08", "\r", "\u009b", "\u202e"]


@pytest.fixture(scope="module")
def evil_logs(pg_cluster, tmp_path_factory):
    from tests.conftest import copy_logs

    with pg_cluster() as cluster:
        with psycopg.connect(cluster.conninfo, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE cc_parent (id int PRIMARY KEY);"
                f" CREATE TABLE cc_child (id int PRIMARY KEY, parent_id int, CONSTRAINT \"{EVIL_NAME}\""
                " FOREIGN KEY (parent_id) REFERENCES cc_parent DEFERRABLE INITIALLY DEFERRED)"
            )
        with psycopg.connect(cluster.conninfo, application_name="evil", cursor_factory=psycopg.ClientCursor) as conn:
            conn.execute(f"INSERT INTO cc_child VALUES (1, 77) /* {EVIL_TEXT} */")
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.commit()
        cluster.stop()
        return copy_logs(cluster, tmp_path_factory.mktemp("evil-logs"))


def _run(*args: str) -> str:
    done = subprocess.run([*LOGDIAG, *args], capture_output=True, check=False, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert done.returncode in (0, 1), done.stderr
    for output in (done.stdout, done.stderr):
        text = output.decode()
        assert [c for c in RAW if c in text] == [], text[:2000]
    return done.stdout.decode()


@pytest.mark.parametrize("fmt", ["stderr", "csvlog", "jsonlog"])
@pytest.mark.parametrize("output", ["text", "json", "jsonl", "markdown"])
def test_analyze_escapes_control_characters(evil_logs, fmt, output):
    shown = _run("analyze", str(evil_logs[fmt]), "--format", output)
    escaped = "\\u001b[2J" if output.startswith("json") else "\\x1b[2J"
    assert escaped in shown  # the text is there, made harmless
    assert "77" in shown


@pytest.mark.parametrize("output", ["jsonl", "table"])
def test_records_escape_control_characters(evil_logs, output):
    shown = _run("records", str(evil_logs["jsonlog"]), "--format", output)
    assert ("\\u001b]0;pwned" if output == "jsonl" else "\\x1b]0;pwned") in shown


@pytest.mark.parametrize("output", ["text", "json", "markdown"])
def test_summary_escapes_control_characters(evil_logs, tmp_path, output):
    _run("export", str(evil_logs["csvlog"]), "-o", str(tmp_path / "out"))
    shown = _run("summary", str(tmp_path / "out"), "--format", output)
    assert ("fk\\u001b[2J" if output == "json" else "fk\\x1b") in shown
