"""The fast path: find, with vectorised scans, the few records a diagnosis needs in a big log.

Most of a big log is traffic that ends in no error. Two passes over an uncompressed file pick the
lines that matter, and only those go through the same readers, session tracker and diagnosis as
every other input, so the fast path and the streaming path give the same incidents:

1. **Markers** (C-speed substring search over newline-aligned chunks): every ERROR record is found; those
   that are constraint violations name the sessions to keep whole (by session id, or by pid when
   the log has none); the other errors are kept alone, for ``other_errors``.
2. **Lines** (polars, in chunks so that memory stays flat): each physical line gets its record's
   session key (for csvlog, record boundaries come from the parity of double quotes, so quoted
   newlines are exact); the lines of kept sessions, of kept records, of CREATE/ALTER TABLE
   statements (the catalog) and of the first BEGIN/COMMIT (which tells the tracker that the log
   shows transaction boundaries) are handed on with their exact line numbers.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from logdiag.messages import parse_violation
from logdiag.readers.detect import LogFormat
from logdiag.readers.prefix import LinePrefix
from logdiag.readers.stats import InputStats

#: Files smaller than this are read the ordinary way: the fast path would not pay for itself.
FAST_PATH_MIN_BYTES = 16 * 1024 * 1024
CHUNK_BYTES = 16 * 1024 * 1024
FORMATS = frozenset({LogFormat.CSVLOG, LogFormat.JSONLOG, LogFormat.STDERR})

_CSV_HEAD = re.compile(
    rb'"?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?[^,]*,(?:"(?:[^"]|"")*"|[^,]*),(?:"(?:[^"]|"")*"|[^,]*),'
    rb'\d*,(?:"[^"]*"|[^,]*),(?P<sid>[^,]*),\d*,(?:"(?:[^"]|"")*"|[^,]*),[^,]*,[^,]*,\d*,ERROR,(?P<state>[0-9A-Z]{5}),'
)
# The same, for polars (Rust regex): a csvlog record's first line, up to its session id.
_DDL = r"(?i)\b(?:create|alter)\b.{0,200}?\btable\b"
_BOUNDARY = r"(?i)(?:statement|execute [^ :]{1,200}): \s*(?:begin|start\s+transaction|commit|end|rollback|abort)\b"


@dataclass
class Selection:
    """What the marker pass decided to keep."""

    sessions: set[str] = field(default_factory=set)  # keys (session id or pid) of failing sessions
    records: set[int] = field(default_factory=set)  # start lines of other errors, kept alone


def eligible(path: str, fmt: LogFormat, compression: str | None, min_bytes: int = FAST_PATH_MIN_BYTES) -> bool:
    """Whether the fast path applies: a big, plain, regular file in csvlog, jsonlog or stderr."""
    if fmt not in FORMATS or compression is not None or path == "-":
        return False
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return os.path.isfile(path) and stat.st_size >= min_bytes


# --- pass 1: markers ----------------------------------------------------------------------

def _chunks(path: str, size: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(lines before the chunk, the chunk) for newline-aligned chunks of the file.

    Reading in chunks rather than mapping the file keeps the resident memory flat whatever the
    size of the log (mapped file pages count as resident once touched).
    """
    lines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(size or CHUNK_BYTES):
            if not chunk.endswith(b"\n"):
                chunk += handle.readline()
            yield lines, chunk
            lines += chunk.count(b"\n")


def _lines_with(path: str, marker: bytes) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, the line) for every line that contains ``marker``."""
    for before, chunk in _chunks(path):
        position, line, counted = 0, before + 1, 0
        while (hit := chunk.find(marker, position)) >= 0:
            start = chunk.rfind(b"\n", 0, hit) + 1
            end = chunk.find(b"\n", hit)
            end = len(chunk) if end < 0 else end
            line += chunk.count(b"\n", counted, start)
            counted = start
            yield line, chunk[start:end]
            position = end + 1


def select(path: str, fmt: LogFormat, prefix: LinePrefix | None) -> Selection:
    """Pass 1: the sessions to keep whole, and the other errors' lines to keep alone."""
    selection = Selection()
    if fmt is LogFormat.CSVLOG:
        found = _csv_errors(path)
    elif fmt is LogFormat.JSONLOG:
        found = _json_errors(path)
    else:
        assert prefix is not None
        found = _stderr_errors(path, prefix)
    for line, key, is_violation in found:
        if is_violation:
            selection.sessions.add(key)
        else:
            selection.records.add(line)
    return selection


