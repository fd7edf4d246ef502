"""How logdiag words things for people: counts with their nouns, and the nearest of known names.

A leaf that every stage may read (the diagnosis's explanations, the reports, the CLI), so that
"1 open sessions" and "did you mean" are said one way everywhere (issue 29).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from difflib import get_close_matches
from pathlib import PurePath


def plural(count: int, word: str, words: str | None = None, *, grouped: bool = False) -> str:
    """A count and its noun, singular for one and plural otherwise.

    Args:
        count: how many.
        word: the noun for one (it may go on: ``"open session"``, ``"line could not be read"``).
        words: the noun for several, when it is not ``word`` + ``s``.
        grouped: write the count with thousands separators (``12,345``).

    Returns:
        ``"1 session"``, ``"2 sessions"``, ``"0 sessions"``.

    >>> plural(1, "session"), plural(2, "session"), plural(0, "match", "matches")
    ('1 session', '2 sessions', '0 matches')
    >>> plural(12345, "open session", "open sessions", grouped=True)
    '12,345 open sessions'
    """
    number = f"{count:,}" if grouped else str(count)
    return f"{number} {word if count == 1 else words or word + 's'}"


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name nearest to ``name``, if one is near enough to be what was meant (as
    sqlglot's ``suggest_closest_match_and_fail`` finds it, with :func:`difflib.get_close_matches`).

    >>> closest("--formt", ["--format", "--from-start", "--follow"])
    '--format'
    >>> closest("xml", ["text", "json", "jsonl", "markdown"]) is None
    True
    """
    matches = get_close_matches(name, list(known), n=1)
    return matches[0] if matches else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" (did you mean NAME?)"`` with the nearest known name, or nothing when none is near.

    >>> did_you_mean("jsn", ["text", "json"])
    ' (did you mean json?)'
    """
    found = closest(name, known)
    return f" (did you mean {found}?)" if found else ""


def place(file: str, line: int, named: bool) -> str:
    """``line 374``, or ``postgresql-Mon.log:374`` when the run reads more than one input.

    >>> place("/var/log/postgresql-Mon.log", 374, True), place("x.log", 3, False)
    ('postgresql-Mon.log:374', 'line 3')
    """
    return f"{PurePath(file).name}:{line}" if named else f"line {line}"


def key_text(key: Mapping[str, str | None]) -> str:
    """A key in one line: ``customer_id=42, region=NULL``."""
    return ", ".join(f"{column}={'NULL' if value is None else value}" for column, value in key.items())
