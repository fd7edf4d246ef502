"""Deadlocks (40P01) as incidents: for each process of the cycle, the earlier statement of the
transaction that blocked it which took the lock it waited for (issue 28).

A deadlock's DETAIL names each process's *current* statement, the one that waited; the question
on call is which earlier statement of the other transaction took the lock. The session tracker
hands over, with the victim's ERROR, the open transaction of every other process of the cycle
(:class:`~logdiag.diagnosis.sessions.Peer`); this module matches what each process waited for
(the row its waiting statement picks, the table, the advisory key) with the locks the statements
of the blocking transaction took (:func:`~logdiag.diagnosis.sql.statement_locks`). It decides;
:mod:`logdiag.diagnosis.explain` words it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from logdiag.diagnosis.catalog import Catalog
from logdiag.diagnosis.explain import (
    LockStep,
    deadlock_explanation,
    deadlock_hints,
    lock_taker_reason,
    lock_wait_note,
)
from logdiag.diagnosis.incidents import (
    Confidence,
    Culprit,
    CycleStep,
    Incident,
    Match,
    Related,
    Role,
    SessionInfo,
    StatementRef,
    Timing,
)
from logdiag.diagnosis.locks import Deadlock, Edge, LockKind, WaitEvent, context_relation, parse_lock_wait
from logdiag.diagnosis.messages import OTHER_CONDITIONS
from logdiag.diagnosis.sessions import Entry, Failure, Peer, Session
from logdiag.diagnosis.sql import Cell, Lock, LockTaken, same_value, statement_locks
from logdiag.records import LogRecord

DEADLOCK_SQLSTATE = "40P01"


@dataclass(frozen=True, slots=True)
class _Process:
    """A process of the cycle as the log shows it: its session and open transaction."""

    pid: int
    session: Session | None
    entries: tuple[Entry, ...]
    xid: int | None
    lock_waits: tuple[LogRecord, ...]


@dataclass(frozen=True, slots=True)
class _Target:
    """What a process waited for, from its waiting statement and the lock's object."""

    kind: LockKind
    table: str | None
    where: dict[str, str | None]
    advisory: tuple[int, int, int] | None = None  # (key1, key2, field4) of an advisory lock


@dataclass(frozen=True, slots=True)
class _Taker:
    entry: Entry
    lock: Lock
    match: Match


