"""The words of an incident: its explanation, its culprits' reasons, its evidence's notes, and
hints on what to do and which settings to change. :mod:`logdiag.diagnosis.diagnose` decides (the
values here: :class:`WhatFailed`, :class:`Reason`, :class:`Findings`); this module words them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

from logdiag.diagnosis.incidents import Culprit, Match, Missing, Related, Role, Timing
from logdiag.diagnosis.locks import LockWait
from logdiag.diagnosis.messages import ConstraintKind, Violation, is_match_full_detail
from logdiag.diagnosis.sessions import ChecksWindow, Failure
from logdiag.diagnosis.sql import Write, WriteKind
from logdiag.diagnosis.statements import LoggedStatement
from logdiag.wording import plural


class Opening(Enum):
    """Which statement failed, and how: what the explanation opens with (:func:`what_failed`)."""

    CHECKING = "checking"  # COMMIT, END, PREPARE TRANSACTION or SET CONSTRAINTS, named by its first words
    COMMAND_TAG = "command tag"  # a commit, named by the record's command tag
    ONE_OF_SEVERAL = "one of several"  # the statement that checks, in a query string of several
    SYNC = "sync"  # no statement: the implicit commit at Sync of the extended protocol
    AUTOCOMMIT = "autocommit"  # an autocommit statement, at its implicit commit
    STATEMENT = "statement"  # the statement itself


@dataclass(frozen=True, slots=True)
class WhatFailed:
    """Which statement failed and how (``opening``), at which line; ``name``: the statement or
    command tag that the words name."""

    opening: Opening
    line: int
    name: str | None = None


class Why(Enum):
    """Why a statement is a culprit (:func:`culprit_reason`)."""

    CALLS = "calls"  # a function call or DO block, whose writes the log does not show
    CALLS_WITH_KEY = "calls with key"  # a function call whose arguments carry the key
    WROTE_TABLE = "wrote table"  # it wrote the table (a trigger's or an unknown check)
    ROWS_NOT_LOGGED = "rows not logged"  # COPY, MERGE, or rows the statement text does not hold
    KEY_NOT_LOGGED = "key not logged"  # the log does not show the violation's key
    KEY_NOT_SET = "key not set"  # it wrote the table without setting the key's columns
    KEY_UNKNOWN = "key unknown"  # the key's value is computed or not logged
    WROTE_KEY = "wrote key"  # it wrote the offending key
    WROTE_KEYED_ROW = "wrote keyed row"  # its WHERE picked the row with the key (a trigger's check)
    MIXED_NULLS = "mixed nulls"  # its row mixed NULL and non-NULL in a MATCH FULL key
    CHANGED_PARENT_KEY = "changed parent key"  # it deleted or updated the referenced row
    CHANGED_PARENT = "changed parent"  # it deleted or updated rows of the referenced table
    RAISED = "raised"  # it raised the error, and no write of it matched


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a statement is a culprit: ``why``, the write that made it one, and for the key
    matches the key it wrote, column by column."""

    why: Why
    write: Write
    key: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Orphans:
    """What the query that lists a foreign key's orphans needs: the child table and its key
    columns, the parent table and its columns (``()`` when the log does not tell them)."""

    table: str
    referenced_table: str | None
    columns: tuple[str, ...]
    referenced_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Findings:
    """What a diagnosis found, for the words to tell.

    Attributes:
        failure: the failure diagnosed (its record, session and transaction).
        violation: what the error message and DETAIL say.
        timing: when the constraint was checked.
        what_failed: which statement failed and how, the explanation's opening (``COMMIT at line 9 failed``).
        table: the violation's table, or the table the culprit wrote the key into.
        referenced_table: for a foreign key, the referenced table (from the message or the DDL).
        key: the key, column by column.
        culprits: the culprits, likeliest first.
        related: the other evidence.
        missing: what the log lacked.
        raised_by_one_of_several: the failing query held several statements, and the log does not
            say which of them raised the error.
        trigger: for a constraint trigger's error, the trigger (from the DDL in the log).
        ignored_set_line: the line of a SET CONSTRAINTS that ran outside a transaction block and
            so did not defer the constraint.
        orphans: for a foreign key found broken by rows written with the checks switched off,
            how to list the rows it orphaned.
        uncompared: (line, statement) of the writes of the key's columns into the table whose
            values matched no form of the key: a value in a form logdiag does not compare.
    """

    failure: Failure
    violation: Violation
    timing: Timing
    what_failed: WhatFailed
    table: str | None
    referenced_table: str | None
    key: dict[str, str | None]
    culprits: tuple[Culprit, ...]
    related: tuple[Related, ...]
    missing: tuple[Missing, ...]
    raised_by_one_of_several: bool
    trigger: str | None = None
    ignored_set_line: int | None = None
    orphans: Orphans | None = None
    uncompared: tuple[tuple[int, str], ...] = ()


