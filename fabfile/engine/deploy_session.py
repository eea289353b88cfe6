"""One session on the deployment host that reads in two turns, in a thread of its own.

pull-images and check-images ask it two things, the second depending on the
first: the release the cloud is pinned to, then the registry's digests of the
images at that release. Each used to be a run of its own (a connection and a
gather of the registry's address each): the digests came last, after the nodes
were ready to plan with them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from fabric import Config

from ..facts.base import Section
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.inventory import Inventory
from ..registry import access as rules
from .hostrun import HostRun

T = TypeVar("T")


@dataclass(frozen=True)
class Turn(Generic[T]):
    """The second turn: its sections (from the context that knows the registry), what it makes of its facts,
    and what it gives when the session failed."""

    sections: Callable[[StepContext], tuple[Section, ...]]
    read: Callable[[HostFacts, StepContext], T]
    otherwise: T
    answer: Future[T] = field(default_factory=Future)


class DeploySession:
    """The deployment host, asked from ``start`` on: ``first`` gathered with the registry's access (it serves:
    its own instance's address, CA and login), then the turn ``then`` hands it, in the same connection.
    Every wait is bounded by ``timeout``; a failure gives each turn its fallback, never an exception."""

    def __init__(self, inventory: Inventory, ctx: StepContext, config: Config | None, timeout: float) -> None:
        self.inventory = inventory
        self.ctx = replace(ctx, host_name=inventory.deploy_host.name)
        self.config = config
        self.timeout = timeout
        self._first: Future[HostFacts] = Future()
        self._turn: Future[Turn] = Future()

    def start(self, first: tuple[Section, ...]) -> None:
        threading.Thread(target=self._serve, args=(first,), name="deploy-session", daemon=True).start()

    def gathered(self) -> HostFacts:
        """The first turn's facts (the registry's access among them); raises what kept the session from
        answering, ``TimeoutError`` when it did not in time."""
        return self._first.result(timeout=self.timeout)

    def first(self) -> HostFacts:
        """The first turn's facts; empty when the session failed or did not answer in time."""
        try:
            return self.gathered()
        except Exception:  # noqa: BLE001 - unreachable, failed or late: nothing read, as if nothing were there
            return HostFacts()

    def then(self, turn: Turn[T]) -> Future[T]:
        """Hand the session its second turn; its answer (``turn.otherwise`` when the session failed)."""
        self._turn.set_result(turn)
        return turn.answer

    def _serve(self, first: tuple[Section, ...]) -> None:
        host = self.inventory.deploy_host
        try:
            run = HostRun(host, self.ctx, self.config)
        except Exception as error:  # noqa: BLE001 - e.g. an unreadable known_hosts: every turn's fallback
            self._fail(error)
            return
        try:
            run.connection.open()
            facts = run.gather((*first, *rules.SECTIONS))
            run.with_registry(rules.seen_from(self.inventory, host, rules.from_facts(self.inventory, facts), serving=True))
            self._first.set_result(facts)
            turn = self._turn.result(timeout=self.timeout)
            turn.answer.set_result(turn.read(run.gather(turn.sections(run.ctx)), run.ctx))
        except Exception as error:  # noqa: BLE001 - any failure: every turn not yet answered gets its fallback
            self._fail(error)
        finally:
            # The answers are given: a failed close changes none of them.
            with contextlib.suppress(Exception):
                run.close()

    def _fail(self, error: Exception) -> None:
        if not self._first.done():
            self._first.set_exception(error)
        # A turn handed later still gets its fallback.
        self._turn.add_done_callback(lambda handed: _fall_back(handed.result()))


def _fall_back(turn: Turn) -> None:
    if not turn.answer.done():
        turn.answer.set_result(turn.otherwise)
