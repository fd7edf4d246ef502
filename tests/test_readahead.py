"""Items produced ahead by a thread: reading and inflating overlap with classification."""

from __future__ import annotations

import gc
import itertools
import threading
import time

import pytest

from logdiag.readahead import in_thread


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
