#!/usr/bin/env python3
"""Write sample_logs/ with a real PostgreSQL server: the classic commit-time FK failure.

A child row is inserted under a DEFERRABLE INITIALLY DEFERRED foreign key whose parent never
arrives; the transaction fails at COMMIT with SQLSTATE 23503. Around it: ordinary traffic from a
psycopg 3 application (server-side parameters) whose transaction overlaps the failing one.

``--storm`` writes ``sample_logs/storm/`` instead: many violations of one foreign key, the
grouped report's sample (issue 29): 60 transactions of two applications insert orders for
customers that do not exist (one statement shape), 3 more repoint an order with an UPDATE.

Usage (from the repository root, as root or as a user that can run initdb):
    python scripts/make_sample_logs.py [--storm] [OUTPUT_DIR]
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg import ClientCursor

from tests.pgcluster import PgCluster, find_bindir, make_template, running_cluster

SETTINGS = {
    "log_line_prefix": "%m [%p] %q%u@%d ",  # Debian's default
    "log_statement": "all",
    "log_connections": "on",
    "log_disconnections": "on",
}

SCHEMA = """
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL
        REFERENCES customers (id) DEFERRABLE INITIALLY DEFERRED,
    total_cents integer NOT NULL CHECK (total_cents >= 0)
);
INSERT INTO customers VALUES (1, 'ada@example.com'), (2, 'grace@example.com');
"""

# The billing job writes an order for customer 42, whom nobody ever inserts.
BILLING_JOB = """
BEGIN;
INSERT INTO orders (id, customer_id, total_cents) VALUES (1001, 1, 1999);
INSERT INTO orders (id, customer_id, total_cents) VALUES (1002, 42, 4999);
UPDATE orders SET total_cents = total_cents + 100 WHERE id = 1001;
COMMIT;
"""


def _classic(cluster: PgCluster) -> None:
    with psycopg.connect(cluster.conninfo, application_name="shop-api") as api:
        api.execute("SELECT id, email FROM customers WHERE id = %s", (1,))
        api.execute("INSERT INTO orders VALUES (%s, %s, %s)", (900, 2, 1250))
        # The billing job runs while shop-api's transaction is still open.
        cluster.psql(BILLING_JOB, application="billing-job")
        api.execute("UPDATE customers SET email = %s WHERE id = %s", ("grace@example.org", 2))
        api.commit()
    cluster.psql("SELECT count(*) FROM orders;", application="psql")


def _storm(cluster: PgCluster) -> None:
    """Orders for customers nobody inserts: 40 from billing-job, 20 from shop-api, 3 repointed."""
    order = 2000
    for application, count, updates in (("billing-job", 40, 0), ("shop-api", 20, 3)):
        with psycopg.connect(cluster.conninfo, application_name=application, cursor_factory=ClientCursor) as conn:
            for _ in range(count):
                order += 1
                conn.execute("INSERT INTO orders (id, customer_id, total_cents) VALUES (%s, %s, %s)",
                             (order, 4000 + order, 1000 + order))
                with contextlib.suppress(psycopg.errors.ForeignKeyViolation):
                    conn.commit()
            for _ in range(updates):
                order += 1
                conn.execute("INSERT INTO orders (id, customer_id, total_cents) VALUES (%s, %s, %s)", (order, 1, 500))
                conn.execute("UPDATE orders SET customer_id = %s WHERE id = %s", (4000 + order, order))
                with contextlib.suppress(psycopg.errors.ForeignKeyViolation):
                    conn.commit()


def generate(output: Path, storm: bool = False) -> None:
    bindir = find_bindir()
    work = Path(tempfile.mkdtemp(prefix="logdiag-sample-"))
    work.chmod(0o755)
    try:
        template = make_template(bindir, work)
        with running_cluster(bindir, template, SETTINGS) as cluster:
            cluster.psql(SCHEMA, application="migrate", check=True)
            (_storm if storm else _classic)(cluster)
            cluster.stop()
            output.mkdir(parents=True, exist_ok=True)
            for fmt in ("stderr", "csvlog", "jsonlog"):
                source = cluster.log_file(fmt)
                shutil.copyfile(source, output / source.name)
                print(f"wrote {output / source.name}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--storm"]
    storm = "--storm" in sys.argv[1:]
    generate(Path(arguments[0]) if arguments else Path("sample_logs/storm" if storm else "sample_logs"), storm)
