"""What ``--since``, ``--until``, ``--constraint``, ``--table``, ``--database``, ``--application``,
``--user`` and ``--sqlstate`` report (issue 29 §3), against the scenarios played on a real server.

Expected subsets come from the scenario definitions in tests/scenarios.py (their constraints,
SQLSTATEs, applications and the order they are played in). The log's own timestamps, read from
the csvlog file here, only pick a cut point between two scenarios.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from logdiag.diagnosis.filters import FilterError, ReportFilter, parse_moment
from logdiag.diagnosis.incidents import Incident
from logdiag.pipeline import Run, analyze
from tests.scenarios import SCENARIOS, fk_name

REPO = Path(__file__).resolve().parent.parent
NAMES = [s.name for s in SCENARIOS]
EXPECTED = [s for s in SCENARIOS if s.expected is not None]
#: csvlog's columns (the same in 15 and 18 for these)
LOG_TIME, SEVERITY, SQLSTATE, MESSAGE, APPLICATION = 0, 11, 12, 13, 22


def _played(only: ReportFilter, log: Path) -> tuple[Run, list[str | None]]:
    """The run over the scenarios' csvlog under ``only``, and what the reported incidents broke
    (their constraints; ``deadlock`` for a deadlock)."""
    run, incidents = _reported(only, log)
    return run, [i.subject for i in incidents]


def _reported(only: ReportFilter, log: Path) -> tuple[Run, list[Incident]]:
    run = analyze([str(log)], only=only)
    return run, list(run.incidents())


#: Scenarios with more than one incident: both sessions of ``twins`` fail at COMMIT (its definition).
SESSIONS_FAILING = {"twins": 2}
#: After every scenario, ``transaction_rollbacks`` (tests/scenarios.py) plays one deadlock: an
#: incident since issue 28, reported as ``deadlock``.
DEADLOCKS = ["deadlock"]


def _constraints(scenarios: list) -> list[str | None]:
    """The constraints of those scenarios' incidents, sorted (one a failing session)."""
    return sorted(
        s.expected.constraint or "(unnamed)"
        for s in scenarios if s.expected is not None for _ in range(SESSIONS_FAILING.get(s.name, 1))
    )


def _count(scenarios: list) -> int:
    """How many incidents those scenarios make."""
    return len(_constraints(scenarios))


def _rows(log: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(log.read_text(encoding="utf-8"), newline="")))


def _wall_clock(row: list[str]) -> tuple[datetime, str]:
    """A csvlog row's time as the server wrote it: the wall clock of its zone, and the zone's name."""
    clock, _, zone = row[LOG_TIME].rpartition(" ")
    return datetime.strptime(clock, "%Y-%m-%d %H:%M:%S.%f"), zone


def _between(earlier: list[str], later: list[str]) -> datetime:
    """A wall-clock time strictly between two records' (the log's zone)."""
    first, _ = _wall_clock(earlier)
    last, _ = _wall_clock(later)
    assert first < last, "the two records carry the same time: no cut between them"
    return first + (last - first) / 2


def _error_of(rows: list[list[str]], application: str) -> list[str]:
    """The first ERROR record of that application (a scenario runs under its own name)."""
    return next(r for r in rows if r[SEVERITY] == "ERROR" and r[APPLICATION] == application)


def _instant(row: list[str], wall: datetime) -> datetime:
    """The instant of a wall-clock time of that record's zone."""
    _, zone = _wall_clock(row)
    return wall.replace(tzinfo=timezone.utc if zone in ("UTC", "GMT") else ZoneInfo(zone))


@pytest.fixture(scope="module")
def log(scenario_logs: dict[str, Path]) -> Path:
    return scenario_logs["csvlog"]


@pytest.fixture(scope="module")
def rows(log: Path) -> list[list[str]]:
    return _rows(log)


