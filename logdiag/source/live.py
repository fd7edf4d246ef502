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
from stat import S_ISREG
from typing import BinaryIO

from logdiag.source.framing import TICK, FileSwitch, Tick
from logdiag.source.paths import COMPRESSED_SUFFIXES, DIRECTORY_PREFERENCE, destination

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


@dataclass(frozen=True, slots=True)
class FollowNotice:
    """What ``--follow`` has to say besides the data: a wait, a truncation, a possible loss.

    Attributes:
        text: one line, naming the file.
        loss: whether lines may have been lost (a warning), or it is news only.
    """

    text: str
    loss: bool = False


#: ``on_notice(notice)``: told what following meets (a file truncated, a directory still empty).
Notify = Callable[[FollowNotice], None]
#: The first bytes of a followed file that tell it from another file (its fingerprint): a
#: PostgreSQL log's first line holds a time and a process id, so no two logs start alike.
HEAD_BYTES = 1024
#: Fewer first bytes than this tell nothing: such a file is no copy of another.
MIN_HEAD_BYTES = 64
_Identity = tuple[int, int]  # st_dev, st_ino


@dataclass
class _Followed:
    path: Path
    handle: BinaryIO
    identity: _Identity
    position: int = 0
    partial: bytes = b""
    head: bytes = b""  # the file's first bytes (up to HEAD_BYTES), as read

    def read(self) -> bytes:
        """The next bytes (b"": none yet)."""
        data = self.handle.read(CHUNK)
        self.position += len(data)
        return data

    def taken(self, data: bytes) -> None:
        """The bytes just read are the file's own (not a new text's): the head grows with them."""
        start = self.position - len(data)
        if start == len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - start]

    def rewritten(self) -> bool:
        """Whether the file no longer starts as it did (truncated, then written again)."""
        return bool(self.head) and os.pread(self.handle.fileno(), len(self.head), 0) != self.head

    def restart(self) -> None:
        """Read the file again from its start (a truncation): what is there is another text."""
        self.handle.seek(0)
        self.position = 0
        self.partial = b""
        self.head = b""

    def mark(self) -> _Mark:
        return _Mark(self.position, self.head, followed=True)


@dataclass(frozen=True, slots=True)
class _Mark:
    """How far a file of a followed directory was read (or stood when following began)."""

    position: int
    head: bytes
    followed: bool = False  # read by logdiag (else: as it stood when following began, or a copy)


def _same_start(head: bytes, other: bytes, minimum: int = MIN_HEAD_BYTES) -> bool:
    """Whether two first bytes are those of one text (one may have been read further): of two
    files, a copy; of one file seen twice (``minimum`` 0), not written anew since."""
    shorter = min(len(head), len(other))
    return shorter >= minimum and head[:shorter] == other[:shorter]


#: Seconds by which a log file of another destination must have been written after the followed
#: one for ``--follow DIR`` to move to it (``log_destination`` changed). The destinations of one
#: server are written together, a message to each in turn, well within this.
SWITCH_AFTER = 1.0


def _newest(directory: Path) -> dict[str, tuple[Path, os.stat_result]]:
    """The newest file of each destination in a log directory (csvlog, jsonlog, the rest)."""
    newest: dict[str, tuple[Path, os.stat_result]] = {}
    for path, stat in _logs(directory):
        kind = destination(path)
        if kind not in newest or (stat.st_mtime, path.name) > (newest[kind][1].st_mtime, newest[kind][0].name):
            newest[kind] = (path, stat)
    return newest


