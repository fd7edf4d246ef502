"""Archives of logs (tar, compressed or not, and zip) read like a directory, never unpacked to disk.

A member is named ``archive:member`` (``bundle.tgz:log/postgresql.log``) in reports and counts.
An archive is told by its content, not its name: a zip's first bytes, or a tar header (``ustar``
at byte 257) once the file's compression (gzip, bzip2, xz, zstd: :mod:`compression`) is undone.
A tar is read as a stream: a member is found by reading on from the member read before it, or by
reading the archive again from its start when it comes earlier (members read out of the archive's
own order cost one more pass over the bytes before each).
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from enum import Enum
from typing import IO, BinaryIO, cast

from logdiag.errors import InputError
from logdiag.source.compression import DECOMPRESSION_ERRORS, MAGIC, decompressed

#: What is kept of each member's first bytes while an archive is listed (its format and first
#: record are told from them, without reading the archive again).
HEAD_BYTES = 256 * 1024
_TAR_MAGIC_AT = 257
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


#: What a damaged archive raises while it is read.
_ARCHIVE_ERRORS: tuple[type[BaseException], ...] = (tarfile.TarError, zipfile.BadZipFile, *DECOMPRESSION_ERRORS)


class ArchiveKind(Enum):
    """The archive formats read like a directory."""

    TAR = "tar"
    ZIP = "zip"


@dataclass(frozen=True, slots=True)
class Member:
    """A regular file in an archive, with its first bytes (:data:`HEAD_BYTES`) read at listing."""

    archive: str
    path: str
    head: bytes

    @property
    def name(self) -> str:
        """``archive:path``, the member's name in reports."""
        return f"{self.archive}:{self.path}"


def kind_of(path: str) -> ArchiveKind | None:
    """The archive format of the regular file at ``path``, told by content, or None (not an archive).

    >>> kind_of("sample_logs/postgresql.csv") is None
    True
    """
    if not os.path.isfile(path):  # a pipe (``<(zcat log.gz)``) would lose the bytes read here
        return None
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
            if head.startswith(_ZIP_MAGIC):
                return ArchiveKind.ZIP
            compression = _compression(head)
            if compression is not None:
                handle.seek(0)
                head = _first_decompressed(handle, compression, _TAR_MAGIC_AT + 8)
    except OSError:
        return None
    return ArchiveKind.TAR if head[_TAR_MAGIC_AT : _TAR_MAGIC_AT + 5] == b"ustar" else None


def _compression(head: bytes) -> str | None:
    return next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), None)


def _first_decompressed(handle: BinaryIO, compression: str, size: int) -> bytes:
    got = b""
    try:
        for piece in decompressed(handle, compression):
            got += piece
            if len(got) >= size:
                break
    except DECOMPRESSION_ERRORS:
        pass
    return got


def members(path: str, kind: ArchiveKind) -> list[Member]:
    """The regular files of an archive (hidden ones aside), in the archive's order, each with its
    first bytes; one pass over the archive. An archive cut short gives the members before the cut
    (the one it cuts says so when it is read).

    Raises:
        InputError: the archive is damaged before its first member.
    """
    found: list[Member] = []
    try:
        if kind is ArchiveKind.ZIP:
            with zipfile.ZipFile(path) as archive:
                for zipped in archive.infolist():
                    if not zipped.is_dir() and _wanted(zipped.filename):
                        with archive.open(zipped) as member:
                            found.append(Member(path, zipped.filename, member.read(HEAD_BYTES)))
            return found
        with ExitStack() as stack:
            tar = _tar(path, stack)
            for info in tar:
                if info.isfile() and _wanted(info.name):
                    found.append(Member(path, info.name, b""))  # its head, unless the cut is in it:
                    found[-1] = Member(path, info.name, _extract(tar, info).read(HEAD_BYTES))
    except _ARCHIVE_ERRORS as exc:
        if not found:
            raise InputError(f"cannot read archive {path}: {exc}") from exc
    finally:
        _ORDER[path] = {member.path: index for index, member in enumerate(found)}
    return found


def _wanted(name: str) -> bool:
    return not os.path.basename(name.rstrip("/")).startswith(".")


