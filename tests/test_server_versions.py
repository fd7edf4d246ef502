"""What PostgreSQL 16, 17 and 18 changed in their logs, read from real servers (issue 25).

One cluster per server, which logs its three destinations at once; clients connect over TCP to
127.0.0.2, so the client's address (127.0.0.1, ``%r``) and the server's own (``%L``, new in 18)
differ. Every expected answer is what the session below executed, or what the server told that
session (its vxid from ``pg_locks``, its address from ``inet_client_addr()``), never logdiag's
output. Features a server lacks are played only on the servers that have them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import ClientCursor

from logdiag.formats.prefix import LinePrefix
from logdiag.pipeline import analyze
from logdiag.reader import LogReader
from tests.conftest import SERVERS, copy_logs
from tests.pgcluster import PgCluster

#: Every escape a diagnosis uses, with 18's %L between the process's part and the session's.
PREFIX = "%m [%p] %L %q%u@%d %r app=%a v=%v x=%x e=%e "
FORMATS = ("csvlog", "jsonlog", "stderr")
#: PostgreSQL 18 adds temporal keys (WITHOUT OVERLAPS, PERIOD), NOT ENFORCED, named NOT NULL
#: constraints, %L and the log_connections options; 17 changed what the vxid's first half counts.
NEW_IN_18 = "18"
TEMPORAL = "CREATE EXTENSION IF NOT EXISTS btree_gist;\n"

SETUP_ALL = (
    "CREATE TABLE vx_parent (id int PRIMARY KEY);\n"
    "CREATE TABLE vx_child (id int PRIMARY KEY, parent_id int CONSTRAINT vx_fk REFERENCES vx_parent "
    "DEFERRABLE INITIALLY DEFERRED);\n"
    "CREATE TABLE rs_parent (id int PRIMARY KEY);\n"
    "CREATE TABLE rs_child (id int PRIMARY KEY, parent_id int CONSTRAINT rs_fk REFERENCES rs_parent "
    "ON DELETE RESTRICT);\n"
    "INSERT INTO rs_parent VALUES (1), (2);\nINSERT INTO rs_child VALUES (10, 1);\n"
)
SETUP_18 = TEMPORAL + (
    "CREATE TABLE tp_rooms (id int, valid_at daterange, CONSTRAINT tp_rooms_pk "
    "PRIMARY KEY (id, valid_at WITHOUT OVERLAPS) DEFERRABLE INITIALLY DEFERRED);\n"
    "CREATE TABLE tf_rooms (id int, valid_at daterange, PRIMARY KEY (id, valid_at WITHOUT OVERLAPS));\n"
    "CREATE TABLE tf_bookings (id int, room int, valid_at daterange, CONSTRAINT tf_room_fk "
    "FOREIGN KEY (room, PERIOD valid_at) REFERENCES tf_rooms (id, PERIOD valid_at) DEFERRABLE INITIALLY DEFERRED);\n"
    "INSERT INTO tf_rooms VALUES (1, '[2026-01-01,2026-02-01)');\n"
    "CREATE TABLE tq_rooms (id int, valid_at daterange, PRIMARY KEY (id, valid_at WITHOUT OVERLAPS));\n"
    "CREATE TABLE tq_bookings (id int, room int, valid_at daterange, CONSTRAINT tq_room_fk "
    "FOREIGN KEY (room, PERIOD valid_at) REFERENCES tq_rooms (id, PERIOD valid_at));\n"
    "INSERT INTO tq_rooms VALUES (1, '[2026-01-01,2026-02-01)');\n"
    "INSERT INTO tq_bookings VALUES (1, 1, '[2026-01-05,2026-01-10)');\n"
    "CREATE TABLE em_rooms (id int, valid_at daterange, PRIMARY KEY (id, valid_at WITHOUT OVERLAPS));\n"
    "CREATE TABLE ne_parent (id int PRIMARY KEY);\n"
    "CREATE TABLE ne_child (id int, parent_id int CONSTRAINT ne_fk REFERENCES ne_parent NOT ENFORCED, "
    "amount int CONSTRAINT ne_check CHECK (amount > 0) NOT ENFORCED);\n"
    "CREATE TABLE nn_items (id int CONSTRAINT nn_id_required NOT NULL, label text);\n"
    "ALTER TABLE nn_items ADD CONSTRAINT nn_label_required NOT NULL label;\n"
)

OWN_VXID = "SELECT virtualtransaction FROM pg_locks WHERE locktype = 'virtualxid' AND pid = pg_backend_pid()"


@dataclass(frozen=True)
class Case:
    """One session's work and what logdiag must report for it (None: no incident)."""

    application: str
    statements: tuple[str, ...]
    sqlstate: str | None = None
    constraint: str | None = None
    kind: str | None = None
    timing: str = "statement"
    table: str | None = None
    referenced_table: str | None = None
    key: dict[str, str | None] = field(default_factory=dict)
    culprit: str | None = None
    servers: tuple[str, ...] = tuple(SERVERS)
    sqlstate_before_18: str | None = None  # when servers before 18 raised another one

    def sqlstate_on(self, server: str) -> str | None:
        return self.sqlstate_before_18 if self.sqlstate_before_18 and int(server) < 18 else self.sqlstate