def _trigger_opening(found: Findings, opening: str, name: str) -> str:
    """A constraint trigger's error: its own words are the message; say whose they are (issue 26)."""
    v = found.violation
    where = f" on {found.table}" if found.table else ""
    when = "deferred to commit" if found.timing is Timing.COMMIT else "run at the statement"
    if found.trigger and found.trigger != v.constraint:
        words = f"{opening}: constraint {name}, checked by constraint trigger {found.trigger}{where}, {when}, rejected a row with its own error"
    else:
        words = f"{opening}: constraint trigger {name}{where}, {when}, rejected a row with its own error"
    if v.sqlstate is None:
        words += (
            " (the log carries no SQLSTATE; the trigger's function, named by the error's CONTEXT, is that of a "
            "constraint trigger declared in the log, and such a trigger usually raises 40002)"
        )
    shown_key = show_key(found.key.items())
    return words + (f"; its DETAIL gives the key {shown_key}." if shown_key else ".")


def explanation(found: Findings) -> str:
    """What happened, in a few sentences: what failed, the constraint and key, the culprit, the evidence."""
    v, timing, table, failure = found.violation, found.timing, found.table, found.failure
    shown_key = show_key(found.key.items()) or "a key the log does not show"
    name = f'"{v.constraint}"' if v.constraint else "a constraint"
    parts = []
    kind = v.kind.value.replace("_", " ")
    opening = what_failed(found.what_failed)
    if v.kind is ConstraintKind.TRIGGER:
        parts.append(_trigger_opening(found, opening, name))
    elif timing is Timing.COMMIT:
        parts.append(f"{opening}: {kind} constraint {name} is checked at commit, and a row written earlier broke it.")
    else:
        parts.append(f"{opening}: it broke {kind} constraint {name}.")
    referenced = found.referenced_table
    if v.kind is ConstraintKind.FOREIGN_KEY and not v.parent_side and v.detail_reason:
        parts.append(f"{table or 'The table'} got a row that breaks it: {v.detail_reason}")
    elif v.kind is ConstraintKind.FOREIGN_KEY and not v.parent_side:
        parts.append(f"{table or 'The table'} got {shown_key}, which has no row in {referenced or 'the referenced table'}.")
    elif v.kind is ConstraintKind.FOREIGN_KEY:
        parts.append(f"{referenced} lost {shown_key}, which {v.table} still references.")
    elif v.kind is ConstraintKind.UNIQUE:
        parts.append(f"Two rows of {table or 'the table'} have {shown_key}.")
    elif v.kind is ConstraintKind.EXCLUSION:
        existing = v.conflicting_key.values if v.conflicting_key else None
        parts.append(
            f"The row of {table or 'the table'} with {shown_key} conflicts with an existing row"
            + (f" ({', '.join(v.conflicting_key.columns)} = {existing})." if v.conflicting_key else ".")
        )
    top = next(iter(found.culprits), None)
    if top is not None and top.match is Match.KEY:
        parts.append(f"The statement that wrote it is at line {top.source.line}: {top.reason}.")
    elif top is not None:
        parts.append(f"The log does not show the key being written; the likeliest statement is at line {top.source.line} ({top.reason}).")
    elif timing is Timing.COMMIT and failure.history_lost:
        parts.append(
            "logdiag had dropped this session's earlier records (its cap on open sessions, the idle "
            "timeout, or the look-back of a streamed log): the statement that wrote the key may be among them."
        )
    elif timing is Timing.COMMIT and failure.dropped:
        parts.append(
            f"logdiag dropped the {failure.dropped} oldest statements of this transaction (its memory "
            "cap): the one that wrote the key may be among them."
        )
    elif Missing.STATEMENTS in found.missing and found.uncompared:
        parts.append(
            f"The statement at line {found.uncompared[0][0]} wrote the key's columns, in a form logdiag could not "
            "compare with the key the server printed."
        )
    elif Missing.STATEMENTS in found.missing:
        parts.append("No statement of this transaction in the log wrote it.")
    for item in found.related:
        if item.role is Role.ROLLED_BACK_PARENT:
            parts.append(f"The {v.referenced_table} row was inserted at line {item.source.line} but {item.note}.")
        elif item.role is Role.PARENT_CHANGE:
            parts.append(f"The transaction also changed {v.referenced_table} at line {item.source.line}.")
        elif item.role is Role.DEFERRAL_IGNORED and item.source.line == found.ignored_set_line:
            parts.append(
                f"The SET CONSTRAINTS at line {item.source.line} ran outside a transaction block: the server "
                "warned that it can only be used in transaction blocks, and it did nothing, so the constraint "
                "was checked at the statement."
            )
        elif item.role is Role.CHECKS_DISABLED:
            parts.append(
                f"It was written while foreign-key checks were switched off: {item.statement.strip().rstrip(';')} "
                f"at line {item.source.line} {item.note}. PostgreSQL checked none of the rows written then; the "
                "ALTER TABLE checked the table's existing rows and found this one, the first it met: other rows "
                "from the same window may be orphans too."
                + (f" List them with: {orphans_query(found.orphans)}" if found.orphans else "")
            )
        elif item.role is Role.DEFERRAL_IGNORED:
            parts.append(
                f"The SET CONSTRAINTS at line {item.source.line} did not defer it: the constraint is NOT "
                "DEFERRABLE (SET CONSTRAINTS ALL DEFERRED passes over such constraints without a word), so it "
                "was checked at the statement."
            )
    if timing is Timing.COMMIT:
        parts.append("The whole transaction was rolled back.")
    return " ".join(parts)


