"""What a run reports (issue 29): incidents, findings and other errors chosen by time, name and SQLSTATE.

A :class:`ReportFilter` chooses what is *reported*, never what is *tracked*: the pipeline feeds
every record to the session tracker and every error to the diagnosis, and asks the filter only of
the results. So a culprit written before ``--since`` is still found for a COMMIT after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from logdiag.diagnosis.incidents import Finding, Incident, OtherError
from logdiag.errors import ConfigError

#: ``2h``, ``30m``, ``45s``, ``1d``, ``2w``: so long before now.
_RELATIVE = re.compile(r"(\d{1,7}) ?([smhdw])", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: ``2026-11-21``, ``2026-11-21 07:22``, ``2026-11-21T07:22:17.017``, each with an optional zone:
#: ``Z``, ``UTC``, ``GMT``, ``+02:00``, ``+0200``, ``+02``.
_ABSOLUTE = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?"
    r" ?(?P<zone>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)
_SQLSTATE = re.compile(r"[0-9A-Z]{2}(?:[0-9A-Z]{3})?")


class FilterError(ConfigError):
    """A filter's value cannot be read; ``option`` names the option (``--since``)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


class _Who(Protocol):
    """Who ran a statement: a session's identity, as an incident, a finding or a record tells it."""

    @property
    def user(self) -> str | None: ...

    @property
    def database(self) -> str | None: ...

    @property
    def application(self) -> str | None: ...


def parse_moment(text: str, *, now: datetime | None = None) -> datetime:
    """A ``--since``/``--until`` value as a datetime: aware for an instant, naive for a wall-clock
    time of the log's own zone.

    Args:
        text: ``2h``, ``30m``, ``45s``, ``1d`` (so long before ``now``), or a timestamp: a date, a
            date and time, with a zone (``Z``, ``UTC``, ``+02:00``) or without one.
        now: the instant relative values count back from (default: the clock).

    Returns:
        An aware datetime for a relative value or a timestamp with a zone, a naive one otherwise.

    Raises:
        ValueError: the text is neither.

    >>> parse_moment("2h", now=datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)).isoformat()
    '2026-11-21T07:00:00+00:00'
    >>> parse_moment("2026-11-21 07:22").isoformat()
    '2026-11-21T07:22:00'
    >>> parse_moment("2026-11-21T07:22:17Z").isoformat()
    '2026-11-21T07:22:17+00:00'
    """
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative is not None:
        now = now or datetime.now(timezone.utc)
        try:
            return now - timedelta(**{_UNITS[relative[2].lower()]: int(relative[1])})
        except OverflowError:
            raise ValueError(f"{text!r} reaches back before the year 1") from None
    absolute = _ABSOLUTE.fullmatch(value)
    if absolute is None:
        raise ValueError(
            f"{text!r} is neither a time (2026-11-21 07:22 in the log's zone, 2026-11-21 07:22+02:00 "
            "or 2026-11-21T07:22Z an instant) nor a duration ago (2h, 30m, 45s, 1d)"
        )
    time = absolute["time"] or "00:00"
    head, _, fraction = time.partition(".")
    try:
        moment = datetime.fromisoformat(f"{absolute['date']} {head}")
    except ValueError:
        raise ValueError(f"{text!r} is no valid date and time") from None
    if fraction:  # Python 3.10 reads at most six digits of a second
        moment = moment.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    zone = absolute["zone"]
    if zone is None:
        return moment
    return moment.replace(tzinfo=_offset(zone))


def _offset(zone: str) -> timezone:
    if zone.upper() in ("Z", "UTC", "GMT"):
        return timezone.utc
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"{zone!r} is no UTC offset")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if zone[0] == "-" else delta)


def _compared(at: datetime, bound: datetime) -> tuple[datetime, datetime]:
    """``at`` and ``bound`` made comparable: a naive bound is a wall-clock time in the log's own
    zone, so it is compared with the record's wall clock; an aware one is an instant."""
    if bound.tzinfo is None:
        return at.replace(tzinfo=None), bound
    if at.tzinfo is None:  # a record without a zone (never from logdiag's readers): its wall clock
        return at, bound.replace(tzinfo=None)
    return at, bound


def _table_is(have: str | None, wanted: str) -> bool:
    """``orders`` matches ``public.orders`` and the other way round; two qualified names must agree."""
    if have is None:
        return False
    if have == wanted:
        return True
    if "." in have and "." in wanted:
        return False
    return have.rpartition(".")[2] == wanted.rpartition(".")[2]


