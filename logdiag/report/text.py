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

from logdiag.diagnosis.groups import Group as IncidentGroup
from logdiag.diagnosis.groups import Groups
from logdiag.diagnosis.incidents import Finding, FindingSeverity, Incident
from logdiag.records import Source
from logdiag.report.run import RunView, nothing_found
from logdiag.report.safe import plain, printable
from logdiag.wording import key_text, place, plural

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


def where(source: Source, many_files: bool) -> str:
    """``line 374``, or ``postgresql-Mon.log:374`` when the run reads more than one input."""
    return place(source.file, source.line, many_files)


def _distance(source: Source, at: datetime | None, incident: Incident) -> str:
    parts = []
    if incident.at is not None and at is not None:
        seconds = (incident.at - at).total_seconds()
        parts.append(f"{seconds:.3g} s")
    if source.file == incident.raised_by_source.file:
        parts.append(plural(incident.raised_by_source.line - source.line, "line"))
    return " and ".join(parts) + " earlier" if parts else ""


def incident_panel(number: int, incident: Incident, many_files: bool = False) -> Panel:
    """One incident, readable at 60 columns and more: the title holds the number, SQLSTATE,
    timing and time; the condition and the constraint are rows that wrap, never cut."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    s = incident.session
    what = incident.condition or "SQLSTATE unknown (no %e in log_line_prefix)"
    grid.add_row("what", plain(f"{what} at {incident.timing}", "bold red"))
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
    raised = plain(f"{where(incident.raised_by_source, many_files)}: ")
    raised.append_text(sql(incident.raised_by_statement or "(no statement: the implicit commit)"))
    grid.add_row("raised by", raised)
    values = list(incident.key.values())
    for index, culprit in enumerate(incident.culprits):
        other = culprit.session
        session = f" · pid {other.pid}" + (f" ({other.application})" if other.application else "") if other else ""
        head = plain(f"{where(culprit.source, many_files)}{session} · {culprit.confidence} · {culprit.reason}", "cyan")
        body: list[RenderableType] = [head, sql(culprit.statement, values)]
        if culprit.parameters:
            body.append(plain("parameters: " + ", ".join(f"{k} = {v!r}" for k, v in culprit.parameters.items()), "dim"))
        grid.add_row("culprit" if index == 0 else "", Group(*body))
    if not incident.culprits:
        grid.add_row("culprit", plain("none found in the log (see hints)", "dim"))
    for item in incident.related:
        label = plain(f"{item.role} · {where(item.source, many_files)} · {_distance(item.source, item.at, incident)}",
                      "magenta")
        if item.note:
            label.append_text(plain(f" · {item.note}"))
        grid.add_row("related", Group(label, sql(item.statement)))
    grid.add_row("why", plain(incident.explanation))
    for index, hint in enumerate(incident.hints):
        grid.add_row("what to do" if index == 0 else "", plain(f"• {hint}"))
    when = incident.at.isoformat(sep=" ", timespec="seconds") if incident.at else "time unknown"
    title = plain(f"#{number} {incident.sqlstate or '?'} at {incident.timing} · {when}", "bold red")
    return Panel(grid, title=title, title_align="left", box=box.ROUNDED, expand=True)


def finding_panel(number: int, finding: Finding, many_files: bool = False) -> Panel:
    """One finding (a SET CONSTRAINTS pitfall, or checks switched off), readable at 60 columns."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    grid.add_row("what", plain(finding.kind.value, "bold yellow"))
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
    at = plain(f"{where(finding.source, many_files)}: ")
    at.append_text(sql(finding.statement or "(no statement)"))
    grid.add_row("statement", at)
    for item in finding.related:
        label = plain(f"{item.role} · {where(item.source, many_files)}", "magenta")
        if item.note:
            label.append_text(plain(f" · {item.note}"))
        grid.add_row("related", Group(label, sql(item.statement or "(no statement)")))
    grid.add_row("why", plain(finding.explanation))
    for index, hint in enumerate(finding.hints):
        grid.add_row("what to do" if index == 0 else "", plain(f"• {hint}"))
    code = (finding.sqlstate or "SQLSTATE unknown") + (" (inferred from the message)" if finding.sqlstate_inferred else "")
    if finding.severity is FindingSeverity.LOG:  # a statement the log shows: it has no SQLSTATE
        code = "statement"
    title = plain(f"finding {number} · {finding.severity} {code}", "bold yellow")
    return Panel(grid, title=title, title_align="left", box=box.ROUNDED, expand=True)


