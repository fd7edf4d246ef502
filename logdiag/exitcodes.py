"""logdiag's exit codes, in one place (see docs/exit-codes.md)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What the process's exit code means."""

    OK = 0  # done; skipped lines, if any, were counted and reported on stderr
    INCIDENTS = 1  # `analyze --fail-on-incident` found at least one incident
    ERROR = 2  # bad usage or unreadable input: a one-line message on stderr says what to fix
    INCOMPLETE = 3  # lines that may hold records could not be read: the report covers only the rest
    INTERNAL = 70  # a bug in logdiag (EX_SOFTWARE): one line on stderr; LOGDIAG_DEBUG=1 shows the traceback
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM (e.g. systemd or kubernetes stopping a --follow)
    PIPE_CLOSED = 141  # the reader of stdout went away (e.g. `| head`), as for other Unix tools
