"""log_line_prefix: random prefixes built from every escape, checked against a real server's lines."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from logdiag.formats.infer import find_prefix
from logdiag.formats.prefix import ESCAPE_PATTERNS, KNOWN_PREFIXES, LinePrefix
from logdiag.reader import LogReader
from logdiag.records import LogRecord

FREE_TEXT = {"a", "u", "d", "i", "b", "h", "r", "L"}  # values that may hold spaces or punctuation
SAFE_AFTER_TEXT = ["|", "@", ",", ";", "#", "]", "%%"]
ANY_SEPARATOR = [*SAFE_AFTER_TEXT, " ", ":", "-", "/", "=", "[", " ["]
#: Record fields each escape carries, compared with csvlog's value for the same record.
COMPARED = {
    "p": "pid", "c": "session_id", "v": "vxid", "x": "xid", "u": "user", "d": "database",
    "a": "application", "b": "backend_type", "e": "sqlstate", "i": "command_tag", "Q": "query_id",
}


@st.composite
def prefixes(draw: st.DrawFn) -> str:
    """A prefix of 1-7 escapes, each followed by a separator its values cannot contain."""
    parts = []
    letters = draw(st.lists(st.sampled_from(sorted(ESCAPE_PATTERNS)), min_size=1, max_size=7))
    q_at = draw(st.integers(0, len(letters)))
    for position, letter in enumerate(letters):
        if position == q_at and position > 0:
            parts.append("%q")
        padding = draw(st.sampled_from(["", "", "", "-12", "9"]))
        parts.append(f"%{padding}{letter}")
        if letter in FREE_TEXT or padding:
            parts.append(draw(st.sampled_from(SAFE_AFTER_TEXT)))
        else:
            parts.append(draw(st.sampled_from(ANY_SEPARATOR)))
    parts.append(draw(st.sampled_from([" ", ": ", "| "])))
    return "".join(parts)


#: Escapes that can give each field.
FIELD_ESCAPES = {
    "timestamp": {"m", "t", "s", "n"}, "pid": {"p"}, "session_id": {"c"}, "session_line": {"l"}, "vxid": {"v"},
    "xid": {"x", "Q"}, "user": {"u", "d", "a"}, "database": {"u", "d", "a"}, "application": {"u", "d", "a"},
    "client": {"h", "r"}, "backend_type": {"b"}, "sqlstate": {"e"}, "command_tag": {"i"}, "query_id": {"x", "Q"},
}
#: A user and a database of their own (then ``connection authorized`` lines tell %u from %d), and
#: application names with spaces and parentheses; none holds a character of SAFE_AFTER_TEXT, which
#: would make the given prefix itself ambiguous (tests/test_prefix_inference.py has names that do,
#: with real-world prefixes).
SETUP = "CREATE ROLE app_user LOGIN SUPERUSER; CREATE DATABASE shop OWNER app_user;"
APPLICATIONS = ("billing worker (eu-1)", "shipping-sync v2 (batch)", "psql")
SCRIPT = """
SELECT 1;
BEGIN;
CREATE TEMP TABLE t (id int PRIMARY KEY);
INSERT INTO t VALUES (1);
INSERT INTO t VALUES (1);
ROLLBACK;
SELECT 1/0;
"""


@pytest.mark.postgres
# No shrinking: each try starts a server; the failing prefix is reported as it was drawn.
@settings(
    max_examples=int(__import__("os").environ.get("PREFIX_EXAMPLES", "12")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow], phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
@given(prefix=prefixes())
@example(prefix="%l| ")  # no %p: the two files may order two processes' lines differently
def test_random_prefix_against_real_server(pg_cluster, prefix):
    """A server writes with a random prefix; parsed stderr fields equal csvlog's, and the prefix
    worked out from the file alone gives every line the same fields (or says which escape the
    lines could not settle)."""
    with pg_cluster(log_line_prefix=prefix, log_connections="on", compute_query_id="on") as cluster:
        cluster.psql(SETUP, check=True)
        # A session open across the others, started two seconds before them: its lines after theirs
        # show %s going back by more than a moment (two processes' lines may be written a second
        # out of order), which tells it from %t; compute_query_id gives %Q values other than 0.
        with psycopg.connect(cluster.conninfo, user="app_user", dbname="shop", application_name="long runner",
                             autocommit=True) as long_runner:
            long_runner.execute("SELECT 1")
            time.sleep(2.05 - time.time() % 1)  # into the second after next
            for application in APPLICATIONS:
                cluster.psql(SCRIPT, application=application, user="app_user", database="shop")
            long_runner.execute("SELECT 2")
        cluster.stop()
        ours = LogReader([str(cluster.log_file("stderr"))], log_line_prefix=prefix)
        stderr_records = list(ours)
        csv_records = list(LogReader([str(cluster.log_file("csvlog"))]))
        lines = cluster.log_file("stderr").read_text().splitlines()
    assert ours.inputs[0].skipped_total == 0, (prefix, ours.inputs[0].examples)
    _check_vectorised_fields(prefix, lines)
    _check_inferred_fields(prefix, lines)
    assert len(stderr_records) == len(csv_records)
    # Paired by content, not by position: stderr and csvlog are written by separate calls, so two
    # processes' lines can come in another order in each file (seen with '%l| ', no %p to tell them).
    # Among records of the same text, every stderr record must have a csvlog record whose fields it
    # gives, each used once: a matching of the two, not a first fit that a later record may need.
    by_text: dict[tuple[str | None, ...], tuple[list[LogRecord], list[LogRecord]]] = {}
    for side, records in enumerate((stderr_records, csv_records)):
        for record in records:
            by_text.setdefault(_text_of(record), ([], []))[side].append(record)
    for text, (theirs, expected) in by_text.items():
        assert len(theirs) == len(expected), (prefix, "stderr and csvlog count this text differently", text)
        fits = [[_field_mismatch(prefix, one, other) is None for other in expected] for one in theirs]
        unfit = _unmatched(fits)
        assert unfit is None, _field_mismatch(prefix, theirs[unfit], expected[0])


def _check_inferred_fields(prefix: str, lines: list[str]) -> None:
    """The prefix worked out from the lines gives each line the given prefix's fields, but for
    the escapes its notes name as unsettled: those the lines cannot tell apart (``%x`` and
    ``%Q`` both 0 on every line of a skeleton), which logdiag says on stderr and in JSON. On 60
    random prefixes of this strategy (seed 7) after issue 24's last fix, every field was the
    given prefix's but for one such pair, named unsettled."""
    found = find_prefix(lines)
    assert found is not None, prefix
    unsettled = {letter for note in found.unsettled for letter in re.findall("%([A-Za-z])", note)}
    given, inferred = LinePrefix(prefix), LinePrefix(found.prefix)
    for line in lines:
        if line.startswith("\t") or (expected := given.match(line)) is None:
            continue
        got = inferred.match(line)
        assert got is not None, (prefix, found.prefix, line)
        for field, letters in FIELD_ESCAPES.items():
            if not letters & unsettled:
                assert getattr(got.fields, field) == getattr(expected.fields, field), (prefix, found.prefix, field, line)