def member_line(number: int, incident: Incident, group: IncidentGroup, many_files: bool = False) -> Text:
    """An incident of a group already shown, in one line: ``#57 orders_customer_id_fkey ×23 ·
    key customer_id=4242 · billing-job · line 8812``."""
    parts = [f"#{number} {incident.subject} ×{group.count}"]
    if incident.key:
        parts.append("key " + key_text(incident.key))
    if incident.session.application:
        parts.append(incident.session.application)
    parts.append(where(incident.culprits[0].source if incident.culprits else incident.raised_by_source, many_files))
    return plain(" · ".join(parts), "dim")


def group_heading(group: IncidentGroup) -> Text:
    """The line above a group's representative: how many, of what, when, who."""
    span = ""
    if group.first is not None and group.last is not None:
        first, last = group.first.isoformat(sep=" ", timespec="seconds"), group.last.isoformat(sep=" ", timespec="seconds")
        span = f" · {first}" + (f" to {last}" if last != first else "")
    apps = ", ".join(f"{a} ({n})" for a, n in group.applications.most_common(3))
    return plain(
        f"Group {group.id}: {plural(group.count, 'incident')} of {group.representative.subject}{span}"
        + (f" · {apps}" if apps else ""),
        "bold",
    )


def summary_table(groups: Groups) -> Table:
    """The groups, largest first: how often, what broke, who, and the culprit's statement shape.
    One entry per group in a column that wraps: no name is cut at any width."""
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right", no_wrap=True)
    table.add_column(ratio=1, overflow="fold")
    table.add_row("", plain(f"Summary: {plural(len(groups), 'group')} of "
                            f"{plural(sum(g.count for g in groups.largest_first()), 'incident')}", "bold"))
    for group in groups.largest_first():
        apps = ", ".join(f"{a} ({n})" for a, n in group.applications.most_common(3))
        line = plain(group.representative.subject, "bold")
        if apps:
            line.append_text(plain(f" · {apps}"))
        body: list[RenderableType] = [line]
        if group.shape:
            body.append(plain(group.shape, "dim"))
        table.add_row(plain(f"{group.count} ×"), Group(*body))
    return table


def write_text(run: RunView, incidents: Iterable[Incident], console: Console, *, each: bool = False,
               live: bool = False, many_files: bool = False) -> int:
    """The report, grouped: a file's groups largest first once it is read (the representative in
    full, then a line per other kept member, :data:`~logdiag.diagnosis.groups.KEPT_INCIDENTS`); live input's first incident of
    a group in full as it comes and later ones in a line; ``each``: every incident in full. Then
    the group summary, also when Ctrl-C or SIGTERM stops a live run. Source lines say their file
    when ``many_files`` (the run reads, or may read, more than one) or more than one was read."""
    count = 0
    try:
        for incident in incidents:
            count += 1
            group = run.groups.of(count - 1)
            many = many_files or len(run.inputs) > 1
            if each or (live and group.count == 1):
                console.print(incident_panel(count, incident, many))
            elif live:
                console.print(member_line(count, incident, group, many))
            else:
                continue  # a file's groups are shown once it is read
            console.file.flush()
    except KeyboardInterrupt:
        if count:
            console.print(summary_table(run.groups))
        raise
    many = many_files or len(run.inputs) > 1
    for group in run.groups.largest_first() if count and not each and not live else ():
        (first, representative), *others = group.first_incidents()
        if group.count > 1:
            console.print(group_heading(group))
        console.print(incident_panel(first, representative, many))
        for number, incident in others:
            console.print(member_line(number, incident, group, many))
        if group.count > len(group.kept):
            console.print(plain(f"… and {group.count - len(group.kept)} more", "dim"))
    _ending(run, count, console, many)
    return count


def _ending(run: RunView, count: int, console: Console, many: bool) -> None:
    if count:
        console.print(summary_table(run.groups))
        if run.settings_advice:
            console.print(plain("To make the diagnosis certain next time:", "bold"))
            for advice, indexes in run.settings_advice.items():
                console.print(plain(f"• {advice} ({plural(len(indexes), 'incident')})"))
    else:
        said, all_clear = nothing_found(run)
        console.print(plain(said, "green" if all_clear else "yellow"))
    if run.findings:
        console.print(plain(f"Findings: {len(run.findings)}", "bold"))
        for number, finding in enumerate(run.findings, 1):
            console.print(finding_panel(number, finding, many))
    if run.other_errors:
        codes = Counter(e.sqlstate or "?" for e in run.other_errors)
        console.print(plain(
            f"{plural(len(run.other_errors), 'other error')}: " + ", ".join(f"{c} × {n}" for c, n in codes.most_common()),
            "dim",
        ))
