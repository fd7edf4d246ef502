"""log_destination = syslog, as a real rsyslogd writes it with each of its file formats.

One real server per combination of ``syslog_sequence_numbers`` and ``syslog_split_messages``, each
with its own ``syslog_ident``, plays a deferred foreign key that fails at COMMIT with a culprit
statement longer than a syslog piece (PostgreSQL splits lines at 900 bytes) and on two lines. The
rsyslogd of :mod:`tests.syslogd` writes every message once per template. Every expected value
comes from what the scenario executed, never from logdiag's output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import ClientCursor

from logdiag.formats.base import LogFormat
from logdiag.pipeline import analyze
from tests.conftest import IN_CI, ClusterFactory
from tests.pgcluster import PgCluster
from tests.scenarios import simple
from tests.syslogd import IDENT_PREFIX, TEMPLATES, Syslogd, SyslogUnavailable, running_syslogd

#: name -> (syslog_sequence_numbers, syslog_split_messages, log_line_prefix)
RUNS = {
    "seq_split": ("on", "on", "%m [%p] %q%u@%d "),
    "noseq_split": ("off", "on", "%m [%p] %q%u@%d app=%a "),
    "seq_nosplit": ("on", "off", "%q%u@%d app=%a "),
    "noseq_nosplit": ("off", "off", "%q%u@%d "),
}
CASES = [(run, template) for run in RUNS for template in TEMPLATES]

SETUP = (
    "CREATE TABLE sl_parent (id int PRIMARY KEY);",
    ("CREATE TABLE sl_child (id int PRIMARY KEY, parent_id int REFERENCES sl_parent (id) "
     "DEFERRABLE INITIALLY DEFERRED, note text);"),
    "INSERT INTO sl_parent VALUES (1), (2);",
)
# Longer than PostgreSQL's 900-byte syslog pieces and than 1024 bytes; words, so it splits between them.
NOTE = " ".join(f"word{i:03d}" for i in range(160))
CULPRIT = f"INSERT INTO sl_child (id, parent_id, note)\nVALUES (11, 42, '{NOTE}');"
assert len(CULPRIT) > 1024
DECOY = f"INSERT INTO sl_child (id, parent_id, note)\nVALUES (12, 9001, '{NOTE}');"
CONSTRAINT = "sl_child_parent_id_fkey"


def _ident(run: str) -> str:
    return f"{IDENT_PREFIX}_{run}"


def _unavailable(reason: str) -> None:
    if IN_CI:  # in CI a test that needs rsyslog must fail, never skip
        pytest.fail(f"rsyslog is required in CI: {reason}", pytrace=False)
    pytest.skip(f"rsyslog not available: {reason}")


def _interleaved(cluster: PgCluster) -> None:
    """The failing transaction, with another session's long statements between its own: syslog has
    the two processes' messages in turn, and a decoy key (9001) that must not be taken."""
    loader = psycopg.connect(cluster.conninfo, application_name="loader", autocommit=True, cursor_factory=ClientCursor)
    decoy = psycopg.connect(cluster.conninfo, application_name="decoy", autocommit=True, cursor_factory=ClientCursor)
    with loader, decoy:
        loader.execute("BEGIN;")
        decoy.execute("BEGIN;")
        loader.execute("INSERT INTO sl_child VALUES (10, 1, 'fine');")
        decoy.execute(DECOY)
        loader.execute(CULPRIT)
        decoy.execute("ROLLBACK;")
        with contextlib.suppress(psycopg.errors.ForeignKeyViolation):
            loader.execute("COMMIT;")


@pytest.fixture(scope="module")
def syslog_files(pg_cluster: ClusterFactory) -> Iterator[Syslogd]:
    """Every run played with rsyslogd listening; rsyslogd stopped (files complete) before any is read."""
    directory = Path(tempfile.mkdtemp(prefix="logdiag-syslog-"))
    try:
        try:
            daemon = running_syslogd(directory)
            syslogd = daemon.__enter__()
        except SyslogUnavailable as exc:
            _unavailable(str(exc))
            raise
        try:
            for run, (sequence, split, prefix) in RUNS.items():
                settings = {
                    "log_destination": "syslog", "syslog_facility": "LOCAL0", "syslog_ident": _ident(run),
                    "syslog_sequence_numbers": sequence, "syslog_split_messages": split,
                    "log_line_prefix": prefix, "log_statement": "all",
                }
                with pg_cluster(**settings) as cluster:
                    simple(cluster, *SETUP, application="setup")
                    _interleaved(cluster)
                    cluster.stop()
        finally:
            daemon.__exit__(None, None, None)
        if os.environ.get("LOGDIAG_KEEP_SYSLOG"):
            shutil.copytree(directory, os.environ["LOGDIAG_KEEP_SYSLOG"], dirs_exist_ok=True)
        yield syslogd
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.postgres
@pytest.mark.parametrize(("run", "template"), CASES)
def test_syslog_file_is_read_whole_and_diagnosed(syslog_files: Syslogd, run: str, template: str) -> None:
    path = syslog_files.file(_ident(run), template)
    assert path.stat().st_size > 0
    result = analyze([str(path)])
    incidents = [i.to_dict() for i in result.incidents()]
    stats = result.inputs[0]
    assert stats.format == LogFormat.SYSLOG
    assert stats.skipped_total == 0, dict(stats.skipped)
    found = [i for i in incidents if i["constraint"] == CONSTRAINT]
    assert len(found) == 1, incidents
    incident = found[0]
    assert incident["sqlstate"] == "23503"
    assert incident["timing"] == "commit"
    assert incident["key"] == {"parent_id": "42"}
    assert incident["raised_by"]["statement"].rstrip(";") == "COMMIT"
    assert [c["statement"] for c in incident["culprits"]][:1] == [CULPRIT]
    assert all("9001" not in c["statement"] for c in incident["culprits"]), "the decoy session's statement"


@pytest.mark.postgres
@pytest.mark.parametrize("template", ["rfc3339", "rfc5424"])
def test_rfc3339_header_dates_records_when_the_prefix_does_not(syslog_files: Syslogd, template: str) -> None:
    from logdiag.reader import LogReader

    records = list(LogReader([str(syslog_files.file(_ident("noseq_nosplit"), template))]))
    assert records and all(r.timestamp is not None and r.timestamp.tzinfo is not None for r in records)


def test_rsyslogd_left_no_socket(syslog_files: Syslogd) -> None:
    """The daemon is gone and /dev/log with it (unless something else owned it before)."""
    pidfile = syslog_files.directory / "rsyslogd.pid"
    if pidfile.exists():
        pid = int(pidfile.read_text().split()[0])
        assert not Path(f"/proc/{pid}").exists()
    assert not os.path.exists("/dev/log")
