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
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from logdiag.errors import InputError
from logdiag.messages import parse_violation
from logdiag.readers.detect import LogFormat
from logdiag.readers.inputs import DECOMPRESSION_ERRORS, OpenInput
from logdiag.readers.prefix import MESSAGE_SEVERITIES, LinePrefix
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


def decompress_to_temporary(opened: OpenInput) -> IO[bytes]:
    """Decompress an input into an anonymous temporary file (in $TMPDIR), deleted on close.

    Raises:
        InputError: the temporary directory has no room, or the input is corrupt.
    """
    spool = tempfile.NamedTemporaryFile(prefix="logdiag-", suffix=".log")  # noqa: SIM115 - caller closes
    try:
        for chunk in opened.chunks():
            spool.write(chunk)
        spool.flush()
    except DECOMPRESSION_ERRORS as exc:
        spool.close()
        raise InputError(f"{opened.name}: cannot decompress it whole ({exc}); try --no-fast-path") from exc
    return spool


# --- pass 1: markers ----------------------------------------------------------------------

def _chunks(path: str, size: int | None = None) -> Iterator[bytes]:
    """Newline-aligned chunks of the file.

    Reading in chunks rather than mapping the file keeps the resident memory flat whatever the
    size of the log (mapped file pages count as resident once touched).
    """
    with open(path, "rb") as handle:
        while chunk := handle.read(size or CHUNK_BYTES):
            if not chunk.endswith(b"\n"):
                chunk += handle.readline()
            yield chunk


def _lines_with(path: str, marker: bytes) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, the line) for every line that contains ``marker``."""
    before = 0
    for chunk in _chunks(path):
        position, line, counted = 0, before + 1, 0
        while (hit := chunk.find(marker, position)) >= 0:
            start = chunk.rfind(b"\n", 0, hit) + 1
            end = chunk.find(b"\n", hit)
            end = len(chunk) if end < 0 else end
            line += chunk.count(b"\n", counted, start)
            counted = start
            yield line, chunk[start:end]
            position = end + 1
        before = line - 1 + chunk.count(b"\n", counted)


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
    for chunk in _chunks(path, chunk_bytes):
        yield from _chunk(pl, chunk, fmt, prefix, keys, selection.records, carry, stats)
    stats.lines = carry.line


_CSV_HEAD_FIELDS = r'^(?:"[^"]*"|[^,]*),(?:"(?:[^"]|"")*"|[^,]*),(?:"(?:[^"]|"")*"|[^,]*),[^,]*,(?:"[^"]*"|[^,]*),'


def _in_kept_session(pl, fmt: LogFormat, keys: list[str]):
    """Whether a record's first line belongs to a kept session, without regex captures.

    csvlog: the session id is the sixth field, so an anchored pattern with the ids as a literal
    alternation stops after a few dozen bytes a line. jsonlog: Aho-Corasick on the key and value.
    """
    text = pl.col("text")
    if not keys:
        return pl.lit(False)
    if fmt is LogFormat.CSVLOG:
        return text.str.contains(_CSV_HEAD_FIELDS + "(?:" + "|".join(re.escape(k) for k in keys) + "),")
    return text.str.contains_any([f'"session_id":"{key}"' for key in keys])


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
        in_session = _in_kept_session(pl, fmt, keys.to_list())
    else:
        assert prefix is not None
        letter = "c" if "c" in prefix.escapes else "p"
        kept_keys = keys.to_list()
        frame = frame.with_columns(
            is_start=text.str.contains(prefix.regex.pattern),
            is_message=text.str.contains(LinePrefix(prefix.format, keywords=MESSAGE_SEVERITIES).regex.pattern),
        )
        if kept_keys:
            alternation = "(?:" + "|".join(re.escape(k) for k in kept_keys) + ")"
            in_session = text.str.contains(LinePrefix(prefix.format, overrides={letter: alternation}).regex.pattern)
        else:
            in_session = pl.lit(False)
    # Cheap literal tests first; the regular expressions run only on the few lines they leave.
    frame = frame.with_columns(
        kept=pl.when("is_start").then(in_session),
        maybe_ddl=pl.col("is_start") & text.str.contains_any(["table"], ascii_case_insensitive=True),
        short=text.str.len_bytes() < 16,
    ).collect()
    if fmt is LogFormat.CSVLOG:
        carry.parity = int((frame["quotes"].sum() + carry.parity) % 2)
    special = [frame.filter(pl.col("maybe_ddl")).filter(text.str.contains(_DDL))["line"]]
    if fmt is LogFormat.STDERR and not carry.boundary_kept:
        # Only stderr without %v needs it: the first BEGIN/COMMIT says the log shows boundaries.
        first = frame.filter(pl.col("is_start") & text.str.contains(_BOUNDARY))["line"].head(1)
        carry.boundary_kept = bool(len(first))
        special.append(first)
    special.append(pl.Series("line", sorted(kept_records), dtype=pl.Int64))
    # A record's continuation lines (quoted newlines, TAB lines) follow the decision of its start.
    frame = frame.with_columns(
        start=pl.when("is_start").then(pl.col("line")).forward_fill().fill_null(pl.lit(carry.start, pl.Int64)),
        kept=pl.col("kept").forward_fill().fill_null(carry.keep),
    ).with_columns(keep=pl.col("kept") | pl.col("start").is_in(pl.concat(special).implode()))
    chosen = frame.filter("keep")
    _count(frame, fmt, stats)
    carry.start = frame["start"][-1]
    carry.keep = bool(frame["keep"][-1])
    carry.line += frame.height
    yield from zip(chosen["line"], chosen["text"], strict=True)


def _count(frame, fmt: LogFormat, stats: InputStats) -> None:
    """Records and unusable lines, counted the vectorised way (the fast path reads no other)."""
    import polars as pl

    text = pl.col("text")
    # Blank lines are short: look for them only among short lines.
    short = frame.filter(pl.col("short"))
    blank = short.filter(text.str.contains(r"^\s*$") & ~text.str.starts_with("\t"))
    if fmt is LogFormat.CSVLOG:
        stats.blank += blank.filter(pl.col("is_start")).height
        starts, good = frame.select(
            starts=pl.col("is_start").sum()
            - (pl.col("is_start") & pl.col("short") & text.str.contains(r"^\s*$")).sum(),
            good=(pl.col("is_start") & text.str.contains(r'^"?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d')).sum(),
        ).row(0)
        stats.records += good
        if starts - good:
            stats.skipped["not a csvlog record"] += starts - good
    elif fmt is LogFormat.JSONLOG:
        stats.blank += blank.height
        good = frame.select(text.str.contains('"error_severity":', literal=True).sum()).item()
        stats.records += good
        if frame.height - blank.height - good:
            stats.skipped["not a jsonlog object"] += frame.height - blank.height - good
    else:
        stats.blank += blank.height
        records, unmatched = frame.select(
            records=pl.col("is_message").sum(),
            unmatched=(~pl.col("is_start") & ~text.str.contains(r"^\s")).sum(),
        ).row(0)
        stats.records += records
        unmatched -= blank.filter(~text.str.contains(r"^\s")).height
        if unmatched:
            stats.skipped["line does not match the log_line_prefix"] += unmatched