@dataclass(frozen=True, slots=True)
class ReportFilter:
    """What to report of a run; every field left empty lets everything through.

    Values of one option are alternatives (``--sqlstate 23 --sqlstate 40P01``: either); options
    combine (``--constraint x --since 2h``: both). A result that lacks the field an option asks
    about (an other error has no constraint; a record without a timestamp has no time) is left
    out by that option.

    Attributes:
        since: report what happened at or after it (inclusive).
        until: report what happened before it (exclusive). Both are aware for an instant, naive
            for a wall-clock time of the log's own zone (see :func:`parse_moment`).
        constraints: constraint names, exact.
        tables: table names; an unqualified name matches any schema's table of that name. An
            incident matches by its table or the table its foreign key references.
        databases, applications, users: exact names, from the session.
        sqlstates: five-character codes (``40P01``) and two-character classes (``23``).

    >>> only = ReportFilter.parse(sqlstate=["23"], application=["billing-job"])
    >>> only.sqlstates, only.applications
    (frozenset({'23'}), frozenset({'billing-job'}))
    """

    since: datetime | None = None
    until: datetime | None = None
    constraints: frozenset[str] = frozenset()
    tables: frozenset[str] = frozenset()
    databases: frozenset[str] = frozenset()
    applications: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    sqlstates: frozenset[str] = frozenset()

    @classmethod
    def parse(
        cls,
        *,
        since: str | None = None,
        until: str | None = None,
        constraint: Iterable[str] = (),
        table: Iterable[str] = (),
        database: Iterable[str] = (),
        application: Iterable[str] = (),
        user: Iterable[str] = (),
        sqlstate: Iterable[str] = (),
        now: datetime | None = None,
    ) -> ReportFilter:
        """The filter the options ask for, each value checked here (the one place).

        Raises:
            FilterError: a value cannot be read; its ``option`` says which (``--sqlstate``).
        """
        now = now or datetime.now(timezone.utc)
        bounds: dict[str, datetime | None] = {}
        for option, text in (("--since", since), ("--until", until)):
            try:
                bounds[option] = None if text is None else parse_moment(text, now=now)
            except ValueError as exc:
                raise FilterError(option, str(exc)) from None
        first, last = bounds["--since"], bounds["--until"]
        if first is not None and last is not None and (first.tzinfo is None) == (last.tzinfo is None) and first >= last:
            raise FilterError("--until", f"{until!r} is not after --since {since!r}: nothing could be reported")
        codes = set()
        for code in sqlstate:
            if not _SQLSTATE.fullmatch(code.strip().upper()):
                raise FilterError(
                    "--sqlstate", f"{code!r} is neither a SQLSTATE (five characters, e.g. 23503) nor its class "
                    "(the first two, e.g. 23)",
                )
            codes.add(code.strip().upper())
        names = {}
        for option, values in (("--constraint", constraint), ("--table", table), ("--database", database),
                               ("--application", application), ("--user", user)):
            names[option] = frozenset(values)
            if "" in names[option]:
                raise FilterError(option, "an empty name matches nothing")
        return cls(
            since=first, until=last, constraints=names["--constraint"], tables=names["--table"],
            databases=names["--database"], applications=names["--application"], users=names["--user"],
            sqlstates=frozenset(codes),
        )

    @property
    def active(self) -> bool:
        """Whether anything is filtered at all."""
        return any(getattr(self, name) for name in self.__slots__)

    def matches_incident(self, incident: Incident) -> bool:
        """Whether the incident is reported (by its table or the table its foreign key references)."""
        return self._matches(
            incident.at, incident.sqlstate, incident.session, incident.constraint,
            (incident.table, incident.referenced_table),
        )

    def matches_finding(self, finding: Finding) -> bool:
        """Whether the finding is reported (by its constraint and table when it names them)."""
        return self._matches(finding.at, finding.sqlstate, finding.session, finding.constraint, (finding.table,))

    def matches_error(self, error: OtherError, who: _Who | None) -> bool:
        """Whether the other error is reported. ``who`` is its session (an other error has no
        constraint and no table: ``--constraint`` and ``--table`` leave every one out)."""
        return self._matches(error.at, error.sqlstate, who, None, ())

    def _matches(
        self, at: datetime | None, sqlstate: str | None, who: _Who | None, constraint: str | None,
        tables: tuple[str | None, ...],
    ) -> bool:
        if not self.active:
            return True
        return (
            self._at(at) and self._sqlstate(sqlstate) and self._who(who)
            and (not self.constraints or constraint in self.constraints)
            and (not self.tables or any(_table_is(have, wanted) for have in tables for wanted in self.tables))
        )

    def _at(self, at: datetime | None) -> bool:
        if self.since is None and self.until is None:
            return True
        if at is None:
            return False
        if self.since is not None:
            when, bound = _compared(at, self.since)
            if when < bound:
                return False
        if self.until is not None:
            when, bound = _compared(at, self.until)
            if when >= bound:
                return False
        return True

    def _sqlstate(self, code: str | None) -> bool:
        if not self.sqlstates:
            return True
        return code is not None and (code in self.sqlstates or code[:2] in self.sqlstates)

    def _who(self, who: _Who | None) -> bool:
        if not (self.databases or self.applications or self.users):
            return True
        if who is None:
            return False
        return all(
            not wanted or (have is not None and have in wanted)
            for wanted, have in (
                (self.databases, who.database), (self.applications, who.application), (self.users, who.user),
            )
        )
