"""The fast path for live input: pipes and followed files.

A file on disk can be read twice (:mod:`logdiag.fastpath.scan`: find the failing sessions, then read their
lines). Live input cannot, and its lines must go on within a second of arriving (a compressed file
need not: :mod:`logdiag.fastpath.window`), so it is read in blocks of whole lines, and each block is
classified with the same vectorised tests (:class:`~logdiag.fastpath.scan.LineClassifier`):

- lines of sessions that have already failed, of other errors, DDL and the first BEGIN/COMMIT go
  on to the readers at once, as on the file fast path;
- the other lines are *held*: the last :data:`LOOKBACK_BYTES` of them stay in memory as polars
  frames. When a block brings a constraint violation from a session seen for the first time,
  that session's held lines are handed on first (its history), then the block's own.

Memory is bounded by the look-back; a session whose earlier lines were dropped from it before it
failed is reported to ``on_forgotten``, and the tracker marks its incident's history as lost, as
it does for sessions it evicts itself. Blocks go out at least every ``latency`` seconds and at
every TICK, so a live incident is still reported within about a second.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from logdiag.fastpath.fields import session_key
from logdiag.fastpath.limits import LOOKBACK_BYTES
from logdiag.fastpath.scan import (
    LineClassifier,
    cycle_follows,
    cycle_pids,
    joined,
    marked,
    pids_pattern,
)
from logdiag.formats.base import Prefilter, ReadTo
from logdiag.source.framing import Block, Tick
from logdiag.source.stats import InputStats

if TYPE_CHECKING:
    import polars as pl

#: The size of the blocks live input is classified in (:func:`logdiag.source.framing.blocks`, with
#: the latency): they go out sooner when it goes quiet.
BATCH_BYTES = 2 * 1024 * 1024
#: Sessions whose lines go on at once after their first violation; beyond this many, the one that
#: failed longest ago is held again like any other (and recalled if it fails again).
MAX_KEPT_SESSIONS = 1_000
#: Held lines are added to the last frame held while it is smaller than this (and than a
#: sixteenth of the look-back, which drops whole frames): a recall filters every frame (some
#: 0.3 ms each), and a quiet server's batches of a line or two would otherwise make tens of
#: thousands of frames, and seconds of recall (issue 24).
HELD_FRAME_BYTES = 256 * 1024
#: A block that ends with a deadlock's ERROR waits for the next one (its cycle, issue 28) up to this size.
MAX_DEFERRED_BYTES = 4 * 1024 * 1024

#: Told ``session_id=`` (or ``pid=``, for stderr without %c) of a session whose held lines were dropped.
Forgotten = Callable[..., None]


def tell_forgotten(on_forgotten: Forgotten, keys: Iterable[str], by_pid: bool) -> None:
    """Tell ``on_forgotten`` of these sessions (pids, for stderr without %c)."""
    for key in keys:
        if by_pid:
            on_forgotten(pid=int(key))
        else:
            on_forgotten(session_id=key)


class LookbackFilter:
    """Pass on the lines of a stream that a diagnosis needs; hold the others for a while.

    Args:
        prefilter: what the fast path knows of the format (and its ``log_line_prefix``).
        stats: the input's counts (every line is counted here, kept or not).
        lookback_bytes: how much of the held lines to keep.
        on_forgotten: told the key of every session whose held lines were dropped.
        release: hand on the held lines too at the end, oldest first: a followed file that is
            rotated away takes the history of transactions that go on in the next one.
        compact: trade some speed for memory (see :meth:`LineClassifier._lines`).
    """

    def __init__(
        self, prefilter: Prefilter, stats: InputStats, lookback_bytes: int = LOOKBACK_BYTES,
        on_forgotten: Forgotten | None = None, release: bool = False, compact: bool = True,
    ) -> None:
        import polars as pl

        self.pl = pl
        self.prefilter = prefilter
        self.stats = stats
        self.classifier = LineClassifier(prefilter, stats, compact=compact)
        self.lookback_bytes = lookback_bytes
        self.on_forgotten = on_forgotten
        self.held: deque[tuple[Any, int]] = deque()  # (frame of line, text, key; its size)
        self.held_bytes = 0
        self.last_key: str | None = None  # of the record the last block ended in
        self.session_key = session_key(prefilter, lean=True)
        self.release = release

    def lines(self, blocks: Iterable[Block | Tick]) -> Iterator[tuple[int, str] | Tick]:
        """The kept lines as ``(line number, text)``, recalled history first; TICKs pass through,
        and each block ends with a :class:`~logdiag.formats.base.ReadTo` of its last line."""
        deferred: Block | None = None  # a deadlock's ERROR whose cycle is in the next block (issue 28)
        for block in blocks:
            if isinstance(block, Tick):
                if deferred is not None:
                    yield from self._fed(deferred)
                    deferred = None
                yield block
                continue
            if deferred is not None:
                block, deferred = joined(deferred, block), None
            if block.size < MAX_DEFERRED_BYTES and cycle_follows(block, self.prefilter):
                deferred = block
                continue
            yield from self._fed(block)
        if deferred is not None:
            yield from self._fed(deferred)
        if self.release:
            while self.held:
                frame, _ = self.held.popleft()
                yield from zip(frame["line"], frame["text"], strict=True)
            self.held_bytes = 0

    def _fed(self, block: Block) -> Iterator[tuple[int, str] | Tick]:
        yield from self._feed(block)
        self.stats.lines = self.classifier.carry.line
        yield ReadTo(self.stats.lines)  # the lines held after the last kept one follow it (issue 24)

    def _feed(self, block: Block) -> Iterator[tuple[int, str]]:
        found = marked(block, self.prefilter)
        failing = {key for _, key, violation in found if violation and key not in self.classifier.keys}
        pids = cycle_pids(block, self.prefilter) - self.classifier.pids  # a deadlock's other processes (issue 28)
        if failing or pids:
            yield from self._recall(failing, pids)
            self.classifier.keep_sessions(failing, at_most=MAX_KEPT_SESSIONS, pids=pids)
        others = sorted(offset for offset, _, violation in found if not violation)
        frame = self.classifier.classify(block, others, extra={"key": self.session_key})
        kept = frame.filter("keep")
        yield from zip(kept["line"], kept["text"], strict=True)
        self._hold(frame)

    def _hold(self, frame: pl.DataFrame) -> None:
        """Hold the lines not kept, each with its record's session key; drop the oldest beyond the look-back."""
        pl = self.pl
        # Continuation lines (quoted newlines, TAB lines) take the key of their record's first line,
        # which may have none (a postmaster line).
        first = pl.col("line") == pl.col("start")
        carried = pl.when(first).then("key").forward_fill().fill_null(pl.lit(self.last_key, pl.Utf8))
        frame = frame.with_columns(key=pl.when(first).then("key").otherwise(carried))
        if frame.height:
            self.last_key = frame["key"][-1]
        held = frame.filter(~pl.col("keep")).select("line", "text", "key")
        if not held.height:
            return
        if self.held and self.held[-1][1] < min(HELD_FRAME_BYTES, self.lookback_bytes >> 4):
            last, last_size = self.held.pop()
            self.held_bytes -= last_size
            held = pl.concat([last, held], how="vertical_relaxed", rechunk=True)
        size = int(held.estimated_size())
        self.held.append((held, size))
        self.held_bytes += size
        while self.held_bytes > self.lookback_bytes and len(self.held) > 1:
            dropped, size = self.held.popleft()
            self.held_bytes -= size
            self._forget(dropped)

    def _forget(self, frame: pl.DataFrame) -> None:
        """Tell of the sessions whose lines are dropped: their history is incomplete from now on."""
        if self.on_forgotten is not None:
            keys = frame.get_column("key").drop_nulls().unique()
            tell_forgotten(self.on_forgotten, keys, by_pid=self.classifier.session_letter == "p")

    def _recall(self, keys: set[str], pids: AbstractSet[int] = frozenset()) -> Iterator[tuple[int, str]]:
        """Hand on, oldest first, the held lines of sessions that have just failed, and of the
        sessions of these processes (a deadlock's cycle)."""
        pl = self.pl
        wanted = pl.col("key").is_in(pl.Series(sorted(keys), dtype=pl.Utf8).implode())
        of_pids = pids_pattern(pids, self.classifier.session_letter) if pids else None
        if of_pids is not None:
            wanted = wanted | pl.col("key").str.contains(of_pids)
        recalled = []
        for index, (frame, size) in enumerate(self.held):
            chosen = frame.filter(wanted)
            if not chosen.height:
                continue
            recalled.append(chosen)
            rest = frame.filter(~wanted)
            rest_size = int(rest.estimated_size())
            self.held[index] = (rest, rest_size)
            self.held_bytes += rest_size - size
        if self.last_key in keys or (
            of_pids is not None and self.last_key is not None and re.match(of_pids, self.last_key)
        ):
            self.classifier.carry.keep = True  # the record the next block continues is one of theirs
        for frame in recalled:
            yield from zip(frame["line"], frame["text"], strict=True)
