"""Work out a ``log_line_prefix`` from the lines a server wrote with it.

No list of known prefixes is needed: the severity keyword and its two spaces (``LOG:  ``,
``ERROR:  ``...) cut every header line into the *rendered* prefix and the message; each rendered
prefix is cut into values of a recognisable shape (timestamps, pids, session ids, vxids,
SQLSTATEs, hosts, names) and the literal text between them. The lines of client sessions, which
print every escape, give the skeleton; the values found at the same place on every such line
tell the escape (``%l`` counts up by one from a message's line to its DETAIL or STATEMENT, ``%p``
is the end of the session id, ``%x`` is 0 outside write transactions...); the lines of other
processes show where ``%q`` stands. Each candidate is checked against every sample line, and the
one that reads the most lines, with the most values, wins.

What the lines cannot settle is said in :attr:`Inference.unsettled`: an escape that printed
nothing on every line (``%P``, ``%L`` on PostgreSQL 15, ``%i`` where no line has a command), a
value the same on every line (it reads as literal text), or user, database and application names
told apart only by their order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import astuple, dataclass, field
from enum import Enum
from functools import cache
from itertools import pairwise

from logdiag.formats.prefix import KNOWN_PREFIXES, LinePrefix, keyword_pattern
from logdiag.formats.timestamps import parse_timestamp
from logdiag.lang import ENGLISH, Language, msgids
from logdiag.source.framing import SAMPLE_LINES


#: The keyword that ends every header line's prefix, and the colon and two spaces after it.
#: (In the server's language: ``FEHLER:  ``, ``INSTRUCTION :  ``, issue 25.)
@cache
def _keyword(language: Language) -> re.Pattern[str]:
    return re.compile("(?:" + keyword_pattern(language) + "):(?:  |$)")
#: How far into a line the keyword is looked for: a prefix is short, a statement may be 10 MB.
_PREFIX_WINDOW = 512


class Shape(Enum):
    """What a value in a rendered prefix looks like."""

    MILLISECONDS = "milliseconds"  # %m
    SECONDS = "seconds"  # %t or %s
    EPOCH = "epoch"  # %n
    SESSION = "session"  # %c
    VXID = "vxid"  # %v
    HOST_PORT = "host_port"  # %r
    HOST = "host"  # %h (or %r on a local connection)
    NUMBER = "number"  # %p %l %x %Q %P, or %e when it is 00000
    SQLSTATE = "sqlstate"  # %e
    NAME = "name"  # %u %d %a %b %i %h


_ZONE = r"(?: (?:[A-Z]{2,6}|[+-][0-9]{2}(?::?[0-9]{2})?))?"
_DATE_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
_BACKEND_TYPES = (
    "logical replication tablesync worker", "logical replication apply worker",
    "logical replication parallel worker", "logical replication launcher", "logical replication worker",
    "dead-end client backend", "autovacuum launcher", "autovacuum worker", "background worker",
    "background writer", "standalone backend", "not initialized", "slotsync worker", "client backend",
    "parallel worker", "io worker", "checkpointer", "walsummarizer", "walreceiver", "postmaster", "walsender",
    "walwriter", "archiver", "startup", "logger",
)
_COMMAND = r"idle in transaction \(aborted\)|idle in transaction|[A-Z]{2,32}(?: [A-Z]{2,32}){0,3}"
_WORD_END = r"(?![0-9A-Za-z_])"
#: The shapes, tried in this order at each place a value may start.
_LEXER = re.compile(
    "|".join(
        f"(?P<{name}>{pattern})"
        for name, pattern in (
            ("milliseconds", _DATE_TIME + r"\.[0-9]{3}" + _ZONE),
            ("seconds", _DATE_TIME + _ZONE),
            ("epoch", r"[0-9]{10}\.[0-9]{3}" + _WORD_END),
            ("session", r"[0-9a-f]{1,16}\.[0-9a-f]{1,16}(?![0-9A-Za-z_.])"),
            ("vxid", r"[0-9]{1,10}/[0-9]{1,10}(?![0-9A-Za-z_]|-[0-9]{2}-[0-9]{2})"),  # not %e/%m's 00000/2026-12-07
            ("host_port", r"[0-9A-Za-z\[][^\s()]{0,254}\([0-9]{1,5}\)"),
            ("host", r"\[local\]|[0-9]{1,3}(?:\.[0-9]{1,3}){3}" + _WORD_END),
            ("unknown", r"\[unknown\]"),
            ("sqlstate", r"(?=[0-9A-Z]{0,4}[A-Z])(?=[0-9A-Z]{0,4}[0-9])[0-9A-Z]{5}" + _WORD_END),
            ("backend", "|".join(_BACKEND_TYPES) + _WORD_END),
            ("number", r"[0-9]{1,20}" + _WORD_END),
            ("command", "(?:" + _COMMAND + ")" + _WORD_END),
            ("word", r"[0-9A-Za-z_][^\s\[\](){}<>@,;|:=/\"'#%]{0,63}"),
        )
    )
)
_NEGATIVE = re.compile(r"-[0-9]{1,20}" + _WORD_END)
_GROUP_SHAPES = {
    "milliseconds": Shape.MILLISECONDS, "seconds": Shape.SECONDS, "epoch": Shape.EPOCH,
    "session": Shape.SESSION, "vxid": Shape.VXID, "host_port": Shape.HOST_PORT, "host": Shape.HOST,
    "unknown": Shape.NAME, "sqlstate": Shape.SQLSTATE, "backend": Shape.NAME, "number": Shape.NUMBER,
    "command": Shape.NAME, "word": Shape.NAME,
}
#: A label in the literal text names the value after it (``user=%u``, ``db=%d``).
_LABELS = {
    "u": ("user", "usr", "u", "role", "username", "user_name"),
    "d": ("db", "database", "dbname", "d", "datname"),
    "a": ("app", "appli", "application", "application_name", "appname", "a"),
    "h": ("client", "host", "remote", "clienthost", "client_addr", "ip", "h", "r", "remote_host"),
    "b": ("backend", "backend_type", "type", "b"),
    "i": ("tag", "command", "cmd", "command_tag", "ps", "i"),
    "e": ("sql_error_code", "sqlstate", "code", "err", "error", "e", "state"),
    "p": ("pid", "p", "process"),
    "l": ("line", "l", "session_line"),
    "c": ("session", "session_id", "sid", "c"),
    "x": ("xid", "txid", "x", "transaction"),
    "v": ("vxid", "v", "virtualxid"),
    "Q": ("query_id", "queryid", "qid", "Q"),
}
_LABEL_OF = {label.lower(): letter for letter, labels in _LABELS.items() for label in labels}
_LABEL_BEFORE = re.compile(r"(?<![A-Za-z_])([A-Za-z_]{1,64}) ?[=:] ?$")
# Before its process title is set (``connection received``), a backend's %i is the server
# program's path, as started: seen as ``/usr/lib/postgresql/15/bin/postgres``.
_COMMAND_VALUE = re.compile(r"(?:" + _COMMAND + r"|authentication|startup|idle|PARSE|BIND|(?:/[^\s/]{1,255}){0,32}/postgres)\Z")
_BACKEND_VALUE = re.compile("(?:" + "|".join(_BACKEND_TYPES) + r")\Z")


@dataclass(frozen=True, slots=True)
class Header:
    """A header line cut at its keyword: the rendered prefix, cut into literal text and values."""

    message: str  # the start of the text after the keyword
    literals: tuple[str, ...]  # one more than values: before, between and after them
    values: tuple[tuple[Shape, str], ...]

    @property
    def skeleton(self) -> tuple[object, ...]:
        """What lines written by the same kind of process share: the literal text (spaces
        squeezed, padding varies them) and the shapes of the values."""
        shapes = [shape for shape, _ in self.values]
        squeezed = [re.sub(" +", " ", text) for text in self.literals]
        return tuple(x for pair in zip(squeezed, [*shapes, None], strict=True) for x in pair if x is not None)


@dataclass(frozen=True, slots=True)
class Inference:
    """A prefix worked out from lines, how many of them it reads, and what they could not settle."""

    prefix: str
    lines: int
    read: int
    unsettled: tuple[str, ...] = ()


def cut(line: str, language: Language = ENGLISH) -> Header | None:
    """A header line's rendered prefix, cut into literal text and values; None for a line
    without a severity keyword (a continuation, or no server line)."""
    found = _keyword(language).search(line, 0, _PREFIX_WINDOW)
    if found is None:
        return None
    rendered = line[: found.start()]
    literals: list[str] = []
    values: list[tuple[Shape, str]] = []
    text_start = position = 0
    while position < len(rendered):
        value = None
        if position == 0 or not rendered[position - 1].isalnum():
            value = _LEXER.match(rendered, position) or _NEGATIVE.match(rendered, position)
        if value is None or (value.lastgroup == "word" and _is_label(rendered, value.end())):
            position = _skip_word(rendered, position) if value is not None else position + 1
            continue
        shape = _GROUP_SHAPES[value.lastgroup] if value.lastgroup else Shape.NUMBER
        literals.append(rendered[text_start:position])
        values.append((shape, value.group()))
        text_start = position = value.end()
    literals.append(rendered[text_start:])
    message = line[found.end() : found.end() + 200]
    return Header(message, tuple(literals), tuple(values))


def _is_label(text: str, end: int) -> bool:
    """Whether a word is a label: literal text followed by ``=``."""
    return text[end : end + 1] == "=" or text[end : end + 2] == " ="


def _skip_word(text: str, position: int) -> int:
    while position < len(text) and (text[position].isalnum() or text[position] == "_"):
        position += 1
    return max(position, 1)


def infer_prefix(lines: Iterable[str], limit: int = 5, language: Language = ENGLISH) -> Inference | None:
    """The ``log_line_prefix`` that reads the most of these lines (TAB continuations aside), or
    None when no line has a severity keyword.

    Args:
        lines: the start of a log, each line without its prefix's wrapper (syslog header...).
        limit: how many of the commonest line skeletons to build a candidate from.
        language: the server's ``lc_messages``, whose severity words end the prefix.
    """
    heads = [line for line in lines if line and not line.startswith("\t")]
    headers = [header for line in heads if (header := cut(line, language)) is not None]
    if not headers:
        return None
    connections = _connections(heads)
    by_skeleton: dict[tuple[object, ...], list[int]] = {}
    for index, header in enumerate(headers):
        by_skeleton.setdefault(header.skeleton, []).append(index)
    # The commonest skeletons first; of two as common, the one with fewer values (a name with a
    # space or a bracket in it is cut into more).
    ranked = sorted(by_skeleton.values(), key=lambda members: (-len(members), len(headers[members[0]].values)))
    best: tuple[tuple[int, int, int, int, int, int], Inference] | None = None
    writes = _writes_in_transactions(headers)
    for members in ranked[:limit]:
        template = _Template(headers, members, connections, writes)
        escapes = template.escapes()
        if escapes is None:
            continue
        pieces = template.pieces(escapes)
        # Padding shows only where values of one place differ in length; else try it where the
        # lines need it (an empty value padded to its width on other processes' lines).
        for variant in (pieces, *_padded(pieces, template.lengths(escapes))):
            for candidate in _with_q(variant):
                read, stray, values = _verify(candidate, heads, language)
                score = (read, -stray, -len(template.unsettled), values, -len(_PADDED.findall(candidate)), -len(candidate))
                if best is None or score > best[0]:
                    best = score, Inference(candidate, len(heads), read, tuple(template.unsettled))
            if best is not None and best[0][:3] == (len(heads), 0, 0):  # every line read, nothing in doubt
                return best[1]
    return None if best is None else best[1]


def _with_q(pieces: Sequence[str]) -> Iterator[str]:
    """A format string without ``%q``, then with it at each place it may stand."""
    yield "".join(pieces)
    for cut_at in range(1, len(pieces)):
        if not (pieces[cut_at - 1].isalnum() and pieces[cut_at].isalnum()):  # not inside a word
            yield "".join(pieces[:cut_at]) + "%q" + "".join(pieces[cut_at:])


def _padded(pieces: Sequence[str], lengths: Mapping[str, int]) -> Iterator[list[str]]:
    """The pieces with one escape padded over the spaces next to it (``%9p``, ``%-12u``); then,
    when more than one can be, with every one of them padded (``%-12x,%9u@%-12h``): over the
    spaces after it if there are some (``%-N``), else over those before it."""
    for index in range(len(pieces)):
        for start, end, escape in _paddings(pieces, index, lengths):
            yield [*pieces[:start], escape, *pieces[end:]]
    every = list(pieces)
    padded = 0
    index = len(every) - 1
    while index >= 0:  # from the end: the places before stay put
        options = list(_paddings(every, index, lengths)) if every[index] not in _FIXED_WIDTH else []
        if options:
            start, end, escape = options[-1]  # spaces after it, if any: the usual %-N
            every[start:end] = [escape]
            padded += 1
            index = start
        index -= 1
    if padded > 1:
        yield every


def _paddings(pieces: Sequence[str], index: int, lengths: Mapping[str, int]) -> Iterator[tuple[int, int, str]]:
    """How the escape at ``index`` may be padded over the spaces beside it: (the first and after
    the last piece it takes the place of, the padded escape)."""
    piece = pieces[index]
    if not _PLAIN_ESCAPE.fullmatch(piece) or piece not in lengths:
        return
    before = 0
    while index - before - 1 >= 0 and pieces[index - before - 1] == " ":
        before += 1
    after = 0
    while index + after + 1 < len(pieces) and pieces[index + after + 1] == " ":
        after += 1
    if before:
        yield index - before, index + 1, f"%{lengths[piece] + before}{piece[1:]}"
    if after:
        yield index, index + after + 1, f"%-{lengths[piece] + after}{piece[1:]}"


_PLAIN_ESCAPE = re.compile("%[A-Za-z]")
_PADDED = re.compile("%-?[0-9]+[A-Za-z]")
#: Escapes whose values are all as wide: a space beside them is text, unless the lines say otherwise.
_FIXED_WIDTH = frozenset({"%e", "%m", "%t", "%s"})


@dataclass
class _Template:
    """The lines of one skeleton, value by value: which escape printed each value."""

    headers: Sequence[Header]
    members: Sequence[int]
    connections: dict[str, set[str]] = field(default_factory=dict)  # escape letter -> names seen
    writes_in_transactions: bool = False  # whether lines show BEGIN and writes (then %x is not 0 everywhere)
    unsettled: list[str] = field(default_factory=list)

    def lengths(self, letters: Sequence[str]) -> dict[str, int]:
        """The length of each escape's value on the skeleton's first line, by ``%letter``."""
        first = self.headers[self.members[0]]
        return {f"%{letter}": len(value) for letter, (_, value) in zip(letters, first.values, strict=True) if letter}

    def column(self, index: int) -> list[str]:
        return [self.headers[member].values[index][1] for member in self.members]

    def escapes(self) -> list[str] | None:
        """The escape letter of each value (``""``: literal text after all)."""
        first = self.headers[self.members[0]]
        shapes = [shape for shape, _ in first.values]
        letters: list[str | None] = [None] * len(shapes)
        labelled = [_label(first.literals[index]) for index in range(len(shapes))]
        ports = any(shape is Shape.HOST_PORT for header in self.headers for shape, _ in header.values)
        repeats = self._repeats(shapes)
        for index, shape in enumerate(shapes):
            letters[index] = "" if index in repeats else _by_shape(shape, ports)
        self._tell_seconds(shapes, letters)
        self._tell_hosts(shapes, letters)
        self._tell_numbers(shapes, letters, labelled)
        self._tell_names(first, shapes, letters, labelled)
        for index, earlier in repeats.items():
            letters[index] = letters[earlier]
        if any(letter is None for letter in letters):
            return None
        return [letter or "" for letter in letters]

    def _repeats(self, shapes: Sequence[Shape]) -> dict[int, int]:
        """Values that repeat an earlier one on every line (an escape written twice), by place."""
        repeats: dict[int, int] = {}
        columns = [self.column(index) for index in range(len(shapes))]
        for index, column in enumerate(columns):
            # A user is often its database (postgres@postgres): names repeat an escape only when
            # they vary more than that.
            if len(set(column)) < (4 if shapes[index] is Shape.NAME else 2):
                continue
            earlier = next((e for e in range(index) if e not in repeats and columns[e] == column), None)
            if earlier is not None:
                repeats[index] = earlier
        return repeats

    def pieces(self, letters: Sequence[str]) -> list[str]:
        """The format string in pieces: literal text and escapes (with their padding), each a
        place ``%q`` may go between."""
        first = self.headers[self.members[0]]
        padding = [self._padding(index) for index in range(len(letters))]
        pieces: list[str] = []
        for index, letter in enumerate(letters):
            pieces.extend(_escaped(self._literal(index, padding)))
            if letter == "":
                pieces.append(_escape_percent(Counter(self.column(index)).most_common(1)[0][0]))
            else:
                pieces.append(f"%{padding[index] or ''}{letter}")
        pieces.extend(_escaped(self._literal(len(first.literals) - 1, padding)))
        return [piece for piece in pieces if piece]

    def _padding(self, index: int) -> int:
        """A value's padding, as in ``%-12u`` (negative: spaces after) or ``%9p``, 0 for none
        seen: the value and the spaces on one side fill the same width on every line, and the
        spaces vary (values of one length show no padding)."""
        rows = [self.headers[member] for member in self.members]
        lengths = [len(row.values[index][1]) for row in rows]
        after = [len(row.literals[index + 1]) - len(row.literals[index + 1].lstrip(" ")) for row in rows]
        before = [len(row.literals[index]) - len(row.literals[index].rstrip(" ")) for row in rows]
        for spaces, sign in ((after, -1), (before, 1)):
            widths = {length + count for length, count in zip(lengths, spaces, strict=True)}
            if len(set(spaces)) > 1 and len(widths) == 1:
                return sign * widths.pop()
        return 0

    def _literal(self, index: int, padding: Sequence[int]) -> str:
        """The literal text at one place, without the padding of the values on either side; a
        label with nothing after it (``user=,``: a process without a session) gets its escape back."""
        return _EMPTY_AFTER_LABEL.sub(_label_escape, self._text(index, padding))

    def _text(self, index: int, padding: Sequence[int]) -> str:
        texts = []
        for member in self.members:
            row = self.headers[member]
            text = row.literals[index]
            if index > 0 and padding[index - 1] < 0:  # the value before pads after itself
                fill = -padding[index - 1] - len(row.values[index - 1][1])
                text = text[max(fill, 0) :]
            if index < len(row.values) and padding[index] > 0:  # the value after pads before itself
                fill = padding[index] - len(row.values[index][1])
                text = text[: len(text) - max(fill, 0)]
            texts.append(text)
        return Counter(texts).most_common(1)[0][0]

    def _tell_hosts(self, shapes: Sequence[Shape], letters: list[str | None]) -> None:
        """Two places with a host's shape: one is the client (``%r``, ``%h``), the others the
        server's own address (``%L``, PostgreSQL 18). The client is the ``host=`` (and ``port=``)
        of the ``connection received`` lines; without one, a host with a port is the client."""
        places = [index for index, shape in enumerate(shapes) if shape in _HOST_SHAPES and letters[index]]
        if len(places) < 2:
            return
        received = [
            (found["host"], found["port"]) for member in self.members
            if (found := _RECEIVED.match(self.headers[member].message)) is not None
        ]
        if received:
            clients = [
                index for index in places
                if all(
                    value in (host, f"{host}({port})")
                    for value, (host, port) in zip(self._received_column(index), received, strict=True)
                )
            ]
        else:
            clients = [index for index in places if shapes[index] is Shape.HOST_PORT]
        if len(clients) == 1:
            for index in places:
                if index not in clients:
                    letters[index] = "L"
        else:  # [local] everywhere (unix sockets): another skeleton (TCP clients) may settle it
            self.unsettled.append(f"%{letters[places[0]]} and %L: the same host, told apart by their order only")

    def _received_column(self, index: int) -> list[str]:
        """A place's values on the ``connection received`` lines."""
        return [
            self.headers[member].values[index][1] for member in self.members
            if _RECEIVED.match(self.headers[member].message) is not None
        ]

    def _tell_seconds(self, shapes: Sequence[Shape], letters: list[str | None]) -> None:
        """Timestamps in seconds: a line's time (%t) never goes back much from line to line, a
        process's start (%s) does (the postmaster's start comes back after a session's); of two,
        the session's start varies less."""
        places = [index for index, shape in enumerate(shapes) if shape is Shape.SECONDS and letters[index] == "t"]
        if len(places) == 1:
            column = self.column(places[0])
            # Back by more than a second: two processes' lines may be written a moment out of order.
            times = [parse_timestamp(value) for value in column]
            back = any(
                before is not None and after is not None and (before - after).total_seconds() > 1
                for before, after in pairwise(times)
            )
            letters[places[0]] = "s" if back and len(set(column)) < len(column) / 2 else "t"
            if len(set(column)) == 1:
                self.unsettled.append(f"%{letters[places[0]]}: the same second on every line, %t or %s")
            elif not back:  # a process's start that came in order would read the same
                self.unsettled.append("%t: never goes back, %t or %s")
        elif len(places) == 2:
            first, second = (len(set(self.column(index))) for index in places)
            letters[places[0]], letters[places[1]] = ("s", "t") if second > first else ("t", "s")
            if first == second:
                self.unsettled.append("%t and %s: they vary alike, told apart by their order only")

    def _tell_numbers(self, shapes: Sequence[Shape], letters: list[str | None], labelled: Sequence[str | None]) -> None:
        """Which numbers are the pid, the session's line number, the xid, the query id."""
        places = [index for index, shape in enumerate(shapes) if shape is Shape.NUMBER and letters[index] is None]
        session = next((index for index, letter in enumerate(letters) if letter == "c"), None)
        taken = {letter for letter in letters if letter}
        left = []
        for index in places:
            column = self.column(index)
            letter: str | None = None
            if labelled[index] and labelled[index] not in taken:
                letter = labelled[index]
            elif all(len(value) == 5 for value in column) and any(value.startswith("0") for value in column):
                letter = "e"
            elif session is not None and "p" not in taken and all(
                int(value) == int(pid.split(".")[1], 16) for value, pid in zip(column, self.column(session), strict=True)
            ):
                letter = "p"
            elif len(set(column)) == 1 and len(column[0]) == 1 and column[0] != "0":
                letter = ""  # a digit the same on every line (``[%l-1]``): literal text
            elif any(len(value.lstrip("-")) > 10 or value.startswith("-") for value in column):
                letter = "Q"
            elif set(column) == {"0"}:
                # 0 on every line: a query id without compute_query_id, or an xid where no
                # line shows a write transaction's.
                letter = "Q" if self.writes_in_transactions and "Q" not in taken else "x"
                self.unsettled.append(f"%{letter}: 0 on every line, %x or %Q")
            elif "0" in column:
                letter = "x" if "x" not in taken else "Q"
            if letter is None or letter in taken - {""}:
                left.append(index)
            else:
                letters[index] = letter
                taken.add(letter)
        self._tell_pid_and_line(left, letters, taken)

    def _tell_pid_and_line(self, places: Sequence[int], letters: list[str | None], taken: set[str]) -> None:
        """The numbers left: a session's line number goes up from one line of its pid to the next
        (by one where every line is logged), and starts at 1; a pid stays the same."""
        if len(places) == 2 and not {"p", "l"} & taken:
            first, second = places
            if self._rises_within(first, second) != self._rises_within(second, first):
                line, pid = (first, second) if self._rises_within(first, second) else (second, first)
                letters[line], letters[pid] = "l", "p"
                taken |= {"l", "p"}
                return
        for index in places:
            equal, up = self._steps(index)
            # A line number starts at 1 in each process; a pid is never so small but for a
            # container's postmaster (pid 1).
            lowest = min(int(value) for value in self.column(index))
            wanted = "l" if (up > equal and 1 < lowest <= 3) or (up > equal and lowest == 1 and up > 1) else "p"
            letter = wanted if wanted not in taken else next((x for x in "plxQ" if x not in taken), "")
            letters[index] = letter
            taken.add(letter)

    def _rises_within(self, index: int, key: int) -> bool:
        """Whether a number only goes up from one line to the next line of the same ``key``."""
        last: dict[str, int] = {}
        rises = falls = 0
        for member in self.members:
            values = self.headers[member].values
            number, group = int(values[index][1]), values[key][1]
            if group in last:
                rises += number > last[group]
                falls += number <= last[group]
            last[group] = number
        return rises > 0 and falls == 0

    def _steps(self, index: int) -> tuple[int, int]:
        """From each line to the next of the skeleton: how often the number stays the same, and
        how often it goes up by one."""
        column = [int(value) for value in self.column(index)]
        equal = sum(1 for before, after in pairwise(column) if after == before)
        up = sum(1 for before, after in pairwise(column) if after == before + 1)
        return equal, up

    def _tell_names(
        self, first: Header, shapes: Sequence[Shape], letters: list[str | None], labelled: Sequence[str | None],
    ) -> None:
        """User, database, application, backend type, command tag: by label, by ``user@db``, by
        value, then by order."""
        places = [index for index, shape in enumerate(shapes) if shape is Shape.NAME and letters[index] is None]
        taken = {letter for letter in letters if letter}
        for index in places:  # backend types and command tags are closed sets
            column = self.column(index)
            letter = labelled[index]
            closed = False
            if letter is None or letter in taken:
                letter = None
                if all(_BACKEND_VALUE.match(value) for value in column):
                    letter, closed = "b", True
                elif all(_COMMAND_VALUE.match(value) for value in column):
                    letter, closed = "i", True
            if letter is not None and (closed or letter not in taken):  # a closed set's values: written twice
                letters[index] = letter
                taken.add(letter)
        names = {index for index in places if letters[index] is None}
        for index in sorted(names):
            letter = None
            if first.literals[index + 1].startswith("@") and index + 1 in names:
                letter = "u"
            elif first.literals[index].endswith("@") and index - 1 in names:
                letter = "d"
            if letter is not None and letter not in taken:
                letters[index] = letter
                taken.add(letter)
        left = [index for index in places if letters[index] is None]
        if self.connections and any(self._unheard_of(index) for index in left):
            # A name the connection lines never gave: perhaps one cut in pieces (an application
            # name with spaces), perhaps a session older than the log. Another skeleton may settle it.
            self.unsettled.append("%u, %d and %a: names that no connection line gave")
        self._tell_by_connections(left, letters, taken)
        left = [index for index in left if letters[index] is None]
        if "a" not in taken and (unknown := next((i for i in left if self._unknown_when_authorized(i)), None)) is not None:
            letters[unknown] = "a"
            taken.add("a")
            left.remove(unknown)
        order = [letter for letter in "uda" if letter not in taken]
        if len(left) > 1:
            self.unsettled.append("%u, %d and %a: names told apart by their order only")
        for index in left:
            letters[index] = order.pop(0) if order else None  # more names than escapes: no candidate


    def _unheard_of(self, index: int) -> bool:
        """Whether a value at this place is no name the ``connection authorized`` lines gave."""
        known = set().union(*self.connections.values()) | {"", "[unknown]"}
        return any(value not in known for value in self._names(index))

    def _unknown_when_authorized(self, index: int) -> bool:
        """Whether the place shows ``[unknown]`` on a ``connection authorized`` line: the user and
        database are known by then, the application name is not yet."""
        return any(
            self.headers[member].message.startswith("connection authorized")
            and self.headers[member].values[index][1] == "[unknown]"
            for member in self.members
        )

    def _names(self, index: int) -> set[str]:
        """The names at a place, without the spaces a padded escape (``%9a``) puts around them."""
        return {value.strip(" ") for value in self.column(index)}

    def _tell_by_connections(self, places: Sequence[int], letters: list[str | None], taken: set[str]) -> None:
        """Names told by what ``connection authorized`` lines (``log_connections``) say."""
        known = self.connections
        scores = []
        for index in places:
            values = self._names(index) - {"", "[unknown]"}
            for letter, names in known.items():
                if values and letter not in taken and values <= names:
                    scores.append((len(names), "uda".index(letter), index, letter))
        # The narrowest set first (a user is often also a database), then in the order u, d, a.
        for _, _, index, letter in sorted(scores):
            if letters[index] is None and letter not in taken:
                letters[index] = letter
                taken.add(letter)
        # A name that only one escape gives, already placed with the same values: written twice.
        for index in places:
            values = self._names(index) - {"", "[unknown]"}
            fits = [letter for letter, names in known.items() if values and values <= names]
            twin = next((i for i, letter in enumerate(letters) if fits == [letter] and i != index), None)
            if letters[index] is None and twin is not None and self.column(twin) == self.column(index):
                letters[index] = letters[twin]


