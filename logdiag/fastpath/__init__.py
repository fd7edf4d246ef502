"""The fast path: a vectorised pre-filter that hands the readers only the lines a diagnosis needs.

It decides which lines go on, never what they mean: the lines it keeps go through the same format
readers, session tracker and diagnosis as every other input, so both paths give the same
incidents (the differential tests in ``tests/test_fast_path.py`` hold it to that). polars and the
reading threads live in this package only, and :mod:`logdiag.reader` is its one caller for
analysis (the Parquet export also reads whole record frames, :mod:`.record_frames`).

The interface:

- :func:`file_lines`: a big plain file, in two passes (:mod:`.scan`);
- :func:`live_lines`: standard input and followed files, holding recent lines (:mod:`.lookback`);
- :func:`compressed_lines`: a compressed file, a window late or in two passes (:mod:`.window`).

Each is a :class:`LineFilter` fed blocks of whole lines (:func:`logdiag.source.framing.blocks`):
``scan.SelectionFilter`` a file's blocks after pass 1 has selected the sessions to keep,
``lookback.LookbackFilter`` a stream's blocks and TICKs as they come, ``window.WindowFilter``
a decompressed stream's blocks with their ERROR lines, found by the decompressing thread. What
they are fed differs because what each can know before a block is classified differs; what they
give is the same: numbered lines.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, TypeVar

from logdiag.fastpath.limits import FAST_PATH_MIN_BYTES, LOOKBACK_BYTES, WINDOW_BYTES
from logdiag.formats.base import Prefilter
from logdiag.source import framing
from logdiag.source.compression import QUICK_TO_DECOMPRESS
from logdiag.source.framing import UTF8_BOM, Block, Tick, until_corrupt
from logdiag.source.inputs import OpenInput
from logdiag.source.stats import InputStats

__all__ = [
    "FAST_PATH_MIN_BYTES", "LIVE_BATCH_SECONDS", "LOOKBACK_BYTES", "WINDOW_BYTES", "compressed_lines", "eligible",
    "file_lines", "live_lines", "warm_up",
]

if TYPE_CHECKING:
    from logdiag.fastpath.lookback import Forgotten
    from logdiag.fastpath.scan import Selection
    from logdiag.fastpath.window import Arrival


#: The kept lines: ``(line number, text)``, in the order the readers take them; TICKs from live input.
Lines = Iterator[tuple[int, str] | Tick]
#: What a filter is fed: blocks, and what comes with them.
Fed_contra = TypeVar("Fed_contra", contravariant=True)


class LineFilter(Protocol[Fed_contra]):
    """The lines of one input that a diagnosis needs, from blocks of all its lines; every line is
    counted in the input's stats."""

    def lines(self, blocks: Iterable[Fed_contra], /) -> Lines:
        """The kept lines, with their 1-based physical line numbers."""
        ...

#: Live input: the longest a line waits in a batch for more (besides the wait for the next piece
#: of input, at most the quiet period). A quarter of a second leaves most of the second an
#: incident has (issue 24) to the quiet period and the reading; a busy stream fills 2 MB batches
#: before it anyway.
LIVE_BATCH_SECONDS = 0.25


def eligible(path: str, min_bytes: int = FAST_PATH_MIN_BYTES) -> bool:
    """Whether :func:`file_lines` applies to a plain file (of a format that has a pre-filter): a
    big, regular file."""
    if path == "-":
        return False
    try:
        stat = os.stat(path)
        if not os.path.isfile(path) or stat.st_size < min_bytes:
            return False
        with open(path, "rb") as file:  # a byte-order mark would shift the scan's offsets: rare, read as it is
            return not file.read(len(UTF8_BOM)).startswith(UTF8_BOM)
    except OSError:
        return False


def file_lines(path: str, prefilter: Prefilter, stats: InputStats) -> Lines:
    """The lines of a plain file a diagnosis needs, with their line numbers; every line is
    counted in ``stats``."""
    from logdiag.fastpath import scan

    selection = _first_pass(scan.blocks(path, cuts=stats.cuts), prefilter)
    kept: LineFilter[Block] = scan.SelectionFilter(prefilter, selection, stats)
    return kept.lines(scan.blocks(path, cuts=stats.cuts))


