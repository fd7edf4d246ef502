"""The report a person reads at 3 a.m. (issue 29): repeated incidents grouped, one screen at
every width, the digest, live groups, and settings advice said once.

One cluster of the default server plays many violations of one deferred foreign key by one
statement shape, from several sessions and applications, a few by another shape (an UPDATE) and a
few of a deferred unique constraint. Every expected group, count, application and key comes from
what the test executed (:data:`PLAN`), never from logdiag's output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import ClientCursor

from tests.conftest import copy_logs
from tests.scenarios import RICH_PREFIX

pytestmark = pytest.mark.postgres

FK = "grp_orders_customer_id_fkey"
UNIQUE = "grp_codes_code_key"
SETUP = """
CREATE TABLE grp_customers (id int PRIMARY KEY);
CREATE TABLE grp_orders (id int PRIMARY KEY, customer_id int REFERENCES grp_customers DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE grp_codes (id int PRIMARY KEY, code text UNIQUE DEFERRABLE INITIALLY DEFERRED);
INSERT INTO grp_customers VALUES (1);
"""


@dataclass(frozen=True)
class Session:
    application: str
    inserts: int  # transactions that insert an order for a missing customer
    updates: int = 0  # transactions that repoint a valid order to a missing customer
    codes: int = 0  # transactions that write one code twice


#: What the test plays: 200 violations of the foreign key by one INSERT shape from four
#: sessions of three applications, 3 by an UPDATE, 5 of the unique constraint.
PLAN = (
    Session("billing-job", 50), Session("billing-job", 50), Session("api", 60, updates=3),
    Session("batch", 40, codes=5),
)
INSERT_SHAPE = "INSERT INTO grp_orders VALUES ($1, $2)"
UPDATE_SHAPE = "UPDATE grp_orders SET customer_id = $1 WHERE id = $2"
UNIQUE_SHAPE = "INSERT INTO grp_codes VALUES ($1, $2)"


def _play(conninfo: str) -> dict[str, list[str]]:
    """Play :data:`PLAN`; return each shape's keys in the order they were written."""
    keys: dict[str, list[str]] = {INSERT_SHAPE: [], UPDATE_SHAPE: [], UNIQUE_SHAPE: []}
    order = 1000
    for number, plan in enumerate(PLAN):
        with psycopg.connect(conninfo, application_name=plan.application, cursor_factory=ClientCursor) as conn:
            for _ in range(plan.inserts):
                order += 1
                customer = 10_000 + order
                keys[INSERT_SHAPE].append(str(customer))
                conn.execute("INSERT INTO grp_orders VALUES (%s, %s)", (order, customer))
                with pytest.raises(psycopg.errors.ForeignKeyViolation):
                    conn.commit()
            for _ in range(plan.updates):
                order += 1
                customer = 20_000 + order
                keys[UPDATE_SHAPE].append(str(customer))
                conn.execute("INSERT INTO grp_orders VALUES (%s, %s)", (order, 1))
                conn.execute("UPDATE grp_orders SET customer_id = %s WHERE id = %s", (customer, order))
                with pytest.raises(psycopg.errors.ForeignKeyViolation):
                    conn.commit()
            for index in range(plan.codes):
                code = f"code-{number}-{index}"
                keys[UNIQUE_SHAPE].append(code)
                conn.execute("INSERT INTO grp_codes VALUES (%s, %s)", (2 * order + index, code))
                conn.execute("INSERT INTO grp_codes VALUES (%s, %s)", (2 * order + index + 1, code))
                with pytest.raises(psycopg.errors.UniqueViolation):
                    conn.commit()
                order += 1
    return keys


@pytest.fixture(scope="module")
def played(pg_cluster, tmp_path_factory) -> tuple[dict[str, Path], dict[str, list[str]]]:
    out = tmp_path_factory.mktemp("groups")
    with pg_cluster(log_line_prefix=RICH_PREFIX) as cluster:
        cluster.psql(SETUP, application="migrate", check=True)
        keys = _play(cluster.conninfo)
        cluster.stop()
        return copy_logs(cluster, out), keys


def _logdiag(*args: str, columns: int = 80, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "logdiag", *args], input=stdin.decode() if stdin is not None else None,
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )


def _expected_groups(keys: dict[str, list[str]]) -> dict[tuple[str, str], int]:
    return {(FK, INSERT_SHAPE): len(keys[INSERT_SHAPE]), (FK, UPDATE_SHAPE): len(keys[UPDATE_SHAPE]),
            (UNIQUE, UNIQUE_SHAPE): len(keys[UNIQUE_SHAPE])}


@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
def test_json_groups(played, fmt):
    """Every incident is kept; ``groups`` has one group per constraint and culprit shape, largest
    first, with its count, example keys, applications and the indexes of its incidents."""
    logs, keys = played
    result = _logdiag("analyze", "--format", "json", str(logs[fmt]))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    incidents, groups = report["incidents"], report["groups"]
    assert len(incidents) == sum(len(k) for k in keys.values())
    found = {(g["constraint"], g["shape"].rstrip(";")): g["count"] for g in groups}
    assert found == _expected_groups(keys)
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    assert sorted(i for g in groups for i in g["incidents"]) == list(range(len(incidents)))
    for group in groups:
        for index in group["incidents"]:
            assert incidents[index]["group"] == group["id"]
            assert incidents[index]["constraint"] == group["constraint"]
    by_shape = {g["shape"].rstrip(";"): g for g in groups}
    inserts = by_shape[INSERT_SHAPE]
    assert [k["customer_id"] for k in inserts["example_keys"]] == keys[INSERT_SHAPE][:3]
    wanted = Counter()
    for plan in PLAN:
        wanted[plan.application] += plan.inserts
    assert inserts["applications"] == dict(wanted)
    assert inserts["sessions"] == len([p for p in PLAN if p.inserts])
    assert by_shape[UPDATE_SHAPE]["applications"] == {"api": 3}
    assert [k["code"] for k in by_shape[UNIQUE_SHAPE]["example_keys"]] == keys[UNIQUE_SHAPE][:3]


def test_jsonl_incidents_carry_their_group(played):
    logs, keys = played
    result = _logdiag("analyze", "--format", "jsonl", str(logs["csvlog"]))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    incidents = [o for o in lines if "type" not in o]
    assert len(incidents) == sum(len(k) for k in keys.values())
    shapes = {}
    for incident in incidents:
        statement = incident["culprits"][0]["statement"]
        shape = INSERT_SHAPE if statement.startswith("INSERT INTO grp_orders") else (
            UPDATE_SHAPE if statement.startswith("UPDATE") else UNIQUE_SHAPE)
        shapes.setdefault(shape, set()).add(incident["group"])
    assert all(len(ids) == 1 for ids in shapes.values()) and len({i for s in shapes.values() for i in s}) == 3


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_the_grouped_report_fits_a_screen_at_every_width(played, columns):
    """208 incidents: each group's first incident in full, then a line per other member up to
    five and "… and N more"; no line wider than the terminal; the header keeps the SQLSTATE and
    the timing, the condition and the constraint are whole (wrapped, never cut)."""
    logs, keys = played
    result = _logdiag("analyze", str(logs["csvlog"]), columns=columns)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert out.count("╭─ #") == 3  # one panel per group
    assert len(lines) < 250  # 208 incidents, three groups: a few screens at 60 columns, not 4,600 lines
    assert f"… and {len(keys[INSERT_SHAPE]) - 6} more" in out
    assert f"Group 1: {len(keys[INSERT_SHAPE])} incidents of {FK}" in " ".join(out.split())
    headers = [line for line in lines if line.startswith("╭─ #")]
    assert all("23503 at commit" in h or "23505 at commit" in h for h in headers), headers
    flat = " ".join(out.split())  # words wrapped onto the next line join again
    for word in ("foreign_key_violation at commit", "unique_violation at commit", FK, UNIQUE):
        assert word in flat, word
    summary = out[out.index("Summary:"):]
    assert re.search(rf"{len(keys[INSERT_SHAPE])} × {FK}", " ".join(summary.split()))


