"""Items produced ahead by a thread: reading and inflating overlap with classification."""

from __future__ import annotations

import gc
import itertools
import threading
import time

import pytest

from logdiag.fastpath.readahead import in_thread


def test_in_thread_hands_over_items_and_errors_in_order():
    def items():
        yield from (1, 2, 3)
        raise ValueError("corrupt input")

    received: list[int] = []
    with pytest.raises(ValueError, match="corrupt input"):
        received.extend(in_thread(items(), depth=1))
    assert received == [1, 2, 3]


def test_in_thread_starts_at_once_and_stops_when_dropped():
    produced = threading.Event()

    def endless():
        for number in itertools.count():
            produced.set()
            yield number

    before = threading.active_count()
    consumer = in_thread(endless(), depth=1)
    assert produced.wait(5), "the producer did not start before the first item was asked for"
    assert threading.active_count() == before + 1
    del consumer
    gc.collect()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before


def test_in_thread_runs_ahead_by_depth_and_a_head_start_only_once():
    made = itertools.count(1)
    counted: list[int] = []

    def numbers():
        while True:
            counted.append(next(made))
            yield counted[-1]

    def settled(expected: int) -> int:
        deadline = time.monotonic() + 5
        while len(counted) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # a producer that ignored its bound would run far ahead meanwhile
        return len(counted)

    consumer = in_thread(numbers(), depth=1, head_start=3)
    assert settled(4) == 4  # depth + head start, before anything is taken
    assert [next(consumer) for _ in range(3)] == [1, 2, 3]
    assert settled(4) == 4  # the head start's room is not given back
    assert next(consumer) == 4
    assert settled(5) == 5  # from now on: one ahead
    assert next(consumer) == 5
    assert settled(6) == 6
