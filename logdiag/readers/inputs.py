"""Turn the user's paths into byte streams: files, globs, log directories, stdin, compression."""

from __future__ import annotations

import bz2
import functools
import glob
import gzip
import io
import lzma
import os
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from logdiag.errors import InputError
from logdiag.readers.live import TICK, _Tick, split_lines, stdin_chunks
from logdiag.readers.stats import InputStats

STDIN = "-"

_MAGIC: dict[bytes, str] = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")
# In a log directory that holds several destinations of one server, read only one of them.
_DIRECTORY_PREFERENCE = ("csvlog", "jsonlog", "other")

try:  # Intel's ISA-L inflates gzip about four times as fast as zlib: a .gz reads as fast as zcat
    from isal import igzip as gzip_files
    from isal import isal_zlib as gzip_inflate
except ImportError:  # no wheel for this machine: the standard library does the same, slower
    gzip_files = gzip  # type: ignore[no-redef]
    gzip_inflate = zlib  # type: ignore[no-redef]

#: What a broken compressed stream raises while it is read.
DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, OSError, zlib.error, gzip_inflate.error, lzma.LZMAError,
)


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


def _destination(path: Path) -> str:
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
        by_destination.setdefault(_destination(path), []).append(path)
    chosen = next(d for d in _DIRECTORY_PREFERENCE if d in by_destination)
    return sorted((str(p) for p in by_destination[chosen]), key=_age_key)


CHUNK_SIZE = 1 << 16
#: The pieces a gzip file is inflated into: large, because inflating straight into one buffer
#: costs half the CPU of gathering the many small pieces a decompressor object hands out.
INFLATED_PIECE_BYTES = 16 * 1024 * 1024
#: Compressions that decompress several times as fast as the pre-filter reads: a file so compressed
#: can be read twice (ISA-L inflates a gigabyte of log in about half a second, zstd nearly as fast).
QUICK_TO_DECOMPRESS = frozenset({"gzip", "zstd"})


class OpenInput:
    """An input opened for reading bytes: ``.lines()`` yields its lines, decompressed if need be.

    Compression (gzip, bzip2, xz, zstd) is told by magic bytes, not by the file name. Compressed
    data is decompressed incrementally, so everything before a cut in a truncated file comes out
    before the error that ends the iteration.

    Raises:
        InputError: the file cannot be opened.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        raw: BinaryIO
        if name == STDIN:
            raw = sys.stdin.buffer
        else:
            try:
                raw = open(name, "rb")  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise InputError(f"cannot open {name}: {exc.strerror or exc}") from exc
        self._raw = raw
        self._buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
        head = self._buffered.peek(8)[:8]
        self.compression = next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)

    def lines(self, quiet: float | None = None) -> Iterator[bytes | _Tick]:
        """The input's lines, each with its line ending.

        Args:
            quiet: for standard input, yield TICK after this many idle seconds (live use).
        """
        if self.name == STDIN and quiet is not None and self.compression is None:
            return split_lines(stdin_chunks(self._buffered, quiet))
        if self.compression is None:
            return iter(self._buffered)
        return split_lines(self.chunks())

    def pieces(self, quiet: float | None = None) -> Iterator[bytes | _Tick]:
        """The input's bytes, decompressed, in chunks as they come; for standard input read live
        (``quiet`` seconds), TICK whenever it goes quiet."""
        if self.name == STDIN and quiet is not None and self.compression is None:
            return stdin_chunks(self._buffered, quiet)
        return self.chunks()

    def chunks(self) -> Iterator[bytes]:
        """The input's bytes, decompressed, in large chunks (no line splitting)."""
        if self.compression is None:
            return iter(lambda: self._buffered.read(CHUNK_SIZE), b"")
        if self.compression == "gzip" and self.name != STDIN and self._buffered.seekable():
            return self._inflated()  # standard input goes in small pieces: its batches are small
        return _decompressed(self._buffered, self.compression)

    def _inflated(self) -> Iterator[bytes]:
        """A gzip file (every member) inflated in large pieces.

        A large read that meets broken data loses what it had inflated, so the file is then read
        again from the start, a small piece at a time, for what comes before the break.
        """
        start, handed = self._buffered.tell(), 0
        try:
            read = functools.partial(gzip_files.GzipFile(fileobj=self._buffered).read, INFLATED_PIECE_BYTES)
            for piece in iter(read, b""):
                handed += len(piece)
                yield piece
        except DECOMPRESSION_ERRORS:
            self._buffered.seek(start)
            yield from _without_first(_decompressed(self._buffered, "gzip"), handed)

    def close(self) -> None:
        if self.name != STDIN:
            self._raw.close()


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return gzip_inflate.decompressobj(wbits=31)
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj()


def _decompressed(stream: BinaryIO, kind: str) -> Iterator[bytes]:
    decompressor = _decompressor(kind)
    started = False
    while True:
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            if started and not decompressor.eof:
                raise EOFError("compressed data ends before its end-of-stream marker")
            return
        while chunk:
            started = True
            out = decompressor.decompress(chunk)
            if out:
                yield out
            chunk = b""
            if decompressor.eof:  # another gzip member or zstd frame may follow
                chunk = decompressor.unused_data
                if chunk:
                    decompressor = _decompressor(kind)


def _without_first(pieces: Iterable[bytes], count: int) -> Iterator[bytes]:
    """The bytes of ``pieces`` after the first ``count``."""
    for piece in pieces:
        if count < len(piece):
            yield piece[count:]
        count = max(count - len(piece), 0)


def decode_line(raw: bytes) -> tuple[str, bool]:
    """A line's text: UTF-8, else Latin-1 (a LATIN1 database's statements); and whether it was Latin-1."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("latin-1"), True


def decode_lines(chunks: Iterable[bytes | _Tick], stats: InputStats) -> Iterator[tuple[int, str] | _Tick]:
    """Yield ``(line_number, text)`` for each physical line, without its line ending.

    Lines that are not UTF-8 (a LATIN1 database's data) are read as Latin-1 and counted in
    ``stats.recoded``. NUL bytes, which PostgreSQL never writes, are removed. A compressed input
    that ends early stops the iteration and sets ``stats.error`` instead of raising. TICKs (live
    input went quiet) pass through.
    """
    number = 0
    iterator = iter(chunks)
    while True:
        try:
            raw = next(iterator)
        except StopIteration:
            return
        except DECOMPRESSION_ERRORS as exc:
            stats.ended_early(exc, number)
            return
        if raw is TICK:
            yield TICK
            continue
        assert isinstance(raw, bytes)
        number += 1
        stats.lines = number
        if b"\x00" in raw:
            raw = raw.replace(b"\x00", b"")
            if not raw.strip():
                stats.skip(number, "NUL bytes")
                continue
        text, recoded = decode_line(raw)
        stats.recoded += recoded
        if text.endswith("\n"):
            text = text[:-2] if text.endswith("\r\n") else text[:-1]
        elif text.endswith("\r"):
            text = text[:-1]
        yield number, text
