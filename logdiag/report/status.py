"""A one-line live status on stderr (records/s, open sessions, incidents, evictions), TTY only."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

from logdiag.report.run import RunView
from logdiag.wording import plural

T = TypeVar("T")
_CLEAR = "\r\x1b[2K"


class StatusLine:
    """Redraws a status line every ``interval`` seconds until closed; never touches stdout.

    Incidents pass through :meth:`around`, which clears the line while each one is printed, so the
    status and the report never share a terminal line.
    """

    def __init__(self, run: RunView, stream: IO[str] | None = None, interval: float = 0.5) -> None:
        self.run = run
        self.stream = stream or sys.stderr
        self.interval = interval
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="logdiag-status", daemon=True)
        self._last = (time.monotonic(), 0)

    @classmethod
    def wanted(cls, stream: IO[str] | None = None) -> bool:
        stream = stream or sys.stderr
        return stream.isatty()

    def __enter__(self) -> StatusLine:  # noqa: PYI034 - typing.Self needs Python 3.11
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with self.lock:
            self.stream.write(_CLEAR)
            self.stream.flush()

    def around(self, items: Iterable[T]) -> Iterator[T]:
        """Yield items with the status line cleared and held back while each is handled."""
        for item in items:
            with self.lock:
                self.stream.write(_CLEAR)
                self.stream.flush()
                yield item

    def text(self) -> str:
        now, records = time.monotonic(), self.run.tracker.stats.records
        then, before = self._last
        self._last = (now, records)
        rate = (records - before) / (now - then) if now > then else 0.0
        t = self.run.tracker.stats
        return (
            f"logdiag: {plural(records, 'record', grouped=True)} ({rate:,.0f}/s)"
            f" · {plural(len(self.run.tracker.sessions), 'open session', grouped=True)}"
            f" · {plural(self.run.incident_count, 'incident')} · {t.evicted_sessions + t.idle_sessions} evicted"
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self.lock:
                self.stream.write(_CLEAR + self.text())
                self.stream.flush()
