"""The fast path for compressed files: the file fast path's two passes over a sliding window.

A compressed file is best decompressed once, but nothing waits for its next line, so its lines
can be handed on late. It is read a block at a time into a window of about ``window_bytes``
behind the newest block:

1. as a block **arrives**, its ERROR lines are looked at (pass 1 of :mod:`logdiag.fastpath.scan`), and the
   sessions that fail in it are kept from then on;
2. a block **leaves** the window, classified like a block of an uncompressed file (pass 2), once
   ``window_bytes`` more have arrived after it: the lines of every session that fails in that
   span go on to the readers.

So a session's lines reach the readers if it fails less than ``window_bytes`` after them, and
each line is tested once, with the same vectorised tests as an uncompressed file (the look-back
of :mod:`logdiag.fastpath.lookback`, which live input needs, costs a session key extracted from every line).

A session that fails after some of its lines have left the window has lost them: it is told to
``on_forgotten``, and its incident says so. Which sessions those are is told by the session line
number (csvlog, jsonlog, ``%l``) of the first of its lines to leave the window after it failed:
1 means nothing came before. Without ``%l``, the session key of every line that leaves the window
without being kept is extracted and told, as the look-back does. That costs more than all the
other tests: such a log, if it is quick to decompress (gzip, zstd), is decompressed twice instead
and read in the scan's two passes (see :func:`keys_every_line`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from logdiag.fastpath.fields import session_key, session_line_number
from logdiag.fastpath.limits import WINDOW_BYTES
from logdiag.fastpath.lookback import Forgotten, tell_forgotten
from logdiag.fastpath.scan import LineClassifier, Measured, cycle_pids, marked, stream_blocks
from logdiag.formats.base import Prefilter
from logdiag.source.framing import Block
from logdiag.source.stats import InputStats

if TYPE_CHECKING:
    import polars as pl

#: (a block, the ERROR lines in it: (byte offset, session key, is a violation))
Arrival = tuple[Block, list[tuple[int, str, bool]]]


@dataclass(frozen=True, slots=True)
class _Departure:
    """A block leaving the window, measured with the sessions kept when it left (its bytes are
    not needed after that)."""

    measured: Future[Measured]
    failed: set[str]  # sessions that failed, after a block had left, since the block before left


def arrivals(pieces: Iterable[bytes], prefilter: Prefilter) -> Iterator[Arrival]:
    """The stream's blocks with their ERROR lines (pass 1); may run on the decompressing thread."""
    for block in stream_blocks(pieces):
        yield block, marked(block, prefilter)


def keys_every_line(prefilter: Prefilter) -> bool:
    """Whether the window has to find the session key of every line it drops (stderr without
    ``%l``): that costs more than all its other tests together, and more than decompressing a
    gzip file again (0.4 s of CPU for 680 MB of stderr log with ISA-L, against 4 s for the keys)."""
    return not prefilter.numbers_every_line


