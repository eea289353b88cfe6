"""Actions: what a task does on each host, as data and pure planners the engine runs.

An action names the facts it reads, the steps it converges (each a planner:
facts in, plan out) and how a host is proven to work afterwards. The engine
alone decides what check, diff and repair mean, applies, fires the Docker
handler, verifies and reports; an action never touches a connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..engines import described
from ..facts.base import Section
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.inventory import Host, Inventory
from ..model.outcome import Outcome
from ..model.plan import StepPlan

Planner = Callable[[HostFacts, StepContext], StepPlan]


@dataclass(frozen=True)
class Check:
    """How a host is proven to work once its steps are done: known from its facts, or a script to run."""

    step: str
    script: str = ""
    # Known from the facts already: why it failed; what a pass says (else the script's marks).
    failed: str = ""
    passed: str = ""


@dataclass(frozen=True)
class Step:
    """One planner the engine converges on a host: plan from the facts, apply only what differs."""

    planner: Planner
    # The row's step; "" takes the plan's own.
    name: str = ""
    # Gather again after applying and plan once more (a step whose changes later reads see); a
    # function of the facts and context decides per host.
    settle: bool | Callable[[HostFacts, StepContext], bool] = True
    # Shell run right after the changes, in the same session (a check), when something was applied.
    then: Callable[[HostFacts, StepContext], str] | None = None
    # The proof that belongs to this step's row (a node's one row): given whether the step changed
    # anything; not run in check mode.
    check: Callable[[HostFacts, StepContext, bool], Check | None] | None = None


class Action:
    """What a task does on each host; subclasses set the class attributes and override what they need."""

    # The task's name (--json's "task"), and the step of every row when the task has one row per host
    # ("": rows that fail before any step are named by the phase: connect, gather-facts).
    name = ""
    step = ""
    # A task about the registry instances themselves: each registry host uses its own.
    serving = False
    # A host fails when the registry's address cannot be learnt (status carries on without it).
    needs_registry = True
    # No progress lines: the table (status) or --json is the only output.
    quiet = False
    # The recap shows each host's engines.
    with_engine = False
    # Work done on this machine (export-images): no SSH, no registry to learn.
    local = False

    def hosts(self, inventory: Inventory) -> tuple[Host, ...]:
        """The hosts without ``-H``."""
        return (inventory.deploy_host,)

    def context(self, ctx: StepContext, host: Host) -> StepContext:
        """What this host plans with (a node's own placement); the run's context by default."""
        return ctx

    def sections(self, ctx: StepContext) -> tuple[Section, ...]:
        """The facts every step and the check read, gathered in one round trip."""
        return ()

    def steps(self, ctx: StepContext) -> tuple[Step, ...]:
        return ()

    def check(self, facts: HostFacts, ctx: StepContext) -> Check | None:
        """A row of its own proving the host works after its steps (skipped in check mode); None: none."""
        return None

    def data(self, facts: HostFacts, ctx: StepContext) -> dict:
        """What --json (and a read-only task's table) shows of the host, beyond its rows."""
        return {}

    def explain(self, outcome: Outcome, ctx: StepContext) -> str:
        """What to add to a row before it is shown (a failure's fix); ""."""
        return ""

    def engine(self, facts: HostFacts) -> str:
        """The engines a row names (the recap's engine column)."""
        return described(facts)
