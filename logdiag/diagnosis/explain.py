"""The words of an incident: its explanation, and hints on what to do and which settings to change."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from logdiag.diagnosis.incidents import Culprit, Match, Missing, Related, Role, Timing
from logdiag.diagnosis.messages import ConstraintKind, Violation
from logdiag.diagnosis.sessions import Failure


@dataclass(frozen=True, slots=True)
class Findings:
    """What a diagnosis found, for the words to tell.

    Attributes:
        failure: the failure diagnosed (its record, session and transaction).
        violation: what the error message and DETAIL say.
        timing: when the constraint was checked.
        what_failed: the opening words, which statement failed and how (``COMMIT at line 9 failed``).
        table: the violation's table, or the table the culprit wrote the key into.
        referenced_table: for a foreign key, the referenced table (from the message or the DDL).
        key: the key, column by column.
        culprits: the culprits, likeliest first.
        related: the other evidence.
        missing: what the log lacked.
        raised_by_one_of_several: the failing query held several statements, and the log does not
            say which of them raised the error.
    """

    failure: Failure
    violation: Violation
    timing: Timing
    what_failed: str
    table: str | None
    referenced_table: str | None
    key: dict[str, str | None]
    culprits: tuple[Culprit, ...]
    related: tuple[Related, ...]
    missing: tuple[Missing, ...]
    raised_by_one_of_several: bool


def explanation(found: Findings) -> str:
    """What happened, in a few sentences: what failed, the constraint and key, the culprit, the evidence."""
    v, timing, table, failure = found.violation, found.timing, found.table, found.failure
    shown_key = show_key(found.key.items()) or "a key the log does not show"
    name = f'"{v.constraint}"' if v.constraint else "a constraint"
    parts = []
    kind = v.kind.value.replace("_", " ")
    if timing is Timing.COMMIT:
        parts.append(f"{found.what_failed}: {kind} constraint {name} is checked at commit, and a row written earlier broke it.")
    else:
        parts.append(f"{found.what_failed}: it broke {kind} constraint {name}.")
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
    elif Missing.STATEMENTS in found.missing:
        parts.append("No statement of this transaction in the log wrote it.")
    for item in found.related:
        if item.role is Role.ROLLED_BACK_PARENT:
            parts.append(f"The {v.referenced_table} row was inserted at line {item.source.line} but {item.note}.")
        elif item.role is Role.PARENT_CHANGE:
            parts.append(f"The transaction also changed {v.referenced_table} at line {item.source.line}.")
    if timing is Timing.COMMIT:
        parts.append("The whole transaction was rolled back.")
    return " ".join(parts)


def hints(found: Findings) -> tuple[str, ...]:
    """What to do about the data and the transaction, then what to change in the settings."""
    return (*_hints(found), *_setting_hints(found))


def _hints(found: Findings) -> Iterator[str]:
    v = found.violation
    shown_key = show_key(found.key.items())
    if v.kind is ConstraintKind.FOREIGN_KEY and not v.parent_side:
        yield (
            f"Insert the {v.referenced_table} row for {shown_key or 'the key'} first, or in the same transaction "
            f"before COMMIT; or correct the value the culprit statement writes."
        )
    elif v.kind is ConstraintKind.FOREIGN_KEY:
        yield f"Delete or repoint the {v.table} rows that reference {shown_key or 'the key'} before changing {v.referenced_table}."
    elif v.kind in (ConstraintKind.UNIQUE, ConstraintKind.EXCLUSION):
        yield f"Make sure the transaction writes {shown_key or 'the key'} once (or use INSERT ... ON CONFLICT)."
    if v.constraint and v.kind is not ConstraintKind.NOT_NULL:
        yield (
            "Check how the constraint is declared: SELECT conname, condeferrable, condeferred "
            f"FROM pg_constraint WHERE conname = '{v.constraint.replace(chr(39), chr(39) * 2)}';"
        )
    if found.timing is Timing.COMMIT:
        yield (
            "A commit-time error rolls back the whole transaction: retry the whole transaction "
            "(a savepoint cannot recover it)."
        )
    if any(r.role is Role.ROLLED_BACK_PARENT for r in found.related):
        yield "The parent row was undone by ROLLBACK TO SAVEPOINT: keep it outside the savepoint that is rolled back."


def _setting_hints(found: Findings) -> Iterator[str]:
    """What to change in the log's settings (and logdiag's options) to see more next time."""
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
        yield (
            "The log tells no session, so no statement can be tied to this error: add %p, or better %c, "
            "to log_line_prefix (or use csvlog/jsonlog)."
        )
    elif Missing.STATEMENTS in found.missing:
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


def show_key(pairs: Iterable[tuple[str, str | None]]) -> str:
    """``a = 1, b = NULL``: a key's columns and values as the words show them.

    >>> show_key([("a", "1"), ("b", None)])
    'a = 1, b = NULL'
    """
    return ", ".join(f"{column} = {'NULL' if value is None else value}" for column, value in pairs)
