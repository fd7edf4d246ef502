"""Every record of a csvlog, jsonlog or stderr file as polars frames, for ``records.parquet``.

Building a :class:`~logdiag.records.LogRecord` in Python costs some 50 µs a record: exported that
way, a 1 GB csvlog took three and a half minutes. polars parses csvlog (quoted newlines included)
and jsonlog itself, and stderr lines with the compiled prefix (:mod:`logdiag.fastpath.stderr_frames`);
this module turns its columns into the records table's, with the values the readers give (empty
text is no value, timestamps in the zone the server printed, physical line numbers), a block at
a time. A block it cannot map exactly raises :class:`NotExact`, and the caller reads that file
record by record instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from logdiag.fastpath.frames import NotExact, utc_instants
from logdiag.fastpath.stderr_frames import message_starts, stderr_frame
from logdiag.formats import csvlog
from logdiag.formats.base import LogFormat
from logdiag.formats.csvlog import COLUMNS
from logdiag.formats.mapping import CSVLOG_KEYS, JSONLOG_KEYS
from logdiag.formats.prefix import LinePrefix
from logdiag.lang import severity_words
from logdiag.records import SEVERITIES
from logdiag.source.framing import RecordEnd, blocks, line_end
from logdiag.source.inputs import OpenInput

if TYPE_CHECKING:
    import polars as pl

BLOCK_BYTES = 16 * 1024 * 1024
#: The records table's columns from the log (the exporter adds ``host``).
COLUMNS_OUT = (*CSVLOG_KEYS, "file", "line")
#: csvlog columns where newlines are expected.
_FREE_TEXT = ("message", "detail", "hint", "internal_query", "context", "query")
_INTEGERS = ("pid", "session_line", "xid", "query_id")
#: The jsonlog keys read that hold numbers (the rest are text).
_JSON_NUMBERS = frozenset({"pid", "line_num", "txid", "query_id", "remote_port"})


def record_frames(
    path: str, fmt: LogFormat, lines: int | None = None, block_bytes: int | None = None,
    log_line_prefix: str | None = None,
) -> Iterator[Any]:
    """The records of a csvlog, jsonlog or stderr file (plain or compressed), a block at a time:
    frames of :data:`COLUMNS_OUT`, ``file`` being ``path`` as given.

    Args:
        lines: read no records that start after this physical line (a log still being written
            has grown since it was analysed).
        log_line_prefix: a stderr log's (required for it).

    Raises:
        NotExact: a block is not what PostgreSQL writes (blank or broken lines, a layout or a
            zone the readers would read otherwise); what was yielded before it stands.
    """
    import polars as pl

    to_frame, record_end, usual_bytes = _READERS[fmt](log_line_prefix)
    opened = OpenInput(path)
    try:
        first_line = 1
        for block in blocks(opened.chunks(), block_bytes or usual_bytes, record_end=record_end):
            if lines is not None and first_line > lines:
                return
            data = block.data
            count = data.count(b"\n") + (not data.endswith(b"\n"))
            frame = to_frame(data, count).with_columns(file=pl.lit(path, pl.Utf8), line=_line_numbers(first_line))
            if lines is not None:
                frame = frame.filter(pl.col("line") <= lines)
            yield frame.select(COLUMNS_OUT)
            first_line += count
    finally:
        opened.close()


FrameReader = tuple[Callable[[bytes, int], 'pl.DataFrame'], RecordEnd, int]


def _stderr_reader(log_line_prefix: str | None) -> FrameReader:
    # A stderr block's frames hold a column for each of the prefix's values: 8 MB, not 16, keeps
    # the export's peak memory near the others'.
    if log_line_prefix is None:
        raise ValueError("a stderr log's records need its log_line_prefix")
    prefix = LinePrefix(log_line_prefix)
    return (lambda block, lines: stderr_frame(block, lines, prefix)), message_starts(prefix), BLOCK_BYTES // 2


#: For each format read as whole frames: how to turn a block into a frame, where its blocks may
#: end, and their size (from the ``log_line_prefix``, for stderr).
_READERS: dict[LogFormat, Callable[[str | None], FrameReader]] = {
    LogFormat.CSVLOG: lambda _: (_csvlog_frame, csvlog.record_end, BLOCK_BYTES),
    LogFormat.JSONLOG: lambda _: (_jsonlog_frame, line_end, BLOCK_BYTES),
    LogFormat.STDERR: _stderr_reader,
}
#: The formats :func:`record_frames` reads.
FRAME_FORMATS = frozenset(_READERS)


def _csvlog_frame(data: bytes, lines: int) -> pl.DataFrame:
    import polars as pl

    if b"\r" in data:  # the readers split lines at \n and drop a \r before it
        raise NotExact("carriage returns")
    try:
        raw = pl.read_csv(data, has_header=False, infer_schema=False, quote_char='"')
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise NotExact(f"polars cannot read it as CSV: {exc}") from None
    names = COLUMNS.get(raw.width)
    if names is None:
        raise NotExact(f"{raw.width} columns")
    raw.columns = list(names)
    frame = raw.select(
        _span=_spans(raw, lines),
        **{field: pl.col(column) if column in names else pl.lit(None, pl.Utf8) for field, column in CSVLOG_KEYS.items()},
    )
    return _typed(frame)


def _spans(raw: pl.DataFrame, lines: int) -> pl.Expr | pl.Series:
    """How many physical lines each row spans: one, plus the newlines in its quoted fields.

    They hide in the free-text columns, nearly always; the other columns are counted only when
    those do not account for every line.
    """
    import polars as pl

    if raw.height == lines:
        return pl.lit(1, pl.Int64)
    for columns in (_FREE_TEXT, raw.columns):
        newlines = pl.sum_horizontal(pl.col(columns).str.count_matches("\n", literal=True).fill_null(0))
        spans = raw.select(newlines + 1).to_series()
        if spans.sum() == lines:
            return spans
    raise NotExact("records and lines do not add up")


def _jsonlog_frame(data: bytes, lines: int) -> pl.DataFrame:
    import polars as pl

    keys = {*JSONLOG_KEYS.values(), "remote_port"}
    schema = {key: pl.Int64 if key in _JSON_NUMBERS else pl.Utf8 for key in sorted(keys)}
    try:
        raw = pl.read_ndjson(data, schema=schema)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise NotExact(f"polars cannot read it as JSON lines: {exc}") from None
    if raw.height != lines:
        raise NotExact("objects and lines do not add up")
    host = pl.col("remote_host").replace("", None)
    with_port = host + ":" + pl.col("remote_port").cast(pl.Utf8)
    frame = raw.select(
        _span=pl.lit(1, pl.Int64),
        **{field: pl.col(key) for field, key in JSONLOG_KEYS.items() if field != "client"},
        client=pl.when(pl.col("remote_port").is_not_null()).then(with_port).otherwise(host),
    )
    return _typed(frame)


def _typed(frame: pl.DataFrame) -> pl.DataFrame:
    """The text columns as the readers give them: empty is no value, numbers are integers,
    severities are checked, timestamps are aware (then UTC)."""
    import polars as pl

    texts = [c for c in frame.columns if c not in (*_INTEGERS, "_span") and frame.schema[c] == pl.Utf8]
    numbers = [c for c in _INTEGERS if frame.schema[c] == pl.Utf8]
    if numbers and not frame.select(pl.all_horizontal(_plain_integer(c) for c in numbers).all()).item():
        raise NotExact("a number column holds something else")
    frame = frame.with_columns(
        [pl.col(c).replace("", None) for c in texts] + [pl.col(c).cast(pl.Int64, strict=False) for c in numbers]
    )
    # csvlog's error_severity is in the server's language (lc_messages, issue 25): read as English.
    frame = frame.with_columns(pl.col("severity").replace(severity_words()))
    if not frame["severity"].is_in(sorted(SEVERITIES)).all():
        raise NotExact("a record without a PostgreSQL severity")
    return frame.with_columns(timestamp=utc_instants(frame["timestamp"]))


def _plain_integer(column: str) -> pl.Expr:
    """Whether a csvlog number column is empty or what both polars' cast and the reader read as the
    same integer: ASCII digits, a minus at most (polars would also take a plus sign)."""
    import polars as pl

    text = pl.col(column)
    number = text.cast(pl.Int64, strict=False)
    return (text == "") | text.is_null() | (number.is_not_null() & ~text.str.starts_with("+"))


def _line_numbers(first_line: int) -> pl.Expr:
    """The physical line each record starts at: the block's first, plus the lines of those before."""
    import polars as pl

    span = pl.col("_span")
    return span.cum_sum() - span + first_line
