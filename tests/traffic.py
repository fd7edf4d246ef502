"""Traffic that tests send to a real server: what each test executed is what it expects back."""

from __future__ import annotations

import contextlib

import psycopg

from tests.pgcluster import PgCluster

SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (
    id int PRIMARY KEY,
    customer_id int REFERENCES customers (id) DEFERRABLE INITIALLY DEFERRED,
    note text
);
"""

#: The classic incident plus ordinary traffic, through psql (simple protocol).
PSQL_SCRIPT = SCHEMA + """
INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace');
BEGIN;
INSERT INTO orders VALUES (10, 1, 'fine');
INSERT INTO orders
    VALUES (11, 42, 'a multi-line statement, "quoted", with a	tab');
COMMIT;
INSERT INTO customers VALUES (1, 'duplicate');
SELECT * FROM no_such_table;
SELEC 1;
DO $$BEGIN RAISE WARNING 'a warning with % inside', '[bold]markup[/bold]'; END$$;
SELECT 'it''s' AS "quoted ""name"" col";
"""


def run_psql_traffic(cluster: PgCluster) -> None:
    """The psql part: deferred FK failing at COMMIT, unique and syntax errors, a WARNING."""
    cluster.psql(PSQL_SCRIPT)


def run_driver_traffic(cluster: PgCluster) -> None:
    """psycopg 3 with server-side binding (extended protocol): parameters land in DETAIL lines."""
    with psycopg.connect(cluster.conninfo, application_name="shop-api", autocommit=False) as conn:
        conn.execute("INSERT INTO customers VALUES (%s, %s)", (3, "Linus"))
        conn.commit()
        conn.execute("INSERT INTO orders VALUES (%s, %s, %s)", (20, 777, "no such customer"))
        with contextlib.suppress(psycopg.errors.ForeignKeyViolation):
            conn.commit()
