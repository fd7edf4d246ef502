"""The ``logdiag`` command: options in, a library call, a renderer out. Nothing else lives here."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from enum import Enum
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from logdiag import usage
from logdiag.diagnosis.filters import FilterError, ReportFilter
from logdiag.diagnosis.incidents import Incident
from logdiag.diagnosis.sessions import IDLE_TIMEOUT, MAX_SESSIONS, MAX_STATEMENTS, SessionTracker
from logdiag.errors import LogdiagError
from logdiag.exitcodes import ExitStatus
from logdiag.formats import LogFormat
from logdiag.formats.infer import find_prefix
from logdiag.pipeline import Run
from logdiag.reader import LOOKBACK_BYTES, WINDOW_BYTES, LogReader
from logdiag.report.records import write_jsonl, write_table
from logdiag.report.safe import printable
from logdiag.report.status import StatusLine
from logdiag.source.live import QUIET_PERIOD, FollowNotice
from logdiag.source.paths import may_hold_several
from logdiag.source.stats import MAX_EXAMPLES, MAX_LINE_BYTES, InputStats, OnBadLine, SkippedFile
from logdiag.version import __version__
from logdiag.wording import plural

app = typer.Typer(
    name="logdiag",
    help="Find which statement broke a PostgreSQL transaction, from the server's log.",
    epilog="\b\nExample:\n  logdiag analyze /var/log/postgresql/postgresql-15-main.csv\n  logdiag analyze --help",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class AnalyzeFormat(str, Enum):
    """Output formats of ``logdiag analyze``."""

    TEXT = "text"
    JSON = "json"
    JSONL = "jsonl"
    MARKDOWN = "markdown"
    DIGEST = "digest"


class RecordsFormat(str, Enum):
    """Output formats of ``logdiag records``."""

    JSONL = "jsonl"
    TABLE = "table"


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


class _StdoutConsole(Console):
    """rich's console for stdout, but a closed pipe ends the run the way it does for every output.

    rich's own handling exits with 1, which to logdiag means "incidents found"; raising the
    BrokenPipeError lets :func:`_handled` exit with 141 like the JSON and JSONL writers.
    """

    def __init__(self) -> None:
        super().__init__(highlight=False)

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def _version(value: bool) -> None:
    if value:
        typer.echo(f"logdiag {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """logdiag reads PostgreSQL server logs (csvlog, jsonlog, stderr, syslog...)."""


PathsArg = Annotated[
    list[str],
    typer.Argument(
        help="Log files, globs, log directories, or - for standard input (.gz .bz2 .xz .zst too).",
        show_default=False, metavar="PATH",
    ),
]
PrefixOpt = Annotated[
    Optional[str],  # noqa: UP045 - typer reads the annotation at runtime on Python 3.10
    typer.Option(
        "--log-line-prefix",
        help="The server's log_line_prefix, for stderr/syslog logs (default: detected).",
    ),
]
LcMessagesOpt = Annotated[
    Optional[str],  # noqa: UP045 - typer reads the annotation at runtime on Python 3.10
    typer.Option(
        "--lc-messages",
        help="The server's lc_messages (de, fr_FR.UTF-8, ja...): the language of its log "
        "(default: detected from each input's severity words and statement: lines).",
    ),
]
InputFormatOpt = Annotated[
    Optional[LogFormat],  # noqa: UP045
    typer.Option("--input-format", help="The input's format (default: detected).", case_sensitive=False),
]
OnBadLineOpt = Annotated[
    Optional[OnBadLine],  # noqa: UP045
    typer.Option(
        "--on-bad-line",
        help="Lines that belong to no record: skip (count them; exit 0), warn (show examples), fail. "
        "By default they are counted and, if any could have held records, exit 3.",
        case_sensitive=False,
        show_default=False,
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No summary on stderr.")]


def _size(text: str | int) -> int:
    """A size in bytes: ``16777216``, ``64K``, ``16M``, ``1G`` (KiB, MiB, GiB; a trailing B or iB allowed)."""
    if isinstance(text, int):  # the default
        return text
    match = re.fullmatch(r"(\d{1,15}) ?([kmg]?)(?:i?b)?", text.strip(), re.IGNORECASE)
    if match is None or int(match[1]) == 0:
        raise typer.BadParameter(f"{text!r} is not a size such as 1048576, 64K, 16M or 1G")
    return int(match[1]) << {"": 0, "k": 10, "m": 20, "g": 30}[match[2].lower()]


MaxLineOpt = Annotated[
    int,
    typer.Option(
        "--max-line-bytes", parser=_size, metavar="SIZE",
        help="The longest line read whole (e.g. 64M): a longer one is cut there, the rest counted as "
        "not read (exit 3); memory stays bounded on any input.",
    ),
]


_FILTERS = "Filters (what is reported; everything is still tracked)"
SinceOpt = Annotated[
    Optional[str],  # noqa: UP045 - typer reads the annotation at run time
    typer.Option(
        "--since", metavar="TIME", rich_help_panel=_FILTERS, show_default=False,
        help="Report what happened at or after TIME: 2026-11-21 07:00 (the log's own zone), "
        "2026-11-21T07:00Z or +02:00 (an instant), or 2h, 30m, 45s, 1d (ago).",
    ),
]
UntilOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--until", metavar="TIME", rich_help_panel=_FILTERS, show_default=False,
        help="Report what happened before TIME (as --since).",
    ),
]


def _names(option: str, what: str) -> Any:
    return typer.Option(option, metavar="NAME", rich_help_panel=_FILTERS, show_default=False, help=what)


ConstraintOpt = Annotated[Optional[list[str]], _names("--constraint", "Only this constraint (repeatable).")]  # noqa: UP045
TableOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    _names("--table", "Only incidents on this table or referencing it; findings on it (repeatable)."),
]
DatabaseOpt = Annotated[Optional[list[str]], _names("--database", "Only this database (repeatable).")]  # noqa: UP045
ApplicationOpt = Annotated[
    Optional[list[str]], _names("--application", "Only this application_name (repeatable).")  # noqa: UP045
]
UserOpt = Annotated[Optional[list[str]], _names("--user", "Only this database user (repeatable).")]  # noqa: UP045
SqlstateOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--sqlstate", metavar="CODE", rich_help_panel=_FILTERS, show_default=False,
        help="Only this SQLSTATE (23503) or class (23) (repeatable).",
    ),
]


@app.command(short_help="Find constraint violations and the statements behind them.")
def analyze(
    paths: PathsArg,
    output_format: Annotated[
        AnalyzeFormat,
        typer.Option(
            "--format", "-f",
            help="text: a report for people, repeated incidents grouped; json: the whole report; jsonl: one "
            "incident per line, then one finding per line; markdown; digest: one line per group.",
            case_sensitive=False,
        ),
    ] = AnalyzeFormat.TEXT,
    each: Annotated[
        bool,
        typer.Option("--each", help="Show every incident in full (text, markdown) or in a line (digest), not grouped."),
    ] = False,
    log_line_prefix: PrefixOpt = None,
    input_format: InputFormatOpt = None,
    lc_messages: LcMessagesOpt = None,
    on_bad_line: OnBadLineOpt = None,
    max_line_bytes: MaxLineOpt = MAX_LINE_BYTES,
    follow_log: Annotated[
        bool,
        typer.Option("--follow", "-F", help="Follow one log file or log directory as it is written, like tail -F."),
    ] = False,
    from_start: Annotated[
        bool, typer.Option("--from-start", help="With --follow: read what is already there first.")
    ] = False,
    quiet_period: Annotated[
        float,
        typer.Option(
            "--quiet-period", min=0.05,
            help="Live input: seconds of silence after which a stderr record is complete.",
        ),
    ] = QUIET_PERIOD,
    fail_on_incident: Annotated[
        bool, typer.Option("--fail-on-incident", help="Exit with 1 when an incident is found (for CI and cron).")
    ] = False,
    max_statements: Annotated[
        int,
        typer.Option("--max-statements", min=1, help="Statements kept per open transaction (bounds memory)."),
    ] = MAX_STATEMENTS,
    max_sessions: Annotated[
        int, typer.Option("--max-sessions", min=1, help="Open sessions kept at once (bounds memory).")
    ] = MAX_SESSIONS,
    idle_timeout: Annotated[
        float,
        typer.Option("--idle-timeout", min=1, help="Drop a session after this many seconds (log time) of silence."),
    ] = IDLE_TIMEOUT,
    fast_path: Annotated[
        bool,
        typer.Option(
            "--fast-path/--no-fast-path",
            help="Pre-filter big plain files, pipes, followed and compressed logs with vectorised scans (polars).",
        ),
    ] = True,
    lookback_mb: Annotated[
        Optional[int],  # noqa: UP045 - typer reads the annotation at run time
        typer.Option(
            "--lookback-mb", min=1, show_default=False,
            help=f"Pipes, followed and compressed logs: MB of lines held for sessions that have not failed yet "
            f"(default {LOOKBACK_BYTES >> 20}, {WINDOW_BYTES >> 20} for compressed files).",
        ),
    ] = None,
    quiet: QuietOpt = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
    constraint: ConstraintOpt = None,
    table: TableOpt = None,
    database: DatabaseOpt = None,
    application: ApplicationOpt = None,
    user: UserOpt = None,
    sqlstate: SqlstateOpt = None,
) -> None:
    """Find every constraint violation, above all those at COMMIT, and the statement behind it.

    \b
    Example:
      logdiag analyze /var/log/postgresql/postgresql-15-main.csv
      logdiag analyze --follow /var/log/postgresql
      tail -F postgresql.csv | logdiag analyze - --format jsonl
      logdiag analyze postgresql.csv --since 2h --sqlstate 23 --application etl
    """
    from logdiag import pipeline

    try:
        only = ReportFilter.parse(
            since=since, until=until, constraint=constraint or (), table=table or (), database=database or (),
            application=application or (), user=user or (), sqlstate=sqlstate or (),
        )
    except FilterError as exc:
        raise typer.BadParameter(exc.message, param_hint=f"'{exc.option}'") from None
    found = 0
    with _handled():
        run = pipeline.analyze(
            paths, log_line_prefix=log_line_prefix, format=input_format, on_bad_line=on_bad_line or OnBadLine.SKIP,
            tracker=SessionTracker(max_sessions=max_sessions, max_statements=max_statements, idle_timeout=idle_timeout),
            follow=follow_log, from_start=from_start,
            quiet=quiet_period if follow_log or list(paths) == ["-"] else None, fast=fast_path,
            lookback_bytes=lookback_mb << 20 if lookback_mb else None,
            on_file=None if quiet else _following, lc_messages=lc_messages, max_line_bytes=max_line_bytes,
            on_notice=_following_notice if not quiet else _loss_only, only=only,
        )
        live = follow_log or list(paths) == ["-"]
        status = StatusLine(run) if live and not quiet and StatusLine.wanted() else None
        incidents = status.around(run.incidents()) if status else run.incidents()
        try:
            with status or nullcontext():
                found = _render(output_format, run, incidents, each=each, live=live,
                                many_files=follow_log or len(paths) > 1 or any(may_hold_several(p) for p in paths))
        except KeyboardInterrupt:
            _stopping()
            if not quiet:
                _stderr().print(_stopped(run), markup=False)
            raise
        sys.stdout.flush()
        if not quiet:
            _summarize(run.inputs, show_examples=on_bad_line is OnBadLine.WARN)
            _filtered(run)
        unread_files = _skipped_files_warning(run.reader.skipped_files)
        incomplete = _input_warnings(run.inputs, on_bad_line) or unread_files
    if fail_on_incident and found:
        raise typer.Exit(ExitStatus.INCIDENTS)
    if incomplete:
        raise typer.Exit(ExitStatus.INCOMPLETE)


def _render(
    output_format: AnalyzeFormat, run: Run, incidents: Iterator[Incident], each: bool, live: bool, many_files: bool,
) -> int:
    if output_format is AnalyzeFormat.JSON:
        from logdiag.report.json import write_json

        return write_json(run, incidents, sys.stdout)
    if output_format is AnalyzeFormat.JSONL:
        from logdiag.report.json import write_jsonl

        return write_jsonl(incidents, sys.stdout, run)
    if output_format is AnalyzeFormat.MARKDOWN:
        from logdiag.report.markdown import write_markdown

        return write_markdown(run, incidents, sys.stdout, each=each)
    if output_format is AnalyzeFormat.DIGEST:
        from logdiag.report.digest import write_digest

        return write_digest(run, incidents, sys.stdout, each=each, many_files=many_files)
    from logdiag.report.text import write_text

    return write_text(run, incidents, _StdoutConsole(), each=each, live=live, many_files=many_files)


def _filtered(run: Run) -> None:
    """One line on stderr when the filters left incidents out (issue 29)."""
    if run.filtered_incidents:
        _stderr().print(f"logdiag: {plural(run.filtered_incidents, 'incident')} left out by the filters", markup=False)


def _stopped(run: Run) -> str:
    stats = run.tracker.stats
    return printable(
        f"logdiag: stopped after {plural(stats.records, 'record')}: {plural(run.incident_count, 'incident')}, "
        f"{plural(len(run.tracker.sessions), 'session')} open, "
        f"{stats.evicted_sessions + stats.idle_sessions} evicted"
    )


class SummaryFormat(str, Enum):
    """Output formats of ``logdiag summary``."""

    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


@app.command(short_help="Write incidents, records and other errors as Parquet.")
def export(
    paths: PathsArg,
    output: Annotated[
        str, typer.Option("--output", "-o", help="The export directory (created if need be).", show_default=False)
    ],
    host: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--host", help="Name of the server, stored in every row (to combine exports of many hosts)."),
    ] = None,
    partition_by: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--partition-by", help="'day': hive-style date=YYYY-MM-DD/ folders."),
    ] = None,
    log_line_prefix: PrefixOpt = None,
    input_format: InputFormatOpt = None,
    on_bad_line: OnBadLineOpt = None,
    quiet: QuietOpt = False,
    fast_path: Annotated[
        bool,
        typer.Option(
            "--fast-path/--no-fast-path",
            help="Analyse files with the pre-filter, and have polars read csvlog, jsonlog and stderr records again.",
        ),
    ] = True,
) -> None:
    """Write incidents, records and other errors as Parquet (zstd), incrementally.

    \b
    Example:
      logdiag export /var/log/postgresql -o exports --host db1 --partition-by day
    """
    from logdiag.export.parquet import export as run_export

    with _handled():
        result = run_export(
            paths, output, host=host, partition_by=partition_by, log_line_prefix=log_line_prefix,
            format=input_format, on_bad_line=on_bad_line or OnBadLine.SKIP, fast=fast_path, notify=_note,
        )
        unread_files = result.run is not None and _skipped_files_warning(result.run.reader.skipped_files)
        if not quiet:
            console = _stderr()
            if result.run is not None:
                _summarize(result.run.inputs, show_examples=on_bad_line is OnBadLine.WARN)
            for skipped in result.files_skipped:
                console.print(printable(f"{skipped}: unchanged since the last export, skipped"), markup=False)
            rows = ", ".join(plural(n, table.removesuffix("s"), table) for table, n in result.rows.items())
            files = plural(len(result.parts), "file")
            console.print(printable(f"exported {rows} to {result.output} ({files})"), markup=False)
        incomplete = (result.run is not None and _input_warnings(result.run.inputs, on_bad_line)) or unread_files
    if incomplete:
        raise typer.Exit(ExitStatus.INCOMPLETE)


@app.command(short_help="Summarise exported incidents: constraints, hosts, shapes.")
def summary(
    path: Annotated[
        str, typer.Argument(help="An export directory, or a Parquet file or dataset of incidents.", metavar="DIR")
    ],
    output_format: Annotated[
        SummaryFormat, typer.Option("--format", "-f", help="text, json or markdown.", case_sensitive=False)
    ] = SummaryFormat.TEXT,
    top: Annotated[int, typer.Option("--top", min=1, help="How many culprit statement shapes to show.")] = 10,
) -> None:
    """Summarise an export: incidents by constraint (keys, shapes), table, client, host, hour; other errors.

    \b
    Example:
      logdiag summary exports/
    """
    from logdiag.export.summary import summarize
    from logdiag.report.summary import write_summary_json, write_summary_markdown, write_summary_text

    with _handled():
        result = summarize(path, top=top)
        for note in result.notes:
            _note(note)
        if output_format is SummaryFormat.JSON:
            write_summary_json(result, sys.stdout)
        elif output_format is SummaryFormat.MARKDOWN:
            write_summary_markdown(result, sys.stdout)
        else:
            write_summary_text(result, _StdoutConsole())


@app.command(short_help="Print the records logdiag understood in a log.")
def records(
    paths: PathsArg,
    output_format: Annotated[
        RecordsFormat,
        typer.Option("--format", "-f", help="jsonl: one object per record; table: for people.", case_sensitive=False),
    ] = RecordsFormat.JSONL,
    log_line_prefix: PrefixOpt = None,
    input_format: InputFormatOpt = None,
    lc_messages: LcMessagesOpt = None,
    on_bad_line: OnBadLineOpt = None,
    max_line_bytes: MaxLineOpt = MAX_LINE_BYTES,
    quiet: QuietOpt = False,
) -> None:
    """Print the records logdiag understood in a log: what did it make of my log?

    \b
    Example:
      logdiag records sample_logs/postgresql.csv --format table
    """
    with _handled():
        reader = LogReader(
            paths, log_line_prefix=log_line_prefix, format=input_format, on_bad_line=on_bad_line or OnBadLine.SKIP,
            lc_messages=lc_messages, max_line_bytes=max_line_bytes,
        )
        if output_format is RecordsFormat.JSONL:
            write_jsonl(reader, sys.stdout)
        else:
            write_table(reader, _StdoutConsole())
        sys.stdout.flush()
        if not quiet:
            _summarize(reader.inputs, show_examples=on_bad_line is OnBadLine.WARN)
        unread_files = _skipped_files_warning(reader.skipped_files)
        incomplete = _input_warnings(reader.inputs, on_bad_line) or unread_files
    if incomplete:
        raise typer.Exit(ExitStatus.INCOMPLETE)


def _note(note: str) -> None:
    """A library's one-line note for the user, on stderr (even with ``--quiet``)."""
    _stderr().print(printable(f"logdiag: {note}"), markup=False)


