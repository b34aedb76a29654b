"""Read the next page while the current one is written: a one-page-ahead producer thread.

A sync run alternates two kinds of waiting: on the provider (the HTTP call, then decoding
and mapping the page) and on the database (COPY, merge, commit). `prefetched(source,
prepare)` runs the source iterator (the provider's pages) and `prepare` (mapping) in a
thread of its own, so the provider call for page N+1 overlaps the database work for page N.
Python's GIL is released while either thread waits on a socket, which is where the gain is.

Guarantees (tests/sync/test_prefetch.py):

- Order: items come out in the source's order, each with what `prepare` made of it.
- Bounded: the thread fetches at most one item ahead. It takes a slot before each fetch and
  the consumer gives it back when it takes an item, so at most two items are alive at any
  time: the one being consumed and the one fetched (or being fetched) after it.
- Errors: an exception raised by the source or by `prepare` is raised to the consumer at
  the point in the sequence where it happened, after every item before it (a truncated
  fetch's pages stand, as without the thread); the thread then ends.
- Stopping: when the consumer stops early (a cancelled run, an error while writing: the
  generator is closed), the thread is told to stop, the source is closed in the thread that
  ran it, and the consumer waits for the thread to end (an HTTP call in progress finishes
  first; the HTTP layer's timeouts bound it). A stopped run may therefore have read one
  page more than it wrote: that page is never applied.
- The thread closes its own database connections, if anything it ran opened one (an OAuth
  token refresh locks the integration's row).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

from django.db import connections

_END = object()
_POLL_SECONDS = 0.5  # how often a waiting producer looks at the stop flag


def prefetched[T, P](
    source: Iterator[T], prepare: Callable[[T], P], *, name: str = "sync-prefetch"
) -> Iterator[tuple[T, P]]:
    """(item, prepare(item)) for each item of `source`, fetched one ahead in a thread."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    slot = threading.Semaphore(1)  # fetches the producer may start before the next take
    stop = threading.Event()

    def put(message: tuple) -> bool:
        while not stop.is_set():
            try:
                handoff.put(message, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            while True:
                while not slot.acquire(timeout=_POLL_SECONDS):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(source)
                except StopIteration:
                    put((_END, None, None))
                    return
                prepared = prepare(item)
                if not put((item, prepared, None)):
                    return
        except BaseException as exc:  # relayed to the consumer, in order
            put((None, None, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                try:
                    close()
                finally:
                    connections.close_all()
            else:
                connections.close_all()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, prepared, error = handoff.get()
            if error is not None:
                raise error
            if item is _END:
                return
            slot.release()  # the producer may fetch the next one while this one is used
            yield item, prepared
    finally:
        stop.set()
        slot.release()  # wake a producer waiting for a slot
        while thread.is_alive():
            try:  # unblock a producer waiting to hand an item over
                handoff.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                pass
            thread.join(timeout=0)
        thread.join()
