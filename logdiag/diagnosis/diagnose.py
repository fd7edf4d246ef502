"""From a failure (an ERROR and its transaction) to an incident: its timing, key, culprits and
evidence. This module decides; :mod:`logdiag.diagnosis.explain` words what it decided."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from logdiag.diagnosis.catalog import Catalog, Declaration
from logdiag.diagnosis.deadlock import diagnose_deadlock, is_deadlock
from logdiag.diagnosis.explain import (
    Findings,
    Opening,
    Orphans,
    Reason,
    WhatFailed,
    Why,
    checks_disabled_note,
    culprit_reason,
    explanation,
    hints,
    ignored_set_note,
    related_note,
    settings_advice,
)
from logdiag.diagnosis.incidents import (
    Confidence,
    Culprit,
    Incident,
    Match,
    Missing,
    OtherError,
    Related,
    Role,
    SessionInfo,
    Timing,
)
from logdiag.diagnosis.messages import (
    ConstraintKind,
    KeyText,
    Violation,
    context_function,
    inferred_sqlstate,
    is_match_full_detail,
    parse_violation,
    trigger_violation,
)
from logdiag.diagnosis.sessions import ChecksWindow, Entry, Failure, Session
from logdiag.diagnosis.sql import (
    UNKNOWN,
    Cell,
    StatementWrites,
    TriggerDefinition,
    UnknownValue,
    Write,
    WriteKind,
    default_constraint_name,
    same_value,
    statement_writes,
    statements_in,
)
from logdiag.diagnosis.statements import (
    CHECKS_DEFERRED,
    ENDS_TRANSACTION,
    Control,
    LoggedStatement,
    classify_control,
    may_hold_several,
    skip_leading_noise,
)
from logdiag.lang import LANGUAGES, msgids

_COMMIT_TAGS = frozenset({"COMMIT", "END", "PREPARE TRANSACTION", "SET CONSTRAINTS"})
_DEFERRABLE_KINDS = frozenset({ConstraintKind.FOREIGN_KEY, ConstraintKind.UNIQUE, ConstraintKind.EXCLUSION})
#: Violations a commit can raise: deferred keys, and deferred constraint triggers (40002).
_RAISED_AT_COMMIT = _DEFERRABLE_KINDS | {ConstraintKind.TRIGGER}
_RANK = {match: rank for rank, match in enumerate(Match)}


@dataclass(frozen=True, slots=True)
class _Candidate:
    entry: Entry
    write: Write
    match: Match
    confidence: Confidence
    reason: Reason
    key_values: tuple[str | None, ...] | None = None
    window: ChecksWindow | None = None  # written while foreign-key checks were off


def diagnose(failure: Failure) -> Incident | OtherError:
    """Explain one failure; errors that are not constraint violations (nor deadlocks, issue 28)
    come back as OtherError."""
    record = failure.record
    violation = parse_violation(record.message, record.detail, record.sqlstate)
    if violation is None and record.sqlstate is None and _trigger_at_commit(failure):
        violation = trigger_violation(record.message, record.detail, None)
    if violation is None:
        inferred = None if record.sqlstate is not None else inferred_sqlstate(record.message)
        if failure.deadlock is not None and is_deadlock(record.sqlstate, inferred):
            return diagnose_deadlock(failure, failure.deadlock)
        return OtherError(record.sqlstate or inferred, record.message, record.source, record.timestamp,
                          sqlstate_inferred=inferred is not None,
                          session=_session_info(failure.session),
                          vxid=record.vxid, xid=record.xid, detail=record.detail, hint=record.hint,
                          context=record.context, statement=record.statement)
    return _Diagnosis(failure, violation).incident()


def _session_info(session: Session) -> SessionInfo:
    """Who the session is, as an incident or other error carries it."""
    return SessionInfo(session.session_id, session.pid, session.user, session.database, session.application,
                       session.client)


_TRIGGER_EVENTS = {WriteKind.INSERT: "insert", WriteKind.UPDATE: "update", WriteKind.DELETE: "delete"}


def _trigger_at_commit(failure: Failure) -> bool:
    """Without a SQLSTATE (stderr without ``%e``), an ERROR raised at commit by the function of a
    constraint trigger declared in the log is that trigger's violation, whatever its words
    (issue 26): its CONTEXT names the function, the DDL ties it to the trigger."""
    record = failure.record
    function = context_function(record.context)
    if function is None:
        return False
    control = classify_control(record.statement)
    at_commit = (
        (control is not None and control.kind in CHECKS_DEFERRED)
        or record.command_tag in _COMMIT_TAGS
        or record.statement is None
        or any((c := classify_control(p)) is not None and c.kind in CHECKS_DEFERRED
               for p in (statements_in(record.statement) if may_hold_several(record.statement) else None) or ())
    )
    if not at_commit:
        return False
    return bool(Catalog(failure.ddl, [function]).constraint_triggers(function))


class _Diagnosis:
    def __init__(self, failure: Failure, violation: Violation) -> None:
        self.failure = failure
        self.violation = violation
        self.record = failure.record
        function = context_function(self.record.context) if violation.kind is ConstraintKind.TRIGGER else None
        names = [violation.table, violation.referenced_table, violation.constraint, function]
        if violation.constraint:
            parts = violation.constraint.split("_")
            names.extend("_".join(parts[:n]) for n in range(1, len(parts)))
        self.catalog = Catalog(failure.ddl, names)
        #: for a constraint trigger's error, the triggers that raised it: those that run the
        #: function its CONTEXT names, else the one its message names
        self.triggers: list[TriggerDefinition] = []
        if violation.kind is ConstraintKind.TRIGGER:
            self.triggers = self.catalog.constraint_triggers(function) or self.catalog.constraint_triggers(
                name=violation.constraint
            )
            if self.triggers:
                named = [t for t in self.triggers if t.name == violation.constraint] or self.triggers
                self.triggers = named
                violation = replace(violation, constraint=violation.constraint or named[0].name, table=named[0].table)
                self.violation = violation
                if named[0].table not in self.catalog.columns:  # the table's columns, for INSERTs without a list
                    self.catalog = Catalog(failure.ddl, [*names, named[0].table])
        self.declaration = self.catalog.constraint(violation.constraint)
        self.table = violation.table or (self.declaration.constraint.table if self.declaration else None)
        self.referenced_table = violation.referenced_table or (
            self.declaration.constraint.referenced_table if self.declaration else None
        )
        self._writes_of: dict[int, StatementWrites] = {}
        #: writes of the key's columns into the table whose values matched no split of the key:
        #: a value in a form logdiag does not compare with the server's (issue 26)
        self.unmatched: list[tuple[Entry, Write]] = []
        self._statements_in: dict[str, tuple[str, ...] | None] = {}

    # --- what happened --------------------------------------------------------------------

    def timing(self) -> tuple[Timing, WhatFailed]:
        """(when the constraint was checked, which statement failed and how)."""
        raising = self.record.statement
        line = self.record.source.line
        control = classify_control(raising)
        if control is not None and control.kind in CHECKS_DEFERRED:
            return Timing.COMMIT, WhatFailed(Opening.CHECKING, line, raising)
        if self.record.command_tag in _COMMIT_TAGS:
            return Timing.COMMIT, WhatFailed(Opening.COMMAND_TAG, line, self.record.command_tag)
        checking = self._checking_part(raising)
        if checking is not None:
            return Timing.COMMIT, WhatFailed(Opening.ONE_OF_SEVERAL, line, checking)
        if raising is None and self.violation.kind in _RAISED_AT_COMMIT:
            return Timing.COMMIT, WhatFailed(Opening.SYNC, line)
        if (
            self.violation.kind in _DEFERRABLE_KINDS
            and not self.failure.explicit
            and (self._initially_deferred() or self._deferred_by)
        ):
            return Timing.COMMIT, WhatFailed(Opening.AUTOCOMMIT, line)
        return Timing.STATEMENT, WhatFailed(Opening.STATEMENT, line)

    def _checking_part(self, raising: str | None) -> str | None:
        """The last statement of a raising query string of several that checks deferred
        constraints (COMMIT...), if the constraint was deferred: stderr logs no command tag to
        tell which of them failed."""
        if not raising or self.violation.kind not in _RAISED_AT_COMMIT:
            return None
        parts = self.statements_in(raising)
        if not parts or not (self._initially_deferred() or self._deferred_by):
            return None
        checking = [p for p in parts if (c := classify_control(p)) is not None and c.kind in CHECKS_DEFERRED]
        return checking[-1] if checking else None

    def _initially_deferred(self) -> bool:
        return bool(self.declaration and self.declaration.constraint.initially_deferred)

    @cached_property
    def _deferred_by(self) -> list[Entry]:
        """The SET CONSTRAINTS ... DEFERRED statements that deferred the constraint."""
        found = []
        for entry in self.one_by_one(self.failure.entries):
            control = entry.statement.control
            if control is None or control.kind is not Control.SET_CONSTRAINTS_DEFERRED:
                continue
            names = [n.strip().strip('"').split(".")[-1] for n in (control.argument or "").split(",")]
            if "ALL" in [n.upper() for n in names] or self.violation.constraint in names:
                found.append(entry)
        return found

    # --- statements -----------------------------------------------------------------------

    def writes_of(self, statement: LoggedStatement) -> StatementWrites:
        cached = self._writes_of.get(id(statement))
        if cached is None:
            cached = statement_writes(statement.text, statement.parameters, self.catalog.columns)
            executed = _prepared_writes(statement, cached)
            if executed is not None:
                cached = executed
            self._writes_of[id(statement)] = cached
        return cached

    def statements_in(self, text: str | None) -> tuple[str, ...] | None:
        """:func:`~logdiag.diagnosis.sql.statements_in`, split once per diagnosis (the timing, the culprits
        and the hints each ask); texts without an inner semicolon are not even kept."""
        if not text or not may_hold_several(text):
            return None
        if text not in self._statements_in:
            self._statements_in[text] = statements_in(text)
        return self._statements_in[text]

    def one_by_one(self, entries: Sequence[Entry], raising: Entry | None = None) -> list[Entry]:
        """The entries with each query string of several statements split into them (the one
        record logged them all).

        A COMMIT or ROLLBACK in such a string ended the transaction before this one, and a BEGIN
        (out of a transaction block) started this one: what came before them is left out. In the
        ``raising`` string, only before its first other statement: whichever of its statements
        failed, the ones before it ran."""
        out: list[Entry] = []
        for entry in entries:
            parts = self.statements_in(entry.statement.text)
            if parts is None:
                out.append(entry)
                continue
            ran = False  # a statement of the raising string that is no transaction control
            for text in parts:
                statement = LoggedStatement(text, entry.statement.record, control=classify_control(text))
                kind = statement.control.kind if statement.control else None
                if not ran:
                    if kind in ENDS_TRANSACTION:
                        out.clear()
                        continue
                    if kind is Control.BEGIN and not self.failure.explicit:
                        out.clear()
                ran = ran or (entry is raising and kind is None)
                out.append(Entry(statement, entry.undone_by, entry.failed))
        return out

    def writes(self, entries: Sequence[Entry]) -> Iterator[tuple[Entry, Write]]:
        for entry in entries:
            if entry.statement.may_write:
                for write in self.writes_of(entry.statement).writes:
                    yield entry, write

    # --- matching -------------------------------------------------------------------------

    def candidates(self, timing: Timing) -> list[_Candidate]:
        """The statements that may have written the key, strongest match first: at commit, any
        statement of the transaction that was not rolled back; else the statement that raised."""
        record = self.record
        entries = list(self.failure.entries)
        candidates: list[_Candidate] = []
        if timing is Timing.COMMIT:
            pool = [e for e in entries if e.undone_by is None]
            raising_text = record.statement
            raising_entry = next((e for e in reversed(pool) if e.statement.text == raising_text), None)
            if raising_text is not None and classify_control(raising_text) is None and raising_entry is None:
                # An autocommit statement that failed at its own commit, and that the log did not
                # show before (log_min_duration_statement logs a statement only once it succeeded).
                raising_entry = Entry(LoggedStatement(raising_text, record))
                pool.append(raising_entry)
            pool = [e for e in self.one_by_one(pool, raising_entry) if not _is_control(e)]
            for entry, write in self.writes(pool):
                found = self.match(entry, write)
                if found is not None:
                    candidates.append(found)
        else:
            raising = self._raising_entry(entries)
            if raising is not None:
                for entry, write in self.writes(self.one_by_one([raising], raising)):
                    found = self.match(entry, write)
                    if found is not None:
                        candidates.append(found)
                if not candidates:
                    candidates = self._window_candidates()
                if not candidates:
                    write = Write(WriteKind.CALL, self.table)
                    candidates.append(_Candidate(raising, write, Match.TABLE, Confidence.HIGH, Reason(Why.RAISED, write)))
        if self.triggers:
            # Each write of the keyed row queued a check; the last one left the row as the
            # trigger saw it at commit, so the latest key match comes first.
            order = {id(c): n for n, c in enumerate(candidates)}
            candidates.sort(key=lambda c: (_RANK[c.match], -order[id(c)] if c.match is Match.KEY else order[id(c)]))
        else:
            # Among calls, those whose arguments carry the key come first.
            candidates.sort(key=lambda c: (_RANK[c.match], c.reason.why is Why.CALLS))
        return candidates

    def _carried_key(self, call: Write) -> tuple[tuple[str, str | None], ...] | None:
        """The key, column by column, when every value of it is among a call's arguments."""
        key = self.violation.key
        if key is None or not key.columns or not call.arguments:
            return None
        for split in (s for s in (key.split(), *key.candidates()) if s is not None):
            values = [v for v in split if v is not None]
            if values and all(any(same_value(a, v) for a in call.arguments) for v in values):
                return tuple(zip(key.columns, split, strict=True))
        return None

    def match(self, entry: Entry, write: Write) -> _Candidate | None:
        v = self.violation
        key = v.key
        if write.kind is WriteKind.CALL:
            carried = self._carried_key(write)
            if carried is not None:  # its arguments carry the key: the likeliest call (issue 26)
                return _Candidate(entry, write, Match.CALL, Confidence.LOW, Reason(Why.CALLS_WITH_KEY, write, carried))
            return _Candidate(entry, write, Match.CALL, Confidence.LOW, Reason(Why.CALLS, write))
        if v.kind is ConstraintKind.FOREIGN_KEY and v.parent_side:
            return self._match_parent(entry, write)
        table = self.table
        if v.kind is ConstraintKind.TRIGGER and self.triggers:
            return self._match_trigger(entry, write)
        if v.kind in (ConstraintKind.TRIGGER, ConstraintKind.OTHER):
            if write.kind in (WriteKind.INSERT, WriteKind.UPDATE, WriteKind.DELETE, WriteKind.MERGE, WriteKind.COPY):
                return _Candidate(entry, write, Match.TABLE, Confidence.LOW, Reason(Why.WROTE_TABLE, write))
            return None
        if table is not None and not self._lands_in_table(write.table):
            return None
        if write.kind in (WriteKind.DELETE,):
            return None
        if self._match_full_columns and write.rows is not None and write.columns is not None:
            return self._match_mixed_nulls(entry, write, self._match_full_columns)
        if write.kind in (WriteKind.COPY, WriteKind.MERGE) or write.rows is None:
            return _Candidate(entry, write, Match.TABLE, Confidence.MEDIUM, Reason(Why.ROWS_NOT_LOGGED, write))
        if key is None or not key.columns or write.columns is None:
            return _Candidate(entry, write, Match.TABLE, Confidence.MEDIUM, Reason(Why.KEY_NOT_LOGGED, write))
        if write.kind is WriteKind.UPDATE and not set(key.columns) & set(write.columns):
            return None
        if not set(key.columns) <= set(write.columns):
            if v.kind is ConstraintKind.UNIQUE and table is None:
                return None
            return _Candidate(entry, write, Match.TABLE, Confidence.MEDIUM, Reason(Why.KEY_NOT_SET, write))
        unknown = False
        types = self._types(key.columns)
        for values in write.values_of(key.columns):
            matched = _key_match(key, values, types)
            if matched is not None:
                wrote = Reason(Why.WROTE_KEY, write, tuple(zip(key.columns, matched, strict=True)))
                return _Candidate(entry, write, Match.KEY, Confidence.HIGH, wrote, matched)
            unknown = unknown or any(value is UNKNOWN for value in values)
        if unknown:
            return _Candidate(entry, write, Match.TABLE, Confidence.MEDIUM, Reason(Why.KEY_UNKNOWN, write))
        if v.kind is not ConstraintKind.UNIQUE or table is not None:
            self.unmatched.append((entry, write))
        return None

    def _types(self, columns: Sequence[str]) -> tuple[str | None, ...]:
        """The key's columns' types, from the CREATE TABLE of the violation's table in the log."""
        declared = self.catalog.types.get(self.table or "", {})
        return tuple(declared.get(c) for c in columns)

    @cached_property
    def _windows(self) -> list[ChecksWindow]:
        """The session's windows of switched-off checks that covered this table, when an ALTER
        TABLE (ADD CONSTRAINT, VALIDATE CONSTRAINT) found a foreign key broken by an existing row:
        rows written in such a window were never checked (issue 26)."""
        v, raising = self.violation, self.record.statement
        if v.kind is not ConstraintKind.FOREIGN_KEY or v.parent_side or not raising:
            return []
        if not skip_leading_noise(raising)[:11].upper().startswith("ALTER TABLE"):
            return []
        return [w for w in self.failure.checks_windows if w.table is None or self._lands_in_table(w.table)]

    def _window_candidates(self) -> list[_Candidate]:
        """The writes of those windows that may have written the key: the row that carries it
        first (at its statement's line, whichever window), then the table's other writes."""
        found: list[_Candidate] = []
        for window in self._windows:
            for statement in window.writes:
                entry = Entry(statement)
                for write in self.writes_of(statement).writes:
                    candidate = self.match(entry, write)
                    if candidate is not None:
                        found.append(replace(candidate, window=window))
        found.sort(key=lambda c: _RANK[c.match])
        return found

    def orphans(self) -> Orphans | None:
        """How to list the rows of the table that have no parent, for a violation found in rows
        written with the checks off: the foreign key's columns from the ALTER TABLE that failed
        or the DDL in the log, the parent's from its REFERENCES or its primary key."""
        v = self.violation
        if not self._windows or v.key is None or not v.key.columns or self.table is None:
            return None
        raising = Catalog([LoggedStatement(self.record.statement or "", self.record)], [v.constraint])
        declared = raising.constraint(v.constraint) or self.declaration
        referenced = declared.constraint.referenced_columns if declared else ()
        if not referenced and self.referenced_table:
            referenced = self.catalog.primary_key(self.referenced_table)
        if len(referenced) != len(v.key.columns):
            referenced = ()
        return Orphans(self.table, self.referenced_table, v.key.columns, referenced)

    @cached_property
    def _match_full_columns(self) -> tuple[str, ...]:
        """A MATCH FULL key's columns, from the DDL in the log, when its DETAIL says a row mixed
        NULL and non-NULL in them (it shows no key); else ()."""
        v = self.violation
        if v.kind is not ConstraintKind.FOREIGN_KEY or v.parent_side or not is_match_full_detail(v.detail_reason):
            return ()
        return self.declaration.constraint.columns if self.declaration else ()

    def _match_mixed_nulls(self, entry: Entry, write: Write, columns: tuple[str, ...]) -> _Candidate | None:
        """The write whose row mixes NULL and non-NULL in a MATCH FULL key's columns (issue 26);
        rows with all of them NULL or none are fine, and not culprits."""
        unknown = False
        for values in write.values_of(columns):
            if any(isinstance(value, UnknownValue) for value in values):
                unknown = True
                continue
            if None in values and any(value is not None for value in values):
                mixed = tuple(value if isinstance(value, str) else None for value in values)
                wrote = Reason(Why.MIXED_NULLS, write, tuple(zip(columns, mixed, strict=True)))
                return _Candidate(entry, write, Match.KEY, Confidence.HIGH, wrote)
        if unknown:
            return _Candidate(entry, write, Match.TABLE, Confidence.MEDIUM, Reason(Why.KEY_UNKNOWN, write))
        return None

    def _match_trigger(self, entry: Entry, write: Write) -> _Candidate | None:
        """A write into the trigger's table, for an event it fires on (MERGE and COPY may be
        any): the one whose row carries the key (a row it inserted, or a row its WHERE picks or
        its SET writes) is a key match; the others rank below."""
        if not self._lands_in_table(write.table):
            return None
        event = _TRIGGER_EVENTS.get(write.kind)
        if event is not None and not any(event in t.events for t in self.triggers):
            return None
        key = self.violation.key
        if key is None or not key.columns or key.values is None:
            return _Candidate(entry, write, Match.TABLE, Confidence.MEDIUM, Reason(Why.WROTE_TABLE, write))
        rows: list[tuple[Cell, ...]] = []
        if all(c in write.where for c in key.columns):
            rows.append(tuple(write.where[c] for c in key.columns))
        if write.kind is not WriteKind.DELETE:
            rows.extend(write.values_of(key.columns))
        for values in rows:
            matched = _key_match(key, values)
            if matched is not None:
                why = Why.WROTE_KEY if write.kind is WriteKind.INSERT else Why.WROTE_KEYED_ROW
                wrote = Reason(why, write, tuple(zip(key.columns, matched, strict=True)))
                return _Candidate(entry, write, Match.KEY, Confidence.HIGH, wrote, matched)
        return _Candidate(entry, write, Match.TABLE, Confidence.LOW, Reason(Why.WROTE_TABLE, write))

    def _lands_in_table(self, written: str | None) -> bool:
        """Whether rows written into this table land in the violation's: the table itself, or a
        partitioned table that the violation's table is a partition of (PostgreSQL names the
        partition). That is known from the DDL in the log or, for a foreign key named by default,
        from its name, which every partition's copy of the key shares."""
        table, v = self.table, self.violation
        if written is None or table is None:
            return False
        if written == table or written in self.catalog.partitioned_tables(table):
            return True
        return (
            v.kind is ConstraintKind.FOREIGN_KEY and v.key is not None and bool(v.key.columns)
            and v.constraint == default_constraint_name(written, "foreign_key", v.key.columns)
        )

    def _match_parent(self, entry: Entry, write: Write) -> _Candidate | None:
        parent = self.violation.referenced_table
        key = self.violation.key
        if write.table != parent or write.kind not in (WriteKind.DELETE, WriteKind.UPDATE, WriteKind.MERGE):
            return None
        if (
            write.kind is WriteKind.UPDATE and key is not None and key.columns and write.columns is not None
            and not set(key.columns) & set(write.columns)
        ):
            # The DETAIL's key columns are the referenced ones: an UPDATE that does not set them
            # can neither break nor fix the reference (issue 26).
            return None
        if key is not None and key.columns and all(c in write.where for c in key.columns):
            matched = _key_match(key, tuple(write.where[c] for c in key.columns))
            if matched is not None:
                changed = Reason(Why.CHANGED_PARENT_KEY, write, tuple(zip(key.columns, matched, strict=True)))
                return _Candidate(entry, write, Match.KEY, Confidence.HIGH, changed, matched)
        return _Candidate(entry, write, Match.TABLE, Confidence.MEDIUM, Reason(Why.CHANGED_PARENT, write))

    # --- evidence -------------------------------------------------------------------------

    def related(self, key_values: tuple[str | None, ...] | None, timing: Timing) -> list[Related]:
        v = self.violation
        out: list[Related] = []
        values = [x for x in (key_values or self._best_split() or ()) if x is not None]
        if v.kind is ConstraintKind.FOREIGN_KEY and not v.parent_side and self.referenced_table:
            for entry, write in self.writes(self.failure.entries):
                if write.table != self.referenced_table:
                    continue
                if write.kind is WriteKind.INSERT and entry.undone_by is not None and _row_has(write, values):
                    out.append(_related(Role.ROLLED_BACK_PARENT, entry.statement, undone_by=entry.undone_by))
                    undone = entry.undone_by.record.source
                    if all(r.role is not Role.SAVEPOINT_ROLLBACK or r.source != undone for r in out):
                        out.append(_related(Role.SAVEPOINT_ROLLBACK, entry.undone_by))
                elif write.kind in (WriteKind.DELETE, WriteKind.UPDATE) and entry.undone_by is None:
                    hits = [x for x in write.where.values() if isinstance(x, str) and x in values]
                    out.append(_related(Role.PARENT_CHANGE, entry.statement, removed_key=bool(hits)))
        # A key violated at its statement after SET CONSTRAINTS deferred it (ALL, or by name) is
        # NOT DEFERRABLE: the SET had no effect on it (issue 26); only a real deferral is deferred_by.
        deferral = Role.DEFERRAL_IGNORED if timing is Timing.STATEMENT else Role.DEFERRED_BY
        for entry in self._deferred_by:
            out.append(_related(deferral, entry.statement))
        ignored = self._ignored_set(timing)
        if ignored is not None:
            out.append(Related(Role.DEFERRAL_IGNORED, ignored.text, ignored.record.source, ignored.record.timestamp,
                               ignored_set_note(self.failure.ignored_set.warning.source.line)
                               if self.failure.ignored_set else None))
        if self.declaration is not None and (
            self.declaration.constraint.deferrable or self.declaration.constraint.initially_deferred
        ):
            out.append(_declared(self.declaration))
        return out

    def window_related(self, candidates: list[_Candidate]) -> list[Related]:
        """The statements that switched the checks off for the culprits' writes: the key's
        window, else every window a culprit of the table was written in."""
        keyed = [c.window for c in candidates if c.match is Match.KEY and c.window is not None][:1]
        windows = keyed or [c.window for c in candidates if c.window is not None]
        out: list[Related] = []
        for n, window in enumerate(windows):
            if all(window is not earlier for earlier in windows[:n]):
                start = window.start
                out.append(Related(Role.CHECKS_DISABLED, start.text, start.record.source, start.record.timestamp,
                                   checks_disabled_note(window)))
        return out

    def _ignored_set(self, timing: Timing) -> LoggedStatement | None:
        """The session's SET CONSTRAINTS outside a transaction block (it did nothing), when this
        violation at a statement is of a constraint it evidently meant to defer (issue 26)."""
        ignored = self.failure.ignored_set
        if ignored is None or ignored.statement is None or timing is not Timing.STATEMENT:
            return None
        control = ignored.statement.control
        if self.violation.kind not in _DEFERRABLE_KINDS or control is None:
            return None
        if control.kind is not Control.SET_CONSTRAINTS_DEFERRED:
            return None
        names = [n.strip().strip('"').split(".")[-1] for n in (control.argument or "").split(",")]
        if "ALL" in [n.upper() for n in names] or self.violation.constraint in names:
            return ignored.statement
        return None

    def _best_split(self) -> tuple[str, ...] | None:
        key = self.violation.key
        if key is None:
            return None
        return key.split() or next(iter(key.candidates()), None)

    # --- the incident ---------------------------------------------------------------------

    def incident(self) -> Incident:
        failure, record, v = self.failure, self.record, self.violation
        timing, what_failed = self.timing()
        candidates = self.candidates(timing)
        key_values = next((c.key_values for c in candidates if c.key_values is not None), None)
        gaps = self._gaps(timing)
        culprits = tuple(_culprit(c, culprit_reason(c.reason, v, failure, gaps), gaps) for c in _unique(candidates))
        missing = list(gaps)
        if timing is Timing.COMMIT and not culprits and not failure.dropped and not failure.history_lost:
            missing.append(Missing.STATEMENTS)  # none of the transaction's statements in the log wrote the key
        related = [*self.window_related(candidates), *self.related(key_values, timing)]
        bind = candidates[0].entry.statement.bind if candidates else None
        if bind is not None:
            related.append(_related(Role.CULPRIT_BIND, bind))
        findings = Findings(
            failure=failure,
            violation=v,
            timing=timing,
            what_failed=what_failed,
            table=self.table or next((c.write.table for c in candidates if c.match is Match.KEY), None),
            referenced_table=self.referenced_table,
            key=_key_dict(v.key, key_values) or dict.fromkeys(self._match_full_columns),
            culprits=culprits,
            related=tuple(related),
            missing=tuple(missing),
            raised_by_one_of_several=record.command_tag is None and self.statements_in(record.statement) is not None,
            trigger=self.triggers[0].name if self.triggers else None,
            ignored_set_line=ignored.record.source.line if (ignored := self._ignored_set(timing)) else None,
            orphans=self.orphans(),
            uncompared=tuple(
                (e.statement.record.source.line, e.statement.text) for e, _ in self.unmatched
            ) if not culprits else (),
        )
        return Incident(
            sqlstate=v.sqlstate,
            condition=v.condition,
            timing=timing,
            at=record.timestamp,
            constraint=v.constraint,
            constraint_kind=v.kind,
            table=findings.table,
            referenced_table=findings.referenced_table,
            key=findings.key,
            message=record.message or "",
            detail=record.detail,
            session=_session_info(failure.session),
            vxid=record.vxid,
            xid=record.xid,
            raised_by_statement=record.statement,
            raised_by_source=record.source,
            culprits=culprits,
            related=findings.related,
            explanation=explanation(findings),
            hints=hints(findings),
            settings_advice=settings_advice(findings),
            missing=findings.missing,
        )

    def _raising_entry(self, entries: list[Entry]) -> Entry | None:
        raising = self.record.statement
        if raising is None:
            return None
        for entry in reversed(entries):
            if entry.statement.text == raising:
                return entry
        return Entry(LoggedStatement(raising, self.record))

    def _gaps(self, timing: Timing) -> list[Missing]:
        """What the log lacks that weakens every culprit."""
        gaps: list[Missing] = []
        f = self.failure
        if timing is Timing.COMMIT and not f.by_vxid and not f.boundaries_seen:
            gaps.append(Missing.TRANSACTION_BOUNDARIES)
        if f.dropped:
            gaps.append(Missing.DROPPED_STATEMENTS)
        if f.keyless:
            gaps.append(Missing.SESSION)
        if f.history_lost:
            gaps.append(Missing.SESSION_HISTORY)
        return gaps


