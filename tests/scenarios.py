"""Commit-time (and other) constraint violations, played on a real server.

Each scenario says what it executes and, from that alone, what logdiag must report: the
constraint, the key, when it surfaced, and the exact statement text that wrote the key. Tables are
prefixed with the scenario's name so that scenarios can share one cluster.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import ClientCursor

from tests.pgcluster import PgCluster

#: The log_line_prefix the scenarios are played with (every escape a diagnosis can use).
RICH_PREFIX = "%m [%p] %q%u@%d app=%a c=%c v=%v x=%x e=%e "


@dataclass(frozen=True)
class Expected:
    """What logdiag must report for a scenario (absent when no incident is expected)."""

    sqlstate: str
    constraint: str | None
    timing: str
    key: dict[str, str | None]
    culprit: str | None  # exact text the scenario executed, as the server logs it; None: no culprit
    match: str = "key"
    table: str | None = None
    related: frozenset[str] = frozenset()
    parameters: dict[str, str | None] | None = None
    raised_by: str | None = "COMMIT"


@dataclass(frozen=True)
class Scenario:
    name: str
    setup: str
    run: Callable[[PgCluster], None]
    expected: Expected | None
    needs_sqlstate: bool = False  # recognisable only by SQLSTATE (user-raised 40002)
    #: the statement that switched foreign-key checks off before the culprit (checks_disabled):
    #: the culprit is told only where the log shows it
    checks_off_by: str | None = None
    #: without a culprit, words a hint must have (it names what was missing, issue 26)
    hint: str | None = None
    notes: str = ""
    decoy_values: tuple[str, ...] = field(default=())


def simple(cluster: PgCluster, *statements: str, application: str = "app", autocommit: bool = True) -> None:
    """Run statements one by one with the simple query protocol (like psql), ignoring errors."""
    with psycopg.connect(cluster.conninfo, application_name=application, autocommit=True,
                         cursor_factory=ClientCursor) as conn:
        for statement in statements:
            with contextlib.suppress(psycopg.Error):
                conn.execute(statement)


def fk_tables(name: str, deferrable: str = "DEFERRABLE INITIALLY DEFERRED", extra: str = "") -> str:
    return (
        f"CREATE TABLE {name}_parent (id int PRIMARY KEY, label text);\n"
        f"CREATE TABLE {name}_child (id int PRIMARY KEY, parent_id int REFERENCES {name}_parent (id) "
        f"{deferrable}{extra});\n"
        f"INSERT INTO {name}_parent VALUES (1, 'one'), (2, 'two'), (7, 'seven');\n"
    )


def fk_name(name: str) -> str:
    return f"{name}_child_parent_id_fkey"


def _simple_txn(name: str, *statements: str, end: str = "COMMIT;") -> Callable[[PgCluster], None]:
    def run(cluster: PgCluster) -> None:
        simple(cluster, "BEGIN;", *statements, end, application=name)
    return run


SCENARIOS: list[Scenario] = []


def scenario(s: Scenario) -> Scenario:
    SCENARIOS.append(s)
    return s


# 1. The classic: a child row whose parent never arrives.
scenario(Scenario(
    "never", fk_tables("never"),
    _simple_txn("never", "INSERT INTO never_child VALUES (10, 1);", "INSERT INTO never_child VALUES (11, 42);"),
    Expected("23503", fk_name("never"), "commit", {"parent_id": "42"}, "INSERT INTO never_child VALUES (11, 42);",
             table="never_child", related=frozenset({"declared_by"})),
    decoy_values=("42",),
))

# 2. The parent was inserted, then undone by ROLLBACK TO SAVEPOINT.
scenario(Scenario(
    "undone", fk_tables("undone"),
    _simple_txn("undone", "SAVEPOINT before_parent;", "INSERT INTO undone_parent VALUES (42, 'forty-two');",
                "ROLLBACK TO SAVEPOINT before_parent;", "INSERT INTO undone_child VALUES (20, 42);"),
    Expected("23503", fk_name("undone"), "commit", {"parent_id": "42"}, "INSERT INTO undone_child VALUES (20, 42);",
             related=frozenset({"rolled_back_parent", "savepoint_rollback", "declared_by"})),
))

# 3. RELEASE SAVEPOINT keeps the parent: no error at all.
scenario(Scenario(
    "released", fk_tables("released"),
    _simple_txn("released", "SAVEPOINT sp;", "INSERT INTO released_parent VALUES (42, 'kept');", "RELEASE SAVEPOINT sp;",
                "INSERT INTO released_child VALUES (30, 42);"),
    None,
))

# 4. A multi-row INSERT with one bad row.
scenario(Scenario(
    "multirow", fk_tables("multirow"),
    _simple_txn("multirow", "INSERT INTO multirow_child VALUES (40, 1), (41, 42), (42, 2);"),
    Expected("23503", fk_name("multirow"), "commit", {"parent_id": "42"},
             "INSERT INTO multirow_child VALUES (40, 1), (41, 42), (42, 2);"),
))

# 5. A composite key.
scenario(Scenario(
    "composite",
    "CREATE TABLE composite_parent (a int, b text, PRIMARY KEY (a, b));\n"
    "CREATE TABLE composite_child (id int PRIMARY KEY, a int, b text, CONSTRAINT composite_fk FOREIGN KEY (a, b) "
    "REFERENCES composite_parent (a, b) DEFERRABLE INITIALLY DEFERRED);\n"
    "INSERT INTO composite_parent VALUES (1, 'x');\n",
    _simple_txn("composite", "INSERT INTO composite_child VALUES (1, 1, 'x');", "INSERT INTO composite_child VALUES (2, 1, 'y');"),
    Expected("23503", "composite_fk", "commit", {"a": "1", "b": "y"}, "INSERT INTO composite_child VALUES (2, 1, 'y');"),
))

# 6. Text keys with commas, quotes and parentheses (a composite one, so the split is ambiguous).
scenario(Scenario(
    "textkey",
    "CREATE TABLE textkey_parent (city text, street text, PRIMARY KEY (city, street));\n"
    "CREATE TABLE textkey_child (id int PRIMARY KEY, city text, street text, CONSTRAINT textkey_fk FOREIGN KEY "
    "(city, street) REFERENCES textkey_parent DEFERRABLE INITIALLY DEFERRED);\n",
    _simple_txn("textkey", "INSERT INTO textkey_child VALUES (1, 'Paris, France', 'rue d''Alésia (14e), 2');"),
    Expected("23503", "textkey_fk", "commit", {"city": "Paris, France", "street": "rue d'Alésia (14e), 2"},
             "INSERT INTO textkey_child VALUES (1, 'Paris, France', 'rue d''Alésia (14e), 2');"),
))

# 7. SET CONSTRAINTS ALL DEFERRED on a DEFERRABLE INITIALLY IMMEDIATE key.
scenario(Scenario(
    "setdeferred", fk_tables("setdeferred", "DEFERRABLE INITIALLY IMMEDIATE"),
    _simple_txn("setdeferred", "SET CONSTRAINTS ALL DEFERRED;", "INSERT INTO setdeferred_child VALUES (70, 42);"),
    Expected("23503", fk_name("setdeferred"), "commit", {"parent_id": "42"},
             "INSERT INTO setdeferred_child VALUES (70, 42);", related=frozenset({"deferred_by", "declared_by"})),
))

# 8. SET CONSTRAINTS ... IMMEDIATE checks the deferred key right there.
scenario(Scenario(
    "setimmediate", fk_tables("setimmediate"),
    _simple_txn("setimmediate", "INSERT INTO setimmediate_child VALUES (80, 42);",
                "SET CONSTRAINTS setimmediate_child_parent_id_fkey IMMEDIATE;", end="ROLLBACK;"),
    Expected("23503", fk_name("setimmediate"), "commit", {"parent_id": "42"},
             "INSERT INTO setimmediate_child VALUES (80, 42);",
             raised_by="SET CONSTRAINTS setimmediate_child_parent_id_fkey IMMEDIATE"),
))

# 9. A deferred unique constraint.
scenario(Scenario(
    "dupe",
    "CREATE TABLE dupe_users (id int, email text, CONSTRAINT dupe_email UNIQUE (email) DEFERRABLE INITIALLY DEFERRED);\n"
    "INSERT INTO dupe_users VALUES (1, 'ada@example.com');\n",
    _simple_txn("dupe", "UPDATE dupe_users SET email = 'old@example.com' WHERE id = 1;",
                "INSERT INTO dupe_users VALUES (2, 'grace@example.com');",
                "INSERT INTO dupe_users VALUES (3, 'grace@example.com');"),
    Expected("23505", "dupe_email", "commit", {"email": "grace@example.com"},
             "INSERT INTO dupe_users VALUES (2, 'grace@example.com');", table="dupe_users"),
))

# 10. The parent is deleted while a child still references it.
scenario(Scenario(
    "parentdel", fk_tables("parentdel") + "INSERT INTO parentdel_child VALUES (100, 7);\n",
    _simple_txn("parentdel", "DELETE FROM parentdel_parent WHERE id = 7;"),
    Expected("23503", fk_name("parentdel"), "commit", {"id": "7"}, "DELETE FROM parentdel_parent WHERE id = 7;",
             table="parentdel_child"),
))

# 11. An UPDATE of the foreign-key column.
scenario(Scenario(
    "updfk", fk_tables("updfk") + "INSERT INTO updfk_child VALUES (110, 1);\n",
    _simple_txn("updfk", "UPDATE updfk_child SET parent_id = 42 WHERE id = 110;"),
    Expected("23503", fk_name("updfk"), "commit", {"parent_id": "42"}, "UPDATE updfk_child SET parent_id = 42 WHERE id = 110;"),
))


# 12. psycopg 3 with server-side parameters.
def _server_side(cluster: PgCluster) -> None:
    with psycopg.connect(cluster.conninfo, application_name="serverside") as conn:
        conn.execute("INSERT INTO serverside_child VALUES (%s, %s)", (120, 1))
        conn.execute("INSERT INTO serverside_child VALUES (%s, %s)", (121, 42))
        with contextlib.suppress(psycopg.Error):
            conn.commit()


scenario(Scenario(
    "serverside", fk_tables("serverside"), _server_side,
    Expected("23503", fk_name("serverside"), "commit", {"parent_id": "42"}, "INSERT INTO serverside_child VALUES ($1, $2)",
             parameters={"$1": "121", "$2": "42"}),
    decoy_values=("42",),
))


# 13. A named prepared statement executed many times, one execution bad.
def _prepared_many(cluster: PgCluster) -> None:
    with psycopg.connect(cluster.conninfo, application_name="prepared", prepare_threshold=0) as conn:
        for n in range(10):
            parent = 42 if n == 6 else 1 + n % 2
            conn.execute("INSERT INTO prepared_child VALUES (%s, %s)", (130 + n, parent))
        with contextlib.suppress(psycopg.Error):
            conn.commit()


scenario(Scenario(
    "prepared", fk_tables("prepared"), _prepared_many,
    Expected("23503", fk_name("prepared"), "commit", {"parent_id": "42"}, "INSERT INTO prepared_child VALUES ($1, $2)",
             parameters={"$1": "136", "$2": "42"}),
))


# 14. COPY: the rows are not in the log, the table is.
def _copy(cluster: PgCluster) -> None:
    with psycopg.connect(cluster.conninfo, application_name="copy") as conn:
        with conn.cursor().copy("COPY copy_child FROM STDIN") as copy:
            for row in ((140, 1), (141, 42)):
                copy.write_row(row)
        with contextlib.suppress(psycopg.Error):
            conn.commit()


scenario(Scenario(
    "copy", fk_tables("copy"), _copy,
    Expected("23503", fk_name("copy"), "commit", {"parent_id": "42"}, "COPY copy_child FROM STDIN", match="table"),
))

# 15. Autocommit, simple protocol: the INSERT itself commits and fails.
scenario(Scenario(
    "autosimple", fk_tables("autosimple"),
    lambda cluster: simple(cluster, "INSERT INTO autosimple_child VALUES (150, 42);", application="autosimple"),
    Expected("23503", fk_name("autosimple"), "commit", {"parent_id": "42"}, "INSERT INTO autosimple_child VALUES (150, 42);",
             raised_by="INSERT INTO autosimple_child VALUES (150, 42);"),
))


# 16. Autocommit, extended protocol: the check fires at Sync, the ERROR has no STATEMENT.
def _auto_extended(cluster: PgCluster) -> None:
    with (
        psycopg.connect(cluster.conninfo, application_name="autoext", autocommit=True) as conn,
        contextlib.suppress(psycopg.Error),
    ):
        conn.execute("INSERT INTO autoext_child VALUES (%s, %s)", (160, 42))


scenario(Scenario(
    "autoext", fk_tables("autoext"), _auto_extended,
    Expected("23503", fk_name("autoext"), "commit", {"parent_id": "42"}, "INSERT INTO autoext_child VALUES ($1, $2)",
             parameters={"$1": "160", "$2": "42"}, raised_by=None),
))

# 17. A deferred constraint trigger that raises SQLSTATE 40002, its DETAIL in PostgreSQL's
# `Key (cols)=(vals)` shape. The key was written three times in this session: by a transaction
# rolled back before (a decoy), then by the INSERT and the UPDATE of this one; the trigger checks
# each row version it queued, and the UPDATE's is the one that fails. Another row of the same
# table (id 2) is written in between. Without %e the error is still this trigger's, by its CONTEXT.
def _trig(cluster: PgCluster) -> None:
    simple(cluster, "BEGIN;", "INSERT INTO trig_accounts VALUES (1, -7);", "ROLLBACK;",
           "BEGIN;", "INSERT INTO trig_accounts VALUES (1, 100);", "INSERT INTO trig_accounts VALUES (2, 50);",
           "UPDATE trig_accounts SET balance = -5 WHERE id = 1;", "COMMIT;", application="trig")


scenario(Scenario(
    "trig",
    "CREATE TABLE trig_accounts (id int PRIMARY KEY, balance int);\n"
    "CREATE FUNCTION trig_check() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NEW.balance < 0 THEN RAISE EXCEPTION 'balance of account % is negative', NEW.id USING ERRCODE = '40002', "
    "DETAIL = format('Key (id)=(%s) has a negative balance.', NEW.id); "
    "END IF; RETURN NULL; END $$;\n"
    "CREATE CONSTRAINT TRIGGER trig_balance AFTER INSERT OR UPDATE ON trig_accounts DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW EXECUTE FUNCTION trig_check();\n",
    _trig,
    Expected("40002", "trig_balance", "commit", {"id": "1"}, "UPDATE trig_accounts SET balance = -5 WHERE id = 1;",
             table="trig_accounts"),
))

# 17b. A constraint trigger on INSERT only, whose message names its constraint PostgreSQL's way
# (`violates constraint "x"`, not the trigger's own name). The migrate session wrote the same key
# before (the table has no primary key); the UPDATE of another row fires no check and is no culprit.
scenario(Scenario(
    "trigm",
    "CREATE TABLE trigm_orders (id int, total int);\n"
    "CREATE FUNCTION trigm_check() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NEW.total > 1000 THEN RAISE EXCEPTION 'order % violates constraint \"trigm_limit\"', NEW.id "
    "USING ERRCODE = '40002', DETAIL = format('Key (id)=(%s) exceeds the limit.', NEW.id); "
    "END IF; RETURN NULL; END $$;\n"
    "CREATE CONSTRAINT TRIGGER trigm_limit_trg AFTER INSERT ON trigm_orders DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW EXECUTE FUNCTION trigm_check();\n"
    "INSERT INTO trigm_orders VALUES (5, 1);\n",
    _simple_txn("trigm", "INSERT INTO trigm_orders VALUES (6, 10);", "INSERT INTO trigm_orders VALUES (5, 5000);",
                "UPDATE trigm_orders SET total = 5000 WHERE id = 6;"),
    Expected("40002", "trigm_limit", "commit", {"id": "5"}, "INSERT INTO trigm_orders VALUES (5, 5000);",
             table="trigm_orders"),
))

# 18. An ordinary immediate violation.
scenario(Scenario(
    "immediate", fk_tables("immediate", "NOT DEFERRABLE"),
    lambda cluster: simple(cluster, "INSERT INTO immediate_child VALUES (180, 42);", application="immediate"),
    Expected("23503", fk_name("immediate"), "statement", {"parent_id": "42"}, "INSERT INTO immediate_child VALUES (180, 42);",
             raised_by="INSERT INTO immediate_child VALUES (180, 42);"),
))

# 19. The culprit thousands of lines before the COMMIT.
scenario(Scenario(
    "far", fk_tables("far"),
    _simple_txn("far", "INSERT INTO far_child VALUES (190, 42);", *[f"SELECT {n} AS filler;" for n in range(3000)]),
    Expected("23503", fk_name("far"), "commit", {"parent_id": "42"}, "INSERT INTO far_child VALUES (190, 42);"),
))

# 20. An exclusion constraint, deferred.
scenario(Scenario(
    "excl",
    "CREATE TABLE excl_booking (id int PRIMARY KEY, during int4range, "
    "CONSTRAINT excl_no_overlap EXCLUDE USING gist (during WITH &&) DEFERRABLE INITIALLY DEFERRED);\n"
    "INSERT INTO excl_booking VALUES (1, '[1,10)');\n",
    _simple_txn("excl", "INSERT INTO excl_booking VALUES (2, '[5,15)');"),
    Expected("23P01", "excl_no_overlap", "commit", {"during": "[5,15)"}, "INSERT INTO excl_booking VALUES (2, '[5,15)');",
             table="excl_booking"),
))

# 21. PREPARE TRANSACTION runs the deferred checks.
scenario(Scenario(
    "twophase", fk_tables("twophase"),
    _simple_txn("twophase", "INSERT INTO twophase_child VALUES (210, 42);", end="PREPARE TRANSACTION 'twophase_gid';"),
    Expected("23503", fk_name("twophase"), "commit", {"parent_id": "42"}, "INSERT INTO twophase_child VALUES (210, 42);",
             raised_by="PREPARE TRANSACTION 'twophase_gid'"),
))

# 22. COMMIT AND CHAIN.
scenario(Scenario(
    "chain", fk_tables("chain"),
    _simple_txn("chain", "INSERT INTO chain_child VALUES (220, 42);", end="COMMIT AND CHAIN;"),
    Expected("23503", fk_name("chain"), "commit", {"parent_id": "42"}, "INSERT INTO chain_child VALUES (220, 42);",
             raised_by="COMMIT AND CHAIN"),
))

# 23. Quoted, mixed-case, schema-qualified names.
scenario(Scenario(
    "quoted",
    'CREATE SCHEMA "Sales";\n'
    'CREATE TABLE "Sales"."Customers" ("Id" int PRIMARY KEY);\n'
    'CREATE TABLE "Sales"."Orders" ("Id" int PRIMARY KEY, "CustomerId" int CONSTRAINT "Orders_Customer_FK" '
    'REFERENCES "Sales"."Customers" DEFERRABLE INITIALLY DEFERRED);\n',
    _simple_txn("quoted", 'INSERT INTO "Sales"."Orders" ("Id", "CustomerId") VALUES (230, 42);'),
    Expected("23503", "Orders_Customer_FK", "commit", {"CustomerId": "42"},
             'INSERT INTO "Sales"."Orders" ("Id", "CustomerId") VALUES (230, 42);', table="Orders"),
))

# 24. The insert happens inside a function.
scenario(Scenario(
    "func", fk_tables("func") +
    "CREATE FUNCTION func_add_child(cid int, pid int) RETURNS void LANGUAGE sql AS "
    "$$ INSERT INTO func_child VALUES (cid, pid) $$;\n",
    _simple_txn("func", "SELECT func_add_child(240, 42);"),
    Expected("23503", fk_name("func"), "commit", {"parent_id": "42"}, "SELECT func_add_child(240, 42);", match="call"),
))

# 24b. Several calls of a function that inserts (issue 26): the one whose arguments carry the key
# comes first, not the first call of the transaction.
scenario(Scenario(
    "calls", fk_tables("calls") +
    "CREATE FUNCTION calls_add_child(cid int, pid int) RETURNS void LANGUAGE sql AS "
    "$$ INSERT INTO calls_child VALUES (cid, pid) $$;\n",
    _simple_txn("calls", "SELECT calls_add_child(241, 1);", "SELECT calls_add_child(242, 42);",
                "SELECT calls_add_child(243, 2);"),
    Expected("23503", fk_name("calls"), "commit", {"parent_id": "42"}, "SELECT calls_add_child(242, 42);", match="call"),
))

# A key written in a form logdiag does not compare with the server's (an inet with its /32 mask,
# printed without it): no culprit, and the hint says so rather than blaming log_statement.
scenario(Scenario(
    "uncompared",
    "CREATE TABLE uncompared_parent (addr inet PRIMARY KEY);\n"
    "CREATE TABLE uncompared_child (id int PRIMARY KEY, addr inet CONSTRAINT uncompared_fk REFERENCES "
    "uncompared_parent DEFERRABLE INITIALLY DEFERRED);\n"
    "INSERT INTO uncompared_parent VALUES ('10.0.0.1');\n",
    _simple_txn("uncompared", "INSERT INTO uncompared_child VALUES (1, '10.0.0.1');",
                "INSERT INTO uncompared_child VALUES (2, '10.0.0.2/32');"),
    Expected("23503", "uncompared_fk", "commit", {"addr": "10.0.0.2"}, None, table="uncompared_child"),
    hint="in a form logdiag does not compare",
))

# 25. INSERT ... SELECT from a table: the rows are not in the log.
scenario(Scenario(
    "inssel", fk_tables("inssel") + "CREATE TABLE inssel_staging (id int, parent_id int);\n"
    "INSERT INTO inssel_staging VALUES (250, 42);\n",
    _simple_txn("inssel", "INSERT INTO inssel_child SELECT id, parent_id FROM inssel_staging;"),
    Expected("23503", fk_name("inssel"), "commit", {"parent_id": "42"},
             "INSERT INTO inssel_child SELECT id, parent_id FROM inssel_staging;", match="table"),
))

# 26. MERGE.
scenario(Scenario(
    "merge", fk_tables("merge"),
    _simple_txn("merge", "MERGE INTO merge_child c USING (VALUES (260, 42)) AS v(id, pid) ON c.id = v.id "
                "WHEN NOT MATCHED THEN INSERT VALUES (v.id, v.pid);"),
    Expected("23503", fk_name("merge"), "commit", {"parent_id": "42"},
             "MERGE INTO merge_child c USING (VALUES (260, 42)) AS v(id, pid) ON c.id = v.id "
             "WHEN NOT MATCHED THEN INSERT VALUES (v.id, v.pid);", match="table"),
))

# 27. MATCH FULL with a NULL in the key: the DETAIL shows no key; the culprit is the row that mixes
# NULL and non-NULL in the key's columns (issue 26), not the rows with all or none of them NULL.
scenario(Scenario(
    "matchfull",
    "CREATE TABLE matchfull_parent (a int, b int, PRIMARY KEY (a, b));\n"
    "CREATE TABLE matchfull_child (id int PRIMARY KEY, a int, b int, CONSTRAINT matchfull_fk FOREIGN KEY (a, b) "
    "REFERENCES matchfull_parent MATCH FULL DEFERRABLE INITIALLY DEFERRED);\n"
    "INSERT INTO matchfull_parent VALUES (1, 1);\n",
    _simple_txn("matchfull", "INSERT INTO matchfull_child VALUES (268, NULL, NULL), (269, 1, 1);",
                "INSERT INTO matchfull_child VALUES (270, 1, NULL);", "INSERT INTO matchfull_child VALUES (271, NULL, NULL);"),
    Expected("23503", "matchfull_fk", "commit", {"a": None, "b": None}, "INSERT INTO matchfull_child VALUES (270, 1, NULL);"),
))


# 28. Two sessions fail at the same moment, with different keys.
def _two_sessions(cluster: PgCluster) -> None:
    first = psycopg.connect(cluster.conninfo, application_name="twins-a", cursor_factory=ClientCursor)
    second = psycopg.connect(cluster.conninfo, application_name="twins-b", cursor_factory=ClientCursor)
    with first, second:
        first.execute("INSERT INTO twins_child VALUES (280, 42)")
        second.execute("INSERT INTO twins_child VALUES (281, 43)")
        first.execute("INSERT INTO twins_child VALUES (282, 43)")  # decoy: the other session's bad key
        for conn in (second, first):
            with contextlib.suppress(psycopg.Error):
                conn.commit()


scenario(Scenario(
    "twins", fk_tables("twins"), _two_sessions,
    Expected("23503", fk_name("twins"), "commit", {"parent_id": "43"}, "INSERT INTO twins_child VALUES (281, 43)"),
    notes="the first of two incidents on the same constraint: session twins-b",
))


# 29. Django-style: every FK deferrable, bulk_create through UNNEST with array parameters.
def _django(cluster: PgCluster) -> None:
    with psycopg.connect(cluster.conninfo, application_name="django") as conn:
        conn.execute(
            'INSERT INTO "django_child" ("id", "parent_id") SELECT * FROM UNNEST((%s)::integer[], (%s)::integer[])',
            ([290, 291, 292], [1, 2, 42]),
        )
        with contextlib.suppress(psycopg.Error):
            conn.commit()


scenario(Scenario(
    "django", fk_tables("django"), _django,
    Expected("23503", fk_name("django"), "commit", {"parent_id": "42"},
             'INSERT INTO "django_child" ("id", "parent_id") SELECT * FROM UNNEST(($1)::integer[], ($2)::integer[])',
             parameters={"$1": "{290,291,292}", "$2": "{1,2,42}"}),
))


# 30. SQLAlchemy 2 insertmanyvalues.
def _sqlalchemy(cluster: PgCluster) -> None:
    with psycopg.connect(cluster.conninfo, application_name="sqlalchemy") as conn:
        conn.execute(
            "INSERT INTO sqla_child (id, parent_id) SELECT p0::INTEGER, p1::INTEGER FROM "
            "(VALUES (%s, %s, 0), (%s, %s, 1)) AS imp_sen(p0, p1, sen_counter) ORDER BY sen_counter",
            (42, 1, 301, 42),
        )
        with contextlib.suppress(psycopg.Error):
            conn.commit()


scenario(Scenario(
    "sqla", fk_tables("sqla"), _sqlalchemy,
    Expected("23503", fk_name("sqla"), "commit", {"parent_id": "42"},
             "INSERT INTO sqla_child (id, parent_id) SELECT p0::INTEGER, p1::INTEGER FROM "
             "(VALUES ($1, $2, 0), ($3, $4, 1)) AS imp_sen(p0, p1, sen_counter) ORDER BY sen_counter",
             parameters={"$1": "42", "$2": "1", "$3": "301", "$4": "42"}),
))

# 31. psycopg2's execute_batch: several INSERTs in one simple query.
scenario(Scenario(
    "batch", fk_tables("batch"),
    _simple_txn("batch", "INSERT INTO batch_child VALUES (310, 1);INSERT INTO batch_child VALUES (311, 42)"),
    Expected("23503", fk_name("batch"), "commit", {"parent_id": "42"}, "INSERT INTO batch_child VALUES (311, 42)"),
))

# 32. psql -c "BEGIN; ...; COMMIT;": a whole transaction in one query string, logged as one
# statement, after autocommit statements that wrote the same key (without BEGIN and COMMIT logged
# on their own, only the BEGIN inside the string tells that they were other transactions).
_ONE_QUERY = "BEGIN; INSERT INTO onequery_child VALUES (321, 1); INSERT INTO onequery_child VALUES (322, 42); COMMIT;"
_AUTOCOMMITTED = (
    "INSERT INTO onequery_parent VALUES (42, 'brief');", "INSERT INTO onequery_child VALUES (320, 42);",
    "DELETE FROM onequery_child WHERE id = 320;", "DELETE FROM onequery_parent WHERE id = 42;",
)
scenario(Scenario(
    "onequery", fk_tables("onequery"),
    lambda cluster: simple(cluster, *_AUTOCOMMITTED, _ONE_QUERY, application="onequery"),
    Expected("23503", fk_name("onequery"), "commit", {"parent_id": "42"}, "INSERT INTO onequery_child VALUES (322, 42)",
             table="onequery_child", related=frozenset({"declared_by"}), raised_by=_ONE_QUERY),
))

# 33. A transaction in one string that wrote key 42 and committed, then BEGIN alone and the rest
# of the next transaction in one string: only the COMMIT at the end of the first string tells
# that its INSERT of key 42 was another transaction.
_COMMITTED_QUERY = (
    "BEGIN; INSERT INTO restquery_parent VALUES (42, 'brief'); INSERT INTO restquery_child VALUES (330, 42); "
    "DELETE FROM restquery_child WHERE id = 330; DELETE FROM restquery_parent WHERE id = 42; COMMIT;"
)
_REST_QUERY = "INSERT INTO restquery_child VALUES (331, 1); INSERT INTO restquery_child VALUES (332, 42); COMMIT;"
scenario(Scenario(
    "restquery", fk_tables("restquery"),
    lambda cluster: simple(cluster, _COMMITTED_QUERY, "BEGIN;", _REST_QUERY, application="restquery"),
    Expected("23503", fk_name("restquery"), "commit", {"parent_id": "42"}, "INSERT INTO restquery_child VALUES (332, 42)",
             table="restquery_child", related=frozenset({"declared_by"}), raised_by=_REST_QUERY),
))

# 34. A partitioned table, two levels deep (the second attached), and a named foreign key: the
# server names the leaf partition, the INSERT names the partitioned table (its columns in order
# from its CREATE TABLE); the DDL in the log tells that the one holds the other.
scenario(Scenario(
    "parta",
    "CREATE TABLE parta_parent (id int PRIMARY KEY, label text);\n"
    "CREATE TABLE parta_child (id int, parent_id int, at date, CONSTRAINT parta_child_must_have_parent "
    "FOREIGN KEY (parent_id) REFERENCES parta_parent (id) DEFERRABLE INITIALLY DEFERRED) PARTITION BY RANGE (at);\n"
    "CREATE TABLE parta_child_y2026 PARTITION OF parta_child FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') "
    "PARTITION BY RANGE (id);\n"
    "CREATE TABLE parta_child_y2026_low (LIKE parta_child_y2026);\n"
    "ALTER TABLE parta_child_y2026 ATTACH PARTITION parta_child_y2026_low FOR VALUES FROM (0) TO (1000);\n"
    "INSERT INTO parta_parent VALUES (1, 'one');\n",
    _simple_txn("parta", "INSERT INTO parta_child VALUES (341, 1, '2026-05-01');",
                "INSERT INTO parta_child VALUES (342, 42, '2026-05-02');"),
    Expected("23503", "parta_child_must_have_parent", "commit", {"parent_id": "42"},
             "INSERT INTO parta_child VALUES (342, 42, '2026-05-02');", table="parta_child_y2026_low",
             related=frozenset({"declared_by"})),
))

# 35. The same without the DDL in the log (created with statement logging off, as a table created
# long before the log begins): the foreign key's default name tells the table it was declared on.
scenario(Scenario(
    "partb",
    "SET log_statement = 'none';\nSET log_min_duration_statement = -1;\n"
    "CREATE TABLE partb_parent (id int PRIMARY KEY);\n"
    "CREATE TABLE partb_child (id int, parent_id int REFERENCES partb_parent (id) DEFERRABLE INITIALLY DEFERRED, "
    "at date) PARTITION BY RANGE (at);\n"
    "CREATE TABLE partb_child_2026 PARTITION OF partb_child FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');\n"
    "INSERT INTO partb_parent VALUES (1);\n"
    "RESET log_statement;\nRESET log_min_duration_statement;\n",
    _simple_txn("partb", "INSERT INTO partb_child (id, parent_id, at) VALUES (351, 1, '2026-05-01');",
                "INSERT INTO partb_child (id, parent_id, at) VALUES (352, 42, '2026-05-02');"),
    Expected("23503", "partb_child_parent_id_fkey", "commit", {"parent_id": "42"},
             "INSERT INTO partb_child (id, parent_id, at) VALUES (352, 42, '2026-05-02');", table="partb_child_2026"),
))

# SET CONSTRAINTS ALL DEFERRED does not defer a NOT DEFERRABLE key: the INSERT fails at once, and
# the SET is evidence that the deferral was ignored, never that it deferred the key (issue 26).
# The same key was inserted and committed before by an earlier transaction of the session (a decoy).
scenario(Scenario(
    "ignored", fk_tables("ignored", "NOT DEFERRABLE") + "INSERT INTO ignored_parent VALUES (42, 'x');\n",
    lambda cluster: simple(
        cluster, "INSERT INTO ignored_child VALUES (1, 42);", "DELETE FROM ignored_child;",
        "DELETE FROM ignored_parent WHERE id = 42;", "BEGIN;", "SET CONSTRAINTS ALL DEFERRED;",
        "INSERT INTO ignored_child VALUES (2, 1);", "INSERT INTO ignored_child VALUES (3, 42);", "ROLLBACK;",
        application="ignored",
    ),
    Expected("23503", fk_name("ignored"), "statement", {"parent_id": "42"}, "INSERT INTO ignored_child VALUES (3, 42);",
             related=frozenset({"deferral_ignored"}), raised_by="INSERT INTO ignored_child VALUES (3, 42);"),
))


# SET CONSTRAINTS naming a NOT DEFERRABLE key: ERROR 42809 at the SET, then 25P02 for every later
# statement of the transaction, which are its consequences (a finding, no incident; issue 26).
# Another session's transaction is aborted at the same time by an error of its own: its 25P02
# belongs to that error, not to the finding.
NOTDEF_SET = "SET CONSTRAINTS notdef_child_parent_id_fkey DEFERRED;"
NOTDEF_AFTER = ("INSERT INTO notdef_child VALUES (1, 42);", "INSERT INTO notdef_child VALUES (2, 1);")


def _notdef(cluster: PgCluster) -> None:
    connect: dict[str, Any] = {"autocommit": True, "cursor_factory": ClientCursor}
    with psycopg.connect(cluster.conninfo, application_name="notdef", **connect) as conn, \
            psycopg.connect(cluster.conninfo, application_name="notdef-decoy", **connect) as decoy:
        def run(connection: psycopg.Connection, statement: str) -> None:
            with contextlib.suppress(psycopg.Error):
                connection.execute(statement)
        run(decoy, "BEGIN;")
        run(decoy, "SELECT 1/0;")
        run(conn, "BEGIN;")
        run(conn, NOTDEF_SET)
        run(conn, NOTDEF_AFTER[0])
        run(decoy, "INSERT INTO notdef_child VALUES (3, 42);")
        run(conn, NOTDEF_AFTER[1])
        run(conn, "COMMIT;")
        run(decoy, "ROLLBACK;")


scenario(Scenario("notdef", fk_tables("notdef", "NOT DEFERRABLE"), _notdef, None))

# The parent row is updated without touching its key, then deleted: only the DELETE can break the
# reference; the UPDATE (its WHERE has the key too) is no culprit (issue 26).
scenario(Scenario(
    "parentupd", fk_tables("parentupd") + "INSERT INTO parentupd_child VALUES (100, 7);\n",
    _simple_txn("parentupd", "UPDATE parentupd_parent SET label = 'renamed' WHERE id = 7;",
                "DELETE FROM parentupd_parent WHERE id = 7;"),
    Expected("23503", fk_name("parentupd"), "commit", {"id": "7"}, "DELETE FROM parentupd_parent WHERE id = 7;",
             table="parentupd_child"),
))

# SET CONSTRAINTS outside a transaction block: WARNING 25P01, and it does nothing, so the next
# statement fails at once on the key it meant to defer (a finding linked to the incident, issue 26).
# The key was inserted before in the same session and deleted again (a decoy).
OUTSIDE_SET = "SET CONSTRAINTS ALL DEFERRED;"
scenario(Scenario(
    "outside", fk_tables("outside", "DEFERRABLE INITIALLY IMMEDIATE") + "INSERT INTO outside_parent VALUES (42, 'x');\n",
    lambda cluster: simple(
        cluster, "INSERT INTO outside_child VALUES (1, 42);", "DELETE FROM outside_child;",
        "DELETE FROM outside_parent WHERE id = 42;", OUTSIDE_SET, "INSERT INTO outside_child VALUES (2, 42);",
        application="outside",
    ),
    Expected("23503", fk_name("outside"), "statement", {"parent_id": "42"}, "INSERT INTO outside_child VALUES (2, 42);",
             related=frozenset({"deferral_ignored"}), raised_by="INSERT INTO outside_child VALUES (2, 42);"),
))


# checks_disabled (issue 26): session_replication_role = replica switches foreign-key checks off;
# rows written then are never checked, and the VALIDATE CONSTRAINT of a key added NOT VALID finds
# the orphan later. Decoys: the same key written (and deleted) before the window, written in the
# window by a transaction rolled back, written into another table in the window, and written in a
# window of its own by another session that rolls it back.
REPLICA_OFF = "SET session_replication_role = replica;"
REPLICA_CULPRIT = "INSERT INTO replica_orders VALUES (10, 1), (11, 43);"
REPLICA_VALIDATE = "ALTER TABLE replica_orders VALIDATE CONSTRAINT replica_orders_customer_fk;"
REPLICA_WINDOW = (
    "BEGIN;", "INSERT INTO replica_orders VALUES (20, 43);", "ROLLBACK;",
    "INSERT INTO replica_audit (customer_id) VALUES (43);", REPLICA_CULPRIT, "INSERT INTO replica_orders VALUES (12, 44);",
)


def run_each(connection: psycopg.Connection[Any], *statements: str) -> None:
    """Run statements one by one on an autocommit connection (simple protocol), ignoring errors."""
    for statement in statements:
        with contextlib.suppress(psycopg.Error):
            connection.execute(statement)


AUTOCOMMIT: dict[str, Any] = {"autocommit": True, "cursor_factory": ClientCursor}


def _replica(cluster: PgCluster) -> None:
    run = run_each
    with psycopg.connect(cluster.conninfo, application_name="replica", **AUTOCOMMIT) as conn, \
            psycopg.connect(cluster.conninfo, application_name="replica-decoy", **AUTOCOMMIT) as decoy:
        run(decoy, REPLICA_OFF, "BEGIN;", "INSERT INTO replica_orders VALUES (30, 43);")
        run(conn, "INSERT INTO replica_customers VALUES (43, 'brief');", "INSERT INTO replica_orders VALUES (9, 43);",
            "DELETE FROM replica_orders WHERE id = 9;", "DELETE FROM replica_customers WHERE id = 43;")
        run(conn, REPLICA_OFF, *REPLICA_WINDOW, "RESET session_replication_role;", REPLICA_VALIDATE)
        run(decoy, "ROLLBACK;")


scenario(Scenario(
    "replica",
    "CREATE TABLE replica_customers (id int PRIMARY KEY, name text);\n"
    "CREATE TABLE replica_orders (id int PRIMARY KEY, customer_id int);\n"
    "CREATE TABLE replica_audit (id serial, customer_id int);\n"
    "INSERT INTO replica_customers VALUES (1, 'one'), (2, 'two');\n"
    "ALTER TABLE replica_orders ADD CONSTRAINT replica_orders_customer_fk FOREIGN KEY (customer_id) "
    "REFERENCES replica_customers NOT VALID;\n",
    _replica,
    Expected("23503", "replica_orders_customer_fk", "statement", {"customer_id": "43"}, REPLICA_CULPRIT,
             table="replica_orders", related=frozenset({"checks_disabled"}), raised_by=REPLICA_VALIDATE),
    checks_off_by=REPLICA_OFF,
))

# The same with ALTER TABLE ... DISABLE TRIGGER ALL on a valid key, which a migration later drops
# and adds again: the ADD CONSTRAINT finds the orphan the disabled triggers let in (a DDL window,
# logged under log_statement = 'mod' too). The key is written before the window (checked, deleted
# again). (No rolled-back decoy here: 'mod' logs no ROLLBACK, so no log of it could tell one.)
DISTRIG_OFF = "ALTER TABLE distrig_orders DISABLE TRIGGER ALL;"
DISTRIG_CULPRIT = "INSERT INTO distrig_orders VALUES (11, 45);"
DISTRIG_ADD = (
    "ALTER TABLE distrig_orders ADD CONSTRAINT distrig_orders_customer_fk FOREIGN KEY (customer_id) "
    "REFERENCES distrig_customers (id);"
)
scenario(Scenario(
    "distrig",
    "CREATE TABLE distrig_customers (id int PRIMARY KEY);\n"
    "CREATE TABLE distrig_orders (id int PRIMARY KEY, customer_id int CONSTRAINT distrig_orders_customer_fk "
    "REFERENCES distrig_customers);\n"
    "INSERT INTO distrig_customers VALUES (1), (2);\n",
    lambda cluster: simple(
        cluster, "INSERT INTO distrig_customers VALUES (45);", "INSERT INTO distrig_orders VALUES (9, 45);",
        "DELETE FROM distrig_orders WHERE id = 9;", "DELETE FROM distrig_customers WHERE id = 45;",
        DISTRIG_OFF, "INSERT INTO distrig_orders VALUES (10, 2);", DISTRIG_CULPRIT, "ALTER TABLE distrig_orders ENABLE TRIGGER ALL;",
        "ALTER TABLE distrig_orders DROP CONSTRAINT distrig_orders_customer_fk;", DISTRIG_ADD,
        application="distrig",
    ),
    Expected("23503", "distrig_orders_customer_fk", "statement", {"customer_id": "45"}, DISTRIG_CULPRIT,
             table="distrig_orders", related=frozenset({"checks_disabled"}), raised_by=DISTRIG_ADD),
    checks_off_by=DISTRIG_OFF,
))


# checks_disabled on its own (issue 26): a window of switched-off checks that no error of its
# session follows is still reported, once its session is over, with the writes that stayed.
# Decoys: a write in the window rolled back, a write after the window, another session's write,
# a write into another table in a DISABLE TRIGGER ALL window.
@dataclass(frozen=True)
class Window:
    """A window of switched-off checks a scenario opens, and what its finding must show."""

    off: str
    end: str
    unchecked: tuple[str, ...]  # the writes into the window's tables that stayed, in order
    table: str


WINDOWS: dict[str, Window] = {
    "replalone": Window(
        REPLICA_OFF, "RESET session_replication_role;", ("INSERT INTO replalone_child VALUES (1, 77);",),
        "replalone_child",
    ),
    "trigalone": Window(
        "ALTER TABLE trigalone_child DISABLE TRIGGER ALL;", "ALTER TABLE trigalone_child ENABLE TRIGGER ALL;",
        ("INSERT INTO trigalone_child VALUES (1, 88);",), "trigalone_child",
    ),
}


def _replalone(cluster: PgCluster) -> None:
    window = WINDOWS["replalone"]
    with psycopg.connect(cluster.conninfo, application_name="replalone", **AUTOCOMMIT) as conn, \
            psycopg.connect(cluster.conninfo, application_name="replalone-decoy", **AUTOCOMMIT) as decoy:
        run_each(decoy, "INSERT INTO replalone_child VALUES (4, 1);")
        run_each(conn, window.off, *window.unchecked, "BEGIN;", "INSERT INTO replalone_child VALUES (2, 78);",
                 "ROLLBACK;", window.end, "INSERT INTO replalone_child VALUES (3, 1);")
        run_each(decoy, "INSERT INTO replalone_child VALUES (5, 2);")


scenario(Scenario("replalone", fk_tables("replalone", deferrable=""), _replalone, None, checks_off_by=REPLICA_OFF))
scenario(Scenario(
    "trigalone",
    fk_tables("trigalone", deferrable="") + "CREATE TABLE trigalone_notes (id int, parent_id int);\n",
    lambda cluster: simple(
        cluster, WINDOWS["trigalone"].off, *WINDOWS["trigalone"].unchecked,
        "INSERT INTO trigalone_notes VALUES (1, 88);", WINDOWS["trigalone"].end,
        "INSERT INTO trigalone_child VALUES (3, 1);", application="trigalone",
    ),
    None,
    checks_off_by=WINDOWS["trigalone"].off,
))

# Values in another form than the server's (issue 26): the DETAIL prints the key as the server
# outputs it, the INSERT wrote it as the client did. Each child row's key has no parent; the same
# value in the same form is written into another table of the same transaction first (a decoy),
# and a row with a key that has its parent is written into the child table too.
CANONICAL = (
    # (name, column type, a parent's value, the value as written, as the server prints it)
    ("canonnum", "numeric(10,2)", "1.00", "1.5", "1.50"),
    ("canonts", "timestamp", "'2024-01-01 00:00'", "'2024-05-01T11:00'", "2024-05-01 11:00:00"),
    ("canontz", "timestamptz", "'2024-01-01 00:00+00'", "'2024-05-01T11:00:00Z'", "2024-05-01 13:00:00+02"),
    ("canonarr", "int[]", "'{0}'", "'{1, 2}'", "{1,2}"),
    ("canonctor", "text[]", "'{a}'", "ARRAY['x y', 'z']", '{"x y",z}'),  # the constructor; a quoted element
    ("canonjson", "jsonb", "'{}'", """'{"b": 1, "a": [2, 3]}'""", '{"a": [2, 3], "b": 1}'),
    ("canonival", "interval", "'1 day'", "'90 minutes'", "01:30:00"),
    ("canonrange", "int4range", "'[0,1)'", "'[5,15]'", "[5,16)"),
)


def _canonical(name: str, kind: str, parent: str, written: str, printed: str) -> Scenario:
    culprit = f"INSERT INTO {name}_child VALUES (2, {written});"
    # The session's zone (a fixed offset, no zone database needed) prints a timestamptz.
    zone = ("SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE;",) if kind == "timestamptz" else ()
    return Scenario(
        name,
        f"CREATE TABLE {name}_parent (v {kind} PRIMARY KEY);\n"
        f"CREATE TABLE {name}_child (id int PRIMARY KEY, v {kind} CONSTRAINT {name}_fk REFERENCES {name}_parent "
        "DEFERRABLE INITIALLY DEFERRED);\n"
        f"CREATE TABLE {name}_log (v {kind});\n"
        f"INSERT INTO {name}_parent VALUES ({parent});\n",
        _simple_txn(name, *zone, f"INSERT INTO {name}_log VALUES ({written});", f"INSERT INTO {name}_child VALUES (1, {parent});",
                    culprit),
        Expected("23503", f"{name}_fk", "commit", {"v": printed}, culprit, table=f"{name}_child"),
    )


for _canon in CANONICAL:
    scenario(_canonical(*_canon))

# The column's type from the DDL settles how a range compares: in a numrange '[5,15]' is not
# '[5,16)' (it would be in an int4range). The child row with '[5,15]' has its parent (a decoy).
scenario(Scenario(
    "canontype",
    "CREATE TABLE canontype_parent (v numrange PRIMARY KEY);\n"
    "CREATE TABLE canontype_child (id int PRIMARY KEY, v numrange CONSTRAINT canontype_fk REFERENCES canontype_parent "
    "DEFERRABLE INITIALLY DEFERRED);\n"
    "INSERT INTO canontype_parent VALUES ('[5,15]');\n",
    _simple_txn("canontype", "INSERT INTO canontype_child VALUES (1, '[5,15]');",
                "INSERT INTO canontype_child VALUES (2, '[5,16)');"),
    Expected("23503", "canontype_fk", "commit", {"v": "[5,16)"}, "INSERT INTO canontype_child VALUES (2, '[5,16)');",
             table="canontype_child"),
))

# A boolean in a composite key, written 'yes' and printed t.
scenario(Scenario(
    "canonbool",
    "CREATE TABLE canonbool_parent (flag boolean, n int, PRIMARY KEY (flag, n));\n"
    "CREATE TABLE canonbool_child (id int PRIMARY KEY, flag boolean, n int, CONSTRAINT canonbool_fk FOREIGN KEY "
    "(flag, n) REFERENCES canonbool_parent DEFERRABLE INITIALLY DEFERRED);\n"
    "INSERT INTO canonbool_parent VALUES (false, 7);\n",
    _simple_txn("canonbool", "INSERT INTO canonbool_child VALUES (1, 'no', 7);", "INSERT INTO canonbool_child VALUES (2, 'yes', 7);"),
    Expected("23503", "canonbool_fk", "commit", {"flag": "t", "n": "7"}, "INSERT INTO canonbool_child VALUES (2, 'yes', 7);",
             table="canonbool_child"),
))

# The exclusion on a range of timestamps: written with minutes, printed quoted with seconds.
# Another booking of the same room in the transaction conflicts with nothing.
CANONEX_CULPRIT = "INSERT INTO canonex_booking VALUES (2, '[2024-05-01 11:00, 2024-05-01 13:00)');"
scenario(Scenario(
    "canonex",
    "CREATE TABLE canonex_booking (id int PRIMARY KEY, during tsrange, "
    "CONSTRAINT canonex_no_overlap EXCLUDE USING gist (during WITH &&) DEFERRABLE INITIALLY DEFERRED);\n"
    "INSERT INTO canonex_booking VALUES (1, '[2024-05-01 10:00, 2024-05-01 12:00)');\n",
    _simple_txn("canonex", "INSERT INTO canonex_booking VALUES (3, '[2024-06-01 10:00, 2024-06-01 12:00)');",
                CANONEX_CULPRIT),
    Expected("23P01", "canonex_no_overlap", "commit", {"during": '["2024-05-01 11:00:00","2024-05-01 13:00:00")'},
             CANONEX_CULPRIT, table="canonex_booking"),
))


def run_decoys(cluster: PgCluster) -> None:
    """Other sessions writing the same key values, committed or rolled back: never culprits."""
    with psycopg.connect(cluster.conninfo, application_name="decoy") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS decoy_rows (id serial, parent_id int)")
        conn.execute("INSERT INTO decoy_rows (parent_id) VALUES (%s)", (42,))
        conn.execute("INSERT INTO never_child VALUES (%s, %s)", (9042, 1))
        conn.commit()


def play(cluster: PgCluster) -> None:
    """Run every scenario's setup (psql), then the scenarios, with a decoy session interleaved."""
    cluster.psql("".join(s.setup for s in SCENARIOS), application="migrate", check=True)
    decoy = psycopg.connect(cluster.conninfo, application_name="decoy", cursor_factory=ClientCursor)
    with decoy:
        decoy.execute("INSERT INTO never_child VALUES (9001, 42)")  # same key, another session, rolled back
        for s in SCENARIOS:
            s.run(cluster)
        decoy.rollback()
    run_decoys(cluster)
    # Ordinary errors, which are not incidents but other_errors.
    cluster.psql("SELEC 1;\nSELECT 1/0;\nSELECT * FROM no_such_table;\nSELECT 'x'::int;\nSELECT (1", application="noise")
    transaction_rollbacks(cluster)


