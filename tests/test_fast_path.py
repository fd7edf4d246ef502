"""The vectorised pre-filter (logdiag.fastpath.scan) must change nothing but speed."""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import shutil

import pytest

from logdiag.diagnosis.sessions import SessionTracker
from logdiag.pipeline import Run
from logdiag.reader import LogReader
from tests.conftest import DEFAULT_SERVER
from tests.scenarios import RICH_PREFIX

pytestmark = pytest.mark.postgres


def _run(path, fast: bool, prefix: str | None = None):
    tracker = SessionTracker()
    reader = LogReader([str(path)], fast=fast, fast_min_bytes=0, log_line_prefix=prefix, on_forgotten=tracker.forget)
    analysis = Run(reader, tracker)
    incidents = [i.to_dict() for i in analysis.incidents()]
    errors = [_other_error(e) for e in analysis.other_errors] + [f.to_dict() for f in analysis.findings]
    stats = analysis.inputs[0]
    return incidents, errors, (stats.records, stats.skipped_total, stats.lines), stats.fast_path, stats.error


_SLOW: dict[tuple[str, str | None, int, int], tuple] = {}


def _slow(path, prefix: str | None = None):
    """``_run(path, fast=False, prefix=prefix)`` of a plain file, worked out once per file: the
    answer every fast-path variant here is compared with. Reading record by record depends on
    nothing the tests patch (block, batch and read sizes, the look-back), so it is the same each
    time; a copy, so that no test changes what the next one compares with."""
    stat = os.stat(path)
    key = (str(path), prefix, stat.st_size, stat.st_mtime_ns)
    if key not in _SLOW:
        _SLOW[key] = _run(path, fast=False, prefix=prefix)
    return copy.deepcopy(_SLOW[key])


def _other_error(error) -> dict:
    """An other error's JSON and what the export writes of it besides: its session, DETAIL, HINT,
    CONTEXT and STATEMENT (issue 29 §5)."""
    session = error.session.to_dict() if error.session else None
    return {**error.to_dict(), "session": session, "vxid": error.vxid, "xid": error.xid, "detail": error.detail,
            "hint": error.hint, "context": error.context, "statement": error.statement}


@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
def test_fast_and_streaming_paths_agree(scenario_logs, fmt):
    """Same incidents (every field), same other errors, same counts, on the 31 scenarios."""
    prefix = RICH_PREFIX if fmt == "stderr" else None
    slow = _slow(scenario_logs[fmt], prefix=prefix)
    fast = _run(scenario_logs[fmt], fast=True, prefix=prefix)
    assert fast[3] and not slow[3]
    assert len(slow[0]) > 25 and len(slow[1]) >= 3
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
    assert fast[2] == slow[2]


@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
@pytest.mark.parametrize("block_bytes", [300, 4096])
def test_block_boundaries_change_nothing(scenario_logs, fmt, block_bytes, monkeypatch):
    """Tiny blocks: records, quoted newlines and lines longer than a block cross block boundaries."""
    from logdiag.fastpath import scan

    prefix = RICH_PREFIX if fmt == "stderr" else None
    slow = _slow(scenario_logs[fmt], prefix=prefix)
    monkeypatch.setattr(scan, "CHUNK_BYTES", block_bytes)
    longest = max(len(line) for line in scenario_logs[fmt].read_bytes().splitlines())
    assert longest > 300  # lines longer than the smaller block
    fast = _run(scenario_logs[fmt], fast=True, prefix=prefix)
    assert fast[3]
    assert fast[:3] == slow[:3]


@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
def test_sessions_beyond_one_pattern_change_nothing(scenario_logs, fmt, monkeypatch):
    """More failing sessions than one regular expression may name (20,000 outgrew polars' regex
    size limit, issue 27): here two a pattern, so that the scenarios' sessions need many."""
    from logdiag.fastpath import scan

    prefix = RICH_PREFIX if fmt == "stderr" else None
    slow = _slow(scenario_logs[fmt], prefix=prefix)
    monkeypatch.setattr(scan, "SESSIONS_PER_PATTERN", 2)
    fast = _run(scenario_logs[fmt], fast=True, prefix=prefix)
    assert fast[3] and len(slow[0]) > 25
    assert fast[:3] == slow[:3]


