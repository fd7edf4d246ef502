"""Parquet export: incidents, records and other errors, in batches, incrementally (polars, zstd).

Each table is a dataset directory of part files (:mod:`logdiag.export.dataset`). A new export
adds part files and never rewrites old ones; the state file next to them says how far each input
was read, so that exporting the same logs again processes only new or grown files and never
duplicates a row.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logdiag.diagnosis.incidents import Incident, OtherError
from logdiag.diagnosis.sessions import SessionTracker
from logdiag.export import dataset
from logdiag.formats import LogFormat
from logdiag.pipeline import Run, analyze
from logdiag.reader import LogReader
from logdiag.records import RECORD_FIELDS, LogRecord
from logdiag.source.paths import Input, expand_inputs, is_stream, on_disk
from logdiag.source.stats import InputStats, OnBadLine

if TYPE_CHECKING:  # polars is imported when rows are written, not with the CLI
    import polars as pl

SCHEMA_VERSION = 1
BATCH_ROWS = 100_000


def _schemas() -> dict[str, dict[str, Any]]:
    """The tables' columns and types (documented in docs/parquet.md; never renamed silently)."""
    import polars as pl

    utc = pl.Datetime("us", "UTC")
    pairs = pl.List(pl.Struct({"name": pl.Utf8, "value": pl.Utf8}))
    text, integer = pl.Utf8, pl.Int64
    records = {
        "host": text,
        "timestamp": utc, "pid": integer, "session_id": text, "session_line": integer, "vxid": text,
        "xid": integer, "user": text, "database": text, "application": text, "client": text,
        "backend_type": text, "severity": text, "sqlstate": text, "message": text, "detail": text,
        "hint": text, "context": text, "statement": text, "query": text, "command_tag": text,
        "query_id": integer, "file": text, "line": integer,
    }
    incidents = {
        "incident_id": text, "host": text, "at": utc, "sqlstate": text, "condition": text, "timing": text,
        "constraint": text, "constraint_kind": text, "table": text, "referenced_table": text,
        "key": pairs, "key_text": text, "message": text, "detail": text,
        "session_id": text, "pid": integer, "user": text, "database": text, "application": text,
        "client": text, "vxid": text, "xid": integer,
        "raised_by_statement": text, "file": text, "line": integer,
        "culprit_statement": text, "culprit_fingerprint": text, "culprit_file": text, "culprit_line": integer,
        "culprit_at": utc, "culprit_parameters": pairs, "culprit_match": text, "culprit_confidence": text,
        "culprit_reason": text, "culprit_count": integer, "related_count": integer,
        "related_roles": pl.List(pl.Utf8), "explanation": text, "hints": pl.List(pl.Utf8),
    }
    errors = {"host": text, "at": utc, "sqlstate": text, "message": text, "file": text, "line": integer}
    return {"records": records, "incidents": incidents, "errors": errors}


@dataclass
class ExportResult:
    """What an export wrote."""

    output: Path
    files_read: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=lambda: {"records": 0, "incidents": 0, "errors": 0})
    parts: list[Path] = field(default_factory=list)
    run: Run | None = None


