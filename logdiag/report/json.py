"""The JSON report (the contract in docs/output-schema.md) and JSON lines: one incident each, then
one finding each."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from logdiag.diagnosis.incidents import Incident
from logdiag.report.run import RunView
from logdiag.report.safe import json_text
from logdiag.version import __version__


def inputs_of(run: RunView) -> list[dict[str, Any]]:
    return [
        {
            "file": s.file,
            "format": s.format,
            "log_line_prefix": s.log_line_prefix,
            "log_line_prefix_inferred": s.prefix_inferred,
            "log_line_prefix_unsettled": list(s.prefix_unsettled),
            "lc_messages": s.lc_messages,
            "records": s.records,
            "lines": s.lines,
            "skipped": s.skipped_total,
            "unread": s.unread,
            "cut_lines": s.cuts.count,
            "error": s.error,
            "lost": s.lost,
        }
        for s in run.inputs
    ]


def report(run: RunView, incidents: Iterable[Incident]) -> dict[str, Any]:
    """The whole report; consumes ``incidents`` (so the stats are complete when it returns)."""
    found = [{**i.to_dict(), "group": run.groups.of(index).id} for index, i in enumerate(incidents)]
    return {
        "logdiag": {"version": __version__},
        "inputs": inputs_of(run),
        "skipped_files": [{"file": f.name, "reason": f.reason, "unread": f.unread} for f in run.skipped_files],
        "incidents": found,
        "groups": [g.to_dict() for g in run.groups.largest_first()],
        "findings": [f.to_dict() for f in run.findings],
        "settings_advice": settings_advice(run),
        "other_errors": [e.to_dict() for e in run.other_errors],
        "stats": run.stats(),
    }


def settings_advice(run: RunView) -> list[dict[str, Any]]:
    """What to change in the log settings, once per run, with the incidents (indexes) it concerns."""
    return [{"advice": advice, "incidents": indexes} for advice, indexes in run.settings_advice.items()]


def write_json(run: RunView, incidents: Iterable[Incident], out: IO[str]) -> int:
    data = report(run, incidents)
    out.write(json_text(data, indent=2) + "\n")
    return len(data["incidents"])


#: The key that tells a finding's line from an incident's in JSON lines (an incident's line is the
#: incident object alone, as it always was).
FINDING_TYPE = {"type": "finding"}
ADVICE_TYPE = {"type": "settings_advice"}


def write_jsonl(incidents: Iterable[Incident], out: IO[str], run: RunView | None = None) -> int:
    """One incident object per line (with its ``group``), flushed as soon as it is known; then,
    once the input is read, one line per finding of ``run``, then one per settings advice
    (``"type": "settings_advice"``). A finding's line: its object with ``"type": "finding"`` first (a
    finding may gain related errors until the end: the 25P02 errors a not_deferrable error
    aborted, the errors a checks_disabled window caused). Returns the number of incidents."""
    count = 0
    for incident in incidents:
        group = {"group": run.groups.of(count).id} if run is not None else {}
        out.write(json_text({**incident.to_dict(), **group}) + "\n")
        out.flush()
        count += 1
    for finding in run.findings if run is not None else ():
        out.write(json_text({**FINDING_TYPE, **finding.to_dict()}) + "\n")
    for advice in settings_advice(run) if run is not None else ():
        out.write(json_text({**ADVICE_TYPE, **advice}) + "\n")
    out.flush()
    return count
