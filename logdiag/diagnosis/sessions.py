"""Sessions and transactions: which earlier statements belong with an error.

:class:`SessionTracker` takes records in log order. It keeps, per session, the statements of the
open transaction (capped in count and bytes, with what was dropped counted), follows savepoints,
and yields a :class:`Failure` for every ERROR: the error with the statements of its transaction.

Sessions are keyed by session id when the log has one (csvlog, jsonlog, ``%c``), else by pid,
split at connection and disconnection lines. Transactions are keyed by virtual transaction id when
logged, else inferred from BEGIN/COMMIT/ROLLBACK statements; with ``log_statement = 'mod'`` those
are not logged, and a transaction becomes "the statements since the previous error or COMMIT".
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from logdiag.diagnosis.catalog import DdlLog, DdlView
from logdiag.diagnosis.locks import Deadlock, parse_deadlock, parse_lock_wait
from logdiag.diagnosis.messages import is_set_constraints_outside_transaction
from logdiag.diagnosis.statements import (
    CHECKS_DEFERRED,
    ENDS_TRANSACTION,
    Control,
    LoggedStatement,
    bind_of,
    checks_switch,
    statement_of,
)
from logdiag.lang import LANGUAGES, msgids
from logdiag.records import LogRecord, Severity

#: ``connection received:`` and ``disconnection:`` as the server prints them, in every language.
_CONNECTION_RECEIVED = tuple(sorted({
    language.format(msgid).head for language in LANGUAGES.values()
    for msgid in (msgids.CONNECTION_RECEIVED, msgids.CONNECTION_RECEIVED_LOCAL)
}))
_DISCONNECTION = tuple(sorted({language.format(msgids.DISCONNECTION).head for language in LANGUAGES.values()}))
_SETS = frozenset({Control.SET_CONSTRAINTS_DEFERRED, Control.SET_CONSTRAINTS_IMMEDIATE})

MAX_STATEMENTS = 5_000  # per transaction
MAX_BYTES = 16 * 1024 * 1024  # of statement text per transaction
MAX_SESSIONS = 10_000
MAX_DDL = 2_000
IDLE_TIMEOUT = 3600.0  # seconds of log time without a record before a session is dropped
_SWEEP_EVERY = 10_000  # records between idle sweeps
_REMEMBERED_EVICTIONS = 100_000
MAX_WINDOW_WRITES = 5_000  # writes kept per window of switched-off checks
MAX_WINDOWS = 8  # windows of switched-off checks kept per session, latest
MAX_LOCK_WAITS = 16  # log_lock_waits lines kept per transaction, latest


@dataclass(slots=True)
class Entry:
    """A statement of a transaction, and what later happened to it.

    Attributes:
        statement: the logged statement.
        undone_by: the ROLLBACK TO SAVEPOINT that undid it, if any.
        failed: the statement itself raised an error (so it wrote nothing).
    """

    statement: LoggedStatement
    undone_by: LoggedStatement | None = None
    failed: bool = False


@dataclass(slots=True)
class Transaction:
    """The statements of one transaction, as far as the log shows them."""

    vxid: str | None = None
    explicit: bool = False  # began with BEGIN (or a chained COMMIT)
    ending: bool = False  # its COMMIT/ROLLBACK/PREPARE was logged
    entries: deque[Entry] = field(default_factory=deque)
    savepoints: list[tuple[str | None, int]] = field(default_factory=list)  # (name, len(entries))
    dropped: int = 0
    size: int = 0
    xid: int | None = None
    #: it ended in ROLLBACK, or an error aborted it (until a ROLLBACK TO SAVEPOINT): its writes are undone
    rolled_back: bool = False
    max_statements: int = MAX_STATEMENTS
    max_bytes: int = MAX_BYTES
    #: its log_lock_waits lines (``still waiting``, ``detected deadlock``), latest last (issue 28)
    lock_waits: deque[LogRecord] = field(default_factory=lambda: deque(maxlen=MAX_LOCK_WAITS))

    def add(self, statement: LoggedStatement) -> int:
        """Append a statement; return how many old ones the caps made it drop."""
        self.entries.append(Entry(statement))
        self.size += len(statement.text)
        dropped = 0
        while len(self.entries) > self.max_statements or (self.size > self.max_bytes and len(self.entries) > 1):
            removed = self.entries.popleft()
            self.size -= len(removed.statement.text)
            dropped += 1
            self.savepoints = [(name, max(0, at - 1)) for name, at in self.savepoints]
        self.dropped += dropped
        return dropped

    def savepoint(self, name: str | None) -> None:
        self.savepoints.append((name, len(self.entries)))

    def release(self, name: str | None) -> None:
        for position in range(len(self.savepoints) - 1, -1, -1):
            if self.savepoints[position][0] == name:
                del self.savepoints[position:]
                return

    def rollback_to(self, name: str | None, statement: LoggedStatement) -> None:
        for position in range(len(self.savepoints) - 1, -1, -1):
            if self.savepoints[position][0] == name:
                start = self.savepoints[position][1]
                del self.savepoints[position + 1 :]
                for index in range(start, len(self.entries)):
                    entry = self.entries[index]
                    if entry.undone_by is None:
                        entry.undone_by = statement
                return


@dataclass(slots=True)
class Session:
    """One database session and its open transaction."""

    key: object
    pid: int | None
    session_id: str | None
    user: str | None = None
    database: str | None = None
    application: str | None = None
    client: str | None = None
    transaction: Transaction = field(default_factory=Transaction)
    chained: bool = False
    last_seen: datetime | None = None
    first_line: tuple[str, int] | None = None  # (file, line) of the first record the tracker saw
    history_lost: bool = False  # an earlier session with this key was evicted
    #: a SET CONSTRAINTS run outside a transaction block (WARNING 25P01: it did nothing), until
    #: the session's next error takes it (issue 26)
    ignored_set: IgnoredSet | None = None
    #: the windows in which this session switched foreign-key checks off, latest last (issue 26)
    windows: deque[_Window] = field(default_factory=lambda: deque(maxlen=MAX_WINDOWS))
    #: the last bind record (log_min_duration_statement), until the execute of its statement
    last_bind: LoggedStatement | None = None

    def identity(self) -> Session:
        """A snapshot of who the session is, without its transactions."""
        return Session(self.key, self.pid, self.session_id, self.user, self.database, self.application, self.client)

    def learn(self, record: LogRecord) -> None:
        self.user = record.user or self.user
        self.database = record.database or self.database
        self.application = record.application or self.application
        self.client = record.client or self.client


@dataclass(frozen=True, slots=True)
class IgnoredSet:
    """``SET CONSTRAINTS`` outside a transaction block: the server's WARNING and the statement the
    log showed just before it in the session (None when it did not log it)."""

    warning: LogRecord
    statement: LoggedStatement | None


@dataclass(frozen=True, slots=True)
class ChecksWindow:
    """Foreign-key checks switched off in a session (issue 26): by ``start``
    (``SET session_replication_role = replica`` or ``ALTER TABLE t DISABLE TRIGGER ALL``) until
    ``end`` (the role reset, ``ENABLE TRIGGER ALL``; None: still off, or until the session ended).

    Attributes:
        table: the table whose triggers were disabled; None for the replication role (every table).
        writes: the statements of the session in the window that may have written rows and were
            not undone (their transaction committed, as far as the log tells), oldest first.
        dropped: writes of the window left out by the cap (:data:`MAX_WINDOW_WRITES`), the oldest.
        undone: writes of the window the log shows undone (rolled back, failed), not in ``writes``.
    """

    start: LoggedStatement
    table: str | None
    end: LoggedStatement | None
    writes: tuple[LoggedStatement, ...]
    dropped: int = 0
    undone: int = 0


@dataclass(slots=True)
class _Window:
    """An open (or closed) window of a session, as the tracker fills it."""

    start: LoggedStatement
    table: str | None
    end: LoggedStatement | None = None
    writes: deque[tuple[Entry, Transaction]] = field(default_factory=lambda: deque(maxlen=MAX_WINDOW_WRITES))
    seen: int = 0

    def holds(self, statement: LoggedStatement) -> bool:
        """Whether a write of the session falls in the window, by its place in the log: a
        pre-filter's look-back hands a session's held lines on after the DDL lines it passes at
        once (ENABLE TRIGGER ALL may come before the writes it ends)."""
        where, start = statement.record.source, self.start.record.source
        if where.file == start.file and where.line < start.line:
            return False
        if self.end is None:
            return True
        end = self.end.record.source
        return where.file == end.file and where.line < end.line

    def snapshot(self) -> ChecksWindow:
        kept = tuple(
            entry.statement for entry, transaction in self.writes
            if not entry.failed and entry.undone_by is None and not transaction.rolled_back
        )
        return ChecksWindow(self.start, self.table, self.end, kept, self.seen - len(self.writes),
                            len(self.writes) - len(kept))


@dataclass(frozen=True, slots=True)
class Peer:
    """Another process's session and open transaction, when an error names that process (the
    other processes of a deadlock's cycle, issue 28).

    Attributes:
        pid: the process.
        session: its session (a snapshot of its identity).
        entries: its open transaction's statements so far, oldest first.
        vxid, xid: that transaction's ids, when logged.
        lock_waits: that transaction's ``log_lock_waits`` lines so far.
        dropped: statements of it dropped by the memory cap.
        history_lost: earlier records of the session were dropped.
    """

    pid: int
    session: Session
    entries: tuple[Entry, ...]
    vxid: str | None
    xid: int | None
    lock_waits: tuple[LogRecord, ...] = ()
    dropped: int = 0
    history_lost: bool = False


@dataclass(frozen=True, slots=True)
class Failure:
    """An ERROR with what the log says of its session and transaction.

    Attributes:
        record: the ERROR record.
        session: the session (a snapshot of its identity).
        entries: the transaction's statements before the error, oldest first.
        dropped: statements of the transaction dropped by the memory cap.
        by_vxid: the transaction was told by its virtual transaction id.
        boundaries_seen: BEGIN/COMMIT statements appear in this log (``log_statement = 'all'``).
        explicit: the transaction began with BEGIN.
        ddl: CREATE/ALTER TABLE statements seen so far in the log.
        history_lost: this session's earlier records were dropped (session cap, idle timeout or look-back).
        keyless: the log tells no session (a ``log_line_prefix`` without %p or %c).
        ignored_set: a SET CONSTRAINTS of the session outside a transaction block since its
            previous error, which had no effect.
        checks_windows: the windows in which the session had switched foreign-key checks off
            before the error, oldest first.
        statements_seen: the log shows statements being run (``statement:``, ``duration:`` or
            ``execute`` records), so statement logging is not off.
        deadlock: for a deadlock's ERROR, its DETAIL read (issue 28).
        lock_waits: the transaction's ``log_lock_waits`` lines before the error.
        peers: for a deadlock, the open transaction of each other process of its cycle that
            the log shows, at the moment of the error.
        lost_pids: for a deadlock, the other processes of its cycle whose sessions the tracker
            had dropped (session cap, idle timeout or look-back) and so no peer stands for.
    """

    record: LogRecord
    session: Session
    entries: tuple[Entry, ...]
    dropped: int
    by_vxid: bool
    boundaries_seen: bool
    explicit: bool
    ddl: DdlView | tuple[LoggedStatement, ...] = ()
    history_lost: bool = False
    keyless: bool = False
    ignored_set: IgnoredSet | None = None
    checks_windows: tuple[ChecksWindow, ...] = ()
    statements_seen: bool = False
    deadlock: Deadlock | None = None
    lock_waits: tuple[LogRecord, ...] = ()
    peers: tuple[Peer, ...] = ()
    lost_pids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """A window of switched-off foreign-key checks whose session is over (it disconnected,
    was dropped, or the input ended): reported on its own, whether or not an error followed it.

    Attributes:
        session: the session (a snapshot of its identity).
        window: the window, its writes as they stood when the session ended.
        ddl: CREATE/ALTER TABLE statements seen in the log by then (the foreign keys of the
            tables written in the window, for the query that lists their orphans).
    """

    session: Session
    window: ChecksWindow
    ddl: DdlView


@dataclass(slots=True)
class TrackerStats:
    """Counts the report shows."""

    records: int = 0
    sessions: int = 0
    transactions: int = 0
    evicted_sessions: int = 0  # by the cap on open sessions
    idle_sessions: int = 0  # by the idle timeout
    dropped_statements: int = 0


class SessionTracker:
    """Follow sessions and transactions through a stream of records.

    Args:
        max_sessions: open sessions kept; the least recently active is evicted (and counted).
        max_statements: statements kept per transaction; the oldest are dropped (and counted).
        max_bytes: statement text kept per transaction.
        idle_timeout: seconds (of log time) without a record after which a session is dropped.
    """

    def __init__(
        self,
        max_sessions: int = MAX_SESSIONS,
        max_statements: int = MAX_STATEMENTS,
        max_bytes: int = MAX_BYTES,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.max_sessions = max_sessions
        self.max_statements = max_statements
        self.max_bytes = max_bytes
        self.idle_timeout = timedelta(seconds=idle_timeout)
        self._evicted: OrderedDict[object, None] = OrderedDict()
        self._latest: datetime | None = None
        self.sessions: OrderedDict[object, Session] = OrderedDict()
        self.stats = TrackerStats()
        self.boundaries_seen = False
        self.statements_seen = False
        self.ddl = DdlLog(MAX_DDL)
        #: windows of switched-off checks whose sessions are over, until the caller takes them
        self.closed_windows: list[ClosedWindow] = []

    def take_closed_windows(self) -> list[ClosedWindow]:
        """Hand over the windows closed since the last call (see :class:`ClosedWindow`)."""
        taken, self.closed_windows = self.closed_windows, []
        return taken

    def finish(self) -> None:
        """The input is over: the windows of the sessions still open are closed as they stand."""
        for session in self.sessions.values():
            self._close_windows(session)

    def feed(self, record: LogRecord) -> Iterator[Failure]:
        """Take one record; yield a :class:`Failure` if it is an ERROR."""
        self.stats.records += 1
        if record.timestamp is not None and (self._latest is None or record.timestamp > self._latest):
            self._latest = record.timestamp
        if self.stats.records % _SWEEP_EVERY == 0:
            self._sweep_idle()
        if record.pid is None and record.session_id is None:
            # No %p or %c: nothing ties this record to others; an error is still reported, alone.
            if record.severity is Severity.ERROR:
                alone = Session(("record", self.stats.records), None, None)
                alone.transaction = Transaction(max_statements=self.max_statements, max_bytes=self.max_bytes)
                alone.learn(record)
                yield replace(self._failure(alone, record), keyless=True)
            return
        message = record.message or ""
        if record.severity is Severity.LOG and message.startswith(_CONNECTION_RECEIVED) \
                and not self._started_before(record):
            self._end_session(record)
        session = self._session(record)
        session.learn(record)
        if record.severity is Severity.ERROR:
            yield self._failure(session, record)
        elif record.severity is Severity.LOG:
            statement = statement_of(record)
            if statement is not None:
                bound = session.last_bind
                if bound is not None and statement.prepared_name is not None and bound.text == statement.text:
                    statement = replace(statement, bind=bound)
                session.last_bind = None
                self._statement(session, statement)
            elif message.startswith(_DISCONNECTION):
                self._end_session(record)
            elif (bound := bind_of(record)) is not None:
                session.last_bind = bound
            elif parse_lock_wait(message) is not None:
                session.transaction.lock_waits.append(record)
        elif record.severity in (Severity.FATAL, Severity.PANIC):
            self._end_session(record)
        elif record.severity is Severity.WARNING and is_set_constraints_outside_transaction(message, record.sqlstate):
            # The SET is logged before its WARNING by log_statement, after it by a duration line.
            entries = session.transaction.entries
            last = entries[-1].statement if entries else None
            shown = last if last is not None and last.control is not None and last.control.kind in _SETS else None
            session.ignored_set = IgnoredSet(record, shown)
            if shown is not None and record.vxid is None:
                # Outside a block the SET was a transaction of its own: what follows is another.
                self._new_transaction(session, None, explicit=False)

    # --- sessions -------------------------------------------------------------------------

    @staticmethod
    def _key(record: LogRecord) -> object:
        return record.session_id if record.session_id is not None else ("pid", record.pid)

    def _session(self, record: LogRecord) -> Session:
        key = self._key(record)
        session = self.sessions.get(key)
        if session is None:
            session = Session(key, record.pid, record.session_id)
            session.transaction = Transaction(max_statements=self.max_statements, max_bytes=self.max_bytes)
            session.history_lost = key in self._evicted
            session.first_line = (record.source.file, record.source.line)
            self._evicted.pop(key, None)
            self.sessions[key] = session
            self.stats.sessions += 1
            self.stats.transactions += 1
            if len(self.sessions) > self.max_sessions:
                self._forget(*self.sessions.popitem(last=False))
                self.stats.evicted_sessions += 1
        else:
            self.sessions.move_to_end(key)
        session.last_seen = record.timestamp or session.last_seen
        return session

    def _started_before(self, record: LogRecord) -> bool:
        """Whether this connection line is the start of the session already seen, come after
        some of its lines: the live pre-filter passes DDL lines at once and hands a session's
        other lines on later (an ALTER TABLE ... DISABLE TRIGGER ALL before its connection line)."""
        session = self.sessions.get(self._key(record))
        first = None if session is None else session.first_line
        return first is not None and first[0] == record.source.file and record.source.line < first[1]

    def _forget(self, key: object, session: Session) -> None:
        """Drop a session that did not end, remembering its key so that a later error can say so."""
        self._close_windows(session)
        self.stats.dropped_statements += len(session.transaction.entries)
        self._evicted[key] = None
        if len(self._evicted) > _REMEMBERED_EVICTIONS:
            self._evicted.popitem(last=False)

    def forget(self, session_id: str | None = None, pid: int | None = None) -> None:
        """Records of this session were dropped before it reached the tracker (the live
        pre-filter's look-back): its next error says its history is incomplete."""
        key = session_id if session_id is not None else ("pid", pid)
        session = self.sessions.get(key)
        if session is not None:
            session.history_lost = True
            return
        self._evicted[key] = None
        self._evicted.move_to_end(key)
        if len(self._evicted) > _REMEMBERED_EVICTIONS:
            self._evicted.popitem(last=False)

    def _sweep_idle(self) -> None:
        """Drop sessions that have been silent for ``idle_timeout`` of log time (oldest first)."""
        if self._latest is None:
            return
        cutoff = self._latest - self.idle_timeout
        while self.sessions:
            key, session = next(iter(self.sessions.items()))
            if session.last_seen is None or session.last_seen >= cutoff:
                return
            del self.sessions[key]
            self._forget(key, session)
            self.stats.idle_sessions += 1

    def _end_session(self, record: LogRecord) -> None:
        session = self.sessions.pop(self._key(record), None)
        if session is not None and session.windows:
            current = session.transaction
            if current.explicit and not current.ending:
                current.rolled_back = True  # a transaction block still open when its session ends is rolled back
            self._close_windows(session)

    def _close_windows(self, session: Session) -> None:
        if not session.windows:
            return
        identity, view = session.identity(), self.ddl.view()
        self.closed_windows.extend(ClosedWindow(identity, window.snapshot(), view) for window in session.windows)
        session.windows.clear()

    # --- transactions ---------------------------------------------------------------------

    def _new_transaction(self, session: Session, vxid: str | None, explicit: bool) -> Transaction:
        session.transaction = Transaction(
            vxid=vxid, explicit=explicit, max_statements=self.max_statements, max_bytes=self.max_bytes
        )
        self.stats.transactions += 1
        return session.transaction

    def _statement(self, session: Session, statement: LoggedStatement) -> None:
        record = statement.record
        control = statement.control.kind if statement.control else None
        self.statements_seen = True
        if control in (Control.BEGIN, Control.COMMIT, Control.ROLLBACK, Control.COMMIT_AND_CHAIN):
            self.boundaries_seen = True
        if statement.is_ddl:
            self.ddl.append(statement)
        current = session.transaction
        vxid = record.vxid
        if vxid is not None:
            # log_min_duration_statement logs a COMMIT or ROLLBACK once its transaction is over,
            # with the local id 0 (``3/0``): it ends the open transaction, not one of its own.
            ends_open = control in ENDS_TRANSACTION and vxid.endswith("/0") and current.vxid is not None and not (
                current.ending
            )
            if current.vxid != vxid and not ends_open:
                current = self._new_transaction(session, vxid, explicit=control is Control.BEGIN or session.chained)
                session.chained = False
        else:
            if current.ending:
                current = self._new_transaction(session, None, explicit=session.chained)
                session.chained = False
            if control is Control.BEGIN:
                if current.entries or current.explicit:
                    current = self._new_transaction(session, None, explicit=True)
                current.explicit = True
            elif not current.explicit and self.boundaries_seen and current.entries:
                # Outside a transaction block each statement commits on its own.
                current = self._new_transaction(session, None, explicit=False)
        if record.xid:
            current.xid = record.xid
        self.stats.dropped_statements += current.add(statement)
        if session.windows or control is None:
            self._checks(session, current, statement)
        ignored = session.ignored_set
        if ignored is not None and ignored.statement is None and control in _SETS:
            session.ignored_set = replace(ignored, statement=statement)  # its duration line, after the WARNING
            if record.vxid is None:
                self._new_transaction(session, None, explicit=False)
        if control is Control.SAVEPOINT:
            current.savepoint(statement.control.argument if statement.control else None)
        elif control is Control.RELEASE:
            current.release(statement.control.argument if statement.control else None)
        elif control is Control.ROLLBACK_TO:
            current.rollback_to(statement.control.argument if statement.control else None, statement)
            current.rolled_back = False  # the savepoint took the error back
        elif control in ENDS_TRANSACTION:
            current.ending = True
            current.rolled_back = current.rolled_back or control in (Control.ROLLBACK, Control.ROLLBACK_AND_CHAIN)
            session.chained = control in (Control.COMMIT_AND_CHAIN, Control.ROLLBACK_AND_CHAIN)

    @staticmethod
    def _checks(session: Session, current: Transaction, statement: LoggedStatement) -> None:
        """Open or close a window of switched-off foreign-key checks, or add a write to the open ones."""
        switch = checks_switch(statement.text) if statement.control is None else None
        if switch is not None and switch.disables:
            session.windows.append(_Window(statement, switch.table))
        elif switch is not None:
            for window in session.windows:
                if window.end is None and window.table == switch.table:
                    window.end = statement
        elif statement.may_write:
            for window in session.windows:
                if window.holds(statement):
                    window.writes.append((current.entries[-1], current))
                    window.seen += 1

    def _peers(self, deadlock: Deadlock, victim: Session) -> Iterator[Peer]:
        """The open transaction of each other process of a deadlock's cycle: the session of that
        pid seen last (a pid is reused by later sessions, never by two at once)."""
        wanted = {pid for pid in deadlock.pids if pid != victim.pid}
        found: dict[int, Session] = {}
        for candidate in reversed(self.sessions.values()):
            if candidate.pid in wanted and candidate.pid not in found and candidate is not victim:
                found[candidate.pid] = candidate
        for pid in deadlock.pids:
            session = found.get(pid)
            if session is None:
                continue
            current = session.transaction
            yield Peer(
                pid=pid,
                session=Session(session.key, session.pid, session.session_id, session.user, session.database,
                                session.application, session.client),
                entries=tuple(Entry(e.statement, e.undone_by, e.failed) for e in current.entries),
                vxid=current.vxid,
                xid=current.xid,
                lock_waits=tuple(current.lock_waits),
                dropped=current.dropped,
                history_lost=session.history_lost,
            )

    def _was_dropped(self, pid: int) -> bool:
        """Whether a session of this process was dropped (session cap, idle timeout, look-back):
        its key is its pid, or a session id that ends in it in hexadecimal."""
        suffix = f".{pid:x}"
        return any(key == ("pid", pid) or (isinstance(key, str) and key.endswith(suffix)) for key in self._evicted)

    def _failure(self, session: Session, record: LogRecord) -> Failure:
        current = session.transaction
        if record.vxid is not None and current.vxid not in (None, record.vxid):
            current = self._new_transaction(session, record.vxid, explicit=False)
        entries = list(current.entries)
        raising = record.statement
        # The statement that raised the error is usually the last one logged: it wrote nothing.
        if entries and raising is not None and entries[-1].statement.text == raising:
            entries[-1].failed = True
        failure = Failure(
            record=record,
            session=session.identity(),
            entries=tuple(Entry(e.statement, e.undone_by, e.failed) for e in entries),
            dropped=current.dropped,
            by_vxid=record.vxid is not None,
            boundaries_seen=self.boundaries_seen,
            statements_seen=self.statements_seen,
            explicit=current.explicit,
            ddl=self.ddl.view(),
            history_lost=session.history_lost,
            ignored_set=session.ignored_set,
            checks_windows=tuple(window.snapshot() for window in session.windows),
            lock_waits=tuple(current.lock_waits),
        )
        deadlock = parse_deadlock(record.detail) if record.detail else None
        if deadlock is not None:
            peers = tuple(self._peers(deadlock, session))
            found = {peer.pid for peer in peers}
            lost = tuple(pid for pid in deadlock.pids if pid != session.pid and pid not in found and self._was_dropped(pid))
            failure = replace(failure, deadlock=deadlock, peers=peers, lost_pids=lost)
        session.ignored_set = None
        control_checks = bool(entries) and entries[-1].statement.control is not None and (
            entries[-1].statement.control.kind in CHECKS_DEFERRED
        )
        current.rolled_back = current.rolled_back or current.explicit  # an error in a block aborts it (a savepoint may take it back)
        if not current.explicit or control_checks or current.ending:
            # The transaction is over: an error outside a block, or at COMMIT, rolls it back.
            current.ending = True
        return failure
