"""Inputs the system will not let logdiag read (issue 27 §10): one line naming the path and the
cause, exit 2 when nothing can be read; the other inputs diagnosed and exit 3 when some can.

The suite runs as root, whom file permissions do not stop: logdiag is run here without the
capabilities that let root ignore them (``setpriv``), as any other user would be.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from logdiag.exitcodes import ExitStatus

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs" / "postgresql.csv"
CULPRIT = "INSERT INTO orders (id, customer_id, total_cents) VALUES (1002, 42, 4999);"


def _logdiag(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "logdiag", *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to run logdiag as root without its powers"
        caps = "-dac_override,-dac_read_search"
        command = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", *command]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture
def logs(tmp_path):
    """A directory with a log holding one incident and a log no one may read."""
    directory = tmp_path / "logs"
    directory.mkdir()
    shutil.copyfile(SAMPLE, directory / "postgresql-1.csv")
    locked = directory / "postgresql-2.csv"
    shutil.copyfile(SAMPLE, locked)
    locked.chmod(0)
    yield directory
    locked.chmod(0o644)


def _one_error_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == ExitStatus.ERROR
    assert result.stderr.splitlines() == [f"logdiag: error: {expected}"]


def test_a_file_no_one_may_read_is_an_input_error(logs):
    locked = logs / "postgresql-2.csv"
    _one_error_line(_logdiag("analyze", str(locked)), f"cannot open {locked}: Permission denied")


def test_a_directory_no_one_may_read_is_an_input_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        _one_error_line(_logdiag("analyze", str(locked)), f"cannot read directory {locked}: Permission denied")
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("given", ["directory", "files"])
def test_the_readable_logs_are_diagnosed_and_the_run_is_incomplete(logs, given):
    paths = [str(logs)] if given == "directory" else [str(logs / "postgresql-1.csv"), str(logs / "postgresql-2.csv")]
    result = _logdiag("analyze", *paths, "--format", "json")
    assert "Traceback" not in result.stderr
    assert result.returncode == ExitStatus.INCOMPLETE, result.stderr
    report = json.loads(result.stdout)
    [incident] = report["incidents"]
    assert incident["culprits"][0]["statement"] == CULPRIT
    locked = str(logs / "postgresql-2.csv")
    assert report["skipped_files"] == [
        {"file": locked, "reason": f"cannot open {locked}: Permission denied", "unread": True}
    ]
    assert (f"logdiag: warning: cannot open {locked}: Permission denied; the report covers the other inputs "
            "only.") in result.stderr


def test_no_all_clear_when_a_file_could_not_be_read(logs, tmp_path):
    quiet = tmp_path / "quiet.csv"
    quiet.write_text("".join(line for line in SAMPLE.read_text().splitlines(keepends=True)[:3]))
    result = _logdiag("analyze", str(quiet), str(logs / "postgresql-2.csv"))
    assert result.returncode == ExitStatus.INCOMPLETE, result.stderr
    assert "No constraint violation in this log" not in result.stdout
    assert "1 file could not be read" in result.stdout