CASES = [
    # 17 prints the vxid as procNumber/lxid (0/5 for the first backend), where 16 printed
    # backendID/lxid (3/5): the transaction is still told by it, in every destination.
    Case("vxid", ("BEGIN", "INSERT INTO vx_child VALUES (1, 42)", OWN_VXID, "COMMIT"),
         "23503", "vx_fk", "foreign_key", "commit", "vx_child", "vx_parent", {"parent_id": "42"},
         "INSERT INTO vx_child VALUES (1, 42)"),
    # ON DELETE RESTRICT: 18 says so ("violates RESTRICT setting of foreign key constraint",
    # 23001); before, it was an ordinary foreign key violation (23503).
    Case("restrict", ("DELETE FROM rs_parent WHERE id = 1",),
         "23001", "rs_fk", "foreign_key", "statement", "rs_child", "rs_parent", {"id": "1"},
         "DELETE FROM rs_parent WHERE id = 1", sqlstate_before_18="23503"),
    # 18's temporal primary key is an exclusion constraint to the server: 23P01, and a DETAIL
    # that names the existing key it overlaps.
    Case("temporal_pk", ("BEGIN", "INSERT INTO tp_rooms VALUES (1, '[2026-01-01,2026-02-01)')",
                         "INSERT INTO tp_rooms VALUES (1, '[2026-01-15,2026-03-01)')", "COMMIT"),
         "23P01", "tp_rooms_pk", "exclusion", "commit", "tp_rooms", None,
         {"id": "1", "valid_at": "[2026-01-15,2026-03-01)"},
         "INSERT INTO tp_rooms VALUES (1, '[2026-01-15,2026-03-01)')", (NEW_IN_18,)),
    Case("temporal_fk", ("BEGIN", "INSERT INTO tf_bookings VALUES (1, 1, '[2026-01-10,2026-03-01)')", "COMMIT"),
         "23503", "tf_room_fk", "foreign_key", "commit", "tf_bookings", "tf_rooms",
         {"room": "1", "valid_at": "[2026-01-10,2026-03-01)"},
         "INSERT INTO tf_bookings VALUES (1, 1, '[2026-01-10,2026-03-01)')", (NEW_IN_18,)),
    Case("temporal_parent", ("DELETE FROM tq_rooms WHERE id = 1",),
         "23503", "tq_room_fk", "foreign_key", "statement", "tq_bookings", "tq_rooms",
         {"id": "1", "valid_at": "[2026-01-01,2026-02-01)"}, "DELETE FROM tq_rooms WHERE id = 1", (NEW_IN_18,)),
    Case("empty_period", ("INSERT INTO em_rooms VALUES (1, 'empty')",),
         "23514", None, "check", "statement", "em_rooms", None, {"valid_at": "empty"},
         "INSERT INTO em_rooms VALUES (1, 'empty')", (NEW_IN_18,)),
    # Nothing checks a NOT ENFORCED constraint: these rows break both and no error comes.
    Case("not_enforced", ("INSERT INTO ne_child VALUES (1, 42, -1)",), servers=(NEW_IN_18,)),
    # 18 names every NOT NULL constraint; its error message still names the column only.
    Case("not_null", ("INSERT INTO nn_items VALUES (1, NULL)",),
         "23502", None, "not_null", "statement", "nn_items", None, {"label": None},
         "INSERT INTO nn_items VALUES (1, NULL)", (NEW_IN_18,)),
]