#: The escape a value's shape tells by itself (names and numbers take more than their shape).
_ESCAPE_OF_SHAPE = {
    Shape.MILLISECONDS: "m", Shape.SECONDS: "t", Shape.EPOCH: "n", Shape.SESSION: "c", Shape.VXID: "v",
    Shape.SQLSTATE: "e", Shape.HOST_PORT: "r",
}


def _by_shape(shape: Shape, ports: bool) -> str | None:
    """The escape a value's shape tells (``ports``: whether any line shows a host with its port,
    then ``[local]`` is ``%r`` too), None when it takes more than its shape."""
    if shape is Shape.HOST:
        return "r" if ports else "h"
    return _ESCAPE_OF_SHAPE.get(shape)


_HOST_SHAPES = frozenset({Shape.HOST, Shape.HOST_PORT})
_RECEIVED = re.compile(r"connection received: host=(?P<host>\S{1,255}?)(?: port=(?P<port>[0-9]{1,5}))?$")
_AUTHORIZED = re.compile(
    r"connection authorized: user=(?P<u>\S+)(?: database=(?P<d>\S+))?(?: application_name=(?P<a>.+?))?"
    r"(?: \(|$| SSL| GSS)"
)


def _connections(lines: Iterable[str]) -> dict[str, set[str]]:
    """The user, database and application names that ``connection authorized`` lines name."""
    names: dict[str, set[str]] = {"u": set(), "d": set(), "a": set()}
    for line in lines:
        found = _AUTHORIZED.search(line, 0, _PREFIX_WINDOW + 400)
        if found is not None:
            for letter, seen in names.items():
                if found.group(letter):
                    seen.add(found.group(letter))
    return {letter: values for letter, values in names.items() if values}


