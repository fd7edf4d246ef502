"""The export under faults: interrupted by a signal or killed, raced by another export, a full
or read-only disk, standard input twice (issue 27 §3); and findings.parquet (issue 26 §2).

Every log is a real server's. The big log is one real jsonlog (a few commit-time foreign-key
failures, then many logged statements) repeated, so that an export takes seconds and a signal
finds it writing its part files; each copy's lines are the server's, so what an export must hold is
known from what was played: every line once as a record, and the failures played, once per copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import psycopg
import pytest

from logdiag.export import dataset
from logdiag.export.parquet import export

pytestmark = pytest.mark.postgres

FAILED_KEYS = (42, 43, 44)  # one commit-time foreign-key failure each, per copy of the big log
FILLER_STATEMENTS = 20_000  # logged statements after them
COPIES = 25  # the big log is the real log this many times over: about 500,000 records
TIMEOUT = 600  # generous: two cores shared by several test runs


@dataclass(frozen=True)
class Log:
    """A real server's log and what was played to write it."""

    path: Path
    records: int  # jsonlog: one record per line
    incidents: int


def _fk_failures(cluster, keys) -> None:
    for key in keys:
        with psycopg.connect(cluster.conninfo, application_name="billing", cursor_factory=psycopg.ClientCursor) as conn:
            conn.execute(f"INSERT INTO orders_child VALUES ({key}, {key})")
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.commit()


def _played_log(cluster, keys, filler: int) -> Path:
    """A real jsonlog: the schema, one commit-time failure per key, then ``filler`` statements."""
    cluster.psql(
        "CREATE TABLE orders_parent (id int PRIMARY KEY);"
        "CREATE TABLE orders_child (id int, parent_id int REFERENCES orders_parent DEFERRABLE INITIALLY DEFERRED);",
        check=True,
    )
    _fk_failures(cluster, keys)
    if filler:
        cluster.psql(f"SELECT format('SELECT %s AS filler', g) FROM generate_series(1, {filler}) g \\gexec", check=True)
    cluster.stop()
    return cluster.log_file("jsonlog")


@pytest.fixture(scope="module")
def real_log(pg_cluster, tmp_path_factory) -> Log:
    """A small real jsonlog with one commit-time failure per key of :data:`FAILED_KEYS`."""
    out = tmp_path_factory.mktemp("small-log")
    with pg_cluster(log_statement="all") as cluster:
        path = shutil.copyfile(_played_log(cluster, FAILED_KEYS, 0), out / "small.json")
    return Log(path, len(path.read_bytes().splitlines()), len(FAILED_KEYS))


@pytest.fixture(scope="module")
def big_log(pg_cluster, tmp_path_factory) -> Log:
    """The real jsonlog of :data:`FAILED_KEYS` and :data:`FILLER_STATEMENTS`, :data:`COPIES` times."""
    out = tmp_path_factory.mktemp("big-log")
    with pg_cluster(log_statement="all") as cluster:
        once = _played_log(cluster, FAILED_KEYS, FILLER_STATEMENTS).read_bytes()
    path = out / "big.json"
    with path.open("wb") as handle:
        for _ in range(COPIES):
            handle.write(once)
    return Log(path, len(once.splitlines()) * COPIES, len(FAILED_KEYS) * COPIES)


def _logdiag(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "logdiag", *args], input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)


