"""Summaries of an export (Parquet, read with polars): what broke, where, when, by whom; with the
other errors, and per constraint its top keys and culprit statement shapes."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logdiag.errors import InputError
from logdiag.export import dataset
from logdiag.export.commit import load_state, uncommitted

if TYPE_CHECKING:  # polars is imported when a summary is made, not with the CLI
    import polars as pl

#: The groupings a summary shows, each with the columns it groups by.
GROUPINGS: dict[str, list[str]] = {
    "by_constraint": ["constraint_name", "timing"],
    "by_table": ["table_name"],
    "by_client": ["application", "user_name", "database"],
    "by_host": ["host"],
    "by_hour": ["hour"],
}
#: How many keys and culprit shapes each constraint shows.
PER_CONSTRAINT = 3


@dataclass(frozen=True)
class Summary:
    """What an export holds.

    Attributes:
        total: how many incidents.
        groups: rows of each grouping of :data:`GROUPINGS`: the group's values, ``incidents``,
            ``first`` and ``last``.
        shapes: the top culprit statement shapes: ``culprit_fingerprint``, ``shape`` (the
            statement with its constants as ``$1`` …), ``example``, ``incidents``, ``tables``,
            ``first``, ``last``.
        constraints: per constraint (most incidents first): ``constraint_name``, ``incidents``,
            ``keys`` (the top keys: ``key_text``, ``incidents``) and ``shapes`` (its top culprit
            shapes: ``shape``, ``incidents``).
        errors_total: how many other errors (not constraint violations).
        errors: the other errors by SQLSTATE: ``sqlstate``, ``errors``, ``example`` (a message),
            ``first``, ``last``.
        notes: for the user on what was read (one line each: temporary part files ignored).
    """

    total: int
    groups: dict[str, list[dict[str, Any]]]
    shapes: list[dict[str, Any]]
    constraints: list[dict[str, Any]] = field(default_factory=list)
    errors_total: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: timestamps as ISO-8601."""
        def clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()} for row in rows]

        return {
            "incidents": self.total,
            **{name: clean(rows) for name, rows in self.groups.items()},
            "culprit_shapes": clean(self.shapes),
            "by_constraint_detail": self.constraints,
            "other_errors": self.errors_total,
            "other_errors_by_sqlstate": clean(self.errors),
        }


def summarize(path: str | os.PathLike[str], top: int = 10) -> Summary:
    """Summarise the incidents (and other errors) of an export directory, or of a Parquet file or
    dataset of incidents.

    Datasets of schema version 1 (columns ``at``, ``constraint``, ``table``, ``user``) are read
    too, part file by part file, so a directory that exports of both versions wrote into reads
    whole (:data:`logdiag.export.dataset.RENAMED_IN_2`).

    Args:
        path: what ``logdiag export`` wrote (or its ``incidents.parquet``).
        top: how many culprit statement shapes and error SQLSTATEs to keep.
    """
    import polars as pl

    files, notes = _table_files(Path(path), "incidents")
    for file in files:
        _check_part(file, path)
    frame = _read(files, path).with_columns(pl.col("logged_at").dt.truncate("1h").alias("hour"))
    groups = {}
    for name, columns in GROUPINGS.items():
        grouped = (
            frame.group_by(columns)
            .agg(pl.len().alias("incidents"), *_span())
            .sort(["incidents", *columns], descending=[True] + [False] * len(columns), nulls_last=True)
        )
        if name == "by_hour":
            grouped = grouped.sort("hour")
        groups[name] = _rows(grouped)
    frame = frame.join(_shapes(frame), on="culprit_fingerprint", how="left")
    shapes = (
        frame.filter(pl.col("culprit_fingerprint").is_not_null())
        .group_by("culprit_fingerprint")
        .agg(
            pl.len().alias("incidents"),
            pl.col("shape").first(),
            pl.col("culprit_statement").first().alias("example"),
            pl.col("table_name").drop_nulls().unique().sort().alias("tables"),
            *_span(),
        )
        .sort(["incidents", "culprit_fingerprint"], descending=[True, False])
        .head(top)
    )
    errors_total, errors = _errors(Path(path), top)
    return Summary(total=frame.height, groups=groups, shapes=_rows(shapes), constraints=_per_constraint(frame),
                   errors_total=errors_total, errors=errors, notes=notes)


def _span() -> list[pl.Expr]:
    import polars as pl

    return [pl.col("logged_at").min().alias("first"), pl.col("logged_at").max().alias("last")]