def transaction_rollbacks(cluster: PgCluster) -> None:
    """Class 40 errors, other errors too: a serialization failure of each kind (a REPEATABLE READ
    update of a row another transaction updated since; SERIALIZABLE write skew) and a deadlock."""
    cluster.psql("CREATE TABLE rollback_rows (id int PRIMARY KEY, n int);\nINSERT INTO rollback_rows VALUES (1, 0), (2, 0);\n",
                 application="rollbacks", check=True)
    run = run_each
    with psycopg.connect(cluster.conninfo, application_name="rollbacks-a", **AUTOCOMMIT) as a, \
            psycopg.connect(cluster.conninfo, application_name="rollbacks-b", **AUTOCOMMIT) as b:
        run(a, "BEGIN ISOLATION LEVEL REPEATABLE READ;", "SELECT n FROM rollback_rows WHERE id = 1;")
        run(b, "UPDATE rollback_rows SET n = n + 1 WHERE id = 1;")
        run(a, "UPDATE rollback_rows SET n = n + 1 WHERE id = 1;", "ROLLBACK;")  # concurrent update
        run(a, "BEGIN ISOLATION LEVEL SERIALIZABLE;", "SELECT sum(n) FROM rollback_rows;")
        run(b, "BEGIN ISOLATION LEVEL SERIALIZABLE;", "SELECT sum(n) FROM rollback_rows;")
        run(a, "UPDATE rollback_rows SET n = 5 WHERE id = 1;")
        run(b, "UPDATE rollback_rows SET n = 5 WHERE id = 2;")
        run(a, "COMMIT;")
        run(b, "COMMIT;")  # read/write dependencies among transactions
        # A deadlock: each session holds one row and waits for the other's; the server breaks it
        # (after deadlock_timeout) with an error in one of them, and the other one goes on.
        run(a, "BEGIN;", "UPDATE rollback_rows SET n = 1 WHERE id = 1;")
        run(b, "BEGIN;", "UPDATE rollback_rows SET n = 2 WHERE id = 2;")
        waiting = threading.Thread(target=run, args=(a, "UPDATE rollback_rows SET n = 1 WHERE id = 2;"))
        waiting.start()
        run(b, "UPDATE rollback_rows SET n = 2 WHERE id = 1;")
        waiting.join(timeout=120)
        assert not waiting.is_alive(), "the deadlock was not broken"
        run(a, "ROLLBACK;")
        run(b, "ROLLBACK;")