def _logs(directory: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """The files of a log directory that may be followed: plain regular files (a compressed one
    is an old log, a FIFO no file to follow), with their status."""
    try:
        entries = list(os.scandir(directory))
    except OSError:  # removed, or no longer readable: nothing to follow there for now
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name.endswith(COMPRESSED_SUFFIXES):
            continue
        try:
            stat = entry.stat()
        except OSError:  # removed meanwhile
            continue
        if S_ISREG(stat.st_mode):
            yield Path(entry.path), stat


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
    stop: threading.Event | None = None, on_notice: Notify | None = None,
) -> Iterator[bytes | Tick | FileSwitch]:
    """Follow a file or a log directory like ``tail -F``, without losing a line to rotation.

    A file is read to its end before another is: when its name comes to mean another file
    (logrotate's ``create``), once that file holds something, which PostgreSQL writes only after
    it has stopped writing the old one. A file truncated (logrotate's ``copytruncate``) is read
    again from its start, first reading the end of its copy, found in its directory by its first
    bytes, from where it was left; a truncation is told by the file's size falling below what was
    read or by its first bytes changing (written again past its old size before logdiag looked),
    and when no copy holds what may have been written meanwhile, ``on_notice`` is told of the
    possible loss. Each file followed is announced by a :class:`FileSwitch`.

    In a directory, the newest file of the preferred destination (csvlog, then jsonlog, then the
    rest) among those being written is followed at first (a directory without a log file is
    waited for, ``on_notice`` told once). Then every file of that destination with lines not yet
    read is read in turn, oldest first, each to its end: a server rotating faster than logdiag
    looks skips no file. When the server's ``log_destination`` changes, the newest file of the
    destination now written takes over, read from where it stood when the followed file last
    grew.

    Args:
        path: a log file or a log directory.
        from_start: read what is there first; by default, start at the end.
        poll: seconds between looks at the file system when there is nothing new.
        quiet: seconds without new data after which TICK is yielded.
        stop: set it to end the iteration.
        on_notice: told of a directory still without a log, a truncation, a possible loss.
    """
    notify: Notify = on_notice or _ignore
    target = Path(path)
    directory = target if target.is_dir() else None
    sizes: dict[Path, int] = {}  # in a directory: the files' sizes when the followed one last grew
    marks: dict[_Identity, _Mark] = {}  # how far each file was read (or stood at the start)
    start: int | None = 0 if from_start else None
    if directory is not None:
        first = _first_log(directory, poll, stop, notify)
        if first is None:
            return
        target, waited = first
        if waited:
            start = 0  # a file that came after logdiag started: all of it is new
        for known, stat in _logs(directory):
            sizes[known] = stat.st_size
            marks[_identity(stat)] = _Mark(stat.st_size, _head(known, stat.st_size))
    current = _open(target, start)
    yield FileSwitch(str(current.path))
    idle_since = time.monotonic()
    ticked = grew = False
    while stop is None or not stop.is_set():
        data = current.read()
        if not data:
            if grew and directory is not None:  # read to its end: where do the others stand now?
                sizes = {p: stat.st_size for p, stat in _newest(directory).values()}
                grew = False
            if os.fstat(current.handle.fileno()).st_size < current.position:
                yield from _truncated(current, notify, marks)
                continue
            replacement = _replacement(current, directory, sizes, marks)
            if replacement is not None:
                data = current.read()  # a last look: what it got before the server moved on
                if not data:
                    if current.partial:
                        yield current.partial
                    current.handle.close()
                    marks[current.identity] = current.mark()
                    current = _open(*replacement)
                    yield FileSwitch(str(current.path))
                    continue
        if data:
            if current.rewritten():  # truncated and written again: these bytes are another text's
                current.position -= len(data)
                yield from _truncated(current, notify, marks)
                continue
            current.taken(data)
            # Cut here, not by framing.split_lines: a line cut in two by a truncation is dropped.
            lines = (current.partial + data).split(b"\n")
            current.partial = lines.pop()
            for line in lines:
                yield line + b"\n"
            idle_since, ticked, grew = time.monotonic(), False, True
            continue
        idle = time.monotonic() - idle_since
        if not ticked and idle >= quiet:
            ticked = True
            yield TICK
        # Up to the TICK, wake up for it on time rather than up to a poll late (issue 24).
        time.sleep(poll if ticked else min(poll, quiet - idle))
    current.handle.close()


def _ignore(notice: FollowNotice) -> None:
    """The default ``on_notice``: nobody to tell."""


def _first_log(
    directory: Path, poll: float, stop: threading.Event | None, notify: Notify,
) -> tuple[Path, bool] | None:
    """The file of a log directory to follow first, and whether it was waited for (the directory
    held no log file yet: ``tail -F`` waits too, issue 27); None: stopped while waiting."""
    waited = False
    while stop is None or not stop.is_set():
        chosen = _chosen(_newest(directory))
        if chosen is not None:
            return chosen, waited
        if not waited:
            notify(FollowNotice(f"{directory} holds no log file yet: waiting for one"))
            waited = True
        time.sleep(poll)
    return None


def _open(path: Path, position: int | None) -> _Followed:
    """A file opened at ``position`` (None: at its end)."""
    handle = open(path, "rb")  # noqa: SIM115 - closed by follow()
    followed = _Followed(path, handle, _identity(os.fstat(handle.fileno())))
    followed.position = handle.seek(0, os.SEEK_END) if position is None else handle.seek(position)
    if followed.position:
        followed.head = os.pread(handle.fileno(), min(HEAD_BYTES, followed.position), 0)
    return followed


