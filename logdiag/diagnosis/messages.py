"""Constraint-violation messages and their DETAIL: which constraint, which table, which key.

PostgreSQL prints key values unquoted and joined by ", ", so ``(a, b)=(1, x, y)`` cannot always be
split by itself: :class:`KeyText` keeps the raw text and splits it only when the column count
makes that certain; :meth:`KeyText.matches` compares it with values a statement actually wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from itertools import combinations, pairwise

from logdiag.lang import LANGUAGES, CFormat, all_formats, msgids


class ConstraintKind(str, Enum):
    """What kind of constraint was violated (the ``constraint_kind`` of an incident)."""

    FOREIGN_KEY = "foreign_key"
    UNIQUE = "unique"
    EXCLUSION = "exclusion"
    CHECK = "check"
    NOT_NULL = "not_null"
    TRIGGER = "trigger"
    OTHER = "other"

    def __str__(self) -> str:
        return self.value


#: SQLSTATEs that make an incident, with their condition names (PostgreSQL's errcodes.txt).
CONDITIONS: dict[str, str] = {
    "23000": "integrity_constraint_violation",
    "23001": "restrict_violation",
    "23502": "not_null_violation",
    "23503": "foreign_key_violation",
    "23505": "unique_violation",
    "23514": "check_violation",
    "23P01": "exclusion_violation",
    "40002": "transaction_integrity_constraint_violation",
}

#: Condition names of other errors the reports mention often.
OTHER_CONDITIONS: dict[str, str] = {
    "40001": "serialization_failure",
    "40P01": "deadlock_detected",
    "42601": "syntax_error",
    "42P01": "undefined_table",
    "25P02": "in_failed_sql_transaction",
    "57014": "query_canceled",
    "22P02": "invalid_text_representation",
}


@dataclass(frozen=True, slots=True)
class KeyText:
    """A key as DETAIL prints it: ``Key (a, b)=(1, x)``.

    Attributes:
        columns: the key's columns.
        values: the raw values text, e.g. ``1, x``; None when DETAIL shows no values (no privilege).
    """

    columns: tuple[str, ...]
    values: str | None

    def split(self) -> tuple[str, ...] | None:
        """The values, one per column, when the text can be split only one way; else None.

        >>> KeyText(("a", "b"), "1, x").split()
        ('1', 'x')
        >>> KeyText(("a", "b"), "1, x, y").split() is None
        True
        """
        if self.values is None:
            return None
        if len(self.columns) == 1:
            return (self.values,)
        pieces = self.values.split(", ")
        if len(pieces) == len(self.columns):
            return tuple(pieces)
        return None

    def candidates(self) -> list[tuple[str, ...]]:
        """Every way to split the values into one value per column (text keys may hold ", ")."""
        if self.values is None:
            return []
        pieces = self.values.split(", ")
        n = len(self.columns)
        if n > len(pieces):
            return []
        out = []
        for cuts in combinations(range(1, len(pieces)), n - 1):
            bounds = (0, *cuts, len(pieces))
            out.append(tuple(", ".join(pieces[a:b]) for a, b in pairwise(bounds)))
            if len(out) > 64:
                break
        return out

    def matches(self, values: tuple[str | None, ...]) -> bool:
        """Whether a row's key values print as this key (NULL prints as ``null``)."""
        if self.values is None or len(values) != len(self.columns):
            return False
        return ", ".join("null" if v is None else v for v in values) == self.values


@dataclass(frozen=True, slots=True)
class Violation:
    """What an error message and its DETAIL say about a constraint violation.

    Attributes:
        sqlstate: the record's SQLSTATE, or the one its message implies when the log has none.
        kind: the constraint's kind.
        constraint: the constraint's name, when the message names it.
        table: the table whose row violated it (for a parent-side FK error, the referencing one).
        referenced_table: for foreign keys, the referenced (parent) table.
        key: the key from DETAIL.
        parent_side: True for "update or delete on table P violates foreign key constraint".
        conflicting_key: for exclusion constraints, the existing row's key.
        detail_reason: a DETAIL that explains without a key (MATCH FULL, failing row).
    """

    sqlstate: str | None  # None: a constraint trigger's error in a log without SQLSTATEs (issue 26)
    kind: ConstraintKind
    constraint: str | None = None
    table: str | None = None
    referenced_table: str | None = None
    key: KeyText | None = None
    parent_side: bool = False
    conflicting_key: KeyText | None = None
    detail_reason: str | None = None

    @property
    def condition(self) -> str | None:
        if self.sqlstate is None:
            return None
        return CONDITIONS.get(self.sqlstate, "integrity_constraint_violation")


