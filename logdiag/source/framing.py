"""Bytes into lines: the one place a stream is cut into lines and sampled, with its event types.

A stream is an iterator of byte pieces (or lines) and events: :data:`TICK` ("nothing new for a
while", from live input) and :class:`FileSwitch` (``--follow`` moved to another file).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, TypeVar

from logdiag.source.compression import DECOMPRESSION_ERRORS
from logdiag.source.stats import InputStats


class Tick:
    """The type of :data:`TICK`, the one event live input sends down the pipeline in place of a line."""

    def __repr__(self) -> str:
        return "TICK"


#: "Nothing new for a while": passed down the reading pipeline in place of a line.
TICK: Final = Tick()
#: A stream's pieces: bytes, or bytes and TICKs (live input).
Piece = TypeVar("Piece", bytes, "bytes | Tick")


def split_lines(chunks: Iterable[bytes | Tick]) -> Iterator[bytes | Tick]:
    """Lines (with their ending) from chunks; TICKs pass through, a partial line waits for its end."""
    pending: list[bytes] = []
    for chunk in chunks:
        if chunk is TICK:
            yield TICK
            continue
        assert isinstance(chunk, bytes)
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            piece = chunk[start : end + 1]
            if pending:
                pending.append(piece)
                piece = b"".join(pending)
                pending = []
            yield piece
            start = end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
    if pending:
        yield b"".join(pending)


@dataclass(frozen=True, slots=True)
class FileSwitch:
    """Following moved on to another file (rotation): its name, for the records' source."""

    path: str


def decode_line(raw: bytes) -> tuple[str, bool]:
    """A line's text: UTF-8, else Latin-1 (a LATIN1 database's statements); and whether it was Latin-1."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("latin-1"), True


def decode_lines(chunks: Iterable[bytes | Tick], stats: InputStats) -> Iterator[tuple[int, str] | Tick]:
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
                stats.skip(number, "NUL bytes", foreign=True)
                continue
        text, recoded = decode_line(raw)
        stats.recoded += recoded
        if text.endswith("\n"):
            text = text[:-2] if text.endswith("\r\n") else text[:-1]
        elif text.endswith("\r"):
            text = text[:-1]
        yield number, text


def until_corrupt(pieces: Iterator[Piece], failure: list[BaseException], hold: bool = False) -> Iterator[Piece]:
    """The pieces up to a decompression error, which is put in ``failure`` instead of raised.

    With ``hold`` (compressed input, where an error can come), each piece waits for the next, so
    that the line the error cuts in two is left out, as the readers leave it out (their lines end
    at a newline or at the end of the input).
    """
    held: Piece | None = None
    try:
        for piece in pieces:
            if not hold:
                yield piece
                continue
            if held is not None:
                yield held
            held = piece
    except DECOMPRESSION_ERRORS as exc:
        failure.append(exc)
        if isinstance(held, bytes):
            held = held[: held.rfind(b"\n") + 1]
    if held:
        yield held


def sample_pieces(pieces: Iterator[bytes | Tick]) -> list[bytes | Tick]:
    """The first pieces of a stream: enough for SAMPLE_LINES lines, or all there is when it goes quiet."""
    sample: list[bytes | Tick] = []
    newlines = 0
    for piece in pieces:
        sample.append(piece)
        if isinstance(piece, Tick):
            if any(isinstance(p, bytes) and p.strip() for p in sample):
                break
            continue
        newlines += piece.count(b"\n")
        if newlines >= SAMPLE_LINES:
            break
    return sample


def all_if_under(pieces: Iterator[bytes | Tick], size: int) -> tuple[list[bytes | Tick], bool]:
    """The first pieces of a stream, until they make ``size`` bytes; and whether that is all."""
    head: list[bytes | Tick] = []
    total = 0
    for piece in pieces:
        head.append(piece)
        total += len(piece) if isinstance(piece, bytes) else 0
        if total >= size:
            return head, False
    return head, True


def sample_lines(lines: Iterator[tuple[int, str] | Tick]) -> list[tuple[int, str]]:
    """The first lines, for detection: up to SAMPLE_LINES, or fewer if live input goes quiet."""
    head: list[tuple[int, str]] = []
    for item in lines:
        if isinstance(item, Tick):
            if any(text.strip() for _, text in head):
                break
            continue
        head.append(item)
        if len(head) >= SAMPLE_LINES:
            break
    return head


def file_segments(stream: Iterator[bytes | Tick | FileSwitch]) -> Iterator[tuple[str, Iterator[bytes | Tick]]]:
    """Split a followed stream at file switches: (file name, its lines) for each file in turn."""
    switch = next(stream, None)
    while isinstance(switch, FileSwitch):
        following: list[FileSwitch] = []

        def lines(following: list[FileSwitch] = following) -> Iterator[bytes | Tick]:
            for item in stream:
                if isinstance(item, FileSwitch):
                    following.append(item)
                    return
                yield item

        segment = lines()
        yield switch.path, segment
        for _ in segment:  # whatever the reader left unread of this file
            pass
        switch = following[0] if following else None


def whole_lines(pending: list[bytes]) -> tuple[bytes, list[bytes], int]:
    """(the whole lines of the pending pieces, what is left of them, its size), copying once
    (not at all when they are one piece that ends a line)."""
    for index in range(len(pending) - 1, -1, -1):
        piece = pending[index]
        cut = piece.rfind(b"\n") + 1
        if cut:
            last = piece if cut == len(piece) else memoryview(piece)[:cut]
            left = ([piece[cut:]] if cut < len(piece) else []) + pending[index + 1 :]
            return b"".join([*pending[:index], last]), left, sum(map(len, left))
    return b"", pending, sum(map(len, pending))


SAMPLE_LINES = 200