def _following(name: str) -> None:
    """``--follow``: say which file is read, at the start and at every switch."""
    _stderr().print(printable(f"logdiag: following {name}"), markup=False)


def _following_notice(notice: FollowNotice) -> None:
    """``--follow``: a truncation, a wait, or (a warning, even with ``--quiet``) a possible loss."""
    _stderr().print(printable(f"logdiag: {'warning: ' if notice.loss else ''}{notice.text}"), markup=False)


def _loss_only(notice: FollowNotice) -> None:
    """``--follow --quiet``: only the warnings of a possible loss."""
    if notice.loss:
        _following_notice(notice)


def _skipped_files_warning(skipped: Sequence[SkippedFile]) -> bool:
    """One line on stderr (even with ``--quiet``) for each input that could not be read, and one
    for the files of a directory, glob or archive that were not logs and were skipped: how many,
    and which. Whether any could not be read (the run is incomplete: exit 3)."""
    unread = [s for s in skipped if s.unread]
    for item in unread:
        _stderr().print(printable(
            f"logdiag: warning: {item.reason}; the report covers the other inputs only."
        ), markup=False)
    skipped = [s for s in skipped if not s.unread]
    if skipped:
        _not_logs_warning(skipped)
    return bool(unread)


def _not_logs_warning(skipped: Sequence[SkippedFile]) -> None:
    shown = ", ".join(f"{s.name} ({s.reason})" for s in skipped[:MAX_EXAMPLES])
    more = f" and {len(skipped) - MAX_EXAMPLES} more" if len(skipped) > MAX_EXAMPLES else ""
    files = "file is not a PostgreSQL log" if len(skipped) == 1 else "files are not PostgreSQL logs"
    _stderr().print(printable(f"logdiag: warning: {len(skipped)} {files}, skipped: {shown}{more}"), markup=False)


