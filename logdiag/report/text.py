"""The terminal report: one panel per incident, then a summary table. Log text is never markup."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from logdiag.diagnosis.incidents import Finding, FindingSeverity, Incident
from logdiag.records import Source
from logdiag.report.run import RunView, nothing_found
from logdiag.report.safe import plain, printable

MAX_SQL_CHARS = 2000


def sql(statement: str, emphasise: Iterable[str | None] = ()) -> Text:
    """A statement with SQL highlighting and the offending values emphasised; never parsed as markup."""
    code = printable(statement)
    if len(code) > MAX_SQL_CHARS:
        code = code[:MAX_SQL_CHARS] + f" … ({len(statement) - MAX_SQL_CHARS} more characters)"
    text = Syntax(code, "sql", theme="ansi_dark", background_color="default", word_wrap=True).highlight(code)
    text.rstrip()
    for value in emphasise:
        if value:
            text.highlight_regex(rf"(?<![\w.]){re.escape(printable(value))}(?![\w.])", "bold reverse")
    return text


def _distance(source: Source, at: datetime | None, incident: Incident) -> str:
    parts = []
    if incident.at is not None and at is not None:
        seconds = (incident.at - at).total_seconds()
        parts.append(f"{seconds:.3g} s")
    if source.file == incident.raised_by_source.file:
        parts.append(f"{incident.raised_by_source.line - source.line} lines")
    return " and ".join(parts) + " earlier" if parts else ""


def incident_panel(number: int, incident: Incident) -> Panel:
    """One incident, readable at 80 columns."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(ratio=1)
    s = incident.session
    if incident.deadlock is not None:
        for index, step in enumerate(incident.deadlock):
            line = plain(f"process {step.pid} waited for {step.mode} on {step.object}, held by {step.blocked_by}")
            grid.add_row("deadlock" if index == 0 else "", line)
    else:
        constraint = plain(incident.constraint or "(unnamed)", "bold")
        if incident.constraint_kind is not None:
            constraint.append_text(plain(f" ({incident.constraint_kind.replace('_', ' ')})"))
        if incident.table:
            constraint.append_text(plain(f" on {incident.table}"))
        if incident.referenced_table:
            constraint.append_text(plain(f" → {incident.referenced_table}"))
        grid.add_row("constraint", constraint)
    who = " · ".join(
        x for x in (
            s.application and f"app {s.application}",
            (s.user or s.database) and f"{s.user or '?'}@{s.database or '?'}",
            s.pid and f"pid {s.pid}",
            s.session_id and f"session {s.session_id}",
            incident.vxid and f"vxid {incident.vxid}",
        ) if x
    )
    grid.add_row("session", plain(who))
    # The error's own words, for every kind: a trigger's message and DETAIL are its author's (issue 26).
    grid.add_row("error", plain(incident.message))
    if incident.detail:
        grid.add_row("detail", plain(incident.detail))
    key = ", ".join(f"{c} = {'NULL' if v is None else v}" for c, v in incident.key.items()) or "(not in the log)"
    grid.add_row("key", plain(key, "bold yellow"))
    raised = plain(f"line {incident.raised_by_source.line}: ")
    raised.append_text(sql(incident.raised_by_statement or "(no statement: the implicit commit)"))
    grid.add_row("raised by", raised)
    values = list(incident.key.values())
    for index, culprit in enumerate(incident.culprits):
        other = culprit.session
        where = f" · pid {other.pid}" + (f" ({other.application})" if other.application else "") if other else ""
        head = plain(f"line {culprit.source.line}{where} · {culprit.confidence} · {culprit.reason}", "cyan")
        body: list[RenderableType] = [head, sql(culprit.statement, values)]
        if culprit.parameters:
            body.append(plain("parameters: " + ", ".join(f"{k} = {v!r}" for k, v in culprit.parameters.items()), "dim"))
        grid.add_row("culprit" if index == 0 else "", Group(*body))
    if not incident.culprits:
        grid.add_row("culprit", plain("none found in the log (see hints)", "dim"))
    for item in incident.related:
        label = plain(f"{item.role} · line {item.source.line} · {_distance(item.source, item.at, incident)}", "magenta")
        if item.note:
            label.append_text(plain(f" · {item.note}"))
        grid.add_row("related", Group(label, sql(item.statement)))
    grid.add_row("why", plain(incident.explanation))
    for index, hint in enumerate(incident.hints):
        grid.add_row("what to do" if index == 0 else "", plain(f"• {hint}"))
    when = incident.at.isoformat(sep=" ", timespec="milliseconds") if incident.at else "time unknown"
    code = f"{incident.sqlstate} {incident.condition}" if incident.sqlstate else "SQLSTATE unknown (no %e)"
    title = plain(f"#{number} {when} · {code} · at {incident.timing}", "bold red")
    return Panel(grid, title=title, title_align="left", box=box.ROUNDED, expand=True)