def diagnose_deadlock(failure: Failure, deadlock: Deadlock) -> Incident:
    """The incident of a deadlock's ERROR: the cycle, and for each of its processes the
    statement of the blocking transaction that took the lock it waited for."""
    record = failure.record
    # The process that found the cycle comes first in it (deadlock.c): the victim, whose ERROR this is.
    pid = record.pid if record.pid is not None else deadlock.edges[0].pid
    victim = _Process(pid, failure.session, failure.entries, record.xid, failure.lock_waits)
    processes = {victim.pid: victim}
    for peer in failure.peers:
        processes.setdefault(peer.pid, _peer(peer))
    columns: dict[str, tuple[str, ...]] = {}  # tables' columns from the DDL, for INSERTs without a list
    references: dict[str, tuple[_Reference, ...]] = {}  # a table -> the foreign keys that reference it
    steps: list[CycleStep] = []
    words: list[LockStep] = []
    culprits: list[Culprit] = []
    incident_key: dict[str, str | None] = {}
    incident_table: str | None = None
    for edge in deadlock.edges:
        waiter = processes.get(edge.pid)
        holder = processes.get(edge.blocked_by)
        query = deadlock.queries.get(edge.pid) or (record.statement if edge.pid == victim.pid else None)
        waiting = _waiting_entry(waiter, query)
        target = _target(edge, waiting, query, columns, _context_table(waiter, record if edge.pid == victim.pid else None))
        if target.table is not None and target.table not in references:
            references[target.table], known = _references(failure, target.table)
            columns.update(known)
        taker = _taker(holder, target, deadlock.queries.get(edge.blocked_by), columns,
                       references.get(target.table or "", ())) if holder else None
        steps.append(CycleStep(
            pid=edge.pid, mode=edge.mode, object=edge.object.text, blocked_by=edge.blocked_by,
            waiting_statement=_ref(waiting, query),
            lock_taken_by=None if taker is None else StatementRef(taker.entry.statement.text,
                                                                  taker.entry.statement.record.source),
        ))
        words.append(LockStep(
            pid=edge.pid, blocked_by=edge.blocked_by, mode=edge.mode, object=edge.object.text,
            table=target.table, where=tuple(target.where.items()),
            waiting_line=waiting.statement.record.source.line if waiting else None,
            taker_line=taker.entry.statement.record.source.line if taker else None,
            taker_verb=taker.lock.verb if taker else None,
            taker_where=_known(taker.lock.where) if taker else (),
            taker_match=taker.match if taker else None,
            holder_seen=holder is not None and bool(holder.entries),
        ))
        if edge.pid == victim.pid:
            incident_table, incident_key = target.table, dict(target.where)
        if taker is not None:
            statement = taker.entry.statement
            other = holder.session if holder is not None and holder.pid != victim.pid else None
            culprits.append(Culprit(
                statement=statement.text, source=statement.record.source, at=statement.record.timestamp,
                parameters=statement.parameters, match=taker.match,
                confidence=Confidence.HIGH if taker.match is Match.KEY else Confidence.MEDIUM,
                reason=lock_taker_reason(words[-1]),
                session=_info(other) if other is not None else None,
            ))
    related = [_wait_related(r) for p in processes.values() for r in p.lock_waits]
    related.sort(key=lambda r: (r.source.file, r.source.line))
    seen_all = all(edge.pid in processes and processes[edge.pid].entries for edge in deadlock.edges)
    lost = sorted({*failure.lost_pids, *(p.pid for p in failure.peers if p.history_lost or p.dropped),
                   *((victim.pid,) if failure.history_lost or failure.dropped else ())})
    if lost:  # a lock taker may be among what was dropped: each culprit is one step less sure
        culprits = [replace(c, confidence=c.confidence.weakened(1)) for c in culprits]
    session = failure.session
    return Incident(
        sqlstate=record.sqlstate or DEADLOCK_SQLSTATE,
        condition=OTHER_CONDITIONS[DEADLOCK_SQLSTATE],
        timing=Timing.STATEMENT,
        at=record.timestamp,
        constraint=None,
        constraint_kind=None,
        table=incident_table,
        referenced_table=None,
        key=incident_key,
        message=record.message or "",
        detail=record.detail,
        session=_info(session),
        vxid=record.vxid,
        xid=record.xid,
        raised_by_statement=record.statement,
        raised_by_source=record.source,
        culprits=tuple(culprits),
        related=tuple(related),
        explanation=deadlock_explanation(victim.pid, record.source.line, tuple(words), tuple(lost)),
        hints=deadlock_hints(tuple(words), statements_seen=failure.statements_seen, lock_waits_seen=bool(related),
                             seen_all=seen_all, lost=bool(lost)),
        deadlock=tuple(steps),
    )


def _known(where: Mapping[str, Cell]) -> tuple[tuple[str, str | None], ...]:
    """The conditions whose values the text says."""
    return tuple((c, v) for c, v in where.items() if isinstance(v, str) or v is None)


def _peer(peer: Peer) -> _Process:
    return _Process(peer.pid, peer.session, peer.entries, peer.xid, peer.lock_waits)


def _info(session: Session) -> SessionInfo:
    return SessionInfo(session.session_id, session.pid, session.user, session.database, session.application,
                       session.client)


def _same_text(logged: str, query: str) -> bool:
    """Whether a logged statement is the query the DETAIL quotes: the same, or the query cut at
    ``track_activity_query_size`` (and so a prefix of it)."""
    logged, query = logged.strip(), query.strip()
    return logged == query or (len(query) >= 64 and logged.startswith(query))


