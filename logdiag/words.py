"""Words for counts, as every report writes them."""

from __future__ import annotations


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 incident``, ``2 incidents``; ``words`` for an irregular plural.

    >>> plural(1, "incident"), plural(3, "other error"), plural(2, "match", "matches")
    ('1 incident', '3 other errors', '2 matches')
    """
    return f"{count} {word if count == 1 else (words or word + 's')}"
