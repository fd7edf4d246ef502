"""Inputs: several files, globs, log directories in time order, compression, standard input."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import subprocess
import sys
import time
import types
from collections import Counter
from pathlib import Path

import pytest
import zstandard

from logdiag.errors import InputError
from logdiag.reader import LogReader

COMPRESSORS = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".zst": lambda data: zstandard.ZstdCompressor().compress(data),
}


def _messages(paths: list[str], **options: object) -> list[tuple[str, str | None]]:
    return [(r.severity.value, r.message) for r in LogReader(paths, **options)]  # type: ignore[arg-type]


def _inflatable(packed: bytes) -> bytes:
    """Every byte that zlib inflates from gzip members, member after member, up to a cut."""
    import zlib

    inflated, rest = b"", packed
    while rest:
        member = zlib.decompressobj(wbits=31)
        inflated += member.decompress(rest)
        if not member.eof:
            break
        rest = member.unused_data
    return inflated


@pytest.mark.postgres
class TestCompression:
    """Compressed logs read exactly like the plain file."""

    @pytest.mark.parametrize("suffix", COMPRESSORS)
    @pytest.mark.parametrize("fmt", ["stderr", "csvlog", "jsonlog"])
    def test_same_records_as_plain(self, server_logs, tmp_path, suffix, fmt):
        """gzip, bzip2, xz and zstd, detected by their magic bytes."""
        plain = server_logs[fmt]
        packed = tmp_path / (plain.name + suffix)
        packed.write_bytes(COMPRESSORS[suffix](plain.read_bytes()))
        assert _messages([str(packed)]) == _messages([str(plain)])

    @pytest.mark.parametrize("piece_bytes", [4096, 1 << 24])
    def test_a_cut_gzip_gives_every_byte_before_the_cut(self, server_logs, tmp_path, monkeypatch, piece_bytes):
        """A .gz of many members (the log gzipped and concatenated, some 4 MB) cut short: inflated
        in large pieces or small, every byte that can be inflated comes out, then the error."""
        from logdiag.source import compression, inputs

        monkeypatch.setattr(compression, "INFLATED_PIECE_BYTES", piece_bytes)
        data = server_logs["csvlog"].read_bytes()
        members = 4 * 1024 * 1024 // len(data) + 2
        member = gzip.compress(data)
        cut = (member * members)[: len(member) * (members * 5 // 6) + len(member) // 2]  # inside a member
        path = tmp_path / "cut.csv.gz"
        path.write_bytes(cut)
        expected = _inflatable(cut)
        assert 2 * 1024 * 1024 < len(expected) < len(data) * members
        opened = inputs.OpenInput(str(path))
        got = bytearray()
        with pytest.raises(inputs.DECOMPRESSION_ERRORS):
            for piece in opened.chunks():
                got += piece
        opened.close()
        assert bytes(got) == expected

    def test_standard_input_inflates_in_small_pieces(self, server_logs, tmp_path, monkeypatch):
        """A .gz on standard input, even redirected from a file, is inflated a small piece at a
        time: the look-back's batches, and so its memory, stay small."""
        from logdiag.source import compression, inputs

        monkeypatch.setattr(compression, "INFLATED_PIECE_BYTES", 4 * 1024 * 1024)
        log = server_logs["csvlog"].read_bytes()
        copies = 8 * 1024 * 1024 // len(log) + 1
        data = log * copies
        path = tmp_path / "stdin.csv.gz"
        path.write_bytes(gzip.compress(log) * copies)  # members: each inflates on its own
        with path.open("rb") as redirected:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(redirected))
            opened = inputs.OpenInput("-")
            pieces = list(opened.chunks())
        assert b"".join(pieces) == data
        assert max(map(len, pieces)) < compression.INFLATED_PIECE_BYTES


