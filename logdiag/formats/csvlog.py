"""csvlog records, in every PostgreSQL version's column set, with exact physical line numbers.

A record may span lines (quoted newlines). It is complete when its double quotes balance, since
doubled quotes count twice; this finds record boundaries without a CSV parser and keeps a stray
quote on a damaged line from swallowing the rest of the file. The rule is here twice, for the two
ways records are cut: :func:`split_records` over decoded lines as they come, :func:`record_end`
back from the end of a block of bytes (the export's frames); the fast path's vectorised count
(:func:`logdiag.fastpath.scan._quote_runs`) is its polars twin.
"""

from __future__ import annotations

import csv
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping

from logdiag.formats.base import (
    Continuation,
    ErrorLine,
    FieldsFormat,
    Lines,
    LogFormat,
    Prefilter,
    blocked_by_marker,
)
from logdiag.formats.mapping import CSVLOG_KEYS, record_from_mapping
from logdiag.formats.prefix import LinePrefix
from logdiag.formats.timestamps import parse_timestamp
from logdiag.lang import ENGLISH, Language, severity_of
from logdiag.records import SEVERITIES, LogRecord, Severity, Source
from logdiag.source.framing import Tick
from logdiag.source.stats import InputStats, size_text

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

_BASE = (
    "log_time", "user_name", "database_name", "process_id", "connection_from", "session_id",
    "session_line_num", "command_tag", "session_start_time", "virtual_transaction_id",
    "transaction_id", "error_severity", "sql_state_code", "message", "detail", "hint",
    "internal_query", "internal_query_pos", "context", "query", "query_pos", "location",
)
#: Column names by column count: 8.4; 9.0-12 (application_name); 13 (backend_type); 14+.
COLUMNS: dict[int, tuple[str, ...]] = {
    22: _BASE,
    23: (*_BASE, "application_name"),
    24: (*_BASE, "application_name", "backend_type"),
    26: (*_BASE, "application_name", "backend_type", "leader_pid", "query_id"),
    # Seen in pgBadger's fixtures: 14+'s layout without leader_pid.
    25: (*_BASE, "application_name", "backend_type", "query_id"),
}
#: A record's first line starts with its timestamp (quoted when it is a csv field of its own).
RECORD_START_PATTERN = r'^"?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d'
RECORD_START = re.compile(RECORD_START_PATTERN)
#: What a csvlog record's first line looks like up to its pid, for telling the format.
LOOKS_LIKE = re.compile(
    r'"?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? [^,"]{1,32}"?,(?:"(?:[^"]|"")*"|[^,]*),'
    r'(?:"(?:[^"]|"")*"|[^,]*),\d*,'
)
# Give up on an unbalanced record after this many lines and re-read them one by one.
MAX_RECORD_LINES = 200_000


def split_records(lines: Lines, stats: InputStats) -> Iterator[tuple[int, str]]:
    """Group physical lines into CSV records: yield ``(first_line, record_text)``."""
    source = iter(lines)
    replay: deque[tuple[int, str]] = deque()
    pending: list[tuple[int, str]] = []
    quotes = size = 0
    while True:
        item: tuple[int, str] | Tick | None
        if replay:
            item = replay.popleft()
        else:
            item = next(source, None)
            if item is None:
                break
        if isinstance(item, Tick):
            continue
        number, text = item
        if not pending and not RECORD_START.match(text):
            if text.strip():
                stats.skip(number, "not a csvlog record", text)
            else:
                stats.blank += 1
            continue
        pending.append(item)
        quotes += text.count('"')
        size += len(text) + 1
        if quotes % 2 == 0:
            yield pending[0][0], "\n".join(t for _, t in pending)
            pending, quotes, size = [], 0, 0
        elif len(pending) > MAX_RECORD_LINES or size > stats.cuts.limit:
            replay.extendleft(reversed(pending[1:]))
            too_long = f"record longer than {size_text(stats.cuts.limit)} (--max-line-bytes)"
            stats.skip(pending[0][0], too_long if size > stats.cuts.limit else "unterminated quoted field", pending[0][1])
            pending, quotes, size = [], 0, 0
    while pending:  # input ended inside a quoted field: a truncated record
        first_line, first_text = pending[0]
        stats.skip(first_line, "truncated csvlog record", first_text)
        rest = pending[1:]
        pending, quotes = [], 0
        for item in rest:  # the lines after its start may still hold complete records
            if not pending and not RECORD_START.match(item[1]):
                stats.skip(item[0], "truncated csvlog record", item[1])
                continue
            pending.append(item)
            quotes += item[1].count('"')
            if quotes % 2 == 0:
                yield pending[0][0], "\n".join(t for _, t in pending)
                pending, quotes = [], 0


