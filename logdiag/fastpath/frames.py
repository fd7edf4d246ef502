"""What the record-frame readers (csvlog/jsonlog and stderr) share: the signal that a file must
be read record by record, and UTC instants from log timestamps."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from logdiag.formats.timestamps import zone_for

if TYPE_CHECKING:
    import polars as pl

#: The zone names :func:`logdiag.formats.timestamps.parse_timestamp` reads with :func:`zone_for`.
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_/+-]{0,31}|[+-][0-9][0-9](?::?[0-9][0-9])?")


class NotExact(Exception):
    """A block holds something that polars' columns would not give exactly as the readers do."""


def utc_instants(stamps: pl.Series, head: int = 23) -> pl.Series:
    """``2026-11-21 06:52:48.092 UTC`` (``head`` 23) or ``2026-11-21 06:52:48 UTC`` (19) as UTC
    instants, zone by zone as :func:`logdiag.formats.timestamps.parse_timestamp` reads them (None for a
    zone it does not know, and for no text).

    csvlog, jsonlog and stderr's ``%m`` print milliseconds, ``%t`` none; the zone's name has no
    spaces.
    """
    import polars as pl

    formats = {23: "%Y-%m-%d %H:%M:%S%.3f", 19: "%Y-%m-%d %H:%M:%S"}
    local = stamps.str.head(head).str.strptime(pl.Datetime("us"), formats[head], strict=False)
    zones = stamps.str.slice(head + 1)
    shaped = (stamps.str.slice(head, 1) == " ") & ~zones.str.contains(" ", literal=True)
    if (local.is_null() & stamps.is_not_null()).any() or not shaped.fill_null(True).all():
        raise NotExact("a timestamp of another shape")
    utc = local.dt.replace_time_zone("UTC")
    for name in zones.drop_nulls().unique().to_list():
        if not _ZONE_NAME.fullmatch(name):
            raise NotExact(f"a zone the readers would not take: {name!r}")
        zone = zone_for(name)
        key = getattr(zone, "key", None)
        if zone is None:  # the readers leave the time out rather than guess a zone
            instants = pl.repeat(None, len(stamps), dtype=pl.Datetime("us", "UTC"), eager=True)
        elif key is not None:  # a zone with daylight saving time: fold 0, the earlier offset
            instants = local.dt.replace_time_zone(key, ambiguous="earliest", non_existent="null")
            if instants.filter(zones == name).is_null().any():
                raise NotExact(f"a time that does not exist in {key}")
            instants = instants.dt.convert_time_zone("UTC")
        else:
            instants = (local - zone.utcoffset(None)).dt.replace_time_zone("UTC")
        utc = pl.select(pl.when(zones == name).then(instants).otherwise(utc)).to_series()
    return utc.alias("timestamp")
