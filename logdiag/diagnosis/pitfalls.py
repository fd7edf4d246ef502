"""The SET CONSTRAINTS pitfalls and switched-off checks (issue 26): from an ERROR (or the incident
it led to) to a :class:`Finding`, and the errors that follow it. This module decides; :mod:`logdiag.diagnosis.explain` words what it decided."""

from __future__ import annotations

from logdiag.diagnosis.catalog import Catalog
from logdiag.diagnosis.explain import (
    Orphans,
    checks_disabled_explanation,
    checks_disabled_hints,
    not_deferrable_explanation,
    not_deferrable_hints,
    outside_transaction_explanation,
    outside_transaction_fix,
    show_key,
    window_alone_explanation,
    window_alone_hints,
)
from logdiag.diagnosis.incidents import (
    Finding,
    FindingKind,
    FindingSeverity,
    Incident,
    Related,
    Role,
    SessionInfo,
)
from logdiag.diagnosis.messages import (
    NO_ACTIVE_TRANSACTION_SQLSTATE,
    NOT_DEFERRABLE_SQLSTATE,
    ConstraintKind,
    is_in_failed_transaction,
    not_deferrable_constraint,
)
from logdiag.diagnosis.sessions import ClosedWindow, Failure
from logdiag.diagnosis.sql import ConstraintDefinition, Write, statement_writes
from logdiag.diagnosis.statements import LoggedStatement

#: writes of a window listed as a checks_disabled finding's ``written_unchecked``, the first ones
MAX_UNCHECKED_LISTED = 100

#: foreign keys of a window's tables given a query that lists their orphans, the first ones
MAX_ORPHAN_QUERIES = 5

#: pg_constraint kinds as sql.py names them -> the kind a fix depends on
_KINDS = {
    "foreign_key": ConstraintKind.FOREIGN_KEY, "unique": ConstraintKind.UNIQUE,
    "primary_key": ConstraintKind.UNIQUE, "exclusion": ConstraintKind.EXCLUSION, "check": ConstraintKind.CHECK,
}


def pitfall(failure: Failure) -> Finding | None:
    """The finding an ERROR is, if it is one: ``SET CONSTRAINTS x DEFERRED`` on a NOT DEFERRABLE
    constraint (42809). Its table and kind come from the DDL in the log, when it is there."""
    record = failure.record
    name = not_deferrable_constraint(record.message, record.sqlstate)
    if name is None:
        return None
    parts = name.split("_")
    catalog = Catalog(failure.ddl, [name, *("_".join(parts[:n]) for n in range(1, len(parts)))])
    declaration = catalog.constraint(name)
    table = declaration.constraint.table if declaration else None
    kind = _KINDS.get(declaration.constraint.kind) if declaration else None
    s = failure.session
    return Finding(
        kind=FindingKind.NOT_DEFERRABLE,
        sqlstate=record.sqlstate or NOT_DEFERRABLE_SQLSTATE,
        sqlstate_inferred=record.sqlstate is None,
        severity=FindingSeverity.ERROR,
        constraint=name,
        table=table,
        session=SessionInfo(s.session_id, s.pid, s.user, s.database, s.application, s.client),
        vxid=record.vxid,
        xid=record.xid,
        source=record.source,
        at=record.timestamp,
        statement=record.statement,
        explanation=not_deferrable_explanation(name, table, record.source.line),
        hints=not_deferrable_hints(kind, table, name),
    )


def aborted_after(failure: Failure) -> Related | None:
    """A 25P02 error (``current transaction is aborted``) as evidence: the consequence of the
    error that aborted its transaction, which the caller knows."""
    record = failure.record
    if not is_in_failed_transaction(record.message, record.sqlstate):
        return None
    return Related(Role.ABORTED_AFTER, record.statement or "", record.source, record.timestamp, record.message)


def outside_transaction(failure: Failure, incident: Incident) -> Finding | None:
    """``SET CONSTRAINTS`` outside a transaction block (WARNING 25P01: it did nothing), reported
    when a later statement of the session failed at once on a constraint it meant to defer: the
    incident has it as ``deferral_ignored``, the finding the incident's ERROR as ``caused``.

    A SET whose WARNING no error of its session follows is not reported: the fast path, which
    reads only the sessions of errors, could not see it, and both paths must agree."""
    ignored = failure.ignored_set
    if ignored is None or ignored.statement is None:
        return None
    source = ignored.statement.record.source
    if not any(r.role is Role.DEFERRAL_IGNORED and r.source == source for r in incident.related):
        return None
    warning = ignored.warning
    control = ignored.statement.control
    named = (control.argument or "") if control else ""
    caused = Related(Role.CAUSED, incident.raised_by_statement or "", incident.raised_by_source, incident.at,
                     incident.message)
    return Finding(
        kind=FindingKind.SET_CONSTRAINTS_OUTSIDE_TRANSACTION,
        sqlstate=warning.sqlstate or NO_ACTIVE_TRANSACTION_SQLSTATE,
        sqlstate_inferred=warning.sqlstate is None,
        severity=FindingSeverity.WARNING,
        constraint=incident.constraint if named.upper() != "ALL" else None,
        table=incident.table if named.upper() != "ALL" else None,
        session=incident.session,
        vxid=warning.vxid,
        xid=warning.xid,
        source=warning.source,
        at=warning.timestamp,
        statement=ignored.statement.text,
        explanation=outside_transaction_explanation(warning.source.line, incident.raised_by_source.line),
        hints=(outside_transaction_fix(),),
        related=(caused,),
    )


