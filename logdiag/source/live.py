"""Live input: standard input read as it arrives, and files followed like ``tail -F``.

Both yield raw lines and, whenever nothing new has arrived for a while, :data:`TICK`: a beat that
lets the readers finish records still waiting for DETAIL or STATEMENT lines (stderr), lets format
detection go ahead with fewer lines, and lets an incident out within about a second.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from logdiag.errors import InputError
from logdiag.source.framing import TICK, FileSwitch, Tick
from logdiag.source.paths import DIRECTORY_PREFERENCE, destination

CHUNK = 1 << 16
#: Seconds without new input after which live input is quiet (TICK), the default of
#: ``--quiet-period``. PostgreSQL writes all the lines of a message at once, so half a second of
#: silence is a wide margin for its DETAIL and STATEMENT lines, and it leaves room for
#: :func:`follow`'s polling and the reading: an incident is out within a second of its last
#: line, on a quiet server too (it was 1 s, which made that 1.1 to 1.5 s; issue 24).
QUIET_PERIOD = 0.5


def stdin_chunks(stream: BinaryIO, quiet: float) -> Iterator[bytes | Tick]:
    """Bytes of a pipe as they arrive (a thread reads them), and TICK after ``quiet`` idle seconds.

    The thread reads the file descriptor, not the buffered ``stream``: a daemon thread waiting
    inside a buffered reader's read when logdiag exits (an early ``| head``, an error) holds that
    reader's lock, and the interpreter then aborts at shutdown ("could not acquire lock for
    <stdin>"). What the stream has buffered already (format sniffing peeks at it) comes first:
    one ``read1`` takes it all, the readers' buffers being smaller than :data:`CHUNK`.
    """
    first = stream.read1(CHUNK)  # type: ignore[attr-defined]
    if not first:
        return
    yield first
    read: Callable[[], bytes]
    try:
        read = functools.partial(os.read, stream.fileno(), CHUNK)
    except (OSError, ValueError):  # not a real file: read it as it is
        read = functools.partial(stream.read1, CHUNK)  # type: ignore[attr-defined]
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=64)

    def pump() -> None:
        try:
            while chunk := read():
                chunks.put(chunk)
        except (OSError, ValueError):
            pass
        chunks.put(None)

    threading.Thread(target=pump, name="logdiag-stdin", daemon=True).start()
    while True:
        try:
            chunk = chunks.get(timeout=quiet)
        except queue.Empty:
            yield TICK
            continue
        if chunk is None:
            return
        yield chunk


@dataclass
class _Followed:
    path: Path
    handle: BinaryIO
    inode: int
    position: int = 0
    partial: bytes = b""


#: Seconds by which a log file of another destination must have been written after the followed
#: one for ``--follow DIR`` to move to it (``log_destination`` changed). The destinations of one
#: server are written together, a message to each in turn, well within this.
SWITCH_AFTER = 1.0


def _newest(directory: Path) -> dict[str, tuple[Path, os.stat_result]]:
    """The newest file of each destination in a log directory (csvlog, jsonlog, the rest)."""
    newest: dict[str, tuple[Path, os.stat_result]] = {}
    for path in directory.iterdir():
        if path.name.startswith("."):
            continue
        try:
            stat = path.stat()
        except OSError:  # removed meanwhile
            continue
        if not os.path.isfile(path):
            continue
        kind = destination(path)
        if kind not in newest or (stat.st_mtime, path.name) > (newest[kind][1].st_mtime, newest[kind][0].name):
            newest[kind] = (path, stat)
    return newest


def _chosen(newest: dict[str, tuple[Path, os.stat_result]]) -> Path | None:
    """The file to follow: the newest of the preferred destination (csvlog, then jsonlog, then
    the rest) among those being written, i.e. written within :data:`SWITCH_AFTER` of the latest."""
    if not newest:
        return None
    latest = max(stat.st_mtime for _, stat in newest.values())
    live = {kind for kind, (_, stat) in newest.items() if stat.st_mtime >= latest - SWITCH_AFTER}
    return newest[next(kind for kind in DIRECTORY_PREFERENCE if kind in live)][0]


def follow(
    path: str, *, from_start: bool = False, poll: float = 0.2, quiet: float = QUIET_PERIOD,
    stop: threading.Event | None = None,
) -> Iterator[bytes | Tick | FileSwitch]:
    """Follow a file or a log directory like ``tail -F``.

    A file is reopened when it is renamed or replaced (rotation) and read again from its start
    when it is truncated. In a directory, the newest file of the preferred destination (csvlog,
    then jsonlog, then the rest) among those being written is followed: a newer file of its
    destination that appears (rotation) takes over once the current one has been read to its end,
    read from its start; when the server's ``log_destination`` changes, the newest file of the
    destination now written takes over, read from where it stood when the followed file last
    grew. Each file followed is announced by a :class:`FileSwitch`.

    Args:
        path: a log file or a log directory.
        from_start: read what is there first; by default, start at the end.
        poll: seconds between looks at the file system when there is nothing new.
        quiet: seconds without new data after which TICK is yielded.
        stop: set it to end the iteration.
    """
    target = Path(path)
    directory = target if target.is_dir() else None
    sizes: dict[Path, int] = {}  # in a directory: the files' sizes when the followed one last grew
    if directory is not None:
        newest = _newest(directory)
        first = _chosen(newest)
        if first is None:
            raise InputError(f"no log file in directory {directory}")
        target = first
        sizes = {p: stat.st_size for p, stat in newest.values()}
    current = _open(target, None if not from_start else 0)
    left: dict[tuple[Path, int], int] = {}  # where each file followed before was left
    yield FileSwitch(str(current.path))
    idle_since = time.monotonic()
    ticked = grew = False
    while stop is None or not stop.is_set():
        data = current.handle.read(CHUNK)
        if data:
            current.position += len(data)
            # Cut here, not by framing.split_lines: a line cut in two by a truncation is dropped.
            lines = (current.partial + data).split(b"\n")
            current.partial = lines.pop()
            for line in lines:
                yield line + b"\n"
            idle_since, ticked, grew = time.monotonic(), False, True
            continue
        if grew and directory is not None:  # read to its end: where do the others stand now?
            sizes = {p: stat.st_size for p, stat in _newest(directory).values()}
            grew = False
        # Nothing new in the current file: rotation, truncation, a newer file, another destination?
        replacement = _replacement(current, directory, sizes, left)
        if replacement is not None:
            if current.partial:
                yield current.partial
            current.handle.close()
            left[(current.path, current.inode)] = current.position
            current = _open(*replacement)
            yield FileSwitch(str(current.path))
            continue
        idle = time.monotonic() - idle_since
        if not ticked and idle >= quiet:
            ticked = True
            yield TICK
        # Up to the TICK, wake up for it on time rather than up to a poll late (issue 24).
        time.sleep(poll if ticked else min(poll, quiet - idle))
    current.handle.close()


def _open(path: Path, position: int | None) -> _Followed:
    """A file opened at ``position`` (None: at its end)."""
    handle = open(path, "rb")  # noqa: SIM115 - closed by follow()
    inode = os.fstat(handle.fileno()).st_ino
    followed = _Followed(path, handle, inode)
    followed.position = handle.seek(0, os.SEEK_END) if position is None else handle.seek(position)
    return followed


def _replacement(
    current: _Followed, directory: Path | None, sizes: dict[Path, int], left: dict[tuple[Path, int], int],
) -> tuple[Path, int] | None:
    """The file to follow instead of ``current``, and from where; None: stay."""
    try:
        stat = os.stat(current.path)
    except FileNotFoundError:
        stat = None
    if stat is not None and stat.st_ino == current.inode and stat.st_size < current.position:
        current.handle.seek(0)  # truncated: read it again from the start
        current.position = 0
        current.partial = b""
        return None
    if directory is not None:
        newest = _newest(directory)
        chosen = _chosen(newest)
        if chosen is None or chosen == current.path:
            return None
        chosen_stat = newest[destination(chosen)][1]
        resumed = left.get((chosen, chosen_stat.st_ino))
        if destination(chosen) == destination(current.path):  # rotation: a newer file
            if stat is not None and chosen_stat.st_mtime < stat.st_mtime:
                return None
            return chosen, resumed or 0
        # log_destination changed: what the new destination got since the followed file last grew
        return chosen, resumed if resumed is not None else sizes.get(chosen, 0)
    if stat is None or stat.st_ino != current.inode:  # renamed or replaced: follow the name
        return (current.path, 0) if current.path.exists() else None
    return None