class WindowFilter:
    """Pass on the lines of a compressed file that a diagnosis needs, deciding a window late.

    Args:
        prefilter: what the fast path knows of the format (and its ``log_line_prefix``).
        stats: the input's counts (every line is counted here, kept or not).
        window_bytes: how far after a line its session's failure still keeps it.
        on_forgotten: told ``session_id=`` (or ``pid=``) of sessions whose lines were dropped.
    """

    def __init__(
        self, prefilter: Prefilter, stats: InputStats,
        window_bytes: int = WINDOW_BYTES, on_forgotten: Forgotten | None = None,
    ) -> None:
        self.stats = stats
        self.classifier = LineClassifier(prefilter, stats)
        self.window_bytes = window_bytes
        self.on_forgotten = on_forgotten
        self.window: deque[tuple[Block, list[int]]] = deque()  # blocks, with their other errors' offsets
        self.bytes_in_window = 0
        self.released = False  # whether a block has left the window (and lines were dropped)
        self.pending: set[str] = set()  # failed after that, and none of their lines has left since
        self.session_key = session_key(prefilter)
        self.line_number = session_line_number(prefilter)
        self.by_pid = self.classifier.session_letter == "p"
        # Without session line numbers, the key of every dropped line is told.
        self.tell_dropped = on_forgotten is not None and self.line_number is None
        self.extra = {"key": self.session_key} if self.tell_dropped else None

    def lines(self, arrivals: Iterable[Arrival]) -> Iterator[tuple[int, str]]:
        """The kept lines as ``(line number, text)``, in file order; ``on_forgotten`` is told
        of dropped sessions before their kept lines.

        Each block is measured by a thread as it leaves the window (with the sessions kept by
        then), while this one classifies the block that left before it.
        """
        with ThreadPoolExecutor(1, thread_name_prefix="logdiag-measure") as measuring:
            previous: _Departure | None = None
            for departure in self._departures(arrivals, measuring):
                if previous is not None:
                    yield from self._leave(previous)
                previous = departure
            if previous is not None:
                yield from self._leave(previous)

    def _departures(self, arrivals: Iterable[Arrival], measuring: Executor) -> Iterator[_Departure]:
        """The blocks in the order they leave the window, each being measured."""
        failed: set[str] = set()
        for block, errors in arrivals:
            failed |= self._arrive(block, errors)
            while self.bytes_in_window - self.window[0][0].size >= self.window_bytes:
                yield self._depart(failed, measuring)
                failed = set()
        while self.window:
            yield self._depart(failed, measuring)
            failed = set()

    def _arrive(self, block: Block, errors: list[tuple[int, str, bool]]) -> set[str]:
        """Keep the sessions that fail in the block; those that fail after a block has left."""
        classifier = self.classifier
        failing = {key for _, key, violation in errors if violation and key not in classifier.keys}
        pids = cycle_pids(block, classifier.prefilter) - classifier.pids  # a deadlock's other processes (issue 28)
        if failing or pids:
            classifier.keep_sessions(failing, pids=pids)
        self.window.append((block, sorted(offset for offset, _, violation in errors if not violation)))
        self.bytes_in_window += block.size
        return failing if self.released else set()

    def _depart(self, failed: set[str], measuring: Executor) -> _Departure:
        block, others = self.window.popleft()
        self.bytes_in_window -= block.size
        self.released = True
        classifier = self.classifier
        measured = measuring.submit(classifier.measure_with, classifier.in_kept_session, block, others, self.extra)
        return _Departure(measured, failed)

    def _leave(self, leaving: _Departure) -> Iterator[tuple[int, str]]:
        pl = self.classifier.pl
        self.pending |= leaving.failed
        frame = self.classifier.decide(leaving.measured.result())
        self.stats.lines = self.classifier.carry.line
        kept = frame.filter("keep")
        if self.on_forgotten is not None:
            if self.tell_dropped:
                first = pl.col("line") == pl.col("start")
                dropped = frame.filter(first & ~pl.col("keep"))["key"].drop_nulls().unique()
                tell_forgotten(self.on_forgotten, dropped, self.by_pid)
            elif self.pending:
                tell_forgotten(self.on_forgotten, self._settle(kept), self.by_pid)
        yield from zip(kept["line"], kept["text"], strict=True)

    def _settle(self, kept: pl.DataFrame) -> list[str]:
        """The pending sessions whose first kept line is not their session's first."""
        pl = self.classifier.pl
        firsts = (
            kept.filter(pl.col("line") == pl.col("start"))
            .select(key=self.session_key, number=self.line_number)
            .filter(pl.col("key").is_in(pl.Series(sorted(self.pending), dtype=pl.Utf8).implode()))
            .unique("key", keep="first", maintain_order=True)
        )
        forgotten = []
        for key, number in firsts.iter_rows():
            self.pending.discard(key)
            if number != "1":
                forgotten.append(key)
        return forgotten