def _csv_errors(path: str) -> Iterator[tuple[int, str, bool]]:
    for number, line in _lines_with(path, b",ERROR,"):
        head = _CSV_HEAD.match(line)
        if head is None:
            continue
        state = head["state"].decode()
        violation = state.startswith("23") or state == "40002"
        yield number, head["sid"].decode(), violation


def _json_errors(path: str) -> Iterator[tuple[int, str, bool]]:
    for number, line in _lines_with(path, b'"error_severity":"ERROR"'):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        state = obj.get("state_code") or ""
        violation = parse_violation(obj.get("message"), obj.get("detail"), state or None) is not None
        yield number, str(obj.get("session_id")), violation


def _stderr_errors(path: str, prefix: LinePrefix) -> Iterator[tuple[int, str, bool]]:
    use_session = "c" in prefix.escapes
    for number, line in _lines_with(path, b"ERROR:"):
        found = prefix.match(line.decode("utf-8", "replace"))
        if found is None or found.keyword != "ERROR":
            continue
        text = found.text
        state = found.fields.sqlstate
        code = re.match(r"(?=[0-9A-Z]{0,4}\d)([0-9A-Z]{5}): ", text)
        if code:
            state, text = state or code[1], text[code.end() :]
        key = found.fields.session_id if use_session else found.fields.pid
        if key is None:
            continue
        yield number, str(key), parse_violation(text, None, state) is not None


# --- pass 2: lines --------------------------------------------------------------------------

@dataclass
class _Carry:
    """State that crosses chunk boundaries."""

    line: int = 0  # physical lines before this chunk
    offset: int = 0  # bytes before this chunk
    parity: int = 0  # csvlog: double quotes before this chunk, modulo 2
    start: int | None = None  # the line the record the chunk starts in started at
    keep: bool = False  # whether that record is kept
    boundary_kept: bool = False


def selected_lines(
    path: str, fmt: LogFormat, prefix: LinePrefix | None, selection: Selection,
    stats: InputStats, chunk_bytes: int | None = None,
) -> Iterator[tuple[int, str]]:
    """Pass 2: the kept lines, with their 1-based physical line numbers, in file order."""
    import polars as pl

    carry = _Carry()
    keys = pl.Series("keys", sorted(selection.sessions), dtype=pl.Utf8)
    for _, chunk in _chunks(path, chunk_bytes):
        yield from _chunk(pl, chunk, fmt, prefix, keys, selection.records, carry, stats)
    stats.lines = carry.line


def _markers(fmt: LogFormat, keys: list[str]) -> list[str]:
    """Literal text that appears in a record of a kept session (Aho-Corasick, no regex captures)."""
    if fmt is LogFormat.CSVLOG:
        return [f",{key}," for key in keys]
    return [f'"session_id":"{key}"' for key in keys]