#: The explanation's opening words, by how the statement failed.
_OPENINGS = {
    Opening.CHECKING: "{words} at line {line} failed",
    Opening.COMMAND_TAG: "{name} at line {line} failed",
    Opening.ONE_OF_SEVERAL: "{words} at line {line} failed (sent with other statements in one query)",
    Opening.SYNC: (
        "The implicit commit at line {line} failed (no statement was running: an autocommit "
        "statement sent with the extended protocol is committed at Sync)"
    ),
    Opening.AUTOCOMMIT: "The autocommit statement at line {line} failed at its implicit commit",
    Opening.STATEMENT: "The statement at line {line} failed",
}
#: A culprit's reason, by why it is one.
_REASONS = {
    Why.CALLS: "calls {called}, whose writes the log does not show",
    Why.CALLS_WITH_KEY: "calls {called} with {key} among its arguments; its writes are not in the log",
    Why.WROTE_TABLE: "wrote {table} in this transaction",
    Why.ROWS_NOT_LOGGED: "{kind} into {table}: its rows are not in the log",
    Why.KEY_NOT_LOGGED: "wrote {table}; the log does not show the key",
    Why.KEY_NOT_SET: "wrote {table} without setting {columns}",
    Why.KEY_UNKNOWN: "wrote {table}; the key's value is computed or not logged",
    Why.WROTE_KEY: "{verb} {key} into {table}",
    Why.WROTE_KEYED_ROW: "{kind}d the {table} row with {key}",
    Why.MIXED_NULLS: "{verb} {key} into {table}, mixing NULL and non-NULL in a MATCH FULL key",
    Why.CHANGED_PARENT_KEY: "{kind}d the {parent} row with {key} that {child} still references",
    Why.CHANGED_PARENT: "{kind}d rows of {parent}",
    Why.RAISED: "raised the error",
}


def what_failed(failed: WhatFailed) -> str:
    """The explanation's opening words: which statement failed, and how.

    >>> what_failed(WhatFailed(Opening.CHECKING, 28, "COMMIT;"))
    'COMMIT at line 28 failed'
    """
    words = (failed.name or "").strip().rstrip(";").split()
    first_words = " ".join(words[:4]) if words else "The commit"
    return _OPENINGS[failed.opening].format(words=first_words, name=failed.name, line=failed.line)


def culprit_reason(reason: Reason, violation: Violation, failure: Failure, weaker: Sequence[Missing]) -> str:
    """Why a statement is a culprit, then what the log lacks that weakens it (``weaker``)."""
    write, key = reason.write, violation.key
    why = _REASONS[reason.why].format(
        called=f"{write.function}()" if write.function and write.function != "DO block" else "a DO block",
        table=write.table, kind=write.kind, columns=", ".join(key.columns if key else ()),
        verb="set" if write.kind is WriteKind.UPDATE else "inserted", key=show_key(reason.key),
        parent=violation.referenced_table, child=violation.table,
    )
    return why + "".join(f"; {weakening(missing, failure)}" for missing in weaker)


def weakening(missing: Missing, failure: Failure) -> str:
    """What the log lacks (``missing``), in the words that weaken a culprit."""
    if missing is Missing.TRANSACTION_BOUNDARIES:
        return "the transaction's start is inferred (no BEGIN/COMMIT or %v in the log)"
    if missing is Missing.DROPPED_STATEMENTS:
        return f"{failure.dropped} earlier statements of this transaction were dropped (memory cap)"
    if missing is Missing.SESSION_HISTORY:
        return "this session's earlier records were dropped (session cap, idle timeout or look-back)"
    if missing is Missing.SESSION:
        return "the log tells no session: add %p or %c to log_line_prefix to tie the error to its statements"
    raise ValueError(f"{missing} weakens no culprit")


