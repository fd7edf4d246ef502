"""The languages a PostgreSQL server writes its log in (``lc_messages``), read from its own catalogs.

A :class:`Language` knows what the server prints for each msgid of :mod:`logdiag.lang.msgids`:
its translation when :mod:`logdiag.lang.catalogs` has one, else the English msgid (what the server
prints then). Readers ask it for severity words and labels (``FEHLER:``, ``INSTRUCTION :``), the
diagnosis for the formats of the messages it reads (:meth:`Language.format`). The report stays
in English; a record keeps the log's text as written, with its severity and labels in English.

>>> language_named("fr_FR.UTF-8").severity_word("ERROR")
'ERREUR'
>>> sorted(LANGUAGES)[:4]
['de', 'en', 'es', 'fr']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import cached_property

from logdiag.lang import msgids
from logdiag.lang.catalogs import CATALOGS
from logdiag.lang.cformat import CFormat

__all__ = [
    "ENGLISH", "LANGUAGES", "CFormat", "Language", "UnknownLanguage", "all_formats", "detect_language",
    "language_named", "msgids", "severity_of", "severity_words",
]

#: How far into a line its language's marks are looked for (a statement may be 10 MB).
_WINDOW = 1000


class UnknownLanguage(ValueError):
    """No catalog for the ``lc_messages`` asked for."""


@dataclass(frozen=True)
class Language:
    """What a server with one ``lc_messages`` prints for the msgids logdiag reads.

    Attributes:
        code: the catalog's name (``de``, ``zh_CN``; ``en`` for English, the msgids themselves).
        catalog: msgid → translation, for the msgids this language translates.
    """

    code: str
    catalog: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False, compare=False)

    def text(self, msgid: str) -> str:
        """What the server prints for ``msgid``: its translation, or the msgid itself."""
        return self.catalog.get(msgid, msgid)

    def format(self, msgid: str) -> CFormat:
        """The translated format of ``msgid``, to read its arguments back."""
        return _format(self.text(msgid))

    def severity_word(self, severity: str) -> str:
        """csvlog's ``error_severity`` (and stderr's word before ``:``) for an English severity."""
        return self.text(severity)

    @cached_property
    def severities(self) -> dict[str, str]:
        """Severity word as printed → English severity, English words included (a server prints
        some lines before it reads ``lc_messages``)."""
        words = {word: word for word in msgids.SEVERITIES}
        for word in msgids.SEVERITIES:  # Georgian prints NOTICE and WARNING alike: the latter wins
            words[self.text(word)] = word
        return words

    @cached_property
    def keywords(self) -> dict[str, str]:
        """What stderr prints before a message's or an attachment's text, up to its colon, →
        the English keyword: ``{"FEHLER:": "ERROR", "INSTRUCTION :": "STATEMENT", ...}``.

        English's own keywords are in every language's table."""
        found = {f"{word}:": word for word in msgids.SEVERITIES}
        found.update({f"{label}:": label for label in msgids.LABELS})
        for word in msgids.SEVERITIES:
            found.setdefault(f"{self.text(word)}:", word)
        for label, msgid in msgids.LABELS.items():
            found.setdefault(_label_token(self.text(msgid)), label)
        return found

    @cached_property
    def tight_keywords(self) -> frozenset[str]:
        """Keywords of :attr:`keywords` the server prints with no space after the colon
        (Korean's ``QUERY``)."""
        return frozenset(
            _label_token(self.text(msgid)) for msgid in msgids.LABELS.values()
            if not self.text(msgid)[len(_label_token(self.text(msgid))) :].startswith((" ", "%"))
        )

    @cached_property
    def marks(self) -> tuple[tuple[str, str], ...]:
        """(this language's text, English's) for each text that, found in a line, says a log is
        in this language and not in English: severity words, labels, ``statement:`` and the
        other prefixes, lines every server writes (:data:`~logdiag.lang.msgids.TELLING`)."""
        if not self.catalog:
            return ()
        marks: list[tuple[str, str]] = []
        for word in msgids.SEVERITIES:
            if self.text(word) != word:
                marks += [(f"{self.text(word)}:  ", f"{word}:  "), (f",{self.text(word)},", f",{word},")]
        for msgid in msgids.LABELS.values():
            if self.text(msgid) != msgid:
                marks.append((_label_token(self.text(msgid)), _label_token(msgid)))
        for msgid in (msgids.STATEMENT, msgids.DURATION, msgids.CONNECTION_RECEIVED, msgids.PARAMETERS, *msgids.TELLING):
            if self.text(msgid) != msgid and len(self.format(msgid).head) > 2:
                marks.append((self.format(msgid).head, _format(msgid).head))
        return tuple(dict.fromkeys(marks))


def _label_token(printed: str) -> str:
    """``"INSTRUCTION :  "`` → ``"INSTRUCTION :"``; ``"ORT:  %s:%d\\n"`` → ``"ORT:"``."""
    return printed.split("%", 1)[0].rstrip()


_FORMATS: dict[str, CFormat] = {}


def _format(text: str) -> CFormat:
    found = _FORMATS.get(text)
    if found is None:
        found = _FORMATS[text] = CFormat.parse(text)
    return found


ENGLISH = Language("en")
#: Every language PostgreSQL's catalogs cover, and English, by code.
LANGUAGES: dict[str, Language] = {"en": ENGLISH, **{code: Language(code, entries) for code, entries in CATALOGS.items()}}


def language_named(name: str) -> Language:
    """The language of an ``lc_messages`` value: ``de``, ``de_DE.UTF-8``, ``zh_CN``, ``C``...

    Raises:
        UnknownLanguage: no catalog has it, with the closest names.
    """
    base = name.split(".", 1)[0].split("@", 1)[0]
    if base in ("", "C", "POSIX") or base.lower().startswith("en"):
        return ENGLISH
    for candidate in (base, base.split("_", 1)[0]):
        if candidate in LANGUAGES:
            return LANGUAGES[candidate]
    close = get_close_matches(base, list(LANGUAGES), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UnknownLanguage(f"no PostgreSQL messages in {name!r}{hint}; known: {', '.join(sorted(LANGUAGES))}")


def detect_language(lines: Iterable[str]) -> Language:
    """The language whose own texts (severity words, labels, ``statement:``...) the lines hold
    more often than English's counterparts, by the widest margin; English when none does.

    Each language is weighed against English on the texts it translates only, so a German log's
    ``LOG:`` (German keeps the word) counts for neither, and an English log with a stray foreign
    word in a statement stays English.

    >>> german = LANGUAGES["de"]
    >>> lines = [f"2026-03-01 10:00:00 UTC [7] {german.severity_word('ERROR')}:  x"] * 2
    >>> detect_language(lines).code, detect_language(["2026-03-01 10:00:00 UTC [7] ERROR:  x"]).code
    ('de', 'en')
    """
    window = [line[:_WINDOW] for line in lines]
    best, margin = ENGLISH, 0
    for language in LANGUAGES.values():
        own = sum(line.count(mark) for line in window for mark, _ in language.marks)
        if own <= margin:
            continue
        english = sum(line.count(mark) for line in window for _, mark in language.marks)
        if own - english > margin:
            best, margin = language, own - english
    return best


#: Every language's severity words, for the formats whose severity field needs no language
#: (a word means one severity in every catalog but Georgian's NOTICE, printed as its WARNING).
_SEVERITY_WORDS: dict[str, str] = {}
for _language in LANGUAGES.values():
    for _word, _english in _language.severities.items():
        _SEVERITY_WORDS.setdefault(_word, _english)


def severity_words() -> dict[str, str]:
    """Every language's severity words → the English severity (see :func:`severity_of`)."""
    return dict(_SEVERITY_WORDS)


def severity_of(word: str) -> str | None:
    """The English severity of a severity word in any language; None for no severity.

    >>> severity_of("FEHLER"), severity_of("ОШИБКА"), severity_of("ERROR"), severity_of("x")
    ('ERROR', 'ERROR', 'ERROR', None)
    """
    return _SEVERITY_WORDS.get(word)


def all_formats(msgid: str) -> tuple[CFormat, ...]:
    """The format of ``msgid`` in every language, English first, each once."""
    found = _ALL_FORMATS.get(msgid)
    if found is None:
        found = _ALL_FORMATS[msgid] = tuple(dict.fromkeys(language.format(msgid) for language in LANGUAGES.values()))
    return found


_ALL_FORMATS: dict[str, tuple[CFormat, ...]] = {}
