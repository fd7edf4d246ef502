"""What the server says about locks: a deadlock's DETAIL (its cycle and each process's query)
and the ``log_lock_waits`` lines, in every language the server ships (issue 28).

A deadlock is reported by the process that found it (deadlock.c ``DeadLockReport``)::

    ERROR:  deadlock detected
    DETAIL:  Process 7412 waits for ShareLock on transaction 726; blocked by process 7416.
            Process 7416 waits for ShareLock on transaction 725; blocked by process 7412.
            Process 7412: update acct set bal=bal+1 where id=2;
            Process 7416: update acct set bal=bal+1 where id=1;

Everything here is read with plain string searches (:class:`~logdiag.lang.CFormat`), never a
regular expression: the DETAIL holds queries a client wrote, up to ``track_activity_query_size``
each, and one line may be 10 MB.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from logdiag.lang import LANGUAGES, CFormat, Language, all_formats, msgids


class LockKind(str, Enum):
    """What a lock is taken on (lmgr.c ``DescribeLockTag``), as far as logdiag reads it."""

    TRANSACTION = "transaction"  # a row another transaction wrote or locked: wait for it to end
    TUPLE = "tuple"  # a row, while another waiter is ahead in line for it
    RELATION = "relation"  # a table (LOCK TABLE, DDL)
    ADVISORY = "advisory"  # pg_advisory_lock() and friends
    OTHER = "other"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class LockObject:
    """A lock's object as the server names it (``transaction 726``, ``tuple (0,1) of relation
    16384 of database 5``...).

    Attributes:
        text: the server's words, as printed.
        kind: which kind of object.
        xid: for ``transaction N``, N: the holder is the process whose transaction that is.
        relation: the table's OID (for ``tuple`` and ``relation``); the log never names it.
        row: the row's (block, offset), for ``tuple``.
        advisory: the advisory lock's ``[database, key1, key2, field4]`` (field4: 1 for one
            bigint key, 2 for two int4 keys).
    """

    text: str
    kind: LockKind
    xid: int | None = None
    relation: int | None = None
    row: tuple[int, int] | None = None
    advisory: tuple[int, int, int, int] | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    """One line of the cycle: ``Process pid waits for mode on object; blocked by process blocked_by.``"""

    pid: int
    mode: str
    object: LockObject
    blocked_by: int


@dataclass(frozen=True, slots=True)
class Deadlock:
    """A deadlock's DETAIL, read.

    Attributes:
        edges: the cycle, in the server's order (the first process is the one that found it).
        queries: each process's query as ``pg_stat_activity`` had it (cut at
            ``track_activity_query_size``); only in the server log's DETAIL, not the client's.
    """

    edges: tuple[Edge, ...]
    queries: dict[int, str]

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(edge.pid for edge in self.edges)


def _languages_with(msgid: str) -> list[Language]:
    """English first, then each language that prints ``msgid`` its own way."""
    seen: set[str] = set()
    out: list[Language] = []
    for language in LANGUAGES.values():
        text = language.text(msgid)
        if text not in seen:
            seen.add(text)
            out.append(language)
    return out


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def lock_object(text: str, language: Language | None = None) -> LockObject:
    """Read a lock's object as ``DescribeLockTag`` words it (in ``language``, else any).

    >>> lock_object("tuple (0,1) of relation 16384 of database 5")
    LockObject(text='tuple (0,1) of relation 16384 of database 5', kind=<LockKind.TUPLE: 'tuple'>, xid=None, relation=16384, row=(0, 1), advisory=None)
    >>> lock_object("advisory lock [5,0,42,1]").advisory
    (5, 0, 42, 1)
    """
    languages = [language] if language is not None else list(LANGUAGES.values())
    for lang in languages:
        found = lang.format(msgids.LOCK_TRANSACTION).match(text)
        if found is not None and (xid := _number(found[0])) is not None:
            return LockObject(text, LockKind.TRANSACTION, xid=xid)
        found = lang.format(msgids.LOCK_TUPLE).match(text)
        if found is not None and all(v.isdigit() for v in found):
            block, offset, relation, _ = (int(v) for v in found)
            return LockObject(text, LockKind.TUPLE, relation=relation, row=(block, offset))
        found = lang.format(msgids.LOCK_RELATION).match(text)
        if found is not None and all(v.isdigit() for v in found):
            return LockObject(text, LockKind.RELATION, relation=int(found[0]))
        found = lang.format(msgids.LOCK_ADVISORY).match(text)
        if found is not None and all(v.isdigit() for v in found):
            a, b, c, d = (int(v) for v in found)
            return LockObject(text, LockKind.ADVISORY, advisory=(a, b, c, d))
    return LockObject(text, LockKind.OTHER)


def parse_deadlock(detail: str | None) -> Deadlock | None:
    """The cycle and the queries of a deadlock's DETAIL (the server log's, with the queries), in
    any language; None when the DETAIL is no deadlock's.

    A query may hold newlines: it runs to the line that starts the next process's query, whose
    pid the cycle says in advance.

    >>> d = parse_deadlock("Process 1 waits for ShareLock on transaction 9; blocked by process 2.\\n"
    ...     "Process 2 waits for ShareLock on transaction 8; blocked by process 1.\\n"
    ...     "Process 1: update t set a = 1\\nwhere id = 2;\\nProcess 2: update t set a = 1 where id = 1;")
    >>> [(e.pid, e.object.xid, e.blocked_by) for e in d.edges], d.queries[1]
    ([(1, 9, 2), (2, 8, 1)], 'update t set a = 1\\nwhere id = 2;')
    """
    if not detail:
        return None
    end = detail.find("\n")
    first = detail if end < 0 else detail[:end]
    languages = [lang for lang in _languages_with(msgids.DEADLOCK_PROCESS)
                 if lang.format(msgids.DEADLOCK_PROCESS).match(first) is not None]
    if not languages:  # the usual case, an error of another kind: the rest is not even split
        return None
    lines = [line.removeprefix("\t") for line in detail.split("\n")]
    for language in languages:
        edge_format = language.format(msgids.DEADLOCK_PROCESS)
        edges: list[Edge] = []
        for line in lines:
            found = edge_format.match(line)
            if found is None:
                break
            pid, blocked_by = _number(found[0]), _number(found[3])
            if pid is None or blocked_by is None:
                break
            edges.append(Edge(pid, found[1], lock_object(found[2]), blocked_by))  # a catalog may word one but not the other
        if edges:
            rest = lines[len(edges) :]
            # A catalog may translate the cycle's line and not the query's, or the other way round.
            forms = [language.format(msgids.DEADLOCK_QUERY), *all_formats(msgids.DEADLOCK_QUERY)]
            form = next((f for f in forms if rest and len(f.literals) == 3 and f.positions == (0, 1)
                         and rest[0].startswith(f.literals[0] + str(edges[0].pid) + f.literals[1])), None)
            return Deadlock(tuple(edges), _queries(rest, edges, form) if form is not None else {})
    return None


def _queries(lines: list[str], edges: list[Edge], query_format: CFormat) -> dict[int, str]:
    """``Process N: query`` for each process of the cycle, in its order; a query's other lines
    are the lines up to the next process's."""
    heads = [query_format.literals[0] + str(edge.pid) + query_format.literals[1] for edge in edges]
    queries: dict[int, str] = {}
    current: int | None = None
    body: list[str] = []
    expected = 0
    for line in lines:
        if expected < len(heads) and line.startswith(heads[expected]):
            if current is not None:
                queries[current] = "\n".join(body)
            current, body = edges[expected].pid, [line[len(heads[expected]) :]]
            expected += 1
        elif current is not None:
            body.append(line)
    if current is not None:
        queries[current] = "\n".join(body)
    return queries


