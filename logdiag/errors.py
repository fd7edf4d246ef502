"""logdiag's exceptions: one root, one subclass per kind of failure the user can fix."""

from __future__ import annotations


class LogdiagError(Exception):
    """Root of every error logdiag raises on purpose; its message is one line for the user."""


class InputError(LogdiagError):
    """An input cannot be opened or read at all (missing file, unreadable, unknown format)."""


class UnreadableInput(InputError):
    """An input exists but the system will not let it be read (permissions, I/O error)."""


class ConfigError(LogdiagError):
    """An option is invalid, e.g. a ``--log-line-prefix`` that cannot be compiled."""


class BadLineError(LogdiagError):
    """A line could not be read and ``--on-bad-line fail`` was asked for."""