def _shapes(frame: pl.DataFrame) -> pl.DataFrame:
    """The shape of each culprit fingerprint: the ``culprit_shape`` column, or for part files of
    schema version 1, which lack it, pglast's normalisation of an example, computed once per
    fingerprint, not per row (a summary is over many rows, most of them of a few shapes)."""
    import polars as pl

    from logdiag.diagnosis.sql import shape

    stored = pl.col("culprit_shape") if "culprit_shape" in frame.columns else pl.lit(None, pl.Utf8)
    examples = (
        frame.filter(pl.col("culprit_fingerprint").is_not_null())
        .group_by("culprit_fingerprint")
        .agg(stored.drop_nulls().first().alias("stored"), pl.col("culprit_statement").first())
    )
    return pl.DataFrame(
        {"culprit_fingerprint": examples["culprit_fingerprint"],
         "shape": [known if known is not None else shape(example) if example is not None else None
                   for known, example in zip(examples["stored"], examples["culprit_statement"], strict=True)]},
        schema={"culprit_fingerprint": pl.Utf8, "shape": pl.Utf8},
    )


def _per_constraint(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Each constraint's count, top keys and top culprit shapes (issue 29 §5)."""
    import polars as pl

    def top_of(column: str) -> pl.DataFrame:
        return (
            frame.filter(pl.col(column).is_not_null())
            .group_by("constraint_name", column).agg(pl.len().alias("incidents"))
            .sort(["incidents", column], descending=[True, False])
            .group_by("constraint_name", maintain_order=True).head(PER_CONSTRAINT)
        )

    keys, shapes = top_of("key_text"), top_of("shape")
    counts = (
        frame.group_by("constraint_name").agg(pl.len().alias("incidents"))
        .sort(["incidents", "constraint_name"], descending=[True, False], nulls_last=True)
    )
    out = []
    for name, count in counts.iter_rows():
        out.append({
            "constraint_name": name, "incidents": count,
            "keys": _rows(keys.filter(pl.col("constraint_name").eq_missing(name)).drop("constraint_name")),
            "shapes": _rows(shapes.filter(pl.col("constraint_name").eq_missing(name)).drop("constraint_name")),
        })
    return out


def _errors(location: Path, top: int) -> tuple[int, list[dict[str, Any]]]:
    """The other errors of an export directory by SQLSTATE (none for a dataset of incidents)."""
    import polars as pl

    if not dataset.table_directory(location, "errors").is_dir():
        return 0, []
    files, _ = _table_files(location, "errors")
    frame = _read(files, location)
    grouped = (
        frame.group_by("sqlstate")
        .agg(pl.len().alias("errors"), pl.col("message").first().alias("example"), *_span())
        .sort(["errors", "sqlstate"], descending=[True, False], nulls_last=True)
        .head(top)
    )
    return frame.height, _rows(grouped)


def _read(files: list[str], path: str | os.PathLike[str]) -> pl.DataFrame:
    """The part files as one frame, each one's version 1 columns renamed to version 2's."""
    import polars as pl

    try:
        frames = []
        for file in files:
            scan = pl.scan_parquet(file)
            names = scan.collect_schema().names()
            old = {o: n for o, n in dataset.RENAMED_IN_2.items() if o in names and n not in names}
            frames.append(scan.rename(old))
        return pl.concat(frames, how="diagonal_relaxed").collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"cannot read the export at {path}: {_first_line(exc)}") from None


def _table_files(location: Path, name: str) -> tuple[list[str], tuple[str, ...]]:
    """A table's part files of an export directory (those its state file records as committed,
    under their temporary names if an interrupted export left them so; never another temporary
    file), or the Parquet files of a dataset or the file given; and what the user should know."""
    table = dataset.table_directory(location, name)
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
    files += [str(p) for p in pending if p.is_relative_to(location / dataset.TMP_DIR) and table.name in p.parts]
    notes = []
    if ignored:
        notes.append(f"{location}: {ignored} temporary part files of an unfinished export ignored (an export "
                     "running now, or one interrupted: the next export removes them)")
    if pending:
        notes.append(f"{location}: read the committed part files an interrupted export left under temporary "
                     "names (the next export moves them into place)")
    if not files:
        raise InputError(f"no exported {name} at {location}: no committed part file in {table}")
    return files, tuple(notes)


def _check_part(file: str, path: str | os.PathLike[str]) -> None:
    """A part file must be Parquet with the incidents' columns (of any schema version): another
    file there is an error naming it, not a polars failure."""
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
    if not ({"constraint_name", "constraint"} & set(columns)) or "incident_id" not in columns:
        raise InputError(f"{file} does not hold logdiag incidents (no 'constraint_name' column): {fix}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return list(frame.to_dicts())
