"""Per-input bookkeeping: what was read, what was skipped and why, and the bad-line policy."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from logdiag.errors import BadLineError

MAX_EXAMPLES = 5


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


@dataclass(slots=True)
class InputStats:
    """What a reader did with one input: counts that the reports and the tests rely on.

    Attributes:
        file: the input's name as the user gave it (``-`` for stdin).
        format: the detected or requested format's name.
        log_line_prefix: the prefix used to read stderr-style lines, if any.
        lines: physical lines read.
        records: records produced.
        skipped: lines not accounted for by a record, by reason.
        recoded: lines that were not UTF-8 and were read as Latin-1.
        blank: empty lines, which carry nothing (PostgreSQL never writes one).
        error: why reading stopped early (e.g. a truncated .gz), or None.
    """

    file: str
    format: str | None = None
    log_line_prefix: str | None = None
    lines: int = 0
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    recoded: int = 0
    blank: int = 0
    error: str | None = None
    examples: list[SkippedLine] = field(default_factory=list)
    on_bad_line: OnBadLine = OnBadLine.SKIP
    fast_path: bool = False  # read through the vectorised pre-filter (logdiag.fastpath.scan)

    @property
    def skipped_total(self) -> int:
        """Lines that no record accounts for."""
        return sum(self.skipped.values())

    def ended_early(self, exc: BaseException, after_line: int | None = None) -> None:
        """The input (a compressed file) stopped short: say where, once."""
        if self.error is None:
            line = self.lines if after_line is None else after_line
            self.error = f"input ends early or is corrupt after line {line}: {exc}"

    def skip(self, line: int, reason: str, text: str = "", count: int = 1) -> None:
        """Count ``count`` skipped lines starting at ``line``; raise under ``--on-bad-line fail``."""
        self.skipped[reason] += count
        if self.on_bad_line is OnBadLine.FAIL:
            raise BadLineError(f"{self.file}:{line}: {reason}: {text[:80]!r}")
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(SkippedLine(line, reason, text[:200]))
