"""A mapping another thread is still computing: the deployment host's answers a run needs only at plan
time (the registry's digests), asked while the nodes connect and gather instead of before."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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


def parts(future: Future, what: str, timeout: float, count: int) -> tuple[Awaited, ...]:
    """The ``count`` mappings of the tuple ``future`` gives, each waited for when first read."""
    return tuple(Awaited(future, what, timeout, index) for index in range(count))