@dataclass
class Played:
    """One server's run: its three log files, and what its sessions were told."""

    logs: dict[str, Path]
    vxid: str
    client: str
    failed: dict[str, list[str]]  # application -> SQLSTATEs the client got back
    applications: list[str]  # one per connection the test opened, in order


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.2", 0))
        return int(probe.getsockname()[1])


def _play(cluster: PgCluster, port: int, server: str) -> tuple[str, str, dict[str, list[str]], list[str]]:
    cluster.psql(SETUP_ALL + (SETUP_18 if server == NEW_IN_18 else ""), application="setup", check=True)
    tcp = f"host=127.0.0.2 port={port} user=postgres dbname=postgres"
    vxid = client = ""
    failed: dict[str, list[str]] = {}
    applications = ["setup"]
    for case in CASES:
        if server not in case.servers:
            continue
        applications.append(case.application)
        with psycopg.connect(tcp, application_name=case.application, autocommit=True,
                             cursor_factory=ClientCursor) as conn:
            address, port_number = conn.execute("SELECT host(inet_client_addr()), inet_client_port()").fetchone()
            client = f"{address}:{port_number}" if case.application == "vxid" else client
            for statement in case.statements:
                try:
                    cursor = conn.execute(statement)
                except psycopg.Error as exc:
                    failed.setdefault(case.application, []).append(exc.sqlstate or "")
                    continue
                if statement == OWN_VXID:
                    vxid = cursor.fetchone()[0]
    return vxid, client, failed, applications


@pytest.fixture(scope="module")
def played(pg_servers, tmp_path_factory):
    """server -> its run (one cluster per server, played on first use)."""
    runs: dict[str, Played] = {}

    def get(server: str) -> Played:
        if server not in runs:
            port = _free_port()
            settings = {
                "log_line_prefix": PREFIX, "log_statement": "all", "listen_addresses": "'127.0.0.2'",
                # 18's list of connection aspects; "all" adds the setup durations line.
                "log_connections": "all" if server == NEW_IN_18 else "on",
            }
            with pg_servers.factory(server)(port=str(port), **settings) as cluster:
                vxid, client, failed, applications = _play(cluster, port, server)
                cluster.stop()
                runs[server] = Played(copy_logs(cluster, tmp_path_factory.mktemp(f"versions-pg{server}")),
                                      vxid, client, failed, applications)
        return runs[server]

    return get


def _incidents(path: Path, fmt: str) -> list[dict]:
    run = analyze([str(path)], log_line_prefix=PREFIX if fmt == "stderr" else None)
    incidents = [incident.to_dict() for incident in run.incidents()]
    assert run.inputs[0].skipped_total == 0
    return incidents


def _records(path: Path, prefix: str | None = None) -> tuple[list, object]:
    reader = LogReader([str(path)], log_line_prefix=prefix)
    return list(reader), reader.inputs[0]


SERVER_CASES = [
    pytest.param(server, fmt, case.application, id=f"pg{server}-{fmt}-{case.application}")
    for server in SERVERS for case in CASES if server in case.servers for fmt in FORMATS
]
BY_APPLICATION = {case.application: case for case in CASES}


@pytest.mark.postgres
@pytest.mark.parametrize(("server", "fmt", "application"), SERVER_CASES)
def test_incident(played, server, fmt, application):
    """Each session's incident: its constraint, kind, timing, tables, key and culprit, as executed."""
    case = BY_APPLICATION[application]
    run = played(server)
    found = [i for i in _incidents(run.logs[fmt], fmt) if i["session"]["application"] == application]
    if case.sqlstate is None:
        assert run.failed.get(application) is None  # the premise: the server raised nothing
        assert found == []
        return
    assert run.failed[application] == [case.sqlstate_on(server)]
    assert len(found) == 1
    incident = found[0]
    assert incident["sqlstate"] == case.sqlstate_on(server)
    assert incident["constraint"] == case.constraint
    assert incident["constraint_kind"] == case.kind
    assert incident["timing"] == case.timing
    assert incident["table"] == case.table
    assert incident["referenced_table"] == case.referenced_table
    assert incident["key"] == case.key
    assert incident["culprits"] and incident["culprits"][0]["statement"] == case.culprit