def related_note(
    role: Role, undone_by: LoggedStatement | None = None, removed_key: bool = False, initially_deferred: bool = False,
) -> str:
    """The note of a piece of related evidence: what the statement did."""
    if role is Role.ROLLED_BACK_PARENT:
        assert undone_by is not None
        return f"undone by {undone_by.text.strip()} at line {undone_by.record.source.line}"
    if role is Role.PARENT_CHANGE:
        return "removed the referenced key" if removed_key else "changed rows of the referenced table"
    if role is Role.DEFERRED_BY:
        return "made the constraint deferred in this transaction"
    if role is Role.SAVEPOINT_ROLLBACK:
        return "undid the parent row inserted after its savepoint"
    if role is Role.CULPRIT_BIND:
        return "bound the parameters of the culprit's execution"
    if role is Role.DEFERRAL_IGNORED:
        return "had no effect on this constraint: it is NOT DEFERRABLE, so it was checked at each statement"
    return "DEFERRABLE INITIALLY DEFERRED" if initially_deferred else "DEFERRABLE"


def hints(found: Findings) -> tuple[str, ...]:
    """What to do about the data and the transaction, and what this incident's reading lacked."""
    return (*_hints(found), *_reading_hints(found))


def settings_advice(found: Findings) -> tuple[str, ...]:
    """What to change in the server's log settings to make such a diagnosis certain: said once
    per run by the reports, not in every incident (issue 29)."""
    return tuple(_setting_hints(found))


def _hints(found: Findings) -> Iterator[str]:
    v = found.violation
    shown_key = show_key(found.key.items())
    if v.kind is ConstraintKind.FOREIGN_KEY and not v.parent_side and is_match_full_detail(v.detail_reason):
        yield (
            f"Set all of the key's columns ({', '.join(found.key) or 'of the foreign key'}) or none of them: MATCH "
            "FULL rejects a row that has some NULL and some not."
        )
    elif v.kind is ConstraintKind.FOREIGN_KEY and not v.parent_side:
        yield (
            f"Insert the {v.referenced_table} row for {shown_key or 'the key'} first, or in the same transaction "
            f"before COMMIT; or correct the value the culprit statement writes."
        )
    elif v.kind is ConstraintKind.FOREIGN_KEY:
        yield f"Delete or repoint the {v.table} rows that reference {shown_key or 'the key'} before changing {v.referenced_table}."
    elif v.kind in (ConstraintKind.UNIQUE, ConstraintKind.EXCLUSION):
        yield f"Make sure the transaction writes {shown_key or 'the key'} once (or use INSERT ... ON CONFLICT)."
    elif v.kind is ConstraintKind.TRIGGER:
        yield (
            f"Read the trigger's function (the error's CONTEXT names it) for the rule it checks, and correct "
            f"the row{' with ' + shown_key if shown_key else ''} before COMMIT; to see which statement breaks the "
            "rule, run SET CONSTRAINTS ALL IMMEDIATE at the start of the transaction."
        )
    declared = found.trigger or v.constraint  # a constraint trigger's pg_constraint row bears its name
    if declared and v.kind is not ConstraintKind.NOT_NULL:
        yield (
            "Check how the constraint is declared: SELECT conname, condeferrable, condeferred "
            f"FROM pg_constraint WHERE conname = '{declared.replace(chr(39), chr(39) * 2)}';"
        )
    if found.timing is Timing.COMMIT:
        yield (
            "A commit-time error rolls back the whole transaction: retry the whole transaction "
            "(a savepoint cannot recover it)."
        )
    if any(r.role is Role.DEFERRAL_IGNORED and r.source.line != found.ignored_set_line for r in found.related):
        yield deferrable_fix(v.kind, found.table, v.constraint)
    if found.ignored_set_line is not None:
        yield outside_transaction_fix()
    if found.orphans is not None:
        yield (
            f"List every row the constraint would reject, {orphans_query(found.orphans)} then insert their "
            f"{found.orphans.referenced_table or 'parent'} rows or delete or correct them, and run the ALTER TABLE again."
        )
        yield (
            "Keep foreign-key checks on while writing rows (session_replication_role = origin, triggers enabled), "
            "or add the constraint NOT VALID and VALIDATE it once the data is whole."
        )
    if any(r.role is Role.ROLLED_BACK_PARENT for r in found.related):
        yield "The parent row was undone by ROLLBACK TO SAVEPOINT: keep it outside the savepoint that is rolled back."


