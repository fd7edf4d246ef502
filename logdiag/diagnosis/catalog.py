"""Tables and constraints learned from DDL seen in the log, parsed only when a diagnosis asks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from logdiag.diagnosis.sql import ConstraintDefinition, StatementWrites, TriggerDefinition, statement_writes
from logdiag.diagnosis.statements import LoggedStatement


@dataclass(frozen=True, slots=True)
class Declaration:
    """A constraint and the DDL statement that declared it."""

    constraint: ConstraintDefinition
    statement: LoggedStatement


class DdlLog:
    """The DDL statements seen in a log, the latest ``limit`` of them, indexed by the words in
    them: a diagnosis looks up the few that name its tables and constraints instead of searching
    every one (a log whose sessions create temporary tables holds thousands; searched for each
    incident, they made the diagnosis cost grow with the log, issue 27).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._statements: dict[int, LoggedStatement] = {}  # by sequence number, oldest first
        self._by_word: dict[str, list[int]] = {}
        self._next = 0

    def append(self, statement: LoggedStatement) -> None:
        number = self._next
        self._next += 1
        self._statements[number] = statement
        for word in set(_WORD.findall(statement.text.lower())):
            self._by_word.setdefault(word, []).append(number)
        if len(self._statements) > self.limit:
            del self._statements[next(iter(self._statements))]
        if len(self._by_word) > 4 * self.limit + 1000:  # words of forgotten statements: drop them
            self._by_word = {
                word: kept for word, numbers in self._by_word.items()
                if (kept := [n for n in numbers if n in self._statements])
            }

    def view(self) -> DdlView:
        """The statements seen so far (those that come later are not in it)."""
        return DdlView(self, self._next)

    def mentioning(self, names: Iterable[str], before: int) -> list[LoggedStatement]:
        """The statements numbered below ``before`` whose text holds one of ``names`` (lower
        case), oldest first."""
        numbers: set[int] = set()
        for name in names:
            if _WORD.fullmatch(name):
                numbers.update(n for n in self._by_word.get(name, ()) if n < before)
            else:  # a name with a dot or a space in it: searched for, the old way
                numbers.update(
                    n for n, statement in self._statements.items() if n < before and name in statement.text.lower()
                )
        return [self._statements[n] for n in sorted(numbers) if n in self._statements]

    def statements(self, before: int) -> list[LoggedStatement]:
        return [statement for n, statement in self._statements.items() if n < before]


@dataclass(frozen=True, slots=True)
class DdlView:
    """The DDL of a log up to a point (an error's): what its diagnosis may know of the schema."""

    log: DdlLog
    before: int

    def __iter__(self) -> Iterator[LoggedStatement]:
        return iter(self.log.statements(self.before))

    def mentioning(self, names: Iterable[str]) -> list[LoggedStatement]:
        return self.log.mentioning(names, self.before)


#: The words of an SQL statement, as the index keeps them (identifiers, keywords, numbers).
_WORD = re.compile(r"\w+")


class Catalog:
    """Column orders and constraint definitions from CREATE TABLE / ALTER TABLE in the log.

    Only DDL that mentions one of ``names`` (a table or constraint of the incident) is parsed.
    """

    def __init__(self, ddl: Iterable[LoggedStatement] | DdlView, names: Iterable[str | None]) -> None:
        wanted = [n.lower() for n in names if n]
        self.columns: dict[str, tuple[str, ...]] = {}
        self.types: dict[str, dict[str, str]] = {}  # table -> column -> type name
        self.declarations: list[Declaration] = []
        self.partitioned: dict[str, str] = {}  # partition -> its partitioned table
        self.triggers: list[TriggerDefinition] = []
        if isinstance(ddl, DdlView) and wanted:
            ddl = ddl.mentioning(wanted)
        for statement in ddl:
            lowered = statement.text.lower()
            if wanted and not any(name in lowered for name in wanted):
                continue
            declared = _parsed(statement.text)
            self.columns.update(declared.tables)
            self.types.update({table: dict(types) for table, types in declared.types.items()})
            self.partitioned.update(declared.partitions)
            self.declarations.extend(Declaration(c, statement) for c in declared.constraints)
            self.triggers.extend(declared.triggers)

    def partitioned_tables(self, table: str) -> list[str]:
        """The partitioned tables a partition belongs to, nearest first (rows inserted into them
        are routed down to it)."""
        found: list[str] = []
        while (table := self.partitioned.get(table, "")) and table not in found:
            found.append(table)
        return found

    def constraint_triggers(self, function: str | None = None, name: str | None = None) -> list[TriggerDefinition]:
        """The constraint triggers that run ``function`` (or are called ``name``), latest
        declaration of each name first."""
        found: dict[str, TriggerDefinition] = {}
        for trigger in reversed(self.triggers):
            if trigger.constraint and trigger.name not in found and (
                (function is not None and trigger.function == function) or (name is not None and trigger.name == name)
            ):
                found[trigger.name] = trigger
        return list(found.values())

    def primary_key(self, table: str) -> tuple[str, ...]:
        """The columns of the table's latest declared primary key (what a REFERENCES without
        columns refers to); ``()`` when the DDL in the log declares none."""
        for declaration in reversed(self.declarations):
            if declaration.constraint.kind == "primary_key" and declaration.constraint.table == table:
                return declaration.constraint.columns
        return ()

    def constraint(self, name: str | None) -> Declaration | None:
        """The latest declaration of the constraint called ``name``."""
        if name is None:
            return None
        for declaration in reversed(self.declarations):
            if declaration.constraint.name == name:
                return declaration
        return None


@lru_cache(maxsize=1024)
def _parsed(ddl: str) -> StatementWrites:
    """A DDL statement parsed once, however many incidents need it (a log that creates the same
    table over and over, as a test suite's does, would otherwise be parsed once per incident)."""
    return statement_writes(ddl)