class _TableWriter:
    """Buffers rows (or polars frames) per partition and writes a zstd Parquet part file every
    ``batch_rows`` rows."""

    def __init__(self, root: Path, name: str, schema: dict[str, Any], partition: bool, export_id: str,
                 batch_rows: int, result: ExportResult) -> None:
        self.directory = dataset.table_directory(root, name)
        self.name = name
        self.schema = schema
        self.partition = partition
        self.export_id = export_id
        self.batch_rows = batch_rows
        self.result = result
        self.buffers: dict[str, dict[str, list[Any]]] = defaultdict(lambda: {c: [] for c in schema})
        self.buffered = 0
        self.frames: dict[str, list[pl.DataFrame]] = defaultdict(list)  # by day
        self.framed = 0
        self.parts = 0

    def add(self, row: Mapping[str, Any], when: datetime | None) -> None:
        day = dataset.day_of(when) if self.partition else ""
        columns = self.buffers[day]
        for name, values in columns.items():
            values.append(row.get(name))
        self.buffered += 1
        self.result.rows[self.name] += 1
        if self.buffered >= self.batch_rows:
            self.flush()

    def add_frame(self, frame: pl.DataFrame) -> None:
        """Add a frame of rows (the table's columns, in any order); written with the next ones
        once they make ``batch_rows``."""
        import polars as pl

        frame = frame.select(pl.col(c).cast(t) for c, t in self.schema.items())
        self.result.rows[self.name] += frame.height
        self.framed += frame.height
        if not self.partition:
            self.frames[""].append(frame)
        else:
            day = pl.col("timestamp").dt.strftime(dataset.DAY_FORMAT).fill_null(dataset.NO_DATE)
            for (when,), rows in frame.with_columns(_day=day).partition_by("_day", as_dict=True).items():
                self.frames[when].append(rows.drop("_day"))
        if self.framed >= self.batch_rows:
            self.write_frames()

    def mark(self) -> tuple[int, int]:
        """Write the frames added so far, and say where the table stands, for :meth:`undo`."""
        self.write_frames()
        return len(self.result.parts), self.result.rows[self.name]

    def undo(self, mark: tuple[int, int]) -> None:
        """Forget the frames added since ``mark``: remove the part files written of them."""
        self.frames.clear()
        self.framed = 0
        parts, rows = mark
        for path in self.result.parts[parts:]:
            path.unlink()
        del self.result.parts[parts:]
        self.result.rows[self.name] = rows

    def write_frames(self) -> None:
        """Write the frames added so far as part files."""
        import polars as pl

        for day, frames in self.frames.items():
            self._write(pl.concat(frames), self._folder(day))
        self.frames.clear()
        self.framed = 0

    def _folder(self, day: str) -> Path:
        return dataset.partition_directory(self.directory, day if self.partition else None)

    def _write(self, frame: pl.DataFrame, folder: Path) -> None:
        if not frame.height:
            return
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / dataset.part_name(self.export_id, self.parts)
        self.parts += 1
        frame.write_parquet(path, compression="zstd")
        self.result.parts.append(path)

    def close(self) -> None:
        """Flush; a table that has never had a row gets one empty, typed part so it can be read."""
        self.flush()
        if not self.directory.exists():
            import polars as pl

            folder = self._folder(dataset.NO_DATE)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / dataset.part_name(self.export_id, None)
            pl.DataFrame(schema=self.schema).write_parquet(path, compression="zstd")
            self.result.parts.append(path)

    def flush(self) -> None:
        import polars as pl

        for day, columns in self.buffers.items():
            if not columns or not next(iter(columns.values())):
                continue
            self._write(pl.DataFrame(columns, schema=self.schema, strict=False), self._folder(day))
        self.buffers.clear()
        self.buffered = 0
        self.write_frames()


def _utc(when: datetime | None) -> datetime | None:
    """The same instant in UTC: polars cannot make one column of datetimes whose zones are of
    different kinds (a fixed offset and a zoneinfo zone, when log_timezone changed)."""
    return when.astimezone(timezone.utc) if when is not None else None


def _pairs(mapping: Mapping[str, str | None] | None) -> list[dict[str, str | None]] | None:
    return None if mapping is None else [{"name": k, "value": v} for k, v in mapping.items()]


def key_text(key: Mapping[str, str | None]) -> str:
    """The canonical text of a key: ``a=1, b=NULL`` (for grouping and joining)."""
    return ", ".join(f"{c}={'NULL' if v is None else v}" for c, v in key.items())


def incident_row(incident: Incident, host: str | None) -> dict[str, Any]:
    """One incident, flattened into the columns of ``incidents.parquet``."""
    from logdiag.diagnosis.sql import fingerprint

    s, top = incident.session, (incident.culprits[0] if incident.culprits else None)
    source = incident.raised_by_source
    identity = f"{host}\0{source.file}\0{source.line}\0{incident.at}"
    return {
        "incident_id": hashlib.sha1(identity.encode()).hexdigest()[:16],
        "host": host, "at": _utc(incident.at), "sqlstate": incident.sqlstate, "condition": incident.condition,
        "timing": incident.timing, "constraint": incident.constraint, "constraint_kind": incident.constraint_kind,
        "table": incident.table, "referenced_table": incident.referenced_table,
        "key": _pairs(incident.key), "key_text": key_text(incident.key),
        "message": incident.message, "detail": incident.detail,
        "session_id": s.session_id, "pid": s.pid, "user": s.user, "database": s.database,
        "application": s.application, "client": s.client, "vxid": incident.vxid, "xid": incident.xid,
        "raised_by_statement": incident.raised_by_statement, "file": source.file, "line": source.line,
        "culprit_statement": top.statement if top else None,
        "culprit_fingerprint": fingerprint(top.statement) if top else None,
        "culprit_file": top.source.file if top else None, "culprit_line": top.source.line if top else None,
        "culprit_at": _utc(top.at) if top else None, "culprit_parameters": _pairs(top.parameters) if top else None,
        "culprit_match": top.match if top else None, "culprit_confidence": top.confidence if top else None,
        "culprit_reason": top.reason if top else None,
        "culprit_count": len(incident.culprits), "related_count": len(incident.related),
        "related_roles": [r.role for r in incident.related], "explanation": incident.explanation,
        "hints": list(incident.hints),
    }


