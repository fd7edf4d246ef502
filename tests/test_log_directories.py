"""Log directories, globs and archives of several files, as a real server leaves them (issue 24, part 3).

Every log line here is written by a real server during the test; the expected answers come from
what the test executed (the statements, the keys, when it rotated the log).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import zstandard

from logdiag.exitcodes import ExitStatus
from tests.test_live import _read_line as read_line

SCHEMA = (
    "CREATE TABLE dir_parent (id int PRIMARY KEY);"
    "CREATE TABLE dir_child (id int, parent_id int REFERENCES dir_parent DEFERRABLE INITIALLY DEFERRED);"
)
TIMED_NAMES = "postgresql-%Y%m%d_%H%M%S.log"  # a new file at each rotation (one-second resolution)
SUFFIXES = {"stderr": ".log", "csvlog": ".csv", "jsonlog": ".json"}


def _logdiag(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "logdiag", *args], capture_output=True, text=True, check=False)


def _statement(parent_id: int) -> str:
    return f"INSERT INTO dir_child VALUES ({parent_id}, {parent_id})"


def _connect(cluster) -> psycopg.Connection:
    return psycopg.connect(cluster.conninfo, application_name="dirs", autocommit=False,
                           cursor_factory=psycopg.ClientCursor)


def _fail_at_commit(cluster, parent_id: int) -> str:
    """Commit a child row whose parent does not exist; return the culprit as executed."""
    with _connect(cluster) as conn:
        conn.execute(_statement(parent_id))
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.commit()
    return _statement(parent_id)


def _rotate(cluster) -> None:
    """Rotate, and wait until the server has opened its new files: pg_rotate_logfile() only asks
    the logging collector to, and a statement sent before it has would still go to the old ones."""
    time.sleep(1.1)  # the file name has one-second resolution: a new name, a new file
    before = set(cluster.log_dir.iterdir())
    cluster.psql("SELECT pg_rotate_logfile();", check=True)
    deadline = time.monotonic() + 30
    while len(set(cluster.log_dir.iterdir()) - before) < len(SUFFIXES):  # one per destination
        assert time.monotonic() < deadline, "the server did not rotate its log files"
        time.sleep(0.05)


def _server_files(log_dir: Path, fmt: str) -> list[Path]:
    """A destination's files, oldest first: the server names them by the time it opened them."""
    return sorted(log_dir.glob("*" + SUFFIXES[fmt]))


@dataclass
class RotatedLogs:
    """A transaction whose culprit and COMMIT the server wrote to two different files."""

    files: dict[str, list[Path]]  # per destination, in the order the server wrote them
    culprit: str
    culprit_file: int  # index in ``files[fmt]`` of the file the culprit went to
    commit_file: int
    pid_file: Path  # the server's postmaster.pid, copied while it ran: a file that is no log


@pytest.fixture(scope="module")
def rotated_logs(pg_cluster, tmp_path_factory) -> RotatedLogs:
    out = tmp_path_factory.mktemp("rotated")
    with pg_cluster(log_filename=TIMED_NAMES, log_line_prefix="%m [%p] %q%u@%d ") as cluster:
        cluster.psql(SCHEMA, check=True)
        shutil.copyfile(cluster.data / "postmaster.pid", out / "postmaster.pid")
        _rotate(cluster)  # file 1: the culprit
        culprit = _statement(7)
        with _connect(cluster) as conn:
            conn.execute(culprit)
            _rotate(cluster)  # file 2: its COMMIT, from the same session
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.commit()
        _rotate(cluster)  # file 3: ordinary traffic after it
        cluster.psql("SELECT 1;", check=True)
        cluster.stop()
        logs = out / "server"
        shutil.copytree(cluster.log_dir, logs)
    files = {fmt: _server_files(logs, fmt) for fmt in SUFFIXES}
    assert all(len(found) == 4 for found in files.values()), files
    return RotatedLogs(files, culprit, culprit_file=1, commit_file=2, pid_file=out / "postmaster.pid")


