"""DDL is parsed only when a diagnosis needs it, and once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from logdiag.diagnosis import catalog
from logdiag.diagnosis.sessions import SessionTracker
from logdiag.pipeline import Run
from logdiag.reader import LogReader

SAMPLE = Path(__file__).parent.parent / "sample_logs" / "postgresql.csv"


def test_each_ddl_statement_is_parsed_once(tmp_path, monkeypatch):
    """The bundled sample log three times over (the server's own lines, as a log that recreates
    its tables would have them): every incident needs the CREATE TABLE of its table, parsed once."""
    log = tmp_path / "postgresql.csv"
    log.write_bytes(SAMPLE.read_bytes() * 3)
    parsed: Counter[str] = Counter()
    real = catalog.statement_writes

    def counting(text: str, *args, **kwargs):
        parsed[text] += 1
        return real(text, *args, **kwargs)

    monkeypatch.setattr(catalog, "statement_writes", counting)
    catalog._parsed.cache_clear()
    incidents = list(Run(LogReader([str(log)]), SessionTracker()).incidents())
    assert len(incidents) == 3 * len(list(Run(LogReader([str(SAMPLE)]), SessionTracker()).incidents()))
    assert any("CREATE TABLE orders" in text for text in parsed)
    assert set(parsed.values()) == {1}, parsed


def _statement(text: str):
    from types import SimpleNamespace

    return SimpleNamespace(text=text)


def test_the_ddl_log_finds_what_a_search_of_every_statement_finds():
    """The index by word gives a diagnosis the statements that name its tables or constraints,
    as searching each statement did, without searching thousands of temporary tables' DDL."""
    log = catalog.DdlLog(limit=50)
    texts = [f"CREATE TEMP TABLE scratch_{n} (id int PRIMARY KEY)" for n in range(40)]
    texts[7] = 'CREATE TABLE "Orders" (id int, customer_id int CONSTRAINT orders_customer_fk REFERENCES customers)'
    texts[30] = "ALTER TABLE public.orders ADD CONSTRAINT orders_total_check CHECK (total > 0)"
    for text in texts:
        log.append(_statement(text))
    view = log.view()
    log.append(_statement("CREATE TABLE orders (later int)"))  # after the view: not in it
    expected = {
        "orders": [texts[7], texts[30]],  # a quoted "Orders", a schema-qualified public.orders
        "customers": [texts[7]],
        "orders_total_check": [texts[30]],
        "public.orders": [texts[30]],  # a name with a dot: searched for in every statement
        "scratch_3": [texts[3]],  # a word, not a part of scratch_30
    }
    for name, statements in expected.items():
        assert [s.text for s in view.mentioning([name])] == statements, name


def test_the_ddl_log_keeps_its_latest_statements_only():
    log = catalog.DdlLog(limit=3)
    for n in range(10):
        log.append(_statement(f"CREATE TABLE t{n} (id int)"))
    assert [s.text for s in log.view()] == [f"CREATE TABLE t{n} (id int)" for n in (7, 8, 9)]
    assert log.view().mentioning(["t2"]) == []
    assert [s.text for s in log.view().mentioning(["t8"])] == ["CREATE TABLE t8 (id int)"]