@pytest.mark.parametrize("prefix", ["%m [%p] ", "%m [%p] %l "])
def test_pid_keyed_stderr(pg_servers, prefix, tmp_path, monkeypatch):
    """With the default prefix (no %c, no %v), sessions are kept by pid: still the same answers,
    from the file and from compressed files whose window is too short (with %l the window tells
    lost history by session line numbers, without it by the pids of the lines it drops; a .gz
    without %l is read twice). The scenarios' run with that prefix is the session's (with
    "%m [%p] " test_analyze_scenarios reads it too)."""
    log = pg_servers.scenario_logs(DEFAULT_SERVER, log_line_prefix=prefix, log_statement="all")["stderr"]
    slow, fast = _slow(log, prefix=prefix), _run(log, fast=True, prefix=prefix)
    assert fast[3] and len(slow[0]) > 25
    assert fast[:3] == slow[:3]
    for lookback, source in itertools.product((1, 8192), ("gzip", "xz")):
        _check_short_lookback(log, "stderr", source, lookback, prefix, tmp_path, monkeypatch)


def test_crlf_and_multiline_records_keep_their_line_numbers(scenario_logs, tmp_path, monkeypatch):
    """CRLF line endings and quoted newlines: the kept records keep their exact physical lines,
    read from the file and from standard input (whose classifier splits the lines itself)."""
    import io
    import sys
    import types

    log = tmp_path / "postgresql.csv"
    log.write_bytes(scenario_logs["csvlog"].read_bytes().replace(b"\n", b"\r\n"))
    slow, fast = _run(log, fast=False), _run(log, fast=True)
    assert fast[:3] == slow[:3]
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(log.read_bytes())))
    tracker = SessionTracker()
    reader = LogReader(["-"], fast=True, quiet=1.0, on_forgotten=tracker.forget)
    piped = _renamed([i.to_dict() for i in Run(reader, tracker).incidents()], "-", log)
    stats = reader.inputs[0]
    assert stats.fast_path
    assert piped == slow[0]
    assert (stats.records, stats.skipped_total, stats.lines) == slow[2]


def test_compressed_input_goes_through_the_fast_path(scenario_logs, tmp_path):
    """A .gz is decompressed once and pre-filtered: same answers, sources naming the .gz."""
    import gzip

    packed = tmp_path / "postgresql.csv.gz"
    packed.write_bytes(gzip.compress(scenario_logs["csvlog"].read_bytes()))
    slow, fast = _slow(scenario_logs["csvlog"]), _run(packed, fast=True)
    assert fast[3]
    assert fast[2] == slow[2]
    rename = str(scenario_logs["csvlog"])
    assert json.loads(json.dumps(fast[0]).replace(str(packed), rename)) == slow[0]


def test_small_inputs_are_read_as_they_are(scenario_logs, tmp_path):
    """Under fast_min_bytes (decompressed) a file, plain or compressed, skips the pre-filter (and
    the import of polars); from it on, the pre-filter reads it. Same records either way."""
    import gzip

    plain = scenario_logs["csvlog"]
    packed = tmp_path / "postgresql.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    size = plain.stat().st_size
    for path in (plain, packed):
        for minimum, pre_filtered in ((size + 1, False), (size, True)):
            reader = LogReader([str(path)], fast=True, fast_min_bytes=minimum)
            records = sum(1 for _ in reader)
            assert reader.inputs[0].fast_path is pre_filtered, (path.name, minimum)
            assert reader.inputs[0].records == _slow(plain)[2][0]
            assert records > 0


def test_bad_line_policies_read_every_line(scenario_logs, tmp_path):
    """--on-bad-line fail must stop at a bad line even in a file big enough for the pre-filter."""
    from logdiag.errors import BadLineError
    from logdiag.source.stats import OnBadLine

    log = tmp_path / "postgresql.csv"
    log.write_bytes(scenario_logs["csvlog"].read_bytes() + b"not a csvlog line\n")
    reader = LogReader([str(log)], fast=True, fast_min_bytes=0, on_bad_line=OnBadLine.FAIL)
    with pytest.raises(BadLineError, match="not a csvlog record"):
        list(reader)