def shows_a_client_session(lines: Iterable[str], language: Language = ENGLISH) -> bool:
    """Whether the lines hold one a client's backend wrote (a ``statement:``, ``duration:``,
    ``execute`` or ``connection authorized`` line, a STATEMENT), in the server's language: a
    prefix worked out from lines that hold none may stop where ``%q`` stands (the postmaster's and
    background processes' lines)."""
    marks = _client_marks(language)
    return any(mark in line[: _PREFIX_WINDOW + 400] for line in lines for mark in marks)


@cache
def _client_marks(language: Language) -> tuple[str, ...]:
    """Texts only a client's backend's lines hold, in ``language`` and in English (a server
    prints some lines before it reads ``lc_messages``)."""
    marks = {"LOG:  connection authorized: ", "STATEMENT:  "}
    for speaks in {language, ENGLISH}:
        words = {speaks.severity_word("LOG"), speaks.severity_word("ERROR")}
        heads = [speaks.format(msgid).head for msgid in (msgids.STATEMENT, msgids.DURATION, msgids.EXECUTE)]
        marks |= {f"{word}:  {head}" for word in words for head in heads if head}
        marks.add(speaks.text(msgids.LABELS["STATEMENT"]))
    return tuple(sorted(marks))


_WRITE = re.compile(r"(?i)(?:statement|execute [^:]{1,200}): \s*(?:insert|update|delete|create|alter)\b")
_BEGIN = re.compile(r"(?i)(?:statement|execute [^:]{1,200}): \s*(?:begin|start transaction)\b")


