"""Read any PostgreSQL log as one stream of :class:`~logdiag.records.LogRecord`.

``LogReader(["postgresql.csv"])`` iterates over records; ``reader.inputs`` holds per-input counts.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from itertools import chain, groupby, islice
from typing import cast

from logdiag import fastpath
from logdiag.errors import ConfigError, InputError, UnreadableInput
from logdiag.fastpath import LOOKBACK_BYTES, WINDOW_BYTES
from logdiag.formats import Detection, LogFormat, Prefilter, detect, format_of, shows_a_client_session
from logdiag.lang import Language, UnknownLanguage, language_named
from logdiag.records import LogRecord
from logdiag.source import archives
from logdiag.source.framing import (
    SAMPLE_LINES,
    TICK,
    Tick,
    all_if_under,
    cut_long_lines,
    decode_lines,
    file_segments,
    sample_lines,
    sample_pieces,
    split_lines,
    until_corrupt,
)
from logdiag.source.inputs import OpenInput
from logdiag.source.live import QUIET_PERIOD, Notify, follow
from logdiag.source.paths import STDIN, Input, expand_inputs
from logdiag.source.stats import MAX_LINE_BYTES, InputStats, LineCuts, OnBadLine, SkippedFile

__all__ = ["LOOKBACK_BYTES", "WINDOW_BYTES", "LogReader", "open_log"]


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
        fast: read the formats that have a :class:`~logdiag.formats.base.Prefilter` (csvlog,
            jsonlog, stderr) through the vectorised pre-filter (:mod:`logdiag.fastpath`), which
            yields only the records a diagnosis needs: big plain files in two passes, standard
            input and followed files holding recent lines, compressed files a window late.
        fast_min_bytes: the size (decompressed) from which files are pre-filtered.
        lookback_bytes: how far back from a session's failure a stream's lines are still kept
            (default: :data:`LOOKBACK_BYTES` for pipes and followed files, :data:`WINDOW_BYTES`
            for compressed files).
        on_forgotten: told ``session_id=`` or ``pid=`` of each session whose held lines the
            pre-filter dropped (the tracker's :meth:`~logdiag.diagnosis.sessions.SessionTracker.forget`).
        on_file: with ``follow``, told the name of each file followed, first and after each switch.
        on_notice: with ``follow``, told of a log directory still without a log file, a file
            truncated, lines that may have been lost (:class:`~logdiag.source.live.FollowNotice`).
        partial_groups: the inputs of a directory, glob or archive may be a part of it (an
            incremental export leaves out the files it has read): one with no log is no error.
        lc_messages: the server's ``lc_messages`` (``de``, ``fr_FR.UTF-8``...); default: told
            from each input's lines (its severity words and ``statement:``).
        max_line_bytes: the longest line read whole; a longer one is cut there, the rest left
            out and counted (``inputs[].cuts``), so that memory stays bounded on any input.

    The files of a directory, glob or archive are read in the order of their first record's
    timestamp (copied files lose their modification times; names need not sort); those that are
    not PostgreSQL logs are skipped and listed in :attr:`skipped_files`. Every input's format
    and prefix are detected on its own lines.

    Raises:
        InputError: (when iterated, or at once for missing paths) an input cannot be read.
    """

    def __init__(
        self,
        paths: Sequence[str | Input],
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
        on_file: Callable[[str], None] | None = None,
        partial_groups: bool = False,
        lc_messages: str | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        on_notice: Notify | None = None,
    ) -> None:
        try:
            #: The server's language when the user gave it (--lc-messages); else each input's own.
            self.language = language_named(lc_messages) if lc_messages else None
        except UnknownLanguage as exc:
            raise ConfigError(f"--lc-messages: {exc}") from None
        if follow and (len(paths) != 1 or paths[0] == "-"):
            raise InputError("--follow takes one log file or log directory")
        #: Files of a directory, glob or archive that were not logs, and so not read.
        self.skipped_files: list[SkippedFile] = []
        self._inputs = (
            [Input(p) if isinstance(p, str) else p for p in paths] if follow else expand_inputs(paths, self.skipped_files)
        )
        self.paths = [item.name for item in self._inputs]
        if follow and not os.path.exists(self.paths[0]):
            raise InputError(f"no such file or directory: {self.paths[0]}")
        self.log_line_prefix = log_line_prefix
        self.format = format
        self.on_bad_line = on_bad_line
        self.follow = follow
        self.from_start = from_start
        self.quiet = quiet if quiet is not None or not follow else QUIET_PERIOD
        self.stop = stop
        self.fast = fast
        self.fast_min_bytes = fast_min_bytes
        self.lookback_bytes = lookback_bytes
        self.on_forgotten = on_forgotten
        self.inputs: list[InputStats] = []
        self.on_file = on_file
        self.on_notice = on_notice
        self.partial_groups = partial_groups
        if max_line_bytes < 1:
            raise ConfigError(f"--max-line-bytes must be a positive size, not {max_line_bytes}")
        self.max_line_bytes = max_line_bytes

    def __iter__(self) -> Iterator[LogRecord]:
        # --on-bad-line warn/fail need every line read: only the default mode is pre-filtered.
        filtered = self.fast and self.on_bad_line is OnBadLine.SKIP
        if self.follow:
            for name, lines in file_segments(
                follow(
                    self.paths[0], from_start=self.from_start, quiet=self.quiet or QUIET_PERIOD, stop=self.stop,
                    on_notice=self.on_notice,
                )
            ):
                if self.on_file is not None:
                    self.on_file(name)
                cuts = self._cuts()
                lines = cut_long_lines(lines, cuts)
                yield from (self._streamed(name, lines, cuts) if filtered else self._records(name, lines, cuts))
            return
        try:
            for path in self._ordered():
                try:
                    opened = OpenInput(path, cuts=self._cuts())
                except UnreadableInput as exc:
                    if len(self._inputs) == 1:
                        raise
                    self.skipped_files.append(SkippedFile(path, str(exc), unread=True))  # the others are read
                    continue
                read_before = len(self.inputs)
                try:
                    if filtered and (path == STDIN or opened.compression is not None or opened.member):
                        yield from self._streamed(
                            path, opened.pieces(self.quiet), opened.cuts, opened.compression, opened.member,
                        )
                    else:
                        plain_file = filtered and opened.compression is None
                        yield from self._records(path, opened.lines(self.quiet), opened.cuts, plain_file=plain_file)
                    for stats in self.inputs[read_before:]:
                        stats.lost = opened.shrank()
                finally:
                    opened.close()
        finally:
            archives.release()  # the archives' streams kept open for their next member

    def _cuts(self) -> LineCuts:
        """An input's line limit, and where it cut lines."""
        return LineCuts(self.max_line_bytes)

    def _ordered(self) -> list[str]:
        """The inputs' names in reading order: each group's (directory, glob, archive) files by
        their first record's time, those that are not logs left out (in :attr:`skipped_files`).

        Files that cannot be opened are left out too, listed as ``unread``.

        Raises:
            InputError: a group has no log at all, or a file of it is a log that cannot be read.
            UnreadableInput: no input can be opened.
        """
        names: list[str] = []
        for group, items in groupby(self._inputs, key=lambda item: item.group):
            if group is None:
                names.extend(item.name for item in items)
                continue
            dated: list[tuple[bool, datetime, int, str]] = []
            skipped: list[SkippedFile] = []
            for position, item in enumerate(items):
                try:
                    first, not_a_log = self._first_time(item)
                except UnreadableInput as exc:
                    skipped.append(SkippedFile(item.name, str(exc), unread=True))
                    continue
                if not_a_log is not None:
                    skipped.append(SkippedFile(item.name, not_a_log))
                    continue
                dated.append((first is None, first or _EPOCH, position, item.name))
            self.skipped_files.extend(skipped)
            if not dated and not self.partial_groups and not any(s.unread for s in skipped):
                named = ", ".join(f"{s.name} ({s.reason})" for s in skipped[:3])
                raise InputError(f"no PostgreSQL log in {group}: {named}{', ...' if len(skipped) > 3 else ''}")
            names.extend(name for *_, name in sorted(dated))
        unread = [s for s in self.skipped_files if s.unread]
        if unread and not names:  # nothing to read at all: an error, not an incomplete run
            raise UnreadableInput(unread[0].reason)
        return names

    def _first_time(self, item: Input) -> tuple[datetime | None, str | None]:
        """The time of an input's first record (None: its first lines have none), read from its
        first lines; or why it is not a PostgreSQL log.

        Raises:
            InputError: its lines hold server messages, but in a format or prefix not recognised.
        """
        opened = OpenInput(item.name, item.head, self._cuts())
        stats = InputStats(file=item.name)
        try:
            head = sample_lines(decode_lines(opened.lines(), stats))
        finally:
            opened.close()
        texts = [text for _, text in head]
        messages = any(_SERVER_MESSAGE.search(text) for text in texts)
        binary = bool(stats.skipped) or stats.recoded > len(texts) // 2
        try:
            detection = detect(texts, item.name, self.log_line_prefix, self.format, self.language)
        except InputError:
            if messages and not binary:
                raise  # a log, but one that cannot be read as it is: say what to pass
            return None, "binary data" if binary else "no PostgreSQL log line"
        if detection is None:
            return None, None  # empty: read (and counted) as it is
        if format_of(detection.format).has_prefix and not messages:
            return None, "binary data" if binary else "no PostgreSQL log line"
        scratch = InputStats(file=item.name)
        for record in records_of(iter(head), detection, scratch, item.name):
            if record.timestamp is not None:
                stamp = record.timestamp
                return (stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)), None
        return None, None

    def _records(
        self, name: str, raw_lines: Iterator[bytes | Tick], cuts: LineCuts, plain_file: bool = False,
    ) -> Iterator[LogRecord]:
        """An input read record by record; with ``plain_file`` (the fast path on), a big plain
        file through the file pre-filter, once its first lines have told its format. ``cuts``:
        the lines' limit (they are within it), and where it cut them."""
        stats = InputStats(file=name, on_bad_line=self.on_bad_line, cuts=cuts)
        lines = decode_lines(raw_lines, stats)
        head = sample_lines(lines, seconds=self.quiet)
        detection = detect([item[1] for item in head], name, self.log_line_prefix, self.format, self.language)
        if self.quiet is None and detection is not None and _may_stop_at_q(detection, head):
            ahead, clients = _client_lines_ahead(lines, detection.language)
            detection = detect(_with_clients(head, clients), name, self.log_line_prefix, self.format, self.language)
            head += ahead
        lines_filter = self._prefilter(detection) if plain_file and self.quiet is None else None
        if detection is not None and lines_filter is not None and fastpath.eligible(name, self._min_bytes()):
            stats = self._stats(name, detection, cuts, fast_path=True)
            # The readers count into a scratch copy: the pre-filter counts the whole file.
            kept = fastpath.file_lines(name, lines_filter, stats)
            yield from _checked(records_of, kept, detection, stats, name)
            return
        if self.quiet is not None and len(head) < SAMPLE_LINES:
            # Live input: the sample ended at a TICK, which it took (or at the end of the input).
            # Passed on, it completes the records waiting in the sample: --follow sends one TICK
            # per quiet period, and they would wait for the next line (issue 24).
            lines = chain([TICK], lines)
        yield from self._detected(name, chain(head, lines), detection, stats)

    def _detected(
        self, name: str, lines: Iterator[tuple[int, str] | Tick], detection: Detection | None, stats: InputStats,
    ) -> Iterator[LogRecord]:
        """An input whose format is known (None: it has no line), read record by record."""
        self.inputs.append(stats)
        if detection is None:  # no line but blank ones in the sample: count the rest, read nothing silently
            for item in lines:
                if isinstance(item, Tick):
                    continue
                if item[1].strip():
                    stats.skip(item[0], "line after many blank ones, format not told", item[1])
                else:
                    stats.blank += 1
            return
        _note_format(stats, detection)
        yield from records_of(lines, detection, stats, name, quiet=self.quiet)

    def _stats(self, name: str, detection: Detection, cuts: LineCuts, fast_path: bool = False) -> InputStats:
        """The counts of an input whose format is known, added to :attr:`inputs`."""
        stats = InputStats(file=name, on_bad_line=self.on_bad_line, fast_path=fast_path, cuts=cuts)
        _note_format(stats, detection)
        self.inputs.append(stats)
        return stats

    @staticmethod
    def _prefilter(detection: Detection | None) -> Prefilter | None:
        """What the fast path needs of the detected format, or None: it is read record by record."""
        return None if detection is None else format_of(detection.format).prefilter(detection.prefix, detection.language)

    def _min_bytes(self) -> int:
        """The size (decompressed) from which a file is pre-filtered."""
        return fastpath.FAST_PATH_MIN_BYTES if self.fast_min_bytes is None else self.fast_min_bytes

    def _streamed(
        self, name: str, pieces: Iterator[bytes | Tick], cuts: LineCuts, compression: str | None = None,
        member: bool = False,
    ) -> Iterator[LogRecord]:
        """A stream (pipe, followed or compressed file, archive member) through a pre-filter;
        ``cuts`` as for :meth:`_records`."""
        failure: list[BaseException] = []
        pieces = until_corrupt(pieces, failure, hold=compression is not None or member)
        live = name == STDIN or self.follow
        if not live:
            yield from self._pre_filtered(name, pieces, cuts, failure, compression, live)
            return
        # While the first lines come, polars is imported: an incident among them is not late.
        warming = fastpath.warm_up()
        try:
            yield from self._pre_filtered(name, pieces, cuts, failure, compression, live)
        finally:
            warming.join()  # an import still going when the interpreter exits prints a traceback

    def _pre_filtered(
        self, name: str, pieces: Iterator[bytes | Tick], cuts: LineCuts, failure: list[BaseException],
        compression: str | None, live: bool,
    ) -> Iterator[LogRecord]:
        """The body of :meth:`_streamed`."""
        sample = sample_pieces(pieces, seconds=self.quiet if live else None)
        head = sample_lines(decode_lines(split_lines(piece for piece in sample if piece is not TICK), InputStats(file=name)))
        detection = detect([item[1] for item in head], name, self.log_line_prefix, self.format, self.language)
        if not live and detection is not None and _may_stop_at_q(detection, head):
            sample += all_if_under(pieces, LOOK_AHEAD_BYTES)[0]
            read = decode_lines(split_lines(cast(list[bytes], sample)), InputStats(file=name))
            _, clients = _client_lines_ahead(islice(read, len(head), None), detection.language)
            detection = detect(_with_clients(head, clients), name, self.log_line_prefix, self.format, self.language)
        stream = chain(sample, pieces)
        small = False
        if name != STDIN and not self.follow:  # a compressed file: small ones are read as they are
            first, small = all_if_under(stream, self._min_bytes())
            stream = chain(first, stream)
        lines_filter = self._prefilter(detection)
        if live and detection is not None and detection.inferred and len(head) < SAMPLE_LINES \
                and not shows_a_client_session((text for _, text in head), detection.language):
            # A prefix worked out from the few lines of a quiet start, none a client's, may stop
            # where %q stands: read record by record, which works it out again on the lines it
            # misreads; the pre-filter would drop them (issue 24).
            lines_filter = None
        if small or detection is None or lines_filter is None:
            stats = InputStats(file=name, on_bad_line=self.on_bad_line, cuts=cuts)
            yield from self._detected(name, decode_lines(split_lines(stream), stats), detection, stats)
            if failure:
                stats.ended_early(failure[0])
            return
        stats = self._stats(name, detection, cuts, fast_path=True)
        lines: Iterator[tuple[int, str] | Tick]
        if live:
            lines = fastpath.live_lines(
                stream, lines_filter, stats, latency=self.quiet, lookback_bytes=self.lookback_bytes,
                on_forgotten=self.on_forgotten, release=self.follow,
            )
        else:  # a compressed file's stream holds no TICK
            lines = fastpath.compressed_lines(
                name, cast(Iterator[bytes], stream), compression, lines_filter, stats,
                window_bytes=self.lookback_bytes, on_forgotten=self.on_forgotten,
            )
        yield from _checked(records_of, lines, detection, stats, name, quiet=self.quiet)
        if failure:
            stats.ended_early(failure[0])


