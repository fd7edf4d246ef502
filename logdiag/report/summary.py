"""Render a summary of an export: rich tables (or, where they would cut names, one entry per
group), JSON, or Markdown."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import IO, Any, Protocol

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

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

    @property
    def constraints(self) -> list[dict[str, Any]]: ...

    @property
    def errors_total(self) -> int: ...

    @property
    def errors(self) -> list[dict[str, Any]]: ...

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary."""
        ...


TITLES = {
    "by_constraint": "Incidents by constraint",
    "by_table": "By table",
    "by_client": "By application, user and database",
    "by_host": "By host",
    "by_hour": "By hour (UTC)",
    "culprit_shapes": "Top culprit statement shapes (constants as $1, $2 …)",
    "other_errors": "Other errors (not constraint violations) by SQLSTATE",
}
#: Column headers shorter than the Parquet names they show.
HEADERS = {"constraint_name": "constraint", "table_name": "table", "user_name": "user"}
#: Columns never shown as such: the fingerprint (the shape says it), the example (JSON has it).
HIDDEN = {"culprit_fingerprint", "example"}
#: Columns of counts and times; the others are names and text, shown whole.
FIGURES = ("incidents", "errors", "first", "last", "hour")


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return [c for c in rows[0] if c not in HIDDEN] if rows else []


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _sections(summary: SummaryView) -> list[tuple[str, list[dict[str, Any]]]]:
    errors = [{**row, "message": row.get("example")} for row in summary.errors]
    return [*summary.groups.items(), ("culprit_shapes", summary.shapes), ("other_errors", errors)]


def write_summary_text(summary: SummaryView, console: Console) -> None:
    """Each section as a table if it fits the console's width whole, else one entry per group
    (its names on a line, wrapped only at spaces; its figures on the next): nothing is cut, at
    80 columns (a pipe) too (issue 29 §2, §5)."""
    console.print(plain(_head(summary), "bold"))
    if summary.constraints or any(rows for _, rows in _sections(summary)):
        console.print()
    for name, rows in _sections(summary):
        if name == "culprit_shapes":
            _per_constraint(summary.constraints, console)
        if not rows:
            continue
        columns = _columns(rows)
        table = Table(title=TITLES[name], box=box.SIMPLE_HEAD, title_justify="left")
        for column in columns:
            table.add_column(HEADERS.get(column, column), justify="right" if column in ("incidents", "errors") else "left",
                             no_wrap=True)
        for row in rows:
            table.add_row(*(plain(_cell(row[c])) for c in columns))
        if Measurement.get(console, console.options.update_width(10_000), table).maximum <= console.width:
            console.print(table)
        else:
            _entries(TITLES[name], columns, rows, console)


def _entries(title: str, columns: list[str], rows: list[dict[str, Any]], console: Console) -> None:
    """A section too wide for a table: per row, its names, then its figures, indented."""
    console.print(Text(title, style="italic"))
    for row in rows:
        _line(console, 2, " · ".join(_cell(row[c]) or "-" for c in columns if c not in FIGURES))
        figures = [plural(row[c], c[:-1]) if c in ("incidents", "errors") else f"{c} {_cell(row[c])}"
                   for c in columns if c in FIGURES]
        together = " · ".join(figures)
        for line in [together] if 6 + len(together) <= console.width else figures:  # a time is never split
            _line(console, 6, line)
    console.print()


def _line(console: Console, indent: int, text: str) -> None:
    """Log text, indented, wrapped at spaces within the console's width (a word longer than
    the width, only then, folded): its wrapped lines keep the indent."""
    console.print(Padding(plain(text), (0, 0, 0, indent), expand=False), overflow="fold")


def _per_constraint(constraints: list[dict[str, Any]], console: Console) -> None:
    """Each constraint's top keys and culprit shapes, one per line (keys and SQL wrap at spaces)."""
    if not constraints:
        return
    console.print(Text("Per constraint: top keys and culprit shapes", style="italic"))
    for entry in constraints:
        _line(console, 2, f"{entry['constraint_name'] or '-'}: {plural(entry['incidents'], 'incident')}")
        for label, field in (("key", "key_text"), ("shape", "shape")):
            for item in entry[f"{label}s"]:
                _line(console, 6, f"{label} ×{item['incidents']}  {item[field]}")
    console.print()


def _head(summary: SummaryView) -> str:
    """How many incidents, and other errors when the export has any."""
    errors = f", {plural(summary.errors_total, 'other error')}" if summary.errors_total else ""
    return plural(summary.total, "incident") + errors


def write_summary_json(summary: SummaryView, out: IO[str]) -> None:
    out.write(json_text(summary.to_dict(), indent=2) + "\n")


def _md(value: Any) -> str:
    return printable(_cell(value)).replace("|", "\\|").replace("\n", " ")


def write_summary_markdown(summary: SummaryView, out: IO[str]) -> None:
    out.write(f"# logdiag summary\n\n{_head(summary)}.\n")
    for name, rows in _sections(summary):
        if name == "culprit_shapes" and summary.constraints:
            out.write("\n## Per constraint: top keys and culprit shapes\n\n| constraint | incidents | keys | shapes |\n"
                      "|---|---|---|---|\n")
            for entry in summary.constraints:
                keys = "; ".join(f"{k['key_text']} ×{k['incidents']}" for k in entry["keys"])
                shapes = "; ".join(f"`{s['shape']}` ×{s['incidents']}" for s in entry["shapes"])
                out.write(f"| {_md(entry['constraint_name'])} | {entry['incidents']} | {_md(keys)} | {_md(shapes)} |\n")
        if not rows:
            continue
        columns = _columns(rows)
        out.write(f"\n## {TITLES[name]}\n\n| " + " | ".join(HEADERS.get(c, c) for c in columns) + " |\n|"
                  + "---|" * len(columns) + "\n")
        for row in rows:
            out.write("| " + " | ".join(_md(row[c]) for c in columns) + " |\n")