def test_latin1_and_nul_bytes(pg_cluster, tmp_path):
    """A LATIN1 database's statements and a run of NUL bytes: decoded and counted as the readers do."""
    import psycopg

    with pg_cluster(log_line_prefix=RICH_PREFIX, log_statement="all") as cluster:
        cluster.psql("CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C';")
        conninfo = cluster.conninfo.replace("dbname=postgres", "dbname=latin")
        with psycopg.connect(conninfo, client_encoding="LATIN1", autocommit=True) as conn:
            conn.execute("CREATE TABLE parent (name text PRIMARY KEY)")
            conn.execute(
                "CREATE TABLE child (id int, parent_name text REFERENCES parent DEFERRABLE INITIALLY DEFERRED)"
            )
            conn.execute("BEGIN")
            conn.execute("INSERT INTO child VALUES (1, 'café')")
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.execute("COMMIT")
        cluster.stop()
        logs = {fmt: cluster.log_file(fmt) for fmt in ("csvlog", "jsonlog", "stderr")}
        for (fmt, source), nul_bytes in itertools.product(logs.items(), (b"\x00" * 4096, None)):
            lines = source.read_bytes().split(b"\n")
            log = tmp_path / source.name
            log.write_bytes(b"\n".join([*lines[:5], *([nul_bytes] if nul_bytes else []), *lines[5:]]))
            prefix = RICH_PREFIX if fmt == "stderr" else None
            slow, fast = _run(log, fast=False, prefix=prefix), _run(log, fast=True, prefix=prefix)
            assert fast[3], fmt
            assert [i["key"] for i in slow[0]] == [{"parent_name": "café"}], fmt
            assert fast[:3] == slow[:3], fmt


@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
def test_a_block_that_ends_inside_a_character(scenario_logs, fmt, monkeypatch):
    """The first block read ends between the two bytes of an é (UTF-8): the same as the readers."""
    from logdiag.fastpath import scan

    prefix = RICH_PREFIX if fmt == "stderr" else None
    slow = _slow(scenario_logs[fmt], prefix=prefix)
    data = scenario_logs[fmt].read_bytes()
    monkeypatch.setattr(scan, "CHUNK_BYTES", data.index("é".encode()) + 1)
    fast = _run(scenario_logs[fmt], fast=True, prefix=prefix)
    assert fast[3]
    assert fast[:3] == slow[:3]


def test_a_line_that_names_a_kept_session_is_not_one_of_its_lines(pg_cluster):
    """The cheap test for a kept session (its id anywhere in the line) is confirmed by the exact
    one: another session's statement that quotes the failing session's id is not handed on."""
    import psycopg

    from logdiag.fastpath import scan
    from logdiag.formats import LogFormat, format_of
    from logdiag.formats.prefix import LinePrefix
    from logdiag.source.stats import InputStats

    with pg_cluster(log_line_prefix=RICH_PREFIX, log_statement="all") as cluster:
        with psycopg.connect(cluster.conninfo, autocommit=True) as conn:
            conn.execute("CREATE TABLE parent (id int PRIMARY KEY)")
            conn.execute("CREATE TABLE child (parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED)")
            session_id = conn.execute(
                "SELECT to_hex(trunc(extract(epoch FROM backend_start))::bigint) || '.' || to_hex(pid)"
                " FROM pg_stat_activity WHERE pid = pg_backend_pid()"
            ).fetchone()[0]
            conn.execute("BEGIN")
            conn.execute("INSERT INTO child VALUES (42)")
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.execute("COMMIT")
        with psycopg.connect(cluster.conninfo, autocommit=True) as other:
            other.execute(f"SELECT 'names,{session_id},it' AS mention")
        cluster.stop()
        for fmt in (LogFormat.CSVLOG, LogFormat.JSONLOG, LogFormat.STDERR):
            log = str(cluster.log_file(fmt.value))
            prefilter = format_of(fmt).prefilter(LinePrefix(RICH_PREFIX) if fmt is LogFormat.STDERR else None)
            assert prefilter is not None
            selection = scan.select(scan.blocks(log), prefilter)
            assert selection.sessions == {session_id}, fmt
            kept = [text for _, text in scan.SelectionFilter(prefilter, selection, InputStats(file=log)).lines(scan.blocks(log))]
            assert any("INSERT INTO child" in text for text in kept), fmt
            assert not any("AS mention" in text for text in kept), fmt


