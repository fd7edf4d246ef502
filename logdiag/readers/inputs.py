"""Turn the user's paths into byte streams: files, globs, log directories, stdin, compression."""

from __future__ import annotations

import bz2
import glob
import gzip
import io
import lzma
import os
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from logdiag.errors import InputError
from logdiag.readers.stats import InputStats

STDIN = "-"

_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")
# In a log directory that holds several destinations of one server, read only one of them.
_DIRECTORY_PREFERENCE = ("csvlog", "jsonlog", "other")

#: What a broken compressed stream raises while it is read.
DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (EOFError, OSError, zlib.error, lzma.LZMAError)


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


def open_binary(name: str) -> BinaryIO:
    """Open an input for reading bytes, decompressing gzip, bzip2, xz or zstd by their magic bytes.

    Raises:
        InputError: the file cannot be opened.
    """
    raw: BinaryIO
    if name == STDIN:
        raw = sys.stdin.buffer
    else:
        try:
            raw = open(name, "rb")  # noqa: SIM115 - the caller closes the returned stream
        except OSError as exc:
            raise InputError(f"cannot open {name}: {exc.strerror or exc}") from exc
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
    head = buffered.peek(8)[:8]
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return _decompress(kind, buffered)
    return buffered


def _decompress(kind: str, stream: BinaryIO) -> BinaryIO:
    if kind == "gzip":
        return io.BufferedReader(gzip.GzipFile(fileobj=stream))  # type: ignore[arg-type]
    if kind == "bz2":
        return io.BufferedReader(bz2.BZ2File(stream))  # type: ignore[arg-type]
    if kind == "xz":
        return io.BufferedReader(lzma.LZMAFile(stream))  # type: ignore[arg-type]
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
    return io.BufferedReader(reader)  # type: ignore[arg-type]


def decode_lines(chunks: Iterable[bytes], stats: InputStats) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each physical line, without its line ending.

    Lines that are not UTF-8 (a LATIN1 database's data) are read as Latin-1 and counted in
    ``stats.recoded``. NUL bytes, which PostgreSQL never writes, are removed. A compressed input
    that ends early stops the iteration and sets ``stats.error`` instead of raising.
    """
    number = 0
    iterator = iter(chunks)
    while True:
        try:
            raw = next(iterator)
        except StopIteration:
            return
        except DECOMPRESSION_ERRORS as exc:
            stats.error = f"input ends early or is corrupt after line {number}: {exc}"
            return
        number += 1
        stats.lines = number
        if b"\x00" in raw:
            raw = raw.replace(b"\x00", b"")
            if not raw.strip():
                stats.skip(number, "NUL bytes")
                continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
            stats.recoded += 1
        if text.endswith("\n"):
            text = text[:-2] if text.endswith("\r\n") else text[:-1]
        elif text.endswith("\r"):
            text = text[:-1]
        yield number, text
