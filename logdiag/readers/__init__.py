"""Read any PostgreSQL log as one stream of :class:`~logdiag.records.LogRecord`.

``LogReader(["postgresql.csv"])`` iterates over records; ``reader.inputs`` holds per-input counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain, islice

from logdiag.readers.csvlog import read_csvlog
from logdiag.readers.detect import SAMPLE_LINES, Detection, LogFormat, detect
from logdiag.readers.inputs import OpenInput, decode_lines, expand_paths
from logdiag.readers.jsonlog import cloudsql_lines, read_cnpg, read_jsonlog
from logdiag.readers.prefix import LinePrefix
from logdiag.readers.stats import InputStats, OnBadLine
from logdiag.readers.stderr import StderrAssembler, logplex_lines, stderr_lines, syslog_lines
from logdiag.records import LogRecord

__all__ = ["InputStats", "LinePrefix", "LogFormat", "LogReader", "OnBadLine", "open_log"]


class LogReader:
    """Iterate over the records of one or more inputs; per-input counts land in :attr:`inputs`.

    Args:
        paths: files, globs, log directories, or ``-`` for standard input; compressed or not.
        log_line_prefix: the server's ``log_line_prefix`` for stderr-style logs (else detected).
        format: force a format instead of detecting it.
        on_bad_line: what to do with lines that belong to no record.

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
    ) -> None:
        self.paths = expand_paths(paths)
        self.log_line_prefix = log_line_prefix
        self.format = format
        self.on_bad_line = on_bad_line
        self.inputs: list[InputStats] = []

    def __iter__(self) -> Iterator[LogRecord]:
        for path in self.paths:
            yield from self._read(path)

    def _read(self, path: str) -> Iterator[LogRecord]:
        stats = InputStats(file=path, on_bad_line=self.on_bad_line)
        self.inputs.append(stats)
        opened = OpenInput(path)
        try:
            lines = decode_lines(opened.lines(), stats)
            head = list(islice(lines, SAMPLE_LINES))
            detection = detect([text for _, text in head], path, self.log_line_prefix, self.format)
            if detection is None:
                return
            stats.format = detection.format.value
            if detection.prefix is not None:
                stats.log_line_prefix = detection.prefix.format
            yield from records_of(chain(head, lines), detection, stats, path)
        finally:
            opened.close()


def records_of(
    lines: Iterator[tuple[int, str]], detection: Detection, stats: InputStats, name: str
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
    assembler = StderrAssembler(detection.prefix, stats, name)
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