class TestParse:
    """Reading the options' values: the one place they are checked."""

    NOW = datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)

    @pytest.mark.parametrize(("text", "back"), [
        ("2h", timedelta(hours=2)), ("30m", timedelta(minutes=30)), ("45s", timedelta(seconds=45)),
        ("1d", timedelta(days=1)), ("1 w", timedelta(weeks=1)), ("90M", timedelta(minutes=90)),
    ])
    def test_relative_is_now_minus(self, text, back):
        """A duration means so long before now, an instant."""
        assert parse_moment(text, now=self.NOW) == self.NOW - back

    def test_without_a_zone_is_a_wall_clock(self):
        """A time without a zone stays naive: the wall clock of the log's own zone."""
        assert parse_moment("2026-11-21 07:22:17.5") == datetime(2026, 11, 21, 7, 22, 17, 500000)
        assert parse_moment("2026-11-21") == datetime(2026, 11, 21)

    @pytest.mark.parametrize(("text", "offset"), [
        ("2026-11-21T07:22:17Z", 0), ("2026-11-21 07:22:17 UTC", 0), ("2026-11-21 07:22+02:00", 120),
        ("2026-11-21 07:22:17.123456789-0530", -330),
    ])
    def test_with_a_zone_is_an_instant(self, text, offset):
        """A time with a zone is aware, at that offset."""
        moment = parse_moment(text)
        assert moment.utcoffset() == timedelta(minutes=offset)

    @pytest.mark.parametrize(("options", "option"), [
        ({"since": "yesterday-ish"}, "--since"), ({"until": "2026-13-01"}, "--until"),
        ({"since": "2026-11-21 07:00+25:00"}, "--since"), ({"sqlstate": ["2"]}, "--sqlstate"),
        ({"sqlstate": ["235030"]}, "--sqlstate"), ({"since": "1h", "until": "2h"}, "--until"),
        ({"constraint": [""]}, "--constraint"),
    ])
    def test_bad_values_name_their_option(self, options, option):
        """A value that cannot be read is a FilterError that names its option."""
        with pytest.raises(FilterError) as caught:
            ReportFilter.parse(**options, now=self.NOW)
        assert caught.value.option == option

    def test_sqlstates_are_read_in_capitals(self):
        """``40p01`` is 40P01."""
        assert ReportFilter.parse(sqlstate=["40p01", "23"]).sqlstates == {"40P01", "23"}


@pytest.mark.postgres
class TestScenarios:
    """The filters over the scenarios' log (the session's, on the default server)."""

    def test_no_filter_reports_every_scenario(self, log):
        """Without filters every scenario's incident is reported and none is counted as left out."""
        run, found = _played(ReportFilter(), log)
        assert sorted(found) == sorted(_constraints(EXPECTED) + DEADLOCKS)
        assert run.filtered_incidents == 0

    def test_culprit_before_since_is_still_found(self, log, rows):
        """``far`` writes its culprit, then 3,000 statements, then COMMIT: with --since between the
        culprit and the COMMIT (and --until before the next scenario), its incident alone is
        reported, with the culprit written before --since."""
        far = next(s for s in SCENARIOS if s.name == "far")
        culprit = next(r for r in rows if r[APPLICATION] == "far" and r[MESSAGE] == f"statement: {far.expected.culprit}")
        error = _error_of(rows, "far")
        after = _error_of(rows, NAMES[NAMES.index("far") + 1])
        since, until = _between(culprit, error), _between(error, after)
        run, incidents = _reported(ReportFilter.parse(since=str(since), until=str(until)), log)
        assert [i.constraint for i in incidents] == [far.expected.constraint]
        (incident,) = incidents
        assert incident.culprits[0].statement == far.expected.culprit
        assert incident.culprits[0].at is not None and incident.culprits[0].at < _instant(culprit, since)
        assert run.filtered_incidents == _count(EXPECTED) + len(DEADLOCKS) - 1

    @pytest.mark.parametrize("bound", ["wall clock", "instant"])
    def test_since_and_until_cut_between_two_scenarios(self, log, rows, bound):
        """A cut between ``dupe`` and ``parentdel``: --since reports the scenarios from parentdel on,
        --until those before it, whether the cut is the log's wall clock or an instant at another offset."""
        cut = _between(_error_of(rows, "dupe"), _error_of(rows, "parentdel"))
        if bound == "instant":
            text = _instant(rows[0], cut).astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
        else:
            text = cut.isoformat(sep=" ")
        later = EXPECTED[[s.name for s in EXPECTED].index("parentdel"):]
        earlier = EXPECTED[: len(EXPECTED) - len(later)]
        run, found = _played(ReportFilter.parse(since=text), log)
        assert sorted(found) == sorted(_constraints(later) + DEADLOCKS)
        assert run.stats()["filtered_incidents"] == _count(earlier)
        run, found = _played(ReportFilter.parse(until=text), log)
        assert sorted(found) == _constraints(earlier)
        assert run.stats()["filtered_incidents"] == _count(later) + len(DEADLOCKS)
        # The pitfalls and the ordinary errors are played after parentdel: none before the cut.
        assert run.findings == []
        assert not {"22012", "42P01", "40P01", "40001"} & {e.sqlstate for e in run.other_errors}

    def test_sqlstate_class_and_code(self, log):
        """``--sqlstate 23 --sqlstate 40P01``: the class-23 scenarios' incidents (not the 40002 of
        the constraint triggers) and the one deadlock (an incident since issue 28)."""
        run, found = _played(ReportFilter.parse(sqlstate=["23", "40P01"]), log)
        class_23 = [s for s in EXPECTED if s.expected.sqlstate.startswith("23")]
        assert sorted(found) == sorted(_constraints(class_23) + DEADLOCKS)
        assert run.filtered_incidents == _count(EXPECTED) - _count(class_23) > 0
        assert run.other_errors == []  # the deadlock is an incident; the serialization failures are 40001
        assert all(f.sqlstate and f.sqlstate.startswith("23") for f in run.findings)

    def test_application(self, log):
        """``--application never --application dupe``: those two scenarios' incidents, and no
        finding or other error (their sessions had none); names are exact."""
        run, found = _played(ReportFilter.parse(application=["never", "dupe"]), log)
        assert sorted(found) == sorted([fk_name("never"), "dupe_email"])
        assert run.findings == [] and run.other_errors == []

    def test_application_of_a_finding(self, log):
        """``--application notdef``: the not_deferrable finding, no incident, and not the
        division by zero of the ``notdef-decoy`` session."""
        run, found = _played(ReportFilter.parse(application=["notdef"]), log)
        assert found == []
        assert [f.kind for f in run.findings] == ["not_deferrable"]
        assert run.other_errors == []

    def test_other_errors_by_application(self, log):
        """``--application noise``: no incident; psql's ordinary errors, among them the division by
        zero and the missing table it ran."""
        run, found = _played(ReportFilter.parse(application=["noise"]), log)
        assert found == [] and run.findings == []
        assert {"22012", "42P01"} <= {e.sqlstate for e in run.other_errors}
        assert run.filtered_incidents == _count(EXPECTED) + len(DEADLOCKS)

    def test_constraint_leaves_other_errors_out(self, log):
        """``--constraint composite_fk``: that incident; other errors have no constraint."""
        run, found = _played(ReportFilter.parse(constraint=["composite_fk"]), log)
        assert found == ["composite_fk"]
        assert run.other_errors == [] and run.findings == []

    @pytest.mark.parametrize("table", ["never_child", "never_parent", "public.never_child"])
    def test_table_or_the_table_it_references(self, log, table):
        """``--table``: the incident on the child table, or on the parent it references, qualified or not."""
        _, found = _played(ReportFilter.parse(table=[table]), log)
        assert found == [fk_name("never")]

    def test_database_and_user(self, log):
        """Every scenario ran as postgres on postgres (tests/pgcluster.py); another database has none."""
        _, found = _played(ReportFilter.parse(database=["postgres"], user=["postgres"]), log)
        assert sorted(found) == sorted(_constraints(EXPECTED) + DEADLOCKS)
        run, found = _played(ReportFilter.parse(database=["other"]), log)
        assert found == [] and run.findings == [] and run.other_errors == []
        assert run.filtered_incidents == _count(EXPECTED) + len(DEADLOCKS)


