"""A stderr log's records as polars frames: what :class:`~logdiag.formats.stderr.StderrAssembler`
makes of lines that come in order, done on whole columns.

The logging collector writes each message with its DETAIL, HINT... and STATEMENT lines at once,
so in a stderr log a record's lines follow one another: its first line (the prefix and a
severity), then lines with the prefix and an attachment's keyword, each followed by the TAB lines
that continue it. That layout is read here with one regular expression over every line (the
compiled prefix, capturing its values) and a few column operations. Whatever the assembler would
read otherwise (an attachment of another process than the message before it, one given twice, a
line that is neither, a value whose white space Python's and polars' regular expressions tell
apart) raises :class:`~logdiag.fastpath.frames.NotExact`, and the file is read record by record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from logdiag.fastpath.frames import NotExact, utc_instants
from logdiag.formats.prefix import ATTACHMENTS, MESSAGE_SEVERITIES, PREFIX_WINDOW, LinePrefix
from logdiag.formats.stderr import ATTACHMENT_FIELDS, CURSOR_POSITION
from logdiag.records import RECORD_FIELDS
from logdiag.source.framing import RecordEnd

if TYPE_CHECKING:
    import polars as pl

#: Characters that Python's ``\s`` and ``str.strip`` take for white space and Rust's do not (the
#: information separators): a block holding one is read record by record.
_SEPARATORS = (b"\x1c", b"\x1d", b"\x1e", b"\x1f")
_TEXT_ESCAPES = {"c": "session_id", "v": "vxid", "u": "user", "d": "database", "a": "application",
                 "b": "backend_type", "i": "command_tag"}
_INTEGER_ESCAPES = {"p": "pid", "l": "session_line", "x": "xid", "Q": "query_id"}
#: A verbose message's SQLSTATE (log_error_verbosity = verbose), which the assembler takes off:
#: the twin of ``logdiag.formats.stderr._VERBOSE_CODE``, whose look-ahead (a digit among the five)
#: polars' regular expressions lack, so :func:`_records` tests the digit apart.
_VERBOSE_CODE = "^[0-9A-Z]{5}: "
_NO_KEY = "\x00"  # the key of the records of a prefix with neither %c nor %p (no NUL gets here)
#: Epoch seconds (``%n``) from which a float, as the readers parse them, may miss a millisecond.
_EPOCH_LIMIT = 10**10
_FIELDS = tuple(name for name in RECORD_FIELDS if name != "source")


def message_starts(prefix: LinePrefix) -> RecordEnd:
    """``record_end(data, start, end)`` for blocks of whole records: where the last message line
    that starts in ``data[start:end]`` after ``start`` does (0: none does)."""
    severities = frozenset(MESSAGE_SEVERITIES)

    def record_end(data: bytes, start: int, end: int) -> int:
        cut = data.rfind(b"\n", start, end) + 1
        while cut > start:
            line_end = data.find(b"\n", cut)
            if line_end >= 0 and data[cut : cut + 1] != b"\t":
                text = data[cut : min(line_end, cut + 4 * PREFIX_WINDOW)].decode("utf-8", "replace")
                found = prefix.regex.match(text[:PREFIX_WINDOW])
                if found and found["keyword"] in severities:
                    return cut
            cut = data.rfind(b"\n", start, cut - 1) + 1
        return 0

    return record_end


def stderr_frame(data: bytes, lines: int, prefix: LinePrefix) -> pl.DataFrame:
    """The records of a block of whole stderr records: ``_span`` (the physical lines of each)
    and the record fields, as the readers give them.

    Raises:
        NotExact: the assembler would read the block otherwise.
    """
    import polars as pl

    if b"\r" in data or b"\x00" in data or any(byte in data for byte in _SEPARATORS):
        raise NotExact("carriage returns, NUL bytes or information separators")
    try:
        text = pl.scan_lines(data, name="text").collect()["text"]
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise NotExact(f"polars cannot read its lines: {exc}") from None
    if len(text) != lines:
        raise NotExact("lines do not add up")
    frame = _lines(text, prefix)
    if not frame["is_message"][0]:
        raise NotExact("lines before the first message")
    attachments = frame.filter("is_attachment")
    if not attachments.select((pl.col("key") == pl.col("message_key")).all()).item():
        raise NotExact("an attachment of another process than the message before it")
    if attachments.select(pl.struct("record", "keyword").is_duplicated().any()).item():
        raise NotExact("an attachment given twice")
    starts = frame["is_message"].arg_true()  # a record spans the lines up to the next one's
    spans = starts.append(pl.Series([len(text)], dtype=starts.dtype)).diff(null_behavior="drop")
    return _records(_joined(frame), spans)


def _lines(text: pl.Series, prefix: LinePrefix) -> pl.DataFrame:
    """Every line with what its prefix says (``%x`` columns: the values of escape x), its
    ``keyword``, its ``piece`` of text, and the ``record`` and ``part`` (message or
    attachment) it belongs to."""
    import polars as pl

    whole = "^(?P<_whole>" + prefix.regex.pattern.removeprefix("^") + ")"
    letters: dict[str, list[str]] = {}
    for name, letter in prefix.groups.items():
        letters.setdefault(letter, []).append(name)
    line = pl.col("text")
    tab, keyword, prefix_length = pl.col("tab"), pl.col("keyword"), pl.col("_whole").str.len_chars()
    frame = (
        text.to_frame()
        # (a row index computed here too would make polars capture in one thread, not per chunk)
        .with_columns(tab=line.str.starts_with("\t"), captured=line.str.extract_groups(whole))
        .unnest("captured")
        .with_columns(
            # The first escape of a letter that has a value, as the readers take it.
            *(pl.coalesce(pl.col(n).str.strip_chars() for n in names).alias(f"%{letter}") for letter, names in letters.items()),
            is_message=~tab & keyword.is_in(MESSAGE_SEVERITIES),
            is_attachment=~tab & keyword.is_in(ATTACHMENTS),
            piece=pl.when(tab).then(line.str.slice(1)).otherwise(line.str.slice(prefix_length)),
        )
    )
    if frame.select((~tab & keyword.is_null()).any()).item():
        raise NotExact("a line that is neither a message, an attachment nor a TAB continuation")
    if frame.select((prefix_length >= PREFIX_WINDOW).any()).item():
        raise NotExact("a prefix as long as the part of a line the readers look at")
    session = _text("%c") if "c" in letters else pl.lit(None, pl.Utf8)
    pid = pl.col("%p") if "p" in letters else pl.lit(None, pl.Utf8)
    key = pl.coalesce(session, pid).fill_null(_NO_KEY)
    return frame.select(
        "tab", "keyword", "piece", "is_message", "is_attachment", *(f"%{letter}" for letter in letters),
        key=key,
        message_key=pl.when("is_message").then(key).forward_fill(),
        record=pl.col("is_message").cum_sum(),
        part=(pl.col("is_message") | pl.col("is_attachment")).cum_sum(),
    )


def _joined(frame: pl.DataFrame) -> pl.DataFrame:
    """The first line of every part (message or attachment), its ``piece`` now the part's text
    with its TAB lines joined on, and the ``first`` line's piece alone."""
    import polars as pl

    heads = frame.filter(~pl.col("tab")).with_columns(first=pl.col("piece"))
    continued = frame.filter("tab")["part"].unique()
    if not len(continued):
        return heads
    texts = (
        frame.filter(pl.col("part").is_in(continued.implode()))
        .group_by("part", maintain_order=True)
        .agg(joined=pl.col("piece").str.join("\n"))
    )
    return heads.join(texts, on="part", how="left").with_columns(piece=pl.coalesce("joined", "piece")).drop("joined")


