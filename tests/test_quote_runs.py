"""csvlog record starts worked out a block at a time, before the blocks before it are known."""

from __future__ import annotations

import random

import pytest

from logdiag.fastpath.scan import _quote_runs


def _walked(quotes: list[int], ends: list[bool], parity: int) -> tuple[list[bool], int]:
    """Line after line: whether each line starts inside a quoted field, and the parity after the
    last. A line that ends like a record ends outside any field; the others flip the parity
    once per double quote."""
    inside = []
    for count, ends_record in zip(quotes, ends, strict=True):
        inside.append(bool(parity))
        parity = 0 if ends_record else (parity + count) % 2
    return inside, parity


@pytest.mark.parametrize("seed", range(4))
def test_quote_runs_agree_with_walking_every_line(seed):
    import polars as pl

    chance = random.Random(seed)
    for _ in range(400):
        height = chance.randint(0, 12)
        ends = [chance.random() < chance.choice((0.1, 0.5, 0.9)) for _ in range(height)]
        quotes = [chance.randint(0, 3) for _ in range(height)]
        frame = pl.DataFrame(
            {"text": ['"' * count for count in quotes], "ends_record": ends},
            schema={"text": pl.Utf8, "ends_record": pl.Boolean},
        ).with_columns(index=pl.int_range(pl.len(), dtype=pl.Int64))
        runs = _quote_runs(frame)
        for parity in (0, 1):
            inside, after = _walked(quotes, ends, parity)
            found = [
                (index in runs.odd_since_end) != bool(parity and index < runs.first_run)
                for index in range(height)
            ]
            assert found == inside, (quotes, ends, parity, runs)
            assert runs.parity_after[parity] == after, (quotes, ends, parity, runs)
