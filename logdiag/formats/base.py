"""What a log format is to the rest of logdiag: its name, the object that knows it, and what
detecting one yields.

Each format is one :class:`Format` object (the pattern of sqlglot's dialects): it knows how its
lines become records and, for the formats the fast path reads, the byte markers and regular
expressions that find its records without reading them (:class:`Prefilter`). Code outside
``logdiag/formats/`` asks the object and never branches on which format it is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from logdiag.formats.prefix import LinePrefix
from logdiag.lang import ENGLISH, Language, msgids
from logdiag.records import LogRecord
from logdiag.source.framing import Tick
from logdiag.source.stats import InputStats

#: Decoded lines as the readers take them: ``(line number, text)``, and TICKs from live input
#: (:data:`~logdiag.source.framing.TICK`, and :class:`ReadTo` from the fast path).
Lines = Iterable[tuple[int, str] | Tick]


class ReadTo(Tick):
    """The input has been read up to ``line``: the lines after the last one handed on, if any,
    were held by the fast path's pre-filter (live input, :mod:`logdiag.fastpath.lookback`).

    A record is over when another line follows it. On a busy server that other line is most
    often one the pre-filter holds, and with it the TICK of a quiet period never comes: without
    this, a stderr record whose session then went quiet stayed open until that session wrote
    again (issue 24, section 4). Formats whose records end on their own pass it by, as a TICK.
    """

    __slots__ = ("line",)

    def __init__(self, line: int) -> None:
        self.line = line

    def __repr__(self) -> str:
        return f"ReadTo({self.line})"


class LogFormat(str, Enum):
    """The inputs logdiag reads."""

    CSVLOG = "csvlog"
    JSONLOG = "jsonlog"
    STDERR = "stderr"
    SYSLOG = "syslog"
    LOGPLEX = "logplex"
    CLOUDSQL = "cloudsql"
    CNPG = "cnpg"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Detection:
    """What :func:`~logdiag.formats.detect.detect` found: the format and, for stderr-style
    logs, the prefix."""

    format: LogFormat
    prefix: LinePrefix | None = None
    inferred: bool = False  # the prefix was worked out from the lines, not given
    unsettled: tuple[str, ...] = ()  # what the lines could not settle about it
    language: Language = ENGLISH  # the server's lc_messages: its severity words and labels


class Continuation(Enum):
    """How a record goes on past its first line."""

    NONE = "none"  # one line, one record (jsonlog)
    QUOTED = "quoted"  # while a quoted field is open: newlines inside values (csvlog)
    TAB_LINES = "tab_lines"  # TAB-indented lines, and DETAIL/STATEMENT/... lines with a prefix (stderr)


@dataclass(frozen=True, slots=True)
class ErrorLine:
    """What the fast path reads of a line that holds its format's ERROR marker."""

    position: int  # passed through: a byte offset in the input
    session: str  # the record's session key (session id, or pid without one)
    sqlstate: str | None
    message: str | None  # None where the format's line test reads the SQLSTATE alone (csvlog)
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Prefilter:
    """What the fast path needs to know of a format to pick a big log's lines without reading
    its records: byte markers and regular expressions (in the syntax polars' Rust engine and
    Python's ``re`` share), never polars itself.

    Attributes:
        marker: bytes every line that starts an ERROR record contains.
        error_lines: reads the lines that hold ``marker`` (``(position, bytes)``) into
            :class:`ErrorLine` objects; lines that start no ERROR record are left out.
        record_start: a line that starts a record matches it.
        continuation: how records go on past their first line.
        unmatched: the skip reason counted for lines that are no part of a record.
        session_letter: the ``log_line_prefix`` escape the session key comes from (``c``, or
            ``p`` without ``%c``); ``c`` for the formats that have a session id field.
        session_test: for a regular expression that matches the kept session keys, a cheap
            test that every record's first line of those sessions passes, and the exact test
            that only they pass (None when the cheap test is exact).
        session_field: a pattern whose first group captures the session key on a record's
            first line; None: the key is the prefix's ``session_letter`` value.
        line_number_field: the same for the session's line number; None: the prefix's ``%l``.
        prefix: the ``log_line_prefix`` the fields come from, for the formats that have one.
        record_end: csvlog: a line ending so ends outside any quoted field.
        attachment: stderr: (a cheap test, the exact pattern) for the DETAIL, STATEMENT...
            lines that go with the message before them.
        keeps_first_boundary: the first BEGIN/COMMIT must be kept, which tells the tracker that
            the log shows transaction boundaries (stderr, which may lack ``%v``).
        blocked_by: bytes that come before the blocking process's pid in each line of a
            deadlock's cycle (``; blocked by process ``, in the server's language): the sessions
            of every process of a cycle are kept, not only the victim's (issue 28).
    """

    marker: bytes
    error_lines: Callable[[Iterable[tuple[int, bytes]]], Iterator[ErrorLine]]
    record_start: str
    continuation: Continuation
    unmatched: str
    session_test: Callable[[str], tuple[str, str | None]]
    session_letter: str = "c"
    session_field: str | None = None
    line_number_field: str | None = None
    prefix: LinePrefix | None = None
    record_end: str | None = None
    attachment: tuple[str, str] | None = None
    keeps_first_boundary: bool = False
    blocked_by: bytes | None = None

    @property
    def numbers_every_line(self) -> bool:
        """Whether each record's first line carries its session's line number (``%l``)."""
        return self.line_number_field is not None or (self.prefix is not None and "l" in self.prefix.escapes)