# Statement lines that look like the end of a csvlog record, or like a whole one, as they stand in
# the statement (the server doubles their quotes in the log).
_LOOKALIKES = (
    'first line ,"client backend",,0\n'
    '2026-01-01 00:00:00.000 UTC,"postgres","postgres",1,"[local]",1.1,1,"SELECT",'
    '2026-01-01 00:00:00 UTC,3/1,0,LOG,00000,"x",,,,,,,,,"psql","client backend",,0\n'
    ',"client backend"\n'
    'last line'
)


_CULPRIT = f"INSERT INTO child VALUES (42, '{_LOOKALIKES}')"


@pytest.fixture(scope="module")
def lookalike_log(pg_cluster, tmp_path_factory):
    """A csvlog whose statements look like csvlog lines, and whose multi-line fields open with
    ',5,0' and the like, with a commit-time failure of a multi-line culprit (:data:`_CULPRIT`):
    written once, read by each block size."""
    import psycopg

    with pg_cluster(log_statement="all") as cluster:
        with psycopg.connect(cluster.conninfo, autocommit=True) as conn:
            conn.execute("CREATE TABLE parent (id int PRIMARY KEY)")
            conn.execute("CREATE TABLE child (parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED, note text)")
            conn.execute(f"SELECT '{_LOOKALIKES}' AS lookalike")
            conn.execute("BEGIN")
            conn.execute(_CULPRIT)
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.execute("COMMIT")
            # Syntax errors: the statement is the ERROR's query field, which opens its line's last
            # quoted field just before what follows.
            for statement in (',5,0\nSELECT 1', '",5,0\nSELECT 1', 'SELECT 1 ",\n"client backend",,0'):
                with pytest.raises(psycopg.errors.SyntaxError):
                    conn.execute(statement)
            # A message that ends with a comma, then a detail that opens with ',5,0'.
            with pytest.raises(psycopg.errors.RaiseException):
                conn.execute("DO $$ BEGIN RAISE EXCEPTION 'ends with a comma,' USING DETAIL = E',5,0\\nmore'; END $$")
        cluster.stop()
        log = tmp_path_factory.mktemp("lookalikes") / "postgresql.csv"
        shutil.copyfile(cluster.log_file("csvlog"), log)
    return log


@pytest.mark.parametrize("block_bytes", [300, 4096, None])
def test_record_starts_are_those_of_the_quote_count(lookalike_log, block_bytes):
    """csvlog lines that end like a record are not counted for quotes: on a log whose statements
    look like csvlog lines (and whose multi-line fields open with ',5,0' and the like), the
    classifier finds exactly the record starts that counting every quote finds, and the
    multi-line culprit of a commit-time failure is reported whole."""
    import polars as pl

    from logdiag.fastpath import scan
    from logdiag.formats.csvlog import CSVLOG
    from logdiag.source.stats import InputStats

    log = lookalike_log
    data = log.read_bytes()
    counted, inside = [], False
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):
        if not inside:
            counted.append(number)
        inside ^= line.count(b'"') % 2 == 1
    assert data.count(b"\n") - len(counted) >= 3 + 3 + 3 + 1  # every statement's newlines, once at least

    classifier = scan.LineClassifier(CSVLOG.prefilter(None), InputStats(file=str(log)))
    found = []
    for block in scan.blocks(str(log), block_bytes):
        frame = classifier.classify(block)
        found += frame.filter(pl.col("line") == pl.col("start"))["line"].to_list()
    assert found == counted

    slow, fast = _slow(log), _run(log, fast=True)
    assert fast[:3] == slow[:3]
    [incident] = fast[0]
    assert incident["culprits"][0]["statement"] == _CULPRIT


_PACKED: dict[tuple[str, int, int, str], bytes] = {}