def checks_disabled(failure: Failure, incident: Incident) -> Finding | None:
    """The window of switched-off foreign-key checks (``SET session_replication_role = replica``,
    ``ALTER TABLE t DISABLE TRIGGER ALL``) in which the incident's culprit wrote its key, as a
    finding (issue 26): its start, its end (``window_end``), the writes into the incident's table
    inside it (``written_unchecked``) and the incident's ERROR (``caused``). None when the
    incident has no such window (its ``related`` names it as ``checks_disabled``).

    Like ``set_constraints_outside_transaction``, a window is reported through the error it led
    to: the fast path reads only the sessions of errors, and both paths must agree."""
    started = next((r.source for r in incident.related if r.role is Role.CHECKS_DISABLED), None)
    window = next((w for w in failure.checks_windows if w.start.record.source == started), None)
    if window is None or incident.table is None:
        return None
    start = window.start
    culprit = incident.culprits[0] if incident.culprits else None
    related: list[Related] = []
    if window.end is not None:
        related.append(Related(Role.WINDOW_END, window.end.text, window.end.record.source, window.end.record.timestamp))
    written = [w for w in window.writes if any(x.table == incident.table for x in _writes(w))]
    for statement in written[:MAX_UNCHECKED_LISTED]:
        note = (
            f"wrote {show_key(incident.key.items())}, which the ALTER TABLE at line {incident.raised_by_source.line} found "
            "with no parent" if culprit is not None and culprit.source == statement.record.source and incident.key
            else None
        )
        related.append(Related(Role.WRITTEN_UNCHECKED, statement.text, statement.record.source,
                               statement.record.timestamp, note))
    related.append(Related(Role.CAUSED, incident.raised_by_statement or "", incident.raised_by_source, incident.at,
                           incident.message))
    return Finding(
        kind=FindingKind.CHECKS_DISABLED,
        sqlstate=None,
        severity=FindingSeverity.LOG,
        constraint=incident.constraint,
        table=window.table or incident.table,
        session=incident.session,
        vxid=start.record.vxid,
        xid=start.record.xid,
        source=start.record.source,
        at=start.record.timestamp,
        statement=start.text,
        explanation=checks_disabled_explanation(window, incident.table, len(written) + window.dropped,
                                                incident.raised_by_source.line),
        hints=checks_disabled_hints(window),
        related=tuple(related),
    )


def window_alone(closed: ClosedWindow) -> Finding | None:
    """A window of switched-off foreign-key checks as a finding of its own (issue 26), once its
    session is over: its start, its end (``window_end``), the writes inside it into the tables it
    concerns (``written_unchecked``: every table for the replication role, the altered one for
    ``DISABLE TRIGGER ALL``) and, for the foreign keys of those tables the log's DDL declares, the
    query that lists their orphans. A window that led to an error of its session was already
    reported with it (:func:`checks_disabled`).

    None when the log shows writes in the window but none that stayed in the tables it concerns
    (rolled back, failed, or into other tables): no row went in unchecked. A window without
    writes in the log is reported: ``log_statement = 'ddl'`` logs none."""
    window, s = closed.window, closed.session
    written = [w for w in window.writes if window.table is None or any(x.table == window.table for x in _writes(w))]
    if not written and (window.writes or window.undone or window.dropped):
        return None
    tables = sorted({x.table for w in written for x in _writes(w) if x.table} | ({window.table} if window.table else set()))
    catalog = Catalog(closed.ddl, tables)
    keys = [
        d.constraint for d in catalog.declarations
        if d.constraint.kind == "foreign_key" and (d.constraint.table in tables or d.constraint.referenced_table in tables)
    ]
    orphans = list({(k.table, k.columns): _orphans(k, closed) for k in keys}.values())[:MAX_ORPHAN_QUERIES]
    related: list[Related] = []
    if window.end is not None:
        related.append(Related(Role.WINDOW_END, window.end.text, window.end.record.source, window.end.record.timestamp))
    related.extend(
        Related(Role.WRITTEN_UNCHECKED, w.text, w.record.source, w.record.timestamp)
        for w in written[:MAX_UNCHECKED_LISTED]
    )
    start = window.start
    return Finding(
        kind=FindingKind.CHECKS_DISABLED,
        sqlstate=None,
        severity=FindingSeverity.LOG,
        constraint=keys[0].name if len(keys) == 1 else None,
        table=window.table or (tables[0] if len(tables) == 1 else None),
        session=SessionInfo(s.session_id, s.pid, s.user, s.database, s.application, s.client),
        vxid=start.record.vxid,
        xid=start.record.xid,
        source=start.record.source,
        at=start.record.timestamp,
        statement=start.text,
        explanation=window_alone_explanation(window, tables, len(written) + window.dropped, orphans),
        hints=window_alone_hints(window, orphans),
        related=tuple(related),
    )


def _orphans(key: ConstraintDefinition, closed: ClosedWindow) -> Orphans:
    """What lists a foreign key's orphans: its parent's columns from its REFERENCES, else the
    parent's primary key in the log's DDL."""
    referenced = key.referenced_columns
    if not referenced and key.referenced_table:
        referenced = Catalog(closed.ddl, [key.referenced_table]).primary_key(key.referenced_table)
    return Orphans(key.table, key.referenced_table, key.columns,
                   referenced if len(referenced) == len(key.columns) else ())


def _writes(statement: LoggedStatement) -> tuple[Write, ...]:
    return statement_writes(statement.text, statement.parameters).writes
