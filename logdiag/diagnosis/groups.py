"""Repeated incidents as groups: the same constraint broken by statements of the same shape.

Two hundred violations of one foreign key by one code path are one problem seen two hundred times.
:class:`Groups` takes incidents as they come and puts each in a group keyed by its SQLSTATE,
constraint and table and by the shape of its culprit statement (pglast's fingerprint: the same for
statements that differ only in their constants and parameters; the raising statement's when no
culprit was found). A group keeps its count, first and last time, a few example keys, who was
involved, and the indexes of its incidents in the run; the first incident stands for it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from logdiag.diagnosis.incidents import Incident
from logdiag.diagnosis.sql import statement_shape

#: Distinct example keys a group keeps.
EXAMPLE_KEYS = 3
#: The first incidents a group keeps for the reports: the one shown in full, then one line each.
KEPT_INCIDENTS = 6


@dataclass
class Group:
    """Incidents of one constraint whose culprits have one shape.

    Attributes:
        id: 1 for the first group the run met, 2 for the next...
        shape: the culprit statement (else the raising one) with its constants as ``$n``.
        incidents: the indexes of the group's incidents in the run, 0-based, in log order.
        kept: the group's first incidents (:data:`KEPT_INCIDENTS`), the first standing for it.
        keys: the first few distinct keys.
    """

    id: int
    shape: str | None
    incidents: list[int] = field(default_factory=list)
    kept: list[Incident] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None
    keys: list[dict[str, str | None]] = field(default_factory=list)
    applications: Counter[str] = field(default_factory=Counter)
    users: Counter[str] = field(default_factory=Counter)
    databases: Counter[str] = field(default_factory=Counter)
    hosts: Counter[str] = field(default_factory=Counter)
    sessions: set[str] = field(default_factory=set)

    @property
    def count(self) -> int:
        return len(self.incidents)

    @property
    def representative(self) -> Incident:
        """The group's first incident, shown in full."""
        return self.kept[0]

    def first_incidents(self) -> list[tuple[int, Incident]]:
        """The kept incidents with their numbers in the run (1-based), the representative first."""
        return [(index + 1, incident) for index, incident in zip(self.incidents, self.kept, strict=False)]

    @property
    def constraint(self) -> str | None:
        return self.representative.constraint

    def add(self, index: int, incident: Incident) -> None:
        self.incidents.append(index)
        if len(self.kept) < KEPT_INCIDENTS:
            self.kept.append(incident)
        if incident.at is not None:
            self.first = incident.at if self.first is None else min(self.first, incident.at)
            self.last = incident.at if self.last is None else max(self.last, incident.at)
        if incident.key and incident.key not in self.keys and len(self.keys) < EXAMPLE_KEYS:
            self.keys.append(dict(incident.key))
        s = incident.session
        for counter, value in ((self.applications, s.application), (self.users, s.user),
                               (self.databases, s.database), (self.hosts, s.client)):
            if value:
                counter[value] += 1
        session = s.session_id or (f"pid {s.pid}" if s.pid is not None else None)
        if session:
            self.sessions.add(session)

    def to_dict(self) -> dict[str, Any]:
        """The group as the JSON contract names it (``docs/output-schema.md``)."""
        return {
            "id": self.id,
            "constraint": self.constraint,
            "table": self.representative.table,
            "sqlstate": self.representative.sqlstate,
            "shape": self.shape,
            "count": self.count,
            "first": _time(self.first),
            "last": _time(self.last),
            "example_keys": self.keys,
            "applications": dict(self.applications.most_common()),
            "users": dict(self.users.most_common()),
            "databases": dict(self.databases.most_common()),
            "hosts": dict(self.hosts.most_common()),
            "sessions": len(self.sessions),
            "incidents": self.incidents,
        }


def _time(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


class Groups:
    """The groups of a run's incidents, filled as they come (:meth:`add`)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[object, ...], Group] = {}
        self._of: list[Group] = []  # each incident's group, by its index

    def add(self, incident: Incident) -> Group:
        """Put the run's next incident in its group (a new one if it is the first of its kind)."""
        statement = incident.culprits[0].statement if incident.culprits else incident.raised_by_statement
        fingerprint, shape = statement_shape(statement) if statement else (None, None)
        key = (incident.sqlstate, incident.constraint, incident.table, fingerprint if fingerprint else shape)
        group = self._by_key.get(key)
        if group is None:
            group = self._by_key[key] = Group(len(self._by_key) + 1, shape)
        group.add(len(self._of), incident)
        self._of.append(group)
        return group

    def of(self, index: int) -> Group:
        """The group of the run's incident at ``index`` (0-based)."""
        return self._of[index]

    def largest_first(self) -> list[Group]:
        """Every group, the largest first (the first met first among equals)."""
        return sorted(self._by_key.values(), key=lambda g: (-g.count, g.id))

    def __len__(self) -> int:
        return len(self._by_key)