def _read(msgid: str, text: str | None) -> tuple[str, ...] | None:
    """The arguments of ``text`` printed as ``msgid`` in any language (English first); None
    when it is no such message. Plain string searches: log text is untrusted (issue 25)."""
    if text is None:
        return None
    for form in all_formats(msgid):
        found = form.match(text)
        if found is not None:
            return found
    return None


#: DETAILs that show a key as ``(columns)=(values)`` and a table: (msgid, which side).
_KEY_DETAILS = (msgids.FK_CHILD_KEY, msgids.FK_PARENT_KEY, msgids.FK_RESTRICT_KEY)
#: The same DETAILs when the user may not see the key (no SELECT privilege, row security).
_NO_KEY_DETAILS = (msgids.FK_CHILD_NO_KEY, msgids.FK_PARENT_NO_KEY, msgids.FK_RESTRICT_NO_KEY)


def parse_key(detail: str | None) -> KeyText | None:
    """The key of a DETAIL such as ``Key (customer_id)=(42) is not present in table "customers".``,
    in any language the server writes.

    >>> parse_key('Key (a, b)=(1, x (y)) already exists.')
    KeyText(columns=('a', 'b'), values='1, x (y)')
    >>> parse_key('Key is not present in table "customers".')
    KeyText(columns=(), values=None)
    >>> from logdiag.lang import LANGUAGES
    >>> parse_key(LANGUAGES["de"].text(msgids.FK_PARENT_KEY) % ("id", "7", "t"))
    KeyText(columns=('id',), values='7')
    """
    if not detail:
        return None
    for msgid in _KEY_DETAILS:
        if (found := _read(msgid, detail)) is not None:
            return KeyText(tuple(_split_columns(found[0])), found[1])
    for msgid in _NO_KEY_DETAILS:
        if _read(msgid, detail) is not None:
            return KeyText((), None)
    for msgid in (msgids.UNIQUE_KEY, msgids.EXCLUSION_KEY):
        if (found := _read(msgid, detail)) is not None:
            return _described_key(found[0])
    return None


def _described_key(text: str) -> KeyText | None:
    """``(a, b)=(1, x)`` as BuildIndexValueDescription writes it (in every language)."""
    middle = text.find(")=(")
    if not text.startswith("(") or not text.endswith(")") or middle < 0:
        return None
    return KeyText(tuple(_split_columns(text[1:middle])), text[middle + 3 : -1])


def _split_columns(text: str) -> list[str]:
    columns: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            columns.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    columns.append("".join(current).strip())
    return [c[1:-1].replace('""', '"') if c.startswith('"') and c.endswith('"') else c for c in columns]


def _conflicting_key(detail: str | None) -> KeyText | None:
    found = _read(msgids.EXCLUSION_KEY, detail)
    return None if found is None else _described_key(found[1])


def parse_violation(message: str | None, detail: str | None, sqlstate: str | None) -> Violation | None:
    """Recognise a constraint violation by its SQLSTATE or, without one, by its message, in any
    language the server writes (the message is needed anyway for the constraint, table and key).

    Returns None for every other error.

    >>> from logdiag.lang import LANGUAGES
    >>> german = LANGUAGES["de"].text(msgids.UNIQUE) % "u"
    >>> v = parse_violation(german, None, "23505")
    >>> (v.kind.value, v.constraint)
    ('unique', 'u')
    """
    if message is None:
        return None
    if message.startswith(_VIOLATION_HEADS):  # one test for the usual error, which is none of them
        found = _violation(message, detail, sqlstate)
        if found is not None:
            return found
    if sqlstate == "40002":
        return trigger_violation(message, detail, sqlstate)
    if sqlstate is not None and is_violation_sqlstate(sqlstate):
        return Violation(sqlstate, ConstraintKind.OTHER, detail_reason=detail)
    return None