def _packed(log, tmp_path, kind: str = "gzip"):
    """``log`` compressed into ``tmp_path``; each log compressed once (xz takes about a second)."""
    import gzip
    import lzma

    compressor, suffix = {"gzip": (gzip, ".gz"), "xz": (lzma, ".xz")}[kind]
    stat = log.stat()
    key = (str(log), stat.st_size, stat.st_mtime_ns, kind)
    if key not in _PACKED:
        _PACKED[key] = compressor.compress(log.read_bytes())
    packed = tmp_path / (log.name + suffix)
    packed.write_bytes(_PACKED[key])
    return packed


def _renamed(incidents, name, original) -> list:
    """The incidents with the input's name replaced by the original file's."""
    return json.loads(json.dumps(incidents).replace(json.dumps(str(name)), json.dumps(str(original))))


@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
def test_streams_go_through_the_lookback(scenario_logs, fmt, tmp_path, monkeypatch):
    """A stream (here a .gz, read once) in batches of 4 kB: held lines come back when their
    session fails, and the answers are those of the streaming path."""
    from logdiag.fastpath import lookback, scan
    from logdiag.source import compression

    monkeypatch.setattr(lookback, "BATCH_BYTES", 4096)
    monkeypatch.setattr(scan, "CHUNK_BYTES", 4096)  # compressed files are read in blocks of this size
    monkeypatch.setattr(compression, "CHUNK_SIZE", 256)  # of compressed input: pieces of a few kB
    monkeypatch.setattr(compression, "INFLATED_PIECE_BYTES", 4096)
    prefix = RICH_PREFIX if fmt == "stderr" else None
    packed = _packed(scenario_logs[fmt], tmp_path)
    slow = _slow(scenario_logs[fmt], prefix=prefix)
    fast = _run(packed, fast=True, prefix=prefix)
    assert fast[3]
    assert fast[2] == slow[2]
    assert _renamed(fast[1], packed, scenario_logs[fmt]) == slow[1]
    assert _renamed(fast[0], packed, scenario_logs[fmt]) == slow[0]


def _first_offsets(log, session: bytes) -> tuple[dict[str, int], list[int]]:
    """From the raw log: the byte offset of each session's first line (``session`` captures its
    id or pid), and of every line."""
    first: dict[str, int] = {}
    starts, offset = [], 0
    for line in log.read_bytes().splitlines(keepends=True):
        starts.append(offset)
        found = re.search(session, line)
        if found:
            first.setdefault(found[1].decode(), offset)
        offset += len(line)
    return first, starts


_SESSION = {"csvlog": rb",([0-9a-f]+\.[0-9a-f]+),\d", "jsonlog": rb'"session_id":"([^"]+)"', "stderr": rb" c=(\S+) "}


@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
@pytest.mark.parametrize("source", ["gzip", "xz", "stdin"])
@pytest.mark.parametrize("lookback", [1, 8192])
def test_a_short_lookback_says_what_it_dropped(scenario_logs, fmt, source, lookback, tmp_path, monkeypatch):
    """A look-back shorter than the sessions (compressed files: the window; stdin: the held lines).
    A gzip stderr log without %l is read twice instead: nothing is dropped."""
    prefix = RICH_PREFIX if fmt == "stderr" else None
    _check_short_lookback(scenario_logs[fmt], fmt, source, lookback, prefix, tmp_path, monkeypatch)