def _reading_hints(found: Findings) -> Iterator[str]:
    """What this incident's reading lacked: statements dropped, history lost, a value not compared."""
    f = found.failure
    if f.dropped:
        yield (
            f"{f.dropped} statements of this transaction were dropped to bound memory: run again with a "
            "larger --max-statements to keep them."
        )
    if f.history_lost:
        yield (
            "This session's earlier records were dropped: raise --max-sessions or --idle-timeout, or, for "
            "a streamed log, --lookback-mb (or read the file itself rather than a pipe)."
        )
    if f.keyless:
        return
    if Missing.STATEMENTS in found.missing and found.uncompared:
        # Hints name only what was missing (issue 26): here a value, not a setting.
        line, statement = found.uncompared[0]
        yield (
            f"The statement at line {line} wrote the key's columns with a value in a form logdiag does not "
            f"compare with the server's ({statement.strip()[:200]}): compare it with the key by hand."
        )
    elif Missing.STATEMENTS in found.missing and f.statements_seen:
        yield (
            "The log shows statements (statement logging is on), but none of this transaction wrote the key: "
            "it was written inside a function, trigger or rule, or by a statement the setting does not log "
            "(log_statement = 'mod' leaves out SELECT f(...); 'all' logs it)."
        )


def _setting_hints(found: Findings) -> Iterator[str]:
    """What to change in the log's settings to see more next time."""
    f = found.failure
    if f.keyless:
        yield (
            "The log tells no session, so no statement can be tied to an error: add %p, or better %c, "
            "to log_line_prefix (or use csvlog/jsonlog)."
        )
    elif Missing.STATEMENTS in found.missing and not found.uncompared and not f.statements_seen:
        yield (
            "No statement in this log wrote the key: with log_statement = 'none' set it to 'mod'; 'mod' "
            "does not log SELECT, so a function that writes (SELECT f(...)) needs log_statement = 'all'."
        )
    if f.session.session_id is None and not f.keyless:
        yield "Sessions were told apart by pid: add %c to log_line_prefix (or use csvlog/jsonlog) to make it certain."
    if not f.by_vxid and found.timing is Timing.COMMIT:
        yield "Add %v %x to log_line_prefix (or use csvlog/jsonlog) so each statement's transaction is known."
    if f.record.sqlstate is None:
        yield "Add %e to log_line_prefix so errors carry their SQLSTATE."
    if found.raised_by_one_of_several:
        yield (
            "The query that failed held several statements, and the log does not say which of them raised "
            "the error: add %i to log_line_prefix (or use csvlog/jsonlog)."
        )
    if any(e.statement.parameters_truncated for e in f.entries):
        yield "Bind parameters were cut short: set log_parameter_max_length = -1 to log them whole."


def checks_disabled_note(window: ChecksWindow) -> str:
    """The note of the statement that switched foreign-key checks off: until when."""
    what = f"switched the triggers of {window.table} off" if window.table else "switched every table's triggers off"
    if window.end is None:
        return f"{what}, and the log shows them switched back on by no later statement of the session"
    return f"{what} until {window.end.text.strip().rstrip(';')} at line {window.end.record.source.line}"


def checks_disabled_explanation(window: ChecksWindow, table: str, written: int, incident_line: int) -> str:
    """The words of a ``checks_disabled`` finding: the window, what it let in, what it led to."""
    start = window.start
    switched = (
        f"ALTER TABLE ... DISABLE TRIGGER ALL at line {start.record.source.line} switched off the triggers of "
        f"{window.table}, the internal ones that check its foreign keys included"
        if window.table else
        f"SET session_replication_role = replica at line {start.record.source.line} (what pg_restore "
        "--disable-triggers and replication tools run) switched off the session's ordinary triggers, the internal "
        "ones that check foreign keys included"
    )
    until = (
        f"until line {window.end.record.source.line}" if window.end is not None
        else "and the log shows no later statement of the session switching them back on"
    )
    return (
        f"{switched}, {until}. The session wrote {table} {written} time{'s' * (written != 1)} in that window, and "
        f"PostgreSQL checked none of those rows against their parents. The ALTER TABLE at line {incident_line} "
        "checked the table's existing rows and found one with no parent; others from the same window may be "
        "orphans too."
    )