@pytest.mark.postgres
@pytest.mark.parametrize("server", SERVERS, ids=lambda server: f"pg{server}")
@pytest.mark.parametrize("fmt", FORMATS)
def test_vxid_is_the_one_the_transaction_had(played, server, fmt):
    """The incident's transaction is the vxid its session read from pg_locks (17 changed what
    its first half counts), and the client is the address the server saw."""
    run = played(server)
    incident = next(i for i in _incidents(run.logs[fmt], fmt) if i["session"]["application"] == "vxid")
    assert incident["transaction"]["vxid"] == run.vxid
    assert incident["session"]["client"] == run.client


@pytest.mark.postgres
@pytest.mark.parametrize("server", SERVERS, ids=lambda server: f"pg{server}")
def test_connection_lines_are_read_as_the_sessions(played, server):
    """log_connections (18: receipt, authentication, authorization, setup_durations): every line
    is read, and each connection's last setup line belongs to its session, in every format."""
    run = played(server)
    last = "connection ready: setup total=" if server == NEW_IN_18 else "connection authorized: "
    for fmt in FORMATS:
        records, stats = _records(run.logs[fmt], PREFIX if fmt == "stderr" else None)
        assert stats.skipped_total == 0, (fmt, stats.examples)
        ready = [r for r in records if r.message and r.message.startswith(last)]
        if server == NEW_IN_18:  # the line comes once the session's application name is set
            assert [r.application for r in ready] == run.applications, fmt
        else:
            assert len(ready) == len(run.applications), fmt
        assert all(r.user == "postgres" and r.database == "postgres" for r in ready), fmt
        assert len({r.session_id for r in ready if r.session_id}) == (0 if fmt == "stderr" else len(ready))


@pytest.mark.postgres
@pytest.mark.parametrize("server", SERVERS, ids=lambda server: f"pg{server}")
def test_prefix_is_worked_out(played, server):
    """The stderr prefix worked out from the lines gives every line the fields the server's
    setting gives it; on 18 that takes telling %L (the server's address) from %r (the client's)."""
    run = played(server)
    _, stats = _records(run.logs["stderr"])
    assert stats.prefix_inferred and stats.skipped_total == 0
    if server == NEW_IN_18:
        assert "%L" in stats.log_line_prefix and "%r" in stats.log_line_prefix
    given, inferred = LinePrefix(PREFIX), LinePrefix(stats.log_line_prefix)
    for line in run.logs["stderr"].read_text().splitlines():
        if line and not line.startswith("\t"):
            expected = given.match(line)
            assert expected is not None and inferred.match(line) is not None, line
            assert inferred.match(line).fields == expected.fields, (stats.log_line_prefix, line)


@pytest.mark.postgres
def test_a_server_that_cannot_start_fails_in_ci(tmp_path):
    """Under CI=true a test on the 18 server fails, never skips, when that server cannot be set up
    (here its binaries point nowhere); outside CI it skips and says why."""
    test = f"{Path(__file__).name}::test_vxid_is_the_one_the_transaction_had[csvlog-pg{NEW_IN_18}]"
    outcomes = {}
    for ci in ("true", ""):
        env = {**os.environ, "CI": ci, f"PG{NEW_IN_18}_BINDIR": str(tmp_path / "nowhere"),
               "LOGDIAG_PG_SERVERS": NEW_IN_18}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
            cwd=Path(__file__).parent, env=env, capture_output=True, text=True, check=False,
        )
        outcomes[ci] = (done.returncode, done.stdout)
    code, output = outcomes["true"]
    assert code == 1 and "PostgreSQL is required in CI" in output and "nowhere/initdb" in output
    code, output = outcomes[""]
    assert code == 0 and "1 skipped" in output and "PostgreSQL not available" in output
