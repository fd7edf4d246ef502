"""Produce an iterator's items on a thread, a few ahead of their consumer.

Reading a file, inflating gzip and searching bytes release the GIL: done ahead by a thread, they
overlap with the polars work (which releases it too) and the Python work of the main thread.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Iterator
from typing import Any


def in_thread(items: Iterator[Any], depth: int = 8, head_start: int = 0) -> Iterator[Any]:
    """The items of an iterator, produced by a thread that starts at once, at most ``depth``
    ahead of their consumer (the one being produced counts: each item is a big block of
    memory, and with ``depth=1`` the next one is made while this one is used, no more).

    ``head_start`` more may be made before the consumer takes its first ones (while it gets
    ready, e.g. imports polars): the room for them is not given back when they are taken.

    An exception the iterator raises is raised here, in order. Stopping early (closing the
    returned generator, or dropping it) lets the thread end too.
    """
    handoff: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
    room = threading.Semaphore(depth + head_start)  # released as the consumer takes an item
    done = threading.Event()

    def produce() -> None:
        try:
            iterator = iter(items)
            while _wait_for(room, done):
                try:
                    item = next(iterator)
                except StopIteration:
                    handoff.put((False, None))
                    return
                handoff.put((True, item))
        except BaseException as exc:  # noqa: BLE001 - handed over to the consumer
            handoff.put((False, exc))

    threading.Thread(target=produce, name="logdiag-input", daemon=True).start()
    consumer = _handed_over(handoff, room, done, head_start)
    weakref.finalize(consumer, done.set)  # a consumer dropped before it started stops the thread too
    return consumer


def _wait_for(room: threading.Semaphore, done: threading.Event) -> bool:
    """Wait for room for one more item; False when the consumer has gone."""
    while not room.acquire(timeout=0.1):
        if done.is_set():
            return False
    return not done.is_set()


def _handed_over(
    handoff: queue.SimpleQueue[tuple[bool, Any]], room: threading.Semaphore, done: threading.Event, head_start: int,
) -> Iterator[Any]:
    try:
        while True:
            more, item = handoff.get()
            if not more:
                if item is not None:
                    raise item
                return
            if head_start:
                head_start -= 1
            else:
                room.release()
            yield item
    finally:
        done.set()
