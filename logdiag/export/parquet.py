"""Parquet export: incidents, findings, records and other errors, in batches, incrementally (polars, zstd).

Each table is a dataset directory of part files (:mod:`logdiag.export.dataset`). A new export
adds part files and never rewrites old ones; the state file next to them says how far each input
was read, so that exporting the same logs again processes only new or grown files and never
duplicates a row. Part files become visible only when the state records them, and one export at a
time writes into a directory (:mod:`logdiag.export.commit`).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logdiag.diagnosis.incidents import Finding, Incident, OtherError, SessionInfo
from logdiag.diagnosis.sessions import SessionTracker
from logdiag.export import dataset
from logdiag.export.commit import ExportError, Staging, exclusive, finish, load_state, recover, writing
from logdiag.formats import LogFormat
from logdiag.pipeline import Run, analyze
from logdiag.reader import LogReader
from logdiag.records import RECORD_FIELDS, LogRecord, Source
from logdiag.source.paths import Input, expand_inputs, is_stream, on_disk
from logdiag.source.stats import InputStats, OnBadLine, SkippedFile

if TYPE_CHECKING:  # polars is imported when rows are written, not with the CLI
    import polars as pl

BATCH_ROWS = 100_000


def _schemas() -> dict[str, dict[str, Any]]:
    """The tables' columns and types (documented in docs/parquet.md; never renamed silently).

    No column is named after an SQL keyword that an engine rejects or reads otherwise unquoted
    (issue 29 §5: ``constraint``, ``table``, ``user``, ``at`` were renamed in schema version 2,
    :data:`logdiag.export.dataset.RENAMED_IN_2`).
    """
    import polars as pl

    utc = pl.Datetime("us", "UTC")
    pairs = pl.List(pl.Struct({"name": pl.Utf8, "value": pl.Utf8}))
    text, integer = pl.Utf8, pl.Int64
    records = {
        "host": text,
        "timestamp": utc, "pid": integer, "session_id": text, "session_line": integer, "vxid": text,
        "xid": integer, "user_name": text, "database": text, "application": text, "client": text,
        "backend_type": text, "severity": text, "sqlstate": text, "message": text, "detail": text,
        "hint": text, "context": text, "statement": text, "query": text, "command_tag": text,
        "query_id": integer, "file": text, "line": integer,
    }
    incidents = {
        "incident_id": text, "host": text, "logged_at": utc, "sqlstate": text, "condition": text, "timing": text,
        "constraint_name": text, "constraint_kind": text, "table_name": text, "referenced_table": text,
        "key": pairs, "key_text": text, "message": text, "detail": text,
        "session_id": text, "pid": integer, "user_name": text, "database": text, "application": text,
        "client": text, "vxid": text, "xid": integer,
        "raised_by_statement": text, "file": text, "line": integer,
        "culprit_statement": text, "culprit_fingerprint": text, "culprit_shape": text,
        "culprit_file": text, "culprit_line": integer,
        "culprit_at": utc, "culprit_parameters": pairs, "culprit_match": text, "culprit_confidence": text,
        "culprit_reason": text, "culprit_count": integer, "related_count": integer,
        "related_roles": pl.List(pl.Utf8), "explanation": text, "hints": pl.List(pl.Utf8),
    }
    errors = {
        "host": text, "logged_at": utc, "sqlstate": text, "sqlstate_inferred": pl.Boolean, "message": text,
        "detail": text, "hint": text, "context": text, "statement": text,
        "session_id": text, "pid": integer, "user_name": text, "database": text, "application": text,
        "client": text, "vxid": text, "xid": integer, "file": text, "line": integer,
    }
    findings = {
        "finding_id": text, "host": text, "logged_at": utc, "kind": text, "severity": text, "sqlstate": text,
        "sqlstate_inferred": pl.Boolean, "constraint_name": text, "table_name": text,
        "session_id": text, "pid": integer, "user_name": text, "database": text, "application": text,
        "client": text, "vxid": text, "xid": integer, "statement": text, "file": text, "line": integer,
        "explanation": text, "hints": pl.List(pl.Utf8), "related_count": integer,
        "related_roles": pl.List(pl.Utf8),
    }
    return {"records": records, "incidents": incidents, "errors": errors, "findings": findings}


@dataclass
class ExportResult:
    """What an export wrote."""

    output: Path
    files_read: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(dataset.TABLES, 0))
    parts: list[Path] = field(default_factory=list)
    run: Run | None = None


class _TableWriter:
    """Buffers rows (or polars frames) per partition and writes a zstd Parquet part file every
    ``batch_rows`` rows."""

    def __init__(self, staging: Staging, name: str, schema: dict[str, Any], partition: bool,
                 batch_rows: int, result: ExportResult) -> None:
        self.directory = dataset.table_directory(staging.root, name)
        self.name = name
        self.schema = schema
        self.partition = partition
        self.staging = staging
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
        self.staging.discard(parts)  # the export's parts, of every table, in the order written
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
        path = folder / dataset.part_name(self.staging.export_id, self.parts)
        self.parts += 1
        self.staging.write(frame, path, dataset.file_metadata(self.name))
        self.result.parts.append(path)

    def close(self) -> None:
        """Flush; a table that has never had a row gets one empty, typed part so it can be read."""
        self.flush()
        # A folder may exist with no part in it: made for a commit that a full disk or a signal stopped.
        if not any(p.is_relative_to(self.directory) for p in self.staging.parts) and not any(
            self.directory.glob("**/*.parquet")
        ):
            import polars as pl

            path = self._folder(dataset.NO_DATE) / dataset.part_name(self.staging.export_id, None)
            self.staging.write(pl.DataFrame(schema=self.schema), path, dataset.file_metadata(self.name))
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


def row_id(host: str | None, source: Source, at: datetime | None, reading: str) -> str:
    """An incident's or finding's id: a hash of host, file, line and time, and of the reading of
    the input when it is not the first reading of a file (see :func:`_plan`): unique in a dataset,
    whatever the input, and the same for the same file exported into another directory."""
    identity = f"{host}\0{source.file}\0{source.line}\0{at}" + (f"\0{reading}" if reading else "")
    return hashlib.sha1(identity.encode()).hexdigest()[:16]


def incident_row(incident: Incident, host: str | None, reading: str = "") -> dict[str, Any]:
    """One incident, flattened into the columns of ``incidents.parquet``."""
    from logdiag.diagnosis.sql import fingerprint, shape

    s, top = incident.session, (incident.culprits[0] if incident.culprits else None)
    source = incident.raised_by_source
    return {
        "incident_id": row_id(host, source, incident.at, reading),
        "host": host, "logged_at": _utc(incident.at), "sqlstate": incident.sqlstate,
        "condition": incident.condition, "timing": incident.timing, "constraint_name": incident.constraint,
        "constraint_kind": incident.constraint_kind, "table_name": incident.table,
        "referenced_table": incident.referenced_table,
        "key": _pairs(incident.key), "key_text": key_text(incident.key),
        "message": incident.message, "detail": incident.detail,
        **_session_columns(s), "vxid": incident.vxid, "xid": incident.xid,
        "raised_by_statement": incident.raised_by_statement, "file": source.file, "line": source.line,
        "culprit_statement": top.statement if top else None,
        "culprit_fingerprint": fingerprint(top.statement) if top else None,
        "culprit_shape": shape(top.statement) if top else None,
        "culprit_file": top.source.file if top else None, "culprit_line": top.source.line if top else None,
        "culprit_at": _utc(top.at) if top else None, "culprit_parameters": _pairs(top.parameters) if top else None,
        "culprit_match": top.match if top else None, "culprit_confidence": top.confidence if top else None,
        "culprit_reason": top.reason if top else None,
        "culprit_count": len(incident.culprits), "related_count": len(incident.related),
        "related_roles": [r.role for r in incident.related], "explanation": incident.explanation,
        "hints": list(incident.hints),
    }


def finding_row(finding: Finding, host: str | None, reading: str = "") -> dict[str, Any]:
    """One finding (a SET CONSTRAINTS pitfall, issue 26), flattened into ``findings.parquet``."""
    s = finding.session
    return {
        "finding_id": row_id(host, finding.source, finding.at, reading),
        "host": host, "logged_at": _utc(finding.at), "kind": finding.kind.value,
        "severity": finding.severity.value, "sqlstate": finding.sqlstate,
        "sqlstate_inferred": finding.sqlstate_inferred, "constraint_name": finding.constraint,
        "table_name": finding.table,
        **_session_columns(s), "vxid": finding.vxid, "xid": finding.xid,
        "statement": finding.statement, "file": finding.source.file, "line": finding.source.line,
        "explanation": finding.explanation, "hints": list(finding.hints),
        "related_count": len(finding.related), "related_roles": [r.role.value for r in finding.related],
    }


#: A record's fields whose column is named otherwise (not an SQL keyword, schema version 2).
RECORD_COLUMNS = {"user": "user_name"}


def _session_columns(session: SessionInfo | None) -> dict[str, Any]:
    """The columns of who ran into it, the same in incidents, findings and other errors."""
    s = session or SessionInfo(None, None, None, None, None, None)
    return {"session_id": s.session_id, "pid": s.pid, "user_name": s.user, "database": s.database,
            "application": s.application, "client": s.client}


def record_row(record: LogRecord, host: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        RECORD_COLUMNS.get(name, name): getattr(record, name) for name in RECORD_FIELDS if name != "source"
    }
    row["severity"] = record.severity.value
    row["timestamp"] = _utc(record.timestamp)
    row["file"], row["line"] = record.source.file, record.source.line
    row["host"] = host
    return row


def error_row(error: OtherError, host: str | None) -> dict[str, Any]:
    """One other error, with its session and its DETAIL, HINT, CONTEXT and STATEMENT (issue 29 §5)."""
    return {
        "host": host, "logged_at": _utc(error.at), "sqlstate": error.sqlstate,
        "sqlstate_inferred": error.sqlstate_inferred, "message": error.message, "detail": error.detail,
        "hint": error.hint, "context": error.context, "statement": error.statement,
        **_session_columns(error.session), "vxid": error.vxid, "xid": error.xid,
        "file": error.source.file, "line": error.source.line,
    }


# --- incremental state --------------------------------------------------------------------

def _identity(path: str) -> dict[str, Any]:
    stat = os.stat(on_disk(path))  # an archive's member: the archive's
    return {"inode": stat.st_ino, "size": stat.st_size, "mtime": stat.st_mtime}


@dataclass
class _Plan:
    """What an export reads.

    Attributes:
        read: the inputs to read.
        skipped: the files unchanged since the last export.
        watermarks: by input, the lines already exported (rows are kept after them).
        identities: by file, what it was like before it was read (a log may grow meanwhile: the
            next export reads the rest).
        readings: by input, what makes its rows' ids unique: ``""`` for the first reading of a
            file (and its growth), the export's id for standard input, a FIFO, or a file read from
            its start again (replaced or truncated: its lines are numbered from 1 again).
    """

    read: list[Input] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    watermarks: dict[str, int] = field(default_factory=dict)
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)
    readings: dict[str, str] = field(default_factory=dict)
    streams: list[SkippedFile] = field(default_factory=list)  # FIFOs of a directory or glob: left out


def _state_key(host: str | None, path: str) -> str:
    return f"{host or ''}\0{os.path.abspath(path)}"


def _plan(paths: Sequence[str], state: dict[str, Any], host: str | None, export_id: str) -> _Plan:
    """Which inputs to read, which to skip (unchanged), from which line to keep rows."""
    plan = _Plan()
    for item in expand_inputs(paths, plan.streams):  # kept as inputs: their group (directory, glob, archive) is read as one
        path = item.name
        if is_stream(path):  # read whole every time: nothing tells what was read before
            plan.read.append(item)
            plan.watermarks[path], plan.readings[path] = 0, export_id
            continue
        seen = state["files"].get(_state_key(host, path))
        now = plan.identities[path] = _identity(path)
        if seen and all(seen.get(k) == now[k] for k in ("inode", "size", "mtime")):
            plan.skipped.append(path)
            continue
        grown = bool(seen) and seen["inode"] == now["inode"] and now["size"] >= seen["size"]
        plan.read.append(item)
        plan.watermarks[path] = seen["lines"] if grown else 0
        plan.readings[path] = seen.get("reading", "") if grown else (export_id if seen else "")
    return plan


# --- the export -----------------------------------------------------------------------------

def _ignore(note: str) -> None:
    """The default of ``notify``: the library says nothing."""


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
    notify: Callable[[str], None] = _ignore,
) -> ExportResult:
    """Export the logs at ``paths`` to Parquet under ``output``.

    One export at a time writes into a directory: another one waits for the lock. What an export
    writes becomes visible all at once, when the state file records it; an export that is
    interrupted (a signal, a full or read-only disk) leaves nothing of itself visible, and the
    next export reads its inputs again (:mod:`logdiag.export.commit`).

    Args:
        paths: as for :func:`logdiag.pipeline.analyze`.
        output: the export's directory (created if need be).
        host: a name for the server, stored in every row's ``host`` column.
        partition_by: ``"day"`` for hive-style ``date=YYYY-MM-DD/`` folders, or None.
        batch_rows: rows buffered before a part file is written (bounds memory).
        fast: analyse files with the pre-filter and have polars read their records again for
            ``records.parquet`` (csvlog, jsonlog and stderr); off, every record passes through the analysis.
        notify: told, in one line each, what the user should know: waiting for another export,
            what was finished or removed of an interrupted one, what an interruption kept.

    Returns:
        What was written; the run over the files read is ``result.run``.

    Raises:
        ExportError: the directory cannot be written (nothing of this export is then visible).
    """
    if partition_by not in (None, "day"):
        from logdiag.errors import ConfigError

        raise ConfigError(f"--partition-by takes 'day', not {partition_by!r}")
    root = Path(output)
    with writing(root):
        root.mkdir(parents=True, exist_ok=True)
    with exclusive(root, notify):
        state = load_state(root)
        for note in recover(root, state):
            notify(note)
        if dataset.older_schema(state):  # issue 29 §5: the columns named after SQL keywords were renamed
            old = ", ".join(dataset.RENAMED_IN_2)
            notify(f"{root} holds part files of Parquet schema version 1 (columns {old}); this export writes "
                   f"version {dataset.SCHEMA_VERSION} ({', '.join(dataset.RENAMED_IN_2.values())}) next to them: "
                   "logdiag summary reads both; for other readers see the version notes of docs/parquet.md")
        export_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]  # unique: parts are never overwritten
        plan = _plan(paths, state, host, export_id)
        result = ExportResult(root, [item.name for item in plan.read], plan.skipped)
        if not plan.read:
            return result
        staging = Staging(root, export_id)
        try:
            result.run = _write(plan, staging, state, result, host=host, partition_by=partition_by,
                                log_line_prefix=log_line_prefix, format=format, on_bad_line=on_bad_line,
                                tracker=tracker, batch_rows=batch_rows, fast=fast)
        except BaseException as exc:
            _stopped(staging, result, exc, notify)
            raise
    return result


def _stopped(staging: Staging, result: ExportResult, exc: BaseException, notify: Callable[[str], None]) -> None:
    """An export stopped by ``exc``: finish its commit if the state records it, else remove what
    it wrote; and say what was kept."""
    root = staging.root
    if staging.committed():
        finish(root, load_state(root))
        if isinstance(exc, KeyboardInterrupt):
            notify(f"export interrupted after its commit: all of it was kept in {root} "
                   f"({', '.join(f'{n} {t}' for t, n in result.rows.items())})")
        return
    removed = staging.abort()
    if isinstance(exc, ExportError):
        raise ExportError(f"{exc}; nothing of this export was kept, {root} is as the last export left it") from None
    if isinstance(exc, KeyboardInterrupt):
        notify(f"export interrupted: nothing of it was kept ({removed} part files written so far were removed); "
               f"{root} holds what earlier exports committed; run the same export again to finish the job")


def _write(
    plan: _Plan, staging: Staging, state: dict[str, Any], result: ExportResult, *, host: str | None,
    partition_by: str | None, log_line_prefix: str | None, format: LogFormat | None, on_bad_line: OnBadLine,
    tracker: SessionTracker | None, batch_rows: int, fast: bool,
) -> Run:
    """Run the analysis, write every table's part files, and commit them with the new watermarks."""
    schemas = _schemas()
    tables = {
        name: _TableWriter(staging, name, schemas[name], partition_by == "day", batch_rows, result)
        for name in schemas
    }
    watermarks, readings = plan.watermarks, plan.readings

    def keep(file: str, line: int) -> bool:
        return line > watermarks.get(file, 0)

    def sink(record: LogRecord) -> None:
        if keep(record.source.file, record.source.line):
            tables["records"].add(record_row(record, host), record.timestamp)

    # records.parquet needs every record. A file can be read twice: analysed with the pre-filter,
    # then its records read again (by polars if it can); standard input or a FIFO passes through
    # once (opened again, a FIFO would wait for a writer forever).
    every_record = not fast or any(is_stream(name) for name in result.files_read)
    run = analyze(plan.read, log_line_prefix=log_line_prefix, format=format, on_bad_line=on_bad_line,
                  tracker=tracker, fast=not every_record, partial_groups=True)
    if every_record:
        run.record_sink = sink
    for incident in run.incidents():
        source = incident.raised_by_source
        if keep(source.file, source.line):
            tables["incidents"].add(incident_row(incident, host, readings.get(source.file, "")), incident.at)
        _drain_errors(run, tables["errors"], host, keep)
    _drain_errors(run, tables["errors"], host, keep)
    for finding in run.findings:  # complete only now: an aborted transaction's errors join its finding
        if keep(finding.source.file, finding.source.line):
            tables["findings"].add(finding_row(finding, host, readings.get(finding.source.file, "")), finding.at)
    if not every_record:
        for stats in run.inputs:
            _export_records(stats, tables["records"], host, watermarks.get(stats.file, 0))
    for table in tables.values():
        table.close()
    for stats in run.inputs:
        if not is_stream(stats.file):
            state["files"][_state_key(host, stats.file)] = {
                **plan.identities[stats.file], "lines": stats.lines, "host": host, "reading": readings.get(stats.file, ""),
            }
    for stray in (s for s in run.reader.skipped_files if not s.unread):  # no log: left out next time too
        state["files"][_state_key(host, stray.name)] = {**plan.identities[stray.name], "lines": 0, "host": host}
    staging.commit(state, dict(result.rows))
    run.reader.skipped_files.extend(plan.streams)  # said with the files that are no logs
    return run


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
                table.add_frame(frame.filter(pl.col("line") > watermark).rename(RECORD_COLUMNS)
                                .with_columns(host=pl.lit(host, pl.Utf8)))
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
