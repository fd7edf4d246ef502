"""logdiag: tells an on-call engineer which statement broke a PostgreSQL transaction."""

from __future__ import annotations

from logdiag.diagnosis.incidents import Incident
from logdiag.errors import ConfigError, InputError, LogdiagError
from logdiag.formats import LogFormat
from logdiag.pipeline import Run, analyze
from logdiag.reader import LogReader, open_log
from logdiag.records import LogRecord, Severity, Source
from logdiag.source.stats import OnBadLine
from logdiag.version import __version__

__all__ = [
    "ConfigError",
    "Incident",
    "InputError",
    "LogFormat",
    "LogReader",
    "LogRecord",
    "LogdiagError",
    "OnBadLine",
    "Run",
    "Severity",
    "Source",
    "__version__",
    "analyze",
    "open_log",
]
