"""Read any PostgreSQL log as one stream of :class:`~logdiag.records.LogRecord`.

``LogReader(["postgresql.csv"])`` iterates over records; ``reader.inputs`` holds per-input counts.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from typing import TYPE_CHECKING

from logdiag.errors import InputError
from logdiag.readers.csvlog import read_csvlog
from logdiag.readers.detect import SAMPLE_LINES, Detection, LogFormat, detect
from logdiag.readers.inputs import (
    DECOMPRESSION_ERRORS,
    QUICK_TO_DECOMPRESS,
    OpenInput,
    decode_lines,
    expand_paths,
)
from logdiag.readers.jsonlog import cloudsql_lines, read_cnpg, read_jsonlog
from logdiag.readers.live import TICK, FileSwitch, _Tick, follow, split_lines
from logdiag.readers.prefix import LinePrefix
from logdiag.readers.stats import InputStats, OnBadLine
from logdiag.readers.stderr import StderrAssembler, logplex_lines, stderr_lines, syslog_lines
from logdiag.records import LogRecord

if TYPE_CHECKING:  # logdiag.scan imports the readers
    from logdiag.scan import Block, Selection

__all__ = ["InputStats", "LinePrefix", "LogFormat", "LogReader", "OnBadLine", "open_log"]


class LogReader:
    """Iterate over the records of one or more inputs; per-input counts land in :attr:`inputs`.

    Args:
        paths: files, globs, log directories, or ``-`` for standard input; compressed or not.
        log_line_prefix: the server's ``log_line_prefix`` for stderr-style logs (else detected).
        format: force a format instead of detecting it.
        on_bad_line: what to do with lines that belong to no record.
        follow: follow the one path given (a file or a log directory) like ``tail -F``.
        from_start: with ``follow``, read what is there first instead of starting at the end.
        quiet: for live input (stdin, ``follow``), seconds of silence after which records still
            waiting for DETAIL/STATEMENT lines are complete. None reads stdin as a batch.
        stop: with ``follow``, set this event to end the iteration.
        fast: read csvlog/jsonlog/stderr through the vectorised pre-filter, which yields only the
            records a diagnosis needs: big plain files with :mod:`logdiag.scan`, standard input
            and followed files with :mod:`logdiag.lookback`, compressed files with :mod:`logdiag.window`.
        fast_min_bytes: the size (decompressed) from which files are pre-filtered.
        lookback_bytes: how far back from a session's failure a stream's lines are still kept
            (default: :data:`~logdiag.lookback.LOOKBACK_BYTES` for pipes and followed files,
            :data:`~logdiag.window.WINDOW_BYTES` for compressed files).
        on_forgotten: told ``session_id=`` or ``pid=`` of each session whose held lines the
            pre-filter dropped (the tracker's :meth:`~logdiag.sessions.SessionTracker.forget`).

    Raises:
        InputError: (when iterated, or at once for missing paths) an input cannot be read.
    """

    def __init__(
        self,
        paths: Sequence[str],
        *,
        log_line_prefix: str | None = None,
        format: LogFormat | None = None,
        on_bad_line: OnBadLine = OnBadLine.SKIP,
        follow: bool = False,
        from_start: bool = False,
        quiet: float | None = None,
        stop: threading.Event | None = None,
        fast: bool = False,
        fast_min_bytes: int | None = None,
        lookback_bytes: int | None = None,
        on_forgotten: Callable[..., None] | None = None,
    ) -> None:
        if follow and (len(paths) != 1 or paths[0] == "-"):
            raise InputError("--follow takes one log file or log directory")
        self.paths = list(paths) if follow else expand_paths(paths)
        if follow and not os.path.exists(self.paths[0]):
            raise InputError(f"no such file or directory: {self.paths[0]}")
        self.log_line_prefix = log_line_prefix
        self.format = format
        self.on_bad_line = on_bad_line
        self.follow = follow
        self.from_start = from_start
        self.quiet = quiet if quiet is not None or not follow else 1.0
        self.stop = stop
        self.fast = fast
        self.fast_min_bytes = fast_min_bytes
        self.lookback_bytes = lookback_bytes
        self.on_forgotten = on_forgotten
        self.inputs: list[InputStats] = []

    def __iter__(self) -> Iterator[LogRecord]:
        # --on-bad-line warn/fail need every line read: only the default mode is pre-filtered.
        filtered = self.fast and self.on_bad_line is OnBadLine.SKIP
        if self.follow:
            for name, lines in _segments(
                follow(self.paths[0], from_start=self.from_start, quiet=self.quiet or 1.0, stop=self.stop)
            ):
                yield from (self._streamed(name, lines) if filtered else self._records(name, lines))
            return
        for path in self.paths:
            opened = OpenInput(path)
            try:
                if filtered and (path == "-" or opened.compression is not None):
                    yield from self._streamed(path, opened.pieces(self.quiet), opened.compression)
                    continue
                if filtered and self.quiet is None:
                    fast = self._fast_records(path, opened)
                    if fast is not None:
                        yield from fast
                        continue
                yield from self._records(path, opened.lines(self.quiet))
            finally:
                opened.close()

    def _records(self, name: str, raw_lines: Iterator[bytes | _Tick]) -> Iterator[LogRecord]:
        stats = InputStats(file=name, on_bad_line=self.on_bad_line)
        self.inputs.append(stats)
        lines = decode_lines(raw_lines, stats)
        head = _sample(lines)
        detection = detect([item[1] for item in head], name, self.log_line_prefix, self.format)
        if detection is None:
            return
        stats.format = detection.format.value
        if detection.prefix is not None:
            stats.log_line_prefix = detection.prefix.format
        yield from records_of(chain(head, lines), detection, stats, name, quiet=self.quiet)

    def _min_bytes(self) -> int:
        """The size (decompressed) from which a file is pre-filtered."""
        from logdiag import scan

        return scan.FAST_PATH_MIN_BYTES if self.fast_min_bytes is None else self.fast_min_bytes

    def _fast_records(self, path: str, opened: OpenInput) -> Iterator[LogRecord] | None:
        """The records the file pre-filter keeps, or None when it does not apply to this file."""
        from logdiag import scan

        peek = OpenInput(path)
        try:
            head = _sample(decode_lines(peek.lines(), InputStats(file=path)))
        finally:
            peek.close()
        detection = detect([item[1] for item in head], path, self.log_line_prefix, self.format)
        if detection is None or not scan.eligible(path, detection.format, opened.compression, self._min_bytes()):
            return None
        stats = InputStats(file=path, on_bad_line=self.on_bad_line, fast_path=True)
        stats.format = detection.format.value
        stats.log_line_prefix = detection.prefix.format if detection.prefix else None
        return self._scanned(path, detection, stats)

    def _scanned(self, path: str, detection: Detection, stats: InputStats) -> Iterator[LogRecord]:
        from logdiag import scan

        self.inputs.append(stats)
        selection = _first_pass(scan.blocks(path), detection)
        lines = scan.selected_lines(scan.blocks(path), detection.format, detection.prefix, selection, stats)
        # The readers count into a scratch copy: the scan has counted the whole file.
        yield from records_of(lines, detection, InputStats(file=path), path)

    def _streamed(
        self, name: str, pieces: Iterator[bytes | _Tick], compression: str | None = None,
    ) -> Iterator[LogRecord]:
        """A stream (pipe, followed or compressed file) through a pre-filter."""
        from logdiag import scan, window

        stats = InputStats(file=name, on_bad_line=self.on_bad_line, fast_path=True)
        failure: list[BaseException] = []
        pieces = _until_corrupt(pieces, failure, hold=compression is not None)
        sample = _sample_pieces(pieces)
        head = _sample(decode_lines(split_lines(piece for piece in sample if piece is not TICK), InputStats(file=name)))
        detection = detect([item[1] for item in head], name, self.log_line_prefix, self.format)
        stream = chain(sample, pieces)
        small = False
        if name != "-" and not self.follow:  # a compressed file: small ones are read as they are
            first, small = _all_if_under(stream, self._min_bytes())
            stream = chain(first, stream)
        if small or detection is None or detection.format not in scan.FORMATS:
            yield from self._records(name, split_lines(stream))
            if failure and self.inputs:
                self.inputs[-1].ended_early(failure[0])
            return
        self.inputs.append(stats)
        stats.format = detection.format.value
        stats.log_line_prefix = detection.prefix.format if detection.prefix else None
        if name == "-" or self.follow:
            lines = self._looked_back(detection, stats, stream)
        elif compression in QUICK_TO_DECOMPRESS and window.keys_every_line(detection.format, detection.prefix):
            lines = self._read_twice(name, detection, stats, stream)
        else:
            lines = self._windowed(detection, stats, stream)
        yield from records_of(lines, detection, InputStats(file=name), name, quiet=self.quiet)
        if failure:
            stats.ended_early(failure[0])


    def _looked_back(self, detection: Detection, stats: InputStats, stream: Iterator[bytes | _Tick]) -> Iterator[tuple[int, str] | _Tick]:
        """Live input: lines go on as soon as they are classified; the others are held a while."""
        from logdiag import lookback

        kept = lookback.LookbackFilter(
            detection.format, detection.prefix, stats, on_forgotten=self.on_forgotten,
            lookback_bytes=self.lookback_bytes or lookback.LOOKBACK_BYTES,
        )
        return kept.lines(lookback.batches(stream, latency=self.quiet), release=self.follow)

    def _windowed(self, detection: Detection, stats: InputStats, stream: Iterator[bytes | _Tick]) -> Iterator[tuple[int, str]]:
        """A compressed file: decompressed and searched for errors by a second thread, classified
        a window late by this one."""
        from logdiag import scan, window
        from logdiag.readahead import in_thread

        window_bytes = self.lookback_bytes or window.WINDOW_BYTES
        # The blocks that fill the window are inflated while polars is imported.
        arrivals = in_thread(
            window.arrivals(stream, detection.format, detection.prefix),  # type: ignore[arg-type]
            depth=1, head_start=window_bytes // scan.CHUNK_BYTES,
        )
        kept = window.WindowFilter(
            detection.format, detection.prefix, stats, on_forgotten=self.on_forgotten,
            window_bytes=window_bytes,
        )
        return kept.lines(arrivals)

    def _read_twice(
        self, name: str, detection: Detection, stats: InputStats, stream: Iterator[bytes | _Tick],
    ) -> Iterator[tuple[int, str]]:
        """A compressed file that is quick to decompress, where the window would have to find
        every line's session: decompressed twice (each time by a second thread), and read in
        two passes like a plain file, which drops nothing."""
        from logdiag import scan
        from logdiag.readahead import in_thread

        def blocks(pieces: Iterator[bytes | _Tick]) -> Iterator[Block]:
            return in_thread(scan.stream_blocks(pieces), depth=1)  # type: ignore[arg-type]

        again = OpenInput(name)
        try:  # up to a break in the data, which the second pass reports
            selection = _first_pass(blocks(_until_corrupt(again.pieces(), [], hold=True)), detection)
        finally:
            again.close()
        return scan.selected_lines(blocks(stream), detection.format, detection.prefix, selection, stats)


def _first_pass(blocks: Iterator[Block], detection: Detection) -> Selection:
    """The scan's first pass; polars (a fifth of a second to import) is imported meanwhile, while
    the search releases the GIL: the second pass needs it."""
    from logdiag import scan

    warm_up = threading.Thread(target=importlib.import_module, args=("polars",), name="logdiag-import")
    warm_up.start()
    try:
        return scan.select(blocks, detection.format, detection.prefix)
    finally:
        warm_up.join()


def _until_corrupt(
    pieces: Iterator[bytes | _Tick], failure: list[BaseException], hold: bool = False,
) -> Iterator[bytes | _Tick]:
    """The pieces up to a decompression error, which is put in ``failure`` instead of raised.

    With ``hold`` (compressed input, where an error can come), each piece waits for the next, so
    that the line the error cuts in two is left out, as the readers leave it out (their lines end
    at a newline or at the end of the input).
    """
    held: bytes | _Tick | None = None
    try:
        for piece in pieces:
            if not hold:
                yield piece
                continue
            if held is not None:
                yield held
            held = piece
    except DECOMPRESSION_ERRORS as exc:
        failure.append(exc)
        if isinstance(held, bytes):
            held = held[: held.rfind(b"\n") + 1]
    if held:
        yield held


def _sample_pieces(pieces: Iterator[bytes | _Tick]) -> list[bytes | _Tick]:
    """The first pieces of a stream: enough for SAMPLE_LINES lines, or all there is when it goes quiet."""
    sample: list[bytes | _Tick] = []
    newlines = 0
    for piece in pieces:
        sample.append(piece)
        if piece is TICK:
            if any(isinstance(p, bytes) and p.strip() for p in sample):
                break
            continue
        newlines += piece.count(b"\n")  # type: ignore[union-attr]
        if newlines >= SAMPLE_LINES:
            break
    return sample


def _all_if_under(pieces: Iterator[bytes | _Tick], size: int) -> tuple[list[bytes | _Tick], bool]:
    """The first pieces of a stream, until they make ``size`` bytes; and whether that is all."""
    head: list[bytes | _Tick] = []
    total = 0
    for piece in pieces:
        head.append(piece)
        total += len(piece) if isinstance(piece, bytes) else 0
        if total >= size:
            return head, False
    return head, True


def _sample(lines: Iterator[tuple[int, str] | _Tick]) -> list[tuple[int, str]]:
    """The first lines, for detection: up to SAMPLE_LINES, or fewer if live input goes quiet."""
    head: list[tuple[int, str]] = []
    for item in lines:
        if item is TICK:
            if any(text.strip() for _, text in head):
                break
            continue
        head.append(item)  # type: ignore[arg-type]
        if len(head) >= SAMPLE_LINES:
            break
    return head


def _segments(stream: Iterator[bytes | _Tick | FileSwitch]) -> Iterator[tuple[str, Iterator[bytes | _Tick]]]:
    """Split a followed stream at file switches: (file name, its lines) for each file in turn."""
    switch = next(stream, None)
    while isinstance(switch, FileSwitch):
        following: list[FileSwitch] = []

        def lines(following: list[FileSwitch] = following) -> Iterator[bytes | _Tick]:
            for item in stream:
                if isinstance(item, FileSwitch):
                    following.append(item)
                    return
                yield item

        segment = lines()
        yield switch.path, segment
        for _ in segment:  # whatever the reader left unread of this file
            pass
        switch = following[0] if following else None


def records_of(
    lines: Iterator[tuple[int, str] | _Tick],
    detection: Detection,
    stats: InputStats,
    name: str,
    quiet: float | None = None,
) -> Iterator[LogRecord]:
    """The records of decoded ``(line_number, text)`` lines in a detected format."""
    fmt = detection.format
    if fmt is LogFormat.CSVLOG:
        return read_csvlog(lines, stats, name)
    if fmt is LogFormat.JSONLOG:
        return read_jsonlog(lines, stats, name)
    if fmt is LogFormat.CNPG:
        return read_cnpg(lines, stats, name)
    assert detection.prefix is not None
    assembler = StderrAssembler(detection.prefix, stats, name, quiet=quiet)
    if fmt is LogFormat.SYSLOG:
        return assembler.feed_all(syslog_lines(lines, stats))
    if fmt is LogFormat.LOGPLEX:
        return assembler.feed_all(logplex_lines(lines, stats))
    if fmt is LogFormat.CLOUDSQL:
        return assembler.feed_all(cloudsql_lines(lines, stats))
    return assembler.feed_all(stderr_lines(lines))


def open_log(paths: Sequence[str], **options: object) -> LogReader:
    """Shorthand for :class:`LogReader`: ``for record in open_log(["pg.csv"]): ...``."""
    return LogReader(paths, **options)  # type: ignore[arg-type]