def record_end(data: bytes, start: int, end: int) -> int:
    """Where the last whole record of ``data[start:end]`` ends, a record starting at ``start``
    (:data:`~logdiag.source.framing.RecordEnd`): at a newline after an even number of double
    quotes, as in :func:`split_records`; 0 when none does."""
    cut = data.rfind(b"\n", start, end) + 1
    if not cut:
        return cut
    quotes = data.count(b'"', start, cut)
    while cut > start and quotes % 2:
        before = max(data.rfind(b"\n", start, cut - 1) + 1, start)
        quotes -= data.count(b'"', before, cut)
        cut = before
    return cut if cut > start else 0


def read_csvlog(lines: Lines, stats: InputStats, file: str) -> Iterator[LogRecord]:
    """Yield a record per csvlog row; rows that are not PostgreSQL's are counted and skipped."""
    current: list[tuple[int, str]] = [(0, "")]  # the record being read: first line, text

    def texts() -> Iterator[str]:
        for first_line, text in split_records(lines, stats):
            current[0] = (first_line, text)
            yield text

    # One reader for the whole input: split_records hands it complete records, one per row.
    rows = csv.reader(texts())
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error:
            stats.skip(current[0][0], "malformed csvlog record", current[0][1])
            rows = csv.reader(texts())
            continue
        layout = LAYOUTS.get(len(row))
        if layout is None or (severity_of(row[11]) or row[11]) not in SEVERITIES:
            stats.skip(current[0][0], f"csvlog record with {len(row)} columns", current[0][1])
            continue
        stats.records += 1
        yield record_from_row(row, layout, Source(file, current[0][0]))


#: For each column count, the position of each record field's column (None: not in this layout).
LAYOUTS: dict[int, dict[str, int | None]] = {
    count: {f: (names.index(c) if c in names else None) for f, c in CSVLOG_KEYS.items()}
    for count, names in COLUMNS.items()
}


def record_from_row(row: list[str], layout: Mapping[str, int | None], source: Source) -> LogRecord:
    """A record from a csvlog row, by position (the hot path of csvlog reading)."""

    def text(field: str) -> str | None:
        position = layout[field]
        return (row[position] or None) if position is not None else None

    def number(field: str) -> int | None:
        position = layout[field]
        value = row[position] if position is not None else ""
        # ASCII digits, as many as a 64-bit number has: "²".isdigit() holds, and int() refuses
        # it, or more than 4,300 digits (a damaged line, found by tests/test_fuzz_readers.py).
        digits = value[1:] if value[:1] == "-" else value
        return int(value) if 0 < len(digits) <= 20 and digits.isascii() and digits.isdigit() else None

    return LogRecord(
        timestamp=parse_timestamp(row[0]),
        pid=number("pid"),
        session_id=row[5] or None,
        session_line=number("session_line"),
        vxid=row[9] or None,
        xid=number("xid"),
        user=row[1] or None,
        database=row[2] or None,
        application=text("application"),
        client=row[4] or None,
        backend_type=text("backend_type"),
        severity=Severity(severity_of(row[11]) or row[11]),  # translated with lc_messages (issue 25)
        sqlstate=row[12] or None,
        message=row[13] or None,
        detail=row[14] or None,
        hint=row[15] or None,
        context=row[18] or None,
        statement=row[19] or None,
        query=row[16] or None,
        command_tag=row[7] or None,
        query_id=number("query_id"),
        source=source,
    )


