"""Render the normalized records: JSON lines for programs, a table for people."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import IO

from rich import box
from rich.console import Console
from rich.table import Table

from logdiag.records import LogRecord
from logdiag.report.safe import json_text, plain

TABLE_BATCH = 200


def write_jsonl(records: Iterable[LogRecord], out: IO[str]) -> int:
    """Write one JSON object per record (keys are the record's field names); return the count."""
    count = 0
    for record in records:
        out.write(json_text(record.to_dict()) + "\n")
        count += 1
    return count


def _batches(records: Iterable[LogRecord], size: int) -> Iterator[list[LogRecord]]:
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        yield batch


def write_table(records: Iterable[LogRecord], console: Console) -> int:
    """Print records as rich tables of :data:`TABLE_BATCH` rows, so memory stays bounded."""
    count = 0
    for batch in _batches(records, TABLE_BATCH):
        table = Table(box=box.SIMPLE_HEAD, expand=True, padding=(0, 1))
        table.add_column("line", justify="right", no_wrap=True)
        table.add_column("time", no_wrap=True)
        table.add_column("pid", justify="right", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("message / DETAIL / STATEMENT", ratio=1, overflow="fold")
        for record in batch:
            text = plain(record.message)
            for label, value in (("DETAIL", record.detail), ("STATEMENT", record.statement)):
                if value:
                    text.append(f"\n{label}: ", style="dim")
                    text.append_text(plain(value))
            severity = record.severity.value + (f" {record.sqlstate}" if record.sqlstate else "")
            table.add_row(
                str(record.source.line),
                plain(record.timestamp.strftime("%H:%M:%S.%f")[:-3] if record.timestamp else ""),
                plain(record.pid or ""),
                plain(severity, style=_SEVERITY_STYLE.get(record.severity.value, "")),
                text,
            )
            count += 1
        console.print(table)
    return count


_SEVERITY_STYLE = {"ERROR": "bold red", "FATAL": "bold red", "PANIC": "bold red", "WARNING": "yellow"}
