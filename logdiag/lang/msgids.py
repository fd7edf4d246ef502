"""The English texts (PostgreSQL's msgids) logdiag reads in a server's log, keyed for translation.

Each is PostgreSQL's own ``msgid``, exactly as in its source (``elog.c``, ``postgres.c``,
``ri_triggers.c``...): :mod:`logdiag.lang.catalogs` holds what each language shipped with the
server makes of them, generated from the server's catalogs by ``scripts/make_message_catalogs.py``.
To read one more message in every language, add its msgid here and run the script; a msgid no
catalog translates (a newer server's message) is read in English only.
"""

from __future__ import annotations

#: ``error_severity()`` of elog.c: the words before ``:  `` (stderr) and csvlog's ``error_severity``.
SEVERITIES = ("DEBUG", "LOG", "INFO", "NOTICE", "WARNING", "ERROR", "FATAL", "PANIC")

#: The labels of a stderr message's other lines (elog.c ``send_message_to_server_log``).
LABELS = {
    "DETAIL": "DETAIL:  ",
    "HINT": "HINT:  ",
    "QUERY": "QUERY:  ",
    "CONTEXT": "CONTEXT:  ",
    "LOCATION": "LOCATION:  %s:%d\n",
    "STATEMENT": "STATEMENT:  ",
}
LOCATION_WITH_FUNCTION = "LOCATION:  %s, %s:%d\n"

# How postgres.c logs a statement (log_statement, log_min_duration_statement).
STATEMENT = "statement: %s"
DURATION = "duration: %s ms"
DURATION_STATEMENT = "duration: %s ms  statement: %s"
EXECUTE = "execute"
EXECUTE_FETCH = "execute fetch from"
EXECUTE_LINE = "%s %s%s%s: %s"  # execute-word, statement name, "/", portal name, text
DURATION_EXECUTE = "duration: %s ms  %s %s%s%s: %s"
DURATION_BIND = "duration: %s ms  bind %s%s%s: %s"  # statement name, "/", portal name, text
PARAMETERS = "parameters: %s"
PREPARE = "prepare: %s"

# Session boundaries (log_connections, log_disconnections).
CONNECTION_RECEIVED = "connection received: host=%s port=%s"
CONNECTION_RECEIVED_LOCAL = "connection received: host=%s"
DISCONNECTION = "disconnection: session time: %d:%02d:%02d.%03d user=%s database=%s host=%s%s%s"

# Constraint violations (ri_triggers.c, nbtinsert.c, execIndexing.c, execMain.c) and their DETAIL.
FK_CHILD = 'insert or update on table "%s" violates foreign key constraint "%s"'
FK_CHILD_KEY = 'Key (%s)=(%s) is not present in table "%s".'
FK_CHILD_NO_KEY = 'Key is not present in table "%s".'
FK_PARENT = 'update or delete on table "%s" violates foreign key constraint "%s" on table "%s"'
FK_PARENT_RESTRICT = 'update or delete on table "%s" violates RESTRICT setting of foreign key constraint "%s" on table "%s"'
FK_PARENT_KEY = 'Key (%s)=(%s) is still referenced from table "%s".'
FK_PARENT_NO_KEY = 'Key is still referenced from table "%s".'
FK_RESTRICT_KEY = 'Key (%s)=(%s) is referenced from table "%s".'
FK_RESTRICT_NO_KEY = 'Key is referenced from table "%s".'
MATCH_FULL = "MATCH FULL does not allow mixing of null and nonnull key values."
UNIQUE = 'duplicate key value violates unique constraint "%s"'
UNIQUE_KEY = "Key %s already exists."
EXCLUSION = 'conflicting key value violates exclusion constraint "%s"'
EXCLUSION_KEY = "Key %s conflicts with existing key %s."
EXCLUSION_NO_KEY = "Key conflicts with existing key."
CHECK = 'new row for relation "%s" violates check constraint "%s"'
FAILING_ROW = "Failing row contains %s."
NOT_NULL = 'null value in column "%s" of relation "%s" violates not-null constraint'
NOT_NULL_OLD = 'null value in column "%s" violates not-null constraint'  # before PostgreSQL 13
#: PostgreSQL 18: an empty range in a WITHOUT OVERLAPS key (23514; no constraint is named).
EMPTY_PERIOD = 'empty WITHOUT OVERLAPS value found in column "%s" in relation "%s"'

