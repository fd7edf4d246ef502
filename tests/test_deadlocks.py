"""Deadlocks (40P01) explained from every side of the cycle, on real servers (issue 28).

Each scenario makes a real deadlock: one connection per process of the cycle, each in a thread;
every process takes its first locks, then (after a barrier) asks for the lock the next one
holds, one after the other with a pause longer than ``deadlock_timeout`` in between, so that
only the last one to wait finds the cycle: it is the victim. What logdiag must report comes from
what the scenario executed (its statements, the pids and the error each connection got), never
from logdiag's output. One cluster per server; its three log files are read from that one run.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import ClientCursor

from logdiag.diagnosis.sessions import SessionTracker
from logdiag.pipeline import Run
from logdiag.reader import LogReader
from tests.conftest import SERVERS, copy_logs
from tests.pgcluster import PgCluster
from tests.scenarios import RICH_PREFIX

pytestmark = pytest.mark.postgres

FORMATS = ("csvlog", "jsonlog", "stderr")
#: deadlock_timeout; each process waits this long and more before the next one asks for its lock.
DEADLOCK_TIMEOUT_MS = 100
PAUSE = 0.4

SETUP = (
    "CREATE TABLE dl_acct (id int PRIMARY KEY, bal int NOT NULL);\n"
    "INSERT INTO dl_acct VALUES (1, 0), (2, 0), (3, 0), (4, 0);\n"
    "CREATE TABLE dl_item (id int PRIMARY KEY, qty int NOT NULL);\n"
    "INSERT INTO dl_item VALUES (1, 0), (2, 0), (3, 0);\n"
    "CREATE TABLE dl_left (id int);\nCREATE TABLE dl_right (id int);\n"
    "CREATE TABLE dl_parent (id int PRIMARY KEY);\n"
    "CREATE TABLE dl_child (id int PRIMARY KEY, parent_id int REFERENCES dl_parent);\n"
    "INSERT INTO dl_parent VALUES (1), (2);\n"
    "CREATE TABLE dl_mod (id int PRIMARY KEY, v int);\nINSERT INTO dl_mod VALUES (1, 0), (2, 0);\n"
)


@dataclass(frozen=True)
class Side:
    """One process of the cycle: its first statements (they take locks), then the statement that
    waits for the lock the next side took with ``holds_for_previous``."""

    first: tuple[str, ...]
    waits: str
    #: the statement of ``first`` that took the lock the previous side (cyclically) waits for
    holds_for_previous: str
    #: the waited row's key, when the waiting statement names it
    key: dict[str, str] = field(default_factory=dict)
    table: str | None = None
    log_statement: str | None = None  # None: the server's setting; "none": this session logs nothing
    first_logged: bool = True  # False: the log does not show ``first`` (log_statement none, or mod and SELECT)


@dataclass(frozen=True)
class Scenario:
    name: str
    sides: tuple[Side, ...]
    match: str = "key"  # how each lock taker matches what the previous side waited for


SCENARIOS = (
    Scenario("updates", (
        Side(("UPDATE dl_acct SET bal = bal + 1 WHERE id = 1",), "UPDATE dl_acct SET bal = bal - 1 WHERE id = 2",
             "UPDATE dl_acct SET bal = bal + 1 WHERE id = 1", {"id": "2"}, "dl_acct"),
        Side(("UPDATE dl_acct SET bal = bal + 1 WHERE id = 2",), "UPDATE dl_acct SET bal = bal - 1 WHERE id = 1",
             "UPDATE dl_acct SET bal = bal + 1 WHERE id = 2", {"id": "1"}, "dl_acct"),
    )),
    Scenario("three_ways", (
        Side(("SELECT qty FROM dl_item WHERE id = 1 FOR UPDATE",), "UPDATE dl_item SET qty = 1 WHERE id = 2",
             "SELECT qty FROM dl_item WHERE id = 1 FOR UPDATE", {"id": "2"}, "dl_item"),
        Side(("SELECT 1", "DELETE FROM dl_item WHERE id = 2"), "UPDATE dl_item SET qty = 2 WHERE id = 3",
             "DELETE FROM dl_item WHERE id = 2", {"id": "3"}, "dl_item"),
        Side(("UPDATE dl_item SET qty = 3 WHERE id = 3",), "SELECT qty FROM dl_item WHERE id = 1 FOR UPDATE",
             "UPDATE dl_item SET qty = 3 WHERE id = 3", {"id": "1"}, "dl_item"),
    )),
    Scenario("advisory", (
        Side(("SELECT pg_advisory_xact_lock(4294967297)",), "SELECT pg_advisory_xact_lock(7)",
             "SELECT pg_advisory_xact_lock(4294967297)"),
        Side(("SELECT pg_advisory_xact_lock(7)",), "SELECT pg_advisory_xact_lock(4294967297)",
             "SELECT pg_advisory_xact_lock(7)"),
    )),
    Scenario("tables", (
        Side(("LOCK TABLE dl_left IN SHARE ROW EXCLUSIVE MODE",), "LOCK TABLE dl_right IN SHARE ROW EXCLUSIVE MODE",
             "LOCK TABLE dl_left IN SHARE ROW EXCLUSIVE MODE", table="dl_right"),
        Side(("LOCK TABLE dl_right IN SHARE ROW EXCLUSIVE MODE",), "LOCK TABLE dl_left IN SHARE ROW EXCLUSIVE MODE",
             "LOCK TABLE dl_right IN SHARE ROW EXCLUSIVE MODE", table="dl_left"),
    ), match="table"),
    # Through foreign-key checks: inserting a child row locks its parent row FOR KEY SHARE.
    Scenario("foreign_key", (
        # without its column list: the columns come from the CREATE TABLE in the log
        Side(("INSERT INTO dl_child VALUES (1, 1)",), "DELETE FROM dl_parent WHERE id = 2",
             "INSERT INTO dl_child VALUES (1, 1)", {"id": "2"}, "dl_parent"),
        Side(("INSERT INTO dl_child (id, parent_id) VALUES (2, 2)",), "DELETE FROM dl_parent WHERE id = 1",
             "INSERT INTO dl_child (id, parent_id) VALUES (2, 2)", {"id": "1"}, "dl_parent"),
    )),
    # The victim's partner logs nothing: the cycle and the waiting statements only (issue 28, §1).
    Scenario("unlogged_partner", (
        Side(("UPDATE dl_acct SET bal = bal + 1 WHERE id = 3",), "UPDATE dl_acct SET bal = bal - 1 WHERE id = 4",
             "UPDATE dl_acct SET bal = bal + 1 WHERE id = 3", {"id": "4"}, "dl_acct", log_statement="none",
             first_logged=False),
        Side(("UPDATE dl_acct SET bal = bal + 1 WHERE id = 4",), "UPDATE dl_acct SET bal = bal - 1 WHERE id = 3",
             "UPDATE dl_acct SET bal = bal + 1 WHERE id = 4", {"id": "3"}, "dl_acct"),
    )),
    # log_statement = 'mod' logs the UPDATE that waited but not the SELECT ... FOR UPDATE that took the lock.
    Scenario("mod_select_for_update", (
        Side(("SELECT v FROM dl_mod WHERE id = 1 FOR UPDATE",), "UPDATE dl_mod SET v = 1 WHERE id = 2",
             "SELECT v FROM dl_mod WHERE id = 1 FOR UPDATE", {"id": "2"}, "dl_mod", log_statement="mod",
             first_logged=False),
        Side(("UPDATE dl_mod SET v = 2 WHERE id = 2",), "UPDATE dl_mod SET v = 2 WHERE id = 1",
             "UPDATE dl_mod SET v = 2 WHERE id = 2", {"id": "1"}, "dl_mod"),
    )),
)


@dataclass
class Played:
    """What a scenario did: each side's pid and application, and the SQLSTATE each one got."""

    pids: list[int]
    applications: list[str]
    errors: list[str | None]

    @property
    def victim(self) -> int:
        (index,) = [i for i, e in enumerate(self.errors) if e == "40P01"]
        return index