def _prepared_writes(statement: LoggedStatement, written: StatementWrites) -> StatementWrites | None:
    """``EXECUTE p(42)`` logs ``DETAIL: prepare: PREPARE p AS ...``: analyse that with the arguments."""
    detail = statement.record.detail
    head = next((h for h in _PREPARE_HEADS if detail and detail.startswith(h)), None)
    if written.writes or not detail or head is None:
        return None
    arguments = written.execute_arguments
    if arguments is None:
        return None
    return statement_writes(detail[len(head) :], {f"${n}": v for n, v in enumerate(arguments, 1)})


#: ``prepare: `` as the server prints it, in every language.
_PREPARE_HEADS = tuple(sorted({language.format(msgids.PREPARE).head for language in LANGUAGES.values()}))


def _key_match(
    key: KeyText, values: tuple[Cell, ...], types: tuple[str | None, ...] = ()
) -> tuple[str | None, ...] | None:
    """The split of ``key`` that equals ``values`` (compared as the columns' ``types`` when known), or None."""
    known = tuple(value for value in values if not isinstance(value, UnknownValue))
    if len(known) < len(values):  # a value the statement computes
        return None
    if key.matches(known):
        return known
    types = types or (None,) * len(values)
    for split in key.candidates():
        if all(same_value(value, printed, kind) for value, printed, kind in zip(values, split, types, strict=True)):
            return split
    return None