def _records(heads: pl.DataFrame, spans: pl.Series) -> pl.DataFrame:
    """One row per message: the lines it spans, its prefix's fields, its text and attachments."""
    import polars as pl

    messages = heads.filter("is_message")
    first = pl.col("first")
    # The assembler takes a verbose message's SQLSTATE off its first line, before the TAB lines.
    verbose = first.str.contains(_VERBOSE_CODE) & first.str.slice(0, 5).str.contains("[0-9]")
    fields: dict[str, pl.Expr] = {}
    for letter, field in _TEXT_ESCAPES.items():
        fields[field] = _text(f"%{letter}") if f"%{letter}" in messages.columns else pl.lit(None, pl.Utf8)
    for letter, field in _INTEGER_ESCAPES.items():
        if f"%{letter}" not in messages.columns:
            fields[field] = pl.lit(None, pl.Int64)
            continue
        value = pl.col(f"%{letter}")
        if messages.select((value.is_not_null() & value.cast(pl.Int64, strict=False).is_null()).any()).item():
            raise NotExact(f"a %{letter} beyond 64-bit integers")
        fields[field] = value.cast(pl.Int64)
    records = messages.select(
        "record",
        _span=pl.lit(spans.cast(pl.Int64)),
        timestamp=_timestamp(messages),
        client=_client(messages.columns),
        severity=pl.col("keyword"),
        sqlstate=pl.coalesce(_text("%e") if "%e" in messages.columns else pl.lit(None, pl.Utf8),
                             pl.when(verbose).then(first.str.slice(0, 5))),
        message=_without_position(pl.when(verbose).then(pl.col("piece").str.slice(7)).otherwise("piece")),
        **fields,
    )
    return records.join(_attachments(heads), on="record", how="left").select("_span", *_FIELDS)