def _violation(message: str, detail: str | None, sqlstate: str | None) -> Violation | None:
    # The SQLSTATE, where the log has it, says which messages to try (each in every language).
    wanted = _MESSAGES_OF.get(sqlstate or "", _VIOLATIONS)

    def read(msgid: str) -> tuple[str, ...] | None:
        return _read(msgid, message) if msgid in wanted else None

    if found := read(msgids.FK_CHILD):
        return Violation(
            sqlstate or "23503", ConstraintKind.FOREIGN_KEY, found[1], found[0],
            _referenced_table(detail), parse_key(detail), detail_reason=_reason(detail),
        )
    for msgid, implied in ((msgids.FK_PARENT, "23503"), (msgids.FK_PARENT_RESTRICT, "23001")):
        if found := read(msgid):
            parent, name, table = found[0], found[1], found[2]
            return Violation(
                sqlstate or implied, ConstraintKind.FOREIGN_KEY, name, table, parent, parse_key(detail),
                parent_side=True,
            )
    if found := read(msgids.UNIQUE):
        return Violation(sqlstate or "23505", ConstraintKind.UNIQUE, found[0], key=parse_key(detail))
    if found := read(msgids.EXCLUSION):
        return Violation(
            sqlstate or "23P01", ConstraintKind.EXCLUSION, found[0], key=parse_key(detail),
            conflicting_key=_conflicting_key(detail),
        )
    if found := read(msgids.CHECK):
        return Violation(sqlstate or "23514", ConstraintKind.CHECK, found[1], found[0], detail_reason=detail)
    for msgid in (msgids.NOT_NULL, msgids.NOT_NULL_OLD):
        if found := read(msgid):
            return Violation(
                sqlstate or "23502", ConstraintKind.NOT_NULL, None, found[1] if len(found) > 1 else None,
                key=KeyText((found[0],), "null"), detail_reason=detail,
            )
    if found := read(msgids.EMPTY_PERIOD):  # an empty range overlaps nothing: the row's own fault
        return Violation(sqlstate or "23514", ConstraintKind.CHECK, None, found[1], key=KeyText((found[0],), "empty"))
    return None


#: The messages :func:`parse_violation` recognises by their text.
_VIOLATIONS = (
    msgids.FK_CHILD, msgids.FK_PARENT, msgids.FK_PARENT_RESTRICT, msgids.UNIQUE, msgids.EXCLUSION, msgids.CHECK,
    msgids.NOT_NULL, msgids.NOT_NULL_OLD, msgids.EMPTY_PERIOD,
)
#: The messages each SQLSTATE is raised with.
_MESSAGES_OF: dict[str, tuple[str, ...]] = {
    "23503": (msgids.FK_CHILD, msgids.FK_PARENT), "23001": (msgids.FK_PARENT_RESTRICT,), "23505": (msgids.UNIQUE,),
    "23P01": (msgids.EXCLUSION,), "23514": (msgids.CHECK, msgids.EMPTY_PERIOD), "23502": (msgids.NOT_NULL, msgids.NOT_NULL_OLD),
}
#: What each of them starts with, in every language.
_VIOLATION_HEADS = tuple(sorted({form.head for msgid in _VIOLATIONS for form in all_formats(msgid)}))
#: The first line of those a translator wrote over several lines (French), in every language.
_FIRST_LINES = tuple(dict.fromkeys(
    CFormat.parse(language.text(msgid).split("\n", 1)[0])
    for language in LANGUAGES.values() for msgid in _VIOLATIONS if "\n" in language.text(msgid)
))


def starts_violation(line: str) -> bool:
    """Whether a message's first line is that of a violation whose translation goes on over
    more lines: what the fast path, which reads one line of a stderr record, can tell of it."""
    return any(form.match(line) is not None for form in _FIRST_LINES)


