"""Markdown, for pasting into an incident ticket."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import IO

from logdiag.diagnosis.incidents import Finding, FindingSeverity, Incident, Related
from logdiag.report.run import RunView, nothing_found
from logdiag.report.safe import printable
from logdiag.wording import plural


def _fence(code: str) -> str:
    code = printable(code)
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}sql\n{code.rstrip()}\n{fence}"


def _inline(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>|#])", r"\\\1", printable(text).replace("\n", " "))


def incident_markdown(number: int, incident: Incident) -> str:
    s = incident.session
    key = ", ".join(f"{c} = {'NULL' if v is None else v}" for c, v in incident.key.items()) or "not in the log"
    code = f"{incident.sqlstate} {incident.condition}" if incident.sqlstate else "SQLSTATE unknown (no %e)"
    lines = [
        (f"## {number}. {code} at {incident.timing}: "
        f"{_inline(incident.subject)}"),
        "",
        f"- **When**: {incident.at.isoformat() if incident.at else 'unknown'}",
        f"- **Table**: {_inline(incident.table or '?')}"
        + (f" → {_inline(incident.referenced_table)}" if incident.referenced_table else ""),
        f"- **Key**: {_inline(key)}",
        f"- **Error**: {_inline(incident.message)}",
        *([f"- **Detail**: {_inline(incident.detail)}"] if incident.detail else []),
        (f"- **Session**: {_inline(s.application or '?')} · {_inline(s.user or '?')}@{_inline(s.database or '?')}"
        f" · pid {s.pid} · session {s.session_id or '?'} · vxid {incident.vxid or '?'}"),
        f"- **Raised by** (line {incident.raised_by_source.line}):",
        "",
        _fence(incident.raised_by_statement or "-- no statement: the implicit commit"),
        "",
    ]
    for step in incident.deadlock or ():
        lines += [(f"- **Cycle**: process {step.pid} waited for {_inline(step.mode)} on {_inline(step.object)}, "
                  f"held by {step.blocked_by}")]
    if incident.deadlock:
        lines.append("")
    for culprit in incident.culprits:
        other = f", pid {culprit.session.pid} ({_inline(culprit.session.application or '?')})" if culprit.session else ""
        lines += [f"**Culprit** (line {culprit.source.line}{other}, {culprit.confidence}): {_inline(culprit.reason)}", ""]
        lines += [_fence(culprit.statement), ""]
        if culprit.parameters:
            lines += ["Parameters: " + _inline(", ".join(f"{k} = {v!r}" for k, v in culprit.parameters.items())), ""]
    lines += _related_and_advice(incident.related, incident.explanation, incident.hints)
    return "\n".join(lines) + "\n"


def _related_and_advice(related: Sequence[Related], explanation: str, hints: Sequence[str]) -> list[str]:
    """The related statements, the why and the what-to-do of an incident or a finding."""
    lines: list[str] = []
    for item in related:
        lines += [f"**{item.role}** (line {item.source.line}){': ' + _inline(item.note) if item.note else ''}", ""]
        lines += [_fence(item.statement or "-- no statement"), ""]
    lines += [f"**Why**: {_inline(explanation)}", "", "**What to do**:", ""]
    return lines + [f"- {_inline(h)}" for h in hints]


def finding_markdown(number: int, finding: Finding) -> str:
    """One finding (a SET CONSTRAINTS pitfall, or checks switched off) as a markdown section."""
    code = (finding.sqlstate or "SQLSTATE unknown") + (" (inferred)" if finding.sqlstate_inferred else "")
    if finding.severity is FindingSeverity.LOG:  # a statement the log shows: it has no SQLSTATE
        code = "statement"
    lines = [
        f"### Finding {number}. {finding.kind}: {_inline(finding.constraint or '(no constraint named)')}",
        "",
        f"- **Severity**: {finding.severity} {code}",
        f"- **Table**: {_inline(finding.table or '?')}",
        (f"- **Session**: {_inline(finding.session.application or '?')} · pid {finding.session.pid}"
         f" · session {_inline(finding.session.session_id or '?')}"),
        f"- **Statement** (line {finding.source.line}):",
        "",
        _fence(finding.statement or "-- no statement"),
        "",
    ]
    lines += _related_and_advice(finding.related, finding.explanation, finding.hints)
    return "\n".join(lines) + "\n"


def write_markdown(run: RunView, incidents: Iterable[Incident], out: IO[str], each: bool = False) -> int:
    """The report; repeated incidents grouped (largest group first, its first incident in full,
    then a line per other member), every incident in full with ``each``."""
    count = 0
    out.write("# logdiag report\n\n")
    for incident in incidents:
        count += 1
        if each:
            out.write(incident_markdown(count, incident) + "\n")
    for group in run.groups.largest_first() if count and not each else ():
        (first, representative), *others = group.first_incidents()
        out.write(f"## Group {group.id}: {plural(group.count, 'incident')} of {_inline(group.representative.subject)}\n\n")
        if group.shape:
            out.write(f"Culprit shape: `{_inline(group.shape)}`\n\n")
        out.write(incident_markdown(first, representative).replace("\n## ", "\n### ", 1).replace("## ", "### ", 1) + "\n")
        for number, incident in others:
            key = ", ".join(f"{c} = {'NULL' if v is None else v}" for c, v in incident.key.items())
            out.write(f"- #{number} {incident.at.isoformat() if incident.at else ''} key {_inline(key)} · "
                      f"{_inline(incident.session.application or '?')} · line {incident.raised_by_source.line}\n")
        if group.count > len(group.kept):
            out.write(f"- … and {group.count - len(group.kept)} more\n")
        out.write("\n")
    if not count:
        out.write(nothing_found(run)[0] + "\n\n")
    if run.settings_advice:
        out.write("## To make the diagnosis certain next time\n\n")
        for advice, indexes in run.settings_advice.items():
            out.write(f"- {_inline(advice)} ({plural(len(indexes), 'incident')})\n")
        out.write("\n")
    if run.findings:
        out.write("## Findings\n\n")
        for number, finding in enumerate(run.findings, 1):
            out.write(finding_markdown(number, finding) + "\n")
    files = ", ".join(f"{_inline(s.file)} ({s.format}, {plural(s.records, 'record')})" for s in run.inputs)
    out.write(f"Read: {files}. Other errors: {len(run.other_errors)}.\n")
    return count
