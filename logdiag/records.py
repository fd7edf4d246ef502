"""The normalized log record every reader yields, and where it came from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any


class Severity(str, Enum):
    """PostgreSQL's message severities, as the server spells them in every log format."""

    DEBUG5 = "DEBUG5"
    DEBUG4 = "DEBUG4"
    DEBUG3 = "DEBUG3"
    DEBUG2 = "DEBUG2"
    DEBUG1 = "DEBUG1"
    DEBUG = "DEBUG"
    INFO = "INFO"
    NOTICE = "NOTICE"
    WARNING = "WARNING"
    LOG = "LOG"
    ERROR = "ERROR"
    FATAL = "FATAL"
    PANIC = "PANIC"

    def __str__(self) -> str:
        return self.value


SEVERITIES: frozenset[str] = frozenset(s.value for s in Severity)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record starts: the input's name and the 1-based physical line number."""

    file: str
    line: int


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One PostgreSQL log message with its DETAIL, HINT, CONTEXT, QUERY and STATEMENT parts.

    Every field that the input format does not carry is ``None``; logdiag never guesses one.

    Attributes:
        timestamp: when the server wrote it (timezone-aware), from csv/json or %t/%m/%n.
        pid: the backend's process id.
        session_id: PostgreSQL's session id (``%c``, e.g. ``6b013fc0.90b``).
        session_line: the per-session line number (``%l``; stderr counts DETAIL lines too).
        vxid: the virtual transaction id (``%v``, e.g. ``3/5``).
        xid: the transaction id (``%x``; 0 until the transaction first writes).
        user: the database user name.
        database: the database name.
        application: ``application_name``.
        client: the client address, ``host:port`` when the port is known, or ``[local]``.
        backend_type: e.g. ``client backend``, ``autovacuum worker`` (``%b``).
        severity: ``LOG``, ``ERROR``... (a :class:`Severity` value).
        sqlstate: the five-character SQLSTATE (``%e``, csv/json, or verbose messages).
        message: the primary message.
        detail: the DETAIL field.
        hint: the HINT field.
        context: the CONTEXT field.
        statement: the STATEMENT field: the client's query that was running.
        query: the QUERY field: an internal query (PL/pgSQL) that raised the message.
        command_tag: the command tag (``%i``, csv ``command_tag``, json ``ps``).
        query_id: the query identifier (``%Q``, PostgreSQL 14+).
        source: the input file and the line where the record starts.
    """

    timestamp: datetime | None
    pid: int | None
    session_id: str | None
    session_line: int | None
    vxid: str | None
    xid: int | None
    user: str | None
    database: str | None
    application: str | None
    client: str | None
    backend_type: str | None
    severity: Severity
    sqlstate: str | None
    message: str | None
    detail: str | None
    hint: str | None
    context: str | None
    statement: str | None
    query: str | None
    command_tag: str | None
    query_id: int | None
    source: Source

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values: ISO-8601 timestamp, severity as text, source as a dict."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, Severity):
                value = value.value
            elif isinstance(value, Source):
                value = {"file": value.file, "line": value.line}
            out[field.name] = value
        return out


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LogRecord))