def record_from_columns(row: Mapping[str, object], source: Source) -> LogRecord:
    """A record from csvlog column names (also what CloudNativePG's JSON uses)."""
    return record_from_mapping(row, CSVLOG_KEYS, source)


# --- what the fast path needs ---------------------------------------------------------------

# The fields before the session id: time, user, database (quoted), pid, client (quoted).
_FIELDS_BEFORE_SESSION = r'(?:"[^"]*"|[^,]*),(?:"(?:[^"]|"")*"|[^,]*),(?:"(?:[^"]|"")*"|[^,]*),[^,]*,(?:"[^"]*"|[^,]*),'
#: An ERROR record's first line, up to its SQLSTATE (ERROR as the server's language prints it).
_ERROR_HEAD = (
    rb'"?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?[^,]*,(?:"(?:[^"]|"")*"|[^,]*),(?:"(?:[^"]|"")*"|[^,]*),'
    rb'\d*,(?:"[^"]*"|[^,]*),(?P<sid>[^,]*),\d*,(?:"(?:[^"]|"")*"|[^,]*),[^,]*,[^,]*,\d*,%s,(?P<state>[0-9A-Z]{5}),'
)
# The session id is the first ``,<hex>.<hex>,<digits>`` of a line (the fields before it are a
# timestamp, quoted names, a pid and a quoted host): found without anchoring, which is fast.
_SESSION_FIELD = r",([0-9a-f]{1,16}\.[0-9a-f]{1,16}),\d"
_LINE_NUMBER_FIELD = r",[0-9a-f]{1,16}\.[0-9a-f]{1,16},(\d+),"  # the field after the session id
# A line that ends like this ends outside any quoted field, so the next line starts a record:
# the last field but (with 14's leader_pid and query_id) two is the backend type, and PostgreSQL
# doubles every quote inside a field, so a single quote after a character other than a comma
# closes a field. About every line ends so: only the others need their quotes counted.
_RECORD_END = r',"[^",]+"(?:,\d*,-?\d+)?$'


def _error_lines(language: Language) -> Callable[[Iterable[tuple[int, bytes]]], Iterator[ErrorLine]]:
    error_head = re.compile(_ERROR_HEAD % re.escape(language.severity_word("ERROR").encode()))

    def error_lines(lines: Iterable[tuple[int, bytes]]) -> Iterator[ErrorLine]:
        for position, line in lines:
            head = error_head.match(line)
            if head is not None:
                yield ErrorLine(position, head["sid"].decode(), head["state"].decode(), None)

    return error_lines


def _session_test(alternation: str) -> tuple[str, str | None]:
    return "," + alternation + ",", "^" + _FIELDS_BEFORE_SESSION + alternation + ","


class Csvlog(FieldsFormat):
    """PostgreSQL's csvlog, in every version's column set."""

    kind = LogFormat.CSVLOG

    def prefilter(self, prefix: LinePrefix | None, language: Language = ENGLISH) -> Prefilter:
        # csvlog's error_severity is in the server's language: ",FEHLER," (issue 25).
        return Prefilter(
            marker=f",{language.severity_word('ERROR')},".encode(), error_lines=_error_lines(language),
            record_start=RECORD_START_PATTERN,
            continuation=Continuation.QUOTED, unmatched="not a csvlog record", session_test=_session_test,
            session_field=_SESSION_FIELD, line_number_field=_LINE_NUMBER_FIELD, record_end=_RECORD_END,
            blocked_by=blocked_by_marker(language),
        )


CSVLOG = Csvlog(read_csvlog)
