"""The user's paths as inputs: files, globs and log directories in reading order, and stdin."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from logdiag.errors import InputError

STDIN = "-"

_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")
# In a log directory that holds several destinations of one server, read only one of them.
DIRECTORY_PREFERENCE = ("csvlog", "jsonlog", "other")


def expand_paths(paths: Sequence[str]) -> list[str]:
    """Expand globs and log directories into an ordered list of inputs, checking that each exists.

    Args:
        paths: files, glob patterns, directories, or ``-`` for standard input.

    Returns:
        Input names in reading order; a directory's files come oldest first.

    Raises:
        InputError: a path does not exist, a glob matches nothing, or a directory has no log file.
    """
    expanded: list[str] = []
    for path in paths:
        if path == STDIN:
            expanded.append(path)
        elif os.path.isdir(path):
            expanded.extend(_directory_logs(Path(path)))
        elif os.path.exists(path):
            expanded.append(path)
        elif glob.has_magic(path):
            matches = sorted(glob.glob(path), key=_age_key)
            files = [m for m in matches if os.path.isfile(m)]
            if not files:
                raise InputError(f"no file matches {path!r}")
            expanded.extend(files)
        else:
            raise InputError(f"no such file or directory: {path}")
    return expanded


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
    by_destination: dict[str, list[Path]] = {}
    for path in files:
        by_destination.setdefault(destination(path), []).append(path)
    chosen = next(d for d in DIRECTORY_PREFERENCE if d in by_destination)
    return sorted((str(p) for p in by_destination[chosen]), key=_age_key)
