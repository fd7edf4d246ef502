"""One input opened once: a file or standard input as bytes, pieces or lines, decompressed."""

from __future__ import annotations

import functools
import io
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from typing import BinaryIO, cast

from logdiag.errors import UnreadableInput
from logdiag.source import archives, compression
from logdiag.source.compression import (
    DECOMPRESSION_ERRORS,
    MAGIC,
    decompressed,
    gzip_files,
    without_first,
)
from logdiag.source.framing import UTF8_BOM, Tick, cut_long_lines, cut_long_readlines, split_lines
from logdiag.source.live import stdin_chunks
from logdiag.source.paths import STDIN
from logdiag.source.stats import LineCuts


class OpenInput:
    """An input opened for reading bytes: ``.lines()`` yields its lines, decompressed if need be.

    Compression (gzip, bzip2, xz, zstd) is told by magic bytes, not by the file name. Compressed
    data is decompressed incrementally, so everything before a cut in a truncated file comes out
    before the error that ends the iteration. A name ``archive:member`` reads that member of a
    tar or zip archive (:mod:`archives`), straight from the archive.

    Args:
        name: a file, ``-`` for standard input, or ``archive:member``.
        head: read these bytes (an input's first bytes, already read) instead of opening ``name``.
        cuts: the line limit, and where the lines longer than it were cut (default: a new one with
            the default limit). Every line handed out is within the limit.

    Raises:
        UnreadableInput: the file cannot be opened.
    """

    def __init__(self, name: str, head: bytes | None = None, cuts: LineCuts | None = None) -> None:
        self.name = name
        self.cuts = cuts if cuts is not None else LineCuts()
        self._closer: ExitStack | None = None
        member = None if head is not None or name == STDIN else archives.split_member(name)
        self.member = member is not None
        raw: BinaryIO
        if head is not None:
            raw = io.BytesIO(head)
        elif name == STDIN:
            raw = sys.stdin.buffer
        elif member is not None:
            raw, self._closer = archives.open_member(*member)
        else:
            try:
                raw = open(name, "rb")  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise UnreadableInput(f"cannot open {name}: {exc.strerror or exc}") from exc
        self._raw = raw
        #: A regular file's size when it was opened: if it is smaller once read, it shrank meanwhile.
        self._size = _regular_size(raw)
        self._buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(io.RawIOBase, raw))
        head = self._buffered.peek(8)[:8]
        if head.startswith(UTF8_BOM):  # an editor's or a Windows tool's mark, no text: it would cost the first record
            self._buffered.read(len(UTF8_BOM))
            head = self._buffered.peek(8)[:8]
        self.compression = next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), None)

    def lines(self, quiet: float | None = None) -> Iterator[bytes | Tick]:
        """The input's lines, each with its line ending.

        Args:
            quiet: for standard input, yield TICK after this many idle seconds (live use).
        """
        if self.name == STDIN and quiet is not None and self.compression is None:
            return split_lines(self.pieces(quiet))
        if self.compression is None:
            return cut_long_readlines(self._buffered, self.cuts)
        return split_lines(self.chunks())

    def pieces(self, quiet: float | None = None) -> Iterator[bytes | Tick]:
        """The input's bytes, decompressed, in chunks as they come; for standard input read live
        (``quiet`` seconds), TICK whenever it goes quiet."""
        if self.name == STDIN and quiet is not None and self.compression is None:
            return cut_long_lines(stdin_chunks(self._buffered, quiet), self.cuts)
        return self.chunks()

    def chunks(self) -> Iterator[bytes]:
        """The input's bytes, decompressed, in large chunks (no line splitting), its lines cut at
        the line limit."""
        return cut_long_lines(self._chunks(), self.cuts)

    def _chunks(self) -> Iterator[bytes]:
        if self.compression is None:
            return iter(lambda: self._buffered.read(compression.CHUNK_SIZE), b"")
        if self.compression == "gzip" and self.name != STDIN and not self.member and self._buffered.seekable():
            return _without_bom(self._inflated())  # standard input goes in small pieces: its batches are small
        return _without_bom(decompressed(self._buffered, self.compression))

    def _inflated(self) -> Iterator[bytes]:
        """A gzip file (every member) inflated in large pieces.

        A large read that meets broken data loses what it had inflated, so the file is then read
        again from the start, a small piece at a time, for what comes before the break.
        """
        start, handed = self._buffered.tell(), 0
        try:
            read = functools.partial(gzip_files.GzipFile(fileobj=self._buffered).read, compression.INFLATED_PIECE_BYTES)
            for piece in iter(read, b""):
                handed += len(piece)
                yield piece
        except DECOMPRESSION_ERRORS:
            self._buffered.seek(start)
            yield from without_first(decompressed(self._buffered, "gzip"), handed)

    def shrank(self) -> str | None:
        """Why records may be missing, if the file shrank while it was read (truncated: by
        logrotate's ``copytruncate``, say); None: it did not."""
        size = _regular_size(self._raw)
        if self._size is None or size is None or size >= self._size:
            return None
        return (
            f"the file shrank from {self._size} to {size} bytes while it was read (truncated): "
            f"the report may lack records it held after byte {size}"
        )

    def close(self) -> None:
        if self._closer is not None:
            self._closer.close()
        elif self.name != STDIN:
            self._raw.close()


def _regular_size(raw: BinaryIO) -> int | None:
    """The size of an open regular file; None for anything else (a pipe, a member, bytes)."""
    try:
        status = os.fstat(raw.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def _without_bom(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Decompressed pieces, less a byte-order mark at the start of the first."""
    for piece in pieces:
        if piece:
            yield piece.removeprefix(UTF8_BOM)
            break
    yield from pieces