def window_alone_explanation(window: ChecksWindow, tables: Sequence[str], written: int,
                             orphans: Sequence[Orphans]) -> str:
    """The words of a ``checks_disabled`` finding that no error of its session followed."""
    start = window.start.record.source.line
    switched = (
        f"ALTER TABLE ... DISABLE TRIGGER ALL at line {start} switched off the triggers of {window.table}, the "
        "internal ones that check its foreign keys (as child and as parent) included"
        if window.table else
        f"SET session_replication_role = replica at line {start} (what pg_restore --disable-triggers and "
        "replication tools run) switched off the session's ordinary triggers, the internal ones that check "
        "foreign keys included"
    )
    if window.end is not None:
        until = f"until line {window.end.record.source.line}"
    elif window.table:  # a setting of the table in the catalog, not of the session: it outlives it
        until = (f"and the log shows no ALTER TABLE {window.table} ENABLE TRIGGER ALL after it: they are still off, "
                 "for every session")
    else:
        until = "until the session ended"
    others = (
        f" Other sessions' writes into {window.table} while its triggers were off went unchecked too; logdiag "
        "follows the window's own session only." if window.table else ""
    )
    if written:
        wrote = (
            f"{plural(written, 'statement')} of the session wrote"
            + (f" into {', '.join(tables)}" if tables else "")
            + " in that window, and PostgreSQL checked none of their rows: a child row without its parent, or a parent deleted "
            "under its children, may be in the table now, and no error will say so until a constraint is added or "
            "validated."
        )
    else:
        wrote = (
            "The log shows no write of the session in that window; with log_statement = 'ddl' or 'none' it "
            "would not show them, and any row written then went unchecked."
        )
    listed = (
        " List the rows without parents with: " + " ".join(orphans_query(o) for o in orphans) if orphans else
        " The log's DDL declares no foreign key of those tables: for each, list the child rows whose key has no "
        "parent (SELECT c.* FROM child c WHERE NOT EXISTS (SELECT FROM parent p WHERE p.id = c.parent_id))."
    )
    return f"{switched}, {until}. {wrote}{others}{listed}"


def window_alone_hints(window: ChecksWindow, orphans: Sequence[Orphans]) -> tuple[str, ...]:
    """What to do about a window of switched-off checks that no error followed."""
    first = (
        "Run the query in the explanation now, and insert the missing parents or delete or correct the orphans."
        if orphans else
        "Check the tables written in the window for rows without parents (the query in the explanation), and "
        "correct them."
    )
    return (first, checks_disabled_hints(window)[1])


def checks_disabled_hints(window: ChecksWindow) -> tuple[str, ...]:
    """What to do about a ``checks_disabled`` finding."""
    back_on = (
        f"ALTER TABLE {window.table} ENABLE TRIGGER ALL" if window.table else "RESET session_replication_role"
    )
    return (
        (
            "List the rows without parents with the query in the incident's explanation, and insert their parents "
            "or delete or correct them before adding or validating the constraint."
        ),
        (
            f"Switch the checks back on ({back_on}) as soon as the rows that need it are written, and write "
            "child rows only after their parents; or load the data with the constraints dropped and add them "
            "back (NOT VALID, then VALIDATE CONSTRAINT) so that PostgreSQL checks every row."
        ),
    )


def orphans_query(orphans: Orphans) -> str:
    """The query that lists the rows of a foreign key's table that have no parent.

    >>> orphans_query(Orphans("orders", "customers", ("customer_id",), ("id",)))
    'SELECT c.* FROM orders c WHERE c.customer_id IS NOT NULL AND NOT EXISTS (SELECT FROM customers p WHERE p.id = c.customer_id);'
    """
    parents = orphans.referenced_columns or tuple(f"<{c}'s parent column>" for c in orphans.columns)
    present = " AND ".join(f"c.{_ident(c)} IS NOT NULL" for c in orphans.columns)
    joined = " AND ".join(f"p.{_ident(p)} = c.{_ident(c)}" for c, p in zip(orphans.columns, parents, strict=True))
    parent = _ident(orphans.referenced_table) if orphans.referenced_table else "<parent table>"
    return (
        f"SELECT c.* FROM {_ident(orphans.table)} c WHERE {present} AND NOT EXISTS "
        f"(SELECT FROM {parent} p WHERE {joined});"
    )


def _ident(name: str) -> str:
    """A name as SQL writes it: quoted unless it is lower-case letters, digits and underscores."""
    plain = (name[:1].isalpha() or name[:1] == "_") and all(c.isalnum() or c == "_" for c in name)
    if name.startswith("<") or (plain and name == name.lower()):
        return name
    return '"' + name.replace('"', '""') + '"'


def ignored_set_note(warning_line: int) -> str:
    """The note of a SET CONSTRAINTS that ran outside a transaction block."""
    return f"ran outside a transaction block and did nothing (WARNING at line {warning_line})"


def outside_transaction_fix() -> str:
    """How to defer constraints for real."""
    return (
        "Run SET CONSTRAINTS inside the transaction it is meant for: BEGIN; SET CONSTRAINTS ... DEFERRED; "
        "...; COMMIT; (it lasts until the end of the transaction, and the constraint must be DEFERRABLE)."
    )


