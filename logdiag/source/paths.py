"""The user's paths as inputs: files, globs, log directories and archives, and stdin."""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from logdiag.errors import InputError, UnreadableInput
from logdiag.source import archives
from logdiag.source.stats import SkippedFile

STDIN = "-"

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")
# In a log directory that holds several destinations of one server, read only one of them.
DIRECTORY_PREFERENCE = ("csvlog", "jsonlog", "other")


@dataclass(frozen=True, slots=True)
class Input:
    """One input to read: a file, a member of an archive, or standard input.

    Attributes:
        name: as reports name it: the path, ``-``, or ``archive:member``.
        group: the directory, glob or archive it was found in; None when the user named it.
            The files of a group are put in order by their first record, and those that are
            not logs are skipped with a warning instead of stopping the run.
        head: an archive member's first bytes, read when the archive was listed.
    """

    name: str
    group: str | None = None
    head: bytes | None = field(default=None, repr=False, compare=False)


def expand_paths(paths: Sequence[str]) -> list[str]:
    """The names of :func:`expand_inputs`, in the same order.

    >>> expand_paths(["sample_logs/postgresql.csv"])
    ['sample_logs/postgresql.csv']
    """
    return [item.name for item in expand_inputs(paths)]


def expand_inputs(paths: Sequence[str | Input], streams: list[SkippedFile] | None = None) -> list[Input]:
    """Expand globs, log directories and archives into a list of inputs, checking that each exists.

    Args:
        paths: files, glob patterns, directories, archives (tar, tar.gz, tar.zst, zip...),
            ``archive:member`` names, or ``-`` for standard input; an :class:`Input` (from an
            earlier expansion) is taken as it is.
        streams: told the FIFOs and character devices of a directory or a glob, which are not
            read (:func:`stream_kind`), with the reason.

    Returns:
        The inputs; a directory's or a glob's files come oldest first (by modification time:
        the reader puts each group in order by content), an archive's in its own order.

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
            expanded.extend(_files(_directory_logs(Path(path), streams), path))
        elif os.path.exists(path):
            kind = archives.kind_of(path)
            expanded.extend([Input(path)] if kind is None else _archive(path, kind, path))
        elif archives.split_member(path) is not None:
            expanded.append(Input(path))
        elif glob.has_magic(path):
            matches = sorted(glob.glob(path), key=_age_key)
            files = [m for m in matches if os.path.isfile(m)]
            left = _streams_left_out(matches, streams)
            if not files:
                raise InputError(f"no file matches {path!r}{left}")
            expanded.extend(_files(files, path))
        else:
            raise InputError(f"no such file or directory: {path}")
    return expanded


def may_hold_several(path: str) -> bool:
    """Whether a path given to logdiag may stand for several inputs: a directory, a glob or an
    archive (:func:`expand_inputs` reads each of their files)."""
    return os.path.isdir(path) or glob.has_magic(path) or (os.path.isfile(path) and archives.kind_of(path) is not None)


def is_stream(name: str) -> bool:
    """Whether an input can be read only once: standard input, a FIFO or a character device."""
    return name == STDIN or stream_kind(name) is not None


def stream_kind(name: str) -> str | None:
    """``a FIFO`` or ``a character device``: what a file that can be read only once is; None for
    anything else (standard input included).

    A directory's or a glob's files are put in order by their first lines before they are read,
    which would take a stream's lines away, and a FIFO with no writer blocks the whole run: in a
    directory or a glob, a stream is skipped, and reported (issue 27). Named alone, it is read
    once, as a stream.
    """
    try:
        mode = os.stat(name).st_mode
    except OSError:
        return None  # an archive's member, or a file gone: opening it says what is wrong
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "a character device" if stat.S_ISCHR(mode) else None


def on_disk(name: str) -> str:
    """The file that holds an input: the archive, for a member (``archive:member``); else the name.

    >>> on_disk("sample_logs/postgresql.csv")
    'sample_logs/postgresql.csv'
    """
    member = archives.split_member(name)
    return name if member is None else member[0]


def _files(paths: Sequence[str], group: str) -> list[Input]:
    """The files of a directory or glob as inputs of ``group``, the archives among them listed."""
    found: list[Input] = []
    for path in paths:
        kind = archives.kind_of(path)
        found.extend([Input(path, group)] if kind is None else _archive(path, kind, group))
    return found


def _archive(path: str, kind: archives.ArchiveKind, group: str) -> list[Input]:
    """An archive's files, like a log directory's: of one destination if it holds several."""
    members = archives.members(path, kind)
    if not members:
        raise InputError(f"no file in archive {path}")
    chosen = _preferred([Path(m.path) for m in members])
    return [Input(m.name, group, m.head) for m in members if destination(Path(m.path)) == chosen]


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
    for suffix in COMPRESSED_SUFFIXES:
        name = name.removesuffix(suffix)
    if name.endswith(".csv"):
        return "csvlog"
    if name.endswith(".json"):
        return "jsonlog"
    return "other"


def _directory_logs(directory: Path, streams: list[SkippedFile] | None) -> list[str]:
    try:
        entries = [p for p in directory.iterdir() if not p.name.startswith(".")]
        files = [p for p in entries if p.is_file()]
    except OSError as exc:
        raise UnreadableInput(f"cannot read directory {directory}: {exc.strerror or exc}") from None
    left = _streams_left_out([str(p) for p in entries], streams)
    if not files:
        raise InputError(f"no log file in directory {directory}{left}")
    chosen = _preferred(files)
    return sorted((str(p) for p in files if destination(p) == chosen), key=_age_key)


def _streams_left_out(names: Sequence[str], streams: list[SkippedFile] | None) -> str:
    """Note the FIFOs and character devices among a directory's or a glob's files in ``streams``
    (not read: :func:`stream_kind`); the words that say so in an error, if any."""
    found = [SkippedFile(name, f"{kind}: name it alone to read it as a stream")
             for name in names if (kind := stream_kind(name)) is not None]
    if streams is not None:
        streams.extend(found)
    return "".join(f"; {s.name} is {s.reason}" for s in found[:1])