def _waiting_entry(process: _Process | None, query: str | None) -> Entry | None:
    """The statement of the process's transaction that waited: its last one the query is (None
    when the log did not show it being run: only the DETAIL, or the victim's ERROR, has it)."""
    if process is None or query is None:
        return None
    for entry in reversed(process.entries):
        if _same_text(entry.statement.text, query):
            return entry
    return None


def _ref(entry: Entry | None, query: str | None) -> StatementRef | None:
    if entry is not None:
        return StatementRef(entry.statement.text, entry.statement.record.source)
    return None if query is None else StatementRef(query, None)


def _context_table(process: _Process | None, error: LogRecord | None) -> str | None:
    """The table of the row a process waited for, as the CONTEXT of its wait names it: the
    victim's ERROR's, or the other processes' last ``still waiting`` line's."""
    if error is not None:
        return context_relation(error.context)
    for record in reversed(process.lock_waits if process is not None else ()):
        wait = parse_lock_wait(record.message)
        if wait is not None and wait.event is WaitEvent.STILL_WAITING:
            return context_relation(record.context)
    return None


def _target(edge: Edge, waiting: Entry | None, query: str | None,
            columns: dict[str, tuple[str, ...]], context_table: str | None = None) -> _Target:
    """What the waiting process wanted: the row or table its statement locks (the one of the
    table the CONTEXT names, when it names one; that table alone when the statement is not in
    the log or says nothing), the advisory key."""
    kind = edge.object.kind
    if kind is LockKind.ADVISORY and edge.object.advisory is not None:
        _, key1, key2, field4 = edge.object.advisory
        return _Target(kind, None, {}, (key1, key2, field4))
    text = waiting.statement.text if waiting is not None else query
    parameters = waiting.statement.parameters if waiting is not None else None
    locks = statement_locks(text, parameters, columns) if text else ()
    wanted = LockTaken.TABLE if kind is LockKind.RELATION else LockTaken.ROW
    # The CONTEXT's table picks among the statement's locks; a partition it names is not the
    # partitioned table the statement names, so the statement's first lock stays the fallback.
    lock = (
        next((lk for lk in locks if lk.kind is wanted and lk.table == context_table), None)
        or next((lk for lk in locks if lk.kind is wanted), None)
        or next((lk for lk in locks if lk.table is not None), None)
    )
    if lock is None:
        return _Target(kind, context_table, {})
    where = {c: v for c, v in lock.where.items() if isinstance(v, str) or v is None}
    return _Target(kind, lock.table, where if kind is not LockKind.RELATION else {})


@dataclass(frozen=True, slots=True)
class _Reference:
    """A foreign key into a table, from the DDL in the log: writing a row of ``table`` that
    references a row locks that row FOR KEY SHARE (the key's check) until the transaction ends."""

    table: str
    columns: tuple[str, ...]
    referenced: tuple[str, ...]


def _references(failure: Failure, table: str) -> tuple[tuple[_Reference, ...], dict[str, tuple[str, ...]]]:
    """The foreign keys into ``table`` that the log's DDL declares (its referenced columns from
    REFERENCES, else the table's primary key), and the columns of the tables that DDL creates."""
    catalog = Catalog(failure.ddl, [table])
    primary = [d.constraint.columns for d in catalog.declarations
               if d.constraint.kind == "primary_key" and d.constraint.table == table]
    found = []
    for declaration in catalog.declarations:
        key = declaration.constraint
        if key.kind != "foreign_key" or key.referenced_table != table:
            continue
        referenced = key.referenced_columns or (primary[-1] if primary else ())
        if len(referenced) == len(key.columns):
            found.append(_Reference(key.table, key.columns, referenced))
    return tuple(found), dict(catalog.columns)