def _check_short_lookback(log, fmt, source, lookback, prefix, tmp_path, monkeypatch) -> None:
    """Each incident is the full answer or says that the session's earlier records were dropped,
    and it may say so only if the session's first line is further back than the look-back; a
    gzip stderr log without %l (read twice, not through the window) gives every full answer."""
    import io
    import sys
    import types

    from logdiag.fastpath import lookback as lookback_module
    from logdiag.fastpath import scan
    from logdiag.source import compression, live

    monkeypatch.setattr(lookback_module, "BATCH_BYTES", 256)
    monkeypatch.setattr(scan, "CHUNK_BYTES", 256)
    monkeypatch.setattr(compression, "CHUNK_SIZE", 32)
    monkeypatch.setattr(compression, "INFLATED_PIECE_BYTES", 256)
    monkeypatch.setattr(live, "CHUNK", 32)
    slow = _slow(log, prefix=prefix)
    if source != "stdin":
        name = str(_packed(log, tmp_path, source))
    else:
        name = "-"
        monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(log.read_bytes())))
    tracker = SessionTracker()
    reader = LogReader([name], fast=True, fast_min_bytes=0, lookback_bytes=lookback, log_line_prefix=prefix,
                       quiet=1.0 if name == "-" else None, on_forgotten=tracker.forget)
    analysis = Run(reader, tracker)
    short = _renamed([i.to_dict() for i in analysis.incidents()], name, log)
    assert reader.inputs[0].fast_path
    assert (reader.inputs[0].records, reader.inputs[0].lines) == (slow[2][0], slow[2][2])
    assert len(short) == len(slow[0])
    if source == "gzip" and fmt == "stderr" and "%l" not in prefix:
        assert short == slow[0]
        return
    by_pid = "%c" not in (prefix or "%c")
    first, starts = _first_offsets(log, rb"\[(\d+)\]" if by_pid else _SESSION[fmt])
    within = 0
    for incident, expected in zip(short, slow[0], strict=True):
        session = str(expected["session"]["pid"] if by_pid else expected["session"]["session_id"])
        raised = starts[expected["raised_by"]["source"]["line"] - 1]
        if "--lookback-mb" in json.dumps(incident):
            assert "earlier records" in incident["explanation"] or incident["culprits"], incident
            assert raised - first[session] >= lookback, (session, raised, first[session])
        else:
            assert incident == expected
        within += raised - first[session] < lookback
    if lookback == 1:
        assert any("--lookback-mb" in json.dumps(i) for i in short)
    else:
        assert within  # the test sees sessions on both sides of the look-back


def test_standard_input_goes_through_the_lookback(scenario_logs):
    """`cat log | logdiag analyze -` finds what `logdiag analyze log --no-fast-path` finds."""
    import subprocess
    import sys

    log = scenario_logs["csvlog"]
    command = [sys.executable, "-m", "logdiag", "analyze", "--format", "json", "-q"]
    piped = subprocess.run([*command, "-"], input=log.read_bytes(), capture_output=True, check=True)
    whole = subprocess.run([*command, "--no-fast-path", str(log)], capture_output=True, check=True)
    from_pipe, from_file = json.loads(piped.stdout), json.loads(whole.stdout)
    assert len(from_file["incidents"]) > 25
    assert json.loads(json.dumps(from_pipe["incidents"]).replace('"-"', json.dumps(str(log)))) == from_file["incidents"]
    assert from_pipe["stats"]["records"] == from_file["stats"]["records"]


@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
@pytest.mark.parametrize("kept_sessions", [1_000, 1])
def test_standard_input_in_small_batches(scenario_logs, fmt, kept_sessions, monkeypatch):
    """Standard input (the compact, live variant) in 512-byte reads and 4 kB batches; with one
    kept session at a time, sessions that fail again are recalled again."""
    import io
    import sys
    import types

    from logdiag.fastpath import lookback
    from logdiag.source import live

    monkeypatch.setattr(live, "CHUNK", 512)
    monkeypatch.setattr(lookback, "BATCH_BYTES", 4096)
    monkeypatch.setattr(lookback, "MAX_KEPT_SESSIONS", kept_sessions)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(scenario_logs[fmt].read_bytes())))
    prefix = RICH_PREFIX if fmt == "stderr" else None
    tracker = SessionTracker()
    reader = LogReader(["-"], fast=True, quiet=1.0, log_line_prefix=prefix, on_forgotten=tracker.forget)
    analysis = Run(reader, tracker)
    piped = _renamed([i.to_dict() for i in analysis.incidents()], "-", scenario_logs[fmt])
    slow = _slow(scenario_logs[fmt], prefix=prefix)
    assert reader.inputs[0].fast_path
    assert (reader.inputs[0].records, reader.inputs[0].lines) == (slow[2][0], slow[2][2])
    assert piped == slow[0]