def _copied_out_of_order(files: list[Path], into: Path) -> list[Path]:
    """Copy the files as ``cp`` or an object store would: names that sort the other way round and
    modification times that say the newest is the oldest. Returns the copies, oldest first."""
    into.mkdir()
    copies = []
    for age, source in enumerate(files):
        copy = into / f"{chr(ord('z') - age)}-postgresql{source.suffix}"
        shutil.copyfile(source, copy)
        os.utime(copy, (1_000_000_000 - age * 10, 1_000_000_000 - age * 10))  # 2001: zip takes it
        copies.append(copy)
    return copies


@pytest.mark.postgres
class TestOrderByContent:
    """Rotated files are read in the order of their first record, not of their names or times."""

    @pytest.mark.parametrize("fmt", ["stderr", "csvlog", "jsonlog"])
    def test_commit_in_a_later_file_than_its_culprit(self, rotated_logs, tmp_path, fmt):
        """Copied files (names and mtimes reversed): the COMMIT in file 2 still finds its culprit in file 1."""
        copies = _copied_out_of_order(rotated_logs.files[fmt], tmp_path / "logs")
        result = _logdiag("analyze", str(tmp_path / "logs"), "--format", "json")
        assert result.returncode == ExitStatus.OK, result.stderr
        report = json.loads(result.stdout)
        assert [i["file"] for i in report["inputs"]] == [str(c) for c in copies]
        [incident] = report["incidents"]
        assert incident["key"] == {"parent_id": "7"}
        assert incident["culprits"][0]["statement"] == rotated_logs.culprit
        assert incident["culprits"][0]["source"]["file"] == str(copies[rotated_logs.culprit_file])
        assert incident["raised_by"]["source"]["file"] == str(copies[rotated_logs.commit_file])

    def test_a_glob_is_put_in_order_too(self, rotated_logs, tmp_path):
        """The files a glob matches are ordered by content as well."""
        copies = _copied_out_of_order(rotated_logs.files["csvlog"], tmp_path / "logs")
        result = _logdiag("analyze", str(tmp_path / "logs" / "*.csv"), "--format", "json")
        assert result.returncode == ExitStatus.OK, result.stderr
        [incident] = json.loads(result.stdout)["incidents"]
        assert incident["culprits"][0]["source"]["file"] == str(copies[rotated_logs.culprit_file])


def _strays(directory: Path, pid_file: Path) -> dict[str, str]:
    """Files that are no logs, as they lie around in log directories: name -> why skipped."""
    (directory / "notes.txt").write_text("Rotated by hand on Tuesday; ask Ana before deleting.\n")
    shutil.copyfile(pid_file, directory / "postmaster.pid")
    (directory / "core.bin").write_bytes(bytes(range(256)) * 64)
    return {"notes.txt": "no PostgreSQL log line", "postmaster.pid": "no PostgreSQL log line", "core.bin": "binary data"}


