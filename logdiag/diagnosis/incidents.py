"""The results of a diagnosis, shaped like the JSON contract in docs/output-schema.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from logdiag.diagnosis.messages import ConstraintKind
from logdiag.records import Source


class _Word(str, Enum):
    """A closed set of words of the JSON contract: each member is its word (``== "commit"``,
    prints as ``commit``)."""

    def __str__(self) -> str:
        return str(self.value)


class Timing(_Word):
    """When the constraint was checked: at the statement, or at commit (deferred)."""

    STATEMENT = "statement"
    COMMIT = "commit"


class Match(_Word):
    """How a culprit matches the violation, strongest first."""

    KEY = "key"  # it wrote exactly the offending key
    TABLE = "table"  # it wrote rows of the table that the log does not show
    CALL = "call"  # a function call (or DO block) whose writes are unknown


class Confidence(_Word):
    """How sure a culprit is, strongest first."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    def weakened(self, steps: int) -> Confidence:
        """``steps`` levels weaker, no weaker than LOW."""
        order = list(Confidence)
        return order[min(len(order) - 1, order.index(self) + steps)]


class Role(_Word):
    """What a piece of related evidence is."""

    ROLLED_BACK_PARENT = "rolled_back_parent"  # the parent row, undone by ROLLBACK TO SAVEPOINT
    SAVEPOINT_ROLLBACK = "savepoint_rollback"  # the ROLLBACK TO SAVEPOINT that undid it (issue 26)
    CULPRIT_BIND = "culprit_bind"  # the bind record of the culprit's execution (log_min_duration_statement)
    PARENT_CHANGE = "parent_change"  # the transaction also changed the referenced table
    DEFERRED_BY = "deferred_by"  # SET CONSTRAINTS ... DEFERRED
    # SET CONSTRAINTS ... DEFERRED that did not defer the constraint: it is NOT DEFERRABLE (issue 26)
    DEFERRAL_IGNORED = "deferral_ignored"
    ABORTED_AFTER = "aborted_after"  # a finding's: an error of the transaction it aborted (25P02)
    CAUSED = "caused"  # a finding's: the incident its pitfall let happen
    DECLARED_BY = "declared_by"  # the DDL that declared the constraint deferrable
    # An incident's: the statement that switched foreign-key checks off, the start of the
    # checks_disabled finding's window in which the culprit wrote the key (issue 26)
    CHECKS_DISABLED = "checks_disabled"
    # A checks_disabled finding's: a write into the table inside the window, unchecked
    WRITTEN_UNCHECKED = "written_unchecked"
    WINDOW_END = "window_end"  # a checks_disabled finding's: the statement that switched them back on
    # A deadlock's: a log_lock_waits line of a process of its cycle (still waiting, detected
    # deadlock), with how long it had waited (issue 28)
    LOCK_WAIT = "lock_wait"


class Missing(_Word):
    """What the log lacked for a certain diagnosis (not part of the JSON)."""

    TRANSACTION_BOUNDARIES = "transaction boundaries"
    DROPPED_STATEMENTS = "dropped statements"
    SESSION_HISTORY = "session history"
    SESSION = "session"
    STATEMENTS = "statements"


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
    match: Match
    confidence: Confidence
    reason: str
    #: the culprit's session, when it is not the incident's (a deadlock's lock taker, issue 28)
    session: SessionInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "statement": self.statement,
            "source": _source(self.source),
            "at": _time(self.at),
            "parameters": self.parameters,
            "match": self.match.value,
            "confidence": self.confidence.value,
            "reason": self.reason,
        }
        if self.session is not None:
            out["session"] = self.session.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class Related:
    """Other evidence: ``rolled_back_parent``, ``parent_change``, ``deferred_by``, ``declared_by``."""

    role: Role
    statement: str
    source: Source
    at: datetime | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role.value, "statement": self.statement, "source": _source(self.source)}
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
class StatementRef:
    """A statement the log shows, where it shows it (``source`` None: only the deadlock's
    DETAIL quotes it, no statement line of the log)."""

    statement: str
    source: Source | None

    def to_dict(self) -> dict[str, Any]:
        return {"statement": self.statement, "source": _source(self.source)}