def test_each_shows_every_incident(played):
    logs, keys = played
    result = _logdiag("analyze", "--each", str(logs["jsonlog"]))
    assert result.stdout.count("╭─ #") == sum(len(k) for k in keys.values())


def test_digest_is_a_line_per_group(played):
    logs, keys = played
    result = _logdiag("analyze", "--format", "digest", str(logs["stderr"]))
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].split(" · ")[0].endswith(f"23503 {FK} ×{len(keys[INSERT_SHAPE])}")
    assert f"key customer_id={keys[INSERT_SHAPE][0]}" in lines[0]
    assert "culprit line" in lines[0] and "INSERT INTO grp_orders VALUES" in lines[0]
    each = _logdiag("analyze", "--format", "digest", "--each", str(logs["stderr"])).stdout.splitlines()
    assert len(each) == sum(len(k) for k in keys.values())


def test_several_inputs_name_the_file_of_each_line(played, tmp_path):
    """Two inputs: every source line says its file (``postgresql.csv:374``)."""
    logs, _ = played
    result = _logdiag("analyze", "--each", str(logs["csvlog"]), str(logs["jsonlog"]), columns=120)
    flat = " ".join(result.stdout.split())
    assert re.search(r"raised by postgresql\.csv:\d+: COMMIT", flat)
    assert re.search(r"raised by postgresql\.json:\d+: COMMIT", flat)
    assert not re.search(r"raised by line \d+", flat)
    one = " ".join(_logdiag("analyze", str(logs["csvlog"]), columns=120).stdout.split())
    assert re.search(r"raised by line \d+: COMMIT", one) and "postgresql.csv:" not in one


def test_live_groups_and_the_summary_on_eof_and_ctrl_c(played):
    """Standard input: the first incident of a group in full as it comes, later ones in a line;
    the group summary at EOF, and on Ctrl-C."""
    logs, keys = played
    data = logs["csvlog"].read_bytes()
    result = _logdiag("analyze", "-", stdin=data, columns=100)
    out = result.stdout
    assert out.count("╭─ #") == 3
    total = sum(len(k) for k in keys.values())
    members = (len(keys[INSERT_SHAPE]) - 1) + (len(keys[UPDATE_SHAPE]) - 1)
    assert len(re.findall(rf"^#\d+ {FK} ×\d+ · key customer_id=\d+ · \S+ · line \d+$", out, re.MULTILINE)) == members
    assert f"#{total} " in out
    assert "Summary: 3 groups" in out
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    live = subprocess.Popen([sys.executable, "-m", "logdiag", "analyze", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert live.stdin is not None and live.stdout is not None
    live.stdin.write(data)
    live.stdin.flush()  # the pipe stays open: the run waits for more
    seen = b""
    deadline = time.monotonic() + 120
    last = f"#{total} ".encode()
    while last not in seen and time.monotonic() < deadline:
        seen += os.read(live.stdout.fileno(), 65536)
    live.send_signal(signal.SIGINT)
    rest, _ = live.communicate(timeout=60)
    assert last in seen
    assert live.returncode == 130
    assert b"Summary: 3 groups" in seen + rest


def test_markdown_is_grouped_too(played):
    logs, keys = played
    out = _logdiag("analyze", "--format", "markdown", str(logs["csvlog"])).stdout
    assert f"## Group 1: {len(keys[INSERT_SHAPE])} incidents of {FK}" in out.replace("\\_", "_")
    assert out.count("### ") == 3  # each group's first incident in full
    assert f"- … and {len(keys[INSERT_SHAPE]) - 6} more" in out
    each = _logdiag("analyze", "--format", "markdown", "--each", str(logs["csvlog"])).stdout
    assert each.count("\n## ") == sum(len(k) for k in keys.values())
