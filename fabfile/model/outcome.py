"""Outcomes: how one step went on one host, as the recap and --json show it."""

from __future__ import annotations

from dataclasses import dataclass, field

OK, CHANGED, FAILED, UNREACHABLE, SKIPPED = "ok", "changed", "failed", "unreachable", "skipped"
STATUSES = (OK, CHANGED, FAILED, UNREACHABLE, SKIPPED)


@dataclass
class Outcome:
    """How one step (or one whole node) went on one host."""

    host: str
    step: str
    status: str
    message: str = ""
    seconds: float = 0.0
    # The node's engines and versions, e.g. "docker 26.1.5" or "docker 20.10.24+podman 4.3.1".
    engine: str = ""
    # What --json adds for this row: a status row's fields, a sync's images, a pull's counts.
    data: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in (FAILED, UNREACHABLE)
