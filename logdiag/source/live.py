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


def _newest(directory: Path, preferred: str | None) -> Path | None:

    files = [p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")]
    if preferred is not None:
        files = [p for p in files if destination(p) == preferred]
    if not files:
        return None
    return max(files, key=lambda p: (p.stat().st_mtime, p.name))


def follow(
    path: str, *, from_start: bool = False, poll: float = 0.2, quiet: float = QUIET_PERIOD,
    stop: threading.Event | None = None,
) -> Iterator[bytes | Tick | FileSwitch]:
    """Follow a file or a log directory like ``tail -F``.

    A file is reopened when it is renamed or replaced (rotation) and read again from its start
    when it is truncated. In a directory, the newest file of the preferred destination (csvlog,
    then jsonlog, then the rest) is followed, and a newer one that appears takes over once the
    current one has been read to its end.

    Args:
        path: a log file or a log directory.
        from_start: read what is there first; by default, start at the end.
        poll: seconds between looks at the file system when there is nothing new.
        quiet: seconds without new data after which TICK is yielded.
        stop: set it to end the iteration.
    """
    target = Path(path)
    directory = target if target.is_dir() else None
    preferred = None
    if directory is not None:

        names = {destination(p) for p in directory.iterdir() if p.is_file()}
        preferred = next((d for d in DIRECTORY_PREFERENCE if d in names), None)
        first = _newest(directory, preferred)
        if first is None:
            raise InputError(f"no log file in directory {directory}")
        target = first
    current = _open(target, at_end=not from_start)
    yield FileSwitch(str(current.path))
    idle_since = time.monotonic()
    ticked = False
    while stop is None or not stop.is_set():
        data = current.handle.read(CHUNK)
        if data:
            current.position += len(data)
            # Cut here, not by framing.split_lines: a line cut in two by a truncation is dropped.
            lines = (current.partial + data).split(b"\n")
            current.partial = lines.pop()
            for line in lines:
                yield line + b"\n"
            idle_since, ticked = time.monotonic(), False
            continue
        # Nothing new in the current file: rotation, truncation, or a newer file?
        replacement = _replacement(current, directory, preferred)
        if replacement is not None:
            if current.partial:
                yield current.partial
            current.handle.close()
            current = _open(replacement, at_end=False)
            yield FileSwitch(str(current.path))
            continue
        idle = time.monotonic() - idle_since
        if not ticked and idle >= quiet:
            ticked = True
            yield TICK
        # Up to the TICK, wake up for it on time rather than up to a poll late (issue 24).
        time.sleep(poll if ticked else min(poll, quiet - idle))
    current.handle.close()


def _open(path: Path, at_end: bool) -> _Followed:
    handle = open(path, "rb")  # noqa: SIM115 - closed by follow()
    inode = os.fstat(handle.fileno()).st_ino
    followed = _Followed(path, handle, inode)
    if at_end:
        followed.position = handle.seek(0, os.SEEK_END)
    return followed


def _replacement(current: _Followed, directory: Path | None, preferred: str | None) -> Path | None:
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
        newest = _newest(directory, preferred)
        if newest is not None and newest != current.path and (
            stat is None or newest.stat().st_mtime >= stat.st_mtime
        ):
            return newest
        return None
    if stat is None or stat.st_ino != current.inode:  # renamed or replaced: follow the name
        return current.path if current.path.exists() else None
    return None