# --- constraint triggers (issue 26) ---------------------------------------------------------------
# A trigger's message and DETAIL are its author's own words; authors often copy PostgreSQL's
# shapes (`... violates constraint "x"`, `Key (cols)=(vals) ...`), and what those shapes say is used.

_NAMED_CONSTRAINT = re.compile(r'\bconstraint "(?P<name>[^"]{1,200})"')
_CONTEXT_FUNCTION = re.compile(r"PL/pgSQL function (?P<name>[^\s(]{1,400})\(")


def trigger_violation(message: str | None, detail: str | None, sqlstate: str | None) -> Violation:
    """A constraint trigger's error: the constraint its message names PostgreSQL's way, the key
    its DETAIL gives in the ``Key (cols)=(vals)`` shape. ``sqlstate`` is None when the log has none.

    >>> v = trigger_violation('balance violates constraint "positive"', "Key (id)=(1) is negative.", "40002")
    >>> v.constraint, v.key
    ('positive', KeyText(columns=('id',), values='1'))
    """
    named = _NAMED_CONSTRAINT.search(message or "")
    return Violation(
        sqlstate, ConstraintKind.TRIGGER, named["name"] if named else None,
        key=parse_trigger_key(detail), detail_reason=detail,
    )


def parse_trigger_key(detail: str | None) -> KeyText | None:
    """The key of a DETAIL that starts PostgreSQL's way, whatever follows it: the values end at the
    parenthesis that closes the one opening them.

    >>> parse_trigger_key("Key (a, b)=(1, f(x)) has a negative balance.")
    KeyText(columns=('a', 'b'), values='1, f(x)')
    >>> parse_trigger_key("balance is negative") is None
    True
    """
    if detail is None or not detail.startswith("Key ("):
        return None
    middle = detail.find(")=(")
    if middle < 0:
        return None
    depth, start = 0, middle + 3
    for position in range(start, len(detail)):
        char = detail[position]
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return KeyText(tuple(_split_columns(detail[5:middle])), detail[start:position])
            depth -= 1
    return None


def context_function(context: str | None) -> str | None:
    """The PL/pgSQL function a CONTEXT names first (the innermost: the one that raised), without
    schema or arguments.

    >>> context_function("PL/pgSQL function public.check_balance() line 3 at RAISE")
    'check_balance'
    """
    found = _CONTEXT_FUNCTION.search(context or "")
    if found is None:
        return None
    return found["name"].rsplit(".", 1)[-1].strip('"')


def is_violation_sqlstate(state: str) -> bool:
    """Whether an error with this SQLSTATE is a constraint violation, from the code alone.

    The rule: class 23 (integrity constraint violation), and 40002 (a constraint trigger
    deferred to commit failed). When it holds, :func:`parse_violation` returns a
    :class:`Violation` for any message; the messages it recognises without a SQLSTATE are
    raised by PostgreSQL only with these codes. So for a record that carries its SQLSTATE
    (csvlog, jsonlog, ``%e``) the code alone decides, and the fast path need not read the message.

    >>> is_violation_sqlstate("23505"), is_violation_sqlstate("40002"), is_violation_sqlstate("40001")
    (True, True, False)
    """
    return state.startswith("23") or state == "40002"


def _referenced_table(detail: str | None) -> str | None:
    if (found := _read(msgids.FK_CHILD_KEY, detail)) is not None:
        return found[2] or None
    if (found := _read(msgids.FK_CHILD_NO_KEY, detail)) is not None:
        return found[0] or None
    return None


def _reason(detail: str | None) -> str | None:
    """A DETAIL that explains without a key (MATCH FULL, no privilege), as written."""
    if not detail:
        return None
    key = parse_key(detail)
    return detail if key is None or key.values is None else None


# --- the SET CONSTRAINTS pitfalls (issue 26) ------------------------------------------------------
# Fixed messages of PostgreSQL's own (src/backend/commands/trigger.c, AfterTriggerSetState;
# src/backend/tcop/postgres.c), with the SQLSTATEs they are raised with.