def _input_warnings(inputs: Sequence[InputStats], on_bad_line: OnBadLine | None) -> bool:
    """Say on stderr (even with ``--quiet``) of each input whose lines were not all read, with an
    example and what to do, of each compressed input that ends early, of each file that shrank
    while it was read, and of each inferred prefix the lines left unsettled; and whether the run is
    incomplete (exit 3). Lines skipped under an explicit ``--on-bad-line skip`` are the user's
    choice: counted in the summary, no more; a compressed input that ends early and a file that
    shrank are incomplete whatever the option."""
    console = _stderr()
    for stats in inputs:
        if stats.prefix_unsettled:
            console.print(printable(
                f"logdiag: note: {stats.file}: log_line_prefix worked out as {stats.log_line_prefix!r}, but "
                f"the lines do not settle it ({'; '.join(stats.prefix_unsettled)}); pass --log-line-prefix "
                "to be sure (psql: SHOW log_line_prefix;)."
            ), markup=False)
    # Whatever --on-bad-line says: these records were never seen.
    ended_early = [stats for stats in inputs if stats.error]
    for stats in ended_early:
        console.print(printable(
            f"logdiag: warning: {stats.file}: {stats.error}; the report covers only what came before."
        ), markup=False)
    shrank = [stats for stats in inputs if stats.lost]
    for stats in shrank:
        console.print(printable(f"logdiag: warning: {stats.file}: {stats.lost}"), markup=False)
    incomplete = bool(ended_early or shrank)
    if on_bad_line is OnBadLine.SKIP:
        return incomplete
    for stats in inputs:
        if not stats.unread:
            continue
        incomplete = True
        reasons = _reasons(stats)
        example = next((e for e in stats.examples if not e.foreign), None)
        shown = f"; e.g. line {example.line}: {example.text[:100]!r}" if example else ""
        console.print(printable(
            f"logdiag: warning: {stats.file}: {stats.unread} of {plural(stats.lines, 'line')} could not be read "
            f"({reasons}){shown}. The report covers only the lines read. {_what_to_do(stats, on_bad_line)}".rstrip()
        ), markup=False)
    return incomplete