def _play(cluster: PgCluster, scenario: Scenario) -> Played:
    n = len(scenario.sides)
    played = Played([0] * n, [f"dl-{scenario.name}-{i}" for i in range(n)], [None] * n)
    ready = threading.Barrier(n, timeout=30)

    def side(index: int) -> None:
        s = scenario.sides[index]
        options = f"-c log_statement={s.log_statement}" if s.log_statement else ""
        with psycopg.connect(cluster.conninfo, application_name=played.applications[index], autocommit=True,
                             cursor_factory=ClientCursor, options=options) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            played.pids[index] = row[0]
            conn.execute("BEGIN")
            for statement in s.first:
                conn.execute(statement)
            ready.wait()
            # The first side waits at once, the next one PAUSE later, ...: only the last finds the cycle.
            time.sleep(index * PAUSE)
            try:
                conn.execute(s.waits)
            except psycopg.Error as exc:
                played.errors[index] = exc.sqlstate
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK" if played.errors[index] else "COMMIT")

    threads = [threading.Thread(target=side, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return played


@dataclass
class Run_:
    logs: dict[str, Path]
    played: dict[str, Played]


@pytest.fixture(scope="module")
def deadlocks(pg_servers, tmp_path_factory):
    """server -> the scenarios played once on one cluster of it (on first use)."""
    runs: dict[str, Run_] = {}

    def get(server: str) -> Run_:
        if server not in runs:
            settings = {"log_line_prefix": RICH_PREFIX, "log_statement": "all", "log_lock_waits": "on",
                        "deadlock_timeout": f"{DEADLOCK_TIMEOUT_MS}ms"}
            with pg_servers.factory(server)(**settings) as cluster:
                cluster.psql(SETUP, check=True)
                played = {scenario.name: _play(cluster, scenario) for scenario in SCENARIOS}
                cluster.stop()
                runs[server] = Run_(copy_logs(cluster, tmp_path_factory.mktemp(f"deadlocks-pg{server}")), played)
        return runs[server]

    return get


def _analyze(path: Path, fmt: str, fast: bool) -> tuple[list[dict], list[dict]]:
    tracker = SessionTracker()
    reader = LogReader([str(path)], fast=fast, fast_min_bytes=0, log_line_prefix=RICH_PREFIX if fmt == "stderr" else None,
                       on_forgotten=tracker.forget)
    run = Run(reader, tracker)
    incidents = [i.to_dict() for i in run.incidents()]
    return incidents, [e.to_dict() for e in run.other_errors]


def _incident_of(incidents: list[dict], application: str) -> dict:
    (found,) = [i for i in incidents if i["sqlstate"] == "40P01" and i["session"]["application"] == application]
    return found


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("fmt", FORMATS)
class TestDeadlockIncident:
    """Each scenario's deadlock is one incident, read from each log format."""

    @pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
    def test_the_victim_and_its_cycle(self, deadlocks, server, fmt, scenario):
        """The victim's ERROR is the incident, with the cycle's processes in the server's order."""
        run = deadlocks(server)
        played = run.played[scenario.name]
        victim = played.victim
        assert played.errors.count("40P01") == 1 and victim == len(scenario.sides) - 1
        incidents, others = _analyze(run.logs[fmt], fmt, fast=False)
        incident = _incident_of(incidents, played.applications[victim])
        assert not [e for e in others if e["sqlstate"] == "40P01"]
        side = scenario.sides[victim]
        assert incident["condition"] == "deadlock_detected" and incident["timing"] == "statement"
        assert incident["raised_by"]["statement"] == side.waits
        assert incident["session"]["pid"] == played.pids[victim]
        assert incident["table"] == side.table
        assert incident["key"] == side.key
        cycle = incident["deadlock"]["cycle"]
        n = len(scenario.sides)
        # The victim found the cycle: it comes first, then the process it waited for, and so on.
        order = [(victim + k) % n for k in range(n)]
        assert [step["pid"] for step in cycle] == [played.pids[i] for i in order]
        assert [step["blocked_by"] for step in cycle] == [played.pids[(i + 1) % n] for i in order]
        for step, i in zip(cycle, order, strict=True):
            assert step["waiting_statement"]["statement"].strip().rstrip(";") == scenario.sides[i].waits

    @pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
    def test_the_lock_takers(self, deadlocks, server, fmt, scenario):
        """For each process, the earlier statement of the process it waited for that took the
        lock is named, with its session when it is another one's; a session that logged nothing
        has none, and the hints say which setting would show it."""
        run = deadlocks(server)
        played = run.played[scenario.name]
        victim = played.victim
        incidents, _ = _analyze(run.logs[fmt], fmt, fast=False)
        incident = _incident_of(incidents, played.applications[victim])
        n = len(scenario.sides)
        expected = []
        for step in incident["deadlock"]["cycle"]:
            holder = played.pids.index(step["blocked_by"])
            side = scenario.sides[holder]
            if not side.first_logged:
                assert step["lock_taken_by"] is None
                continue
            assert step["lock_taken_by"]["statement"] == side.holds_for_previous
            expected.append((side.holds_for_previous, played.applications[holder], holder))
        culprits = incident["culprits"]
        assert [c["statement"] for c in culprits] == [e[0] for e in expected]
        for culprit, (_, application, holder) in zip(culprits, expected, strict=True):
            assert culprit["match"] == scenario.match
            if holder == victim:
                assert "session" not in culprit
            else:
                assert culprit["session"]["application"] == application
                assert culprit["session"]["pid"] == played.pids[holder]
        if any(not s.first_logged for s in scenario.sides):
            assert any("log_statement" in hint for hint in incident["hints"])
            assert len(culprits) == n - 1
        else:
            assert len(culprits) == n

    def test_lock_waits_are_related(self, deadlocks, server, fmt):
        """log_lock_waits' lines of the cycle's processes before the error are its evidence."""
        run = deadlocks(server)
        scenario = SCENARIOS[1]
        played = run.played[scenario.name]
        incidents, _ = _analyze(run.logs[fmt], fmt, fast=False)
        incident = _incident_of(incidents, played.applications[played.victim])
        waits = [r for r in incident["related"] if r["role"] == "lock_wait"]
        # Every process but the victim waited longer than deadlock_timeout; the victim found the cycle.
        waiting = {played.pids[i] for i in range(len(scenario.sides)) if i != played.victim}
        assert {int(r["note"].split()[1]) for r in waits if "still waiting" in r["note"]} == waiting
        assert any(r["note"].startswith(f"process {played.pids[played.victim]} detected deadlock") for r in waits)

    def test_fast_path_finds_the_same(self, deadlocks, server, fmt):
        """The fast path keeps every session of a cycle, not only the victim's: same incidents."""
        run = deadlocks(server)
        slow = _analyze(run.logs[fmt], fmt, fast=False)
        fast = _analyze(run.logs[fmt], fmt, fast=True)
        assert len([i for i in slow[0] if i["sqlstate"] == "40P01"]) == len(SCENARIOS)
        assert fast == slow

    def test_piped_and_compressed_logs_find_the_same(self, deadlocks, server, fmt, tmp_path, monkeypatch):
        """Standard input (the look-back pre-filter) and a .gz (the window, or two passes for
        stderr) keep every session of a cycle too."""
        import gzip
        import io
        import json
        import sys
        import types

        run = deadlocks(server)
        path = run.logs[fmt]
        prefix = RICH_PREFIX if fmt == "stderr" else None
        slow, _ = _analyze(path, fmt, fast=False)
        monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(path.read_bytes())))
        tracker = SessionTracker()
        reader = LogReader(["-"], fast=True, quiet=1.0, log_line_prefix=prefix, on_forgotten=tracker.forget)
        piped = [i.to_dict() for i in Run(reader, tracker).incidents()]
        assert reader.inputs[0].fast_path
        assert json.loads(json.dumps(piped).replace('"file": "-"', json.dumps({"file": str(path)})[1:-1])) == slow
        packed = tmp_path / (path.name + ".gz")
        packed.write_bytes(gzip.compress(path.read_bytes()))
        unpacked, _ = _analyze(packed, fmt, fast=True)
        assert json.loads(json.dumps(unpacked).replace(str(packed), str(path))) == slow


