"""Tables and constraints learned from DDL seen in the log, parsed only when a diagnosis asks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from logdiag.diagnosis.sql import ConstraintDefinition, StatementWrites, TriggerDefinition, statement_writes
from logdiag.diagnosis.statements import LoggedStatement


@dataclass(frozen=True, slots=True)
class Declaration:
    """A constraint and the DDL statement that declared it."""

    constraint: ConstraintDefinition
    statement: LoggedStatement


class Catalog:
    """Column orders and constraint definitions from CREATE TABLE / ALTER TABLE in the log.

    Only DDL that mentions one of ``names`` (a table or constraint of the incident) is parsed.
    """

    def __init__(self, ddl: Iterable[LoggedStatement], names: Iterable[str | None]) -> None:
        wanted = [n.lower() for n in names if n]
        self.columns: dict[str, tuple[str, ...]] = {}
        self.types: dict[str, dict[str, str]] = {}  # table -> column -> type name
        self.declarations: list[Declaration] = []
        self.partitioned: dict[str, str] = {}  # partition -> its partitioned table
        self.triggers: list[TriggerDefinition] = []
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
