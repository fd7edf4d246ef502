"""Compile a ``log_line_prefix`` format string into a parser for stderr and syslog lines.

Every escape PostgreSQL documents is supported, with padding (``%-10u``) and ``%q``. Values are
matched with bounded, lazy patterns (user, database and application names are at most 63 bytes in
PostgreSQL) and only within the first :data:`PREFIX_WINDOW` characters of a line, so a 10 MB
statement cannot make the regular expression backtrack through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from logdiag.errors import ConfigError
from logdiag.formats.timestamps import parse_epoch, parse_timestamp
from logdiag.lang import ENGLISH, Language

PREFIX_WINDOW = 4096

# "[unknown]" (before authentication) is tried whole first, so a "]" after the value is no trap.
_NAME = r"(?:\[unknown\]|.{0,64}?)"
_ZONE = r"(?: [A-Za-z0-9+\-:/_]{1,32})?"
_SECONDS = r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"

#: The value pattern of each escape, as the server prints it. Digits are ASCII (``\d`` would take
#: any Unicode digit, which the server never prints, and makes polars' regex engine a third slower).
ESCAPE_PATTERNS: dict[str, str] = {
    "a": _NAME,  # application_name
    "u": _NAME,  # user name
    "d": _NAME,  # database name
    "r": r"(?:\[local\]|[^\s()]{1,255}\([0-9]{1,5}\)|[^\s()]{0,255}?)",  # host(port)
    "h": r"(?:\[local\]|[^\s]{0,255}?)",  # remote host
    # local address (IPv4, IPv6 with a zone); PostgreSQL 18 prints [none] in processes without a client
    "L": r"(?:\[local\]|\[none\]|[0-9A-Fa-f.:%]{0,64}?)",
    "b": r".{0,48}?",  # backend type
    "p": r"[0-9]{1,10}",  # process id
    "P": r"[0-9]{0,10}",  # parallel group leader's pid
    "t": _SECONDS + _ZONE,  # timestamp without milliseconds
    "m": _SECONDS + r"\.[0-9]{3}" + _ZONE,  # timestamp with milliseconds
    "n": r"[0-9]{1,11}\.[0-9]{3}",  # epoch with milliseconds
    "i": r".{0,64}?",  # command tag
    "e": r"[0-9A-Z]{5}",  # SQLSTATE
    "c": r"[0-9a-f]{1,16}\.[0-9a-f]{1,16}",  # session id
    "l": r"[0-9]{1,20}",  # session line number
    "s": _SECONDS + _ZONE,  # session start
    "v": r"(?:-?[0-9]{1,10}/[0-9]{1,10})?",  # virtual transaction id
    "x": r"[0-9]{1,10}",  # transaction id
    "Q": r"-?[0-9]{1,20}",  # query id
}

#: Keywords that start a new message, and those that add a field to the previous one.
MESSAGE_SEVERITIES = (
    "DEBUG5", "DEBUG4", "DEBUG3", "DEBUG2", "DEBUG1", "DEBUG", "INFO", "NOTICE", "WARNING",
    "LOG", "ERROR", "FATAL", "PANIC",
)
ATTACHMENTS = ("DETAIL", "HINT", "QUERY", "CONTEXT", "LOCATION", "STATEMENT")
_KEYWORD_TAIL = "{}:(?: {{1,2}}|${})"  # the keyword group, its colon and the one or two spaces after


def keyword_words(language: Language = ENGLISH, keywords: tuple[str, ...] | None = None) -> dict[str, str]:
    """The words a server in ``language`` prints before a keyword's colon (``FEHLER``,
    ``INSTRUCTION `` with its space) → the English keyword; English's words are always there.

    >>> from logdiag.lang import language_named
    >>> words = keyword_words(language_named("fr"), ("ERROR", "STATEMENT"))
    >>> sorted(words.items())
    [('ERREUR', 'ERROR'), ('ERROR', 'ERROR'), ('INSTRUCTION ', 'STATEMENT'), ('STATEMENT', 'STATEMENT')]
    """
    english = MESSAGE_SEVERITIES + ATTACHMENTS if keywords is None else keywords
    words = {keyword: keyword for keyword in english}
    for token, keyword in language.keywords.items():
        if keyword in english:
            words.setdefault(token[:-1], keyword)
    return words


def keyword_pattern(language: Language = ENGLISH, keywords: tuple[str, ...] | None = None) -> str:
    """An alternation of :func:`keyword_words` (no group), longest first."""
    return "|".join(re.escape(word) for word in sorted(keyword_words(language, keywords), key=lambda w: (-len(w), w)))


def _tight(language: Language) -> str:
    """The tail's alternative for a language with a keyword printed with no space after its colon
    (Korean's QUERY): none at all (no lookbehind: polars' regex engine has none)."""
    return "|" if language.tight_keywords else ""

_ESCAPE = re.compile(r"%(-?\d+)?(.)?", re.DOTALL)
_NO_ESCAPE = "%"  # as ``capture``: no escape has this letter, so nothing is captured
_SPLITTABLE = frozenset("cpl")  # escapes whose values hold only digits, hex digits and a dot
_UNKNOWN_VALUES = frozenset({"", "[unknown]"})
_REMOTE = re.compile(r"(?P<host>[^\s()]{1,255})\((?P<port>[0-9]{1,5})\)$")


@dataclass(frozen=True, slots=True)
class PrefixFields:
    """The values a prefix carried on one line (None when absent, empty or ``[unknown]``)."""

    timestamp: datetime | None = None
    pid: int | None = None
    session_id: str | None = None
    session_line: int | None = None
    vxid: str | None = None
    xid: int | None = None
    user: str | None = None
    database: str | None = None
    application: str | None = None
    client: str | None = None
    backend_type: str | None = None
    sqlstate: str | None = None
    command_tag: str | None = None
    query_id: int | None = None


@dataclass(frozen=True, slots=True)
class PrefixSplit:
    """A ``log_line_prefix`` cut after one escape (:meth:`LinePrefix.split`): ``through`` matches
    a line up to the end of that escape's value, ``value`` finds the value at the end of what
    ``through`` matched, and ``rest`` matches what must follow it for the whole prefix to match
    there (then the whole prefix would capture that value too: no earlier way to match
    ``through`` exists, and this one goes on)."""

    through: str
    value: str
    rest: str


@dataclass(frozen=True, slots=True)
class PrefixMatch:
    """A line split into its prefix fields, its keyword (``LOG``, ``DETAIL``...) and the text after."""

    fields: PrefixFields
    keyword: str
    text: str


#: While guessing a prefix, names may not contain spaces; otherwise a short candidate such as
#: ``%m [%p] %q%u@%d `` would swallow the rest of a richer prefix into ``%d``.
STRICT_PATTERNS: dict[str, str] = {
    "u": r"(?:\[unknown\]|\S{0,64}?)",
    "d": r"(?:\[unknown\]|\S{0,64}?)",
    "i": r"\S{0,64}?",
    "b": r"\S{0,64}?",
}


class LinePrefix:
    """A compiled ``log_line_prefix``: ``LinePrefix("%m [%p] ").match(line)``.

    Args:
        format_string: the server's ``log_line_prefix``.
        strict: use the narrower patterns of :data:`STRICT_PATTERNS` (for detection).
        overrides: escape letter → pattern, replacing the usual one (the fast path matches only
            the lines of given pids or sessions this way).
        keywords: the keywords to accept instead of every severity and attachment.
        capture: capture only the first escape of this letter (besides the keyword); the others
            are matched without capturing, which is cheaper when one field is extracted from
            every line of a log the vectorised way.

    >>> m = LinePrefix("%m [%p] %q%u@%d ").match(
    ...     "2026-11-21 06:52:48.092 UTC [2315] app@shop ERROR:  boom")
    >>> (m.fields.pid, m.fields.user, m.fields.database, m.keyword, m.text)
    (2315, 'app', 'shop', 'ERROR', 'boom')
    """

    def __init__(
        self,
        format_string: str,
        *,
        strict: bool = False,
        overrides: dict[str, str] | None = None,
        keywords: tuple[str, ...] | None = None,
        capture: str | None = None,
        language: Language = ENGLISH,
    ) -> None:
        self.format = format_string
        self.language = language
        self._capture = capture
        self._patterns = {**ESCAPE_PATTERNS, **STRICT_PATTERNS} if strict else dict(ESCAPE_PATTERNS)
        self._patterns.update(overrides or {})
        self._words = keyword_words(language, keywords)
        self._keywords = keyword_pattern(language, keywords)
        self._tight = _tight(language)
        tail = _KEYWORD_TAIL.format(f"(?P<keyword>{self._keywords})", self._tight)
        self._groups: dict[str, str] = {}  # regex group name -> escape letter
        self._letters: set[str] = set()  # every escape the prefix prints, captured or not
        try:
            self.regex = re.compile("^" + self._translate(format_string) + tail)
        except re.error as exc:  # pragma: no cover - every escape maps to a valid pattern
            raise ConfigError(f"cannot compile log_line_prefix {format_string!r}: {exc}") from exc
        self.escapes = frozenset(self._letters)

    @property
    def groups(self) -> dict[str, str]:
        """Regex group name → the escape letter it captures (for vectorised use of :attr:`regex`)."""
        return dict(self._groups)

    def __repr__(self) -> str:
        return f"LinePrefix({self.format!r})"

    def _translate(self, format_string: str) -> str:
        # %q ends the prefix for processes without a session: everything after it is optional.
        head, _, tail = _split_q(format_string)
        pattern = self._translate_part(head)
        if tail is not None:
            pattern += "(?:" + self._translate_part(tail) + ")?"
        return pattern

    def _translate_part(self, part: str) -> str:
        return "".join(pattern for _, pattern in self._pieces(part))

    def _pieces(self, part: str) -> list[tuple[str | None, str]]:
        """The patterns that match a part of the format, in order, each with its escape's letter
        (None for literal text, "" for a padded escape)."""
        out: list[tuple[str | None, str]] = []
        position = 0
        for escape in _ESCAPE.finditer(part):
            out.append((None, re.escape(part[position : escape.start()])))
            position = escape.end()
            padding, letter = escape.group(1), escape.group(2)
            if letter is None:  # a lone % at the end prints nothing
                continue
            if letter == "%":
                out.append((None, "%"))
                continue
            value = self._patterns.get(letter)
            if value is None:  # PostgreSQL ignores unknown escapes
                continue
            self._letters.add(letter)
            if self._capture is None or (letter == self._capture and letter not in self._groups.values()):
                name = f"v{len(self._groups)}"
                self._groups[name] = letter
                group = f"(?P<{name}>{value})"
            else:
                group = f"(?:{value})"
            # The server pads a value to the width with spaces, never more: a bounded run, so
            # two padded escapes side by side cannot trade spaces (quadratic, issue 27).
            if padding and int(padding) > 0:
                group = f" {{0,{int(padding)}}}" + group
            elif padding and int(padding) < 0:
                group = group + f" {{0,{-int(padding)}}}"
            out.append(("" if padding else letter, group))
        out.append((None, re.escape(part[position:])))
        return out

    def split(self, letter: str) -> PrefixSplit | None:
        """The prefix cut after the first ``%letter``, as regular expressions without capture
        groups (capturing costs several times as much as matching); None if that escape is
        padded, or the format does not put before it a character its value cannot hold (then
        the value could not be told from the end of what matches up to it)."""
        if letter not in _SPLITTABLE:
            return None
        plain = LinePrefix(self.format, overrides=self._patterns, capture=_NO_ESCAPE, language=self.language)
        head, _, tail = _split_q(self.format)
        parts = [plain._pieces(head)] + ([plain._pieces(tail)] if tail is not None else [])
        keyword = _KEYWORD_TAIL.format(f"(?:{self._keywords})", self._tight)
        for number, pieces in enumerate(parts):
            found = next((index for index, (name, _) in enumerate(pieces) if name == letter), None)
            if found is None:
                continue
            separator = re.sub(r"\\(.)", r"\1", pieces[found - 1][1]) if found else ""
            if not separator or separator[-1].isalnum() or separator[-1] in "._-":
                return None
            joined = ["".join(pattern for _, pattern in part) for part in parts]
            before = "".join(pattern for _, pattern in pieces[:found])
            value = pieces[found][1]
            after = "".join(pattern for _, pattern in pieces[found + 1 :])
            if number == 0:  # before %q, or no %q
                optional = "".join(f"(?:{part})?" for part in joined[1:])
                return PrefixSplit("^" + before + value, value, "^" + after + optional + keyword)
            return PrefixSplit("^" + joined[0] + "(?:" + before + value + ")", value, "^" + after + keyword)
        return None

    def match(self, line: str) -> PrefixMatch | None:
        """Split a line into prefix fields, keyword and text, or None if it does not fit."""
        found = self.regex.match(line[:PREFIX_WINDOW])
        if found is None:
            return None
        values: dict[str, str] = {}
        for name, value in found.groupdict().items():
            letter = self._groups.get(name)
            if letter is not None and value is not None:
                values.setdefault(letter, value.strip())
        return PrefixMatch(_fields(values), self._words[found["keyword"]], line[found.end() :])

    def english(self, word: str) -> str | None:
        """The English keyword of a word the ``keyword`` group of :attr:`regex` captured."""
        return self._words.get(word)


def _split_q(format_string: str) -> tuple[str, bool, str | None]:
    for escape in _ESCAPE.finditer(format_string):
        if escape.group(2) == "q" and not escape.group(1):
            return format_string[: escape.start()], True, format_string[escape.end() :]
    return format_string, False, None


def _text(values: dict[str, str], letter: str) -> str | None:
    value = values.get(letter)
    return None if value is None or value in _UNKNOWN_VALUES else value


def _int(values: dict[str, str], letter: str) -> int | None:
    value = values.get(letter)
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _client(values: dict[str, str]) -> str | None:
    # Twin: the polars expression logdiag.fastpath.stderr_frames._client (the export's frames).
    remote = _text(values, "r")
    if remote is not None:
        port = _REMOTE.match(remote)
        return f"{port['host']}:{port['port']}" if port else remote
    return _text(values, "h")


def _fields(values: dict[str, str]) -> PrefixFields:
    timestamp = None
    if values.get("m"):
        timestamp = parse_timestamp(values["m"])
    elif values.get("n"):
        timestamp = parse_epoch(values["n"])
    elif values.get("t"):
        timestamp = parse_timestamp(values["t"])
    return PrefixFields(
        timestamp=timestamp,
        pid=_int(values, "p"),
        session_id=_text(values, "c"),
        session_line=_int(values, "l"),
        vxid=_text(values, "v"),
        xid=_int(values, "x"),
        user=_text(values, "u"),
        database=_text(values, "d"),
        application=_text(values, "a"),
        client=_client(values),
        backend_type=_text(values, "b"),
        sqlstate=_text(values, "e"),
        command_tag=_text(values, "i"),
        query_id=_int(values, "Q"),
    )


#: Prefixes tried, in order, when the user gives none: PostgreSQL's default, Debian's, cloud
#: providers', and those pgBadger's documentation recommends.
KNOWN_PREFIXES: tuple[str, ...] = (
    "%m [%p] ",
    "%m [%p] %q%u@%d ",
    "%t [%p] %q%u@%d ",
    "%t [%p-%l] %q%u@%d ",
    "%m [%p-%l] %q%u@%d ",
    "%t:%r:%u@%d:[%p]:",
    "%m:%r:%u@%d:[%p]:",
    "%t:%h:%u@%d:[%p]:",
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%t [%p]: [%l-1] user=%u,db=%d,host=%h,app=%a ",
    "%t [%p]: [%l-1] user=%u,db=%d ",
    "%t [%p]: [%l-1] ",
    "%m [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%m [%p]: [%l-1] user=%u,db=%d ",
    "%t [%p]: [%l-1] [%x] usr=%u,db=%d,appli=%a ",
    "%t [%p]: db=%d,user=%u,app=%a,client=%h ",
    "%m [%p]: db=%d,user=%u,app=%a,client=%h ",
    "%m [%p] user=%u,db=%d ",
    "%m [%p] user=%u,db=%d,app=%a,client=%h ",
    "%m [%p] [queryid=%Q] %q%u@%d ",
    "%m [%p] %q[user=%u,db=%d,app=%a] ",
    "%m [%p] %q%u@%d/%a ",
    "%m %u@%d[%p] ",
    "%t [%p] ",
    "%t [%p]: ",
    "%m [%p]: ",
    # Bodies behind a wrapper (syslog, Heroku logplex, Google Cloud SQL):
    "db=%d,user=%u,app=%a,client=%h ",
    "user=%u,db=%d,app=%a,client=%h ",
    "[%l-1] user=%u,db=%d,app=%a,client=%h ",
    " sql_error_code = %e ",
    "sql_error_code = %e ",
    "[%p]: [%l-1] db=%d,user=%u ",
    "",
)
