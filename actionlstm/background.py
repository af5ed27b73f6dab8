"""Iterate on a background thread, a few items ahead of the consumer: the next training batch is made,
and the next frame decoded and run through the pose network, while the current one is used."""

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def in_background(items: Iterable[T], ahead: int = 1, name: str = "ahead") -> Iterator[T]:
    """The items of `items`, in order, each produced on one background thread at most `ahead` items
    before it is asked for. An exception raised while producing is raised here, at that item. When the
    consumer stops early, the thread finishes the item it is on and ends before this returns, so what
    `items` reads from (a video, a camera) can be closed safely afterwards."""
    ready: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over(item):
                    return
        except BaseException as exc:  # raised on the consumer's side, where it can be handled
            hand_over(_Failure(exc))
            return
        hand_over(_DONE)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc
