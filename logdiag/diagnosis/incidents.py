"""The results of a diagnosis, shaped like the JSON contract in docs/output-schema.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from logdiag.records import Source


def _source(source: Source | None) -> dict[str, Any] | None:
    return None if source is None else {"file": source.file, "line": source.line}


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class Culprit:
    """A statement of the transaction that wrote (or may have written) the offending key.

    Attributes:
        match: ``key`` (it wrote exactly this key), ``table`` (it wrote rows of the table that the
            log does not show), or ``call`` (a function call whose writes are unknown).
        confidence: ``high``, ``medium`` or ``low``.
    """

    statement: str
    source: Source
    at: datetime | None
    parameters: dict[str, str | None] | None
    match: str
    confidence: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "statement": self.statement,
            "source": _source(self.source),
            "at": _time(self.at),
            "parameters": self.parameters,
            "match": self.match,
            "confidence": self.confidence,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Related:
    """Other evidence: ``rolled_back_parent``, ``parent_change``, ``deferred_by``, ``declared_by``."""

    role: str
    statement: str
    source: Source
    at: datetime | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "statement": self.statement, "source": _source(self.source)}
        if self.at is not None:
            out["at"] = _time(self.at)
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: str | None
    pid: int | None
    user: str | None
    database: str | None
    application: str | None
    client: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id, "pid": self.pid, "user": self.user,
            "database": self.database, "application": self.application, "client": self.client,
        }


@dataclass(frozen=True, slots=True)
class Incident:
    """One constraint violation, explained."""

    sqlstate: str
    condition: str
    timing: str
    at: datetime | None
    constraint: str | None
    constraint_kind: str
    table: str | None
    referenced_table: str | None
    key: dict[str, str | None]
    message: str
    detail: str | None
    session: SessionInfo
    vxid: str | None
    xid: int | None
    raised_by_statement: str | None
    raised_by_source: Source
    culprits: tuple[Culprit, ...]
    related: tuple[Related, ...]
    explanation: str
    hints: tuple[str, ...]
    missing: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The incident as the JSON contract names it."""
        return {
            "sqlstate": self.sqlstate,
            "condition": self.condition,
            "timing": self.timing,
            "at": _time(self.at),
            "constraint": self.constraint,
            "constraint_kind": self.constraint_kind,
            "table": self.table,
            "referenced_table": self.referenced_table,
            "key": self.key,
            "message": self.message,
            "detail": self.detail,
            "session": self.session.to_dict(),
            "transaction": {"vxid": self.vxid, "xid": self.xid},
            "raised_by": {"statement": self.raised_by_statement, "source": _source(self.raised_by_source)},
            "culprits": [c.to_dict() for c in self.culprits],
            "related": [r.to_dict() for r in self.related],
            "explanation": self.explanation,
            "hints": list(self.hints),
        }


@dataclass(frozen=True, slots=True)
class OtherError:
    """An ERROR that is not a constraint violation."""

    sqlstate: str | None
    message: str | None
    source: Source
    at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"sqlstate": self.sqlstate, "message": self.message, "source": _source(self.source)}
