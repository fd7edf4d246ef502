"""JSON inputs: PostgreSQL's jsonlog, and the wrappers of CloudNativePG and Google Cloud SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from logdiag.formats.base import (
    Continuation,
    ErrorLine,
    FieldsFormat,
    Lines,
    LogFormat,
    Prefilter,
    blocked_by_marker,
)
from logdiag.formats.csvlog import record_from_columns
from logdiag.formats.mapping import JSONLOG_KEYS, record_from_mapping, text_or_none
from logdiag.formats.prefix import LinePrefix
from logdiag.formats.stderr import RawLine, Stderr, StderrAssembler
from logdiag.formats.timestamps import fromisoformat
from logdiag.lang import ENGLISH, Language
from logdiag.records import SEVERITIES, LogRecord, Source
from logdiag.source.framing import Tick, decode_line
from logdiag.source.stats import InputStats


def _decoded(text: str | bytes) -> Any:
    """``json.loads``, with a nesting too deep for Python's parser (a hostile line: 100,000
    brackets) counted as bad JSON, not the end of the file.

    Raises:
        ValueError: the text is no JSON.
    """
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("JSON nested too deep") from exc


def _objects(lines: Lines, stats: InputStats, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for item in lines:
        if isinstance(item, Tick):
            continue
        number, text = item
        if not text.strip():
            stats.blank += 1
            continue
        try:
            value = _decoded(text)
        except ValueError:
            stats.skip(number, f"not a {what} object", text)
            continue
        if not isinstance(value, dict):
            stats.skip(number, f"not a {what} object", text)
            continue
        yield number, value


def _is_severity(value: Any) -> bool:
    """Whether a JSON value is a severity: an object or a list in its place is none (and cannot
    be looked up in a set)."""
    return isinstance(value, str) and value in SEVERITIES


def _text(value: Any) -> str | None:
    """A JSON value that must be text, or None: a number, list or object in its place is none."""
    return value if isinstance(value, str) and value else None


def _client(obj: dict[str, Any]) -> str | None:
    host = text_or_none(obj.get("remote_host"))
    port = obj.get("remote_port")
    return f"{host}:{port}" if host and port is not None else host


def read_jsonlog(lines: Lines, stats: InputStats, file: str) -> Iterator[LogRecord]:
    """PostgreSQL 15+ jsonlog: one object per line; keys whose value is NULL are absent."""
    for number, obj in _objects(lines, stats, "jsonlog"):
        if not _is_severity(obj.get("error_severity")):
            stats.skip(number, "jsonlog object without error_severity", json.dumps(obj)[:200])
            continue
        stats.records += 1
        yield record_from_mapping(obj, JSONLOG_KEYS, Source(file, number), client=_client(obj))


#: What CloudNativePG's instance manager writes for lines the server printed before its logging
#: collector took over (PostgreSQL's default prefix).
CNPG_RAW_PREFIX = "%m [%p] "


def read_cnpg(lines: Lines, stats: InputStats, file: str) -> Iterator[LogRecord]:
    """CloudNativePG: ``{"logger": "postgres", "msg": "record", "record": {csvlog columns}}``.

    The operator's own messages in the same stream are counted as skipped, by reason.
    """
    raw = StderrAssembler(LinePrefix(CNPG_RAW_PREFIX), stats, file)
    for number, obj in _objects(lines, stats, "CloudNativePG"):
        record = obj.get("record")
        if obj.get("logger") == "postgres" and isinstance(record, dict):
            if not _is_severity(record.get("error_severity")):
                stats.skip(number, "CloudNativePG record without error_severity", str(record)[:200])
                continue
            stats.records += 1
            yield record_from_columns(record, Source(file, number))
        elif obj.get("logger") == "postgres" and isinstance(obj.get("msg"), str):
            yield from raw.feed(RawLine(number, obj["msg"].rstrip("\n")))
        else:
            stats.skip(number, "CloudNativePG operator message, not a PostgreSQL record", foreign=True)
    yield from raw.flush()


def cloudsql_lines(lines: Lines, stats: InputStats) -> Iterator[RawLine]:
    """Google Cloud SQL's export: the server's line in ``textPayload``, the time in ``timestamp``."""
    for number, obj in _objects(lines, stats, "Cloud SQL"):
        payload = obj.get("textPayload")
        if not isinstance(payload, str):
            stats.skip(number, "Cloud SQL entry without textPayload", json.dumps(obj)[:200], foreign=True)
            continue
        timestamp = fromisoformat(obj["timestamp"]) if isinstance(obj.get("timestamp"), str) else None
        yield RawLine(number, payload.rstrip("\n"), timestamp=timestamp)


# --- the formats ----------------------------------------------------------------------------

def _error_lines(lines: Iterable[tuple[int, bytes]]) -> Iterator[ErrorLine]:
    for position, line in lines:
        try:
            obj = _decoded(decode_line(line)[0])
        except ValueError:
            continue
        if not isinstance(obj, dict):  # a list or a number that holds the marker in a string
            continue
        yield ErrorLine(
            position, str(obj.get("session_id")), _text(obj.get("state_code")), _text(obj.get("message")),
            _text(obj.get("detail")),
        )


def _session_test(alternation: str) -> tuple[str, str | None]:
    return '"session_id":"' + alternation + '"', None


class Jsonlog(FieldsFormat):
    """PostgreSQL 15+'s jsonlog."""

    kind = LogFormat.JSONLOG

    def prefilter(self, prefix: LinePrefix | None, language: Language = ENGLISH) -> Prefilter:
        return Prefilter(
            marker=b'"error_severity":"ERROR"', error_lines=_error_lines, record_start='"error_severity":',
            continuation=Continuation.NONE, unmatched="not a jsonlog object", session_test=_session_test,
            session_field='"session_id":"([^"]*)"', line_number_field=r'"line_num":(\d+)',
            blocked_by=blocked_by_marker(language),
        )


class Cnpg(FieldsFormat):
    """CloudNativePG's JSON lines, wrapping csvlog fields."""

    kind = LogFormat.CNPG


class CloudSql(Stderr):
    """Google Cloud SQL's export: the server's stderr line in each JSON object's ``textPayload``."""

    kind = LogFormat.CLOUDSQL

    def bodies(self, lines: Sequence[str]) -> list[str]:
        bodies = []
        for line in lines:
            try:
                payload = _decoded(line).get("textPayload")
            except (ValueError, AttributeError):
                continue
            if isinstance(payload, str):
                bodies.append(payload)
        return bodies

    def _raw_lines(self, lines: Lines, stats: InputStats) -> Iterator[RawLine | Tick]:
        return cloudsql_lines(lines, stats)

    def prefilter(self, prefix: LinePrefix | None, language: Language = ENGLISH) -> Prefilter | None:
        return None


JSONLOG = Jsonlog(read_jsonlog)
CNPG = Cnpg(read_cnpg)
CLOUDSQL = CloudSql()