def blocked_by_marker(language: Language) -> bytes | None:
    """The text before the blocking pid in a deadlock's cycle line (``Process %d waits for %s on
    %s; blocked by process %d.``) as ``language`` prints it; None when a translation puts
    something else last.

    >>> blocked_by_marker(ENGLISH)
    b'; blocked by process '
    """
    form = language.format(msgids.DEADLOCK_PROCESS)
    if len(form.literals) >= 2 and form.positions and form.positions[-1] == 3 and form.literals[-2]:
        return form.literals[-2].encode()
    return None


class Format(ABC):
    """Everything logdiag knows of one log format. One instance per format, looked up by its
    :class:`LogFormat` with :func:`logdiag.formats.format_of`."""

    kind: ClassVar[LogFormat]
    #: Whether its lines carry a ``log_line_prefix`` (stderr and the wrappers of stderr lines).
    has_prefix: ClassVar[bool] = False

    def bodies(self, lines: Sequence[str]) -> list[str]:
        """The part of each sample line that starts with the ``log_line_prefix``, for detecting it."""
        return list(lines)

    @abstractmethod
    def records(
        self, lines: Lines, stats: InputStats, name: str, prefix: LinePrefix | None, quiet: float | None = None,
    ) -> Iterator[LogRecord]:
        """The records of decoded lines; what is no record is counted in ``stats``.

        Args:
            lines: ``(line number, text)`` of the input, TICKs from live input among them.
            stats: the input's counts.
            name: the input's name, for each record's source.
            prefix: the ``log_line_prefix``, for the formats that have one.
            quiet: live input: seconds after which a record waiting for more lines is complete.
        """

    def prefilter(self, prefix: LinePrefix | None, language: Language = ENGLISH) -> Prefilter | None:
        """What the fast path needs to read this format (None: it is read record by record).

        ``language`` is the server's ``lc_messages``: csvlog's severity and stderr's keywords are
        in it (a stderr prefix carries its own)."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} format>"


#: How a format without a ``log_line_prefix`` reads its records: (lines, counts, input name).
RecordReader = Callable[[Lines, InputStats, str], Iterator[LogRecord]]


class FieldsFormat(Format):
    """A format whose records carry their fields by name or position (csv columns, JSON keys):
    read by one function, with no ``log_line_prefix`` to know."""

    def __init__(self, read: RecordReader) -> None:
        self._read = read

    def records(
        self, lines: Lines, stats: InputStats, name: str, prefix: LinePrefix | None, quiet: float | None = None,
    ) -> Iterator[LogRecord]:
        return self._read(lines, stats, name)