def record_row(record: LogRecord, host: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(record, name) for name in RECORD_FIELDS if name != "source"}
    row["severity"] = record.severity.value
    row["timestamp"] = _utc(record.timestamp)
    row["file"], row["line"] = record.source.file, record.source.line
    row["host"] = host
    return row


def error_row(error: OtherError, host: str | None) -> dict[str, Any]:
    return {"host": host, "at": _utc(error.at), "sqlstate": error.sqlstate, "message": error.message,
            "file": error.source.file, "line": error.source.line}


# --- incremental state --------------------------------------------------------------------

def _load_state(output: Path) -> dict[str, Any]:
    path = output / dataset.STATE_FILE
    if not path.exists():
        return {"version": SCHEMA_VERSION, "files": {}}
    try:
        state = json.loads(path.read_text())
    except ValueError:
        from logdiag.errors import InputError

        raise InputError(f"{path} is not an export state file; remove it to export everything again") from None
    return state if isinstance(state.get("files"), dict) else {"version": SCHEMA_VERSION, "files": {}}


def _save_state(output: Path, state: dict[str, Any]) -> None:
    temporary = output / (dataset.STATE_FILE + ".tmp")
    temporary.write_text(json.dumps(state, indent=1, sort_keys=True))
    temporary.replace(output / dataset.STATE_FILE)


def _identity(path: str) -> dict[str, Any]:
    stat = os.stat(on_disk(path))  # an archive's member: the archive's
    return {"inode": stat.st_ino, "size": stat.st_size, "mtime": stat.st_mtime}


def _plan(
    paths: Sequence[str], state: dict[str, Any], host: str | None,
) -> tuple[list[Input], list[str], dict[str, int], dict[str, dict[str, Any]]]:
    """Which inputs to read, which to skip (unchanged), from which line to keep rows, and what
    the files were like before they were read (a log may grow meanwhile: the next export reads
    the rest)."""
    read: list[Input] = []
    skipped: list[str] = []
    watermarks: dict[str, int] = {}
    identities: dict[str, dict[str, Any]] = {}
    for item in expand_inputs(paths):  # kept as inputs: their group (directory, glob, archive) is read as one
        path = item.name
        if is_stream(path):  # read whole every time: nothing tells what was read before
            read.append(item)
            watermarks[path] = 0
            continue
        key = f"{host or ''}\0{os.path.abspath(path)}"
        seen = state["files"].get(key)
        now = identities[path] = _identity(path)
        if seen and seen["inode"] == now["inode"] and seen["size"] == now["size"] and seen["mtime"] == now["mtime"]:
            skipped.append(path)
            continue
        grown = bool(seen) and seen["inode"] == now["inode"] and now["size"] >= seen["size"]
        read.append(item)
        watermarks[path] = seen["lines"] if grown else 0
    return read, skipped, watermarks, identities


# --- the export -----------------------------------------------------------------------------

