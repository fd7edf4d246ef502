"""What diagnosis reads from SQL and messages: writes in the order of the text, EXECUTE's
arguments, the SQLSTATE rule of a violation, and incidents whose JSON words are plain strings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logdiag.diagnosis.messages import CONDITIONS, OTHER_CONDITIONS, is_violation_sqlstate, parse_violation
from logdiag.diagnosis.sql import WriteKind, statement_writes
from logdiag.pipeline import analyze

SAMPLE = Path(__file__).parent.parent / "sample_logs" / "postgresql.csv"


def _writes(text: str) -> list[str]:
    return [w.function if w.kind is WriteKind.CALL else f"{w.kind} {w.table}" for w in statement_writes(text).writes]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # pglast's Visitor goes breadth first; the writes come out depth first, as the text says them.
        ("SELECT * FROM (SELECT f()) s UNION SELECT g()", ["f", "g"]),
        ("SELECT lower(f(1)) || g(2)", ["f", "g"]),
        ("WITH a AS (INSERT INTO x VALUES (1)) SELECT f(1)", ["f", "insert x"]),
        ("WITH x AS (INSERT INTO a VALUES (1)) SELECT 1; INSERT INTO b VALUES (1)", ["insert a", "insert b"]),
        # A call counts for every select list that holds it, right after its SELECT.
        ("SELECT (SELECT f()), g()", ["f", "g", "f"]),
        # A SELECT that is part of a write is analysed with the write, not as calls.
        ("INSERT INTO t SELECT f() FROM s", ["insert t"]),
        ("SELECT count(*), now()", []),
    ],
)
def test_writes_come_in_the_order_of_the_text(text: str, expected: list[str]) -> None:
    assert _writes(text) == expected


def test_execute_arguments_come_from_the_same_parse() -> None:
    """EXECUTE's constants are its arguments; NULL and expressions are not known."""
    assert statement_writes("EXECUTE p(1, NULL, now(), 'x'::text, -2)").execute_arguments == ("1", None, None, "x", "-2")
    assert statement_writes("EXECUTE p").execute_arguments == ()
    assert statement_writes("SELECT 1; EXECUTE p(1)").execute_arguments is None
    assert statement_writes("EXECUTE p(").execute_arguments is None


@pytest.mark.parametrize("sqlstate", sorted({*CONDITIONS, *OTHER_CONDITIONS, "23999", "40000", "XX000", "02000"}))
def test_the_sqlstate_rule_agrees_with_parse_violation(sqlstate: str) -> None:
    """A message parse_violation does not recognise is a violation exactly when its code is one."""
    assert (parse_violation("some error", None, sqlstate) is not None) is is_violation_sqlstate(sqlstate)


def test_incident_words_are_plain_strings() -> None:
    """The enums of an incident reach the JSON as their words, and as str itself."""
    incident = next(iter(analyze([str(SAMPLE)]).incidents()))
    data = incident.to_dict()
    words = [data["timing"], data["constraint_kind"]]
    words += [c[field] for c in data["culprits"] for field in ("match", "confidence")]
    words += [r["role"] for r in data["related"]]
    assert words[:2] == ["commit", "foreign_key"]
    assert all(type(word) is str for word in words), words
    assert json.loads(json.dumps(data)) == data
