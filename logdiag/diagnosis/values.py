"""A value as a statement wrote it against the value as the server printed it (issue 26).

A DETAIL prints values in the server's output form; a statement carries literals as the client
wrote them: ``'[2024-05-01 11:00, 2024-05-01 13:00)'`` is printed
``["2024-05-01 11:00:00","2024-05-01 13:00:00")``, ``true`` is ``t``, a timestamp may be written
with ``T`` or a zone, a jsonb object with its keys in another order, an interval as
``90 minutes`` (printed ``01:30:00``), an array with spaces. :func:`same_canonical` compares the
two as the server would, without a server: each form is read into a canonical one, and only
forms that read cleanly are compared (anything else is simply not the same).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

_TRUE = frozenset({"t", "true", "tr", "tru", "y", "ye", "yes", "on", "1"})
_FALSE = frozenset({"f", "false", "fa", "fal", "fals", "n", "no", "off", "of", "0"})
_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})(?:[ T](?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,6}))?)?)?"
    r"\s*(?P<zone>Z|UTC|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)
_INTERVAL_PART = re.compile(
    r"(?P<number>[+-]?\d{1,12}(?:\.\d{1,9})?)\s*(?P<unit>[a-z]{1,12})|(?P<clock>[+-]?\d{1,9}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)",
    re.IGNORECASE,
)
_UNITS = {
    "year": ("months", 12), "years": ("months", 12), "y": ("months", 12),
    "mon": ("months", 1), "mons": ("months", 1), "month": ("months", 1), "months": ("months", 1),
    "week": ("days", 7), "weeks": ("days", 7), "w": ("days", 7),
    "day": ("days", 1), "days": ("days", 1), "d": ("days", 1),
    "hour": ("micros", 3_600_000_000), "hours": ("micros", 3_600_000_000), "h": ("micros", 3_600_000_000),
    "minute": ("micros", 60_000_000), "minutes": ("micros", 60_000_000), "min": ("micros", 60_000_000),
    "mins": ("micros", 60_000_000), "m": ("micros", 60_000_000),
    "second": ("micros", 1_000_000), "seconds": ("micros", 1_000_000), "sec": ("micros", 1_000_000),
    "secs": ("micros", 1_000_000), "s": ("micros", 1_000_000),
    "millisecond": ("micros", 1000), "milliseconds": ("micros", 1000), "ms": ("micros", 1000),
    "microsecond": ("micros", 1), "microseconds": ("micros", 1), "us": ("micros", 1),
}
#: Range types whose values the server makes canonical ``[lower, upper)`` (discrete steps of 1).
DISCRETE_RANGES = frozenset({"int4range", "int8range", "daterange", "int4multirange", "int8multirange"})


def same_canonical(written: str, printed: str, type_name: str | None = None) -> bool:
    """Whether ``written`` (a literal's text) is the value the server printed as ``printed``.

    Args:
        written: the value as the statement wrote it.
        printed: the value as a DETAIL printed it.
        type_name: the column's type from the DDL in the log (``tsrange``, ``numeric(10,2)``…),
            when known: it settles how a range is made canonical.

    >>> same_canonical("[2024-05-01 11:00, 2024-05-01 13:00)", '["2024-05-01 11:00:00","2024-05-01 13:00:00")')
    True
    >>> same_canonical("true", "t"), same_canonical("90 minutes", "01:30:00"), same_canonical("[5,15]", "[5,16)")
    (True, True, True)
    >>> same_canonical('{"b": 1, "a": [1, 2]}', '{"a": [1, 2], "b": 1}'), same_canonical("{1, 2}", "{1,2}")
    (True, True)
    >>> same_canonical("2024-05-01T11:00:00Z", "2024-05-01 13:00:00+02"), same_canonical("x", "y")
    (True, False)
    """
    if written == printed:
        return True
    w, p = written.strip(), printed.strip()
    if w == p:
        return True
    if p in ("t", "f") and w.lower() in (_TRUE | _FALSE):
        return (w.lower() in _TRUE) == (p == "t")
    number = _decimal(w)
    if number is not None:
        return number == _decimal(p)
    if p[:1] in "{[" and w[:1] in "{[":
        same = _same_json(w, p)
        if same is not None:
            return same
    if p[:1] == "{" and w[:1] == "{":
        return _same_array(w, p)
    if p[:1] in "[(" or p == "empty":
        return _ranged(w, p, type_name)
    stamps = _timestamp(w), _timestamp(p)
    if stamps[0] is not None and stamps[1] is not None:
        return _same_instant(stamps[0], stamps[1])
    intervals = _interval(w), _interval(p)
    return intervals[0] is not None and intervals[0] == intervals[1]


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except (InvalidOperation, ValueError):
        return None


def _same_json(written: str, printed: str) -> bool | None:
    """Equal as JSON values (object keys in any order, numbers by value); None when either is no JSON."""
    try:
        return bool(json.loads(written, parse_float=Decimal) == json.loads(printed, parse_float=Decimal))
    except ValueError:
        return None


def _same_array(written: str, printed: str) -> bool:
    ours, theirs = parse_array_literal(written), parse_array_literal(printed)
    if ours is None or theirs is None or len(ours) != len(theirs):
        return False
    for a, b in zip(ours, theirs, strict=True):
        if a is None or b is None:
            if a is not b:
                return False
        elif not same_canonical(a, b):
            return False
    return True


@dataclass(frozen=True, slots=True)
class _Range:
    lower: str | None  # None: unbounded
    upper: str | None
    lower_inclusive: bool
    upper_inclusive: bool


def _range(text: str) -> _Range | str | None:
    """A range literal's bounds; ``"empty"`` for the empty range; None if it is no range."""
    text = text.strip()
    if text.lower() == "empty":
        return "empty"
    if len(text) < 3 or text[0] not in "[(" or text[-1] not in "])":
        return None
    items = _items(text[1:-1], nested=True)
    bounds = [_bound(item, was_quoted) for item, was_quoted in items or ()]
    if len(bounds) != 2:
        return None
    return _Range(bounds[0], bounds[1], text[0] == "[", text[-1] == "]")


def _bound(text: str, was_quoted: bool) -> str | None:
    return text if was_quoted else (text.strip() or None)  # an empty unquoted bound is no bound


def _ranged(written: str, printed: str, type_name: str | None) -> bool:
    ours, theirs = _range(written), _range(printed)
    if ours is None or theirs is None:
        return False
    if isinstance(ours, str) or isinstance(theirs, str):
        return ours == theirs
    discrete = type_name is not None and type_name.lower() in DISCRETE_RANGES
    if type_name is None:  # the server's form tells a discrete range: [lower, upper)
        discrete = theirs.lower_inclusive and not theirs.upper_inclusive and _step(theirs.lower) is not None
    if discrete:
        ours = _canonical_discrete(ours)
    if ours is None or ours.lower_inclusive != theirs.lower_inclusive or ours.upper_inclusive != theirs.upper_inclusive:
        return False
    return _same_bound(ours.lower, theirs.lower) and _same_bound(ours.upper, theirs.upper)


def _same_bound(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return same_canonical(a, b)


def _step(value: str | None) -> int | date | None:
    """A discrete range's bound as a number or a date, or None."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def _canonical_discrete(r: _Range) -> _Range | None:
    """``[lower, upper)`` as the server stores a discrete range."""
    lower, upper = r.lower, r.upper
    if lower is not None and not r.lower_inclusive:
        lower = _next(lower)
    if upper is not None and r.upper_inclusive:
        upper = _next(upper)
    if (lower is None and r.lower is not None) or (upper is None and r.upper is not None):
        return None
    return _Range(lower, upper, lower is not None, False)


def _next(value: str) -> str | None:
    step = _step(value)
    if isinstance(step, date):
        return (step + timedelta(days=1)).isoformat()
    return None if step is None else str(step + 1)


def _timestamp(text: str) -> datetime | None:
    """A date or timestamp (with ``T`` or a space, seconds or not, a zone or not), else None."""
    found = _TIMESTAMP.fullmatch(text.strip())
    if found is None:
        return None
    try:
        day = date.fromisoformat(found["date"])
        fraction = int((found["f"] or "0").ljust(6, "0"))
        moment = datetime(day.year, day.month, day.day, int(found["h"] or 0), int(found["m"] or 0),
                          int(found["s"] or 0), fraction)
    except ValueError:
        return None
    zone = (found["zone"] or "").upper()
    if zone in ("Z", "UTC"):
        return moment.replace(tzinfo=timezone.utc)
    if zone:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        return moment.replace(tzinfo=timezone(sign * offset))
    return moment


def _same_instant(a: datetime, b: datetime) -> bool:
    """The same instant when both carry a zone; else the same wall-clock time (the zone the
    server read a zoneless value in is not in the log)."""
    if (a.tzinfo is None) != (b.tzinfo is None):
        return a.replace(tzinfo=None) == b.replace(tzinfo=None)
    return a == b


def _interval(text: str) -> tuple[int, int, int] | None:
    """An interval in PostgreSQL's words or clock form as (months, days, microseconds), else None:
    ``1 day 02:00:00``, ``90 minutes``, ``1 year 2 mons``, ``-1 days +02:00:00``."""
    text = text.strip().lower()
    if not text or text[0].isalpha():
        return None
    ago = text.endswith(" ago")
    text = text.removesuffix(" ago")
    totals = {"months": 0, "days": 0, "micros": 0}
    at = 0
    for found in _INTERVAL_PART.finditer(text):
        if text[at : found.start()].strip(" ,"):
            return None
        at = found.end()
        if found["clock"]:
            clock = found["clock"]
            sign = -1 if clock.startswith("-") else 1
            parts = clock.lstrip("+-").split(":")
            seconds = Decimal(parts[2]) if len(parts) > 2 else Decimal(0)
            micros = (int(parts[0]) * 3600 + int(parts[1]) * 60) * 1_000_000 + int(seconds * 1_000_000)
            totals["micros"] += sign * micros
            continue
        unit = _UNITS.get(found["unit"])
        if unit is None:
            return None
        field, scale = unit
        totals[field] += int(Decimal(found["number"]) * scale)
    if text[at:].strip() or at == 0:
        return None
    sign = -1 if ago else 1
    return sign * totals["months"], sign * totals["days"], sign * totals["micros"]


def parse_array_literal(text: str) -> list[str | None] | None:
    """``{1,2,"a, b",NULL}`` → ['1', '2', 'a, b', None]; None if it is not a one-dimensional array.

    >>> parse_array_literal('{1,2,"x, \\\\"y\\\\"",NULL}')
    ['1', '2', 'x, "y"', None]
    """
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    body = text[1:-1]
    if not body:
        return []
    items = _items(body, nested=False)
    return None if items is None else [_array_item(item, was_quoted) for item, was_quoted in items]


def _items(body: str, nested: bool) -> list[tuple[str, bool]] | None:
    """The comma-separated items of an array's or a range's text, each with whether it was
    quoted (quotes and backslashes taken off); None for a nested array when ``nested`` is False."""
    items: list[tuple[str, bool]] = []
    current: list[str] = []
    quoted = escaped = was_quoted = False
    for char in body:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted, was_quoted = not quoted, True
        elif char == "," and not quoted:
            items.append(("".join(current), was_quoted))
            current, was_quoted = [], False
        elif char == "{" and not quoted and not nested:
            return None
        else:
            current.append(char)
    items.append(("".join(current), was_quoted))
    return items


def _array_item(text: str, was_quoted: bool) -> str | None:
    if not was_quoted and text.strip().upper() == "NULL":
        return None
    return text if was_quoted else text.strip()
