"""Run a generator in a background thread, handing its items over through a bounded queue.

One producer thread keeps the order of the wrapped generator, so prefetching never changes
what the consumer sees; it only overlaps I/O and decoding with the consumer's work.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_S = 0.1


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetched(make_items: Callable[[], Iterator[T]], depth: int, name: str = "h3spark-feed") -> Iterator[T]:
    """Yield the items of ``make_items()`` produced up to ``depth`` ahead by a thread.

    An exception in the producer is raised in the consumer; closing the generator early
    (a ``break``) stops the producer and joins its thread.
    """
    if depth <= 0:
        yield from make_items()
        return
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    thread = threading.Thread(target=_produce, args=(make_items, items, stop), name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        _drain(items)
        thread.join()


def _produce(make_items: Callable[[], Iterator[T]], items: queue.Queue, stop: threading.Event) -> None:
    generator = make_items()
    try:
        for item in generator:
            if not _put(items, item, stop):
                return
        _put(items, _DONE, stop)
    except BaseException as error:  # handed to the consumer, which raises it
        _put(items, _Failure(error), stop)
    finally:
        getattr(generator, "close", lambda: None)()  # release the producer's open files now, not at garbage collection


def _put(items: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            items.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _drain(items: queue.Queue) -> None:
    while True:
        try:
            items.get_nowait()
        except queue.Empty:
            return