def _text_of(record: LogRecord) -> tuple[str | None, ...]:
    return (record.severity, record.message, record.detail, record.statement)


def _unmatched(fits: list[list[bool]]) -> int | None:
    """The first row that no perfect matching of rows to columns (``fits[row][column]``) can pair,
    or None when there is one (augmenting paths: the rows are a few hundred at most).

    >>> _unmatched([[True, True], [True, False]]) is None  # a first fit would give row 0 column 0
    True
    >>> _unmatched([[True, False], [True, False]])
    1
    """
    owner: dict[int, int] = {}  # column -> row

    def place(row: int, seen: set[int]) -> bool:
        for column, fit in enumerate(fits[row]):
            if fit and column not in seen:
                seen.add(column)
                if column not in owner or place(owner[column], seen):
                    owner[column] = row
                    return True
        return False

    return next((row for row in range(len(fits)) if not place(row, set())), None)


def _field_mismatch(prefix: str, theirs: LogRecord, expected: LogRecord) -> tuple[str, str, object] | None:
    """The first prefix field in which a stderr record differs from a csvlog record, or None."""
    compiled = LinePrefix(prefix)
    cut_by_q = "%q" in prefix
    before_q = LinePrefix(prefix.split("%q", 1)[0]).escapes
    after_q = (LinePrefix(prefix.split("%q", 1)[1]).escapes - before_q) if cut_by_q else set()
    session_process = expected.backend_type not in (None, "postmaster", "startup", "checkpointer",
                                                    "background writer", "walwriter",
                                                    "autovacuum launcher", "logical replication launcher")
    for letter, field in COMPARED.items():
        if letter not in compiled.escapes:
            continue
        value = getattr(theirs, field)
        if letter in after_q and not session_process:
            if value is not None:
                return (prefix, field, theirs.source)
            continue
        want = getattr(expected, field)
        if letter == "e" and value is None:
            continue
        if letter == "i" and want is None:
            continue  # before authentication %i shows the process title; csvlog leaves it empty
        if value != want:
            return (prefix, field, theirs.source)
    if theirs.timestamp is not None and not (cut_by_q and "m" in after_q and not session_process):
        assert expected.timestamp is not None
        slack = timedelta(0) if "m" in compiled.escapes else timedelta(seconds=1)
        if abs(theirs.timestamp - expected.timestamp) > slack + timedelta(milliseconds=999):
            return (prefix, "timestamp", theirs.source)
    return None