@dataclass(frozen=True, slots=True)
class CycleStep:
    """One process of a deadlock's cycle (issue 28).

    Attributes:
        pid: the process.
        mode, object: the lock it waited for, as the server words them (``ShareLock``,
            ``transaction 726``).
        blocked_by: the process that held it.
        waiting_statement: the statement that waited (from the DETAIL's ``Process N: query``,
            at the line that logged it when the log shows that).
        lock_taken_by: the earlier statement of ``blocked_by``'s transaction that took the lock,
            when the log shows it; else None.
    """

    pid: int
    mode: str
    object: str
    blocked_by: int
    waiting_statement: StatementRef | None
    lock_taken_by: StatementRef | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "waits_for": {"mode": self.mode, "object": self.object},
            "blocked_by": self.blocked_by,
            "waiting_statement": None if self.waiting_statement is None else self.waiting_statement.to_dict(),
            "lock_taken_by": None if self.lock_taken_by is None else self.lock_taken_by.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Incident:
    """One constraint violation, explained.

    ``sqlstate`` and ``condition`` are None for a constraint trigger's error in a log without
    SQLSTATEs (stderr without ``%e``): recognised by its CONTEXT, its code unknown (issue 26).
    """

    sqlstate: str | None
    condition: str | None
    timing: Timing
    at: datetime | None
    constraint: str | None
    constraint_kind: ConstraintKind | None  # None for a deadlock (issue 28)
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
    missing: tuple[Missing, ...] = field(default=())
    #: what to change in the log settings to make such a diagnosis certain: reported once per
    #: run (``settings_advice``), not in the incident's ``hints`` (issue 29)
    settings_advice: tuple[str, ...] = field(default=())
    #: a deadlock's cycle, each process with its waiting and lock-taking statements (issue 28)
    deadlock: tuple[CycleStep, ...] | None = None

    @property
    def subject(self) -> str:
        """What the incident broke, in a word for reports: its constraint, or ``deadlock``."""
        return self.constraint or ("deadlock" if self.deadlock is not None else "(unnamed)")

    def to_dict(self) -> dict[str, Any]:
        """The incident as the JSON contract names it."""
        out = {
            "sqlstate": self.sqlstate,
            "condition": self.condition,
            "timing": self.timing.value,
            "at": _time(self.at),
            "constraint": self.constraint,
            "constraint_kind": None if self.constraint_kind is None else self.constraint_kind.value,
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
        if self.deadlock is not None:
            out["deadlock"] = {"cycle": [step.to_dict() for step in self.deadlock]}
        return out


@dataclass(frozen=True, slots=True)
class OtherError:
    """An ERROR that is not a constraint violation.

    Attributes:
        session: who ran into it, as for an incident (None only where no session was told).
        vxid, xid: its transaction.
        detail, hint, context, statement: the ERROR's DETAIL, HINT, CONTEXT and STATEMENT, for
            ``errors.parquet`` (issue 29 §5); not in :meth:`to_dict`, the JSON contract.
    """

    sqlstate: str | None
    message: str | None
    source: Source
    at: datetime | None = None
    sqlstate_inferred: bool = False  # from the message: the log carries no SQLSTATE (issue 26)
    session: SessionInfo | None = None
    vxid: str | None = None
    xid: int | None = None
    detail: str | None = None
    hint: str | None = None
    context: str | None = None
    statement: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sqlstate": self.sqlstate, "sqlstate_inferred": self.sqlstate_inferred, "message": self.message,
            "source": _source(self.source),
        }


class FindingKind(_Word):
    """A pitfall of SET CONSTRAINTS and of switched-off checks (issue 26)."""

    NOT_DEFERRABLE = "not_deferrable"  # SET CONSTRAINTS x DEFERRED on a NOT DEFERRABLE constraint
    SET_CONSTRAINTS_OUTSIDE_TRANSACTION = "set_constraints_outside_transaction"
    CHECKS_DISABLED = "checks_disabled"


class FindingSeverity(_Word):
    """The severity of the record a finding stands on."""

    ERROR = "error"
    WARNING = "warning"
    LOG = "log"  # a statement the log shows being run (checks_disabled)


@dataclass(frozen=True, slots=True)
class Finding:
    """A pitfall seen in the log: not a constraint violation, but what makes one (or hides one).

    Attributes:
        kind: which pitfall.
        sqlstate: the record's SQLSTATE, or the one its fixed message implies (``sqlstate_inferred``).
        constraint, table: what it is about, when known (the table from the DDL in the log).
        source: the record the finding stands on (the ERROR or WARNING; for ``checks_disabled``,
            the statement that switched the checks off).
        statement: the statement that fell into it.
        related: its consequences (``aborted_after``: the errors of the transaction it aborted;
            ``caused``: the incident's ERROR) and, for ``checks_disabled``, its window's end
            (``window_end``) and the writes inside it (``written_unchecked``).
    """

    kind: FindingKind
    sqlstate: str | None
    severity: FindingSeverity
    constraint: str | None
    table: str | None
    session: SessionInfo
    vxid: str | None
    xid: int | None
    source: Source
    at: datetime | None
    statement: str | None
    explanation: str
    hints: tuple[str, ...]
    related: tuple[Related, ...] = ()
    sqlstate_inferred: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The finding as the JSON contract names it."""
        return {
            "kind": self.kind.value,
            "sqlstate": self.sqlstate,
            "sqlstate_inferred": self.sqlstate_inferred,
            "severity": self.severity.value,
            "constraint": self.constraint,
            "table": self.table,
            "session": self.session.to_dict(),
            "transaction": {"vxid": self.vxid, "xid": self.xid},
            "source": _source(self.source),
            "at": _time(self.at),
            "statement": self.statement,
            "explanation": self.explanation,
            "hints": list(self.hints),
            "related": [r.to_dict() for r in self.related],
        }
