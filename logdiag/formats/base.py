"""The names of the log formats, and what detecting one yields."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from logdiag.formats.prefix import LinePrefix


class LogFormat(str, Enum):
    """The inputs logdiag reads."""

    CSVLOG = "csvlog"
    JSONLOG = "jsonlog"
    STDERR = "stderr"
    SYSLOG = "syslog"
    LOGPLEX = "logplex"
    CLOUDSQL = "cloudsql"
    CNPG = "cnpg"

    def __str__(self) -> str:
        return self.value

    @property
    def has_prefix(self) -> bool:
        """Whether lines of this format carry a ``log_line_prefix``."""
        return self in (LogFormat.STDERR, LogFormat.SYSLOG, LogFormat.LOGPLEX, LogFormat.CLOUDSQL)


@dataclass(frozen=True, slots=True)
class Detection:
    """What :func:`detect` found: the format and, for stderr-style logs, the prefix."""

    format: LogFormat
    prefix: LinePrefix | None = None
