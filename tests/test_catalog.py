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