def export(
    paths: Sequence[str],
    output: str | os.PathLike[str],
    *,
    host: str | None = None,
    partition_by: str | None = None,
    log_line_prefix: str | None = None,
    format: LogFormat | None = None,
    on_bad_line: OnBadLine = OnBadLine.SKIP,
    tracker: SessionTracker | None = None,
    batch_rows: int = BATCH_ROWS,
    fast: bool = True,
) -> ExportResult:
    """Export the logs at ``paths`` to Parquet under ``output``.

    Args:
        paths: as for :func:`logdiag.pipeline.analyze`.
        output: the export's directory (created if need be).
        host: a name for the server, stored in every row's ``host`` column.
        partition_by: ``"day"`` for hive-style ``date=YYYY-MM-DD/`` folders, or None.
        batch_rows: rows buffered before a part file is written (bounds memory).
        fast: analyse files with the pre-filter and have polars read their records again for
            ``records.parquet`` (csvlog, jsonlog and stderr); off, every record passes through the analysis.

    Returns:
        What was written; the run over the files read is ``result.run``.
    """
    if partition_by not in (None, "day"):
        from logdiag.errors import ConfigError

        raise ConfigError(f"--partition-by takes 'day', not {partition_by!r}")
    root = Path(output)
    root.mkdir(parents=True, exist_ok=True)
    state = _load_state(root)
    read, skipped, watermarks, identities = _plan(paths, state, host)
    result = ExportResult(root, [item.name for item in read], skipped)
    if not read:
        return result
    export_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]  # unique: parts are never overwritten
    schemas = _schemas()
    tables = {
        name: _TableWriter(root, name, schemas[name], partition_by == "day", export_id, batch_rows, result)
        for name in schemas
    }

    def keep(file: str, line: int) -> bool:
        return line > watermarks.get(file, 0)

    def sink(record: LogRecord) -> None:
        if keep(record.source.file, record.source.line):
            tables["records"].add(record_row(record, host), record.timestamp)

    # records.parquet needs every record. A file can be read twice: analysed with the pre-filter,
    # then its records read again (by polars if it can); standard input or a FIFO passes through
    # once (opened again, a FIFO would wait for a writer forever).
    every_record = not fast or any(is_stream(name) for name in result.files_read)
    run = analyze(read, log_line_prefix=log_line_prefix, format=format, on_bad_line=on_bad_line,
                  tracker=tracker, fast=not every_record, partial_groups=True)
    if every_record:
        run.record_sink = sink
    for incident in run.incidents():
        if keep(incident.raised_by_source.file, incident.raised_by_source.line):
            tables["incidents"].add(incident_row(incident, host), incident.at)
        _drain_errors(run, tables["errors"], host, keep)
    _drain_errors(run, tables["errors"], host, keep)
    if not every_record:
        for stats in run.inputs:
            _export_records(stats, tables["records"], host, watermarks.get(stats.file, 0))
    for table in tables.values():
        table.close()
    for stats in run.inputs:
        if not is_stream(stats.file):
            key = f"{host or ''}\0{os.path.abspath(stats.file)}"
            state["files"][key] = {**identities[stats.file], "lines": stats.lines, "host": host}
    for stray in (s for s in run.reader.skipped_files if not s.unread):  # no log: left out next time too
        state["files"][f"{host or ''}\0{os.path.abspath(stray.name)}"] = {**identities[stray.name], "lines": 0, "host": host}
    _save_state(root, state)
    result.run = run
    return result


def _export_records(stats: InputStats, table: _TableWriter, host: str | None, watermark: int) -> None:
    """One analysed file's records after line ``watermark``: read by polars if the analysis
    found clean csvlog, jsonlog or stderr, else (or if polars' reading turns out not to be
    exact) record by record."""
    import polars as pl

    from logdiag.fastpath.frames import NotExact
    from logdiag.fastpath.readahead import in_thread
    from logdiag.fastpath.record_frames import FRAME_FORMATS, record_frames

    fmt = LogFormat(stats.format) if stats.format else None
    clean = not (stats.skipped_total or stats.blank or stats.recoded or stats.error)
    if fmt is not None and fmt in FRAME_FORMATS and clean:  # the formats polars reads as frames
        mark, rows = table.mark(), 0
        frames = record_frames(stats.file, fmt, lines=stats.lines, log_line_prefix=stats.log_line_prefix)
        try:
            # A thread reads the next block while this one is written (polars releases the GIL).
            for frame in in_thread(frames, depth=1):
                rows += frame.height
                table.add_frame(frame.filter(pl.col("line") > watermark).with_columns(host=pl.lit(host, pl.Utf8)))
            if rows == stats.records:
                return
        except NotExact:
            pass
        table.undo(mark)
    reader = LogReader([stats.file], format=fmt, log_line_prefix=stats.log_line_prefix)
    for record in reader:
        if record.source.line > stats.lines:  # written since the analysis: the next export's
            break
        if record.source.line > watermark:
            table.add(record_row(record, host), record.timestamp)


def _drain_errors(run: Run, table: _TableWriter, host: str | None, keep: Callable[[str, int], bool]) -> None:
    """Move the other errors found so far into the table (memory stays flat)."""
    for error in run.take_other_errors():
        if keep(error.source.file, error.source.line):
            table.add(error_row(error, host), error.at)
