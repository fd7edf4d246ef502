"""Records from key/value inputs (csvlog rows, jsonlog objects, CloudNativePG), by a key table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from logdiag.formats.timestamps import parse_timestamp
from logdiag.lang import severity_of
from logdiag.records import LogRecord, Severity, Source

#: Record field → csvlog column name (also CloudNativePG's JSON keys).
CSVLOG_KEYS: dict[str, str] = {
    "timestamp": "log_time", "pid": "process_id", "session_id": "session_id",
    "session_line": "session_line_num", "vxid": "virtual_transaction_id", "xid": "transaction_id",
    "user": "user_name", "database": "database_name", "application": "application_name",
    "client": "connection_from", "backend_type": "backend_type", "severity": "error_severity",
    "sqlstate": "sql_state_code", "message": "message", "detail": "detail", "hint": "hint",
    "context": "context", "statement": "query", "query": "internal_query", "command_tag": "command_tag",
    "query_id": "query_id",
}
#: Record field → jsonlog key (PostgreSQL 15+).
JSONLOG_KEYS: dict[str, str] = {
    "timestamp": "timestamp", "pid": "pid", "session_id": "session_id", "session_line": "line_num",
    "vxid": "vxid", "xid": "txid", "user": "user", "database": "dbname", "application": "application_name",
    "client": "remote_host", "backend_type": "backend_type", "severity": "error_severity",
    "sqlstate": "state_code", "message": "message", "detail": "detail", "hint": "hint", "context": "context",
    "statement": "statement", "query": "internal_query", "command_tag": "ps", "query_id": "query_id",
}
_INTEGERS = frozenset({"pid", "session_line", "xid", "query_id"})


def text_or_none(value: Any) -> str | None:
    """Empty and missing values are no value."""
    return None if value is None or value == "" else str(value)


def int_or_none(value: Any) -> int | None:
    try:
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON number such as 1e999999
        return None


def record_from_mapping(
    row: Mapping[str, Any], keys: Mapping[str, str], source: Source, **overrides: Any
) -> LogRecord:
    """Build a record from ``row`` using ``keys`` (field → key); ``overrides`` set fields directly."""
    values: dict[str, Any] = {}
    for field, key in keys.items():
        raw = row.get(key)
        values[field] = int_or_none(raw) if field in _INTEGERS else text_or_none(raw)
    values["timestamp"] = parse_timestamp(values["timestamp"])
    values["severity"] = Severity(severity_of(values["severity"]) or values["severity"])  # lc_messages
    values.update(overrides)
    return LogRecord(source=source, **values)