def _check_vectorised_fields(prefix: str, lines: list[str]) -> None:
    """The pre-filter's polars extraction of one escape (the session key, the session line
    number) gives, on every line, what matching the whole prefix in Python gives."""
    import polars as pl

    from logdiag.fastpath.fields import prefix_field

    compiled = LinePrefix(prefix)
    frame = pl.DataFrame({"text": lines})
    for letter in sorted(compiled.escapes):
        first = next(name for name, escape in compiled.groups.items() if escape == letter)
        want = [found[first] if (found := compiled.regex.match(line)) else None for line in lines]
        assert frame.select(prefix_field(compiled, letter))["text"].to_list() == want, (prefix, letter)


@pytest.mark.postgres
def test_names_shaped_like_the_escape_after_them(pg_cluster):
    """A user and a database whose names hold a space and then something shaped like a session id
    or a session line number: matching the prefix only up to the escape would end inside the
    names; the vectorised extraction still gives what matching the whole prefix gives."""
    import psycopg

    prefix = "%m [%p] %q%u@%d %c %l "
    with pg_cluster(log_line_prefix=prefix, log_statement="all") as cluster:
        cluster.psql('CREATE DATABASE "shop 1a.2b 7"; CREATE ROLE "ops 3c.4d 5" LOGIN;', check=True)
        with psycopg.connect(cluster.conninfo, dbname="shop 1a.2b 7", user="ops 3c.4d 5", autocommit=True) as conn:
            conn.execute("SELECT 1")
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1/0")
        cluster.stop()
        lines = cluster.log_file("stderr").read_text().splitlines()
    assert sum("ops 3c.4d 5@shop 1a.2b 7 " in line for line in lines) >= 4  # two statements, ERROR, STATEMENT
    _check_vectorised_fields(prefix, lines)


@given(format_string=st.text(alphabet=st.sampled_from(list("%-0123456789 aquxdpmtQ[]:@")), max_size=40))
def test_any_format_string_compiles(format_string):
    """Any text compiles (PostgreSQL prints nothing for unknown escapes) and matching never raises."""
    compiled = LinePrefix(format_string)
    compiled.match("2026-11-21 06:52:48.092 UTC [2315] ERROR:  x")


def test_long_line_is_matched_quickly():
    """A 10 MB line that almost fits every known prefix is rejected in well under a second each."""
    line = "2026-11-21 06:52:48 UTC [1]: " + "@user=,db=[" * 1_000_000
    for candidate in KNOWN_PREFIXES:
        started = time.perf_counter()
        LinePrefix(candidate).match(line)
        LinePrefix(candidate, strict=True).match(line)
        assert time.perf_counter() - started < 5, candidate  # a guard against runaway backtracking


def test_inference_reads_only_the_start_of_a_long_line():
    """A 10 MB line whose text looks like prefix values: the keyword is looked for in its first
    512 characters only, so working the prefix out does not walk the line (nor backtrack in it)."""
    noise = "2026-11-21 06:52:48 UTC [1]: user=,db=[ " * 250_000 + "LOG:  x"
    assert find_prefix([noise]) is None
