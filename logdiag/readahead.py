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


def in_thread(items: Iterator[Any], depth: int = 8) -> Iterator[Any]:
    """The items of an iterator, produced ``depth`` ahead by a thread that starts at once.

    An exception the iterator raises is raised here, in order. Stopping early (closing the
    returned generator, or dropping it) lets the thread end too.
    """
    handoff: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    done = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not done.is_set():
                    try:
                        handoff.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if done.is_set():
                    return
            handoff.put((False, None))
        except BaseException as exc:  # noqa: BLE001 - handed over to the consumer
            handoff.put((False, exc))

    threading.Thread(target=produce, name="logdiag-input", daemon=True).start()
    consumer = _handed_over(handoff, done)
    weakref.finalize(consumer, done.set)  # a consumer dropped before it started stops the thread too
    return consumer


def _handed_over(handoff: queue.Queue[tuple[bool, Any]], done: threading.Event) -> Iterator[Any]:
    try:
        while True:
            more, item = handoff.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        done.set()
