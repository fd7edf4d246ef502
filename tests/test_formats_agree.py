"""One server run, three log files (stderr, csvlog, jsonlog): logdiag must read the same records."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from logdiag.formats.prefix import LinePrefix
from logdiag.reader import LogReader
from tests.conftest import SERVERS
from tests.traffic import run_driver_traffic, run_psql_traffic

PREFIXES = {
    "default": "%m [%p] ",
    "debian": "%m [%p] %q%u@%d ",
    "rds": "%t:%r:%u@%d:[%p]:",
    "pgbadger": "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "rich": "%m [%p] %q%u@%d app=%a c=%c l=%l v=%v x=%x e=%e ",
}


def _by_process(records):
    """The records in file order within each process, processes by pid: each destination is
    written by its own call, so two processes' lines can come in another order in each file
    (seen once for csvlog against jsonlog); one process's never do."""
    return sorted(records, key=lambda record: record.pid or 0)  # sorted() is stable


def _read(path, prefix=None):
    reader = LogReader([str(path)], log_line_prefix=prefix)
    records = list(reader)
    return records, reader.inputs[0]


@pytest.fixture(scope="class")
def logs(pg_servers, server, name):
    with pg_servers.factory(server)(log_line_prefix=PREFIXES[name]) as cluster:
        run_psql_traffic(cluster)
        run_driver_traffic(cluster)
        cluster.stop()
        yield {
            "stderr": _read(cluster.log_file("stderr")),  # its prefix worked out from its lines
            "csvlog": _read(cluster.log_file("csvlog")),
            "jsonlog": _read(cluster.log_file("jsonlog")),
        }


#: Every prefix on every server: each server's run is a few seconds, and 17 changed the vxid
#: that csvlog, jsonlog and %v print.
RUNS = [pytest.param(server, name, id=f"pg{server}-{name}") for server in SERVERS for name in PREFIXES]


@pytest.mark.postgres
@pytest.mark.parametrize(("server", "name"), RUNS, scope="class")
class TestSameRunThreeFormats:
    """The same server run, read from each of its three log files."""

    def test_every_line_is_accounted_for(self, logs, server, name):
        """No line of any of the three files is skipped."""
        for fmt, (_, stats) in logs.items():
            assert stats.format == fmt
            assert stats.skipped_total == 0, (fmt, stats.skipped, stats.examples)

    def test_detected_prefix(self, logs, server, name):
        """The prefix worked out gives every line the fields the server's setting gives it."""
        stats = logs["stderr"][1]
        assert stats.prefix_inferred
        given, inferred = LinePrefix(PREFIXES[name]), LinePrefix(stats.log_line_prefix)
        for line in Path(stats.file).read_text().splitlines():
            if line and not line.startswith("\t"):
                expected = given.match(line)
                assert expected is not None and inferred.match(line) is not None, line
                assert inferred.match(line).fields == expected.fields, (stats.log_line_prefix, line)

    def test_same_messages(self, logs, server, name):
        """Same count, severities, messages, details, hints, contexts and statements."""
        def view(records):
            return [
                (r.severity, r.message, r.detail, r.hint, r.context, r.statement, r.query) for r in records
            ]

        csv_view = view(_by_process(logs["csvlog"][0]))
        assert view(_by_process(logs["jsonlog"][0])) == csv_view
        assert view(_by_process(logs["stderr"][0])) == csv_view

    def test_same_sqlstates_where_carried(self, logs, server, name):
        """jsonlog leaves out 00000; stderr has a SQLSTATE only with %e; where present they agree."""
        for fmt in ("jsonlog", "stderr"):
            for theirs, ours in zip(_by_process(logs[fmt][0]), _by_process(logs["csvlog"][0]), strict=True):
                if theirs.sqlstate is not None:
                    assert theirs.sqlstate == ours.sqlstate
        errors = [r.sqlstate for r in logs["jsonlog"][0] if r.severity == "ERROR"]
        assert errors == ["23503", "23505", "42P01", "42601", "23503"]

    def test_prefix_fields_match_csv(self, logs, server, name):
        """Whatever the prefix carries equals what csvlog says of the same record."""
        fields = {
            "default": ("pid",),
            "debian": ("pid", "user", "database"),
            "rds": ("pid", "user", "database", "client"),
            "pgbadger": ("pid", "user", "database", "application", "client"),
            "rich": ("pid", "user", "database", "application", "session_id", "vxid", "xid", "sqlstate"),
        }[name]
        for theirs, ours in zip(_by_process(logs["stderr"][0]), _by_process(logs["csvlog"][0]), strict=True):
            for field in fields:
                expected = getattr(ours, field)
                if field == "client" and expected and ":" in expected and "%h" in PREFIXES[name]:
                    expected = expected.rsplit(":", 1)[0]  # %h has no port
                value = getattr(theirs, field)
                if ours.backend_type != "client backend" and "%q" in PREFIXES[name] and field != "pid":
                    assert value in (None, expected), (field, theirs.source)  # %q cut the prefix short
                else:
                    assert value == expected, (field, theirs.source, ours.source)
            # %m has milliseconds, like csvlog. %t has whole seconds and PostgreSQL takes it from a
            # fresh time() call rather than the message's timestamp: the cut-off second plus the
            # time between the two clock reads (on a busy machine 13:42:15 against 13:42:16.001).
            if "%m" in PREFIXES[name]:
                assert theirs.timestamp == ours.timestamp
            else:
                assert abs(theirs.timestamp - ours.timestamp) < timedelta(seconds=2)

    def test_line_numbers_point_at_the_record(self, logs, server, name):
        """Each record's source line is the physical line where it starts in its own file."""
        for fmt, (records, _) in logs.items():
            lines = Path(records[0].source.file).read_text(encoding="utf-8").split("\n")
            for record in records:
                line = lines[record.source.line - 1]
                first = (record.message or "").split("\n")[0]
                if fmt == "jsonlog":
                    assert json.loads(line)["message"] == record.message
                elif fmt == "csvlog":
                    assert line.startswith(record.timestamp.strftime("%Y-%m-%d %H:%M:%S"))
                    assert first.replace('"', '""') in line
                else:
                    assert f"{record.severity}:  {first}" in line
