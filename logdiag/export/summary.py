"""Summaries of exported incidents (Parquet, read with polars): what broke, where, when, by whom."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from logdiag.errors import InputError
from logdiag.export.dataset import dataset_glob

if TYPE_CHECKING:  # polars is imported when a summary is made, not with the CLI
    import polars as pl

#: The groupings a summary shows, each with the columns it groups by.
GROUPINGS: dict[str, list[str]] = {
    "by_constraint": ["constraint", "timing"],
    "by_table": ["table"],
    "by_client": ["application", "user", "database"],
    "by_host": ["host"],
    "by_hour": ["hour"],
}


@dataclass(frozen=True)
class Summary:
    """Rows of each grouping: the group's values, ``incidents``, ``first`` and ``last``."""

    total: int
    groups: dict[str, list[dict[str, Any]]]
    shapes: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: timestamps as ISO-8601."""
        def clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()} for row in rows]

        return {
            "incidents": self.total,
            **{name: clean(rows) for name, rows in self.groups.items()},
            "culprit_shapes": clean(self.shapes),
        }


def summarize(path: str | os.PathLike[str], top: int = 10) -> Summary:
    """Summarise the incidents of an export directory, or of a Parquet file or dataset.

    Args:
        path: what ``logdiag export`` wrote (or its ``incidents.parquet``).
        top: how many culprit statement shapes to keep.
    """
    import polars as pl

    glob = dataset_glob(path)
    try:
        frame = pl.scan_parquet(glob, hive_partitioning=True).collect()
    except (FileNotFoundError, pl.exceptions.ComputeError, OSError) as exc:
        raise InputError(f"no exported incidents at {path}: {str(exc).splitlines()[0]}") from None
    if "constraint" not in frame.columns:
        raise InputError(f"{path} does not hold logdiag incidents (no 'constraint' column)")
    frame = frame.with_columns(pl.col("at").dt.truncate("1h").alias("hour"))
    groups = {}
    for name, columns in GROUPINGS.items():
        grouped = (
            frame.group_by(columns)
            .agg(pl.len().alias("incidents"), pl.col("at").min().alias("first"), pl.col("at").max().alias("last"))
            .sort(["incidents", *columns], descending=[True] + [False] * len(columns), nulls_last=True)
        )
        if name == "by_hour":
            grouped = grouped.sort("hour")
        groups[name] = _rows(grouped)
    shapes = (
        frame.filter(pl.col("culprit_fingerprint").is_not_null())
        .group_by("culprit_fingerprint")
        .agg(
            pl.len().alias("incidents"),
            pl.col("culprit_statement").first().alias("example"),
            pl.col("table").drop_nulls().unique().sort().alias("tables"),
            pl.col("at").min().alias("first"),
            pl.col("at").max().alias("last"),
        )
        .sort(["incidents", "culprit_fingerprint"], descending=[True, False])
        .head(top)
    )
    return Summary(total=frame.height, groups=groups, shapes=_rows(shapes))


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return list(frame.to_dicts())
