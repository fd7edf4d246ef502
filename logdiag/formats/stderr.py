"""Assemble stderr-style lines (plain stderr, syslog, logplex, Cloud SQL) into log records.

A message's DETAIL, HINT, QUERY, CONTEXT, LOCATION and STATEMENT lines carry the prefix again and
belong to the preceding message *of the same process*; lines that start with a TAB continue the
line before them. Other processes' lines may come in between (syslog, stderr without the logging
collector), so messages are held per process until the next message of that process arrives or
:attr:`StderrAssembler.window` lines have passed, and are released in the order they started.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from logdiag.formats.base import (
    Continuation,
    ErrorLine,
    Format,
    Lines,
    LogFormat,
    Prefilter,
    ReadTo,
    blocked_by_marker,
)
from logdiag.formats.infer import find_prefix
from logdiag.formats.prefix import ATTACHMENTS, MESSAGE_SEVERITIES, LinePrefix, PrefixFields, keyword_pattern
from logdiag.formats.timestamps import fromisoformat
from logdiag.lang import ENGLISH, Language
from logdiag.records import LogRecord, Severity, Source
from logdiag.source.framing import Tick, decode_line
from logdiag.source.stats import InputStats, size_text

# Verbose mode (log_error_verbosity = verbose) puts the SQLSTATE before the message.
# stderr appends the cursor position to the message; csvlog and jsonlog keep it in its own field,
# so it is taken off to give the same message whatever the format.
#: What stderr appends to a message that has a cursor position (polars reads it too).
CURSOR_POSITION = r" at character \d{1,10}$"
_CURSOR_POSITION = re.compile(CURSOR_POSITION)
# Twin: logdiag.fastpath.stderr_frames._VERBOSE_CODE, the same test on whole columns (the export's frames).
_VERBOSE_CODE = re.compile(r"(?P<code>(?=[0-9A-Z]{0,4}\d)[0-9A-Z]{5}): ")
ATTACHMENT_FIELDS = {
    "DETAIL": "detail",
    "HINT": "hint",
    "QUERY": "query",
    "CONTEXT": "context",
    "STATEMENT": "statement",
    "LOCATION": "location",
}
assert set(ATTACHMENT_FIELDS) == set(ATTACHMENTS)


@dataclass(slots=True)
class RawLine:
    """One line of PostgreSQL output, with what a wrapper around it told us.

    Attributes:
        line: the physical line number in the input.
        text: the server's line: prefix, keyword and message, or a TAB continuation.
        timestamp: the wrapper's timestamp (syslog with RFC 3339 dates, logplex, Cloud SQL).
        pid: the wrapper's process id (syslog ``postgres[pid]``, logplex ``postgres.pid``).
        sequence: syslog's ``[N-M]``: N numbers the message, M the piece within it.
    """

    line: int
    text: str
    timestamp: datetime | None = None
    pid: int | None = None
    sequence: tuple[int, int] | None = None


@dataclass(slots=True)
class _Message:
    """A record being assembled."""

    key: object
    line: int
    last_line: int
    fields: PrefixFields
    severity: Severity
    sqlstate: str | None
    parts: dict[str, list[str]] = field(default_factory=dict)
    current: str = "message"
    wrapper_timestamp: datetime | None = None
    wrapper_pid: int | None = None
    sequence: int | None = None
    superseded: bool = False
    complete: bool = False  # its STATEMENT line, always the last one PostgreSQL writes, has come
    touched: float = 0.0  # monotonic time of its last line (live input only)
    size: int = 0  # characters of its parts so far

    def add(self, name: str, text: str) -> None:
        self.parts[name] = [text]
        self.current = name
        self.size += len(text)

    def continue_line(self, text: str, newline: bool) -> None:
        self.size += len(text) + 1
        pieces = self.parts.setdefault(self.current, [])
        if newline or not pieces:
            pieces.append(text)
        else:
            pieces[-1] += text

    def text(self, name: str) -> str | None:
        pieces = self.parts.get(name)
        return None if pieces is None else "\n".join(pieces)

    def build(self, file: str) -> LogRecord:
        f = self.fields
        return LogRecord(
            timestamp=f.timestamp or self.wrapper_timestamp,
            pid=f.pid if f.pid is not None else self.wrapper_pid,
            session_id=f.session_id,
            session_line=f.session_line,
            vxid=f.vxid,
            xid=f.xid,
            user=f.user,
            database=f.database,
            application=f.application,
            client=f.client,
            backend_type=f.backend_type,
            severity=self.severity,
            sqlstate=f.sqlstate or self.sqlstate,
            message=_without_position(self.text("message")),
            detail=self.text("detail"),
            hint=self.text("hint"),
            context=self.text("context"),
            statement=self.text("statement"),
            query=self.text("query"),
            command_tag=f.command_tag,
            query_id=f.query_id,
            source=Source(file, self.line),
        )


_MISFIT = "line does not match the log_line_prefix"
_REDETECT_AFTER = 20  # lines the prefix cannot read, before it is worked out again
_REDETECT_SAMPLE = 150  # lines it read, kept to check the new one against (with the misfits, under SAMPLE_LINES)
_REDETECT_TIMES = 3  # live input works it out at each quiet period, maybe from a few lines: not once only


class StderrAssembler:
    """Feed :class:`RawLine` objects in, get :class:`LogRecord` objects out, in starting order.

    Args:
        prefix: the compiled ``log_line_prefix``.
        stats: where skipped lines are counted.
        file: the input's name, for each record's source.
        window: how many lines a message waits for its DETAIL/STATEMENT lines before it is
            released; this bounds memory whatever the input.
        quiet: for live input, also release a message this many seconds after its last line.
    """

    def __init__(
        self, prefix: LinePrefix, stats: InputStats, file: str, window: int = 2000, quiet: float | None = None
    ) -> None:
        self.prefix = prefix
        self.stats = stats
        self.file = file
        self.window = window
        self.quiet = quiet
        self._pending: dict[object, _Message] = {}
        self._queue: deque[_Message] = deque()
        self._last: _Message | None = None
        # A prefix worked out from the first lines may not fit later ones (the first lines were
        # the postmaster's, which stop at %q): the lines it cannot read are held, and the prefix
        # is worked out again, from lines it read and lines it did not: once, or up to
        # _REDETECT_TIMES times for live input, which tries at each quiet period.
        self._redetect = _REDETECT_TIMES if stats.prefix_inferred and quiet is not None else int(stats.prefix_inferred)
        self._read_sample: list[str] = []
        self._held: list[tuple[RawLine, str]] = []

    def feed(self, raw: RawLine) -> Iterator[LogRecord]:
        """Take one line; yield the records that are now complete."""
        self._take(raw)
        yield from self._release(raw.line)

    def feed_all(self, lines: Iterable[RawLine | Tick]) -> Iterator[LogRecord]:
        """Take every line, then yield what is left at the end of the input.

        A TICK (live input went quiet) releases every message held: none is waiting for more.
        A :class:`~logdiag.formats.base.ReadTo` (the fast path held the lines after the last one
        fed) counts as a line that follows: see :meth:`read_to`.
        """
        for raw in lines:
            if isinstance(raw, ReadTo):
                yield from self.read_to(raw.line)
            elif isinstance(raw, Tick):
                yield from self.flush()
            else:
                yield from self.feed(raw)
        yield from self.flush()

    def read_to(self, line: int) -> Iterator[LogRecord]:
        """The input went on up to ``line`` with lines not fed here; yield the records now complete.

        As a line of another process would, a line after the last one fed ends that message's TAB
        lines: a message whose STATEMENT (always its last line) has come is complete.
        """
        if self._last is not None and self._last.last_line < line:
            self._last = None
        yield from self._release(line)

    def flush(self) -> Iterator[LogRecord]:
        """Release every message still held (end of input, or a quiet period when following)."""
        if self._held:
            self._work_out_again()
        while self._queue:
            yield self._emit(self._queue.popleft())
        self._last = None

    def _take(self, raw: RawLine) -> None:
        text = raw.text
        if text.startswith("\t"):
            self._continuation(raw, text[1:], newline=True)
            return
        if not text.strip():
            self.stats.blank += 1  # PostgreSQL never writes one; editors and shippers do
            return
        found = self.prefix.match(text)
        if found is not None and self._redetect and len(self._read_sample) < _REDETECT_SAMPLE:
            self._read_sample.append(text)
        if found is None:
            if raw.sequence is not None and raw.sequence[1] > 1:
                # A long line split by syslog: PostgreSQL cuts it before a space, which starts the piece.
                self._continuation(raw, text, newline=False)
            elif text[0] in " \t" and (self._last is not None or raw.sequence is not None):
                # A continuation whose TAB became spaces (log shippers, hand-edited files).
                self._continuation(raw, text, newline=True)
            else:
                self._skip(raw, _MISFIT)
            return
        pid = found.fields.pid if found.fields.pid is not None else raw.pid
        key = found.fields.session_id or pid
        sequence = raw.sequence[0] if raw.sequence else None
        if found.keyword in ATTACHMENT_FIELDS:
            message = self._pending.get(key)
            name = ATTACHMENT_FIELDS[found.keyword]
            if message is None or name in message.parts or message.sequence != sequence:
                self._last = None
                self._skip(raw, f"{found.keyword} line without its message")
                return
            message.add(name, found.text)
            message.last_line = raw.line
            message.complete = name == "statement"
            if self.quiet is not None:
                message.touched = time.monotonic()
            self._last = message
            return
        body, sqlstate = found.text, None
        code = _VERBOSE_CODE.match(body)
        if code:
            sqlstate, body = code["code"], body[code.end() :]
        message = _Message(
            key=key,
            line=raw.line,
            last_line=raw.line,
            fields=found.fields,
            severity=Severity(found.keyword),
            sqlstate=sqlstate,
            wrapper_timestamp=raw.timestamp,
            wrapper_pid=raw.pid,
            sequence=sequence,
        )
        message.add("message", body)
        if self.quiet is not None:
            message.touched = time.monotonic()
        previous = self._pending.get(key)
        if previous is not None:
            previous.superseded = True
        self._pending[key] = message
        self._queue.append(message)
        self._last = message

    def _continuation(self, raw: RawLine, text: str, newline: bool) -> None:
        target = self._last
        if raw.sequence is not None:  # syslog says exactly which message a piece belongs to
            target = next(
                (
                    m
                    for m in reversed(self._queue)
                    if m.sequence == raw.sequence[0] and (raw.pid is None or m.wrapper_pid == raw.pid)
                ),
                None,
            )
        if target is None:
            self._skip(raw, "continuation line without its message")
            return
        if target.size + len(text) > self.stats.cuts.limit:  # memory stays bounded (issue 27)
            self._skip(raw, f"record longer than {size_text(self.stats.cuts.limit)} (--max-line-bytes)")
            return
        target.continue_line(text, newline)
        target.last_line = raw.line
        if self.quiet is not None:
            target.touched = time.monotonic()
        self._last = target

    def _skip(self, raw: RawLine, reason: str) -> None:
        self.stats.skip(raw.line, reason, raw.text)
        if self._redetect:
            self._held.append((raw, reason))
            if sum(reason == _MISFIT for _, reason in self._held) >= _REDETECT_AFTER:
                self._work_out_again()

    def _work_out_again(self) -> None:
        """If a prefix worked out from the lines read and the lines not read reads them all, take
        it, and read again the lines held."""
        held, self._held = self._held, []
        misfits = [raw.text for raw, reason in held if reason == _MISFIT]
        if not misfits:
            return
        self._redetect -= 1
        lines = self._read_sample + misfits
        found = find_prefix(lines, self.prefix.language)
        if found is None or found.read < len(lines) or found.prefix == self.prefix.format:
            return
        self.prefix = LinePrefix(found.prefix, language=self.prefix.language)
        self.stats.log_line_prefix = found.prefix
        self.stats.prefix_unsettled = list(found.unsettled)
        self.stats.unskip([(raw.line, reason, raw.text) for raw, reason in held])
        for raw, _ in held:
            self._take(raw)

    def _release(self, line: int) -> Iterator[LogRecord]:
        queue = self._queue
        now = time.monotonic() if self.quiet is not None else 0.0
        while queue:
            head = queue[0]
            done = (
                head.superseded
                or (head.complete and head is not self._last)
                or line - head.last_line > self.window
                or (self.quiet is not None and now - head.touched > self.quiet)
            )
            if not done:
                return
            yield self._emit(queue.popleft())

    def _emit(self, message: _Message) -> LogRecord:
        if self._pending.get(message.key) is message:
            del self._pending[message.key]
        if self._last is message:
            self._last = None
        self.stats.records += 1
        return message.build(self.file)


def _without_position(message: str | None) -> str | None:
    if message is None or not message.endswith(tuple("0123456789")):
        return message
    return _CURSOR_POSITION.sub("", message)


# --- wrappers -------------------------------------------------------------------------------

# The headers syslog daemons write in front of PostgreSQL's syslog() lines:
# - BSD (RFC 3164) ``Mon DD HH:MM:SS host ident[pid]: ``, the time with a fraction or not (rsyslog's
#   RSYSLOG_TraditionalFileFormat, or a template with microseconds), or an RFC 3339 date in its place
#   (rsyslog's high-precision RSYSLOG_FileFormat); with ``<PRI>`` in front when forwarded;
# - RFC 5424 ``<PRI>1 2026-04-02T14:55:51.484+00:00 host ident pid msgid sd msg`` (or without ``<PRI>``).
# The ident is syslog_ident (postgres by default). PostgreSQL then writes ``[N-M] `` (message N, piece M,
# syslog_sequence_numbers and syslog_split_messages on), ``[N] `` (sequence numbers on, message not
# split), ``[M] `` (sequence numbers off, piece M of a split message) or nothing (both off).
_SYSLOG = re.compile(
    r"(?:"
    r"(?:<\d{1,3}>)?1 (?P<date5424>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*) (?P<host5424>\S{1,255}) "
    r"(?P<ident5424>\S{1,48}) (?P<pid5424>\d{1,10}) \S{1,32} (?:-|(?:\[(?:[^\]\\\"]|\\.|\"(?:[^\"\\]|\\.)*\")*\])+) {1,2}"  # then the msg, which rsyslog starts with a space
    r"|"
    r"(?:<\d{1,3}>)?(?P<date>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d{1,9})?|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*) "
    r"(?P<host>\S{1,255}) (?P<ident>[^\s\[\]]{1,64})\[(?P<pid>\d{1,10})\]: "
    r")"
    r"(?:\[(?P<seq>\d{1,20})(?:-(?P<piece>\d{1,10}))?\] ?)?"
)
#: rsyslog writes a control character as ``#`` and its three octal digits (``#011`` a TAB, ``#012`` a
#: newline): ``$EscapeControlCharactersOnReceive``, on by default.
_SYSLOG_ESCAPE = re.compile(r"#(0[0-3][0-7]|177)")


def _unescape(text: str) -> str:
    if "#" not in text:
        return text
    return _SYSLOG_ESCAPE.sub(lambda m: chr(int(m[1], 8)), text)


def _syslog_raw(number: int, text: str, found: re.Match[str]) -> Iterator[RawLine]:
    """The server's lines inside one syslog line.

    ``[N-M]`` gives ``sequence = (N, M)``; ``[M]`` alone (a piece number when sequence numbers are off,
    a message number when messages are not split: the two cannot be told apart) gives ``(0, M)``, so
    that a piece that is no message of its own joins the last message of its process; a message not
    split is one line whose newlines rsyslog wrote as ``#012``: it gives one line per line of it.
    """
    date = found["date"] or found["date5424"]
    pid = int(found["pid"] or found["pid5424"])
    body = text[found.end() :]
    sequence: tuple[int, int] | None = None
    if found["piece"] is not None:
        sequence = (int(found["seq"]), int(found["piece"]))
    elif found["seq"] is not None:
        if int(found["seq"]) == pid:  # no number from PostgreSQL: the prefix starts with [%p]
            body = text[found.start("seq") - 1 :]
        else:
            sequence = (0, int(found["seq"]))
    timestamp = fromisoformat(date) if "T" in date else None
    for part in _unescape(body).split("\n"):
        yield RawLine(line=number, text=part, timestamp=timestamp, pid=pid, sequence=sequence)


def syslog_bodies(lines: Sequence[str]) -> list[str]:
    """The server's lines in syslog lines that start with the log_line_prefix (not the pieces that
    continue a line), to work the prefix out from."""
    bodies = []
    for line in lines:
        found = _SYSLOG.match(line)
        if found is None:
            continue
        for part in _unescape(line[found.end() :]).split("\n"):
            if part and part[0] not in " \t":
                bodies.append(part)
    return bodies


_LOGPLEX = re.compile(
    r"(?P<date>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*) (?:\S{1,255} )?app\[postgres\.(?P<pid>\d{1,10})\]:? "
    r"(?:\[[A-Z0-9_]{1,64}\] )?\[(?P<seq>\d{1,20})-(?P<piece>\d{1,10})\] ?"
)


def _logplex_raw(number: int, text: str, found: re.Match[str]) -> Iterator[RawLine]:
    yield RawLine(
        line=number,
        text=text[found.end() :],
        timestamp=fromisoformat(found["date"]) if "T" in found["date"] else None,
        pid=int(found["pid"]),
        sequence=(int(found["seq"]), int(found["piece"])),
    )


def _wrapped_lines(
    lines: Iterable[tuple[int, str] | Tick],
    header: re.Pattern[str],
    stats: InputStats,
    what: str,
    raw: Callable[[int, str, re.Match[str]], Iterator[RawLine]],
) -> Iterator[RawLine | Tick]:
    for item in lines:
        if isinstance(item, Tick):
            yield item
            continue
        number, text = item
        found = header.match(text)
        if found is None:
            stats.skip(number, f"not a {what} line from PostgreSQL", text, foreign=True)
            continue
        yield from raw(number, text, found)


def stderr_lines(lines: Iterable[tuple[int, str] | Tick]) -> Iterator[RawLine | Tick]:
    """Plain stderr lines as they are (TICKs pass through)."""
    for item in lines:
        if isinstance(item, Tick):
            yield item
        else:
            number, text = item
            yield RawLine(number, text)


SYSLOG_HEADER = _SYSLOG
LOGPLEX_HEADER = _LOGPLEX


# --- the formats ----------------------------------------------------------------------------

def _error_lines(prefix: LinePrefix) -> Callable[[Iterable[tuple[int, bytes]]], Iterator[ErrorLine]]:
    by_session = "c" in prefix.escapes

    def error_lines(lines: Iterable[tuple[int, bytes]]) -> Iterator[ErrorLine]:
        for position, line in lines:
            found = prefix.match(decode_line(line)[0])
            if found is None or found.keyword != "ERROR":
                continue
            text, state = found.text, found.fields.sqlstate
            if code := _VERBOSE_CODE.match(text):
                state, text = state or code["code"], text[code.end() :]
            key = found.fields.session_id if by_session else found.fields.pid
            if key is not None:
                yield ErrorLine(position, str(key), state, text)

    return error_lines


def _session_test(prefix: LinePrefix, letter: str) -> Callable[[str], tuple[str, str | None]]:
    def session_test(alternation: str) -> tuple[str, str | None]:
        return alternation, LinePrefix(
            prefix.format, overrides={letter: alternation}, language=prefix.language
        ).regex.pattern

    return session_test


class Stderr(Format):
    """The server's stderr (or the logging collector's ``.log`` files), with any ``log_line_prefix``."""

    kind = LogFormat.STDERR
    has_prefix = True

    def records(
        self, lines: Lines, stats: InputStats, name: str, prefix: LinePrefix | None, quiet: float | None = None,
    ) -> Iterator[LogRecord]:
        return self._assembler(prefix, stats, name, quiet).feed_all(self._raw_lines(lines, stats))

    def _raw_lines(self, lines: Lines, stats: InputStats) -> Iterator[RawLine | Tick]:
        return stderr_lines(lines)

    @staticmethod
    def _assembler(prefix: LinePrefix | None, stats: InputStats, name: str, quiet: float | None) -> StderrAssembler:
        if prefix is None:
            raise ValueError("a stderr-style log is read with its log_line_prefix")
        return StderrAssembler(prefix, stats, name, quiet=quiet)

    def prefilter(self, prefix: LinePrefix | None, language: Language = ENGLISH) -> Prefilter | None:
        if prefix is None:
            return None
        letter = "c" if "c" in prefix.escapes else "p"
        # The server's words (the prefix's language): "FEHLER:", "INSTRUCTION :"... (issue 25).
        words = prefix.language
        return Prefilter(
            marker=f"{words.severity_word('ERROR')}:".encode(), error_lines=_error_lines(prefix),
            record_start=LinePrefix(prefix.format, keywords=MESSAGE_SEVERITIES, language=words).regex.pattern,
            continuation=Continuation.TAB_LINES, unmatched="line does not match the log_line_prefix",
            session_test=_session_test(prefix, letter), session_letter=letter, prefix=prefix,
            attachment=("(?:" + keyword_pattern(words, ATTACHMENTS) + "):", prefix.regex.pattern),
            keeps_first_boundary=True, blocked_by=blocked_by_marker(words),
        )


class _Wrapped(Stderr):
    """stderr lines inside another program's line header."""

    header: re.Pattern[str]
    what: str

    def bodies(self, lines: Sequence[str]) -> list[str]:
        return [line[m.end() :] for line in lines if (m := self.header.match(line))]

    @staticmethod
    def _raw(number: int, text: str, found: re.Match[str]) -> Iterator[RawLine]:
        return _logplex_raw(number, text, found)

    def _raw_lines(self, lines: Lines, stats: InputStats) -> Iterator[RawLine | Tick]:
        return _wrapped_lines(lines, self.header, stats, self.what, self._raw)

    def prefilter(self, prefix: LinePrefix | None, language: Language = ENGLISH) -> Prefilter | None:
        return None


class Syslog(_Wrapped):
    """``log_destination = syslog`` as the syslog daemon writes it (see :data:`_SYSLOG`)."""

    kind = LogFormat.SYSLOG
    header = _SYSLOG
    what = "syslog"

    def bodies(self, lines: Sequence[str]) -> list[str]:
        return syslog_bodies(lines)

    @staticmethod
    def _raw(number: int, text: str, found: re.Match[str]) -> Iterator[RawLine]:
        return _syslog_raw(number, text, found)


class Logplex(_Wrapped):
    """Heroku's logplex drain."""

    kind = LogFormat.LOGPLEX
    header = _LOGPLEX
    what = "Heroku logplex"


STDERR = Stderr()
SYSLOG = Syslog()
LOGPLEX = Logplex()
