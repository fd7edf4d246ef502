"""The one framer (logdiag.source.framing.blocks): a stream in blocks of whole lines, its big
pieces not copied, or of whole records; and the fast path's tests over blocks cut anywhere."""

from __future__ import annotations

import dataclasses
import itertools
import random
from pathlib import Path

import pytest

from logdiag.fastpath.scan import LineClassifier, lines_with, stream_blocks
from logdiag.formats import LogFormat, csvlog, format_of
from logdiag.formats.prefix import LinePrefix
from logdiag.source.framing import TICK, Block, Tick, blocks
from logdiag.source.stats import InputStats
from tests.scenarios import RICH_PREFIX

SAMPLES = Path(__file__).parent.parent / "sample_logs"  # written by a real server
SAMPLE = SAMPLES / "postgresql.log"


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


@pytest.mark.parametrize("seed", range(3))
def test_every_line_is_handed_out_once_and_big_pieces_are_not_copied(seed):
    data = SAMPLE.read_bytes()
    chance = random.Random(seed)
    for _ in range(300):
        size = chance.choice((1, 64, 300, 2000))
        pieces = _cut(data, sorted(chance.sample(range(1, len(data)), chance.randint(0, 12))))
        blocks = list(stream_blocks(pieces, size))
        handed = [block.head + block.data[block.start : block.end] for block in blocks]
        assert b"".join(handed) == data, (size, pieces)
        for block in blocks:
            assert data[block.offset : block.offset + len(block.data)] == block.data
            assert data[block.head_offset : block.offset + block.start] == block.head
            assert block.size == len(handed[blocks.index(block)])
            begins = block.head_offset
            assert begins == 0 or data[begins - 1 : begins] == b"\n"  # whole lines only
            assert block.data[: block.end].endswith(b"\n") or block.offset + block.end == len(data)
        big = [piece for piece in pieces if len(piece) >= size and b"\n" in piece]
        assert all(any(block.data is piece for block in blocks) for piece in big)
        found = [line for block in blocks for line in lines_with(block, b"ERROR:")]
        assert found == list(lines_with(Block(0, data, len(data)), b"ERROR:"))
        assert found


@pytest.mark.parametrize("seed", range(3))
def test_csvlog_blocks_hold_whole_records(seed):
    """With csvlog's record rule, every block is whole records as the reader splits them (a
    quoted newline never ends one), and the blocks are the input."""
    data = (SAMPLES / "postgresql.csv").read_bytes()
    lines = [(number, line) for number, line in enumerate(data.decode().split("\n")[:-1], start=1)]
    firsts = {first for first, _ in csvlog.split_records(lines, InputStats(file="log"))}
    assert len(firsts) < len(lines)  # records of several lines
    chance = random.Random(seed)
    for _ in range(200):
        size = chance.choice((1, 100, 700, 3000))
        pieces = _cut(data, sorted(chance.sample(range(1, len(data)), chance.randint(0, 12))))
        cut = list(blocks(pieces, size, record_end=csvlog.record_end))
        assert b"".join(block.data for block in cut) == data
        for block in cut:
            assert (block.start, block.head, block.end) == (0, b"", len(block.data))
            assert data.count(b"\n", 0, block.offset) + 1 in firsts  # each block starts a record


def test_ticks_pass_after_the_whole_lines_before_them():
    """Live input: at a TICK the whole lines so far go out, then the TICK; a line without its
    end waits for it."""
    pieces: list[bytes | Tick] = [b"one\ntw", TICK, b"o\nthree", TICK, TICK, b"\n"]
    out = [item if isinstance(item, Tick) else item.head + item.data[item.start : item.end]
           for item in blocks(pieces, 1 << 20, latency=60.0)]
    assert out == [b"one\n", TICK, b"two\n", TICK, TICK, b"three\n"]


def _classified(fmt: LogFormat, blocks: list[Block]):
    import polars as pl

    stats = InputStats(file="log")
    prefilter = format_of(fmt).prefilter(LinePrefix(RICH_PREFIX) if fmt is LogFormat.STDERR else None)
    assert prefilter is not None
    classifier = LineClassifier(prefilter, stats)
    frame = pl.concat([classifier.classify(block) for block in blocks])
    stats.lines = classifier.carry.line
    return frame, dataclasses.asdict(stats)


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", [LogFormat.CSVLOG, LogFormat.JSONLOG, LogFormat.STDERR])
@pytest.mark.parametrize("size", [256, 4096])
def test_a_character_cut_between_pieces_changes_nothing(scenario_logs, fmt, size):
    """Pieces cut inside a two-byte character, a line and a quoted csvlog field: every line
    classified and counted as in one block, nothing counted as recoded."""
    data = scenario_logs[fmt.value].read_bytes()
    cut = data.index("é".encode()) + 1
    assert data[cut - 1 : cut + 1].decode("utf-8") == "é"
    pieces = _cut(data, [cut // 2, cut, cut + 5000, cut + 5100])
    blocks = list(stream_blocks(pieces, size))
    assert any(block.start and block.data[:1] == b"\xa9" for block in blocks)  # the é's second byte
    whole, whole_counts = _classified(fmt, [Block(0, data, len(data))])
    split, split_counts = _classified(fmt, blocks)
    assert split.equals(whole)
    assert split_counts == whole_counts
    assert whole_counts["recoded"] == 0 and whole_counts["records"] > 100


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", [LogFormat.CSVLOG, LogFormat.JSONLOG, LogFormat.STDERR])
def test_a_latin1_line_cut_between_pieces_is_recoded_once(pg_cluster, fmt):
    """A LATIN1 database's statement (not UTF-8) cut between two big pieces: the piece that
    ends inside it and the one that goes on with it are read as they are, and the line is
    classified, recoded and counted once, as in one block."""
    import psycopg

    with pg_cluster(log_line_prefix=RICH_PREFIX, log_statement="all") as cluster:
        cluster.psql("CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C';")
        conninfo = cluster.conninfo.replace("dbname=postgres", "dbname=latin")
        with psycopg.connect(conninfo, client_encoding="LATIN1", autocommit=True) as conn:
            conn.execute("SELECT 'café crème' AS drink")
            for number in range(20):
                conn.execute(f"SELECT {number} AS padding")
        cluster.stop()
        data = cluster.log_file(fmt.value).read_bytes()
    cut = data.index(b"caf\xe9 cr\xe8me") + 5  # between the é and the è
    blocks = list(stream_blocks(_cut(data, [cut]), 256))
    assert any(block.partial and b"\xe9" in block.data[block.end :] for block in blocks)
    assert any(block.start and b"\xe8" in block.data[: block.start] for block in blocks)
    whole, whole_counts = _classified(fmt, [Block(0, data, len(data))])
    split, split_counts = _classified(fmt, blocks)
    assert split.equals(whole)
    assert split_counts == whole_counts
    assert whole_counts["recoded"] >= 1
    assert "café crème" in "".join(whole["text"])