#: A server message's severity and the two spaces after it (``LOG:  ``, ``ERROR:  ``, or the
#: same in another lc_messages): a line that has none is not PostgreSQL's stderr or syslog.
_SERVER_MESSAGE = re.compile(r"\w ?:  ")  # "DÉTAIL:  ", "INSTRUCTION :  " (lc_messages)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


#: How far a file is read ahead for a client's lines, when its first lines hold none.
LOOK_AHEAD_LINES = 20_000
#: The same for a compressed file, in bytes (decompressed).
LOOK_AHEAD_BYTES = 4 << 20
#: How many of them take the place of as many first lines, to work the prefix out again.
CLIENT_SAMPLE_LINES = SAMPLE_LINES // 2


def _may_stop_at_q(detection: Detection, head: list[tuple[int, str]]) -> bool:
    """Whether a prefix was worked out from first lines that hold no client's line (a server
    that started and stayed idle), and so may stop where ``%q`` stands."""
    return (
        detection.inferred and len(head) >= SAMPLE_LINES
        and not shows_a_client_session((text for _, text in head), detection.language)
    )


def _with_clients(head: list[tuple[int, str]], clients: list[str]) -> list[str]:
    """The lines to work the prefix out from: the last of the first lines (the others' lines,
    which show where %q stands) and the client's lines found after them, SAMPLE_LINES in all."""
    return [text for _, text in head[len(head) - (SAMPLE_LINES - len(clients)) :]] + clients


