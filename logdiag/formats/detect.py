"""Tell an input's format, and for stderr-style logs its ``log_line_prefix``, from its first lines."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Sequence

from logdiag.errors import InputError
from logdiag.formats.base import Detection, LogFormat
from logdiag.formats.csvlog import COLUMNS as CSVLOG_COLUMNS
from logdiag.formats.csvlog import LOOKS_LIKE as CSVLOG_LOOKS_LIKE
from logdiag.formats.infer import find_prefix
from logdiag.formats.prefix import LinePrefix
from logdiag.formats.registry import format_of
from logdiag.formats.stderr import LOGPLEX_HEADER, SYSLOG_HEADER
from logdiag.lang import Language, detect_language

_TIMESTAMP_START = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")


def detect(
    sample: Sequence[str], name: str, log_line_prefix: str | None = None, format: LogFormat | None = None,
    language: Language | None = None,
) -> Detection | None:
    """Detect the format of an input from its first lines.

    Args:
        sample: the first lines of the input, decoded.
        name: the input's name, for error messages.
        log_line_prefix: the user's prefix; used as is for stderr-style formats.
        format: the user's format; skips format detection.
        language: the user's ``--lc-messages``; else the language is told from the lines.

    Returns:
        The detection, or None for an input without a single non-empty line.

    Raises:
        InputError: the format or the prefix cannot be told, with what to pass instead.
    """
    lines = [line for line in sample if line.strip()]
    if not lines:
        return None
    fmt = format or _detect_format(lines)
    if fmt is None:
        raise InputError(
            f"{name}: cannot tell the log format from its first lines; pass --input-format "
            f"({', '.join(kind.value for kind in LogFormat)})"
        )
    known = format_of(fmt)
    language = language or detect_language(lines)
    if fmt is LogFormat.CSVLOG:
        _check_csv_columns(sample, name)
    if not known.has_prefix:
        return Detection(fmt, language=language)
    bodies = known.bodies(lines)
    if format is None and fmt is LogFormat.STDERR and not any(_SERVER_MESSAGE.search(body) for body in bodies):
        raise InputError(
            f"{name}: no PostgreSQL log line in its first lines (none has a severity such as LOG: or "
            "ERROR:); if it is a server log, pass --input-format and --log-line-prefix"
        )
    if log_line_prefix is not None:
        return Detection(fmt, LinePrefix(log_line_prefix, language=language), language=language)
    found = find_prefix(bodies, language)
    if found is None:
        raise InputError(
            f"{name}: {fmt} log whose log_line_prefix cannot be worked out from its first lines; pass "
            "--log-line-prefix with the server's setting (psql: SHOW log_line_prefix;)"
        )
    return Detection(
        fmt, LinePrefix(found.prefix, language=language), inferred=True, unsettled=found.unsettled, language=language
    )


#: A server message's severity and the spaces after it (``LOG:  ``, ``FEHLER:  ``; one space in
#: some edited logs): a stderr log's lines have them, whatever the prefix and the language.
_SERVER_MESSAGE = re.compile(r"\w: ")


def _check_csv_columns(sample: Sequence[str], name: str) -> None:
    """A csvlog whose whole records in the sample all have a number of columns no PostgreSQL
    writes is no csvlog logdiag can read: one error, the same from a file and from a pipe (a pipe's
    pre-filter would read it in part, issue 27).

    Raises:
        InputError: no record of the sample has a layout of :data:`~logdiag.formats.csvlog.COLUMNS`.
    """
    rows = list(csv.reader(io.StringIO("\n".join(sample) + "\n", newline="")))[:-1]  # the last may be cut
    counts = {len(row) for row in rows if len(row) > 1}
    if counts and not counts & set(CSVLOG_COLUMNS):
        raise InputError(
            f"{name}: csv whose records have {', '.join(map(str, sorted(counts)))} columns, a layout no "
            f"PostgreSQL csvlog has ({', '.join(map(str, sorted(CSVLOG_COLUMNS)))}); if it is a csvlog "
            "that another tool changed, remove the columns it added"
        )


def _detect_format(lines: Sequence[str]) -> LogFormat | None:
    """Each sample line votes for the format it looks like; a stray first line cannot decide."""
    votes: Counter[LogFormat | str] = Counter()
    for line in lines:
        line = line.lstrip("\ufeff")
        if line.startswith("{"):
            votes["json"] += 1
        elif CSVLOG_LOOKS_LIKE.match(line):
            votes[LogFormat.CSVLOG] += 1
        elif LOGPLEX_HEADER.match(line):
            votes[LogFormat.LOGPLEX] += 1
        elif SYSLOG_HEADER.match(line):
            votes[LogFormat.SYSLOG] += 1
        elif _TIMESTAMP_START.match(line):
            votes[LogFormat.STDERR] += 1
    if not votes:
        return LogFormat.STDERR
    winner = votes.most_common(1)[0][0]
    if winner == "json":
        return _detect_json([line for line in lines if line.startswith("{")])
    return LogFormat(winner)


def _detect_json(lines: Sequence[str]) -> LogFormat | None:
    for line in lines[:20]:
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested too deep (issue 27 §8)
            continue
        if not isinstance(obj, dict):
            continue
        if "textPayload" in obj:
            return LogFormat.CLOUDSQL
        if "logger" in obj and "msg" in obj:
            return LogFormat.CNPG
        if "error_severity" in obj:
            return LogFormat.JSONLOG
    return None
