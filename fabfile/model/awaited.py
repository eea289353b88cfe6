"""A mapping another thread is still computing: the deployment host's answers a run needs only at plan
time (the registry's digests), asked while the nodes connect and gather instead of before."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from typing import TypeVar

from .plan import PlanError

K = TypeVar("K")
V = TypeVar("V")


class Awaited(Mapping[K, V]):
    """The mapping ``future`` gives (at ``index`` when it gives a tuple); the first look waits for it, at
    most ``timeout`` seconds. A failure, or no answer in time, is a ``PlanError`` naming ``what``."""

    def __init__(self, future: Future, what: str, timeout: float, index: int | None = None) -> None:
        self.future = future
        self.what = what
        self.timeout = timeout
        self.index = index

    def _found(self) -> Mapping[K, V]:
        try:
            found = self.future.result(timeout=self.timeout)
        except TimeoutError:
            raise PlanError(f"{self.what}: no answer after {self.timeout:.0f} s") from None
        except Exception as error:  # noqa: BLE001 - the asking thread's failure is this plan's error
            raise PlanError(f"{self.what}: {error}") from None
        return found if self.index is None else found[self.index]

    def __getitem__(self, key: K) -> V:
        return self._found()[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._found())

    def __len__(self) -> int:
        return len(self._found())


def in_background(ask: Callable[[], tuple], what: str, timeout: float, count: int) -> tuple[Awaited, ...]:
    """``ask()`` started now in a thread of its own (a daemon: a run that never reads its answer does not
    wait for it at exit); its ``count`` mappings, each waited for when first read."""
    future: Future = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(ask())
        except BaseException as error:  # noqa: BLE001 - handed to whoever reads the answer
            future.set_exception(error)

    threading.Thread(target=run, name="awaited", daemon=True).start()
    return tuple(Awaited(future, what, timeout, index) for index in range(count))
