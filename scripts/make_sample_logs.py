#!/usr/bin/env python3
"""Write sample_logs/ with a real PostgreSQL server: the classic commit-time FK failure.

A child row is inserted under a DEFERRABLE INITIALLY DEFERRED foreign key whose parent never
arrives; the transaction fails at COMMIT with SQLSTATE 23503. Around it: ordinary traffic from a
psycopg 3 application (server-side parameters) whose transaction overlaps the failing one.

Usage (from the repository root, as root or as a user that can run initdb):
    python scripts/make_sample_logs.py [OUTPUT_DIR]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from tests.pgcluster import find_bindir, make_template, running_cluster

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


def generate(output: Path) -> None:
    bindir = find_bindir()
    work = Path(tempfile.mkdtemp(prefix="logdiag-sample-"))
    work.chmod(0o755)
    try:
        template = make_template(bindir, work)
        with running_cluster(bindir, template, SETTINGS) as cluster:
            cluster.psql(SCHEMA, application="migrate", check=True)
            with psycopg.connect(cluster.conninfo, application_name="shop-api") as api:
                api.execute("SELECT id, email FROM customers WHERE id = %s", (1,))
                api.execute("INSERT INTO orders VALUES (%s, %s, %s)", (900, 2, 1250))
                # The billing job runs while shop-api's transaction is still open.
                cluster.psql(BILLING_JOB, application="billing-job")
                api.execute("UPDATE customers SET email = %s WHERE id = %s", ("grace@example.org", 2))
                api.commit()
            cluster.psql("SELECT count(*) FROM orders;", application="psql")
            cluster.stop()
            output.mkdir(parents=True, exist_ok=True)
            for fmt in ("stderr", "csvlog", "jsonlog"):
                source = cluster.log_file(fmt)
                shutil.copyfile(source, output / source.name)
                print(f"wrote {output / source.name}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("sample_logs"))