@pytest.mark.postgres
class TestNotLogs:
    """Files of a log directory that are not logs are skipped with one warning, not a failure."""

    def test_strays_are_skipped_and_counted(self, rotated_logs, tmp_path):
        """notes.txt, a .pid and a binary beside stderr logs: one warning line, the incident, exit 0."""
        logs = tmp_path / "logs"
        _copied_out_of_order(rotated_logs.files["stderr"], logs)
        strays = _strays(logs, rotated_logs.pid_file)
        result = _logdiag("analyze", str(logs), "--format", "json")
        assert result.returncode == ExitStatus.OK, result.stderr
        report = json.loads(result.stdout)
        [incident] = report["incidents"]
        assert incident["culprits"][0]["statement"] == rotated_logs.culprit
        assert sorted((f["file"], f["reason"]) for f in report["skipped_files"]) == sorted(
            (str(logs / name), reason) for name, reason in strays.items()
        )
        warnings = [line for line in result.stderr.splitlines() if "not PostgreSQL logs" in line]
        assert len(warnings) == 1
        assert warnings[0].startswith("logdiag: warning: 3 files are not PostgreSQL logs, skipped: ")
        for name, reason in strays.items():
            assert f"{logs / name} ({reason})" in warnings[0]

    def test_export_again_with_strays(self, rotated_logs, tmp_path):
        """An incremental export of a directory with strays: the logs once, the strays never an error."""
        logs = tmp_path / "logs"
        _copied_out_of_order(rotated_logs.files["stderr"], logs)
        _strays(logs, rotated_logs.pid_file)
        first = _logdiag("export", str(logs), "-o", str(tmp_path / "out"))
        assert first.returncode == ExitStatus.OK, first.stderr
        assert ", 1 incident, " in first.stderr and "3 files are not PostgreSQL logs" in first.stderr
        (logs / "notes.txt").write_text("Rotated again on Wednesday.\n")  # a stray changed, no log did
        again = _logdiag("export", str(logs), "-o", str(tmp_path / "out"))
        assert again.returncode == ExitStatus.OK, again.stderr
        assert ", 0 incidents, " in again.stderr
        assert f"1 file is not a PostgreSQL log, skipped: {logs / 'notes.txt'}" in again.stderr

    def test_a_directory_of_no_log_is_an_error(self, rotated_logs, tmp_path):
        """A directory that holds no log at all is an error, not a clean report."""
        strays = tmp_path / "strays"
        strays.mkdir()
        _strays(strays, rotated_logs.pid_file)
        result = _logdiag("analyze", str(strays))
        assert result.returncode == ExitStatus.ERROR
        assert result.stderr.startswith(f"logdiag: error: no PostgreSQL log in {strays}: ")
        assert result.stderr.count("\n") == 1

    def test_a_file_named_alone_is_still_an_error(self, rotated_logs, tmp_path):
        """A single file named by the user that is no log stops the run with one line, as before."""
        _strays(tmp_path, rotated_logs.pid_file)
        result = _logdiag("analyze", str(tmp_path / "notes.txt"))
        assert result.returncode == ExitStatus.ERROR
        assert result.stderr.startswith("logdiag: error: ") and result.stderr.count("\n") == 1


def _tar(files: dict[str, Path], compress: str) -> bytes:
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz" if compress == "gz" else "w") as archive:
        for member, path in files.items():
            archive.add(path, member)
    data = packed.getvalue()
    return zstandard.ZstdCompressor().compress(data) if compress == "zst" else data


def _zip(files: dict[str, Path]) -> bytes:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, path in files.items():
            archive.write(path, member)
    return packed.getvalue()


ARCHIVES = {
    "bundle.tar": lambda files: _tar(files, ""),
    "bundle.tar.gz": lambda files: _tar(files, "gz"),
    "bundle.tgz": lambda files: _tar(files, "gz"),
    "bundle.tar.zst": lambda files: _tar(files, "zst"),
    "bundle.zip": _zip,
}


