"""analyze(): readers → session tracker → diagnosis. The one entry point of the library."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from logdiag.diagnosis.diagnose import diagnose
from logdiag.diagnosis.filters import ReportFilter
from logdiag.diagnosis.groups import Groups
from logdiag.diagnosis.incidents import Finding, Incident, OtherError, Role
from logdiag.diagnosis.pitfalls import (
    aborted_after,
    checks_disabled,
    outside_transaction,
    pitfall,
    window_alone,
)
from logdiag.diagnosis.sessions import Failure, SessionTracker
from logdiag.formats import LogFormat
from logdiag.reader import LogReader
from logdiag.records import LogRecord, Source
from logdiag.source.live import QUIET_PERIOD, Notify
from logdiag.source.paths import Input
from logdiag.source.stats import MAX_LINE_BYTES, InputStats, OnBadLine, SkippedFile


@dataclass
class Run:
    """A run of logdiag over some inputs (made by :func:`analyze`). Iterate :meth:`incidents` first; the rest fills up as it goes.

    Attributes:
        record_sink: called with every record read (the Parquet export keeps them).
        inputs: per-input counts (format, prefix, records, skipped lines).
        other_errors: ERRORs that are not constraint violations (less those :meth:`take_other_errors` took),
            those ``only`` lets through.
        all_findings: the SET CONSTRAINTS pitfalls; complete once :meth:`incidents` is used up (the
            errors a finding's error aborted are added to it as they come). :attr:`findings`:
            those ``only`` lets through.
        only: what to report (issue 29): the tracker and the diagnosis see every record all the
            same, so a culprit before ``--since`` is found for a COMMIT after it.
        groups: the incidents yielded so far, grouped (same constraint, same culprit shape).
        settings_advice: what to change in the log settings to make the diagnoses certain, each
            with the indexes of the incidents it concerns (said once per run, not per incident).
        incident_count: the incidents reported; ``filtered_incidents``: those ``only`` left out.
        seconds: wall time spent.
    """

    reader: LogReader
    tracker: SessionTracker = field(default_factory=SessionTracker)
    record_sink: Callable[[LogRecord], None] | None = None
    other_errors: list[OtherError] = field(default_factory=list)
    all_findings: list[Finding] = field(default_factory=list)
    only: ReportFilter = field(default_factory=ReportFilter)
    groups: Groups = field(default_factory=Groups)
    settings_advice: dict[str, list[int]] = field(default_factory=dict)
    incident_count: int = 0
    filtered_incidents: int = 0
    seconds: float = 0.0
    _aborted_by: dict[object, int] = field(default_factory=dict, repr=False)  # session key -> finding
    _windows: dict[Source, int] = field(default_factory=dict, repr=False)  # a window's start -> its finding

    @property
    def inputs(self) -> list[InputStats]:
        return self.reader.inputs

    @property
    def findings(self) -> list[Finding]:
        """The findings to report: :attr:`all_findings` that ``only`` lets through."""
        return [f for f in self.all_findings if self.only.matches_finding(f)]

    @property
    def skipped_files(self) -> list[SkippedFile]:
        """Files of a directory, glob or archive that are no PostgreSQL log, left unread."""
        return self.reader.skipped_files

    def incidents(self) -> Iterator[Incident]:
        """Yield each incident as soon as its ERROR record has been read."""
        started = time.perf_counter()
        sink = self.record_sink
        try:
            for record in self.reader:
                if sink is not None:
                    sink(record)
                for failure in self.tracker.feed(record):
                    if self._found_pitfall(failure):
                        continue
                    result = diagnose(failure)
                    if isinstance(result, Incident):
                        if failure.ignored_set is not None and (found := outside_transaction(failure, result)):
                            self.all_findings.append(found)
                        if failure.checks_windows and (found := checks_disabled(failure, result)):
                            self._window_found(found)
                        if not self.only.matches_incident(result):
                            self.filtered_incidents += 1
                            continue
                        for advice in result.settings_advice:
                            self.settings_advice.setdefault(advice, []).append(self.incident_count)
                        self.incident_count += 1
                        self.groups.add(result)
                        yield result
                    elif self.only.matches_error(result, failure.session):
                        self.other_errors.append(result)
                if self.tracker.closed_windows:
                    self._windows_closed()
            self.tracker.finish()
            self._windows_closed()
        finally:
            self.seconds = time.perf_counter() - started

    def _found_pitfall(self, failure: Failure) -> bool:
        """Take an error that is a finding, or one that a finding's error caused (25P02, which
        follows only the error that aborted its transaction: the session's last other error)."""
        key = failure.session.key
        found = pitfall(failure)
        if found is not None:
            self.all_findings.append(found)
            self._aborted_by[key] = len(self.all_findings) - 1
            return True
        consequence = aborted_after(failure)
        index = self._aborted_by.get(key) if consequence is not None else None
        if consequence is not None and index is not None:
            finding = self.all_findings[index]
            self.all_findings[index] = replace(finding, related=(*finding.related, consequence))
            return True
        self._aborted_by.pop(key, None)
        return False

    def _window_found(self, found: Finding) -> None:
        """One checks_disabled finding per window: a later incident it led to is one more ``caused``."""
        index = self._windows.get(found.source)
        if index is None:
            self._windows[found.source] = len(self.all_findings)
            self.all_findings.append(found)
            return
        known = self.all_findings[index]
        caused = tuple(r for r in found.related if r.role is Role.CAUSED)
        self.all_findings[index] = replace(known, related=(*known.related, *caused))

    def _windows_closed(self) -> None:
        """Report the windows of switched-off checks whose sessions are over and that no error
        of theirs has reported yet."""
        for closed in self.tracker.take_closed_windows():
            start = closed.window.start.record.source
            if start not in self._windows and (found := window_alone(closed)) is not None:
                self._windows[start] = len(self.all_findings)
                self.all_findings.append(found)

    def take_other_errors(self) -> list[OtherError]:
        """Hand over the other errors found since the last call and forget them, so that a caller
        that writes them as they come (the Parquet export) keeps memory flat."""
        taken, self.other_errors = self.other_errors, []
        return taken

    def stats(self) -> dict[str, Any]:
        """The ``stats`` object of the JSON report."""
        t = self.tracker.stats
        return {
            "records": sum(s.records for s in self.inputs),
            "sessions": t.sessions,
            "transactions": t.transactions,
            "incidents": self.incident_count,
            "filtered_incidents": self.filtered_incidents,
            "skipped": sum(s.skipped_total for s in self.inputs),
            "evicted_sessions": t.evicted_sessions,
            "idle_sessions": t.idle_sessions,
            "dropped_statements": t.dropped_statements,
            "seconds": round(self.seconds, 3),
        }


def analyze(
    paths: Sequence[str | Input],
    *,
    log_line_prefix: str | None = None,
    format: LogFormat | None = None,
    on_bad_line: OnBadLine = OnBadLine.SKIP,
    tracker: SessionTracker | None = None,
    follow: bool = False,
    from_start: bool = False,
    quiet: float | None = None,
    stop: threading.Event | None = None,
    fast: bool = True,
    lookback_bytes: int | None = None,
    on_file: Callable[[str], None] | None = None,
    partial_groups: bool = False,
    lc_messages: str | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    on_notice: Notify | None = None,
    only: ReportFilter | None = None,
) -> Run:
    """Set up an analysis of the logs at ``paths``; iterate ``.incidents()`` to run it.

    ``fast`` reads big plain files (two passes), standard input and followed files (holding
    ``lookback_bytes`` of recent lines for sessions that may fail later) and compressed files (a
    window of that many bytes) through the vectorised pre-filter (:mod:`logdiag.fastpath`),
    which finds the same incidents much faster. ``tracker`` lets the caller set the memory caps (see
    :class:`SessionTracker`). ``follow``, ``from_start``, ``quiet``, ``stop``
    ``on_file`` (told each file ``follow`` moves to) and ``on_notice`` (told of a truncation, a
    possible loss, a directory still without a log) are for live use
    (see :class:`LogReader`); standard input is always read live, so incidents come out as soon as
    they are complete. ``partial_groups``, ``lc_messages`` (the server's language, default
    told from each input) and ``max_line_bytes`` (longer lines are cut there): see :class:`LogReader`.
    ``only`` chooses what is reported (:class:`~logdiag.diagnosis.filters.ReportFilter`), never what
    is tracked: every record still reaches the tracker and every error the diagnosis.

    >>> run = analyze(["sample_logs/postgresql.csv"])
    >>> [(i.constraint, i.key, i.culprits[0].source.line) for i in run.incidents()]
    [('orders_customer_id_fkey', {'customer_id': '42'}, 25)]
    """
    if quiet is None and (follow or list(paths) == ["-"]):
        quiet = QUIET_PERIOD
    tracker = tracker or SessionTracker()
    reader = LogReader(
        paths, log_line_prefix=log_line_prefix, format=format, on_bad_line=on_bad_line,
        follow=follow, from_start=from_start, quiet=quiet, stop=stop, fast=fast, lookback_bytes=lookback_bytes,
        on_forgotten=tracker.forget,  # what the pre-filter's look-back drops, the tracker forgets too
        on_file=on_file, partial_groups=partial_groups, lc_messages=lc_messages, max_line_bytes=max_line_bytes,
        on_notice=on_notice,
    )
    return Run(reader, tracker, only=only or ReportFilter())