def _reasons(stats: InputStats) -> str:
    """The skipped lines' counts by reason, most first: ``line does not match …: 43 lines; NUL bytes: 1 line``
    (a reason describes one line, and reads wrong after a count: "83840 line does not match")."""
    return "; ".join(f"{reason}: {plural(n, 'line')}" for reason, n in stats.reasons())


def _what_to_do(stats: InputStats, on_bad_line: OnBadLine | None) -> str:
    """The advice for an input with unread lines: a prefix that fits them, if one does."""
    if stats.log_line_prefix is None:
        return "" if on_bad_line is OnBadLine.WARN else "See them with --on-bad-line warn."
    fits = find_prefix(stats.unread_sample)
    if fits is not None and fits.prefix != stats.log_line_prefix:
        return f"Those lines fit --log-line-prefix {fits.prefix!r}; pass the server's setting (psql: SHOW log_line_prefix;)."
    return "Pass --log-line-prefix with the server's setting (psql: SHOW log_line_prefix;)."


def _summarize(inputs: list[InputStats], show_examples: bool) -> None:
    console = _stderr()
    for stats in inputs:
        what = stats.format or "empty"
        if stats.log_line_prefix is not None:
            what += f", log_line_prefix {stats.log_line_prefix!r}" + (" (inferred)" if stats.prefix_inferred else "")
        if stats.lc_messages not in (None, "en"):
            what += f", lc_messages {stats.lc_messages}"
        line = f"{stats.file}: {what}: {plural(stats.records, 'record')} from {plural(stats.lines, 'line')}"
        if stats.skipped_total:
            line += f", {stats.skipped_total} skipped ({_reasons(stats)})"
        if stats.blank:
            line += f", {stats.blank} blank"
        if stats.recoded:
            line += f", {stats.recoded} not UTF-8 (read as Latin-1)"
        console.print(printable(line), markup=False)
        if show_examples:
            for example in stats.examples:
                console.print(
                    printable(f"  line {example.line}: {example.reason}: {example.text[:100]!r}"), markup=False
                )
            hidden = stats.skipped_total - len(stats.examples)
            if hidden > 0:
                console.print(f"  ... and {hidden} more", markup=False)


