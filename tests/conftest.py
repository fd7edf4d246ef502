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

from tests.pgcluster import (
    PgCluster,
    ServerUnavailable,
    find_bindir,
    make_template,
    runnable_by_server,
    running_cluster,
    server_versions,
)

# Property tests draw the same examples on every run: a failure is reproducible, never a fluke.
settings.register_profile("logdiag", derandomize=True, database=None)
settings.load_profile("logdiag")

REPO = Path(__file__).resolve().parent.parent
REAL_LOGS = REPO.parent / "shared" / "real-logs"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: The PostgreSQL servers (major versions) of this run, ``$LOGDIAG_PG_SERVERS`` or 15 and 18: tests
#: of what differs between servers run on each; the others on the first, :data:`DEFAULT_SERVER`.
SERVERS = server_versions()
DEFAULT_SERVER = SERVERS[0]

ClusterFactory = Callable[..., AbstractContextManager[PgCluster]]


def _unavailable(reason: str) -> None:
    # In CI a test that needs PostgreSQL must fail loudly, never skip silently.
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


class Servers:
    """The session's PostgreSQL servers by major version, each set up when first asked for: one
    initdb per version (clusters are copies of its data directory), and the scenarios of
    tests/scenarios.py played once on it."""

    def __init__(self, scratch: Path, out: pytest.TempPathFactory) -> None:
        self._scratch = scratch
        self._out = out
        self._templates: dict[str, tuple[Path, Path] | ServerUnavailable] = {}
        self._scenario_logs: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Path]] = {}

    def template(self, version: str) -> tuple[Path, Path]:
        """(bindir, template data directory) of that server; a server that cannot be set up fails
        (in CI) or skips every test that asks for it."""
        if version not in self._templates:
            directory = self._scratch / f"pg{version}"
            directory.mkdir()
            try:
                bindir = runnable_by_server(find_bindir(version), directory)
                self._templates[version] = (bindir, make_template(bindir, directory))
            except ServerUnavailable as exc:
                self._templates[version] = exc
        found = self._templates[version]
        if isinstance(found, ServerUnavailable):
            _unavailable(str(found))
            raise found  # unreachable: _unavailable raises
        return found

    def factory(self, version: str) -> ClusterFactory:
        """``with factory(log_line_prefix=...) as cluster:`` a fresh cluster of that server."""

        def factory(fake_time: str | None = None, **settings: str) -> AbstractContextManager[PgCluster]:
            bindir, template = self.template(version)
            return _started(bindir, template, settings, fake_time)

        return factory

    def scenario_logs(self, version: str, **settings: str) -> dict[str, Path]:
        """The scenarios of tests/scenarios.py played once on that server with these settings (by
        default a rich prefix and every statement logged): its three files, copied out. Modules
        that ask for the same server and settings read the same run."""
        from tests.scenarios import RICH_PREFIX, play

        settings = settings or {"log_line_prefix": RICH_PREFIX, "log_statement": "all"}
        key = (version, tuple(sorted(settings.items())))
        if key not in self._scenario_logs:
            out = self._out.mktemp(f"scenario-logs-pg{version}")
            with self.factory(version)(**settings) as cluster:
                play(cluster)
                cluster.stop()
                self._scenario_logs[key] = copy_logs(cluster, out)
        return self._scenario_logs[key]


@pytest.fixture(scope="session")
def pg_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Every server of the session (:data:`SERVERS`), set up on demand."""
    scratch = Path(tempfile.mkdtemp(prefix="logdiag-template-"))
    os.chmod(scratch, 0o755)
    try:
        yield Servers(scratch, tmp_path_factory)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster(pg_servers: Servers) -> ClusterFactory:
    """``with pg_cluster(log_line_prefix=..., log_statement=...) as cluster:`` a fresh cluster of
    the default server (the first of :data:`SERVERS`); tests that run on every server use
    ``pg_servers.factory(version)``.

    ``fake_time="2026-03-01 10:00:00"`` starts the server with its clock there (libfaketime).
    """
    return pg_servers.factory(DEFAULT_SERVER)


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
def scenario_logs(pg_servers: Servers) -> dict[str, Path]:
    """The scenarios of tests/scenarios.py played once on the default server: the three files."""
    return pg_servers.scenario_logs(DEFAULT_SERVER)


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
