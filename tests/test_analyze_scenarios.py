"""logdiag analyze against scenarios played on a real server, under several logging settings.

Every expected answer comes from the scenario definition in tests/scenarios.py (what the test
executed), never from logdiag's output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from logdiag.diagnosis.incidents import Finding, Incident, OtherError
from logdiag.pipeline import analyze
from tests.conftest import DEFAULT_SERVER, SERVERS
from tests.scenarios import RICH_PREFIX, SCENARIOS, Scenario

VARIANTS = {
    "all-rich": ({"log_line_prefix": RICH_PREFIX, "log_statement": "all"}, ("csvlog", "jsonlog", "stderr")),
    "all-default": ({"log_line_prefix": "%m [%p] ", "log_statement": "all"}, ("stderr",)),
    "mod": ({"log_line_prefix": "%m [%p] ", "log_statement": "mod"}, ("csvlog", "stderr")),
    "duration": (
        {"log_line_prefix": "%m [%p] ", "log_statement": "none", "log_min_duration_statement": "0"},
        ("csvlog", "stderr"),
    ),
}
#: Every variant on the default server; on the others, the variant that logs everything, in its
#: three formats: what a server version changes shows there (issue 25), the logging settings'
#: differences are no version's, and the suite has a time budget.
CASES = [
    pytest.param(server, variant, fmt, s.name, id=f"pg{server}-{variant}-{fmt}-{s.name}")
    for server in SERVERS
    for variant, (_, formats) in VARIANTS.items()
    if server == DEFAULT_SERVER or variant == "all-rich"
    for fmt in formats
    for s in SCENARIOS
]
BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass
class Analysed:
    """One analysis of a played log, as the library gives it: read once, for every test of it."""

    incidents: list[Incident]
    other_errors: list[OtherError]
    findings: list[Finding]


class Played:
    """``played(variant, server)``: format -> (incidents as JSON objects, other errors, log file
    path); ``played.run(variant, fmt, server)``: that analysis's objects (:class:`Analysed`).

    The scenarios are played once per server and variant (``pg_servers.scenario_logs``, whose runs
    other modules read too: "all-rich" is conftest's ``scenario_logs``). Each log is analysed
    once, with the variant's prefix for stderr."""

    def __init__(self, pg_servers) -> None:
        self._servers = pg_servers
        self._results: dict[tuple[str, str], dict[str, tuple[list[dict], list[dict], Path]]] = {}
        self._runs: dict[tuple[str, str, str], Analysed] = {}

    def __call__(self, variant: str, server: str = DEFAULT_SERVER) -> dict[str, tuple[list[dict], list[dict], Path]]:
        if (server, variant) not in self._results:
            settings, formats = VARIANTS[variant]
            paths = self._servers.scenario_logs(server, **settings)
            self._results[server, variant] = {}
            for fmt in formats:
                prefix = settings["log_line_prefix"] if fmt == "stderr" else None
                run = analyze([str(paths[fmt])], log_line_prefix=prefix)
                objects = list(run.incidents())
                # each with the settings advice of the run that concerns it (said once per run)
                for index, incident in enumerate(objects):
                    assert {a for a, among in run.settings_advice.items() if index in among} == set(incident.settings_advice)
                    assert not set(incident.settings_advice) & set(incident.hints)
                assert run.inputs[0].skipped_total == 0
                self._runs[server, variant, fmt] = Analysed(objects, run.other_errors, run.findings)
                incidents = [{**i.to_dict(), "settings_advice": list(i.settings_advice)} for i in objects]
                self._results[server, variant][fmt] = (incidents, [e.to_dict() for e in run.other_errors], paths[fmt])
        return self._results[server, variant]

    def run(self, variant: str, fmt: str, server: str = DEFAULT_SERVER) -> Analysed:
        """The analysis of that log: ``analyze([log], log_line_prefix=<the variant's, for stderr>)``
        with its incidents read to the end."""
        self(variant, server)
        return self._runs[server, variant, fmt]


@pytest.fixture(scope="module")
def played(pg_servers) -> Played:
    return Played(pg_servers)


_MOD_LOGS = ("INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "TRUNCATE", "CREATE", "ALTER")


def _logged(scenario: Scenario, variant: str, statement: str) -> bool:
    """Whether the server logs this statement before the error under the variant's settings (for
    a write with the checks off, and the statement that switched them off)."""
    words = statement.split()[0].upper()
    if variant == "mod":
        off = scenario.checks_off_by
        return words in _MOD_LOGS and (off is None or off.split()[0].upper() in _MOD_LOGS)
    return True


def _find(incidents: list[dict], scenario: Scenario) -> list[dict]:
    expected = scenario.expected
    if expected is not None and expected.constraint is None:
        return [i for i in incidents if i["sqlstate"] == expected.sqlstate]
    constraint = expected.constraint if expected else f"{scenario.name}_child_parent_id_fkey"
    return [i for i in incidents if i["constraint"] == constraint]


def _statements_sent(query: str) -> list[str]:
    """The statements of a query string the scenarios sent (none has a semicolon inside a literal)."""
    return [part.strip() for part in query.split(";") if part.strip()]


def _line_shows(path: Path, fmt: str, line: int, statement: str) -> bool:
    """Read the log file itself: does that physical line start the record of that statement?"""
    text = path.read_text(encoding="utf-8").split("\n")[line - 1]
    first = statement.split("\n")[0]
    if fmt == "jsonlog":
        message = json.loads(text)["message"]
        return message.endswith(statement) or statement in _statements_sent(message.partition(": ")[2])
    if fmt == "csvlog":
        return first.replace('"', '""') in text
    return first in text


@pytest.mark.postgres
@pytest.mark.parametrize(("server", "variant", "fmt", "name"), CASES)
def test_scenario(played, server, variant, fmt, name):
    """The incident, its key, its timing and the culprit statement the scenario executed."""
    scenario = BY_NAME[name]
    incidents, other_errors, path = played(variant, server)[fmt]
    found = _find(incidents, scenario)
    expected = scenario.expected
    if expected is None:
        assert found == []
        return
    has_sqlstate = fmt != "stderr" or variant == "all-rich"
    if scenario.needs_sqlstate and not has_sqlstate:
        # A user-raised 40002 is recognisable only by its SQLSTATE: without %e it is another error.
        assert any(e["message"] and "negative" in e["message"] for e in other_errors)
        assert found == []
        return
    assert found, f"no incident for {name}"
    incident = found[0]
    if expected.sqlstate == "40002" and not has_sqlstate:
        # A constraint trigger's error without %e: told by its CONTEXT, its code unknown and said so.
        assert incident["sqlstate"] is None and incident["condition"] is None
        assert "no SQLSTATE" in incident["explanation"]
    else:
        assert incident["sqlstate"] == expected.sqlstate
    assert incident["timing"] == expected.timing
    if expected.sqlstate == "40002":
        assert incident["constraint_kind"] == "trigger"
    assert incident["key"] == expected.key
    if expected.table:
        assert incident["table"] == expected.table
    raised = incident["raised_by"]["statement"]
    if expected.raised_by is None:
        assert raised is None
    else:
        assert raised is not None and raised.rstrip(";") == expected.raised_by.rstrip(";")
    # Which statement of a query of several failed is told by the command tag, which only
    # csvlog and jsonlog carry here (no variant has %i).
    several = expected.raised_by is not None and len(_statements_sent(expected.raised_by)) > 1
    asks_for_tag = any("%i" in advice for advice in incident["settings_advice"])
    assert asks_for_tag == (several and fmt == "stderr")
    culprits = incident["culprits"]
    assert all("9001, 42" not in c["statement"] for c in culprits), "a decoy session's statement"
    hints = incident["hints"]
    if expected.culprit is None:
        assert culprits == [] and scenario.hint is not None
        assert any(scenario.hint in hint for hint in hints), hints
        assert not any("log_statement = 'none'" in hint for hint in hints + incident["settings_advice"])
        return
    if not _logged(scenario, variant, expected.culprit):
        assert not any(c["statement"] == expected.culprit for c in culprits)
        if not culprits:  # the log shows statements: the hint names what was missing, not the setting
            assert not any("log_statement = 'none'" in hint for hint in hints + incident["settings_advice"])
            assert any("inside a function" in hint for hint in hints), hints
        return
    assert culprits, f"no culprit for {name}: {incident['explanation']}"
    top = culprits[0]
    assert top["statement"] == expected.culprit
    if name == "parentupd":
        assert all(not c["statement"].startswith("UPDATE") for c in culprits)
    if name == "matchfull":  # the rows with all or none of the key NULL are fine
        assert [c["statement"] for c in culprits] == [expected.culprit]
    assert top["match"] == expected.match
    if variant == "all-rich" and expected.match == "key":
        assert top["confidence"] == "high"
    if expected.parameters is not None:
        assert top["parameters"] == expected.parameters
    if top["source"] == incident["raised_by"]["source"]:
        # Its only trace is the ERROR's STATEMENT field (log_min_duration_statement logs a
        # statement once it has succeeded): the culprit points at the ERROR record, and is its
        # statement or, when it sent several in one query, one of them.
        assert top["statement"] == raised or top["statement"] in _statements_sent(raised)
    else:
        assert _line_shows(path, fmt, top["source"]["line"], top["statement"])
    roles = {r["role"] for r in incident["related"]}
    wanted = set(expected.related)
    if variant == "mod":
        # SAVEPOINT, ROLLBACK TO and SET are not logged
        wanted -= {"rolled_back_parent", "savepoint_rollback", "deferred_by", "deferral_ignored"}
    assert wanted <= roles
    # A SET CONSTRAINTS is one or the other, and only where the scenario says.
    assert roles & {"deferred_by", "deferral_ignored"} <= wanted
    if "deferral_ignored" in roles:
        # NOT DEFERRABLE: make it deferrable; outside a block: run the SET inside the transaction.
        fix = "inside the transaction it is meant for" if name == "outside" else "ALTER CONSTRAINT"
        assert any(fix in hint for hint in incident["hints"])


@pytest.mark.postgres
@pytest.mark.parametrize("server", SERVERS, ids=lambda server: f"pg{server}")
@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
def test_two_sessions_each_get_their_own_culprit(played, fmt, server):
    """Two sessions fail on the same constraint at once: each incident names its own session's write."""
    incidents, _, _ = played("all-rich", server)[fmt]
    twins = [i for i in incidents if i["constraint"] == "twins_child_parent_id_fkey"]
    assert [(i["key"], i["culprits"][0]["statement"]) for i in twins] == [
        ({"parent_id": "43"}, "INSERT INTO twins_child VALUES (281, 43)"),
        ({"parent_id": "42"}, "INSERT INTO twins_child VALUES (280, 42)"),
    ]
    assert [i["session"]["application"] for i in twins] == ["twins-b", "twins-a"]


@pytest.mark.postgres
def test_capped_history_says_what_it_dropped(played):
    """With a 100-statement cap, the 'far' culprit (3000 statements before COMMIT) is dropped, and said so."""
    from logdiag.diagnosis.sessions import SessionTracker

    _, _, path = played("all-rich")["csvlog"]
    tracker = SessionTracker(max_statements=100)
    run = analyze([str(path)], tracker=tracker)
    far = next(i for i in run.incidents() if i.constraint == "far_child_parent_id_fkey")
    assert "INSERT INTO far_child VALUES (190, 42);" not in [c.statement for c in far.culprits]
    assert any("dropped" in hint for hint in far.hints) or "dropped" in far.explanation
    assert tracker.stats.dropped_statements >= 2900
    assert all(len(s.transaction.entries) <= 100 for s in tracker.sessions.values())


@pytest.mark.postgres
def test_session_cap_evicts_and_counts(played):
    """With room for two open sessions, sessions are evicted and counted, and reading goes on."""
    from logdiag.diagnosis.sessions import SessionTracker

    _, _, path = played("all-rich")["csvlog"]
    tracker = SessionTracker(max_sessions=2)
    run = analyze([str(path)], tracker=tracker)
    assert list(run.incidents())
    assert len(tracker.sessions) <= 2
    assert tracker.stats.evicted_sessions > 0


@pytest.mark.postgres
@pytest.mark.parametrize("variant", ["all-rich", "all-default"])
def test_text_and_markdown_show_the_errors_own_words(played, variant):
    """Every incident's panel and markdown section show the server's message and DETAIL, whatever
    the kind (a trigger's are its author's own words), and the trigger's whether or not %e is there."""
    from io import StringIO

    from rich.console import Console

    from logdiag.report.markdown import incident_markdown
    from logdiag.report.text import incident_panel

    fmt = "csvlog" if variant == "all-rich" else "stderr"
    incidents = played.run(variant, fmt).incidents
    kinds = {i.constraint_kind.value for i in incidents if i.constraint_kind is not None}  # None: a deadlock
    assert {"trigger", "foreign_key", "unique", "exclusion"} <= kinds
    for number, incident in enumerate(incidents, 1):
        out = StringIO()
        Console(file=out, width=400, color_system=None).print(incident_panel(number, incident))
        shown = out.getvalue()
        assert incident.message in shown
        # a deadlock's DETAIL has a line per process of its cycle: each is shown (issue 28)
        assert incident.detail is None or all(line in shown for line in incident.detail.splitlines())
        section = incident_markdown(number, incident)
        assert "**Error**" in section and (incident.detail is None or "**Detail**" in section)
    triggers = [i for i in incidents if i.constraint == "trig_balance"]
    assert [i.message for i in triggers] == ["balance of account 1 is negative"]
    assert triggers[0].detail == "Key (id)=(1) has a negative balance."


@pytest.mark.postgres
@pytest.mark.parametrize(("variant", "fmt"), [(v, f) for v, (_, formats) in VARIANTS.items() for f in formats])
def test_not_deferrable_is_a_finding_with_its_aborted_statements(played, variant, fmt):
    """SET CONSTRAINTS on a NOT DEFERRABLE key is one finding, with the table from the DDL, the fix,
    and the 25P02 errors of its own transaction as ``aborted_after`` (not the other session's)."""
    from tests.scenarios import NOTDEF_AFTER, NOTDEF_SET

    _, _, path = played(variant)[fmt]
    run = played.run(variant, fmt)
    found = [f.to_dict() for f in run.findings if f.constraint == "notdef_child_parent_id_fkey"]
    assert len(found) == 1
    finding = found[0]
    assert finding["kind"] == "not_deferrable" and finding["severity"] == "error"
    assert finding["sqlstate"] == "42809"
    assert finding["sqlstate_inferred"] == (fmt == "stderr" and variant != "all-rich")
    assert finding["table"] == "notdef_child"
    assert finding["statement"] == NOTDEF_SET
    assert any("ALTER TABLE notdef_child ALTER CONSTRAINT notdef_child_parent_id_fkey" in h for h in finding["hints"])
    lines = path.read_text(encoding="utf-8").split("\n")
    assert "is not deferrable" in lines[finding["source"]["line"] - 1]
    related = finding["related"]
    assert [r["role"] for r in related] == ["aborted_after", "aborted_after"]
    assert [r["statement"] for r in related] == list(NOTDEF_AFTER)
    for item in related:
        assert "current transaction is aborted" in lines[item["source"]["line"] - 1]
    # The finding took its consequences; the decoy session's 25P02 is still another error.
    taken = {r["source"]["line"] for r in related}
    aborted = [e for e in run.other_errors if e.message and e.message.startswith("current transaction is aborted")]
    assert aborted and not taken & {e.source.line for e in aborted}
    assert all(e.source.line != finding["source"]["line"] for e in run.other_errors)


@pytest.mark.postgres
@pytest.mark.parametrize(("variant", "fmt"), [(v, f) for v, (_, formats) in VARIANTS.items() for f in formats])
def test_set_constraints_outside_a_block_is_a_finding_linked_to_its_incident(played, variant, fmt):
    """SET CONSTRAINTS outside a transaction block (WARNING 25P01) is a finding at the WARNING's
    line, whose ``caused`` is the ERROR of the statement that then failed at once; the incident
    has the SET as ``deferral_ignored``. With log_statement = 'mod' the SET is not logged: none."""
    from tests.scenarios import OUTSIDE_SET

    _, _, path = played(variant)[fmt]
    run = played.run(variant, fmt)
    incidents = [i.to_dict() for i in run.incidents if i.constraint == "outside_child_parent_id_fkey"]
    found = [f.to_dict() for f in run.findings if f.kind == "set_constraints_outside_transaction"]
    assert len(incidents) == 1
    if variant == "mod":
        assert found == []
        return
    assert len(found) == 1
    finding, incident = found[0], incidents[0]
    assert finding["statement"] == OUTSIDE_SET and finding["severity"] == "warning"
    assert finding["sqlstate"] == "25P01"
    assert finding["sqlstate_inferred"] == (fmt == "stderr" and variant != "all-rich")
    lines = path.read_text(encoding="utf-8").split("\n")
    assert "SET CONSTRAINTS can only be used in transaction blocks" in lines[finding["source"]["line"] - 1]
    assert [(r["role"], r["source"]) for r in finding["related"]] == [("caused", incident["raised_by"]["source"])]
    ignored = [r for r in incident["related"] if r["role"] == "deferral_ignored"]
    assert [r["statement"] for r in ignored] == [OUTSIDE_SET]
    assert _line_shows(path, fmt, ignored[0]["source"]["line"], OUTSIDE_SET)


@pytest.mark.postgres
def test_inferred_sqlstates_are_the_servers(played):
    """Without %e, other errors with PostgreSQL's fixed messages get the SQLSTATE the same server
    wrote for the same records in its csvlog, marked inferred; the others stay unknown. Among
    them serialization failures (40001) of both kinds; a deadlock (40P01) is an incident (issue 28),
    with the SQLSTATE its message implies."""
    csv_errors, stderr_errors = played("mod")["csvlog"][1], played("mod")["stderr"][1]
    deadlocks = [[i["sqlstate"] for i in played("mod")[fmt][0] if i["condition"] == "deadlock_detected"]
                 for fmt in ("csvlog", "stderr")]
    assert deadlocks == [["40P01"], ["40P01"]]
    assert [e["message"] for e in stderr_errors] == [e["message"] for e in csv_errors]
    inferred = set()
    for ours, servers in zip(stderr_errors, csv_errors, strict=True):
        assert not servers["sqlstate_inferred"]
        if ours["sqlstate_inferred"]:
            assert ours["sqlstate"] == servers["sqlstate"], ours["message"]
            inferred.add(ours["sqlstate"])
        else:
            assert ours["sqlstate"] is None
    assert {"42601", "42P01", "22012", "22P02", "25P02", "40001"} <= inferred
    serialization = [e["message"] for e in stderr_errors if e["sqlstate"] == "40001"]
    assert len(serialization) == 2 and len(set(serialization)) == 2  # a concurrent update, and write skew


@pytest.mark.postgres
@pytest.mark.parametrize(("variant", "fmt"), [(v, f) for v, (_, formats) in VARIANTS.items() for f in formats])
@pytest.mark.parametrize("name", ["replica", "distrig"])
def test_checks_disabled_is_a_finding_linked_to_its_incident(played, variant, fmt, name):
    """Rows written while foreign-key checks were off (session_replication_role = replica, DISABLE
    TRIGGER ALL) make a later ADD/VALIDATE CONSTRAINT fail: one checks_disabled finding at the
    statement that switched them off, with the window's end, the session's committed writes into
    the table inside it as ``written_unchecked`` and the incident's ERROR as ``caused``; the
    incident has the finding's statement as ``checks_disabled`` and the query that lists orphans.
    With log_statement = 'mod' a SET is not logged: no window, no finding."""
    from tests import scenarios

    scenario = BY_NAME[name]
    assert scenario.expected is not None and scenario.checks_off_by is not None
    _, _, path = played(variant)[fmt]
    run = played.run(variant, fmt)
    incidents = [i.to_dict() for i in run.incidents if i.constraint == scenario.expected.constraint]
    found = [f.to_dict() for f in run.findings if f.kind == "checks_disabled" and f.constraint == scenario.expected.constraint]
    assert len(incidents) == 1
    incident = incidents[0]
    if not _logged(scenario, variant, scenario.checks_off_by):
        assert found == [] and not any(r["role"] == "checks_disabled" for r in incident["related"])
        return
    assert len(found) == 1
    finding = found[0]
    assert finding["statement"] == scenario.checks_off_by and finding["severity"] == "log"
    assert finding["table"] == scenario.expected.table
    assert _line_shows(path, fmt, finding["source"]["line"], scenario.checks_off_by)
    ends = {"replica": "RESET session_replication_role;", "distrig": "ALTER TABLE distrig_orders ENABLE TRIGGER ALL;"}
    written = {
        "replica": [scenarios.REPLICA_CULPRIT, "INSERT INTO replica_orders VALUES (12, 44);"],
        "distrig": ["INSERT INTO distrig_orders VALUES (10, 2);", scenarios.DISTRIG_CULPRIT],
    }
    related = finding["related"]
    assert [r["statement"] for r in related if r["role"] == "window_end"] == [ends[name]]
    unchecked = [r for r in related if r["role"] == "written_unchecked"]
    assert [r["statement"] for r in unchecked] == written[name]
    for item in related:
        if item["role"] != "caused":
            assert _line_shows(path, fmt, item["source"]["line"], item["statement"])
    assert [(r["role"], r["source"]) for r in related if r["role"] == "caused"] == [
        ("caused", incident["raised_by"]["source"])
    ]
    linked = [r for r in incident["related"] if r["role"] == "checks_disabled"]
    assert [(r["statement"], r["source"]) for r in linked] == [(scenario.checks_off_by, finding["source"])]
    parent = {"replica": "replica_customers", "distrig": "distrig_customers"}[name]
    query = f"NOT EXISTS (SELECT FROM {parent} p WHERE p.id = c.customer_id);"
    assert query in incident["explanation"] and "may be orphans too" in incident["explanation"]


@pytest.mark.postgres
@pytest.mark.parametrize(("variant", "fmt"), [(v, f) for v, (_, formats) in VARIANTS.items() for f in formats])
@pytest.mark.parametrize("name", ["replalone", "trigalone"])
def test_checks_disabled_is_a_finding_without_an_error(played, variant, fmt, name):
    """A window of switched-off checks that no error of its session follows is a finding of its
    own: its start and end, the writes into its table that stayed (not the one rolled back, the
    one after the window, another session's or another table's), the foreign key the log's DDL
    declares and the query that lists its orphans. With log_statement = 'mod' a SET is not
    logged: no window, no finding."""
    from tests.scenarios import WINDOWS, fk_name

    window, scenario = WINDOWS[name], BY_NAME[name]
    _, _, path = played(variant)[fmt]
    prefix = VARIANTS[variant][0]["log_line_prefix"] if fmt == "stderr" else None
    run = analyze([str(path)], log_line_prefix=prefix)
    assert not [i for i in run.incidents() if i.table == window.table]
    found = [f.to_dict() for f in run.findings if f.kind == "checks_disabled" and f.table == window.table]
    if not _logged(scenario, variant, window.off):
        assert found == []
        return
    assert len(found) == 1
    finding = found[0]
    assert finding["statement"] == window.off and finding["severity"] == "log" and finding["sqlstate"] is None
    assert _line_shows(path, fmt, finding["source"]["line"], window.off)
    assert finding["constraint"] == fk_name(name)
    related = finding["related"]
    assert [r["statement"] for r in related if r["role"] == "window_end"] == [window.end]
    assert [r["statement"] for r in related if r["role"] == "written_unchecked"] == list(window.unchecked)
    assert {r["role"] for r in related} == {"window_end", "written_unchecked"}  # no error: nothing caused
    for item in related:
        assert _line_shows(path, fmt, item["source"]["line"], item["statement"])
    query = f"NOT EXISTS (SELECT FROM {name}_parent p WHERE p.id = c.parent_id);"
    assert query in finding["explanation"]


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
def test_jsonl_has_the_incidents_then_the_findings(played, fmt):
    """``analyze --format jsonl``: the incident objects as the JSON report has them, then one line
    per finding, its object with ``"type": "finding"``, in the report's order, then one per
    settings advice (``"type": "settings_advice"``)."""
    import subprocess
    import sys

    _, _, path = played("all-rich")[fmt]
    prefix = ["--log-line-prefix", RICH_PREFIX] if fmt == "stderr" else []
    command = [sys.executable, "-m", "logdiag", "analyze", "-q", *prefix]
    lines = subprocess.run([*command, "--format", "jsonl", str(path)], capture_output=True, text=True,
                           check=False).stdout.splitlines()
    report = json.loads(subprocess.run([*command, "--format", "json", str(path)], capture_output=True, text=True,
                                       check=False).stdout)
    objects = [json.loads(line) for line in lines]
    incidents = [o for o in objects if "type" not in o]
    findings = [o for o in objects if o.get("type") == "finding"]
    advice = [o for o in objects if o.get("type") == "settings_advice"]
    assert len(incidents) + len(findings) + len(advice) == len(objects)
    assert objects == [*incidents, *findings, *advice]
    assert incidents == report["incidents"]
    assert [{k: v for k, v in f.items() if k != "type"} for f in findings] == report["findings"]
    assert [{k: v for k, v in a.items() if k != "type"} for a in advice] == report["settings_advice"]
    assert {"not_deferrable", "set_constraints_outside_transaction", "checks_disabled"} <= {f["kind"] for f in findings}


@pytest.mark.postgres
def test_text_and_markdown_show_each_finding(played):
    """Every finding has its panel and markdown section: its statement, its related statements,
    its explanation; a checks_disabled finding, standing on a statement, claims no SQLSTATE."""
    from io import StringIO

    from rich.console import Console

    from logdiag.report.markdown import finding_markdown
    from logdiag.report.text import finding_panel

    run = played.run("all-rich", "csvlog")
    assert {"not_deferrable", "set_constraints_outside_transaction", "checks_disabled"} <= {f.kind for f in run.findings}
    for number, finding in enumerate(run.findings, 1):
        out = StringIO()
        Console(file=out, width=400, color_system=None).print(finding_panel(number, finding))
        shown, section = out.getvalue(), finding_markdown(number, finding)
        for text in (shown, section):
            assert str(finding.kind) in text and (finding.statement or "") in text.replace("\\", "")
            assert all(f"{r.role}" in text for r in finding.related)
            assert ("SQLSTATE unknown" in text) == (finding.sqlstate is None and finding.kind != "checks_disabled")
        assert finding.explanation[:60] in shown


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", VARIANTS["duration"][1])
@pytest.mark.parametrize("name", [s.name for s in SCENARIOS if s.expected and s.expected.parameters])
def test_the_culprits_bind_record_is_related(played, fmt, name):
    """Under log_min_duration_statement = 0 the extended protocol's ``bind`` record of the culprit
    execution (its statement and parameters) is the incident's ``culprit_bind``, just before it."""
    expected = BY_NAME[name].expected
    incidents, _, path = played("duration")[fmt]
    incident = next(i for i in incidents if i["constraint"] == expected.constraint)
    top = incident["culprits"][0]
    binds = [r for r in incident["related"] if r["role"] == "culprit_bind"]
    assert [r["statement"] for r in binds] == [expected.culprit]
    line = path.read_text(encoding="utf-8").split("\n")[binds[0]["source"]["line"] - 1]
    assert "  bind " in line and expected.culprit.replace('"', '""' if fmt == "csvlog" else '"') in line
    if top["source"] != incident["raised_by"]["source"]:
        assert binds[0]["source"]["line"] < top["source"]["line"]
