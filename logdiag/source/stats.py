"""Per-input bookkeeping: what was read, what was skipped and why, and the bad-line policy."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from logdiag.errors import BadLineError

MAX_EXAMPLES = 5
#: Unread lines kept to find a ``log_line_prefix`` that would read them.
UNREAD_SAMPLE = 200


class OnBadLine(str, Enum):
    """What to do with a line that is not part of any PostgreSQL record."""

    SKIP = "skip"  # count it and go on (the count is always reported)
    WARN = "warn"  # count it and show a few examples
    FAIL = "fail"  # stop at the first one with an error

    def __str__(self) -> str:
        return self.value


@dataclass(slots=True)
class SkippedLine:
    """One example of a skipped line, kept for the warning."""

    line: int
    reason: str
    text: str
    foreign: bool = False  # it holds nothing of PostgreSQL's


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file of a log directory, glob or archive that is not a PostgreSQL log, left unread; or
    (``unread``) an input that may be one but could not be read, which makes the run incomplete."""

    name: str
    reason: str
    unread: bool = False


#: The longest line read whole: a csvlog line of a failed 10 MB statement is 20 MB (its message quotes it).
#: The rest of a longer one is left out, so that memory stays bounded on any input (issue 27).
MAX_LINE_BYTES = 64 << 20


@dataclass(slots=True)
class LineCuts:
    """The lines of an input longer than ``limit`` bytes, each cut there (the rest skipped).

    Kept by byte offset of the line's start in the (decompressed) input, so a line met again
    (the pre-filter's second pass, a sample read before) is counted once.
    """

    limit: int = MAX_LINE_BYTES
    starts: set[int] = field(default_factory=set)

    def record(self, offset: int) -> None:
        self.starts.add(offset)

    @property
    def count(self) -> int:
        return len(self.starts)

    @property
    def reason(self) -> str:
        return f"line longer than {size_text(self.limit)}, cut there (--max-line-bytes)"


def size_text(size: int) -> str:
    """A size in bytes as people write it.

    >>> size_text(16 << 20), size_text(1536), size_text(1000)
    ('16 MiB', '1.5 KiB', '1000 bytes')
    """
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):g} {unit}"
    return f"{size} bytes"


#: Reasons a reader gives to lines a look-back cut off from their record.
_CUT_OFF = ("without its message", "not a csvlog record", "truncated csvlog record", "unterminated quoted field")


@dataclass(slots=True)
class InputStats:
    """What a reader did with one input: counts that the reports and the tests rely on.

    Attributes:
        file: the input's name as the user gave it (``-`` for stdin).
        format: the detected or requested format's name.
        log_line_prefix: the prefix used to read stderr-style lines, if any.
        prefix_inferred: whether that prefix was worked out from the lines (else it was given).
        prefix_unsettled: what the lines could not settle about an inferred prefix.
        lc_messages: the server's language, as a catalog's name (``de``, ``zh_CN``; ``en``).
        lines: physical lines read.
        records: records produced.
        skipped: lines not accounted for by a record, by reason.
        foreign: of those, the lines that hold nothing of PostgreSQL's (another program's line
            in a shared syslog file, an operator's message, a line of NUL bytes): nothing was
            lost by leaving them out.
        recoded: lines that were not UTF-8 and were read as Latin-1.
        blank: empty lines, which carry nothing (PostgreSQL never writes one).
        error: why reading stopped early (e.g. a truncated .gz), or None.
        cuts: the lines longer than the line limit, cut there: counted as skipped (not read whole).
        lost: why records may be missing although the input was read to its end (the file
            shrank while it was read), or None: a run with one is incomplete.
    """

    file: str
    format: str | None = None
    log_line_prefix: str | None = None
    prefix_inferred: bool = False
    prefix_unsettled: list[str] = field(default_factory=list)
    lc_messages: str | None = None
    lines: int = 0
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    foreign: int = 0
    recoded: int = 0
    blank: int = 0
    error: str | None = None
    lost: str | None = None
    examples: list[SkippedLine] = field(default_factory=list)
    unread_sample: list[str] = field(default_factory=list)  # the first unread lines' text
    on_bad_line: OnBadLine = OnBadLine.SKIP
    fast_path: bool = False  # read through the vectorised pre-filter (logdiag.fastpath.scan)
    cuts: LineCuts = field(default_factory=LineCuts)

    @property
    def skipped_total(self) -> int:
        """Lines that no record accounts for (or only in part: lines cut at the line limit)."""
        return sum(self.skipped.values()) + self.cuts.count

    def reasons(self) -> list[tuple[str, int]]:
        """The skipped lines' reasons and counts, most first."""
        counts = self.skipped + Counter({self.cuts.reason: self.cuts.count})
        return counts.most_common()

    @property
    def unread(self) -> int:
        """Lines that may have held PostgreSQL's records and were not read: a run that has any did
        not read the whole log."""
        return self.skipped_total - self.foreign

    def ended_early(self, exc: BaseException, after_line: int | None = None) -> None:
        """The input (a compressed file) stopped short: say where, once."""
        if self.error is None:
            line = self.lines if after_line is None else after_line
            self.error = f"input ends early or is corrupt after line {line}: {exc}"

    def take_rejected(self, scratch: InputStats) -> None:
        """Count what a reader rejected of lines already counted as records (in ``scratch``) as
        skipped here instead: one record less for each. Lines a pre-filter's look-back cut off from
        their record (a DETAIL without its message, the end of a quoted field) are no rejection:
        the pre-filter counted them already."""
        rejected = {reason: n for reason, n in scratch.skipped.items() if not reason.endswith(_CUT_OFF)}
        for reason, count in rejected.items():
            self.skipped[reason] += count
            self.records = max(0, self.records - count)
        for example in scratch.examples:
            if example.reason in rejected and len(self.examples) < MAX_EXAMPLES:
                self.examples.append(example)

    def unskip(self, lines: list[tuple[int, str, str]]) -> None:
        """Take back skips of ``(line, reason, text)``: those lines were read after all."""
        for _, reason, _ in lines:
            self.skipped[reason] -= 1
            if not self.skipped[reason]:
                del self.skipped[reason]
        numbers = {line for line, _, _ in lines}
        texts = {text[:1000] for _, _, text in lines}
        self.examples = [example for example in self.examples if example.line not in numbers]
        self.unread_sample = [text for text in self.unread_sample if text not in texts]

    def skip(self, line: int, reason: str, text: str = "", count: int = 1, foreign: bool = False) -> None:
        """Count ``count`` skipped lines starting at ``line`` (``foreign``: they hold nothing of
        PostgreSQL's); raise under ``--on-bad-line fail``."""
        self.skipped[reason] += count
        self.foreign += count if foreign else 0
        if self.on_bad_line is OnBadLine.FAIL:
            raise BadLineError(f"{self.file}:{line}: {reason}: {text[:80]!r}")
        if not foreign and text and len(self.unread_sample) < UNREAD_SAMPLE:
            self.unread_sample.append(text[:1000])
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(SkippedLine(line, reason, text[:200], foreign))