@pytest.mark.postgres
class TestPaths:
    """Several files, globs and directories."""

    def test_several_files_in_the_order_given(self, server_logs):
        """Records of each file come in turn, each with its own source."""
        reader = LogReader([str(server_logs["csvlog"]), str(server_logs["jsonlog"])])
        records = list(reader)
        assert [s.format for s in reader.inputs] == ["csvlog", "jsonlog"]
        half = len(records) // 2
        assert {r.source.file for r in records[:half]} == {str(server_logs["csvlog"])}
        assert {r.source.file for r in records[half:]} == {str(server_logs["jsonlog"])}
        # The same records, though not always in the same order: the server writes each
        # destination by a separate call, so two processes' lines may swap between the files.
        assert Counter(r.message for r in records[:half]) == Counter(r.message for r in records[half:])

    def test_glob(self, server_logs):
        """A glob expands to the files it matches."""
        pattern = str(server_logs["csvlog"].parent / "*.csv")
        assert _messages([pattern]) == _messages([str(server_logs["csvlog"])])

    def test_glob_without_match_is_an_error(self, tmp_path):
        """A glob that matches nothing says so."""
        with pytest.raises(InputError, match="no file matches"):
            LogReader([str(tmp_path / "*.csv")])

    def test_missing_file_is_an_error(self, tmp_path):
        """A missing path is a one-line error naming it."""
        with pytest.raises(InputError, match=r"no such file or directory: .*nope\.csv"):
            LogReader([str(tmp_path / "nope.csv")])


@pytest.mark.postgres
def test_rotated_directory_in_content_order(pg_cluster, tmp_path):
    """A log directory with rotated files is read oldest first by content, csvlog preferred over the rest."""
    with pg_cluster(log_filename="postgresql-%Y%m%d_%H%M%S.log") as cluster:
        for n in range(3):
            cluster.psql(f"SELECT 'file {n}';")
            time.sleep(1.1)  # log_filename has one-second resolution
            cluster.psql("SELECT pg_rotate_logfile();")
        cluster.stop()
        logs = tmp_path / "logs"
        shutil.copytree(cluster.log_dir, logs)
    # Make the times disagree with the content (copies lose their times): the order comes from
    # the first record of each file.
    csvs = sorted(logs.glob("*.csv"))
    for age, path in enumerate(csvs):
        os.utime(path, (1_000_000 - age * 10, 1_000_000 - age * 10))
    reader = LogReader([str(logs)])
    messages = [r.message for r in reader if r.message and r.message.startswith("statement: SELECT 'file")]
    assert {s.format for s in reader.inputs} == {"csvlog"}
    assert messages == [f"statement: SELECT 'file {n}';" for n in (0, 1, 2)]


@pytest.mark.postgres
def test_stdin(server_logs):
    """`-` reads standard input, compressed or not, with the format detected."""
    data = gzip.compress(server_logs["jsonlog"].read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "logdiag", "records", "-", "--format", "jsonl"],
        input=data, capture_output=True, check=True,
    )
    assert len(result.stdout.splitlines()) == len(_messages([str(server_logs["jsonlog"])]))
    assert b"-: jsonlog:" in result.stderr


def test_empty_file(tmp_path: Path) -> None:
    """An empty file gives no record and no error."""
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    reader = LogReader([str(empty)])
    assert list(reader) == []
    assert reader.inputs[0].format is None


@pytest.mark.postgres
@pytest.mark.parametrize("what", ["nothing", "no log", "three lines"])
def test_a_short_pipe_ends_without_a_traceback(server_logs, what):
    """Standard input that ends at once: polars, imported on a thread while the first lines come,
    must not be cut short by the interpreter's exit (it printed `can't register atexit after
    shutdown` with a traceback, every time)."""
    data = {
        "nothing": b"",
        "no log": b"hello\n",
        "three lines": b"".join(server_logs["stderr"].read_bytes().splitlines(keepends=True)[:3]),
    }[what]
    for _ in range(3):
        result = subprocess.run(
            [sys.executable, "-m", "logdiag", "analyze", "-"], input=data, capture_output=True, check=False,
        )
        assert b"Traceback" not in result.stderr and b"Exception in thread" not in result.stderr, result.stderr
        assert result.returncode == (2 if what == "no log" else 0), result.stderr


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", ["stderr", "csvlog", "jsonlog"])
def test_a_byte_order_mark_costs_no_record(server_logs, tmp_path, monkeypatch, fmt):
    """A real log saved with a UTF-8 byte-order mark in front (a Windows editor, some shippers):
    the same records as without it, as a file, pre-filtered, gzipped and on standard input (the
    first record used to be skipped: issue 27)."""
    clean = server_logs[fmt]
    expected = _messages([str(clean)])
    marked = tmp_path / clean.name
    marked.write_bytes(b"\xef\xbb\xbf" + clean.read_bytes())
    packed = tmp_path / (clean.name + ".gz")
    packed.write_bytes(gzip.compress(marked.read_bytes()))
    assert _messages([str(marked)]) == expected
    assert _messages([str(marked)], fast_min_bytes=0) == expected
    assert _messages([str(packed)]) == expected
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(marked.read_bytes())))
    assert _messages(["-"], quiet=1.0) == expected