class Terminated(KeyboardInterrupt):
    """SIGTERM: ends logdiag the way Ctrl-C does."""


@contextmanager
def _handled() -> Iterator[None]:
    """Map every way a run can end to an exit code and at most one line on stderr."""
    try:
        yield
    except LogdiagError as exc:
        _stderr().print(printable(f"logdiag: error: {exc}"), markup=False)
        raise typer.Exit(ExitStatus.ERROR) from None
    except Terminated:
        _stopping()
        raise typer.Exit(ExitStatus.TERMINATED) from None
    except KeyboardInterrupt:
        _stopping()
        raise typer.Exit(ExitStatus.INTERRUPTED) from None
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly; keep Python from complaining at exit.
        _stdout_to_devnull()
        raise typer.Exit(ExitStatus.PIPE_CLOSED) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # a bug in logdiag: one line, and the traceback only when asked for
        if os.environ.get("LOGDIAG_DEBUG"):
            raise
        _stderr().print(
            printable(f"logdiag: internal error: {type(exc).__name__}: {exc} (LOGDIAG_DEBUG=1 shows where; please report it)"),
            markup=False,
        )
        raise typer.Exit(ExitStatus.INTERNAL) from None


def _stopping() -> None:
    """Stopping on a signal: another Ctrl-C or SIGTERM (a terminal's, a service manager's second)
    must not break the exit into a traceback (``Exception ignored in atexit callback``) or a
    death by signal instead of exit 130 or 143 (issue 27)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _exit_on_closed_pipe(self: Console) -> None:
    """rich's ``Console.on_broken_pipe`` for the consoles logdiag does not make (typer's, for
    ``--help | head``): rich's quiet exit, with logdiag's code for a closed pipe instead of 1."""
    self.quiet = True
    _stdout_to_devnull()
    raise SystemExit(ExitStatus.PIPE_CLOSED)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point; ``argv`` (default ``sys.argv[1:]``) lets tests run the command
    as a person does, usage errors included."""
    signal.signal(signal.SIGTERM, _terminate)
    Console.on_broken_pipe = _exit_on_closed_pipe  # type: ignore[method-assign]
    sys.exit(usage.run(app, argv))
