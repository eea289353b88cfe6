"""Plans: what a step will change on a host, as data the engine checks, shows, applies and reports.

A plan changes files (written atomically, with backups), runs commands, and
runs jobs: changes that are not files, such as copying blobs into the registry,
deleting tags or pulling images, each a script with the reader of its output.
Planners make plans from facts alone; only the engine applies them.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

RELOAD, RESTART = "reload", "restart"


class PlanError(Exception):
    """A planner cannot plan: a file it must read cannot be read safely (the message names it)."""


@dataclass(frozen=True)
class FileChange:
    """One file's content before and after; ``None`` means absent."""

    path: str
    before: str | None
    after: str | None
    # A command that must accept the new content (given its temporary file) before it replaces the old.
    checker: str = ""
    # The mode a new file gets (an existing one keeps its own), e.g. "600" for a key or a password.
    mode: str = "644"
    # Content never shown (diff mode says only that it changes).
    secret: bool = False

    def diff(self) -> str:
        """A unified diff, headed like Ansible's before/after; a secret's diff names only the file."""
        if self.secret:
            state = "new" if self.before is None else "removed" if self.after is None else "changed"
            return f"--- {self.path}: {state} (a secret: content not shown)\n"
        return "".join(
            difflib.unified_diff(
                (self.before or "").splitlines(keepends=True),
                (self.after or "").splitlines(keepends=True),
                fromfile=f"before: {self.path}" + ("" if self.before is not None else " (absent)"),
                tofile=f"after: {self.path}" + ("" if self.after is not None else " (removed)"),
            )
        )


@dataclass(frozen=True)
class Done:
    """What a job's output says: the row's message, a failure, a table to show, data for --json, a change."""

    message: str
    failed: bool = False
    detail: str = ""
    data: dict = field(default_factory=dict)
    # Whether the job changed anything (a pull of images the node turned out to hold did not).
    changed: bool = True


@dataclass
class Job:
    """A change that is not a file: a script the engine runs as root on the host, and its reader."""

    summary: str
    script: str
    done: Callable[[str], Done]
    # What it would change, line by line, for diff mode.
    diff: str = ""
    # (a file on this machine, its name in the run's private folder on the host: "$UPLOADS/NAME")
    uploads: list[tuple[str, str]] = field(default_factory=list)
    # Reads each output line as it comes; what it returns is shown as a progress line. The seconds
    # the job may take (0: kolla_registry.command_timeout).
    on_line: Callable[[str], str | None] | None = None
    timeout: int = 0
    # Given a failure's message: the script to run on a new connection to put the host right, or ""
    # (the job said what state it left); and what that script's output says.
    recover: Callable[[str], str] | None = None
    recover_done: Callable[[str], str] | None = None


@dataclass(frozen=True)
class Handler:
    """Apply what the Docker handler has pending now, then expect ``registry`` (in)secure in docker info."""

    registry: str | None = None
    insecure: bool = True


@dataclass
class StepPlan:
    """What one step will change on one host, and why."""

    step: str
    files: list[FileChange] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    # (a file on this machine, its name in the run's private folder on the host: "$UPLOADS/NAME")
    uploads: list[tuple[str, str]] = field(default_factory=list)
    # The Docker handler this plan's files notify (reload or restart), and whether it fires it now.
    handler: str | None = None
    fire: Handler | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    # A table shown before the row (what would change, or what is there), and data for --json.
    detail: str = ""
    data: dict = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.files or self.commands or self.jobs or self.fire)

    def summary(self) -> str:
        """One line: what changes, or why nothing does."""
        if self.error:
            return self.error
        parts = [f"upload {local}" for local, _ in self.uploads]
        parts += [f"{'remove' if f.after is None else 'write'} {f.path}" for f in self.files]
        parts += [_short(command) for command in self.commands]
        parts += [job.summary for job in self.jobs]
        return "; ".join(parts + self.notes)

    def merge(self, other: StepPlan) -> None:
        """Take ``other``'s changes into this plan (one host, one apply); its error ends the merge."""
        self.error = self.error or other.error
        self.files += other.files
        self.commands += other.commands
        self.jobs += other.jobs
        self.uploads += other.uploads
        self.notes += other.notes
        self.handler = merged_handler(self.handler, other.handler)
        self.fire = self.fire or other.fire


def merged_handler(first: str | None, second: str | None) -> str | None:
    """One Docker handler for two notifications: a restart covers a reload."""
    if RESTART in (first, second):
        return RESTART
    return first or second


def _short(command: str) -> str:
    first = command.strip().splitlines()[0] if command.strip() else command
    first = first.removeprefix("# ")
    return first if len(first) <= 100 else first[:97] + "..."
