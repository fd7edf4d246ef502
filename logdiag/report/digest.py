"""The digest: one line per group of incidents (``--each``: per incident), for chat and tickets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

from logdiag.diagnosis.groups import Group
from logdiag.diagnosis.incidents import Incident
from logdiag.report.run import RunView, nothing_found
from logdiag.report.safe import printable
from logdiag.wording import key_text, place

#: Words of the culprit statement a digest line shows.
FIRST_WORDS = 8


def digest_line(incident: Incident, group: Group | None = None, many_files: bool = False) -> str:
    """``2026-05-01 10:00:00+00 23503 orders_customer_id_fkey ×200 · key customer_id=42 ·
    culprit line 25: INSERT INTO orders VALUES (11, 42) …`` (control characters escaped)."""
    when = incident.at.isoformat(sep=" ", timespec="seconds") if incident.at else "time unknown"
    parts = [f"{when} {incident.sqlstate or '?'} {incident.subject}"
             + (f" ×{group.count}" if group is not None and group.count > 1 else "")]
    if incident.key:
        parts.append("key " + key_text(incident.key))
    if incident.culprits:
        culprit = incident.culprits[0]
        words = culprit.statement.split()
        parts.append(f"culprit {place(culprit.source.file, culprit.source.line, many_files)}: " + " ".join(words[:FIRST_WORDS]) + (" …" if len(words) > FIRST_WORDS else ""))
    else:
        parts.append("no culprit in the log")
    return printable(" · ".join(parts))


def write_digest(run: RunView, incidents: Iterable[Incident], out: IO[str], each: bool = False,
                 many_files: bool = False) -> int:
    """One line per incident as it comes (``each``), else one per group, largest first, once the
    input is read. Returns the number of incidents."""
    count = 0
    for incident in incidents:
        count += 1
        if each:
            out.write(digest_line(incident, None, many_files or len(run.inputs) > 1) + "\n")
            out.flush()
    if not each:
        for group in run.groups.largest_first():
            out.write(digest_line(group.representative, group, many_files or len(run.inputs) > 1) + "\n")
    if not count:
        out.write(nothing_found(run)[0] + "\n")
    return count