@dataclass
class _Parked:
    """A tar's stream left open after one of its members was read, for the next member if that
    comes later in the archive (members read in the archive's order cost one pass, not one each)."""

    stack: ExitStack
    tar: tarfile.TarFile
    after: int  # the index of the member read, in the archive's listing


#: The position of each listed tar's members in it, and one parked stream per tar at most.
_ORDER: dict[str, dict[str, int]] = {}
_PARKED: dict[str, _Parked] = {}


def open_member(archive: str, member: str) -> tuple[BinaryIO, ExitStack]:
    """A member's bytes as a stream, and what closes it (the member; a tar's stream is parked for
    the next member, until :func:`release`).

    Raises:
        InputError: the archive cannot be read or has no such member.
    """
    stack = ExitStack()
    try:
        if kind_of(archive) is ArchiveKind.ZIP:
            zipped = stack.enter_context(zipfile.ZipFile(archive))
            return cast(BinaryIO, stack.enter_context(zipped.open(member))), stack
        at = _ORDER.get(archive, {}).get(member)
        parked = _PARKED.pop(archive, None)
        if parked is not None and at is not None and at > parked.after:
            stack, tar = parked.stack, parked.tar
        else:
            if parked is not None:
                parked.stack.close()
            tar = _tar(archive, stack)
        for info in tar:
            if info.name == member and info.isfile():
                if at is None:
                    return _extract(tar, info), stack
                closer = ExitStack()
                closer.callback(_park, archive, _Parked(stack, tar, at))
                return _extract(tar, info), closer
    except (KeyError, *_ARCHIVE_ERRORS) as exc:  # type: ignore[misc] # mypy reads no starred tuple here
        stack.close()
        raise InputError(f"cannot read {archive}:{member}: {exc}") from exc
    stack.close()
    raise InputError(f"no member {member!r} in archive {archive}")


def _park(archive: str, parked: _Parked) -> None:
    earlier = _PARKED.pop(archive, None)
    if earlier is not None:
        earlier.stack.close()
    _PARKED[archive] = parked


def release() -> None:
    """Close the tar streams parked for a next member."""
    while _PARKED:
        _PARKED.popitem()[1].stack.close()


def _tar(path: str, stack: ExitStack) -> tarfile.TarFile:
    """A tar archive opened as a stream, decompressed as its first bytes say; closed with ``stack``."""
    raw = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - closed with the stack
    compression = _compression(raw.read(8))
    raw.seek(0)
    stream: BinaryIO = raw
    if compression is not None:
        stream = cast(BinaryIO, io.BufferedReader(_Pieces(decompressed(raw, compression))))
    return stack.enter_context(tarfile.open(fileobj=stream, mode="r|"))


def _extract(tar: tarfile.TarFile, info: tarfile.TarInfo) -> BinaryIO:
    """The member ``tar`` has just read the header of, as a stream."""
    return cast(BinaryIO, io.BufferedReader(_MemberBytes(tar, info)))


class _MemberBytes(io.RawIOBase):
    """The bytes of a member of a tar read as a stream, read from the archive's stream itself.

    ``TarFile.extractfile`` drops the last piece before a cut (it raises instead of returning a
    short read); here a member whose archive ends early gives every byte there is, then raises
    EOFError, as a cut compressed file does, so the readers report it the same way.
    """

    def __init__(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        self._stream = cast(IO[bytes], tar.fileobj)
        self._start = info.offset_data
        self._left = info.size
        self._started = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._started:
            self._stream.seek(self._start)  # forward only: where the member's data starts
            self._started = True
        if not self._left:
            return 0
        data = self._stream.read(min(len(buffer), self._left))
        if not data:
            raise EOFError(f"archive ends early: {self._left} bytes of the member missing")
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)


class _Pieces(io.RawIOBase):
    """An iterator of byte pieces as a readable raw stream (for :mod:`tarfile`)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._left:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._left = piece
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


def split_member(name: str) -> tuple[str, str] | None:
    """``(archive, member)`` for a name ``archive:member`` whose archive is a file, else None.

    >>> split_member("sample_logs/postgresql.csv") is None
    True
    """
    if os.path.exists(name):
        return None
    at = name.find(":")
    while at > 0:
        if os.path.isfile(name[:at]) and kind_of(name[:at]) is not None:
            return name[:at], name[at + 1 :]
        at = name.find(":", at + 1)
    return None