def finding_panel(number: int, finding: Finding) -> Panel:
    """One finding (a SET CONSTRAINTS pitfall, or checks switched off), readable at 80 columns."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(ratio=1)
    about = plain(finding.constraint or "(no constraint named)", "bold")
    if finding.table:
        about.append_text(plain(f" on {finding.table}"))
    grid.add_row("constraint", about)
    s = finding.session
    who = " · ".join(x for x in (
        s.application and f"app {s.application}", s.pid and f"pid {s.pid}",
        s.session_id and f"session {s.session_id}", finding.vxid and f"vxid {finding.vxid}",
    ) if x)
    grid.add_row("session", plain(who))
    at = plain(f"line {finding.source.line}: ")
    at.append_text(sql(finding.statement or "(no statement)"))
    grid.add_row("statement", at)
    for item in finding.related:
        label = plain(f"{item.role} · line {item.source.line}", "magenta")
        if item.note:
            label.append_text(plain(f" · {item.note}"))
        grid.add_row("related", Group(label, sql(item.statement or "(no statement)")))
    grid.add_row("why", plain(finding.explanation))
    for index, hint in enumerate(finding.hints):
        grid.add_row("what to do" if index == 0 else "", plain(f"• {hint}"))
    code = (finding.sqlstate or "SQLSTATE unknown") + (" (inferred from the message)" if finding.sqlstate_inferred else "")
    if finding.severity is FindingSeverity.LOG:  # a statement the log shows: it has no SQLSTATE
        code = "statement"
    title = plain(f"finding {number} · {finding.kind} · {finding.severity} {code}", "bold yellow")
    return Panel(grid, title=title, title_align="left", box=box.ROUNDED, expand=True)


def summary_table(incidents: list[Incident]) -> Table:
    """Incidents grouped by constraint and application."""
    counts = Counter((i.constraint or ("deadlock" if i.deadlock is not None else "(unnamed)"),
                      i.session.application or "", i.timing) for i in incidents)
    table = Table(title="Summary", box=box.SIMPLE_HEAD, expand=False)
    table.add_column("constraint")
    table.add_column("application")
    table.add_column("timing")
    table.add_column("incidents", justify="right")
    for (constraint, application, timing), count in counts.most_common():
        table.add_row(plain(constraint), plain(application), plain(timing), str(count))
    return table


def write_text(run: RunView, incidents: Iterable[Incident], console: Console) -> int:
    """Print each incident as it arrives, then the summary and what was read."""
    found: list[Incident] = []
    for incident in incidents:
        found.append(incident)
        console.print(incident_panel(len(found), incident))
        console.file.flush()
    if found:
        console.print(summary_table(found))
    else:
        said, all_clear = nothing_found(run)
        console.print(plain(said, "green" if all_clear else "yellow"))
    if run.findings:
        console.print(plain(f"Findings: {len(run.findings)}", "bold"))
        for number, finding in enumerate(run.findings, 1):
            console.print(finding_panel(number, finding))
    if run.other_errors:
        codes = Counter(e.sqlstate or "?" for e in run.other_errors)
        console.print(plain(
            f"{len(run.other_errors)} other errors: " + ", ".join(f"{c} × {n}" for c, n in codes.most_common()),
            "dim",
        ))
    return len(found)