def _writes_in_transactions(headers: Sequence[Header]) -> bool:
    """Whether the lines show a transaction begun and a write after it."""
    begun = False
    for header in headers:
        message = header.message
        begun = begun or _BEGIN.match(message) is not None
        if begun and _WRITE.match(message):
            return True
    return False


_EMPTY_AFTER_LABEL = re.compile(r"(?<![A-Za-z_])([A-Za-z_]+)=(?=[\s,;|\]])")


def _label_escape(found: re.Match[str]) -> str:
    letter = _LABEL_OF.get(found.group(1).lower())
    return found.group() + ("\0" + letter if letter in _FREE_TEXT else "")


def _label(literal: str) -> str | None:
    found = _LABEL_BEFORE.search(literal)
    return _LABEL_OF.get(found.group(1).lower()) if found else None


def _escaped(literal: str) -> list[str]:
    """Literal text as pieces of a format string, a character each (``%q`` may stand between); an
    escape given back to an empty label comes marked by a NUL."""
    return [
        "%" + piece[1:] if piece.startswith("\0") else _escape_percent(piece)
        for piece in re.findall(r"\0.|.", literal, re.DOTALL)
    ]


def _escape_percent(text: str) -> str:
    return text.replace("%", "%%")


def _verify(candidate: str, heads: Sequence[str], language: Language = ENGLISH) -> tuple[int, int, int]:
    """How many lines a candidate reads, how many of its values hold the literal text that
    should follow them (a sign that ``%q`` or a name swallowed it), and how many values it finds."""
    prefix = LinePrefix(candidate, language=language)
    anchors = _anchors(candidate)
    letters = prefix.groups
    read = stray = values = 0
    for line in heads:
        found = prefix.regex.match(line, 0, _PREFIX_WINDOW)
        if found is None:
            continue
        read += 1
        for name, value in found.groupdict().items():
            letter = letters.get(name)
            if letter is not None and value:
                values += 1
                shape = _STRICT_SHAPES.get(letter)
                stray += (letter in anchors and anchors[letter] in value.strip() and value.strip() not in _WHOLE) or (
                    shape is not None and shape.fullmatch(value.strip()) is None
                )
    return read, stray, values


