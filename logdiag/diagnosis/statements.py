"""Statements as the log shows them, found with cheap string tests (no SQL parser on this path).

Every record of a big log passes through here, so nothing is parsed with pglast: a record's
message is matched against the few shapes PostgreSQL uses to log a statement, and transaction
control (BEGIN, COMMIT, SAVEPOINT...) is recognised by its leading keywords.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from logdiag.lang import LANGUAGES, Language, all_formats, msgids
from logdiag.records import LogRecord, Severity

# "statement: X", "duration: 1.2 ms  statement: X", "execute S_1: X", "execute <unnamed>: X",
# "duration: 1.2 ms  execute S_1/C_1: X", and the same in every language of the server's catalogs
# ("Anweisung: X", "durée : 1.2 ms, instruction : X"...). parse and bind records
# (log_min_duration_statement = 0) are left out: the execute record of the same statement carries
# its text and parameters.
_MILLISECONDS = r"\d{1,12}(?:\.\d{1,6})?"


def _statement_patterns(language: Language) -> tuple[tuple[re.Pattern[str], bool], ...]:
    """How ``language`` logs a statement: (pattern, whether it is a simple query's) for a simple
    query, an execute and an execute with its duration."""
    simple = language.format(msgids.STATEMENT).head
    timed = language.format(msgids.DURATION_STATEMENT).literals
    executed = language.format(msgids.EXECUTE_LINE).literals
    timed_execute = language.format(msgids.DURATION_EXECUTE).literals
    words = f"(?:(?P<fetch>{re.escape(language.text(msgids.EXECUTE_FETCH))})|{re.escape(language.text(msgids.EXECUTE))})"
    name = r"(?P<name>[^\s:]{1,200}?)"
    patterns = [(re.compile(f"{re.escape(simple)}|{re.escape(timed[0])}{_MILLISECONDS}{re.escape(timed[1])}"), True)]
    if len(executed) == 6:  # "%s %s%s%s: %s"
        patterns.append(
            (re.compile(f"{re.escape(executed[0])}{words}{re.escape(executed[1])}{name}{re.escape(executed[4])}"), False)
        )
    if len(timed_execute) == 7:  # "duration: %s ms  %s %s%s%s: %s"
        patterns.append((re.compile(
            f"{re.escape(timed_execute[0])}{_MILLISECONDS}{re.escape(timed_execute[1])}{words}"
            f"{re.escape(timed_execute[2])}{name}{re.escape(timed_execute[5])}"
        ), False))
    return tuple(patterns)


_LOGGED: tuple[tuple[re.Pattern[str], bool], ...] = tuple(
    dict.fromkeys(pattern for language in LANGUAGES.values() for pattern in _statement_patterns(language))
)
#: What a statement's message starts with, in any language: a cheap test before the patterns.
_LOGGED_HEADS: tuple[str, ...] = tuple(sorted({
    head for language in LANGUAGES.values() for head in (
        language.format(msgids.STATEMENT).head, language.format(msgids.DURATION).head,
        language.text(msgids.EXECUTE), language.format(msgids.DURATION_EXECUTE).head,
    ) if head
}))
#: ``parameters: `` in every language (PostgreSQL 17 writes ``Parameters:``, compared without case).
_PARAMETERS_HEADS: tuple[str, ...] = tuple(sorted({
    language.format(msgids.PARAMETERS).head.lower() for language in LANGUAGES.values()
}))
_PARAMETERS = re.compile(r"\$(?P<n>\d{1,5}) = (?:(?P<null>NULL)|'(?P<value>(?:[^']|'')*)')")
# A comment left open runs to the end (as in SQL), so no start of one scans the rest again (issue 27).
_LEADING_NOISE = re.compile(r"(?:\s|/\*(?:[^*]|\*(?!/))*(?:\*/|\Z)|--[^\n]*(?:\n|\Z))*")
_CONTROL = re.compile(
    r"(?P<keyword>BEGIN|START\s+TRANSACTION|COMMIT\s+PREPARED|ROLLBACK\s+PREPARED|COMMIT|END|ROLLBACK|ABORT"
    r"|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION|SET\s+CONSTRAINTS)\b(?P<rest>[^;]{0,500})\s*;?\s*$",
    re.IGNORECASE,
)
# First letters of BEGIN START SAVEPOINT SET COMMIT END ROLLBACK RELEASE ABORT PREPARE, and comments.
_CONTROL_INITIALS = frozenset("BSCERAP/-")
_CHAIN = re.compile(r"\bAND\s+CHAIN\b", re.IGNORECASE)
_NO_CHAIN = re.compile(r"\bAND\s+NO\s+CHAIN\b", re.IGNORECASE)
_SAVEPOINT_NAME = re.compile(r"^(?:\s+(?:WORK|TRANSACTION))?(?:\s+TO)?(?:\s+SAVEPOINT)?\s+(?P<name>\S+?)\s*$", re.IGNORECASE)
_WRITE_KEYWORDS = ("insert", "update", "delete", "merge", "copy", "with", "select", "call", "do", "execute")
_DDL = re.compile(
    r"(?:CREATE|ALTER)\s+(?:(?:GLOBAL|LOCAL)\s+)?(?:(?:TEMP|TEMPORARY|UNLOGGED)\s+)?TABLE\b"
    # constraint triggers name the constraint of a 40002 raised at commit (issue 26)
    r"|CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\b",
    re.IGNORECASE,
)


class Control(str, Enum):
    """Transaction-control statements."""

    BEGIN = "begin"
    COMMIT = "commit"  # COMMIT, END
    COMMIT_AND_CHAIN = "commit_and_chain"
    ROLLBACK = "rollback"  # ROLLBACK, ABORT
    ROLLBACK_AND_CHAIN = "rollback_and_chain"
    SAVEPOINT = "savepoint"
    RELEASE = "release"
    ROLLBACK_TO = "rollback_to"
    PREPARE_TRANSACTION = "prepare_transaction"
    COMMIT_PREPARED = "commit_prepared"
    ROLLBACK_PREPARED = "rollback_prepared"
    SET_CONSTRAINTS_IMMEDIATE = "set_constraints_immediate"
    SET_CONSTRAINTS_DEFERRED = "set_constraints_deferred"

    def __str__(self) -> str:
        return self.value


#: Statements at which deferred constraints are checked.
CHECKS_DEFERRED = frozenset({
    Control.COMMIT, Control.COMMIT_AND_CHAIN, Control.PREPARE_TRANSACTION, Control.SET_CONSTRAINTS_IMMEDIATE,
})
#: Statements after which the transaction is over.
ENDS_TRANSACTION = frozenset({
    Control.COMMIT, Control.COMMIT_AND_CHAIN, Control.ROLLBACK, Control.ROLLBACK_AND_CHAIN,
    Control.PREPARE_TRANSACTION,
})


@dataclass(frozen=True, slots=True)
class ControlStatement:
    """A transaction-control statement: its kind and its argument (savepoint or constraint names)."""

    kind: Control
    argument: str | None = None


def classify_control(text: str | None) -> ControlStatement | None:
    """Recognise a transaction-control statement by its keywords; None for anything else.

    >>> classify_control("COMMIT AND CHAIN;").kind
    <Control.COMMIT_AND_CHAIN: 'commit_and_chain'>
    >>> classify_control("rollback to savepoint sp1")
    ControlStatement(kind=<Control.ROLLBACK_TO: 'rollback_to'>, argument='sp1')
    >>> classify_control("INSERT INTO t VALUES (1)") is None
    True
    """
    if not text:
        return None
    first = text.lstrip()[:1].upper()
    if first not in _CONTROL_INITIALS:  # most statements: SELECT, INSERT, UPDATE... are not control
        return None
    head = text[:1200]
    noise = _LEADING_NOISE.match(head)
    start = noise.end() if noise else 0
    found = _CONTROL.match(head, start)
    if found is None or len(text) > 1200:
        return None
    keyword = " ".join(found["keyword"].upper().split())
    rest = found["rest"]
    if keyword in ("BEGIN", "START TRANSACTION"):
        return ControlStatement(Control.BEGIN)
    if keyword in ("COMMIT", "END"):
        chain = _CHAIN.search(rest) and not _NO_CHAIN.search(rest)
        return ControlStatement(Control.COMMIT_AND_CHAIN if chain else Control.COMMIT)
    if keyword in ("ROLLBACK", "ABORT"):
        if re.search(r"\bTO\b", rest, re.IGNORECASE):
            return ControlStatement(Control.ROLLBACK_TO, _savepoint(rest))
        chain = _CHAIN.search(rest) and not _NO_CHAIN.search(rest)
        return ControlStatement(Control.ROLLBACK_AND_CHAIN if chain else Control.ROLLBACK)
    if keyword == "SAVEPOINT":
        return ControlStatement(Control.SAVEPOINT, _savepoint(rest))
    if keyword == "RELEASE":
        return ControlStatement(Control.RELEASE, _savepoint(rest))
    if keyword == "PREPARE TRANSACTION":
        return ControlStatement(Control.PREPARE_TRANSACTION, rest.strip() or None)
    if keyword == "COMMIT PREPARED":
        return ControlStatement(Control.COMMIT_PREPARED, rest.strip() or None)
    if keyword == "ROLLBACK PREPARED":
        return ControlStatement(Control.ROLLBACK_PREPARED, rest.strip() or None)
    words = rest.split()
    if words and words[-1].upper() == "IMMEDIATE":
        return ControlStatement(Control.SET_CONSTRAINTS_IMMEDIATE, " ".join(words[:-1]))
    if words and words[-1].upper() == "DEFERRED":
        return ControlStatement(Control.SET_CONSTRAINTS_DEFERRED, " ".join(words[:-1]))
    return None


def _savepoint(rest: str) -> str | None:
    found = _SAVEPOINT_NAME.match(rest)
    if found is None:
        return None
    name = found["name"]
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


@dataclass(frozen=True, slots=True)
class LoggedStatement:
    """A statement the log shows a session running.

    Attributes:
        text: the SQL text.
        record: the record that logged it (its source and time).
        prepared_name: the protocol-level prepared statement name (``S_1``, ``<unnamed>``).
        parameters: bind parameters from ``DETAIL: parameters:``; None when there are none.
        parameters_truncated: a value ends in ``...`` (``log_parameter_max_length``).
        control: the transaction-control kind, if it is one.
    """

    text: str
    record: LogRecord
    prepared_name: str | None = None
    parameters: dict[str, str | None] | None = None
    parameters_truncated: bool = False
    control: ControlStatement | None = None
    #: the extended protocol's bind record of this execution (log_min_duration_statement = 0)
    bind: LoggedStatement | None = None

    @property
    def may_write(self) -> bool:
        """Cheap test: could this statement write rows (so that SQL analysis is worth it)?"""
        if self.control is not None:
            return False
        head = _LEADING_NOISE.sub("", self.text[:200], count=1).lstrip("(").lower()
        return head.startswith(_WRITE_KEYWORDS) or may_hold_several(self.text)

    @property
    def is_ddl(self) -> bool:
        """CREATE TABLE, ALTER TABLE or CREATE TRIGGER: what the catalog keeps."""
        head = self.text[:300].lower()
        if "table" not in head and "trigger" not in head:
            return False
        head = _LEADING_NOISE.sub("", self.text[:200], count=1)
        return bool(_DDL.match(head))


def skip_leading_noise(text: str) -> str:
    """The text after its leading blanks and comments (of its first 1200 characters)."""
    noise = _LEADING_NOISE.match(text, 0, 1200)
    return text[noise.end() :] if noise else text


def may_hold_several(text: str) -> bool:
    """Cheap test: could this text be several statements (``BEGIN; INSERT ...; COMMIT``)?"""
    return ";" in text.rstrip().rstrip(";")


def statement_of(record: LogRecord) -> LoggedStatement | None:
    """The statement a LOG record shows being run, with its parameters; None for other records.

    Args:
        record: a record; only ``LOG`` records that log a statement give one.
    """
    message = record.message
    if record.severity is not Severity.LOG or message is None:
        return None
    logged = _logged(message) if message.startswith(_LOGGED_HEADS) else None
    if logged is None:
        return None
    found, simple = logged
    if not simple and found["fetch"]:
        return None
    text = message[found.end() :]
    parameters, truncated = parse_parameters(record.detail)
    name = None if simple else found["name"].split("/", 1)[0]
    return LoggedStatement(text, record, name, parameters, truncated, classify_control(text))


#: ``duration: … ms  bind <name>: …`` in every language (log_min_duration_statement = 0): its
#: name, "/" and portal are adjacent conversions, which a CFormat cannot tell apart.
_BINDS = tuple(dict.fromkeys(
    re.compile(f"{re.escape(form.literals[0])}{_MILLISECONDS}{re.escape(form.literals[1])}"
               f"(?P<name>[^\\s:]{{1,200}}?){re.escape(form.literals[4])}")
    for form in all_formats(msgids.DURATION_BIND) if len(form.literals) == 6
))
_BIND_HEADS = tuple(sorted({form.head for form in all_formats(msgids.DURATION_BIND) if form.head}))


def bind_of(record: LogRecord) -> LoggedStatement | None:
    """The statement a ``bind`` record (the extended protocol's, logged with its duration) binds,
    with its parameters; None for other records (issue 26: the culprit's ``culprit_bind``)."""
    message = record.message
    if record.severity is not Severity.LOG or message is None or not message.startswith(_BIND_HEADS):
        return None
    found = next((m for pattern in _BINDS if (m := pattern.match(message)) is not None), None)
    if found is None:
        return None
    parameters, truncated = parse_parameters(record.detail)
    return LoggedStatement(message[found.end() :], record, found["name"].split("/", 1)[0], parameters, truncated)


def _logged(message: str) -> tuple[re.Match[str], bool] | None:
    """The match of the first statement pattern (of any language) that fits, and whether it is a
    simple query's."""
    for pattern, simple in _LOGGED:
        found = pattern.match(message)
        if found is not None:
            return found, simple
    return None


def parse_parameters(detail: str | None) -> tuple[dict[str, str | None] | None, bool]:
    """``parameters: $1 = '42', $2 = NULL`` → ({"$1": "42", "$2": None}, truncated?).

    PostgreSQL 17 writes ``Parameters:``; values cut by ``log_parameter_max_length`` end in ``...``.

    >>> parse_parameters("parameters: $1 = 'O''Brien', $2 = NULL")
    ({'$1': "O'Brien", '$2': None}, False)
    """
    head = detail[:40].lower() if detail else ""
    start = next((len(h) for h in _PARAMETERS_HEADS if head.startswith(h)), None)
    if detail is None or start is None:
        return None, False
    parameters: dict[str, str | None] = {}
    truncated = False
    for found in _PARAMETERS.finditer(detail, start):
        if found["null"]:
            parameters[f"${found['n']}"] = None
        else:
            value = found["value"].replace("''", "'")
            truncated = truncated or value.endswith("...")
            parameters[f"${found['n']}"] = value
    return parameters, truncated


# --- switched-off foreign-key checks (issue 26, checks_disabled) ----------------------------------
# session_replication_role = replica fires no ordinary trigger, and so none of the internal
# triggers that check foreign keys (what pg_restore --disable-triggers and replication tools
# run); ALTER TABLE t DISABLE TRIGGER ALL switches off t's, internal ones included.
_REPLICATION_ROLE = re.compile(
    r"(?:SET\s+(?:SESSION\s+|LOCAL\s+)?session_replication_role\s*(?:=|\bTO\b)\s*'?(?P<role>\w{1,20})'?"
    r"|RESET\s+(?P<reset>session_replication_role|ALL)|DISCARD\s+(?P<discard>ALL))\s*;?\s*$",
    re.IGNORECASE,
)
_TRIGGER_ALL = re.compile(
    r"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(?P<table>(?:\"(?:[^\"]|\"\"){1,200}\"|[\w$]{1,200})"
    r"(?:\s*\.\s*(?:\"(?:[^\"]|\"\"){1,200}\"|[\w$]{1,200}))*)\s*\*?"
    r"\s+(?P<switch>DISABLE|ENABLE(?:\s+(?:ALWAYS|REPLICA))?)\s+TRIGGER\s+ALL\s*;?\s*$",
    re.IGNORECASE,
)

_NAME_PARTS = re.compile(r'"(?:[^"]|""){1,200}"|[\w$]{1,200}')


@dataclass(frozen=True, slots=True)
class ChecksSwitch:
    """A statement that switches foreign-key checks off or back on.

    Attributes:
        disables: it switches them off (else back on).
        table: the table of ``ALTER TABLE t DISABLE|ENABLE TRIGGER ALL`` (unquoted, without its
            schema); None for ``session_replication_role``, which switches every table's.
    """

    disables: bool
    table: str | None = None


def checks_switch(text: str | None) -> ChecksSwitch | None:
    """Whether a statement switches foreign-key checks off or on; None for any other.

    >>> checks_switch("SET session_replication_role = replica;")
    ChecksSwitch(disables=True, table=None)
    >>> checks_switch('ALTER TABLE public."Orders" ENABLE TRIGGER ALL')
    ChecksSwitch(disables=False, table='Orders')
    >>> checks_switch("SET search_path = app") is None
    True
    """
    if not text or len(text) > 1200:
        return None
    head = _LEADING_NOISE.sub("", text, count=1)
    first = head[:1].upper()
    if first in ("S", "R", "D"):
        found = _REPLICATION_ROLE.match(head)
        if found is None:
            return None
        role = found["role"]
        return ChecksSwitch(disables=role is not None and role.lower() == "replica")
    if first != "A":
        return None
    altered = _TRIGGER_ALL.match(head)
    if altered is None:
        return None
    name = _NAME_PARTS.findall(altered["table"])[-1]  # the table's own name, after its schema
    table = name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
    return ChecksSwitch(disables=altered["switch"].upper() == "DISABLE", table=table)
