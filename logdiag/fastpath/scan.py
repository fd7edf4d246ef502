"""The fast path: find, with vectorised scans, the few records a diagnosis needs in a big log.

Most of a big log is traffic that ends in no error. Two passes over a file on disk pick the lines
that matter (a compressed file is decompressed for each pass when that is quick, see
:func:`logdiag.fastpath.window.keys_every_line`), and only those go through the same readers, session tracker and diagnosis as
every other input, so the fast path and the streaming path give the same incidents:

1. **Markers** (the C library's ``memmem`` over blocks of whole lines, each read while the one
   before is searched): every ERROR record is found; those that are constraint violations name the
   sessions to keep whole (by session id, or by pid when the log has none); the other errors are
   kept alone (by byte offset), for ``other_errors``.
2. **Lines** (:class:`LineClassifier`: polars, a 16 MB block at a time so that memory stays
   flat, a thread running the tests on the next block while this one is decided): for csvlog,
   record boundaries come from the parity of double quotes (counted only on the few lines that
   do not end like a record), so quoted newlines are exact; the
   lines of kept sessions, of kept records, of CREATE/ALTER TABLE statements (the catalog) and of
   the first BEGIN/COMMIT (which tells the tracker that the log shows transaction boundaries) are
   handed on with their exact line numbers, and every line is counted.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from logdiag.diagnosis.messages import (
    inferred_sqlstate,
    is_pitfall_sqlstate,
    is_violation_sqlstate,
    parse_violation,
)
from logdiag.fastpath.bytesearch import Haystack
from logdiag.fastpath.fields import line_session
from logdiag.fastpath.readahead import in_thread
from logdiag.formats.base import Continuation, ErrorLine, Prefilter
from logdiag.source import framing
from logdiag.source.framing import Block, decode_line
from logdiag.source.stats import InputStats, LineCuts

if TYPE_CHECKING:  # polars is imported when a classifier is made, not with the module
    import polars as pl

CHUNK_BYTES = 16 * 1024 * 1024

# CREATE [CONSTRAINT] TRIGGER ties a trigger's error to its constraint and table (issue 26)
_DDL = r"(?i)\b(?:create|alter)\b.{0,200}?\b(?:table|trigger)\b"
_TABLE = "(?i:table|trigger)"  # in every line _DDL matches
_BOUNDARY = r"(?i)(?:statement|execute [^ :]{1,200}): \s*(?:begin|start\s+transaction|commit|end|rollback|abort)\b"


@dataclass
class Selection:
    """What the marker pass decided to keep."""

    sessions: set[str] = field(default_factory=set)  # keys (session id or pid) of failing sessions
    records: set[int] = field(default_factory=set)  # byte offsets of other errors, kept alone
    #: the processes of deadlocks' cycles: their sessions are kept whole too (issue 28)
    pids: set[int] = field(default_factory=set)


# --- reading ------------------------------------------------------------------------------

def blocks(path: str, size: int | None = None, *, cuts: LineCuts | None = None) -> Iterator[Block]:
    """The file in blocks of whole lines, each read by a thread while the one before is used:
    :func:`stream_blocks` of its reads.

    Reading in blocks rather than mapping the file keeps the resident memory flat whatever the
    size of the log (mapped file pages count as resident once touched). Reading releases the
    GIL, and so do the marker search and polars: the next block's read overlaps with them.
    """
    size = size or CHUNK_BYTES
    return in_thread(stream_blocks(framing.cut_long_lines(_reads(path, size), cuts or LineCuts()), size), depth=1)


def stream_blocks(pieces: Iterable[bytes], size: int | None = None) -> Iterator[Block]:
    """A stream (a file's reads, a decompressed file) in blocks of about ``size`` bytes of whole
    lines (:func:`logdiag.source.framing.blocks`: a piece of ``size`` bytes is not copied)."""
    return framing.blocks(pieces, size or CHUNK_BYTES)


def _reads(path: str, size: int) -> Iterator[bytes]:
    """The file in reads of ``size`` bytes: each is a block as it is."""
    with open(path, "rb", buffering=0) as raw:
        while data := raw.read(size):
            yield data


# --- pass 1: markers ----------------------------------------------------------------------

def lines_with(block: Block, marker: bytes) -> Iterator[tuple[int, bytes]]:
    """(byte offset in the file, the line) for every line of the block that contains ``marker``."""
    if block.head:
        yield from lines_with(Block(block.head_offset, block.head, len(block.head)), marker)
    data, position = block.data, block.start
    haystack = Haystack(data)
    while (hit := haystack.find(marker, position, block.end)) >= 0:
        start = data.rfind(b"\n", 0, hit) + 1
        end = data.find(b"\n", hit, block.end)
        end = block.end if end < 0 else end
        yield block.offset + start, data[start:end]
        position = end + 1


def select(file_blocks: Iterable[Block], prefilter: Prefilter) -> Selection:
    """Pass 1: the sessions to keep whole, and the other errors' lines (byte offsets) to keep alone."""
    selection = Selection()
    for block in file_blocks:
        selection.pids |= cycle_pids(block, prefilter)
        for offset, key, whole in marked(block, prefilter):
            if whole:
                selection.sessions.add(key)
            else:
                selection.records.add(offset)
    return selection


def marked(block: Block, prefilter: Prefilter) -> list[tuple[int, str, bool]]:
    """(byte offset, session key, whether to keep the session whole) of the block's ERROR records
    (whole: a constraint violation's) and of the statements that switch foreign-key checks off
    (whole: the writes of the window come after, and the window is reported, issue 26)."""
    found = list(errors_in(lines_with(block, prefilter.marker), prefilter))
    seen: set[int] = set()
    for marker in SWITCH_MARKERS:
        for offset, line in lines_with(block, marker):
            if offset in seen:
                continue
            seen.add(offset)
            text = decode_line(line)[0]
            if _SWITCHES_OFF.search(text) and (key := line_session(prefilter, text)) is not None:
                found.append((offset, key, True))
    return found


#: Bytes in every line that may switch foreign-key checks off, as people spell it (issue 26);
#: :data:`_SWITCHES_OFF` decides, as :func:`logdiag.diagnosis.statements.checks_switch` does.
SWITCH_MARKERS = (b"eplication_role", b"EPLICATION_ROLE", b"rigger", b"RIGGER")
_SWITCHES_OFF = re.compile(
    r"(?i)\bsession_replication_role\s{0,20}(?:=|\bto\b)\s{0,20}'?replica\b|\bdisable\s{1,20}trigger\s{1,20}all\b"
)




def cycle_follows(block: Block, prefilter: Prefilter) -> bool:
    """Whether the block ends with a deadlock's ERROR whose cycle (its DETAIL lines: stderr) is
    still to come: a stream holds the block back until it has them, so that the sessions of
    the cycle are handed on before the ERROR, not between its lines (issue 28)."""
    marker = prefilter.blocked_by
    if marker is None:
        return False
    last = None
    for error in prefilter.error_lines(lines_with(block, prefilter.marker)):
        state = error.sqlstate or (inferred_sqlstate(error.message) if error.message else None)
        if state == DEADLOCK_SQLSTATE:
            last = error.position
    if last is None:
        return False
    return not any(position >= last for position, _ in lines_with(block, marker))


def joined(first: Block, second: Block) -> Block:
    """Two blocks of a stream, one after the other, as one."""
    before = first.head + first.data[first.start : first.end] + second.head
    data = before + second.data[second.start :]
    return Block(first.head_offset, data, len(before) + second.end - second.start)


def cycle_pids(block: Block, prefilter: Prefilter) -> set[int]:
    """The processes a deadlock's DETAIL in the block names as blocking (every process of a
    cycle blocks another): the digits after each ``; blocked by process `` (issue 28).

    A statement that holds those words only keeps one more session: never fewer."""
    marker = prefilter.blocked_by
    found: set[int] = set()
    if marker is None:
        return found
    for _, line in lines_with(block, marker):
        at = line.find(marker)
        while at >= 0:
            start = end = at + len(marker)
            while end < len(line) and end - start < 10 and 0x30 <= line[end] <= 0x39:
                end += 1
            if end > start:
                found.add(int(line[start:end]))
            at = line.find(marker, end)
    return found


def errors_in(lines: Iterable[tuple[int, bytes]], prefilter: Prefilter) -> Iterator[tuple[int, str, bool]]:
    """(position, session key, whether it is a constraint violation) of the ERROR records among
    ``lines`` (which contain the format's marker); the position is passed through."""
    for error in prefilter.error_lines(lines):
        yield error.position, error.session, _is_violation(error)


def _is_violation(error: ErrorLine) -> bool:
    """A line whose message the format's test does not read is judged by its SQLSTATE alone."""
    if error.sqlstate is not None and is_pitfall_sqlstate(error.sqlstate):
        return True  # a finding (and the errors it aborted) needs its session's records whole
    if error.sqlstate == DEADLOCK_SQLSTATE:
        return True  # a deadlock's incident: its transaction's statements (issue 28)
    if error.message is None:
        return error.sqlstate is not None and is_violation_sqlstate(error.sqlstate)
    if error.sqlstate is None:
        # Without SQLSTATEs a constraint trigger's error is told by its CONTEXT (issue 26), which
        # this line does not hold: keep the session of every error, as if it were one.
        return True
    return parse_violation(error.message, error.detail, error.sqlstate) is not None


#: Sessions named in one regular expression at most: 20,000 in one outgrow polars' regex size
#: limit (10 MB compiled).
SESSIONS_PER_PATTERN = 1000
DEADLOCK_SQLSTATE = "40P01"


def _alternation(keys: Sequence[str], pids: Sequence[str] = ()) -> str:
    """A regular expression that matches any of the keys (as they are written), or any of the
    ``pids`` patterns (:func:`pid_pattern`)."""
    return "(?:" + "|".join([*(re.escape(k) for k in keys), *pids]) + ")"


def pid_pattern(pid: int, letter: str) -> str:
    """The session keys of a process: its pid (``%p``), or a session id that ends in its pid in
    hexadecimal (``%c``, csvlog's and jsonlog's session_id: the session's start time and pid).

    >>> pid_pattern(1299, "c"), pid_pattern(1299, "p")
    ('[0-9a-f]{1,16}\\\\.513', '1299')
    """
    return rf"[0-9a-f]{{1,16}}\.{pid:x}" if letter == "c" else str(pid)


def pids_pattern(pids: Iterable[int], letter: str) -> str:
    """A regular expression that matches a session key of any of these processes, whole."""
    return "^" + _alternation((), [pid_pattern(pid, letter) for pid in sorted(pids)]) + "$"


def _pid_literal(pid: int, letter: str) -> str:
    """A text every key of the process holds (the cheap test's literal)."""
    return f".{pid:x}" if letter == "c" else str(pid)


# --- pass 2: lines --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SessionTest:
    """Whether a record's first line is of the kept sessions: a cheap candidate test every line
    gets, and the exact test (None when the candidate is exact) only its candidates get."""

    candidate: str | None  # a regular expression; None: too many sessions for one (see keys)
    exact: pl.Expr | None
    keys: tuple[str, ...] = ()  # without a candidate: the keys, looked for as strings (Aho-Corasick)

    def candidates(self, text: pl.Expr) -> pl.Expr:
        """The candidate test of a text column."""
        return text.str.contains(self.candidate) if self.candidate is not None else text.str.contains_any(list(self.keys))


@dataclass(frozen=True, slots=True)
class QuoteRuns:
    """csvlog: where a block's lines stand with respect to quoted fields, worked out before the
    parity the block starts with (1 if it starts inside a quoted field) is known."""

    odd_since_end: list[int]  # the lines an odd number of quotes separate from the last record end
    first_run: int  # lines up to the first that ends a record: the starting parity adds to theirs
    parity_after: tuple[int, int]  # the parity after the block, if it starts outside (0) or inside (1)


@dataclass(frozen=True, slots=True)
class Measured:
    """What :meth:`LineClassifier.measure` found in a block."""

    frame: pl.DataFrame  # text and the vectorised tests' columns
    kept_lines: list[int]  # 0-based indexes in the block of the lines kept alone (other errors)
    extra: tuple[str, ...]  # the names of the extra columns
    recoded: int  # lines that were not UTF-8
    nul_lines: int  # lines of nothing but NUL bytes
    quotes: QuoteRuns | None = None  # csvlog


@dataclass
class _Carry:
    """State that crosses block boundaries."""

    line: int = 0  # physical lines before this block
    parity: int = 0  # csvlog: 1 if the block starts inside a quoted field (odd quotes before it)
    start: int | None = None  # the line the record the block starts in started at
    keep: bool = False  # whether that record is kept
    boundary_kept: bool = False
    alone: bool = False  # stderr: whether the last message record was an other error kept alone


class SelectionFilter:
    """Pass 2: pass on the lines of what pass 1 selected (:func:`select`), counting every line.

    Args:
        prefilter: what the fast path knows of the format (and its ``log_line_prefix``).
        selection: the sessions to keep whole and the other errors to keep alone.
        stats: the input's counts (every line is counted here, kept or not).
    """

    def __init__(self, prefilter: Prefilter, selection: Selection, stats: InputStats) -> None:
        self.classifier = LineClassifier(prefilter, stats)
        self.classifier.keep_sessions(selection.sessions, pids=selection.pids)
        self.offsets = sorted(selection.records)
        self.stats = stats

    def lines(self, blocks: Iterable[Block]) -> Iterator[tuple[int, str]]:
        """The kept lines, with their 1-based physical line numbers, in file order."""
        classifier = self.classifier

        def measured_blocks() -> Iterator[Measured]:
            offsets = self.offsets
            for block in blocks:
                upto = bisect.bisect_left(offsets, block.offset + block.end)
                here, offsets = offsets[:upto], offsets[upto:]
                yield classifier.measure(block, here)

        # The kept sessions are known from the start: a thread measures the next block meanwhile.
        for measured in in_thread(measured_blocks(), depth=1):
            chosen = classifier.decide(measured).filter("keep")
            yield from zip(chosen["line"], chosen["text"], strict=True)
        self.stats.lines = classifier.carry.line


class LineClassifier:
    """Decide, a block at a time, which physical lines go on to the readers; count the rest.

    Kept: every line of the records of kept sessions, of the records that start at kept byte
    offsets (other errors), of CREATE/ALTER TABLE statements (the catalog) and of the first
    BEGIN/COMMIT of a stderr log (which tells the tracker that the log shows transaction
    boundaries). Records, blank and unusable lines are counted the vectorised way, exactly as the
    readers would count them.
    """

    def __init__(self, prefilter: Prefilter, stats: InputStats, compact: bool = False) -> None:
        import polars as pl

        self.pl = pl
        self.prefilter = prefilter
        self.stats = stats
        self.compact = compact
        self.carry = _Carry()
        self.keys: dict[str, int] = {}  # kept sessions, oldest first, with the call that kept them
        self.pids: set[int] = set()  # processes of deadlocks' cycles, their sessions kept (issue 28)
        self.generation = 0
        self.session_letter = prefilter.session_letter
        self.in_kept_session: SessionTest | None = None
        text = pl.col("text")
        self.is_record = text.str.contains(prefilter.record_start)
        # stderr's DETAIL, STATEMENT... lines start with the prefix too, but they are no new record:
        # a cheap test (part of the measure's one pass for candidates), then the exact one.
        self.attachment_candidate: str | None = None
        if prefilter.attachment is not None:
            self.attachment_candidate = prefilter.attachment[0]
            self.is_attachment = text.str.contains(prefilter.attachment[1])

    def keep_sessions(self, keys: Iterable[str], at_most: int | None = None, pids: Iterable[int] = ()) -> None:
        """Keep every record of these sessions (session ids, or pids for stderr without %c), and
        of every session of these ``pids`` (a deadlock's cycle); with ``at_most``, forget the
        sessions kept longest ago beyond that many."""
        self.pids.update(pids)
        self.generation += 1
        for key in keys:
            self.keys.pop(key, None)
            self.keys[key] = self.generation
        # Sessions kept by this call or the one before never make room: the rest of their error
        # (stderr's DETAIL and STATEMENT lines) may be in the next block.
        while at_most is not None and len(self.keys) > at_most:
            oldest = next(iter(self.keys))
            if self.keys[oldest] >= self.generation - 1:
                break
            del self.keys[oldest]
        if self.keys or self.pids:
            self.in_kept_session = self.session_test(self.keys)

    def session_test(self, keys: Iterable[str]) -> SessionTest:
        """The test for a record's first line being of these sessions.

        One regular expression names them all, up to :data:`SESSIONS_PER_PATTERN`; beyond, one
        would outgrow the regex engine's size limit (20,000 failing sessions, issue 27): the
        candidates are then the lines that hold a key anywhere, and the exact test is one
        expression per that many sessions, run on the candidates alone.
        """
        ordered = sorted(keys)
        letter = self.session_letter
        pids = [pid_pattern(pid, letter) for pid in sorted(self.pids)]
        text = self.pl.col("text")
        if len(ordered) + len(pids) <= SESSIONS_PER_PATTERN:
            candidate, exact = self.prefilter.session_test(_alternation(ordered, pids))
            return SessionTest(candidate, None if exact is None else text.str.contains(exact))
        tests = []
        for start in range(0, len(ordered), SESSIONS_PER_PATTERN):
            candidate, exact = self.prefilter.session_test(_alternation(ordered[start : start + SESSIONS_PER_PATTERN]))
            tests.append(text.str.contains(candidate if exact is None else exact))
        for start in range(0, len(pids), SESSIONS_PER_PATTERN):
            candidate, exact = self.prefilter.session_test(_alternation((), pids[start : start + SESSIONS_PER_PATTERN]))
            tests.append(text.str.contains(candidate if exact is None else exact))
        literals = (*ordered, *(_pid_literal(pid, letter) for pid in sorted(self.pids)))
        return SessionTest(None, self.pl.any_horizontal(tests), literals)

    def measure(self, block: Block, kept_offsets: Sequence[int] = (), extra: dict[str, pl.Expr] | None = None) -> Measured:
        """The block's lines and what the vectorised tests (and ``extra`` expressions, computed
        alongside them) say of them, before anything that depends on the blocks before it;
        ``kept_offsets``: the byte offsets in the file of lines to keep alone (other errors).

        It changes nothing in the classifier: a thread can measure the next block while this
        one is decided (polars releases the GIL). The sessions kept at this point are the ones
        :meth:`decide` keeps the block's records of.
        """
        return self.measure_with(self.in_kept_session, block, kept_offsets, extra)

    def measure_with(
        self, session_test: SessionTest | None, block: Block, kept_offsets: Sequence[int] = (),
        extra: dict[str, pl.Expr] | None = None,
    ) -> Measured:
        """:meth:`measure` with the test for kept sessions that was in use at some earlier point
        (a thread measures while the sessions kept change)."""
        pl = self.pl
        text = pl.col("text")
        # One pass finds the few lines that may be of a kept session, DDL or (stderr) a DETAIL,
        # STATEMENT... line (each pass over a 16 MB block costs more than the test it makes);
        # _told_apart tells which on those alone.
        maybe = _TABLE if session_test is None or session_test.candidate is None else f"{session_test.candidate}|{_TABLE}"
        if self.attachment_candidate is not None:
            maybe += "|" + self.attachment_candidate
        maybe_test = text.str.contains(maybe)
        if session_test is not None and session_test.candidate is None:
            maybe_test = maybe_test | session_test.candidates(text)
        columns = {
            **(extra or {}),
            "short": text.str.len_bytes() < 16,
            "is_record": self.is_record,
            "maybe": maybe_test,
        }
        if self.prefilter.record_end is not None:
            columns["ends_record"] = text.str.contains(self.prefilter.record_end)
        data, head, recoded, nul_lines = block.data, block.head, 0, 0
        if b"\x00" in data or b"\x00" in head:
            data, head, recoded, nul_lines = _recoded(block)
        try:
            frame = self._block_lines(block, data, head).with_columns(**columns).collect()
        except (UnicodeDecodeError, pl.exceptions.ComputeError):
            # Not UTF-8 (polars checks every line anyway; a character cut at either end will
            # do): decoded line for line, as the readers do. Any other error comes back below.
            data, head, recoded, nul_lines = _recoded(block)
            frame = self._block_lines(block, data, head).with_columns(**columns).collect()
        if block.partial:
            frame = frame.head(-1)  # the next block hands that line out
        kept_lines = _line_indexes(block, kept_offsets)
        frame = frame.with_columns(index=pl.int_range(pl.len(), dtype=pl.Int64))
        quotes = _quote_runs(frame) if self.prefilter.continuation is Continuation.QUOTED else None
        frame = self._told_apart(frame, session_test).drop("index")
        return Measured(frame, kept_lines, tuple(extra or ()), recoded, nul_lines, quotes)

    def _numbered(self, measured: Measured) -> pl.DataFrame:
        """The measured lines with their line numbers and whether they start a record (each
        polars call costs some 0.5 ms: they are few)."""
        pl = self.pl
        frame = measured.frame
        index = pl.int_range(pl.len(), dtype=pl.Int64)
        line = index + self.carry.line + 1
        continuation = self.prefilter.continuation
        if continuation is Continuation.TAB_LINES:
            frame = frame.with_columns(line=line, is_attachment=pl.col("is_attachment") & ~pl.col("is_record"))
            frame = _confirm(frame, "is_attachment", self.is_attachment)
            frame = frame.with_columns(is_start=pl.col("is_record") | pl.col("is_attachment"))
        elif continuation is Continuation.QUOTED:  # a line starts a record unless it is inside a quoted field
            assert measured.quotes is not None
            inside = _among(index, pl.Series(measured.quotes.odd_since_end, dtype=pl.Int64))
            if self.carry.parity:  # the block starts inside a field: so do the lines before its first end
                inside = inside ^ (index < measured.quotes.first_run)
            frame = frame.with_columns(line=line, is_start=~inside)
        else:
            frame = frame.with_columns(line=line, is_start=pl.lit(True))
        return frame

    def _told_apart(self, frame: pl.DataFrame, session_test: SessionTest | None) -> pl.DataFrame:
        """The lines the measure's one cheap test let through told apart (by their ``index`` in
        the block): of a kept session (``in_session``, which counts where a record starts), DDL
        (``ddl``, likewise), stderr's attachment candidates (``is_attachment``, DETAIL... lines
        and some others); and the blank lines among the short ones (``blank``;
        ``blank_untabbed``: not a TAB-indented one)."""
        pl = self.pl
        text = pl.col("text")
        index = pl.col("index")
        maybe = frame.filter("maybe")
        sessions = ddl = maybe["index"]
        if maybe.height:
            ddl = maybe.filter(text.str.contains(_DDL))["index"]
            if session_test is None:
                sessions = sessions.clear()
            else:
                candidates = maybe.filter(session_test.candidates(text))
                if session_test.exact is not None and candidates.height:
                    candidates = candidates.filter(session_test.exact)
                sessions = candidates["index"]
        blank = frame.filter("short").filter(text.str.contains(r"^\s*$"))
        untabbed = blank.filter(~text.str.starts_with("\t"))["index"] if blank.height else blank["index"]
        told_apart = {}
        if self.attachment_candidate is not None:
            attachments = maybe.filter(text.str.contains(self.attachment_candidate)) if maybe.height else maybe
            told_apart["is_attachment"] = _among(index, attachments["index"])
        return frame.with_columns(
            in_session=_among(index, sessions), ddl=_among(index, ddl),
            blank=_among(index, blank["index"]), blank_untabbed=_among(index, untabbed), **told_apart,
        )

    def _block_lines(self, block: Block, data: bytes, head: bytes) -> pl.LazyFrame:
        """The lines a block hands out (``data`` and ``head``: its own, or made valid UTF-8), the
        one cut at its end included."""
        lines = self._lines(data)
        if block.start:
            lines = lines.slice(1)  # the end of the head
        if not head:
            return lines
        joined: pl.LazyFrame = self.pl.concat([self._lines(head), lines])
        return joined

    def _lines(self, data: bytes) -> pl.LazyFrame:
        """The lines of a block as a lazy frame of ``text``, without their line endings.

        polars' own line scanner is the fastest, but it holds on to some 20 times the block's
        size; ``compact`` classifiers (streams, whose memory must stay small) split in Python.
        """
        polars = self.pl
        if not self.compact:
            scanned: pl.LazyFrame = polars.scan_lines(data, name="text")
            return scanned
        lines = data.decode("utf-8").split("\n")
        if data.endswith(b"\n"):
            lines.pop()
        frame: pl.LazyFrame = polars.LazyFrame({"text": lines}, schema={"text": polars.Utf8})
        return frame.with_columns(polars.col("text").str.strip_suffix("\r")) if b"\r" in data else frame

    def classify(
        self, block: Block, kept_offsets: Sequence[int] = (), extra: dict[str, pl.Expr] | None = None,
    ) -> pl.DataFrame:
        """The block's lines as a frame of ``line``, ``text``, ``start`` (the line their record
        starts at), ``keep`` and the ``extra`` columns; counts go to the stats."""
        return self.decide(self.measure(block, kept_offsets, extra))

    def decide(self, measured: Measured) -> pl.DataFrame:
        """:meth:`classify` for a block measured ahead (the blocks before it decided): the
        sessions kept when it was measured decide which of its lines are kept."""
        pl = self.pl
        text = pl.col("text")
        carry = self.carry
        frame = self._numbered(measured)
        if measured.quotes is not None:
            carry.parity = measured.quotes.parity_after[carry.parity]
        special = []  # more record starts to keep
        if self.prefilter.keeps_first_boundary and not carry.boundary_kept:
            # Only stderr without %v needs it: the first BEGIN/COMMIT says the log shows boundaries.
            first = frame.filter(pl.col("is_start") & text.str.contains(_BOUNDARY))["line"].head(1)
            carry.boundary_kept = bool(len(first))
            special.append(first)
        alone = pl.Series("line", measured.kept_lines, dtype=pl.Int64) + (carry.line + 1)
        if measured.kept_lines:
            special.append(alone)
        kept_start = pl.col("in_session") | pl.col("ddl")
        if special:
            kept_start = kept_start | pl.col("line").is_in(pl.concat(special).implode())
        if self.prefilter.continuation is Continuation.TAB_LINES:
            # An other error kept alone keeps its DETAIL, HINT, CONTEXT and STATEMENT, which stderr
            # writes as lines of their own after it (issue 29 §5: errors.parquet carries them).
            frame = frame.with_columns(
                alone=pl.when("is_record").then(pl.col("line").is_in(alone.implode()))
                .forward_fill().fill_null(carry.alone)
            )
            kept_start = kept_start | (pl.col("is_attachment") & pl.col("alone"))
            if frame.height:
                carry.alone = bool(frame["alone"][-1])
        # A record's continuation lines (quoted newlines, TAB lines) follow the decision of its start.
        frame = frame.lazy().with_columns(
            start=pl.when("is_start").then("line").forward_fill().fill_null(pl.lit(carry.start, pl.Int64)),
            keep=pl.when("is_start").then(kept_start).forward_fill().fill_null(carry.keep),
        ).collect()
        self._count(frame)
        self.stats.recoded += measured.recoded
        if measured.nul_lines:  # counted as blank, they are lines of NUL bytes
            self.stats.blank -= measured.nul_lines
            self.stats.skipped["NUL bytes"] += measured.nul_lines
            self.stats.foreign += measured.nul_lines  # they hold nothing of PostgreSQL's
        if frame.height:
            carry.start = frame["start"][-1]
            carry.keep = bool(frame["keep"][-1])
            carry.line += frame.height
        return frame.select("line", "text", "start", "keep", *measured.extra)

    def _count(self, frame: pl.DataFrame) -> None:
        """Records and unusable lines, counted the vectorised way (the fast path reads no other)."""
        pl = self.pl
        stats = self.stats
        is_start, blank = pl.col("is_start"), pl.col("blank_untabbed")
        continuation, unmatched_reason = self.prefilter.continuation, self.prefilter.unmatched
        if continuation is Continuation.QUOTED:
            starts, good, blank_starts, blank_lines = frame.select(
                starts=is_start.sum(), good=(is_start & pl.col("is_record")).sum(),
                blank_starts=(is_start & pl.col("blank")).sum(), blank_lines=(is_start & blank).sum(),
            ).row(0)
            stats.blank += blank_lines
            stats.records += good
            if starts - blank_starts - good:
                stats.skipped[unmatched_reason] += starts - blank_starts - good
            return
        blank_lines, good = frame.select(blank=blank.sum(), good=pl.col("is_record").sum()).row(0)
        stats.blank += blank_lines
        stats.records += good
        if continuation is Continuation.NONE:
            if frame.height - blank_lines - good:
                stats.skipped[unmatched_reason] += frame.height - blank_lines - good
            return
        # Lines that are no record starts are few: the regular expression runs on those alone.
        unmatched = frame.filter(~is_start & ~blank).filter(~pl.col("text").str.contains(r"^\s")).height
        if unmatched:
            stats.skipped[unmatched_reason] += unmatched


def _quote_runs(frame: pl.DataFrame) -> QuoteRuns:
    """csvlog, before the blocks before it are known: where the block's lines stand with respect
    to quoted fields (see :class:`QuoteRuns`).

    The polars twin of csvlog's rule (an even number of double quotes ends a record,
    :func:`logdiag.formats.csvlog.split_records`): the quotes of a whole block are counted at
    once, before the parity it starts with is known, which the readers' walk cannot do.

    Quotes are counted only on the lines that do not end like a record (the format's ``Prefilter.record_end``).
    They are few, and they come in runs: each run, with the line that ends it, starts outside
    any field (the line before it ended a record), so it is walked here on its own.
    """
    import polars as pl

    unsure = frame.filter(~pl.col("ends_record")).select(
        "index", odd=pl.col("text").str.count_matches('"', literal=True) % 2 == 1
    )
    height = frame.height
    if not height:
        return QuoteRuns([], 0, (0, 1))
    inside: list[int] = []  # lines an odd number of quotes stand before, since the run started
    first_end: int | None = None
    parity, previous = 0, -1
    for index, odd in unsure.iter_rows():
        if index > previous + 1:  # the line after the last run ended it (and a record)
            if parity:
                inside.append(previous + 1)
            first_end = previous + 1 if first_end is None else first_end
            parity = 0
        if parity:
            inside.append(index)
        parity ^= odd
        previous = index
    if previous + 1 < height:  # the block ends with a line that ends a record
        if parity:
            inside.append(previous + 1)
        first_end = previous + 1 if first_end is None else first_end
        return QuoteRuns(inside, first_end + 1, (0, 0))
    if first_end is None:  # no line of the block ends a record
        return QuoteRuns(inside, height, (parity, parity ^ 1))
    return QuoteRuns(inside, first_end + 1, (parity, parity))


def _recoded(block: Block) -> tuple[bytes, bytes, int, int]:
    """The block's data and head as valid UTF-8 without NUL bytes, line for line, as the readers
    decode it, with the number of lines recoded and of lines that held nothing but NUL bytes.

    Lines that are not UTF-8 (a LATIN1 database's statements) are read as Latin-1 and counted;
    NUL bytes are removed, and a line of nothing else becomes blank and is counted as skipped.
    The pieces of lines before ``start`` and after ``end`` (other blocks hand them out) are only
    made valid.
    """
    data = block.data
    try:
        if b"\x00" not in data and b"\x00" not in block.head:
            data.decode("utf-8")
            block.head.decode("utf-8")
            return data, block.head, 0, 0
    except UnicodeDecodeError:
        pass
    recoded = nul_lines = 0
    lines = data.split(b"\n")
    partial = lines.pop() if block.partial else None
    leading = lines.pop(0) if block.start else None
    heads = block.head.removesuffix(b"\n").split(b"\n") if block.head else []
    lines[:0] = heads
    for index, line in enumerate(lines):
        if b"\x00" in line:
            line = line.replace(b"\x00", b"")
            if not line.strip():
                nul_lines += 1
        text, was_recoded = decode_line(line)
        if was_recoded:
            line = text.encode("utf-8")
            recoded += 1
        lines[index] = line
    head = b"".join(line + b"\n" for line in lines[: len(heads)])
    del lines[: len(heads)]
    if leading is not None:
        lines.insert(0, _made_valid(leading))
    if partial is not None:
        lines.append(_made_valid(partial))
    return b"\n".join(lines), head, recoded, nul_lines


def _made_valid(piece: bytes) -> bytes:
    return piece.replace(b"\x00", b"").decode("utf-8", "replace").encode("utf-8")


def _among(index: pl.Expr, chosen: pl.Series) -> pl.Expr:
    """Whether each line's index is one of ``chosen`` (a polars Series, often empty)."""
    import polars as pl

    return index.is_in(chosen.implode()) if len(chosen) else pl.lit(False)


def _confirm(frame: pl.DataFrame, column: str, exact: pl.Expr | None) -> pl.DataFrame:
    """Run the ``exact`` test on the lines whose ``column`` (a cheap candidate test) is true."""
    if exact is None:
        return frame
    import polars as pl

    candidates = frame.filter(pl.col(column))
    if not candidates.height:
        return frame
    confirmed = candidates.filter(exact)["line"]
    if len(confirmed) == candidates.height:  # every candidate passed: the column is exact already
        return frame
    return frame.with_columns(pl.col("line").is_in(confirmed.implode()).alias(column))


def _line_indexes(block: Block, offsets: Sequence[int]) -> list[int]:
    """The 0-based indexes in the block of the lines that start at these (sorted) byte offsets
    of the file."""
    indexes, line, counted = [], block.head.count(b"\n"), block.start
    for offset in offsets:
        position = offset - block.offset
        if position < block.start:  # in the head
            indexes.append(block.head.count(b"\n", 0, offset - block.head_offset))
            continue
        line += block.data.count(b"\n", counted, position)
        counted = position
        indexes.append(line)
    return indexes