#: The values that have one shape: a capture of another shape has taken literal text with it.
_STRICT_SHAPES = {
    "m": re.compile(_DATE_TIME + r"\.[0-9]{3}" + _ZONE),
    "t": re.compile(_DATE_TIME + _ZONE),
    "s": re.compile(_DATE_TIME + _ZONE),
    "n": re.compile(r"[0-9]{10}\.[0-9]{3}"),
}
_WHOLE = frozenset({"[unknown]", "[local]", "[none]"})  # values printed whole, brackets and all
_FREE_TEXT = frozenset("udahbirL")  # escapes whose values a lazy pattern may stretch over literal text


def _anchors(candidate: str) -> dict[str, str]:
    """The first character of literal text after each escape (``%q`` and spaces passed over)."""
    anchors: dict[str, str] = {}
    for escape in re.finditer(r"%-?[0-9]*([A-Za-z])", candidate):
        rest = re.sub(r"%q| ", "", candidate[escape.end() :]).replace("%%", "\0")
        if rest and rest[0] != "%" and escape.group(1) in _FREE_TEXT:
            anchors.setdefault(escape.group(1), rest[0].replace("\0", "%"))
    return anchors


def find_prefix(lines: Sequence[str], language: Language = ENGLISH) -> Inference | None:
    """The ``log_line_prefix`` that reads the most of ``lines`` (TAB continuations aside), or None
    when none reads half of them: worked out from the lines (:func:`infer_prefix`); a well-known prefix
    is taken only where it reads more lines than the one worked out."""
    heads = [line for line in lines if line and not line.startswith("\t")][:SAMPLE_LINES]
    if not heads:
        return None
    found = infer_prefix(heads, language=language)
    known = best_known(heads, language=language)
    if known is not None and (found is None or known.read > found.read):
        found = known
    if found is None or found.read * 2 < len(heads):
        return None
    return found


def best_known(
    heads: Sequence[str], candidates: Sequence[str] = KNOWN_PREFIXES, language: Language = ENGLISH
) -> Inference | None:
    """The well-known prefix that reads the most lines: of those that read as many, the one that
    captures the most values, then the earlier (``%m [%p] `` before ``%m [%p] %q%u@%d `` on lines
    without user and database)."""
    best: tuple[int, int, int] | None = None
    best_candidate = ""
    for position, candidate in enumerate(candidates):
        prefix = LinePrefix(candidate, strict=True, language=language)
        matched = values = 0
        for line in heads:
            found = prefix.match(line)
            if found is not None:
                matched += 1
                values += sum(1 for v in astuple(found.fields) if v is not None)
        score = (matched, values, -position)
        if matched and (best is None or score > best):
            best, best_candidate = score, candidate
    return None if best is None else Inference(best_candidate, len(heads), best[0])