_NOT_DEFERRABLE = re.compile(r'constraint "(?P<name>[^"]{1,200})" is not deferrable$')
NOT_DEFERRABLE_SQLSTATE = "42809"  # ERRCODE_WRONG_OBJECT_TYPE
IN_FAILED_TRANSACTION_SQLSTATE = "25P02"
_IN_FAILED_TRANSACTION = "current transaction is aborted, commands ignored until end of transaction block"


def not_deferrable_constraint(message: str | None, sqlstate: str | None) -> str | None:
    """The constraint of ``constraint "x" is not deferrable`` (SET CONSTRAINTS x DEFERRED), else None.

    >>> not_deferrable_constraint('constraint "orders_fk" is not deferrable', "42809")
    'orders_fk'
    """
    if sqlstate not in (None, NOT_DEFERRABLE_SQLSTATE) or message is None:
        return None
    found = _NOT_DEFERRABLE.match(message)
    if found is None:  # in the server's language (issue 26)
        named = next((m for form in all_formats(msgids.NOT_DEFERRABLE) if (m := form.match(message))), None)
        return named[0] if named else None
    return found["name"]


def is_in_failed_transaction(message: str | None, sqlstate: str | None) -> bool:
    """Whether an error is 25P02, ``current transaction is aborted, ...``: a consequence of an
    earlier error of the same transaction."""
    if sqlstate is not None:
        return sqlstate == IN_FAILED_TRANSACTION_SQLSTATE
    return message == _IN_FAILED_TRANSACTION or message in _IN_FAILED_TRANSACTION_TRANSLATED


_OUTSIDE_TRANSACTION = "SET CONSTRAINTS can only be used in transaction blocks"
NO_ACTIVE_TRANSACTION_SQLSTATE = "25P01"


def is_set_constraints_outside_transaction(message: str | None, sqlstate: str | None) -> bool:
    """Whether a WARNING says SET CONSTRAINTS ran outside a transaction block (and did nothing)."""
    return sqlstate in (None, NO_ACTIVE_TRANSACTION_SQLSTATE) and (
        message == _OUTSIDE_TRANSACTION or message in _OUTSIDE_TRANSACTION_TRANSLATED
    )


def is_pitfall_sqlstate(state: str) -> bool:
    """Whether an error with this SQLSTATE may be a finding or one of its consequences (42809,
    25P02): the fast path keeps their sessions whole, as it does a violation's."""
    return state in (NOT_DEFERRABLE_SQLSTATE, IN_FAILED_TRANSACTION_SQLSTATE)


# --- SQLSTATEs of PostgreSQL's fixed messages (issue 26) -----------------------------------------
# For a log without SQLSTATEs (stderr without %e): messages that PostgreSQL raises with one code
# only, written in its source with that errcode (src/backend/parser/scan.l, parse_relation.c,
# utils/adt/int.c, numutils.c, tcop/postgres.c, commands/trigger.c). tests/test_analyze_scenarios.py
# checks each against the SQLSTATE the same server wrote for the same record in its csvlog.
_FIXED_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"syntax error at (?:or near \"|end of input)"), "42601"),
    (re.compile(r'relation "[^"]{1,200}" does not exist$'), "42P01"),
    (re.compile(r"division by zero$"), "22012"),
    (re.compile(r'invalid input syntax for type [a-z ]{1,40}: "'), "22P02"),
    (re.compile(re.escape(_IN_FAILED_TRANSACTION) + "$"), IN_FAILED_TRANSACTION_SQLSTATE),
    (re.compile(r'constraint "[^"]{1,200}" is not deferrable$'), NOT_DEFERRABLE_SQLSTATE),
)


def inferred_sqlstate(message: str | None) -> str | None:
    """The SQLSTATE a fixed PostgreSQL message is raised with, or None.

    >>> inferred_sqlstate('syntax error at or near "SELEC"'), inferred_sqlstate("balance is negative")
    ('42601', None)
    """
    if not message:
        return None
    for pattern, state in _FIXED_MESSAGES:
        if pattern.match(message):
            return state
    return translated_sqlstate(message)