# The pitfalls and other errors the reports name.
NOT_DEFERRABLE = 'constraint "%s" is not deferrable'
ONLY_IN_TRANSACTION_BLOCKS = "%s can only be used in transaction blocks"
DEADLOCK = "deadlock detected"
DEADLOCK_PROCESS = "Process %d waits for %s on %s; blocked by process %d."
DEADLOCK_QUERY = "Process %d: %s"  # deadlock.c: each process's query, after the cycle (issue 28)
# lmgr.c DescribeLockTag: the lock objects a deadlock's DETAIL and the lock-wait lines name.
LOCK_TRANSACTION = "transaction %u"
LOCK_TUPLE = "tuple (%u,%u) of relation %u of database %u"
LOCK_RELATION = "relation %u of database %u"
LOCK_ADVISORY = "advisory lock [%u,%u,%u,%u]"
# lmgr.c XactLockTableWaitErrorCb: the CONTEXT of a wait for a row's transaction, naming its table.
LOCK_CONTEXTS = (
    'while updating tuple (%u,%u) in relation "%s"', 'while deleting tuple (%u,%u) in relation "%s"',
    'while locking tuple (%u,%u) in relation "%s"', 'while locking updated version (%u,%u) of tuple in relation "%s"',
    'while inserting index tuple (%u,%u) in relation "%s"', 'while checking uniqueness of tuple (%u,%u) in relation "%s"',
    'while rechecking updated tuple (%u,%u) in relation "%s"',
    'while checking exclusion constraint on tuple (%u,%u) in relation "%s"',
)
# proc.c with log_lock_waits = on (issue 28).
LOCK_STILL_WAITING = "process %d still waiting for %s on %s after %ld.%03d ms"
LOCK_ACQUIRED = "process %d acquired %s on %s after %ld.%03d ms"
LOCK_DEADLOCK_WAITING = "process %d detected deadlock while waiting for %s on %s after %ld.%03d ms"
SERIALIZE_UPDATE = "could not serialize access due to concurrent update"
SERIALIZE_DELETE = "could not serialize access due to concurrent delete"
SERIALIZE_DEPENDENCIES = "could not serialize access due to read/write dependencies among transactions"
# Fixed messages whose SQLSTATE a log without one implies (issue 26): scan.l's scanner_yyerror
# (``_(message)`` is bison's "syntax error"), parse_relation.c, int.c, numutils.c, postgres.c.
SYNTAX_ERROR = "syntax error"
AT_OR_NEAR = '%s at or near "%s"'
AT_END_OF_INPUT = "%s at end of input"
UNDEFINED_RELATION = 'relation "%s" does not exist'
DIVISION_BY_ZERO = "division by zero"
INVALID_INPUT_SYNTAX = 'invalid input syntax for type %s: "%s"'
IN_FAILED_TRANSACTION = "current transaction is aborted, commands ignored until end of transaction block"
AT_CHARACTER = " at character %d"  # elog.c: stderr appends the error's cursor position to its message

#: Lines a server writes whatever it runs (start, checkpoints, autovacuum, connections): they tell
#: a log's language when its first lines hold no statement and no error (:func:`detect_language`).
TELLING = (
    "database system is ready to accept connections", "database system was shut down at %s",
    'listening on Unix socket "%s"', "checkpoint starting:%s%s%s%s%s%s%s%s", "connection authorized: user=%s",
    'automatic vacuum of table "%s.%s.%s"', 'automatic analyze of table "%s.%s.%s"', "received fast shutdown request",
    "database system is shut down",
)

#: Every msgid above: what ``scripts/make_message_catalogs.py`` takes from each catalog.
MSGIDS: tuple[str, ...] = (
    *SEVERITIES, *LABELS.values(), LOCATION_WITH_FUNCTION,
    STATEMENT, DURATION, DURATION_STATEMENT, EXECUTE, EXECUTE_FETCH, EXECUTE_LINE, DURATION_EXECUTE, DURATION_BIND,
    PARAMETERS,
    PREPARE, CONNECTION_RECEIVED, CONNECTION_RECEIVED_LOCAL, DISCONNECTION,
    FK_CHILD, FK_CHILD_KEY, FK_CHILD_NO_KEY, FK_PARENT, FK_PARENT_RESTRICT, FK_PARENT_KEY, FK_PARENT_NO_KEY,
    FK_RESTRICT_KEY, FK_RESTRICT_NO_KEY, MATCH_FULL, UNIQUE, UNIQUE_KEY, EXCLUSION, EXCLUSION_KEY, EXCLUSION_NO_KEY,
    CHECK, FAILING_ROW, NOT_NULL, NOT_NULL_OLD,
    NOT_DEFERRABLE, ONLY_IN_TRANSACTION_BLOCKS, DEADLOCK, DEADLOCK_PROCESS, DEADLOCK_QUERY,
    LOCK_TRANSACTION, LOCK_TUPLE, LOCK_RELATION, LOCK_ADVISORY, LOCK_STILL_WAITING, LOCK_ACQUIRED, LOCK_DEADLOCK_WAITING,
    *LOCK_CONTEXTS,
    SERIALIZE_UPDATE, SERIALIZE_DELETE,
    SERIALIZE_DEPENDENCIES, SYNTAX_ERROR, AT_OR_NEAR, AT_END_OF_INPUT, UNDEFINED_RELATION, DIVISION_BY_ZERO,
    INVALID_INPUT_SYNTAX, IN_FAILED_TRANSACTION, AT_CHARACTER, *TELLING,
)