class WaitEvent(str, Enum):
    """What a ``log_lock_waits`` line says happened."""

    STILL_WAITING = "still waiting"
    ACQUIRED = "acquired"
    DEADLOCK = "detected deadlock"

    def __str__(self) -> str:
        return self.value


_WAIT_MSGIDS = (
    (msgids.LOCK_STILL_WAITING, WaitEvent.STILL_WAITING),
    (msgids.LOCK_ACQUIRED, WaitEvent.ACQUIRED),
    (msgids.LOCK_DEADLOCK_WAITING, WaitEvent.DEADLOCK),
)
#: Each language's formats of the lock-wait lines, with what they say; a cheap test first: the
#: text of each format before its first conversion.
_WAIT_FORMATS = tuple(dict.fromkeys(
    (language.format(msgid), event) for msgid, event in _WAIT_MSGIDS for language in LANGUAGES.values()
))
WAIT_HEADS = tuple(sorted({form.head for form, _ in _WAIT_FORMATS}))


@dataclass(frozen=True, slots=True)
class LockWait:
    """A ``log_lock_waits`` line: ``process 7416 still waiting for ShareLock on transaction 725
    after 200.105 ms``."""

    event: WaitEvent
    pid: int
    mode: str
    object: LockObject
    milliseconds: float


def parse_lock_wait(message: str | None) -> LockWait | None:
    """A lock-wait LOG line's message, read; None for any other message.

    >>> w = parse_lock_wait("process 7416 acquired ShareLock on transaction 725 after 687.808 ms")
    >>> w.event, w.pid, w.object.xid, w.milliseconds
    (<WaitEvent.ACQUIRED: 'acquired'>, 7416, 725, 687.808)
    """
    if not message or not message.startswith(WAIT_HEADS):
        return None
    for form, event in _WAIT_FORMATS:
        found = form.match(message)
        if found is None:
            continue
        pid, whole, fraction = _number(found[0]), _number(found[3]), _number(found[4])
        if pid is None or whole is None or fraction is None:
            continue
        return LockWait(event, pid, found[1], lock_object(found[2]), whole + fraction / 1000)
    return None


def context_relation(context: str | None) -> str | None:
    """The table a row wait's CONTEXT names (``while updating tuple (0,2) in relation "acct"``),
    in any language; None for any other CONTEXT.

    >>> context_relation('while locking tuple (0,1) in relation "dl_item"')
    'dl_item'
    """
    if not context:
        return None
    first = context.split("\n", 1)[0]
    for msgid in msgids.LOCK_CONTEXTS:
        for form in all_formats(msgid):
            found = form.match(first)
            if found is not None and len(found) == 3:
                return found[2]
    return None