@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
def test_a_trickle_is_held_in_few_frames(scenario_logs, fmt, monkeypatch):
    """Standard input a few lines per batch, as from a quiet server: the held lines go into few
    frames, which a recall filters one by one (a frame per batch made tens of thousands of them,
    and seconds of recall; issue 24), and the answers are those of the streaming path."""
    import io
    import sys
    import types

    from logdiag.fastpath import lookback
    from logdiag.source import live

    monkeypatch.setattr(live, "CHUNK", 1024)
    monkeypatch.setattr(lookback, "BATCH_BYTES", 1)  # every piece is a batch
    monkeypatch.setattr(lookback, "HELD_FRAME_BYTES", 8 * 1024)
    frames, batches = [], []
    hold = lookback.LookbackFilter._hold

    def counted(self, frame):
        hold(self, frame)
        batches.append(frame.height)
        frames.append(len(self.held))

    monkeypatch.setattr(lookback.LookbackFilter, "_hold", counted)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(scenario_logs[fmt].read_bytes())))
    prefix = RICH_PREFIX if fmt == "stderr" else None
    tracker = SessionTracker()
    reader = LogReader(["-"], fast=True, quiet=1.0, log_line_prefix=prefix, on_forgotten=tracker.forget)
    piped = _renamed([i.to_dict() for i in Run(reader, tracker).incidents()], "-", scenario_logs[fmt])
    assert piped == _slow(scenario_logs[fmt], prefix=prefix)[0]
    # A frame's size counts each line's number and key too: twice the log's bytes is ample.
    bound = 2 * len(scenario_logs[fmt].read_bytes()) // (8 * 1024) + 1
    assert len(batches) > 2 * bound  # a frame per batch would go past it
    assert max(frames) <= bound


@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog", "stderr"])
def test_a_gzip_cut_inside_a_line_counts_as_the_readers_do(scenario_logs, fmt, tmp_path, monkeypatch):
    """The line a broken .gz cuts in two is not a line: the pre-filter counts what the readers
    count (records, lines, and where the input ends early), for a file and on standard input."""
    import io
    import sys
    import types

    prefix = RICH_PREFIX if fmt == "stderr" else None
    data = scenario_logs[fmt].read_bytes()
    middle = data.index(b"\n", len(data) // 2) + 40  # inside the line after it
    cut = tmp_path / (scenario_logs[fmt].name + ".gz")
    cut.write_bytes(_gzip_of_prefix(data, middle))
    slow, fast = _run(cut, fast=False, prefix=prefix), _run(cut, fast=True, prefix=prefix)
    assert fast[3] and not slow[3]
    assert fast[2] == slow[2]
    assert fast[4] == slow[4] and "ends early" in fast[4]
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(cut.read_bytes())))
    reader = LogReader(["-"], fast=True, log_line_prefix=prefix)
    list(reader)
    stats = reader.inputs[0]
    assert stats.fast_path
    assert ((stats.records, stats.skipped_total, stats.lines), stats.error) == (slow[2], slow[4])


def _gzip_of_prefix(data: bytes, length: int) -> bytes:
    """A gzip stream that holds ``data[:length]`` and then breaks off (no end, no trailer)."""
    import zlib

    packer = zlib.compressobj(wbits=31)
    return packer.compress(data[:length]) + packer.flush(zlib.Z_SYNC_FLUSH)


@pytest.mark.parametrize("fmt", ["csvlog", "stderr"])
def test_a_truncated_gzip_through_the_lookback(scenario_logs, fmt, tmp_path, monkeypatch):
    """A .gz cut short: what came before the cut is read and counted, and the input says it ended early."""
    import gzip

    from logdiag.fastpath import scan
    from logdiag.source import compression

    monkeypatch.setattr(scan, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(compression, "CHUNK_SIZE", 256)
    monkeypatch.setattr(compression, "INFLATED_PIECE_BYTES", 4096)
    prefix = RICH_PREFIX if fmt == "stderr" else None
    packed = gzip.compress(scenario_logs[fmt].read_bytes())
    cut = tmp_path / (scenario_logs[fmt].name + ".gz")
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    slow = _slow(scenario_logs[fmt], prefix=prefix)
    tracker = SessionTracker()
    reader = LogReader([str(cut)], fast=True, fast_min_bytes=0, log_line_prefix=prefix, on_forgotten=tracker.forget)
    incidents = [i.to_dict() for i in Run(reader, tracker).incidents()]
    stats = reader.inputs[0]
    assert stats.fast_path
    assert stats.error is not None and "ends early" in stats.error
    assert 0 < stats.records < slow[2][0]
    assert 0 < len(incidents) < len(slow[0])
