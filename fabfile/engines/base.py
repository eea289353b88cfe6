"""One interface for every container engine a node may run: what is read, how it trusts, pulls and proves.

configure-targets, pull-images and status loop over ``ENGINES`` and never name
an engine: a new one is one package implementing this, plus one tuple entry.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..facts.base import Section
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.marks import MARK
from ..model.plan import StepPlan
from ..registry.paths import REGISTRY_USER
from .shell import login_lines

PULLED, PRESENT, MISSING = "pulled", "present", "missing"
# What a failed pull says when another try cannot help (the image, the rights or the trust is missing).
PERMANENT_ERRORS = (
    "manifest unknown",
    "not found",
    "unauthorized",
    "denied",
    "invalid reference format",
    "no such image",
    "http response to https client",
    "x509",
    "certificate",
)
RETRY_DELAY = 5  # seconds; kolla-ansible's pull retries wait as long


@dataclass(frozen=True)
class Insecure:
    """Something that makes an engine treat a TLS registry as insecure (no certificate check, and
    Docker falls back to plain HTTP): the entry as written, where it is, whether it is this tool's."""

    entry: str
    where: str
    ours: bool

    def __str__(self) -> str:
        return f"{self.entry} ({self.where})"


class ContainerEngine:
    """A container engine on a node, behind the interface every task uses."""

    name = ""
    # The shell of one pull of "$ref" (see ``pull_script``): before it, the pull, its status, its digest.
    before_pull = ""
    pull_command = ""
    pull_status = ""
    pull_digest = ""

    def installed(self, facts: HostFacts) -> bool:
        return bool(facts.engine(self.name).version)

    def version_sections(self) -> tuple[Section, ...]:
        """Its version, and whether its daemon answers."""
        raise NotImplementedError

    def target_sections(self, ctx: StepContext, verify: bool) -> tuple[Section, ...]:
        """What configure-targets reads: its version and trust config and, with ``verify``, the pull check
        where the node already trusts the registry (a run that changes nothing then needs no second session)."""
        raise NotImplementedError

    def status_sections(self, ctx: StepContext) -> tuple[Section, ...]:
        """What status reads: its version and trust config."""
        raise NotImplementedError

    def held_images(self) -> Section:
        """Every image it holds, each name with its repository digests."""
        raise NotImplementedError

    def resolve(self, ctx: StepContext, refs: list[str]) -> Section:
        """Each ref resolved from the registry through it, no layer downloaded: ``engine.resolved``."""
        raise NotImplementedError

    def trust(self, facts: HostFacts, ctx: StepContext) -> StepPlan:
        """The plan that makes it trust the registry (files, and the Docker handler where it has one)."""
        raise NotImplementedError

    def still_insecure(self, facts: HostFacts, ctx: StepContext) -> bool:
        """Whether it still treats a TLS registry as insecure (a node moving to TLS, or worse)."""
        return bool(self.insecure_entries(facts, ctx.registry))

    def insecure_entries(self, facts: HostFacts, registry: str) -> list[Insecure]:
        """Every entry that makes it treat ``registry`` as insecure ([] when its config cannot be read:
        the trust planner names that file)."""
        raise NotImplementedError

    def trusted(self, facts: HostFacts, registry: str) -> bool | None:
        """Whether its config trusts the plain-HTTP ``registry``; None when the config cannot be read."""
        raise NotImplementedError

    def ca_path(self, registry: str) -> str:
        """Where it reads the registry's CA."""
        raise NotImplementedError

    def verify_script(self, ctx: StepContext) -> str:
        """Shell: the registry answers and it pulls the probe (logged in when asked)."""
        raise NotImplementedError

    def login(self, ctx: StepContext) -> list[str]:
        """Shell: log in as kolla-ansible's pulls do, credentials kept where the engine keeps them."""
        return login_lines(ctx.registry, REGISTRY_USER, ctx.password, self.name)

    def pull_script(
        self, refs: list[str], per_node: int, retries: int, delay: int = RETRY_DELAY, ctx: StepContext | None = None
    ) -> str:
        """Shell: pull each ref, ``per_node`` at once, retried on transient errors; a mark each:
        ``pulled|present REF DIGEST`` or ``failed REF WHY``. ``ctx``: the run's, for an engine that
        pulls with the registry's login itself."""
        permanent = "|".join(PERMANENT_ERRORS)
        one = f"""ref=$1; n=0
{self.before_pull}
while :; do
  out=$({self.pull_command} 2>&1) && break
  n=$((n + 1))
  if [ "$n" -gt {retries} ] || printf '%s' "$out" | grep -qiE {shlex.quote(permanent)}; then
    echo "{MARK} failed $ref $(printf '%s' "$out" | tail -1)"; exit 0
  fi
  sleep {delay}
done
{self.pull_status}
echo "{MARK} $status $ref $({self.pull_digest})"
"""
        prelude, name = self.pull_login(ctx)
        listed = " ".join(shlex.quote(ref) for ref in refs)
        return f"{prelude}printf '%s\\n' {listed} | xargs -n 1 -P {max(1, per_node)} sh -c {shlex.quote(one)} {name}\n"

    def pull_login(self, ctx: StepContext | None) -> tuple[str, str]:
        """Shell run before the pulls, and each pull's $0: for an engine that pulls with the login itself."""
        return "", "sh"