def _printed(form, values: list[str]) -> str:
    """What a server prints for a format of its catalog with these arguments (in the msgid's order)."""
    return form.literals[0] + "".join(values[p] + lit for p, lit in zip(form.positions, form.literals[1:], strict=True))


@pytest.mark.parametrize("code", sorted(__import__("logdiag.lang", fromlist=["LANGUAGES"]).LANGUAGES))
def test_every_language_s_cycle_is_read(code):
    """A deadlock's DETAIL as each catalog the server ships words it (its cycle lines, lock
    objects and query heads) is read back: the pids, modes, objects and queries."""
    from logdiag.diagnosis.locks import LockKind, context_relation, parse_deadlock, parse_lock_wait
    from logdiag.lang import LANGUAGES, msgids

    language = LANGUAGES[code]
    edge, query = language.format(msgids.DEADLOCK_PROCESS), language.format(msgids.DEADLOCK_QUERY)
    first = _printed(language.format(msgids.LOCK_TRANSACTION), ["726"])
    second = _printed(language.format(msgids.LOCK_TUPLE), ["0", "2", "16384", "5"])
    detail = "\n".join([
        _printed(edge, ["7412", "ShareLock", first, "7416"]),
        _printed(edge, ["7416", "ExclusiveLock", second, "7412"]),
        _printed(query, ["7412", "update acct set bal = 1\nwhere id = 2;"]),
        _printed(query, ["7416", "update acct set bal = 1 where id = 1;"]),
    ])
    found = parse_deadlock(detail)
    assert found is not None
    assert [(e.pid, e.mode, e.blocked_by) for e in found.edges] == [(7412, "ShareLock", 7416), (7416, "ExclusiveLock", 7412)]
    assert found.edges[0].object.kind is LockKind.TRANSACTION and found.edges[0].object.xid == 726
    assert found.edges[1].object.kind is LockKind.TUPLE and found.edges[1].object.row == (0, 2)
    assert found.queries == {7412: "update acct set bal = 1\nwhere id = 2;", 7416: "update acct set bal = 1 where id = 1;"}
    waited = _printed(language.format(msgids.LOCK_STILL_WAITING), ["7416", "ShareLock", first, "200", "105"])
    wait = parse_lock_wait(waited)
    assert wait is not None and wait.pid == 7416 and wait.object.xid == 726 and wait.milliseconds == 200.105
    for msgid in msgids.LOCK_CONTEXTS:
        assert context_relation(_printed(language.format(msgid), ["0", "2", "acct"]) + "\nSQL statement") == "acct"
