"""The layout of an export directory: which files hold what, and how to read them back.

Each table is a dataset directory (``incidents.parquet/``, ``records.parquet/``,
``errors.parquet/``) of part files, hive-partitioned by day with ``partition_by="day"``
(``date=YYYY-MM-DD/``, in UTC). A part file is named after the export that wrote it, so that no
export overwrites another's. The state file ``_logdiag_export.json`` sits next to the tables, with
the lock that keeps exports into one directory one at a time, and ``_logdiag_tmp/``, where an export
writes its part files under temporary names until it commits them (:mod:`logdiag.export.commit`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STATE_FILE = "_logdiag_export.json"
LOCK_FILE = "_logdiag_export.lock"
#: Where an export's part files wait for its commit; readers skip it (a leading ``_`` is hidden
#: from Spark and Hive, and ``.tmp`` from every ``*.parquet`` glob).
TMP_DIR = "_logdiag_tmp"
TMP_SUFFIX = ".tmp"
TABLES = ("records", "incidents", "errors", "findings")
NO_DATE = "__HIVE_DEFAULT_PARTITION__"  # the hive convention for a NULL partition value
DAY_FORMAT = "%Y-%m-%d"  # of a partition's date=, in UTC

#: The version of the tables' columns (docs/parquet.md, "Version notes"), stored in every part
#: file's key-value metadata under :data:`SCHEMA_KEY`, with the table's name under :data:`TABLE_KEY`.
SCHEMA_VERSION = 2
SCHEMA_KEY = "logdiag.schema_version"
TABLE_KEY = "logdiag.table"
#: Version 2 renamed the columns named after SQL keywords, which no engine took unquoted
#: (DuckDB rejects ``SELECT constraint FROM ...``; PostgreSQL reads ``SELECT user`` as
#: ``current_user``): version 1's name -> version 2's (issue 29 §5).
RENAMED_IN_2 = {"at": "logged_at", "constraint": "constraint_name", "table": "table_name", "user": "user_name"}


def older_schema(state: Mapping[str, Any]) -> bool:
    """Whether an export directory's state records part files of a schema version before
    :data:`SCHEMA_VERSION` (exports that recorded none were version 1, as are the files of a
    state that predates the record of exports).

    >>> older_schema({"files": {}, "exports": {"a": {"schema_version": 2}}})
    False
    >>> older_schema({"files": {}, "exports": {"a": {}}})
    True
    """
    exports = state.get("exports") or {}
    if state.get("files") and not exports:
        return True
    return any(e.get("schema_version", 1) < SCHEMA_VERSION for e in exports.values())


def file_metadata(table: str) -> dict[str, str]:
    """The key-value metadata of a part file of ``table``.

    >>> file_metadata("incidents")["logdiag.schema_version"]
    '2'
    """
    return {SCHEMA_KEY: str(SCHEMA_VERSION), TABLE_KEY: table}


def table_directory(root: Path, table: str) -> Path:
    """The dataset directory of a table (one of :data:`TABLES`)."""
    return root / f"{table}.parquet"


def day_of(when: datetime | None) -> str:
    """The partition value of a row written at ``when``."""
    return when.astimezone(timezone.utc).strftime(DAY_FORMAT) if when else NO_DATE


def partition_directory(directory: Path, day: str | None) -> Path:
    """The folder of a table's rows of ``day``; the table's own for an unpartitioned table (None)."""
    return directory if day is None else directory / f"date={day}"


def part_name(export_id: str, number: int | None) -> str:
    """A part file's name: the export's id and the part's number, or ``empty`` for the typed,
    empty part of a table that got no row."""
    suffix = "empty" if number is None else f"{number:05d}"
    return f"part-{export_id}-{suffix}.parquet"


def dataset_glob(path: str | os.PathLike[str], table: str = "incidents") -> str:
    """The glob that reads a table of an export directory, or a Parquet file or dataset itself."""
    location = Path(path)
    if table_directory(location, table).is_dir():
        return str(table_directory(location, table) / "**" / "*.parquet")
    if location.is_dir():
        return str(location / "**" / "*.parquet")
    return str(location)