def _client_lines_ahead(
    lines: Iterator[tuple[int, str] | Tick], language: Language,
) -> tuple[list[tuple[int, str]], list[str]]:
    """The next lines, up to :data:`CLIENT_SAMPLE_LINES` of a client's or
    :data:`LOOK_AHEAD_LINES` in all; and the client's among them."""
    ahead: list[tuple[int, str]] = []
    clients: list[str] = []
    for item in lines:
        if isinstance(item, Tick):
            continue
        ahead.append(item)
        if shows_a_client_session((item[1],), language):
            clients.append(item[1])
        if len(clients) >= CLIENT_SAMPLE_LINES or len(ahead) >= LOOK_AHEAD_LINES:
            break
    return ahead, clients


def _checked(
    read: Callable[..., Iterator[LogRecord]], lines: Iterator[tuple[int, str] | Tick], detection: Detection,
    stats: InputStats, name: str, quiet: float | None = None,
) -> Iterator[LogRecord]:
    """The records of lines the pre-filter kept, read with a scratch count (the pre-filter
    counted every line); the records the reader rejects on top (a layout PostgreSQL does not
    write, say) are moved from records to skipped in ``stats``, so none is dropped silently."""
    scratch = InputStats(file=name)
    yield from read(lines, detection, scratch, name, quiet=quiet)
    stats.take_rejected(scratch)


def _note_format(stats: InputStats, detection: Detection) -> None:
    """Say in an input's counts which format (and prefix) it was read in."""
    stats.format = detection.format.value
    stats.log_line_prefix = detection.prefix.format if detection.prefix else None
    stats.prefix_inferred = detection.inferred
    stats.prefix_unsettled = list(detection.unsettled)
    stats.lc_messages = detection.language.code


def records_of(
    lines: Iterator[tuple[int, str] | Tick],
    detection: Detection,
    stats: InputStats,
    name: str,
    quiet: float | None = None,
) -> Iterator[LogRecord]:
    """The records of decoded ``(line_number, text)`` lines in a detected format."""
    return format_of(detection.format).records(lines, stats, name, detection.prefix, quiet)


#: Shorthand for :class:`LogReader`, with its arguments: ``for record in open_log(["pg.csv"]): ...``.
open_log = LogReader