@pytest.mark.postgres
def test_cli_filters_report_and_count(log, rows):
    """``logdiag analyze --format json --sqlstate 23 --since <wall clock>`` under another local
    zone (a time without a zone is the log's, not the machine's): the class-23 scenarios from
    parentdel on, and stats.filtered_incidents the rest; the text report's run summary says so."""
    cut = _between(_error_of(rows, "dupe"), _error_of(rows, "parentdel"))
    later = EXPECTED[[s.name for s in EXPECTED].index("parentdel"):]
    wanted = [s for s in later if s.expected.sqlstate.startswith("23")]
    env = {**os.environ, "TZ": "Pacific/Auckland"}
    args = [sys.executable, "-m", "logdiag", "analyze", str(log), "--sqlstate", "23", "--since", cut.isoformat(sep=" ")]
    result = subprocess.run([*args, "--format", "json"], capture_output=True, text=True, check=False, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert sorted(i["constraint"] for i in report["incidents"]) == _constraints(wanted)
    assert report["stats"]["incidents"] == _count(wanted)
    left_out = _count(EXPECTED) + len(DEADLOCKS) - _count(wanted)
    assert report["stats"]["filtered_incidents"] == left_out
    text = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    assert f"logdiag: {left_out} incidents left out by the filters" in text.stderr


def test_cli_bad_value_is_a_usage_error():
    """``--sqlstate 2`` and ``--since yesterday-ish`` are usage errors (exit 2) naming the option."""
    for option, value in (("--sqlstate", "2"), ("--since", "yesterday-ish")):
        result = subprocess.run(
            [sys.executable, "-m", "logdiag", "analyze", str(REPO / "sample_logs" / "postgresql.csv"), option, value],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 2
        assert option in result.stderr and value in result.stderr
        assert result.stdout == ""