# --- the same fixed messages in every language the server ships (issue 26) ------------------------
# Their msgids (logdiag/lang/msgids.py) as each catalog translates them, with the SQLSTATE the
# server raises them with (src/backend/utils/errcodes.txt, and the ereport sites: deadlock.c
# DeadLockReport 40P01 ERRCODE_T_R_DEADLOCK_DETECTED; nodeModifyTable.c, nodeLockRows.c, heapam
# and predicate.c 40001 ERRCODE_T_R_SERIALIZATION_FAILURE; the others as above).
# tests/test_languages.py checks them against the SQLSTATE each server wrote in its csvlog.
_FIXED_MSGIDS: tuple[tuple[str, str], ...] = (
    (msgids.UNDEFINED_RELATION, "42P01"),
    (msgids.DIVISION_BY_ZERO, "22012"),
    (msgids.INVALID_INPUT_SYNTAX, "22P02"),
    (msgids.IN_FAILED_TRANSACTION, IN_FAILED_TRANSACTION_SQLSTATE),
    (msgids.NOT_DEFERRABLE, NOT_DEFERRABLE_SQLSTATE),
    (msgids.DEADLOCK, "40P01"),
    (msgids.SERIALIZE_UPDATE, "40001"),
    (msgids.SERIALIZE_DELETE, "40001"),
    (msgids.SERIALIZE_DEPENDENCIES, "40001"),
)
_IN_FAILED_TRANSACTION_TRANSLATED = frozenset(
    language.text(msgids.IN_FAILED_TRANSACTION) for language in LANGUAGES.values()
)
_OUTSIDE_TRANSACTION_TRANSLATED = frozenset(
    form.literals[0] + "SET CONSTRAINTS" + form.literals[1]
    for form in all_formats(msgids.ONLY_IN_TRANSACTION_BLOCKS) if len(form.literals) == 2
)
#: (the language's "syntax error", its format of ``%s at or near "%s"``, of ``%s at end of input``)
_SYNTAX_ERRORS = tuple(dict.fromkeys(
    (language.text(msgids.SYNTAX_ERROR), language.format(msgids.AT_OR_NEAR), language.format(msgids.AT_END_OF_INPUT))
    for language in LANGUAGES.values()
))


#: (the head of `` at character %d`` in each language, what follows the number)
_AT_CHARACTER = tuple(dict.fromkeys(
    (form.literals[0], form.literals[1]) for form in all_formats(msgids.AT_CHARACTER) if len(form.literals) == 2
))


def _without_position(message: str) -> str:
    """The message without the cursor position a stderr log appends in the server's language
    (``… bei Zeichen 8``); logdiag's stderr reader takes off only the English one."""
    for head, tail in _AT_CHARACTER:
        if not message.endswith(tail):
            continue
        body = message[: len(message) - len(tail)]
        at = body.rfind(head)
        if at > 0 and body[at + len(head) :].isdigit():
            return body[:at]
    return message


def translated_sqlstate(message: str) -> str | None:
    """The SQLSTATE of a fixed PostgreSQL message in any language the server ships, or None: a
    syntax error is 42601 (scan.l raises every message it words so), the others as the table says.

    >>> translated_sqlstate("Syntaxfehler bei »SELEC«"), translated_sqlstate("Verklemmung (Deadlock) entdeckt")
    ('42601', '40P01')
    """
    message = _without_position(message)
    for msgid, state in _FIXED_MSGIDS:
        if any(form.match(message) is not None for form in all_formats(msgid)):
            return state
    for word, near, end in _SYNTAX_ERRORS:
        if word in message and any((found := f.match(message)) and found[0] == word for f in (near, end)):
            return "42601"
    return None


_MATCH_FULL_DETAILS = frozenset(language.text(msgids.MATCH_FULL) for language in LANGUAGES.values())


def is_match_full_detail(detail: str | None) -> bool:
    """Whether a foreign key's DETAIL is ``MATCH FULL does not allow mixing of null and nonnull key
    values.`` (in any language): the row mixed NULL and non-NULL in the key, which it does not show.
    """
    return detail is not None and detail in _MATCH_FULL_DETAILS