@pytest.mark.postgres
class TestArchives:
    """An archive of a log directory is read like the directory, straight from the archive."""

    @pytest.mark.parametrize("archive_name", ARCHIVES)
    def test_archive_like_a_directory(self, rotated_logs, tmp_path, archive_name):
        """Members out of order in the archive, a stray among them: the incident, named archive:member."""
        logs = tmp_path / "logs"
        copies = _copied_out_of_order(rotated_logs.files["stderr"], logs)
        (logs / "notes.txt").write_text("Rotated by hand on Tuesday.\n")
        members = {f"pg/log/{path.name}": path for path in sorted(logs.iterdir())}  # z- (oldest) last
        archive = tmp_path / "bundle" / archive_name
        archive.parent.mkdir()
        archive.write_bytes(ARCHIVES[archive_name](members))
        result = _logdiag("analyze", str(archive), "--format", "json")
        assert result.returncode == ExitStatus.OK, result.stderr
        [incident] = json.loads(result.stdout)["incidents"]
        assert incident["key"] == {"parent_id": "7"}
        assert incident["culprits"][0]["statement"] == rotated_logs.culprit
        culprit_copy = copies[rotated_logs.culprit_file].name
        assert incident["culprits"][0]["source"]["file"] == f"{archive}:pg/log/{culprit_copy}"
        assert f"{archive}:pg/log/notes.txt (no PostgreSQL log line)" in result.stderr
        assert os.listdir(archive.parent) == [archive_name]  # nothing unpacked beside it

    def test_export_reads_an_archive(self, rotated_logs, tmp_path):
        """``logdiag export`` reads the archive like analyze, and can re-read its members by name."""
        members = {f"log/{path.name}": path for path in rotated_logs.files["jsonlog"]}
        archive = tmp_path / "bundle.tar.zst"
        archive.write_bytes(_tar(members, "zst"))
        result = _logdiag("export", str(archive), "-o", str(tmp_path / "out"))
        assert result.returncode == ExitStatus.OK, result.stderr
        assert ", 1 incident, " in result.stderr
        assert f"{archive}:log/{rotated_logs.files['jsonlog'][0].name}: jsonlog:" in result.stderr

    def test_members_in_time_order_cost_one_pass(self, rotated_logs, tmp_path, monkeypatch):
        """A .tar.gz whose members are stored oldest first is decompressed twice in all (listed,
        then read), not once more for each member."""
        from logdiag.pipeline import analyze
        from logdiag.source import archives

        archive = tmp_path / "bundle.tar.gz"
        archive.write_bytes(_tar({f"log/{path.name}": path for path in rotated_logs.files["csvlog"]}, "gz"))
        opened: list[str] = []
        tar = archives._tar
        monkeypatch.setattr(archives, "_tar", lambda path, stack: opened.append(path) or tar(path, stack))
        run = analyze([str(archive)], fast=False)
        [incident] = list(run.incidents())
        assert incident.culprits[0].statement == rotated_logs.culprit
        assert len(run.inputs) == len(rotated_logs.files["csvlog"])
        assert opened == [str(archive)] * 2

    def test_an_archive_cut_short(self, rotated_logs, tmp_path):
        """A tar cut inside its last member: the members before it whole, the cut one up to the cut, a warning."""
        files = rotated_logs.files["csvlog"]
        whole = _tar({f"log/{path.name}": path for path in files}, "")
        with tarfile.open(fileobj=io.BytesIO(whole)) as archive:
            last = archive.getmembers()[-1]
        archive_path = tmp_path / "cut.tar"
        archive_path.write_bytes(whole[: last.offset_data + last.size // 2])
        result = _logdiag("analyze", str(archive_path), "--format", "json")
        assert result.returncode == ExitStatus.INCOMPLETE, result.stderr
        report = json.loads(result.stdout)
        [incident] = report["incidents"]
        assert incident["culprits"][0]["statement"] == rotated_logs.culprit
        assert [i["error"] is not None for i in report["inputs"]] == [False] * (len(files) - 1) + [True]
        assert f"logdiag: warning: {archive_path}:log/{files[-1].name}: input ends early" in result.stderr
        assert "Traceback" not in result.stderr

    def test_a_pipe_is_not_sniffed_for_an_archive(self, rotated_logs):
        """A named pipe (``<(zcat log.gz)``) keeps its first bytes: only regular files are looked into."""
        log = rotated_logs.files["csvlog"][rotated_logs.commit_file]
        piped = subprocess.run(
            ["bash", "-c", '"$0" -m logdiag records <(cat "$1")', sys.executable, str(log)],
            capture_output=True, text=True, check=False,
        )
        direct = _logdiag("records", str(log))
        assert piped.returncode == direct.returncode == ExitStatus.OK, piped.stderr
        assert [json.loads(line)["message"] for line in piped.stdout.splitlines()] == [
            json.loads(line)["message"] for line in direct.stdout.splitlines()
        ]

    def test_a_member_can_be_named(self, rotated_logs, tmp_path):
        """``archive:member`` reads that one member (the name reports give it)."""
        members = {f"log/{path.name}": path for path in rotated_logs.files["csvlog"]}
        archive = tmp_path / "bundle.tgz"
        archive.write_bytes(_tar(members, "gz"))
        commit_member = f"log/{rotated_logs.files['csvlog'][rotated_logs.commit_file].name}"
        result = _logdiag("records", f"{archive}:{commit_member}")
        assert result.returncode == ExitStatus.OK, result.stderr
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert records and {r["source"]["file"] for r in records} == {f"{archive}:{commit_member}"}
        assert any(r["severity"] == "ERROR" for r in records)


@pytest.mark.postgres
class TestPrefixChange:
    """Every file gets its own detection: a server whose prefix changed is read before and after."""

    def test_directory_with_a_prefix_change(self, pg_cluster, tmp_path):
        """The prefix changed at a restart: one command finds the incident written with each."""
        before, after = "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ", "%m [%p] %q%u@%d "
        settings = {"log_destination": "stderr", "log_filename": TIMED_NAMES, "log_line_prefix": before}
        with pg_cluster(**settings) as cluster:
            cluster.psql(SCHEMA, check=True)
            first = _fail_at_commit(cluster, 41)
            cluster.stop()
            time.sleep(1.1)  # the restarted server opens a file of another name
            cluster.settings["log_line_prefix"] = after
            cluster.configure()
            cluster.start()
            second = _fail_at_commit(cluster, 42)
            cluster.stop()
            logs = tmp_path / "logs"
            shutil.copytree(cluster.log_dir, logs)
        result = _logdiag("analyze", str(logs), "--format", "json")
        assert result.returncode == ExitStatus.OK, result.stderr
        report = json.loads(result.stdout)
        assert [i["culprits"][0]["statement"] for i in report["incidents"]] == [first, second]
        assert len(report["inputs"]) == 2
        assert all(i["unread"] == 0 and i["records"] for i in report["inputs"])
        assert report["inputs"][0]["log_line_prefix"] != report["inputs"][1]["log_line_prefix"]


@pytest.mark.postgres
def test_follow_moves_to_the_destination_now_written(pg_cluster):
    """--follow DIR says which file it follows, and moves to jsonlog when log_destination changes."""
    settings = {"log_destination": "csvlog", "log_filename": TIMED_NAMES}
    with pg_cluster(**settings) as cluster:
        cluster.psql(SCHEMA, check=True)
        process = subprocess.Popen(
            [sys.executable, "-m", "logdiag", "analyze", "--follow", str(cluster.log_dir), "--format", "jsonl"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            started = read_line(process.stderr, timeout=10)
            [csv_file] = _server_files(cluster.log_dir, "csvlog")
            assert started == f"logdiag: following {csv_file}\n"
            culprit = _fail_at_commit(cluster, 51)
            line = read_line(process.stdout, timeout=10)
            assert line is not None, "no incident from the csvlog file"
            assert json.loads(line)["culprits"][0]["statement"] == culprit
            cluster.psql("ALTER SYSTEM SET log_destination = 'jsonlog';", check=True)
            cluster.psql("SELECT pg_reload_conf();", check=True)
            time.sleep(2.5)  # the csvlog file stops growing; the jsonlog file, written a second later, takes over
            culprit = _fail_at_commit(cluster, 52)
            switched = read_line(process.stderr, timeout=10)
            [json_file] = _server_files(cluster.log_dir, "jsonlog")
            assert switched == f"logdiag: following {json_file}\n"
            line = read_line(process.stdout, timeout=10)
            assert line is not None, "no incident after log_destination changed"
            incident = json.loads(line)
            assert incident["culprits"][0]["statement"] == culprit
            assert incident["raised_by"]["source"]["file"] == str(json_file)
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=10)
        assert process.returncode == ExitStatus.TERMINATED
        assert "Traceback" not in stderr
