"""Every format logdiag reads, looked up by name: the one place that lists them."""

from __future__ import annotations

from logdiag.formats.base import Format, LogFormat
from logdiag.formats.csvlog import CSVLOG
from logdiag.formats.jsonlog import CLOUDSQL, CNPG, JSONLOG
from logdiag.formats.stderr import LOGPLEX, STDERR, SYSLOG

FORMATS: dict[LogFormat, Format] = {fmt.kind: fmt for fmt in (CSVLOG, JSONLOG, STDERR, SYSLOG, LOGPLEX, CLOUDSQL, CNPG)}


def format_of(kind: LogFormat) -> Format:
    """The object that knows the format ``kind``.

    >>> format_of(LogFormat.CSVLOG)
    <Csvlog format>
    """
    return FORMATS[kind]