def live_lines(
    stream: Iterator[bytes | Tick], prefilter: Prefilter, stats: InputStats, *,
    latency: float | None, lookback_bytes: int | None, on_forgotten: Forgotten | None, release: bool,
) -> Iterator[tuple[int, str] | Tick]:
    """Live input (a pipe, a followed file): lines go on as soon as they are classified, in
    batches that wait ``latency`` seconds at most (:data:`LIVE_BATCH_SECONDS` if less); the
    others are held a while (``lookback_bytes``) for sessions that may fail later."""
    from logdiag.fastpath import lookback

    kept: LineFilter[Block | Tick] = lookback.LookbackFilter(
        prefilter, stats, on_forgotten=on_forgotten, lookback_bytes=lookback_bytes or LOOKBACK_BYTES, release=release,
    )
    if latency is not None:
        latency = min(latency, LIVE_BATCH_SECONDS)
    return kept.lines(framing.blocks(stream, lookback.BATCH_BYTES, latency=latency))


def warm_up() -> threading.Thread:
    """Import polars on a thread (a fifth of a second or more) while the caller does something
    else, such as waiting for live input's first lines; an import of polars meanwhile waits
    for it to finish."""
    thread = threading.Thread(target=importlib.import_module, args=("polars",), name="logdiag-import")
    thread.start()
    return thread


def compressed_lines(
    name: str, stream: Iterator[bytes], compression: str | None, prefilter: Prefilter, stats: InputStats, *,
    window_bytes: int | None, on_forgotten: Forgotten | None,
) -> Lines:
    """A compressed file's lines a diagnosis needs: read twice when that is quick and the window
    would have to find every line's session, else classified a window late."""
    from logdiag.fastpath import window

    if compression in QUICK_TO_DECOMPRESS and window.keys_every_line(prefilter):
        return _read_twice(name, stream, prefilter, stats)
    return _windowed(stream, prefilter, stats, window_bytes or WINDOW_BYTES, on_forgotten)


def _windowed(
    stream: Iterator[bytes], prefilter: Prefilter, stats: InputStats, window_bytes: int,
    on_forgotten: Forgotten | None,
) -> Lines:
    """Decompressed and searched for errors by a second thread, classified a window late by this one."""
    from logdiag.fastpath import scan, window
    from logdiag.fastpath.readahead import in_thread

    # The blocks that fill the window are inflated while polars is imported.
    arrivals = in_thread(
        window.arrivals(stream, prefilter),
        depth=1, head_start=window_bytes // scan.CHUNK_BYTES,
    )
    kept: LineFilter[Arrival] = window.WindowFilter(
        prefilter, stats, on_forgotten=on_forgotten, window_bytes=window_bytes,
    )
    return kept.lines(arrivals)


def _read_twice(name: str, stream: Iterator[bytes], prefilter: Prefilter, stats: InputStats) -> Lines:
    """Decompressed twice (each time by a second thread) and read in two passes like a plain
    file, which drops nothing."""
    from logdiag.fastpath import scan
    from logdiag.fastpath.readahead import in_thread

    def read(pieces: Iterator[bytes]) -> Iterator[Block]:
        return in_thread(scan.stream_blocks(pieces), depth=1)

    again = OpenInput(name, cuts=stats.cuts)
    try:  # up to a break in the data, which the second pass reports
        selection = _first_pass(read(until_corrupt(again.chunks(), [], hold=True)), prefilter)
    finally:
        again.close()
    kept: LineFilter[Block] = scan.SelectionFilter(prefilter, selection, stats)
    return kept.lines(read(stream))


def _first_pass(blocks: Iterator[Block], prefilter: Prefilter) -> Selection:
    """The scan's first pass; polars (a fifth of a second to import) is imported meanwhile, while
    the search releases the GIL: the second pass needs it."""
    from logdiag.fastpath import scan

    warming = warm_up()
    try:
        return scan.select(blocks, prefilter)
    finally:
        warming.join()