def _table(out: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(out / f"{name}.parquet" / "**" / "*.parquet", hive_partitioning=True)


def _visible_parts(out: Path) -> set[str]:
    """The part files a reader sees (every engine's ``*.parquet`` glob), relative to ``out``."""
    return {str(p.relative_to(out)) for p in out.glob("*.parquet/**/*.parquet")}


def _state(out: Path) -> dict:
    return json.loads((out / dataset.STATE_FILE).read_text())


def _accounted_parts(out: Path) -> set[str]:
    """The part files the state file says were committed."""
    return {part for export in _state(out)["exports"].values() for part in export["parts"]}


def _holds_once(out: Path, logs: list[Log]) -> None:
    """``out`` holds every record of ``logs`` once, and their incidents once, with unique ids."""
    records = _table(out, "records")
    assert records.height == sum(log.records for log in logs)
    assert records.select("file", "line").n_unique() == records.height
    incidents = _table(out, "incidents")
    assert incidents.height == sum(log.incidents for log in logs)
    assert incidents["incident_id"].n_unique() == incidents.height
    assert set(incidents["key_text"]) == {f"parent_id={key}" for key in FAILED_KEYS}
    assert _visible_parts(out) == _accounted_parts(out)


def _wait_for(process: subprocess.Popen[str], ready, what: str) -> None:
    """Poll (never a timing assert) until ``ready()``; the export must still be running."""
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the export ended (exit {process.returncode}) before {what}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {what} in {TIMEOUT} s")
        time.sleep(0.01)


def _temporary_parts(out: Path) -> list[Path]:
    return list((out / dataset.TMP_DIR).rglob("*.parquet" + dataset.TMP_SUFFIX))


def _start_export(log: Log, out: Path, *, env: dict[str, str] | None = None,
                  code: str | None = None) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "logdiag"]
    return subprocess.Popen([*command, "export", str(log.path), "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def _summary(out: Path) -> tuple[dict, list[str]]:
    result = _logdiag("summary", str(out), "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), _lines(result.stderr)


class TestInterrupted:
    """An export stopped while it writes its part files keeps nothing of itself, says so, and the
    next export does the whole job, every row once."""

    @pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
    def test_a_signal_keeps_nothing_and_says_so(self, real_log, big_log, tmp_path, signum, code):
        """SIGTERM or SIGINT while part files are written: exit 143 or 130 with one line saying
        nothing of this export was kept; the dataset is the earlier export's, with no temporary
        file left; the same export again gives every record and incident once."""
        out = tmp_path / "out"
        export([str(real_log.path)], out)
        before = _visible_parts(out)
        process = _start_export(big_log, out)
        _wait_for(process, lambda: _temporary_parts(out), "part file written")
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=TIMEOUT)
        assert process.returncode == code, stderr
        said = [line for line in _lines(stderr) if "interrupted" in line]
        assert len(said) == 1, stderr
        assert re.fullmatch(
            r"logdiag: export interrupted: nothing of it was kept \([1-9]\d* part files written so far were removed\); "
            + re.escape(f"{out} holds what earlier exports committed; run the same export again to finish the job"),
            said[0],
        ), said[0]
        assert "Traceback" not in stderr
        assert _visible_parts(out) == before == _accounted_parts(out)
        assert not (out / dataset.TMP_DIR).exists()
        summary, notes = _summary(out)
        assert summary["incidents"] == real_log.incidents and notes == []
        again = _logdiag("export", str(real_log.path), str(big_log.path), "-o", str(out))
        assert again.returncode == 0, again.stderr
        _holds_once(out, [real_log, big_log])

    def test_kill_9_leaves_nothing_visible_and_the_next_export_cleans_up(self, real_log, big_log, tmp_path):
        """SIGKILL while part files are written: its temporary files stay, but no reader sees
        them; summary ignores them and says so; the next export removes them, says so, and does
        the whole job."""
        out = tmp_path / "out"
        export([str(real_log.path)], out)
        before = _visible_parts(out)
        process = _start_export(big_log, out)
        _wait_for(process, lambda: _temporary_parts(out), "part file written")
        process.kill()
        process.communicate(timeout=TIMEOUT)
        left = len(_temporary_parts(out))
        assert left >= 1
        assert _visible_parts(out) == before == _accounted_parts(out)
        summary, notes = _summary(out)
        assert summary["incidents"] == real_log.incidents
        assert len(notes) == 1 and f"{left} temporary part files of an unfinished export ignored" in notes[0]
        again = _logdiag("export", str(real_log.path), str(big_log.path), "-o", str(out))
        assert again.returncode == 0, again.stderr
        assert f"logdiag: removed {left} part files of an interrupted export that was never committed" in again.stderr
        assert not (out / dataset.TMP_DIR).exists()
        _holds_once(out, [real_log, big_log])

    def test_kill_9_right_after_the_commit_is_finished_by_the_next_export(self, real_log, tmp_path):
        """SIGKILL between the state file's write (the commit) and the renames: the state
        accounts for the export, summary reads its parts where they wait, and the next export
        moves them into place without reading the log again."""
        out = tmp_path / "out"
        # The process kills itself where the renames would start: the one moment a signal cannot be aimed at.
        code = ("import os, signal, sys; import logdiag.export.commit as commit; "
                "commit.finish = lambda *a: os.kill(os.getpid(), signal.SIGKILL); "
                "sys.argv[0] = 'logdiag'; from logdiag.cli import main; main()")
        process = _start_export(real_log, out, code=code)
        process.communicate(timeout=TIMEOUT)
        assert process.returncode == -signal.SIGKILL
        assert _visible_parts(out) == set()
        state = _state(out)
        assert set(state["pending"]["parts"]) == _accounted_parts(out) != set()
        summary, notes = _summary(out)
        assert summary["incidents"] == real_log.incidents
        assert len(notes) == 1 and "read the committed part files an interrupted export left" in notes[0]
        again = _logdiag("export", str(real_log.path), "-o", str(out))
        assert again.returncode == 0, again.stderr
        assert "logdiag: finished the commit of an interrupted export" in again.stderr
        assert "unchanged since the last export, skipped" in again.stderr
        assert "pending" not in _state(out) and not (out / dataset.TMP_DIR).exists()
        _holds_once(out, [real_log])


    def test_an_interruption_after_the_commit_keeps_everything(self, real_log, tmp_path, monkeypatch):
        """Ctrl-C as the renames start (raised there: a real signal cannot be aimed at that
        moment): the export moves its parts into place on its way out and says all was kept."""
        import logdiag.export.commit

        def interrupted(*args):
            raise KeyboardInterrupt

        monkeypatch.setattr(logdiag.export.commit, "finish", interrupted)
        notes: list[str] = []
        with pytest.raises(KeyboardInterrupt):
            export([str(real_log.path)], tmp_path / "out", notify=notes.append)
        assert len(notes) == 1 and notes[0].startswith(
            f"export interrupted after its commit: all of it was kept in {tmp_path / 'out'} ("
        )
        assert "pending" not in _state(tmp_path / "out") and not (tmp_path / "out" / dataset.TMP_DIR).exists()
        _holds_once(tmp_path / "out", [real_log])


    def test_table_folders_left_empty_still_get_a_typed_part(self, real_log, tmp_path):
        """A commit stopped after it made the tables' folders (a full disk at the state file's
        write) leaves them empty: the next export still gives each table a readable part."""
        out = tmp_path / "out"
        for name in dataset.TABLES:
            dataset.table_directory(out, name).mkdir(parents=True)
        export([str(real_log.path)], out)
        for name in dataset.TABLES:
            assert _table(out, name).height == {"records": real_log.records, "incidents": real_log.incidents}.get(name, 0)


def test_two_exports_at_once_write_each_row_once(real_log, big_log, tmp_path):
    """Two exports of the same logs into one directory, started together: one waits for the
    other (and says so), then finds the logs exported; every row once, incident_ids unique."""
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "logdiag", "export", str(big_log.path), str(real_log.path), "-o", str(out)]
    processes = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    stderrs = [p.communicate(timeout=TIMEOUT)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], stderrs
    waited = [s for s in stderrs if "is running; waiting for it to finish" in s]
    assert len(waited) == 1
    assert "unchanged since the last export, skipped" in waited[0]
    _holds_once(out, [big_log, real_log])


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small tmpfs of its own at ``where`` (the tests run as root): a disk that fills up, or
    that can be made read-only (root ignores file modes, not a read-only mount)."""
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def _one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    errors = [line for line in _lines(result.stderr) if line.startswith("logdiag: error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


class TestTargetFaults:
    """A full or read-only target: one line naming the path, exit 2, nothing half-written visible."""

    def test_a_full_disk(self, real_log, big_log, tmp_path):
        """The big log's records do not fit in 1 MiB: exit 2 naming the file and the cause; the
        dataset, the state and the space are as the earlier export left them."""
        with _tmpfs(tmp_path / "disk", "1m") as disk:
            out = disk / "out"
            export([str(real_log.path)], out)
            before, state = _visible_parts(out), (out / dataset.STATE_FILE).read_bytes()
            error = _one_error(_logdiag("export", str(big_log.path), "-o", str(out)))
            assert error.startswith(f"logdiag: error: cannot write the export to {out / dataset.TMP_DIR}/")
            assert "No space left on device; nothing of this export was kept" in error
            assert _visible_parts(out) == before and (out / dataset.STATE_FILE).read_bytes() == state
            assert not (out / dataset.TMP_DIR).exists()
            assert not list(out.rglob("*" + dataset.TMP_SUFFIX))
            summary, notes = _summary(out)
            assert summary["incidents"] == real_log.incidents and notes == []

    def test_a_full_disk_on_the_first_export(self, big_log, tmp_path):
        """Nothing fits: no part file, no state file; what is left reads as no export at all."""
        with _tmpfs(tmp_path / "disk", "256k") as disk:
            out = disk / "out"
            error = _one_error(_logdiag("export", str(big_log.path), "-o", str(out)))
            assert "No space left on device" in error
            assert _visible_parts(out) == set() and not (out / dataset.STATE_FILE).exists()
            assert not list(out.rglob("*" + dataset.TMP_SUFFIX))

    def test_a_read_only_target(self, real_log, tmp_path):
        """A read-only file system, for an existing export directory and a new one: exit 2, one
        line naming the path and the cause; the earlier export is untouched."""
        with _tmpfs(tmp_path / "disk", "4m") as disk:
            out = disk / "out"
            export([str(real_log.path)], out)
            before = _visible_parts(out)
            changed = tmp_path / "other.json"
            shutil.copyfile(real_log.path, changed)
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
            for target in (out, disk / "new"):
                error = _one_error(_logdiag("export", str(changed), "-o", str(target)))
                assert error.startswith(f"logdiag: error: cannot write the export to {target}")
                assert error.endswith("Read-only file system")
            assert _visible_parts(out) == before
            summary, _ = _summary(out)
            assert summary["incidents"] == real_log.incidents


class TestIncidentIds:
    """incident_id is unique in a dataset whatever the input."""

    def test_standard_input_twice(self, real_log, tmp_path):
        """Standard input is not remembered: exported twice, its incidents are there twice, each
        under its own id (the export's id is part of it)."""
        out = tmp_path / "out"
        for _ in range(2):
            result = _logdiag("export", "-", "-o", str(out), stdin=real_log.path.read_bytes())
            assert result.returncode == 0, result.stderr
        incidents = _table(out, "incidents")
        assert incidents.height == 2 * real_log.incidents
        assert incidents["incident_id"].n_unique() == incidents.height

    def test_a_file_replaced_by_the_same_content(self, real_log, tmp_path):
        """A file replaced (new inode) is read from its start again: its lines are numbered from 1
        again, with the same times, yet its incidents get new ids."""
        log = tmp_path / "postgresql.json"
        shutil.copyfile(real_log.path, log)
        export([str(log)], tmp_path / "out")
        replacement = tmp_path / "replacement.json"
        shutil.copyfile(real_log.path, replacement)
        os.replace(replacement, log)
        os.utime(log, (time.time() + 10, time.time() + 10))
        second = export([str(log)], tmp_path / "out")
        assert second.files_read == [str(log)]
        incidents = _table(tmp_path / "out", "incidents")
        assert incidents.height == 2 * real_log.incidents
        assert incidents["incident_id"].n_unique() == incidents.height


class TestFindings:
    """findings.parquet: the SET CONSTRAINTS pitfalls of the log (issue 26), incrementally."""

    def test_the_scenarios_findings(self, scenario_logs, tmp_path):
        """The pitfalls the scenarios play, with their statements and consequences."""
        from tests.scenarios import DISTRIG_OFF, NOTDEF_SET, OUTSIDE_SET, REPLICA_OFF, WINDOWS

        export([str(scenario_logs["jsonlog"])], tmp_path / "out", host="db1")
        every = _table(tmp_path / "out", "findings").sort("line")
        checks_off = every.filter(pl.col("kind") == "checks_disabled")
        # two windows that led to an error, two that led to none (the windows alone)
        alone = [w.off for w in WINDOWS.values()]
        assert sorted(checks_off["statement"]) == sorted([REPLICA_OFF, DISTRIG_OFF, *alone])
        assert all("written_unchecked" in roles for roles in checks_off["related_roles"])
        assert every["finding_id"].n_unique() == every.height == 6
        findings = every.filter(pl.col("kind") != "checks_disabled")
        assert findings.select("kind", "statement", "constraint_name", "severity", "sqlstate", "related_roles").rows() == [
            ("not_deferrable", NOTDEF_SET, "notdef_child_parent_id_fkey", "error", "42809",
             ["aborted_after", "aborted_after"]),
            ("set_constraints_outside_transaction", OUTSIDE_SET, None, "warning", "25P01", ["caused"]),
        ]
        lines = scenario_logs["jsonlog"].read_text().splitlines()
        assert "is not deferrable" in lines[findings["line"][0] - 1]
        assert "SET CONSTRAINTS can only be used in transaction blocks" in lines[findings["line"][1] - 1]
        assert findings["finding_id"].n_unique() == 2 and set(findings["host"]) == {"db1"}
        assert findings.schema["logged_at"] == pl.Datetime("us", "UTC") and findings["logged_at"].null_count() == 0

    def test_findings_once_across_incremental_exports(self, scenario_logs, tmp_path):
        """A log exported in two halves (the second appended): each finding once."""
        lines = scenario_logs["jsonlog"].read_bytes().splitlines(keepends=True)
        log = tmp_path / "postgresql.json"
        half = len(lines) // 2
        log.write_bytes(b"".join(lines[:half]))
        export([str(log)], tmp_path / "out")
        with log.open("ab") as handle:
            handle.write(b"".join(lines[half:]))
        export([str(log)], tmp_path / "out")
        findings = _table(tmp_path / "out", "findings")
        assert sorted(findings["kind"]) == [
            *["checks_disabled"] * 4, "not_deferrable", "set_constraints_outside_transaction",
        ]


def test_summary_names_a_foreign_parquet_file(real_log, tmp_path):
    """A Parquet file that is not logdiag's among the incidents' parts: one line naming it, exit 2."""
    out = tmp_path / "out"
    export([str(real_log.path)], out)
    foreign = out / "incidents.parquet" / "notes.parquet"
    pl.DataFrame({"note": ["mine"]}).write_parquet(foreign)
    error = _one_error(_logdiag("summary", str(out)))
    assert error == (f"logdiag: error: {foreign} does not hold logdiag incidents (no 'constraint_name' column): "
                     f"move it out of {out}")
    foreign.write_bytes(b"not parquet at all")
    assert _one_error(_logdiag("summary", str(out))).startswith(f"logdiag: error: {foreign} is not a Parquet file")


def test_a_fifo_in_an_exported_directory_is_a_reported_skip(real_log, tmp_path):
    """A FIFO among a directory's logs: the export reads the files, names the FIFO in its warning
    and never opens it (opened, it would wait for a writer forever; it was left out unsaid)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copyfile(real_log.path, logs / "postgresql.json")
    os.mkfifo(logs / "postgresql-1.json")
    result = _logdiag("export", str(logs), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert f"{logs / 'postgresql-1.json'} (a FIFO: name it alone to read it as a stream)" in result.stderr
    assert _table(tmp_path / "out", "incidents").height == real_log.incidents
