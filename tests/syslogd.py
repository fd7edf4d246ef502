"""A real rsyslogd (Debian's rsyslog) that owns /dev/log for a test module.

PostgreSQL's ``syslog()`` (glibc) writes to /dev/log and nowhere else, so the daemon listens there:
it is started only if nothing else owns /dev/log, and it removes the socket when it stops. A lock
file keeps two test sessions on one machine from sharing it. Each template writes its own file per
``syslog_ident`` (``%programname%``); only idents starting with :data:`IDENT_PREFIX` are written,
so another program's messages never reach the files a test reads.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEV_LOG = Path("/dev/log")
LOCK = Path("/tmp/logdiag-rsyslogd.lock")
IDENT_PREFIX = "pgtest"

#: Template name -> rsyslog template (the built-in ones are rsyslog's own formats).
TEMPLATES: dict[str, str] = {
    # Mon DD HH:MM:SS host ident[pid]: msg (rsyslog's default file format before RFC 3339)
    "traditional": "RSYSLOG_TraditionalFileFormat",
    # 2026-04-02T14:55:51.484123+00:00 host ident[pid]: msg (rsyslog's high-precision file format)
    "rfc3339": "RSYSLOG_FileFormat",
    # <134>1 2026-04-02T14:55:51.484123+00:00 host ident pid - - msg (RFC 5424)
    "rfc5424": "RSYSLOG_SyslogProtocol23Format",
    # Mon DD HH:MM:SS.ffffff host ident[pid]: msg (a classic header with microseconds)
    "classic_us": "classic_us",
}


class SyslogUnavailable(RuntimeError):
    """rsyslogd is missing, /dev/log belongs to someone else, or the daemon does not start."""


@dataclass
class Syslogd:
    directory: Path

    def file(self, ident: str, template: str) -> Path:
        return self.directory / f"{ident}.{template}.log"


def _config(directory: Path) -> str:
    lines = [
        'module(load="imuxsock" SysSock.Use="off")',
        f'input(type="imuxsock" Socket="{DEV_LOG}" CreatePath="on" RateLimit.Interval="0")',
        ('template(name="classic_us" type="string" string="%timegenerated:::date-rfc3164%'
         '.%timegenerated:::date-subseconds% %HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\\n")'),
    ]
    actions = []
    for name, template in TEMPLATES.items():
        lines.append(f'template(name="file_{name}" type="string" string="{directory}/%programname%.{name}.log")')
        actions.append(f'  action(type="omfile" dynaFile="file_{name}" template="{template}")')
    lines.append(f"if $programname startswith '{IDENT_PREFIX}' then {{")
    lines.extend(actions)
    lines.append("  stop")
    lines.append("}")
    lines.append("*.* stop")
    return "\n".join(lines) + "\n"


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


@contextmanager
def running_syslogd(directory: Path) -> Iterator[Syslogd]:
    """rsyslogd on /dev/log writing each template's file into ``directory``; stopped (its files
    flushed) and /dev/log removed when the block ends."""
    rsyslogd = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if rsyslogd is None:
        raise SyslogUnavailable("rsyslogd not found: install Debian's rsyslog package")
    if os.geteuid() != 0:
        raise SyslogUnavailable("only root can give /dev/log to a test's rsyslogd")
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if DEV_LOG.exists() or DEV_LOG.is_symlink():
            if _listening(DEV_LOG):
                raise SyslogUnavailable(f"{DEV_LOG} belongs to a running syslog daemon")
            DEV_LOG.unlink()  # a socket left by a daemon that is gone
        directory.mkdir(parents=True, exist_ok=True)
        conf = directory / "rsyslog.conf"
        conf.write_text(_config(directory))
        pidfile = directory / "rsyslogd.pid"
        process = subprocess.Popen(
            [rsyslogd, "-n", "-f", str(conf), "-i", str(pidfile)],
            stdout=subprocess.DEVNULL, stderr=(directory / "rsyslogd.err").open("w"),
        )
        try:
            deadline = time.monotonic() + 30
            while not _listening(DEV_LOG):
                if process.poll() is not None or time.monotonic() > deadline:
                    err = (directory / "rsyslogd.err").read_text()
                    raise SyslogUnavailable(f"rsyslogd did not start: {err.strip()}")
                time.sleep(0.02)
            yield Syslogd(directory)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # rsyslogd writes out its queues, then exits
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if DEV_LOG.exists() and not _listening(DEV_LOG):
                DEV_LOG.unlink()