def outside_transaction_explanation(warning_line: int, incident_line: int | None) -> str:
    """The words of a ``set_constraints_outside_transaction`` finding."""
    words = (
        f"SET CONSTRAINTS ran outside a transaction block: the server warned at line {warning_line} that it can "
        "only be used in transaction blocks, and it had no effect (each statement outside a block is a "
        "transaction of its own, which the SET ended at once)."
    )
    if incident_line is not None:
        words += (
            f" A later statement of the session failed at once on a constraint it meant to defer (line "
            f"{incident_line})."
        )
    return words


def not_deferrable_explanation(constraint: str, table: str | None, line: int) -> str:
    """The words of a ``not_deferrable`` finding."""
    on = f" on {table}" if table else ""
    return (
        f"SET CONSTRAINTS at line {line} asked to defer constraint \"{constraint}\"{on}, which is NOT DEFERRABLE: "
        "PostgreSQL refused with an error, which aborted the transaction, so every later statement of it failed "
        "(\"current transaction is aborted\") and its COMMIT rolled it back. Those errors are this one's "
        "consequences, not problems of their own."
    )


def not_deferrable_hints(kind: ConstraintKind | None, table: str | None, constraint: str) -> tuple[str, ...]:
    """What to do about a ``not_deferrable`` finding: declare the constraint deferrable (how
    depends on its kind), or stop asking to defer it."""
    fixes: tuple[str, ...]
    if kind is None:
        fixes = (deferrable_fix(ConstraintKind.FOREIGN_KEY, table, constraint, certain=False),
                 deferrable_fix(ConstraintKind.UNIQUE, table, constraint, certain=False))
    else:
        fixes = (deferrable_fix(kind, table, constraint),)
    return (
        *fixes,
        (
            "Or drop the SET CONSTRAINTS statement and write the rows in an order that satisfies the constraint "
            "at each statement."
        ),
        (
            "Check how it is declared: SELECT conname, condeferrable, condeferred FROM pg_constraint "
            f"WHERE conname = '{constraint.replace(chr(39), chr(39) * 2)}';"
        ),
    )


def deferrable_fix(kind: ConstraintKind, table: str | None, constraint: str | None, certain: bool = True) -> str:
    """How to make a NOT DEFERRABLE constraint deferrable: foreign keys can be altered in place;
    unique, primary-key and exclusion constraints must be dropped and re-created (issue 26)."""
    name = constraint or "the constraint"
    on = table or "the table"
    if kind is ConstraintKind.FOREIGN_KEY:
        opening = "Alter it to be deferrable" if certain else "If it is a foreign key, alter it to be deferrable"
        return (
            f"{opening}: ALTER TABLE {on} ALTER CONSTRAINT {name} DEFERRABLE INITIALLY DEFERRED (or DEFERRABLE, "
            "then SET CONSTRAINTS in the transactions that need it)."
        )
    opening = (
        "A unique, primary-key or exclusion constraint cannot be altered: re-create it deferrable" if certain
        else "If it is a unique, primary-key or exclusion constraint, which cannot be altered, re-create it deferrable"
    )
    return (
        f"{opening}: ALTER TABLE {on} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} ... DEFERRABLE INITIALLY DEFERRED."
    )


def show_key(pairs: Iterable[tuple[str, str | None]]) -> str:
    """``a = 1, b = NULL``: a key's columns and values as the words show them.

    >>> show_key([("a", "1"), ("b", None)])
    'a = 1, b = NULL'
    """
    return ", ".join(f"{column} = {'NULL' if value is None else value}" for column, value in pairs)


# --- deadlocks (issue 28) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockStep:
    """What :mod:`logdiag.diagnosis.deadlock` found for one process of a deadlock's cycle.

    Attributes:
        pid, blocked_by, mode, object: the cycle's line (``object`` as the server words it).
        table, where: the row (or table) the process's waiting statement wanted, when its text says.
        waiting_line: the line that logged the waiting statement, when the log shows it.
        taker_line, taker_verb, taker_where, taker_match: the statement of ``blocked_by``'s
            transaction that took the lock, when found.
        holder_seen: the log shows statements of ``blocked_by``'s transaction.
    """

    pid: int
    blocked_by: int
    mode: str
    object: str
    table: str | None
    where: tuple[tuple[str, str | None], ...]
    waiting_line: int | None
    taker_line: int | None
    taker_verb: str | None
    taker_where: tuple[tuple[str, str | None], ...]
    taker_match: Match | None
    holder_seen: bool


