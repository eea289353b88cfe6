"""What a host sees of the registry: TLS verified with the CA it has, and each instance's health."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ..facts.base import Section, Texts
from ..model.context import StepContext
from ..model.facts import HostFacts
from .access import Instance

PROBE_SECONDS = 3
# Set by an engine's check in the facts script when it resolved the probe through the engine's own TLS.
ENGINE_RESOLVED = "engine_resolved"
ENGINE_VERIFIED = "verified-by-engine"


def tls_check(ctx: StepContext, cas: Sequence[str]) -> Section:
    """On a node: whether the registry's TLS verifies against the first of ``cas`` (its engines' copies
    of the registry's CA) it has."""
    listed = " ".join(shlex.quote(path) for path in cas)
    url = shlex.quote(f"https://{ctx.registry}/v2/")
    # An engine check earlier in the same script that resolved the probe went over TLS verified with
    # that CA already (a secure registry, no insecure entry): no second handshake just to learn it.
    shell = (
        f's registry-tls; ca=; for f in {listed}; do [ -s "$f" ] && {{ ca=$f; break; }}; done; '
        f'if [ -n "${{{ENGINE_RESOLVED}:-}}" ]; then echo {ENGINE_VERIFIED}; elif [ -n "$ca" ]; then '
        f"curl -sS -m 10 --cacert \"$ca\" -o /dev/null -w '%{{http_code}}\\n' {url} 2>&1 | tail -1; "
        "else echo 'no CA for it yet'; fi"
    )

    def parse(texts: Texts, facts: HostFacts) -> None:
        facts.reach.tls = texts.get("registry-tls", "").strip()

    return Section("registry-tls", shell, parse)


def tls_verified(facts: HostFacts) -> bool:
    """The node reached the registry over verified TLS (401 too: a login is asked for, after the handshake)."""
    return facts.reach.tls in ("200", "401", ENGINE_VERIFIED)


def health_section(instances: Sequence[Instance], scheme: str, port: int) -> Section:
    """Shell: GET /v2/ on every instance at once, a short timeout each; "NAME CODE" lines.

    Liveness only (``-k``): the pull check that follows verifies TLS by the registry's name.
    """
    probes = "\n".join(
        f"( c=$(curl -sk -m {PROBE_SECONDS} -o /dev/null -w '%{{http_code}}' "
        f"{shlex.quote(f'{scheme}://{instance.address}:{port}/v2/')} 2>/dev/null); "
        f"echo {shlex.quote(instance.name)} \"${{c:-000}}\" ) &"
        for instance in instances
    )
    shell = f"s instances\n{probes}\nwait"

    def parse(texts: Texts, facts: HostFacts) -> None:
        for line in texts.get("instances", "").splitlines():
            name, _, code = line.strip().partition(" ")
            if name:
                # 401: a registry that asks for its login answers too.
                facts.reach.instances[name] = code in ("200", "401")

    return Section("instances", shell, parse)
