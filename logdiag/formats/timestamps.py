"""Parse the timestamps PostgreSQL writes (``%t``, ``%m``, ``%n``, csv, json) into aware datetimes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache

from logdiag.formats.tzabbrevs import FIXED_OFFSETS, ZONE_ABBREVIATIONS

_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d\d-\d\d)[ T](?P<time>\d\d:\d\d:\d\d)(?P<frac>\.\d{1,6})?"
    r"(?:\s*(?P<zone>[A-Za-z][A-Za-z0-9_/+-]{0,31}|[+-]\d\d(?::?\d\d)?))?$"
)
_NUMERIC_ZONE = re.compile(r"(?:UTC|GMT)?(?P<sign>[+-])(?P<hours>\d\d?)(?::?(?P<minutes>\d\d))?$")


@lru_cache(maxsize=256)
def zone_for(name: str) -> tzinfo | None:
    """The tzinfo for a zone as PostgreSQL prints it (``UTC``, ``CEST``, ``+03``, ``-0530``), or None.

    >>> zone_for("CEST")
    datetime.timezone(datetime.timedelta(seconds=7200))
    >>> zone_for("+0530")
    datetime.timezone(datetime.timedelta(seconds=19800))
    """
    if name in FIXED_OFFSETS:
        return timezone(timedelta(seconds=FIXED_OFFSETS[name]))
    numeric = _NUMERIC_ZONE.match(name)
    if numeric:
        sign = -1 if numeric["sign"] == "-" else 1
        minutes = int(numeric["hours"]) * 60 + int(numeric["minutes"] or 0)
        return timezone(sign * timedelta(minutes=minutes))
    zone_name = ZONE_ABBREVIATIONS.get(name, name if "/" in name else None)
    if zone_name is None:
        return None
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(zone_name)
    except (ImportError, ValueError, OSError):  # no tz database on this machine
        return None


@lru_cache(maxsize=64)
def _zone_or_none(name: str) -> tzinfo | None:
    return zone_for(name)


def parse_timestamp(text: str | None) -> datetime | None:
    """Parse ``2026-11-21 06:52:48.092 UTC`` (or ISO-8601 with an offset) into an aware datetime.

    Returns None when the text is not a timestamp or its zone is unknown: logdiag never assumes a
    zone the server did not print.

    >>> parse_timestamp("2021-01-22 10:03:22.785 CET").isoformat()
    '2021-01-22T10:03:22.785000+01:00'
    >>> parse_timestamp("2021-01-22 10:03:22") is None
    True
    """
    if not text:
        return None
    # The common shape, "2026-11-21 06:52:48.092 UTC", without a regular expression: every
    # record of a big log has one.
    head, _, zone_name = text.rpartition(" ")
    if len(head) in (19, 23) and head[4] == "-" and head[10] == " " and zone_name[:1].isalpha():
        zone = _zone_or_none(zone_name)
        if zone is not None:
            try:
                return datetime.fromisoformat(head).replace(tzinfo=zone)
            except ValueError:
                pass
    match = _TIMESTAMP.match(text.strip())
    if not match or not match["zone"]:
        return fromisoformat(text)
    zone = zone_for(match["zone"])
    if zone is None:
        return None
    frac = match["frac"] or ""
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    try:
        naive = datetime.fromisoformat(f"{match['date']} {match['time']}")
    except ValueError:
        return None
    return naive.replace(microsecond=micro, tzinfo=zone)


def fromisoformat(text: str) -> datetime | None:
    """An ISO-8601 timestamp that carries its offset (``Z`` allowed), else None."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.10's fromisoformat accepts at most 6 fractional digits (Cloud Logging writes 9).
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def parse_epoch(text: str) -> datetime | None:
    """``%n``: seconds since the epoch with milliseconds, e.g. ``1763707968.092``."""
    try:
        return datetime.fromtimestamp(float(text), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
