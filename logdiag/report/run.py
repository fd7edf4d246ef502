"""What the renderers read of a run, as structural types: the reports need no pipeline.

:class:`logdiag.pipeline.Run` is a :class:`RunView` (mypy checks it where the CLI hands one over).
"""

from __future__ import annotations

from collections.abc import Sequence, Sized
from typing import Any, Protocol

from logdiag.diagnosis.incidents import Finding, OtherError
from logdiag.source.stats import InputStats, SkippedFile


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
    def tracker(self) -> Tracker: ...

    def stats(self) -> dict[str, Any]:
        """The ``stats`` object of the JSON report."""
        ...