def _chunk(pl, chunk: bytes, fmt: LogFormat, prefix: LinePrefix | None, keys, kept_records: set[int],
           carry: _Carry, stats: InputStats) -> Iterator[tuple[int, str]]:
    text = pl.col("text")
    frame = pl.scan_lines(chunk, name="text").with_row_index("n").with_columns(
        (pl.col("n").cast(pl.Int64) + carry.line + 1).alias("line"),
    )
    if fmt is LogFormat.CSVLOG:
        quotes = text.str.count_matches('"', literal=True).cast(pl.Int64)
        before = (quotes.cum_sum() - quotes + carry.parity) % 2
        frame = frame.with_columns(is_start=before == 0, quotes=quotes)
    elif fmt is LogFormat.JSONLOG:
        frame = frame.with_columns(is_start=pl.lit(True))
    if fmt in (LogFormat.CSVLOG, LogFormat.JSONLOG):
        markers = _markers(fmt, keys.to_list())
        in_session = text.str.contains_any(markers) if markers else pl.lit(False)
    else:
        assert prefix is not None
        name = _key_group(prefix)
        groups = text.str.extract_groups(prefix.regex.pattern)
        frame = frame.with_columns(
            key=groups.struct.field(name) if name else pl.lit(None, pl.Utf8),
            keyword=groups.struct.field("keyword"),
        ).with_columns(is_start=pl.col("keyword").is_not_null())
        in_session = pl.col("key").is_in(keys.implode())
    boundary = text.str.contains(_BOUNDARY) if not carry.boundary_kept else pl.lit(False)
    frame = frame.with_columns(
        start=pl.when("is_start").then(pl.col("line")),
        kept=pl.when("is_start").then(in_session),
        ddl=pl.when("is_start").then(text.str.contains(_DDL)),
        boundary=pl.when("is_start").then(boundary),
    ).collect()
    if fmt is LogFormat.CSVLOG:
        carry.parity = int((frame["quotes"].sum() + carry.parity) % 2)
    first_boundary = frame.filter(pl.col("boundary"))["line"].head(1)
    if len(first_boundary):
        carry.boundary_kept = True
    special = pl.concat([
        frame.filter(pl.col("ddl"))["line"],
        pl.Series("line", sorted(kept_records), dtype=pl.Int64),
        first_boundary,
    ])
    # A record's continuation lines (quoted newlines, TAB lines) follow the decision of its start.
    frame = frame.with_columns(
        pl.col("start").forward_fill().fill_null(pl.lit(carry.start, pl.Int64)),
        pl.col("kept").forward_fill().fill_null(carry.keep),
    ).with_columns(keep=pl.col("kept") | pl.col("start").is_in(special.implode()))
    chosen = frame.filter("keep")
    _count(frame, fmt, stats)
    last = frame.tail(1)
    carry.start = last["start"][0]
    carry.keep = bool(last["keep"][0])
    carry.line += frame.height
    yield from zip(chosen["line"], chosen["text"], strict=True)


def _key_group(prefix: LinePrefix) -> str | None:
    """The name of the regex group of the session key (%c, else %p) in the compiled prefix."""
    wanted = "c" if "c" in prefix.escapes else "p"
    return next((name for name, letter in prefix.groups.items() if letter == wanted), None)


def _count(frame, fmt: LogFormat, stats: InputStats) -> None:
    """Records and unusable lines, counted the vectorised way (the fast path reads no other)."""
    import polars as pl

    text = pl.col("text")
    is_blank = text.str.contains(r"^\s*$")
    blank = frame.filter(is_blank).height
    stats.blank += blank
    if fmt is LogFormat.CSVLOG:
        starts = frame.filter(pl.col("is_start") & ~is_blank)
        good = starts.filter(text.str.contains(r'^"?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d')).height
        stats.records += good
        if starts.height - good:
            stats.skipped["not a csvlog record"] += starts.height - good
    elif fmt is LogFormat.JSONLOG:
        lines = frame.height - blank
        good = frame.filter(text.str.contains('"error_severity":', literal=True)).height
        stats.records += good
        if lines - good:
            stats.skipped["not a jsonlog object"] += lines - good
    else:
        attachments = ("DETAIL", "HINT", "QUERY", "CONTEXT", "LOCATION", "STATEMENT")
        stats.records += frame.filter(pl.col("is_start") & ~pl.col("keyword").is_in(attachments)).height
        unmatched = frame.filter(~pl.col("is_start") & ~is_blank & ~text.str.contains(r"^\s")).height
        if unmatched:
            stats.skipped["line does not match the log_line_prefix"] += unmatched
