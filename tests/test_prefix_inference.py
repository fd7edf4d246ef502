"""log_line_prefix inference: real-world prefixes, each written by a real server, read unaided.

One cluster for the module: for each prefix the test sets it with ALTER SYSTEM, restarts the server
into a log file of its own (``log_filename``), and plays the same
scenario: sessions with awkward application names, one of which commits a deferred foreign-key
violation. logdiag must work the prefix out from the stderr file alone, read every line, give
every line the fields the given prefix gives it, and find the incident the scenario caused, the
same as in the csvlog file of the same run.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest

from logdiag import fastpath
from logdiag.formats.infer import find_prefix
from logdiag.formats.prefix import LinePrefix
from logdiag.pipeline import analyze

#: Prefixes people run, each with where it comes from.
REAL_WORLD = {
    # PostgreSQL's default since 10 (postgres/postgres commit 7d3235b, doc/src/sgml/config.sgml).
    "postgres-default": "%m [%p] ",
    # The %q tip in the same commit's documentation.
    "postgres-docs-q": "%m [%p] %q%u@%d/%a ",
    # Debian's and Ubuntu's clusters (postgresql-common, createcluster.conf).
    "debian": "%m [%p] %q%u@%d ",
    # Amazon RDS for PostgreSQL's fixed prefix (RDS user guide, "PostgreSQL database log files").
    "rds": "%t:%r:%u@%d:[%p]:",
    # pgBadger's README, "POSTGRESQL CONFIGURATION", for stderr.
    "pgbadger": "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "pgbadger-short": "%t [%p]: user=%u,db=%d,app=%a,client=%h ",
    # Debian's clusters before postgresql-common switched to %m (2017).
    "debian-old": "%t [%p-%l] %q%u@%d ",
    # pgBadger's README, the shorter prefix its first example names.
    "pgbadger-user-db": "%t [%p]: [%l-1] user=%u,db=%d ",
    # Azure Database for PostgreSQL (single server): the log_line_prefix server parameter's default.
    "azure": "%t-%c-",
    # The body of Google Cloud SQL's textPayload (shared/real-logs/cloudsql.log.gz).
    "cloudsql-body": "[%p]: [%l-1] db=%d,user=%u ",
    # pganalyze's log insights setup guide.
    "pganalyze": "%m [%p] %q[user=%u,db=%d,app=%a] ",
    # pgAudit's README ("A typical log line prefix might be").
    "pgaudit": "%m %u %d: ",
    # logdiag's own advice (docs/logging-settings.md), and issue 24's failures from public test
    # fixtures (Filebeat, lnav, pgreplay, a log analyzer's multi-format suite).
    "logdiag": "%m [%p] %q%u@%d %c %v %x %e ",
    "fixture-sqlstate": "%m [%p] %e: db=%d,user=%u,app=%a,client=%h ",
    "fixture-bars": "%m|%u|%d|%c|",
    "fixture-host-first": "%h %m [%p] %q%u@%d ",
    "fixture-bare-t": "%t ",
}
APPLICATIONS = ("billing worker [eu-1]", "shipping-sync, v2 (batch)", "psql")
SETUP = """
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (
    id int PRIMARY KEY,
    parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED
);
INSERT INTO parent VALUES (1);
"""


def _scenario(number: int) -> dict[str, str]:
    """What each application runs; billing's COMMIT fails on child's parent_id = 9000 + number."""
    return {
        "psql": "SELECT 1;",
        "shipping-sync, v2 (batch)": f"BEGIN;\nINSERT INTO child VALUES ({2 * number}, 1);\nCOMMIT;",
        "billing worker [eu-1]": (
            f"BEGIN;\nINSERT INTO child VALUES ({2 * number + 1}, {9000 + number});\nSELECT 1;\nCOMMIT;"
        ),
    }


@pytest.fixture(scope="module")
def logs(pg_cluster, tmp_path_factory) -> dict[str, tuple[Path, Path, int]]:
    """name -> (stderr file, csvlog file, the scenario's number), one file pair per prefix."""
    out = tmp_path_factory.mktemp("prefixes")
    files: dict[str, tuple[Path, Path, int]] = {}
    with pg_cluster(log_statement="all", log_connections="on") as cluster:
        cluster.psql(SETUP, check=True)
        for number, (name, prefix) in enumerate(REAL_WORLD.items(), start=1):
            quoted = prefix.replace("'", "''")
            cluster.psql(
                f"ALTER SYSTEM SET log_line_prefix = '{quoted}';\n"
                f"ALTER SYSTEM SET log_filename = 'prefix-{number:02}.log';", check=True,
            )
            # A restart, not a reload: the lines of a reload would land in both files, with both prefixes.
            cluster.stop()
            cluster.start()
            for application, sql in _scenario(number).items():
                cluster.psql(sql, application=application)
            files[name] = (cluster.log_dir / f"prefix-{number:02}.log", cluster.log_dir / f"prefix-{number:02}.csv", number)
        cluster.stop()
        for name, (stderr, csvlog, number) in list(files.items()):
            copies = out / stderr.name, out / csvlog.name
            for source, copy in zip((stderr, csvlog), copies, strict=True):
                copy.write_bytes(source.read_bytes())
            files[name] = (*copies, number)
    return files


def _header_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("\t")]


