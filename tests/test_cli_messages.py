"""Messages a person reads (issue 29 §4): usage errors in one line with the nearest name, and
help that fits 80 columns. None of these needs a PostgreSQL server."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer

from logdiag import usage
from logdiag.cli import app
from logdiag.exitcodes import ExitStatus


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI run in-process on ``args`` as the console script runs it: exit code, stdout, stderr."""
    code = usage.run(app, list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _commands() -> dict[str, typer.core.TyperCommand]:
    """The click commands typer builds for logdiag, by name."""
    group = typer.main.get_command(app)
    ctx = typer.Context(group)
    return {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}  # type: ignore[attr-defined]


def _option_names(command: object) -> list[str]:
    return [
        name for param in command.params if param.param_type_name == "option"  # type: ignore[attr-defined]
        for name in (*param.opts, *param.secondary_opts)
    ]


class TestUsageErrors:
    """A usage error is one line on stderr, ``logdiag: error: …``, exit 2, nothing on stdout."""

    @pytest.mark.parametrize("args", [
        ["analyze", "--formt", "json", "x.csv"],
        ["analyze", "--format", "xml", "x.csv"],
        ["analyze"],
        ["summary"],
        ["export", "x.csv"],
        ["analyz", "x.csv"],
        ["--format", "json", "analyze", "x.csv"],
        ["analyze", "--max-sessions", "0", "x.csv"],
        ["analyze", "--quiet-period", "soon", "x.csv"],
        ["analyze", "--max-line-bytes", "lots", "x.csv"],
        ["summary", "a", "b"],
        ["analyze", "x.csv", "--format"],
        ["-x"],
    ], ids=" ".join)
    def test_one_line_exit_2(self, capsys, args):
        """Every kind of usage error (unknown option or command, bad value, missing argument or
        option, extra argument) is one line starting ``logdiag: error:``, exit 2."""
        code, out, err = _run(capsys, *args)
        assert code == ExitStatus.ERROR
        assert out == ""
        assert err.startswith("logdiag: error: ") and err.count("\n") == 1, err
        assert "╭" not in err and "Usage:" not in err

    def test_unknown_option_names_the_nearest(self, capsys):
        """A misspelt option is answered with the option meant and where to see them all."""
        _, _, err = _run(capsys, "analyze", "--formt", "json", "x.csv")
        assert err == "logdiag: error: no such option: --formt (did you mean --format?); see logdiag analyze --help\n"

    def test_every_option_misspelt_is_found(self, capsys):
        """Each long option of each command, with a letter dropped, is suggested by its real name."""
        for name, command in _commands().items():
            options = _option_names(command)
            for option in options:
                if not option.startswith("--") or len(option) < 8:
                    continue
                typo = option[:-2] + option[-1]
                if typo in options:
                    continue
                _, _, err = _run(capsys, name, typo, "x")
                assert f"(did you mean {option}?)" in err, (name, typo, err)

    def test_option_before_its_command(self, capsys):
        """An option given before the command is said to belong after it."""
        _, _, err = _run(capsys, "--format", "json", "analyze", "x.csv")
        assert err == (
            "logdiag: error: no such option: --format (--format is an option of analyze, summary, records: "
            "put it after the command); see logdiag --help\n"
        )

    def test_unknown_command_names_the_nearest(self, capsys):
        """A misspelt command is answered with the command meant, and the list of them."""
        _, _, err = _run(capsys, "analyz", "x.csv")
        assert err == (
            "logdiag: error: no such command: analyz (did you mean analyze?); "
            "the commands are analyze, export, summary, records\n"
        )

    @pytest.mark.parametrize(("args", "expected"), [
        (["analyze", "--format", "jsn", "x.csv"],
         "--format: 'jsn' is not one of text, json, jsonl, markdown, digest (did you mean json?)"),
        (["analyze", "-fmarkdwn", "x.csv"],
         "--format: 'markdwn' is not one of text, json, jsonl, markdown, digest (did you mean markdown?)"),
        (["summary", "--format=jsn", "dir"], "--format: 'jsn' is not one of text, json, markdown (did you mean json?)"),
        (["analyze", "--format", "xml", "x.csv"], "--format: 'xml' is not one of text, json, jsonl, markdown, digest"),
        (["records", "--input-format", "csv", "x.csv"],
         ("--input-format: 'csv' is not one of csvlog, jsonlog, stderr, syslog, logplex, cloudsql, cnpg "
          "(did you mean csvlog?)")),
        (["records", "--on-bad-line", "skp", "x.csv"],
         "--on-bad-line: 'skp' is not one of skip, warn, fail (did you mean skip?)"),
    ])
    def test_bad_choice_names_the_nearest(self, capsys, args, expected):
        """A value outside an option's choices lists them, and names the nearest when one is near."""
        _, _, err = _run(capsys, *args)
        assert err == f"logdiag: error: {expected}\n"

    def test_missing_argument_says_what_it_is(self, capsys):
        """A missing argument is named with what to give."""
        _, _, err = _run(capsys, "summary")
        assert err == (
            "logdiag: error: missing argument DIR: an export directory, or a Parquet file or dataset of "
            "incidents; see logdiag summary --help\n"
        )

    def test_bad_number(self, capsys):
        """A value out of range names the option."""
        _, _, err = _run(capsys, "analyze", "--max-sessions", "0", "x.csv")
        assert err.startswith("logdiag: error: invalid value for '--max-sessions': ")
        assert err.endswith("; see logdiag analyze --help\n")

    def test_control_characters_in_arguments_are_shown_escaped(self, capsys):
        """What the user typed is echoed with its control characters made visible."""
        _, _, err = _run(capsys, "analyze", "--format", "\x1b[2J", "x.csv")
        assert "\x1b" not in err and "\\x1b[2J" in err

    def test_no_command_prints_help_on_stderr(self, capsys):
        """`logdiag` alone prints its help on stderr, exit 2, as before."""
        code, out, err = _run(capsys)
        assert (code, out) == (ExitStatus.ERROR, "")
        assert err.startswith("Usage: logdiag [OPTIONS] COMMAND")

    def test_version(self, capsys):
        """--version still prints the version, exit 0."""
        code, out, _ = _run(capsys, "--version")
        assert code == ExitStatus.OK and out.startswith("logdiag ")

    def test_help_still_works(self, capsys):
        """--help prints the help on stdout and exits 0."""
        code, out, err = _run(capsys, "analyze", "--help")
        assert code == ExitStatus.OK and out.startswith("Usage: logdiag analyze") and err == ""

    def test_console_script(self):
        """The installed entry point (python -m logdiag) answers the same way."""
        result = subprocess.run(
            [sys.executable, "-m", "logdiag", "analyze", "--fail-on-incidents", "x.csv"],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == ExitStatus.ERROR
        assert result.stdout == ""
        assert result.stderr == (
            "logdiag: error: no such option: --fail-on-incidents (did you mean --fail-on-incident?); "
            "see logdiag analyze --help\n"
        )


class TestHelp:
    """``--help`` is readable at 80 columns, and shows how to call each command."""

    @pytest.mark.parametrize("command", [None, "analyze", "summary", "export", "records"])
    def test_no_option_name_cut_at_80_columns(self, capsys, monkeypatch, command):
        """Every option name of the command stands whole in its help at 80 columns, and no line
        is wider."""
        monkeypatch.setenv("COLUMNS", "80")
        code, out, _ = _run(capsys, *([command] if command else []), "--help")
        assert code == ExitStatus.OK
        assert max(len(line) for line in out.splitlines()) <= 80
        assert "…" not in out
        target = _commands()[command] if command else typer.main.get_command(app)
        for option in _option_names(target):
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", out), f"{option} cut in:\n{out}"

    def test_commands_listed_whole_at_80_columns(self, capsys, monkeypatch):
        """``logdiag --help`` lists each command with a summary that is not cut short."""
        monkeypatch.setenv("COLUMNS", "80")
        _, out, _ = _run(capsys, "--help")
        for name in _commands():
            listed = re.search(rf"^  {name} +(.+)$", out, re.MULTILINE)
            assert listed and not listed[1].endswith("..."), out

    @pytest.mark.parametrize("command", ["analyze", "summary", "export", "records"])
    def test_example_invocation_on_one_line(self, capsys, monkeypatch, command):
        """Each command's help has an Example: block whose invocation is one line to copy at 80 columns."""
        monkeypatch.setenv("COLUMNS", "80")
        _, out, _ = _run(capsys, command, "--help")
        example = out.split("Example:\n", 1)[1].splitlines()[0]
        assert example.strip().startswith(f"logdiag {command} ")
        assert example.endswith(_commands()[command].help.split("Example:\n", 1)[1].splitlines()[0].strip())

    def test_top_help_shows_an_example(self, capsys, monkeypatch):
        """`logdiag --help` ends with an example, after the list of commands."""
        monkeypatch.setenv("COLUMNS", "80")
        _, out, _ = _run(capsys, "--help")
        _, example = out.split("Commands:\n", 1)[1].split("Example:\n", 1)
        assert example.splitlines()[0].strip().startswith("logdiag analyze ")


class TestPlurals:
    """Counts that a person reads agree with their nouns: one record, two records."""

    def test_skip_reasons_read_after_their_count(self):
        """A reason describes one line, so its count comes after it, with "line" or "lines"."""
        from logdiag.cli import _reasons
        from logdiag.source.stats import InputStats

        stats = InputStats("pg.log")
        stats.skipped["line does not match the log_line_prefix"] = 83840
        stats.skipped["NUL bytes"] = 1
        assert _reasons(stats) == "line does not match the log_line_prefix: 83840 lines; NUL bytes: 1 line"

    def test_input_summary_of_one_record(self, capsys):
        """The per-input summary says 1 record from 1 line."""
        from logdiag.cli import _summarize
        from logdiag.source.stats import InputStats

        _summarize([InputStats("one.csv", format="csvlog", lines=1, records=1)], show_examples=False)
        assert capsys.readouterr().err == "one.csv: csvlog: 1 record from 1 line\n"

    def test_status_line_of_one_open_session(self):
        """The live status line says 1 open session, 1 incident (it said "1 open sessions")."""
        from types import SimpleNamespace

        from logdiag.report.status import StatusLine

        tracker = SimpleNamespace(
            stats=SimpleNamespace(records=1, evicted_sessions=0, idle_sessions=0), sessions={"pid 1": object()},
        )
        line = StatusLine(SimpleNamespace(tracker=tracker, incident_count=1)).text()  # type: ignore[arg-type]
        assert line.startswith("logdiag: 1 record (")
        assert line.endswith(" · 1 open session · 1 incident · 0 evicted")

    def test_stopped_summary_of_one(self):
        """--follow's summary on Ctrl-C counts in the singular too."""
        from types import SimpleNamespace

        from logdiag.cli import _stopped

        tracker = SimpleNamespace(
            stats=SimpleNamespace(records=1, evicted_sessions=0, idle_sessions=0), sessions={"pid 1": object()},
        )
        text = _stopped(SimpleNamespace(tracker=tracker, incident_count=1))  # type: ignore[arg-type]
        assert text == "logdiag: stopped after 1 record: 1 incident, 1 session open, 0 evicted"

    def test_one_other_error(self):
        """The text report's last line counts one other error in the singular."""
        from io import StringIO
        from types import SimpleNamespace

        from rich.console import Console

        from logdiag.report.text import write_text

        run = SimpleNamespace(inputs=[], skipped_files=[], findings=[], filtered_incidents=0,
                              other_errors=[SimpleNamespace(sqlstate="40P01")])
        out = StringIO()
        write_text(run, [], Console(file=out, width=80))  # type: ignore[arg-type]
        assert out.getvalue().splitlines()[-1] == "1 other error: 40P01 × 1"

    @pytest.mark.parametrize(("total", "said"), [(1, "1 incident"), (2, "2 incidents")])
    def test_summary_counts_its_incidents(self, total, said):
        """`logdiag summary` heads its report with the count and the right noun."""
        from io import StringIO

        from rich.console import Console

        from logdiag.export.summary import Summary
        from logdiag.report.summary import write_summary_markdown, write_summary_text

        out = StringIO()
        write_summary_text(Summary(total=total, groups={}, shapes=[]), Console(file=out, width=80))
        assert out.getvalue() == f"{said}\n"
        out = StringIO()
        write_summary_markdown(Summary(total=total, groups={}, shapes=[]), out)
        assert out.getvalue().startswith(f"# logdiag summary\n\n{said}.\n")


class TestSummaryOfNothing:
    """`logdiag summary` of a place with no export is one line that says so, exit 2 (it leaked
    polars' ``PlRefPath { inner: "emptydir/**/*.parquet" }``)."""

    def test_empty_directory(self, capsys, tmp_path):
        """An empty directory: no Parquet file there, and how to write one."""
        code, out, err = _run(capsys, "summary", str(tmp_path))
        assert (code, out) == (ExitStatus.ERROR, "")
        assert err == (
            f"logdiag: error: no exported incidents at {tmp_path}: no Parquet file there "
            f"(write them with: logdiag export LOG... -o {tmp_path})\n"
        )

    def test_missing_directory(self, capsys, tmp_path):
        """A directory that does not exist is named as missing."""
        code, _, err = _run(capsys, "summary", str(tmp_path / "exports"))
        assert code == ExitStatus.ERROR
        assert err == (
            f"logdiag: error: no such file or directory: {tmp_path / 'exports'} "
            "(name the directory logdiag export -o wrote)\n"
        )

    def test_glob_that_matches_nothing(self, capsys, tmp_path):
        """A glob with no match says so, in one line."""
        code, _, err = _run(capsys, "summary", str(tmp_path / "*.parquet"))
        assert code == ExitStatus.ERROR
        assert err == f"logdiag: error: no exported incidents at {tmp_path / '*.parquet'}: no Parquet file matches it\n"

    def test_a_file_that_is_not_parquet(self, capsys, tmp_path):
        """A file named by itself that is not Parquet: named, and what to name instead."""
        notes = tmp_path / "notes.txt"
        notes.write_text("not Parquet\n")
        code, _, err = _run(capsys, "summary", str(notes))
        assert code == ExitStatus.ERROR and err.count("\n") == 1
        assert err.startswith(f"logdiag: error: {notes} is not a Parquet file (")
        assert err.endswith("): name the directory logdiag export -o wrote, or its incidents.parquet\n")
