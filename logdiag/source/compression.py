"""Compressed inputs: told by their magic bytes, inflated in large pieces (ISA-L for gzip)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import types
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, cast

gzip_files: types.ModuleType
gzip_inflate: types.ModuleType
try:  # Intel's ISA-L inflates gzip about four times as fast as zlib: a .gz reads as fast as zcat
    from isal import igzip as gzip_files
    from isal import isal_zlib as gzip_inflate
except ImportError:  # no wheel for this machine: the standard library does the same, slower
    gzip_files = gzip
    gzip_inflate = zlib

CHUNK_SIZE = 1 << 16

MAGIC: dict[bytes, str] = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}
#: What a broken compressed stream raises while it is read.
DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, OSError, zlib.error, cast(type[BaseException], gzip_inflate.error), lzma.LZMAError,
)


#: The pieces a gzip file is inflated into: large, because inflating straight into one buffer
#: costs half the CPU of gathering the many small pieces a decompressor object hands out.
INFLATED_PIECE_BYTES = 16 * 1024 * 1024
#: Compressions that decompress several times as fast as the pre-filter reads: a file so compressed
#: can be read twice (ISA-L inflates a gigabyte of log in about half a second, zstd nearly as fast).
QUICK_TO_DECOMPRESS = frozenset({"gzip", "zstd"})


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return gzip_inflate.decompressobj(wbits=31)
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj()


def decompressed(stream: BinaryIO, kind: str) -> Iterator[bytes]:
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


def without_first(pieces: Iterable[bytes], count: int) -> Iterator[bytes]:
    """The bytes of ``pieces`` after the first ``count``."""
    for piece in pieces:
        if count < len(piece):
            yield piece[count:]
        count = max(count - len(piece), 0)
