"""What the renderers read of a run, as structural types: the reports need no pipeline.

:class:`logdiag.pipeline.Run` is a :class:`RunView` (mypy checks it where the CLI hands one over).
"""

from __future__ import annotations

from collections.abc import Sequence, Sized
from typing import Any, Protocol

from logdiag.diagnosis.groups import Groups
from logdiag.diagnosis.incidents import Finding, OtherError
from logdiag.source.stats import InputStats, SkippedFile
from logdiag.wording import plural


class TrackerCounts(Protocol):
    """The session tracker's counts that the live status shows."""

    @property
    def records(self) -> int: ...

    @property
    def evicted_sessions(self) -> int: ...

    @property
    def idle_sessions(self) -> int: ...


class Tracker(Protocol):
    """The session tracker, as far as the live status reads it."""

    @property
    def stats(self) -> TrackerCounts: ...

    @property
    def sessions(self) -> Sized: ...


class RunView(Protocol):
    """A run of logdiag over some inputs, as the reports read it while and after its incidents
    are iterated."""

    @property
    def inputs(self) -> Sequence[InputStats]: ...

    @property
    def skipped_files(self) -> Sequence[SkippedFile]: ...

    @property
    def other_errors(self) -> Sequence[OtherError]: ...

    @property
    def findings(self) -> Sequence[Finding]: ...

    @property
    def incident_count(self) -> int: ...

    @property
    def filtered_incidents(self) -> int:
        """The incidents the run's filters left out (issue 29)."""
        ...

    @property
    def groups(self) -> Groups: ...

    @property
    def settings_advice(self) -> dict[str, list[int]]: ...

    @property
    def tracker(self) -> Tracker: ...

    def stats(self) -> dict[str, Any]:
        """The ``stats`` object of the JSON report."""
        ...


def nothing_found(run: RunView) -> tuple[str, bool]:
    """What a report says when it has no incident, and whether that is an all-clear: it is not
    when lines or whole files could not be read, nor when the filters left incidents out.

    >>> from types import SimpleNamespace as Run
    >>> nothing_found(Run(inputs=[], skipped_files=[SkippedFile("b.csv", "cannot open b.csv", unread=True)],
    ...                   filtered_incidents=0))
    ('No constraint violation in what could be read; 1 file could not be read.', False)
    >>> nothing_found(Run(inputs=[], skipped_files=[], filtered_incidents=2))
    ('No constraint violation matches the filters (2 left out).', False)
    """
    if run.filtered_incidents:
        return f"No constraint violation matches the filters ({run.filtered_incidents} left out).", False
    lines = sum(s.unread for s in run.inputs)
    files = sum(f.unread for f in run.skipped_files)
    if not lines and not files:
        return "No constraint violation in this log.", True
    missing = [plural(n, what) for n, what in ((lines, "line"), (files, "file")) if n]
    return f"No constraint violation in what could be read; {' and '.join(missing)} could not be read.", False
