"""Summaries of exported incidents (Parquet, read with polars): what broke, where, when, by whom."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logdiag.errors import InputError
from logdiag.export import dataset
from logdiag.export.commit import load_state, uncommitted

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
    """Rows of each grouping: the group's values, ``incidents``, ``first`` and ``last``; and
    ``notes`` for the user on what was read (one line each: temporary part files ignored)."""

    total: int
    groups: dict[str, list[dict[str, Any]]]
    shapes: list[dict[str, Any]]
    notes: tuple[str, ...] = ()

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

    files, notes = _incident_files(Path(path))
    for file in files:
        _check_part(file, path)
    try:
        frame = pl.concat([pl.scan_parquet(f) for f in files], how="diagonal_relaxed").collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"cannot read the incidents at {path}: {_first_line(exc)}") from None
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
    return Summary(total=frame.height, groups=groups, shapes=_rows(shapes), notes=notes)


def _incident_files(location: Path) -> tuple[list[str], tuple[str, ...]]:
    """The incidents' part files of an export directory (those its state file records as committed,
    under their temporary names if an interrupted export left them so; never another temporary
    file), or the Parquet files of a dataset or the file given; and what the user should know."""
    table = dataset.table_directory(location, "incidents")
    if not (location / dataset.STATE_FILE).exists() and not table.is_dir():
        files = sorted(glob.glob(dataset.dataset_glob(location), recursive=True))
        if not files and any(c in str(location) for c in "*?["):
            raise InputError(f"no exported incidents at {location}: no Parquet file matches it")
        if not files and not location.exists():
            raise InputError(f"no such file or directory: {location} (name the directory logdiag export -o wrote)")
        if not files:
            raise InputError(
                f"no exported incidents at {location}: no Parquet file there "
                f"(write them with: logdiag export LOG... -o {location})"
            )
        return files, ()
    state = load_state(location) if (location / dataset.STATE_FILE).exists() else None
    pending, ignored = uncommitted(location, state)
    files = sorted(glob.glob(str(table / "**" / "*.parquet"), recursive=True))
    files += [str(p) for p in pending if p.is_relative_to(location / dataset.TMP_DIR) and "incidents.parquet" in p.parts]
    notes = []
    if ignored:
        notes.append(f"{location}: {ignored} temporary part files of an unfinished export ignored (an export "
                     "running now, or one interrupted: the next export removes them)")
    if pending:
        notes.append(f"{location}: read the committed part files an interrupted export left under temporary "
                     "names (the next export moves them into place)")
    if not files:
        raise InputError(f"no exported incidents at {location}: no committed part file in {table}")
    return files, tuple(notes)


def _check_part(file: str, path: str | os.PathLike[str]) -> None:
    """A part file must be Parquet with the incidents' columns: another file there is an error
    naming it, not a polars failure."""
    import polars as pl

    # A file or dataset named by itself (x.parquet, records.parquet) is not one to move things out of:
    # name what summary reads instead.
    fix = (
        "name the directory logdiag export -o wrote, or its incidents.parquet"
        if Path(file) == Path(path) or Path(path).suffix == ".parquet" else f"move it out of {path}"
    )
    try:
        columns = pl.read_parquet_schema(file)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{file} is not a Parquet file ({_first_line(exc)}): {fix}") from None
    if "constraint" not in columns or "incident_id" not in columns:
        raise InputError(f"{file} does not hold logdiag incidents (no 'constraint' column): {fix}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return list(frame.to_dicts())