@pytest.mark.postgres
@pytest.mark.parametrize("name", REAL_WORLD)
class TestRealWorldPrefixes:
    def test_inferred_prefix_gives_every_line_its_fields(self, logs, name):
        """The prefix worked out from the file gives each line the fields the server's setting gives."""
        stderr, _, _ = logs[name]
        lines = _header_lines(stderr)
        found = find_prefix(lines)
        assert found is not None
        given, inferred = LinePrefix(REAL_WORLD[name]), LinePrefix(found.prefix)
        for line in lines:
            expected = given.match(line)
            assert expected is not None, line  # the server wrote it with this prefix
            got = inferred.match(line)
            assert got is not None and got.fields == expected.fields, (found.prefix, line)

    def test_diagnosis_is_the_csvlogs(self, logs, name):
        """Read unaided, the stderr file gives the scenario's incident, as the csvlog file does."""
        stderr, csvlog, number = logs[name]
        ours = analyze([str(stderr)])
        theirs = analyze([str(csvlog)])
        incidents = [incident.to_dict() for incident in ours.incidents()]
        expected = [incident.to_dict() for incident in theirs.incidents()]
        assert ours.inputs[0].unread == 0, ours.inputs[0].examples
        assert ours.inputs[0].prefix_inferred
        assert len(incidents) == 1
        incident = incidents[0]
        assert (incident["sqlstate"], incident["timing"]) == ("23503", "commit")
        assert incident["key"] == {"parent_id": str(9000 + number)}
        for field in ("sqlstate", "timing", "constraint", "table", "key"):
            assert incident[field] == expected[0][field]
        culprit = f"INSERT INTO child VALUES ({2 * number + 1}, {9000 + number});"
        assert expected[0]["culprits"][0]["statement"] == culprit
        if "%p" in REAL_WORLD[name] or "%c" in REAL_WORLD[name]:
            assert incident["culprits"][0]["statement"] == culprit
        else:  # nothing tells the session: the error is reported alone, and says what to add
            assert incident["culprits"] == []
            advice = list(ours.settings_advice)  # said once per run, not in the incident (issue 29)
            assert any("%p" in a and "%c" in a for a in advice) and ours.settings_advice[advice[0]] == [0]
            assert not any("%c" in hint for hint in incident["hints"])


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["record by record", "pre-filtered", "pre-filtered .gz"])
def test_prefix_worked_out_again_when_the_first_lines_mislead(pg_cluster, tmp_path, monkeypatch, how):
    """The first 200 lines are all the checkpointer's (two a checkpoint), which stop at %q: the prefix
    worked out from them is the part before %q. The session lines after it do not fit; logdiag
    works the prefix out again from both kinds of line and finds the scenario's incident. A big
    file goes through the pre-filter, which would drop the lines that do not fit: it is worked out
    from the first lines and the first client's lines after them."""
    prefix = "%m [%p] %q%u@%d %c %v %x %e "
    with pg_cluster(
        log_line_prefix=prefix, log_statement="none", log_checkpoints="on", log_connections="off",
        log_disconnections="off",
    ) as cluster:
        cluster.psql(SETUP, check=True)
        cluster.psql("CHECKPOINT;\n" * 110, check=True)
        cluster.psql("ALTER SYSTEM SET log_statement = 'all';\nSELECT pg_reload_conf();", check=True)
        time.sleep(0.5)  # the reload reaches the backends started after it
        cluster.psql(_scenario(1)["billing worker [eu-1]"], application="billing worker [eu-1]")
        cluster.stop()
        log = tmp_path / "postgresql.log"
        log.write_bytes(cluster.log_file("stderr").read_bytes())
    lines = _header_lines(log)
    if how != "record by record":
        monkeypatch.setattr(fastpath, "FAST_PATH_MIN_BYTES", 0)  # as if the file were big
    if how.endswith(".gz"):
        log = log.with_suffix(".log.gz")
        log.write_bytes(gzip.compress((tmp_path / "postgresql.log").read_bytes()))
    first = find_prefix(lines[:200])
    assert first is not None and "%u" not in first.prefix  # the sample alone misleads
    run = analyze([str(log)])
    incidents = [incident.to_dict() for incident in run.incidents()]
    stats = run.inputs[0]
    assert stats.unread == 0, stats.examples
    assert LinePrefix(stats.log_line_prefix).match(lines[-1]).fields == LinePrefix(prefix).match(lines[-1]).fields
    assert [(i["key"], i["culprits"][0]["statement"]) for i in incidents] == [
        ({"parent_id": "9001"}, "INSERT INTO child VALUES (3, 9001);")
    ]