def _row_has(write: Write, values: list[str]) -> bool:
    if not values or write.rows is None:
        return True
    return any(all(any(same_value(cell, value) for cell in row) for value in values) for row in write.rows)


def _key_dict(key: KeyText | None, values: tuple[str | None, ...] | None) -> dict[str, str | None]:
    if key is None or not key.columns:
        return {}
    chosen = values or key.split() or next(iter(key.candidates()), None)
    if chosen is None:
        return {", ".join(key.columns): key.values}
    return {c: (None if v == "null" else v) for c, v in zip(key.columns, chosen, strict=True)}


def _is_control(entry: Entry) -> bool:
    return entry.statement.control is not None


def _unique(candidates: list[_Candidate]) -> Iterator[_Candidate]:
    seen: set[int] = set()
    for candidate in candidates:
        if id(candidate.entry.statement) not in seen:
            seen.add(id(candidate.entry.statement))
            yield candidate


def _culprit(candidate: _Candidate, reason: str, weaker: list[Missing]) -> Culprit:
    statement = candidate.entry.statement
    return Culprit(
        statement=statement.text,
        source=statement.record.source,
        at=statement.record.timestamp,
        parameters=statement.parameters,
        match=candidate.match,
        confidence=candidate.confidence.weakened(len(weaker) and 1),
        reason=reason,
    )


def _related(
    role: Role, statement: LoggedStatement, undone_by: LoggedStatement | None = None, removed_key: bool = False,
    initially_deferred: bool = False,
) -> Related:
    note = related_note(role, undone_by, removed_key, initially_deferred)
    return Related(role, statement.text, statement.record.source, statement.record.timestamp, note)


def _declared(declaration: Declaration) -> Related:
    deferred = declaration.constraint.initially_deferred
    return _related(Role.DECLARED_BY, declaration.statement, initially_deferred=deferred)

