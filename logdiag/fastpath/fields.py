"""The values the fast path reads off a record's first line: its session key and line number."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from logdiag.formats.base import Prefilter
from logdiag.formats.prefix import LinePrefix

if TYPE_CHECKING:  # polars is imported when an expression is built, not with the module
    import polars as pl


def session_key(prefilter: Prefilter, lean: bool = False) -> pl.Expr:
    """The expression that finds a record's session key in its first line (``lean``: see
    :func:`prefix_field`)."""
    import polars as pl

    field = _field(prefilter, prefilter.session_field, prefilter.session_letter, lean)
    if field is None:  # neither %c nor %p: the tracker cannot follow sessions anyway
        return pl.lit(None, pl.Utf8)
    return field


def line_session(prefilter: Prefilter, text: str) -> str | None:
    """The session key of a record's first line, read the Python way (for the few lines a
    marker picked out); None when the line holds none."""
    if prefilter.session_field is not None:
        found = re.search(prefilter.session_field, text)
        return None if found is None else found[1]
    assert prefilter.prefix is not None
    head = prefilter.prefix.match(text)
    if head is None:
        return None
    value = head.fields.session_id if prefilter.session_letter == "c" else head.fields.pid
    return None if value is None else str(value)


def session_line_number(prefilter: Prefilter) -> pl.Expr | None:
    """The expression that finds a record's session line number in its first line, or None."""
    return _field(prefilter, prefilter.line_number_field, "l")


def _field(prefilter: Prefilter, pattern: str | None, letter: str, lean: bool = False) -> pl.Expr | None:
    """A value by the format's own ``pattern`` (its first group), else by the prefix's ``%letter``."""
    import polars as pl

    if pattern is not None:
        return pl.col("text").str.extract(pattern, 1)
    assert prefilter.prefix is not None
    return prefix_field(prefilter.prefix, letter, lean)


def prefix_field(prefix: LinePrefix, letter: str, lean: bool = False) -> pl.Expr | None:
    """The expression that captures the value of the ``%letter`` escape of a stderr line's
    ``log_line_prefix``, or None when the prefix has no such escape.

    Capturing costs several times as much as matching (the regular expression engine cannot
    use its fast automaton for it), so where the format allows it (:meth:`LinePrefix.split`) the
    value is found by matching alone: the prefix up to the end of the value, then what must follow
    it. Only the lines where that does not go on (a user or database name that holds a space and
    then something shaped like the value, say) are captured. ``lean`` captures every line: the
    look-back, whose memory must stay under 150 MB, peaks 5 MB lower that way.
    """
    import polars as pl

    if letter not in prefix.escapes:
        return None
    text = pl.col("text")
    # Capturing that field alone: a quarter faster than every field, and one column, not eight.
    regex = LinePrefix(prefix.format, capture=letter, language=prefix.language).regex
    pattern, group = regex.pattern, regex.groupindex["v0"]
    split = None if lean else prefix.split(letter)
    if split is None:
        return text.str.extract(pattern, group)
    through = text.str.extract(split.through, 0)
    goes_on = text.str.slice(through.str.len_chars()).str.contains(split.rest)
    captured = pl.when(goes_on.not_()).then(text).str.extract(pattern, group)  # the other lines alone
    return pl.when(goes_on).then(through.str.extract(f"{split.value}$", 0)).otherwise(captured)