def _attachments(heads: pl.DataFrame) -> pl.DataFrame:
    """Per record that has any, the text of each attachment (LOCATION is read and left out)."""
    import polars as pl

    wanted = {keyword: field for keyword, field in ATTACHMENT_FIELDS.items() if field != "location"}
    rows = heads.filter(pl.col("is_attachment") & pl.col("keyword").is_in(list(wanted)))
    if rows.height:
        pivot = rows.pivot(on="keyword", index="record", values="piece")
        pivot = pivot.rename({keyword: field for keyword, field in wanted.items() if keyword in pivot.columns})
    else:
        pivot = rows.select("record")
    missing = [field for field in wanted.values() if field not in pivot.columns]
    return pivot.with_columns(pl.lit(None, pl.Utf8).alias(field) for field in missing)


def _text(column: str) -> pl.Expr:
    """A value as the readers give it: empty or ``[unknown]`` is no value."""
    import polars as pl

    value = pl.col(column)
    return pl.when(value.is_in(["", "[unknown]"])).then(None).otherwise(value)


def _client(columns: list[str]) -> pl.Expr:
    """``%r`` (``host(port)`` becomes ``host:port``), else ``%h``: the twin of
    :func:`logdiag.formats.prefix._client`, on whole columns."""
    import polars as pl

    remote = _text("%r").str.replace(r"^([^\s()]+)\(([0-9]+)\)$", "${1}:${2}") if "%r" in columns else None
    host = _text("%h") if "%h" in columns else None
    chosen = [value for value in (remote, host) if value is not None]
    return pl.coalesce(chosen) if chosen else pl.lit(None, pl.Utf8)


def _without_position(message: pl.Expr) -> pl.Expr:
    """The message without stderr's `` at character N`` (csvlog and jsonlog keep it apart)."""
    import polars as pl

    return pl.when(message.str.contains("[0-9]$")).then(message.str.replace(CURSOR_POSITION, "")).otherwise(message)


def _timestamp(messages: pl.DataFrame) -> pl.Expr:
    """The time of each message as the readers take it: ``%m``, else ``%n``, else ``%t``."""
    import polars as pl

    when = pl.lit(None, pl.Datetime("us", "UTC"))
    for letter in ("t", "n", "m"):  # the last one wins where it has a value
        column = f"%{letter}"
        if column not in messages.columns:
            continue
        stamps = messages[column]
        if letter == "n":
            seconds = stamps.str.head(-4).cast(pl.Int64)
            if (seconds >= _EPOCH_LIMIT).any():
                raise NotExact("%n beyond the year 2286")
            instants = pl.from_epoch(seconds * 1000 + stamps.str.tail(3).cast(pl.Int64), time_unit="ms")
            instants = instants.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        else:
            instants = utc_instants(stamps, head=23 if letter == "m" else 19)
        when = pl.when(pl.col(column).is_not_null()).then(pl.lit(instants)).otherwise(when)
    return when