def _identity(stat: os.stat_result) -> _Identity:
    return stat.st_dev, stat.st_ino


def _head(path: Path, size: int) -> bytes:
    """A file's first bytes (its fingerprint), b"" if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(min(size, HEAD_BYTES))
    except OSError:
        return b""


def _truncated(
    current: _Followed, notify: Notify, marks: dict[_Identity, _Mark],
) -> Iterator[bytes | FileSwitch]:
    """A followed file was truncated: the end of its copy from where it was left, if a copy is
    found (logrotate's ``copytruncate``), else a notice of the possible loss; then its new text
    is read from its start, a new input (its lines are numbered from 1)."""
    copy = _copy_of(current)
    if copy is None:
        notify(FollowNotice(
            f"{current.path} was truncated; what was written to it after byte {current.position} before "
            f"that, if anything, was lost (no copy of it found in {current.path.parent})", loss=True,
        ))
    else:
        copy_path, copy_stat = copy
        with open(copy_path, "rb") as handle:
            handle.seek(current.position)
            rest = current.partial + handle.read(copy_stat.st_size - current.position)
        marks[_identity(copy_stat)] = _Mark(copy_stat.st_size, current.head)
        lines = rest.split(b"\n")
        tail = lines.pop()
        for line in lines:
            yield line + b"\n"
        if tail:
            yield tail  # the copy ends there: nothing will complete that line
        notify(FollowNotice(f"{current.path} was truncated; its end was read from its copy {copy_path}"))
    current.restart()
    yield FileSwitch(str(current.path))


def _copy_of(current: _Followed) -> tuple[Path, os.stat_result] | None:
    """The newest other file of a followed file's directory that starts as it did and holds at
    least what was read of it: its copy, made before it was truncated."""
    if len(current.head) < MIN_HEAD_BYTES:
        return None
    copies = [
        (path, stat) for path, stat in _logs(current.path.parent)
        if _identity(stat) != current.identity and stat.st_size >= current.position
        and _head(path, len(current.head)) == current.head
    ]
    return max(copies, key=lambda item: (item[1].st_mtime_ns, item[0].name), default=None)


def _replacement(
    current: _Followed, directory: Path | None, sizes: dict[Path, int], marks: dict[_Identity, _Mark],
) -> tuple[Path, int] | None:
    """The file to follow instead of ``current`` (read to its end), and from where; None: stay."""
    if directory is None:
        try:
            stat = os.stat(current.path)
        except FileNotFoundError:
            return None  # renamed, nothing in its place yet: the server may still write the old one
        if _identity(stat) == current.identity or stat.st_size == 0:
            return None  # the same file; or a new one the server does not write yet
        return current.path, 0
    newest = _newest(directory)
    chosen = _chosen(newest)
    if chosen is None or chosen == current.path:
        chosen = None
    kind = destination(current.path)
    if chosen is None or destination(chosen) == kind:  # rotation: the oldest file with lines unread
        return _next_unread(directory, kind, current, marks)
    # log_destination changed: what the new destination got since the followed file last grew
    mark = marks.get(_identity(newest[destination(chosen)][1]))
    return chosen, mark.position if mark is not None and mark.followed else sizes.get(chosen, 0)


def _next_unread(
    directory: Path, kind: str, current: _Followed, marks: dict[_Identity, _Mark],
) -> tuple[Path, int] | None:
    """The oldest file of a destination, other than ``current``, that holds lines not read yet
    (a file written after it was left, or since logdiag started), and where they start."""
    unread: list[tuple[int, str, Path, int]] = []
    for path, stat in _logs(directory):
        identity = _identity(stat)
        if identity == current.identity or destination(path) != kind:
            continue
        mark = marks.get(identity)
        if mark is not None and stat.st_size == mark.position:
            continue  # nothing new (the usual case: no need to read its head)
        head = _head(path, HEAD_BYTES)
        if mark is None or not _same_start(head, mark.head, minimum=0):
            # A file not seen before; or a file seen, but written anew (truncated, a name reused):
            # a copy of one read (copytruncate) goes on from where that one was left.
            known = [*marks.values(), current.mark()]
            mark = next((m for m in known if _same_start(head, m.head)), _Mark(0, head))
            marks[identity] = _Mark(mark.position, head, mark.followed)
        if stat.st_size > mark.position:
            unread.append((stat.st_mtime_ns, path.name, path, mark.position))
    if not unread:
        return None
    *_, path, position = min(unread)
    return path, position