def _referenced_rows(lock: Lock, references: Sequence[_Reference]) -> list[Lock]:
    """The parent rows a write of child rows locks FOR KEY SHARE (issue 28: a cycle through a
    foreign-key check), as row locks with the parent's key."""
    out = []
    for reference in references:
        if lock.kind is LockTaken.ROW and lock.verb == "inserted" and lock.table == reference.table and all(
            c in lock.where for c in reference.columns
        ):
            where = {p: lock.where[c] for c, p in zip(reference.columns, reference.referenced, strict=True)}
            verb = f"inserted into {reference.table} a row that references"  # its check: FOR KEY SHARE
            out.append(Lock(LockTaken.ROW, None, verb, where))
    return out


def _taker(holder: _Process, target: _Target, holder_query: str | None,
           columns: dict[str, tuple[str, ...]], references: Sequence[_Reference] = ()) -> _Taker | None:
    """The earliest statement of the holder's transaction, before the one it was waiting in,
    that took the lock the target names: on the same row (``key``), else the same table. A
    row that references the target's row through a foreign key locked it too (``key``)."""
    entries = list(holder.entries)
    if holder_query is not None:
        for index in range(len(entries) - 1, -1, -1):
            if _same_text(entries[index].statement.text, holder_query):
                entries = entries[:index]
                break
    by_table: _Taker | None = None
    for entry in entries:
        statement = entry.statement
        if entry.failed or entry.undone_by is not None or statement.control is not None:
            continue
        for lock in statement_locks(statement.text, statement.parameters, columns):
            match = _matches(lock, target)
            if match is Match.KEY:
                return _Taker(entry, lock, match)
            if match is Match.TABLE and by_table is None:
                by_table = _Taker(entry, lock, match)
            for parent in _referenced_rows(lock, references):
                if _matches(replace(parent, table=target.table), target) is Match.KEY:
                    return _Taker(entry, replace(parent, table=target.table), Match.KEY)
    return by_table


def _matches(lock: Lock, target: _Target) -> Match | None:
    if target.kind is LockKind.ADVISORY:
        if lock.kind is LockTaken.ADVISORY and target.advisory is not None and _advisory_key(lock) == target.advisory:
            return Match.KEY
        return None
    if lock.kind is LockTaken.ADVISORY or target.table is None or lock.table != target.table:
        return None
    if target.kind is LockKind.RELATION:
        return Match.TABLE if lock.kind is LockTaken.TABLE else None
    if lock.kind is not LockTaken.ROW:
        return Match.TABLE
    if target.where and all(c in lock.where and same_value(lock.where[c], v) for c, v in target.where.items()):
        return Match.KEY
    return Match.TABLE


def _advisory_key(lock: Lock) -> tuple[int, int, int] | None:
    """The (key1, key2, field4) an advisory lock call takes (``pg_advisory_lock(bigint)``: the
    key's high and low 32 bits, 1; ``(int4, int4)``: the two keys, 2), when its arguments are
    constants."""
    values: list[int] = []
    for argument in lock.arguments:
        if not isinstance(argument, str):
            return None
        try:
            values.append(int(argument))
        except ValueError:
            return None
    if len(values) == 1:
        key = values[0] & 0xFFFFFFFFFFFFFFFF
        return (key >> 32, key & 0xFFFFFFFF, 1)
    if len(values) == 2:
        return (values[0] & 0xFFFFFFFF, values[1] & 0xFFFFFFFF, 2)
    return None


def _wait_related(record: LogRecord) -> Related:
    wait = parse_lock_wait(record.message)
    note = lock_wait_note(wait) if wait is not None else None
    return Related(Role.LOCK_WAIT, record.message or "", record.source, record.timestamp, note)


def is_deadlock(sqlstate: str | None, inferred: str | None) -> bool:
    """Whether an error is a deadlock, by its SQLSTATE or the one its message implies."""
    return (sqlstate or inferred) == DEADLOCK_SQLSTATE