def _wanted(step: LockStep) -> str:
    if step.table is None:
        return f"{step.mode} on {step.object}"
    return f"{step.table} {show_key(step.where)}" if step.where else step.table


def lock_taker_reason(step: LockStep) -> str:
    """A lock taker's reason: ``updated acct id = 1; process 7412 then waited for it``."""
    taken = step.taker_verb or "locked"
    if step.taker_match is Match.KEY and step.taker_where:
        what = f"{taken} {step.table} {show_key(step.taker_where)}" if step.table else taken
    elif step.table:
        what = f"{taken} rows of {step.table}" if not taken.startswith("LOCK TABLE") else taken
    else:
        what = taken
    return f"{what}; process {step.pid} then waited for it ({step.mode} on {step.object})"


def lock_wait_note(wait: LockWait) -> str:
    """The note of a ``log_lock_waits`` line: who waited for what, how long."""
    return f"process {wait.pid} {wait.event} after {wait.milliseconds:.3f} ms"


def deadlock_explanation(victim: int, line: int, steps: Sequence[LockStep], lost: Sequence[int] = ()) -> str:
    """``7412 updated acct id = 1 at line 310 then wanted id = 2; 7416 ...: the transactions lock
    the same rows in opposite order.``"""
    pids = ", ".join(str(s.pid) for s in steps)
    parts = [f"Deadlock at line {line}: processes {pids} each waited for a lock another of them held."]
    for step in steps:
        waited = f"at line {step.waiting_line}" if step.waiting_line else "(its statement is not in the log)"
        if step.taker_line is not None:
            took = lock_taker_reason(step).split(";", 1)[0]
            parts.append(f"Process {step.blocked_by} {took} at line {step.taker_line}; process {step.pid} then "
                         f"wanted {_wanted(step)} {waited} and waited for {step.blocked_by}.")
        elif step.holder_seen:
            parts.append(f"Process {step.pid} wanted {_wanted(step)} {waited}, held by process {step.blocked_by}; "
                         f"none of {step.blocked_by}'s logged statements took that lock (a statement the log does not "
                         f"show, such as SELECT … FOR UPDATE under log_statement = 'mod', a function, a trigger "
                         f"or a foreign-key check may have).")
        else:
            parts.append(f"Process {step.pid} wanted {_wanted(step)} {waited}, held by process {step.blocked_by}, "
                         f"whose earlier statements are not in the log.")
    rows = [s for s in steps if s.taker_match is Match.KEY and s.table is not None]
    if len(rows) == len(steps) and len({s.table for s in rows}) == 1:
        parts.append("The transactions lock the same rows in opposite order.")
    elif rows and len(rows) == len(steps):
        parts.append("The transactions lock the same rows in a different order.")
    parts.append(f"PostgreSQL rolled back process {victim}'s transaction to break the cycle; the others went on.")
    if lost:
        parts.append(f"logdiag had dropped earlier records of process {', '.join(str(p) for p in lost)} (its cap on "
                     "open sessions or statements, the idle timeout, or the look-back of a streamed log): a lock "
                     "taker may be among them.")
    return " ".join(parts)


def deadlock_hints(steps: Sequence[LockStep], *, statements_seen: bool, lock_waits_seen: bool,
                   seen_all: bool, lost: bool = False) -> tuple[str, ...]:
    """What to do about a deadlock, and which settings would show its lock takers."""
    out = [
        ("Take the locks in one order in every transaction: sort the keys before updating several rows, "
        "or lock them first with SELECT … FOR UPDATE … ORDER BY the key."),
        "Keep transactions short: a lock is held until COMMIT or ROLLBACK.",
        "Retry the whole transaction on SQLSTATE 40P01: the victim's transaction was rolled back.",
    ]
    if not statements_seen or (not seen_all and not lost):
        out.append("Set log_statement = 'all' (or 'mod', which does not log SELECT … FOR UPDATE) so that "
                   "the log shows the earlier statements that took the locks.")
    elif any(s.taker_line is None for s in steps):
        out.append("A lock no logged statement took was taken inside a function or trigger, by a foreign-key "
                   "check (FOR KEY SHARE on the parent row), or by a statement log_statement = 'mod' does not "
                   "log (SELECT … FOR UPDATE, SELECT pg_advisory_lock(…)): 'all' shows the latter.")
    if lost:
        out.append("Earlier records of the cycle's sessions were dropped: raise --max-sessions, --max-statements "
                   "or --idle-timeout, or, for a streamed log, --lookback-mb (or read the file itself rather "
                   "than a pipe).")
    if not lock_waits_seen:
        out.append("Set log_lock_waits = on to log each wait longer than deadlock_timeout, with the process "
                   "holding the lock.")
    return tuple(out)
