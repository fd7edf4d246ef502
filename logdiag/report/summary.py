"""Render a summary of exported incidents: rich tables, JSON, or Markdown."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import IO, Any, Protocol

from rich import box
from rich.console import Console
from rich.table import Table

from logdiag.report.safe import json_text, plain, printable
from logdiag.wording import plural


class SummaryView(Protocol):
    """What the renderers read of a summary (:class:`logdiag.export.summary.Summary` is one)."""

    @property
    def total(self) -> int: ...

    @property
    def groups(self) -> Mapping[str, list[dict[str, Any]]]: ...

    @property
    def shapes(self) -> list[dict[str, Any]]: ...

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary."""
        ...


TITLES = {
    "by_constraint": "Incidents by constraint",
    "by_table": "By table",
    "by_client": "By application, user and database",
    "by_host": "By host",
    "by_hour": "By hour (UTC)",
    "culprit_shapes": "Top culprit statement shapes (pglast fingerprint)",
}


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return list(rows[0]) if rows else []


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def write_summary_text(summary: SummaryView, console: Console) -> None:
    console.print(plain(plural(summary.total, "incident"), "bold"))
    for name, rows in [*summary.groups.items(), ("culprit_shapes", summary.shapes)]:
        if not rows:
            continue
        table = Table(title=TITLES[name], box=box.SIMPLE_HEAD, title_justify="left")
        columns = [c for c in _columns(rows) if c != "culprit_fingerprint"]
        for column in columns:
            table.add_column(column, justify="right" if column == "incidents" else "left",
                             overflow="fold", no_wrap=column in ("first", "last", "hour"),
                             max_width=60 if column == "example" else None)
        for row in rows:
            table.add_row(*(plain(_cell(row[c])) for c in columns))
        console.print(table)


def write_summary_json(summary: SummaryView, out: IO[str]) -> None:
    out.write(json_text(summary.to_dict(), indent=2) + "\n")


def write_summary_markdown(summary: SummaryView, out: IO[str]) -> None:
    out.write(f"# logdiag summary\n\n{plural(summary.total, 'incident')}.\n")
    for name, rows in [*summary.groups.items(), ("culprit_shapes", summary.shapes)]:
        if not rows:
            continue
        columns = [c for c in _columns(rows) if c != "culprit_fingerprint"]
        out.write(f"\n## {TITLES[name]}\n\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n")
        for row in rows:
            cells = [printable(_cell(row[c])).replace("|", "\\|").replace("\n", " ") for c in columns]
            out.write("| " + " | ".join(cells) + " |\n")
