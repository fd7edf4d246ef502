"""C format strings (``%s``, ``%d``, ``%1$s``...) read back out of the text they printed.

A translated message is a C format string whose conversions a translator may reorder
(``%3$s`` ... ``%1$s`` in Japanese and Chinese). :class:`CFormat` matches a printed message with
plain string searches, never a regular expression: log text is untrusted and a line may hold
10 MB, so each match costs one pass over the text, whatever it holds. The arguments come back in
the msgid's order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A conversion: %%, or %[n$][flags][width][.precision][length]letter (PostgreSQL's snprintf).
_CONVERSION = re.compile(r"%(?:(?P<percent>%)|(?:(?P<position>\d+)\$)?[-+ #0']*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t|L)?(?P<letter>[a-zA-Z]))")
_DIGITS = frozenset("0123456789")
_NUMERIC = frozenset("diuxX")


@dataclass(frozen=True, slots=True)
class CFormat:
    """A format string cut into its literal text and its conversions.

    Attributes:
        literals: the text around the conversions: one more than there are conversions.
        positions: for each conversion in the text's order, the index of its argument in the
            msgid's order (``%2$s`` is 1).
        letters: each conversion's letter (``s``, ``d``...).

    >>> f = CFormat.parse('テーブル"%3$s"にキー(%1$s)=(%2$s)がありません')
    >>> f.match('テーブル"orders"にキー(id)=(42)がありません')
    ('id', '42', 'orders')
    """

    literals: tuple[str, ...]
    positions: tuple[int, ...]
    letters: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> CFormat:
        literals: list[str] = []
        positions: list[int] = []
        letters: list[str] = []
        current: list[str] = []
        at = 0
        for found in _CONVERSION.finditer(text):
            current.append(text[at : found.start()])
            at = found.end()
            if found["percent"]:
                current.append("%")
                continue
            literals.append("".join(current))
            current = []
            positions.append(int(found["position"]) - 1 if found["position"] else len(positions))
            letters.append(found["letter"])
        current.append(text[at:])
        literals.append("".join(current))
        return cls(tuple(literals), tuple(positions), tuple(letters))

    @property
    def head(self) -> str:
        """The text before the first conversion: every message of this format starts with it."""
        return self.literals[0]

    def match(self, text: str) -> tuple[str, ...] | None:
        """The arguments that printed ``text`` with this format, in the msgid's order; None when
        it does not fit.

        Each argument but the last ends at the first place its following text occurs (as the
        lazy ``"(.+?)"`` of a regular expression would), the last one runs to the text that ends
        the format. Numeric conversions must be digits; adjacent conversions with no text between
        them cannot be told apart and match nothing.

        >>> CFormat.parse('la contrainte « %s » de la table « %s »').match('la contrainte « c » de la table « t »')
        ('c', 't')
        >>> CFormat.parse('Key %s already exists.').match('Key (a)=(1) exists.') is None
        True
        """
        literals = self.literals
        if not text.startswith(literals[0]):
            return None
        count = len(self.positions)
        if count == 0:
            return () if text == literals[0] else None
        last = literals[-1]
        end = len(text) - len(last)
        if end < len(literals[0]) or not text.endswith(last):
            return None
        values: list[str] = [""] * (max(self.positions) + 1)
        at = len(literals[0])
        for index in range(count):
            if index == count - 1:
                stop, after = end, end
            else:
                following = literals[index + 1]
                if not following:
                    return None
                stop = text.find(following, at, end)
                if stop < 0:
                    return None
                after = stop + len(following)
            value = text[at:stop]
            if self.letters[index] in _NUMERIC and not (value and _DIGITS.issuperset(value.lstrip("-"))):
                return None
            values[self.positions[index]] = value
            at = after
        return tuple(values)
