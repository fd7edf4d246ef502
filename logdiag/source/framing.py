"""Bytes into lines: the one place a stream is cut into lines, or blocks of whole lines or
records, and sampled, with its event types.

A stream is an iterator of byte pieces (or lines) and events: :data:`TICK` ("nothing new for a
while", from live input) and :class:`FileSwitch` (``--follow`` moved to another file).
:func:`blocks` is the one framer of blocks (the fast path's files, compressed files and live
input; the export's record frames); :func:`split_lines` hands on single lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final, TypeVar, overload

from logdiag.source.compression import DECOMPRESSION_ERRORS
from logdiag.source.stats import InputStats, LineCuts


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


def cut_long_lines(pieces: Iterable[Piece], cuts: LineCuts) -> Iterator[Piece]:
    """The pieces, with every line longer than ``cuts.limit`` bytes cut there: its first
    ``limit`` bytes and a newline go on, the rest is left out, and the cut is recorded.

    What comes after the framers (their pending line, a record's text) is then bounded, whatever
    the input: ``/dev/zero``, a 100 MB line. Pieces go on as they are, not copied, unless a cut
    falls in them; with a limit no smaller than the pieces, looking costs two searches a piece.

    >>> cuts = LineCuts(limit=4)
    >>> b"".join(cut_long_lines([b"ab\\nabcdefgh", b"ij\\nxy"], cuts)), sorted(cuts.starts)
    (b'ab\\nabcd\\nxy', [3])
    """
    limit = cuts.limit
    offset = 0  # of the piece in the stream
    line_start = 0  # of the current line in the stream
    dropping = False  # in the rest of a cut line
    for piece in pieces:
        if isinstance(piece, Tick):
            yield piece
            continue
        size, emit, index, cut = len(piece), 0, 0, False
        while index < size:
            if dropping:
                newline = piece.find(b"\n", index)
                if newline < 0:
                    emit = index = size
                    break
                dropping, emit, index = False, newline + 1, newline + 1
                line_start = offset + index
                continue
            allowed_end = line_start + limit - offset  # where the line's newline may be, at the latest
            newline = piece.rfind(b"\n", index, min(size, allowed_end + 1))
            if newline >= 0:  # the lines up to it are within the limit
                index = newline + 1
                line_start = offset + index
            elif allowed_end >= size:  # the line goes on in the next piece, within the limit so far
                break
            else:
                cuts.record(line_start)
                yield piece[emit:allowed_end] + b"\n"
                dropping, emit, index, cut = True, allowed_end, allowed_end, True
        offset += size
        if not emit and not cut:
            yield piece
        elif emit < size:
            yield piece[emit:]


def cut_long_readlines(stream: BinaryIO, cuts: LineCuts) -> Iterator[bytes]:
    """A buffered stream's lines (with their ending), every line longer than ``cuts.limit`` bytes
    cut there as :func:`cut_long_lines` does; never more than the limit in memory."""
    limit, offset = cuts.limit, 0
    while line := stream.readline(limit + 1):
        if len(line) <= limit or line.endswith(b"\n"):
            offset += len(line)
            yield line
            continue
        cuts.record(offset)
        yield line[:limit] + b"\n"
        offset += len(line)
        while (rest := stream.readline(1 << 20)) and not rest.endswith(b"\n"):
            offset += len(rest)
        offset += len(rest)


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


def sample_pieces(pieces: Iterator[bytes | Tick], seconds: float | None = None) -> list[bytes | Tick]:
    """The first pieces of a stream: enough for SAMPLE_LINES lines, or all there is when it goes
    quiet or (live input) ``seconds`` after its first line came."""
    sample: list[bytes | Tick] = []
    newlines = 0
    clock = _SampleClock(seconds)
    for piece in pieces:
        sample.append(piece)
        if isinstance(piece, Tick):
            if any(isinstance(p, bytes) and p.strip() for p in sample):
                break
            continue
        newlines += piece.count(b"\n")
        if newlines >= SAMPLE_LINES or clock.up(newlines > 0):
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


def sample_lines(lines: Iterator[tuple[int, str] | Tick], seconds: float | None = None) -> list[tuple[int, str]]:
    """The first lines, for detection: up to SAMPLE_LINES, or fewer if live input goes quiet or
    ``seconds`` have gone by since its first line came."""
    head: list[tuple[int, str]] = []
    clock = _SampleClock(seconds)
    for item in lines:
        if isinstance(item, Tick):
            if any(text.strip() for _, text in head):
                break
            continue
        head.append(item)
        if len(head) >= SAMPLE_LINES or clock.up(True):
            break
    return head


class _SampleClock:
    """How long live input's sample may take: a stream that writes a line every 0.2 s never goes
    quiet, and would make the first incident wait 40 s for SAMPLE_LINES lines (issue 24)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started: float | None = None

    def up(self, has_lines: bool) -> bool:
        """Whether the time is up, counted from the first call with lines."""
        if self.seconds is None or not has_lines:
            return False
        now = time.monotonic()
        if self.started is None:
            self.started = now
        return now - self.started >= self.seconds


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


#: ``record_end(data, start, end)``: where the last whole record of ``data[start:end]`` ends, a
#: record starting at ``start`` (0: none ends there).
RecordEnd = Callable[[bytes, int, int], int]


def line_end(data: bytes, start: int, end: int) -> int:
    """The :data:`RecordEnd` of lines: just after the last newline of ``data[start:end]``.

    >>> line_end(b"a\\nb\\nc", 0, 5)
    4
    """
    return data.rfind(b"\n", start, end) + 1


@dataclass(frozen=True, slots=True)
class Block:
    """A piece of the input read at once: it hands out the lines ``head`` and ``data[start:end]``.

    The bytes after ``end`` begin a line that the next block hands out (in its ``head``), and the
    bytes before ``start`` end the last line of ``head``: copying 16 MB to cut them off costs more.
    """

    offset: int  # of data[0] in the input
    data: bytes
    end: int
    start: int = 0  # 0, or just after the first line end
    head: bytes = b""  # whole lines, the last of which data[:start] ends (it starts in the pieces before)

    @property
    def partial(self) -> bool:
        return self.end < len(self.data)

    @property
    def size(self) -> int:
        """The bytes of the lines it hands out."""
        return len(self.head) + self.end - self.start

    @property
    def head_offset(self) -> int:
        """Where ``head`` starts in the input."""
        return self.offset + self.start - len(self.head)


@overload
def blocks(
    pieces: Iterable[bytes], size: int, *, record_end: RecordEnd | None = None, latency: float | None = None,
) -> Iterator[Block]: ...
@overload
def blocks(
    pieces: Iterable[bytes | Tick], size: int, *, record_end: RecordEnd | None = None, latency: float | None = None,
) -> Iterator[Block | Tick]: ...
def blocks(
    pieces: Iterable[bytes | Tick], size: int, *, record_end: RecordEnd | None = None, latency: float | None = None,
) -> Iterator[Block | Tick]:
    """A stream in blocks of about ``size`` bytes of whole lines, or of whole records.

    Small pieces are joined. Of lines (no ``record_end``), a piece of ``size`` bytes or more is
    a block as it is (its last line goes on with the next piece), with what the pieces before it
    leave (the end of a line, small pieces) as its head: a 16 MB piece is not copied. Of records,
    a block is ``data`` alone, whole records cut where ``record_end`` says, of about ``size``
    bytes (more when a record is longer): a record rule reads its records from their start, so
    the pieces are joined first (the export's polars readers need one buffer anyway).

    With a ``latency``, a block also goes out once that many seconds have passed since its first
    piece came (live input). At a TICK, the whole lines (or records) that wait go out, then the
    TICK. At the end of the input, what is left is a block, a line without its end included.

    Args:
        pieces: bytes cut anywhere (and TICKs).
        size: the bytes a block waits for.
        record_end: where whole records end (:data:`RecordEnd`); None: lines.
        latency: the seconds a piece waits at most for its block to fill.
    """
    offset = 0  # in the stream, of the pending bytes: they start a line (or a record)
    pending: list[bytes] = []
    pending_bytes = 0
    started = 0.0  # when the first pending piece came (with a latency)
    for piece in pieces:
        if isinstance(piece, Tick):
            if pending:
                batches, pending, pending_bytes = _whole(pending, None, record_end)
                for batch in batches:
                    yield Block(offset, batch, len(batch))
                    offset += len(batch)
                started = time.monotonic()
            yield piece
            continue
        if latency is not None and not pending:
            started = time.monotonic()
        first = piece.find(b"\n") + 1 if record_end is None and len(piece) >= size else 0
        if first:  # a big piece of lines: a block as it is
            head = b"".join([*pending, piece[:first]]) if pending else b""
            first = first if pending else 0
            end = piece.rfind(b"\n") + 1
            block = Block(offset + len(head) - first, piece, end, first, head)
            yield block
            offset = block.offset + end
            pending = [piece[end:]] if end < len(piece) else []
            pending_bytes = len(piece) - end
            started = time.monotonic()
            continue
        pending.append(piece)
        pending_bytes += len(piece)
        full = pending_bytes >= size
        if full or (latency is not None and time.monotonic() - started >= latency):
            batches, pending, pending_bytes = _whole(pending, size if full else None, record_end)
            for batch in batches:
                yield Block(offset, batch, len(batch))
                offset += len(batch)
            started = time.monotonic()
    if pending:
        batch = b"".join(pending)
        yield Block(offset, batch, len(batch))


def _whole(
    pending: list[bytes], size: int | None, record_end: RecordEnd | None,
) -> tuple[list[bytes], list[bytes], int]:
    """(the whole lines or records of the pending pieces, what is left of them, its size).

    Lines go in one batch, copied once (not at all when they are one piece that ends a line).
    Records go in batches of about ``size`` bytes, each cut at the last record end before
    ``size`` bytes (or after, when none is); ``size`` None: every whole record, in one batch.
    """
    if record_end is None:
        for index in range(len(pending) - 1, -1, -1):
            piece = pending[index]
            cut = piece.rfind(b"\n") + 1
            if cut:
                last = piece if cut == len(piece) else memoryview(piece)[:cut]
                left = ([piece[cut:]] if cut < len(piece) else []) + pending[index + 1 :]
                return [b"".join([*pending[:index], last])], left, sum(map(len, left))
        return [], pending, sum(map(len, pending))
    data = b"".join(pending)
    batches: list[bytes] = []
    start = 0
    while len(data) - start >= (size or 1):
        cut = record_end(data, start, len(data) if size is None else start + size)
        if not cut and size is not None:  # a record longer than a block
            cut = record_end(data, start, len(data))
        if not cut:
            break
        batches.append(data[start:cut])
        start = cut
        if size is None:
            break
    return batches, [data[start:]] if start < len(data) else [], len(data) - start


SAMPLE_LINES = 200
#: The UTF-8 byte-order mark a file may start with (no text: an editor's or a Windows tool's mark).
UTF8_BOM: Final = b"\xef\xbb\xbf"
