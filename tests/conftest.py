"""Fixtures: real PostgreSQL clusters (never simulated), the shared real-world logs, the CLI."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from hypothesis import settings

from tests.pgcluster import PgCluster, ServerUnavailable, find_bindir, make_template, running_cluster

# Property tests draw the same examples on every run: a failure is reproducible, never a fluke.
settings.register_profile("logdiag", derandomize=True, database=None)
settings.load_profile("logdiag")

REPO = Path(__file__).resolve().parent.parent
REAL_LOGS = REPO.parent / "shared" / "real-logs"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

ClusterFactory = Callable[..., AbstractContextManager[PgCluster]]


def _unavailable(reason: str) -> None:
    # In CI a test that needs PostgreSQL must fail loudly, never skip silently.
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[tuple[Path, Path]]:
    """(bindir, template data directory): initdb once per test session."""
    try:
        bindir = find_bindir()
    except ServerUnavailable as exc:
        _unavailable(str(exc))
    directory = Path(tempfile.mkdtemp(prefix="logdiag-template-"))
    os.chmod(directory, 0o755)
    try:
        yield bindir, make_template(bindir, directory)
    except ServerUnavailable as exc:
        _unavailable(str(exc))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster(pg_template: tuple[Path, Path]) -> ClusterFactory:
    """``with pg_cluster(log_line_prefix=..., log_statement=...) as cluster:`` a fresh cluster.

    ``fake_time="2026-03-01 10:00:00"`` starts the server with its clock there (libfaketime).
    """
    bindir, template = pg_template

    def factory(fake_time: str | None = None, **settings: str) -> AbstractContextManager[PgCluster]:
        return _started(bindir, template, settings, fake_time)

    return factory


def _started(
    bindir: Path, template: Path, settings: dict[str, str], fake_time: str | None = None
) -> AbstractContextManager[PgCluster]:
    manager = running_cluster(bindir, template, settings, fake_time=fake_time)

    class _Guard(AbstractContextManager[PgCluster]):
        def __enter__(self) -> PgCluster:
            try:
                return manager.__enter__()
            except ServerUnavailable as exc:
                _unavailable(str(exc))
                raise  # unreachable: _unavailable raises

        def __exit__(self, *exc_info: object) -> None:
            manager.__exit__(*exc_info)  # type: ignore[arg-type]

    return _Guard()


@pytest.fixture
def real_logs() -> Path:
    """../shared/real-logs, logs no one on this project wrote."""
    if not REAL_LOGS.is_dir():  # optional by design: the logs are not ours to copy into the repo
        pytest.skip(f"{REAL_LOGS} is not present")
    return REAL_LOGS


def copy_logs(cluster: PgCluster, out: Path) -> dict[str, Path]:
    """Copy a stopped cluster's three log files out of its directory: format -> copy."""
    copies = {}
    for fmt in ("stderr", "csvlog", "jsonlog"):
        source = cluster.log_file(fmt)
        copies[fmt] = out / source.name
        shutil.copyfile(source, copies[fmt])
    return copies


@pytest.fixture(scope="session")
def server_logs(pg_cluster: ClusterFactory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One real run's three files (stderr with Debian's prefix, csvlog, jsonlog), copied out.

    Tests may read these; a test that damages a log copies it first.
    """
    from tests.traffic import run_driver_traffic, run_psql_traffic

    out = tmp_path_factory.mktemp("server-logs")
    with pg_cluster(log_line_prefix="%m [%p] %q%u@%d ") as cluster:
        run_psql_traffic(cluster)
        run_driver_traffic(cluster)
        cluster.stop()
        return copy_logs(cluster, out)


@pytest.fixture(scope="session")
def scenario_logs(pg_cluster: ClusterFactory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The scenarios of tests/scenarios.py played once with a rich prefix: the three files."""
    from tests.scenarios import RICH_PREFIX, play

    out = tmp_path_factory.mktemp("scenario-logs")
    with pg_cluster(log_line_prefix=RICH_PREFIX, log_statement="all") as cluster:
        play(cluster)
        cluster.stop()
        return copy_logs(cluster, out)


@pytest.fixture
def read_record_by_record(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files whose records ``logdiag export`` reads one by one (the others, polars reads)."""
    import logdiag.export.parquet

    files: list[str] = []
    reader = logdiag.export.parquet.LogReader

    def spy(paths, **options):
        files.extend(paths)
        return reader(paths, **options)

    monkeypatch.setattr(logdiag.export.parquet, "LogReader", spy)
    return files
