"""The ``logdiag`` command: exit codes, one-line errors, output streams kept apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from logdiag import __version__
from logdiag.cli import app
from logdiag.exitcodes import ExitStatus
from logdiag.records import RECORD_FIELDS

runner = CliRunner()


def _run(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "logdiag", *args], input=input, capture_output=True, check=False)


class TestErrors:
    """Errors are one line on stderr with an exit code, never a traceback."""

    def test_missing_file(self, tmp_path):
        """A missing file exits 2 with its name."""
        result = _run("records", str(tmp_path / "missing.csv"))
        assert result.returncode == ExitStatus.ERROR
        assert result.stderr.decode() == f"logdiag: error: no such file or directory: {tmp_path / 'missing.csv'}\n"
        assert result.stdout == b""

    def test_unrecognised_prefix_says_what_to_pass(self, tmp_path):
        """A stderr log with an unknown prefix asks for --log-line-prefix, in one line."""
        path = tmp_path / "custom.log"
        path.write_text("this is not a PostgreSQL log line\n" * 3)
        result = _run("records", str(path))
        assert result.returncode == ExitStatus.ERROR
        message = result.stderr.decode()
        assert message.count("\n") == 1 and "--log-line-prefix" in message
        assert "Traceback" not in message

    def test_version(self):
        """--version prints the version."""
        result = runner.invoke(app, ["--version"])
        assert result.exit_code == 0 and result.output.strip() == f"logdiag {__version__}"

    def test_every_command_has_help_with_an_example(self):
        """Each command documents itself with an example invocation."""
        for command in app.registered_commands:
            result = runner.invoke(app, [command.name or command.callback.__name__, "--help"])
            assert result.exit_code == 0
            assert "Example:" in result.output


@pytest.mark.postgres
class TestRecords:
    """`logdiag records` on real server logs."""

    def test_jsonl_keys_are_the_record_fields(self, server_logs):
        """Each stdout line is one JSON object keyed by the record's fields; the summary is on stderr."""
        result = _run("records", str(server_logs["csvlog"]))
        assert result.returncode == 0
        objects = [json.loads(line) for line in result.stdout.decode().splitlines()]
        assert objects and all(tuple(o) == RECORD_FIELDS for o in objects)
        assert objects[0]["source"] == {"file": str(server_logs["csvlog"]), "line": 1}
        assert "csvlog" in result.stderr.decode() and "records from" in result.stderr.decode()

    def test_quiet(self, server_logs):
        """--quiet leaves stderr empty."""
        assert _run("records", "-q", str(server_logs["jsonlog"])).stderr == b""

    def test_table_prints_markup_as_text(self, server_logs):
        """A [bold] inside a logged statement is printed as text, not interpreted."""
        result = _run("records", "--format", "table", str(server_logs["jsonlog"]))
        assert result.returncode == 0
        assert "[bold]markup[/bold]" in result.stdout.decode()
        assert b"\x1b[" not in result.stdout  # not a terminal: no colour

    def test_closed_pipe(self, server_logs, tmp_path):
        """A reader that goes away early (| head -1) ends logdiag without a traceback."""
        big = tmp_path / "big.csv"
        big.write_bytes(server_logs["csvlog"].read_bytes() * 200)
        with big.open("rb") as stdin:
            process = subprocess.Popen(
                [sys.executable, "-m", "logdiag", "records", "-"],
                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            assert process.stdout is not None
            process.stdout.readline()
            process.stdout.close()
            _, stderr = process.communicate(timeout=60)
        assert process.returncode == ExitStatus.PIPE_CLOSED
        assert b"Traceback" not in stderr

    @pytest.mark.parametrize("command", [["analyze"], ["records", "--format", "table"]])
    def test_closed_pipe_under_rich_output(self, scenario_logs, tmp_path, command):
        """rich's own closed-pipe handling (exit 1, which means "incidents found") is not ours: 141."""
        big = tmp_path / "big.csv"
        big.write_bytes(scenario_logs["csvlog"].read_bytes() * 20)  # far more output than a pipe holds
        process = subprocess.Popen(
            [sys.executable, "-m", "logdiag", *command, str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        process.stdout.readline()
        process.stdout.close()
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == ExitStatus.PIPE_CLOSED
        assert b"Traceback" not in stderr

    @pytest.mark.parametrize("command", [[], ["analyze"], ["export"]])
    def test_help_into_a_closed_pipe(self, command):
        """`logdiag --help | head -1`: typer prints help with its own rich console; still 141, not 1."""
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before the first byte is written
        try:
            process = subprocess.run(
                [sys.executable, "-m", "logdiag", *command, "--help"],
                check=False, stdout=write_end, stderr=subprocess.PIPE, timeout=60,
            )
        finally:
            os.close(write_end)
        assert process.returncode == ExitStatus.PIPE_CLOSED
        assert process.stderr == b""

    def test_on_bad_line_fail(self, server_logs, tmp_path):
        """--on-bad-line fail stops at the first bad line, naming it."""
        path = tmp_path / "damaged.csv"
        path.write_bytes(b"junk\n" + server_logs["csvlog"].read_bytes())
        result = _run("records", "--on-bad-line", "fail", str(path))
        assert result.returncode == ExitStatus.ERROR
        assert result.stderr.decode().startswith(f"logdiag: error: {path}:1: not a csvlog record")

    def test_on_bad_line_warn_shows_examples(self, server_logs, tmp_path):
        """--on-bad-line warn shows the skipped lines with their numbers."""
        path = tmp_path / "damaged.csv"
        path.write_bytes(b"junk\n" + server_logs["csvlog"].read_bytes())
        result = _run("records", "--on-bad-line", "warn", str(path))
        assert result.returncode == ExitStatus.INCOMPLETE  # shown, but the log was not all read
        assert "line 1: not a csvlog record: 'junk'" in result.stderr.decode()


def test_a_file_that_is_no_log_is_said_to_be_none(tmp_path):
    """A text file with no server line (notes, a README) is no log: said so in one line, exit 2,
    rather than called a stderr log whose prefix cannot be worked out."""
    notes = tmp_path / "notes.txt"
    notes.write_text("Rotated by hand on Tuesday.\nAsk Ana before deleting anything here.\n")
    result = _run("analyze", str(notes))
    assert result.returncode == ExitStatus.ERROR
    lines = result.stderr.decode().splitlines()
    assert lines == [(
        f"logdiag: error: {notes}: no PostgreSQL log line in its first lines (none has a severity such as "
        "LOG: or ERROR:); if it is a server log, pass --input-format and --log-line-prefix"
    )]
