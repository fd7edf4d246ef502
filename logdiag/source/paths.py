"""The user's paths as inputs: files, globs and log directories, and stdin."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from logdiag.errors import InputError

STDIN = "-"

_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")
# In a log directory that holds several destinations of one server, read only one of them.
DIRECTORY_PREFERENCE = ("csvlog", "jsonlog", "other")


@dataclass(frozen=True, slots=True)
class Input:
    """One input to read: a file, or standard input.

    Attributes:
        name: as reports name it: the path, or ``-``.
        group: the directory or glob it was found in; None when the user named it. The files of
            a group are put in order by their first record, and those that are not logs are
            skipped with a warning instead of stopping the run.
    """

    name: str
    group: str | None = None


def expand_paths(paths: Sequence[str]) -> list[str]:
    """The names of :func:`expand_inputs`, in the same order.

    >>> expand_paths(["sample_logs/postgresql.csv"])
    ['sample_logs/postgresql.csv']
    """
    return [item.name for item in expand_inputs(paths)]


def expand_inputs(paths: Sequence[str | Input]) -> list[Input]:
    """Expand globs and log directories into a list of inputs, checking that each exists.

    Args:
        paths: files, glob patterns, directories, or ``-`` for standard input; an :class:`Input`
            (from an earlier expansion) is taken as it is.

    Returns:
        The inputs; a directory's or a glob's files come oldest first (by modification time:
        the reader puts each group in order by content).

    Raises:
        InputError: a path does not exist, a glob matches nothing, or a directory has no log file.
    """
    expanded: list[Input] = []
    for path in paths:
        if isinstance(path, Input):
            expanded.append(path)
        elif path == STDIN:
            expanded.append(Input(path))
        elif os.path.isdir(path):
            expanded.extend(Input(file, path) for file in _directory_logs(Path(path)))
        elif os.path.exists(path):
            expanded.append(Input(path))
        elif glob.has_magic(path):
            matches = sorted(glob.glob(path), key=_age_key)
            files = [m for m in matches if os.path.isfile(m)]
            if not files:
                raise InputError(f"no file matches {path!r}")
            expanded.extend(Input(file, path) for file in files)
        else:
            raise InputError(f"no such file or directory: {path}")
    return expanded


def _preferred(files: Sequence[Path]) -> str:
    """The destination to read of files that may hold several of one server's (csvlog first)."""
    present = {destination(path) for path in files}
    return next(d for d in DIRECTORY_PREFERENCE if d in present)


def _age_key(path: str) -> tuple[float, str]:
    try:
        return (os.stat(path).st_mtime, path)
    except OSError:
        return (0.0, path)


def destination(path: Path) -> str:
    name = path.name
    for suffix in _COMPRESSED_SUFFIXES:
        name = name.removesuffix(suffix)
    if name.endswith(".csv"):
        return "csvlog"
    if name.endswith(".json"):
        return "jsonlog"
    return "other"


def _directory_logs(directory: Path) -> list[str]:
    files = [p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")]
    if not files:
        raise InputError(f"no log file in directory {directory}")
    chosen = _preferred(files)
    return sorted((str(p) for p in files if destination(p) == chosen), key=_age_key)
