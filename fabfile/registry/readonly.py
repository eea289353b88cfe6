"""Whether every instance nodes reach refuses writes: asked of the instances themselves, before a collection.

Garbage collection is safe only while nothing writes the storage. The writer is the
deployment host's, under its lock; the instances must refuse pushes. So before
prune-registry deletes anything, the deployment host tries to start a blob upload on every
instance (its own and each replica, on the shared store) with the login nodes have: a
read-only registry answers 405 (the method is not allowed). An instance that accepts it
(202; the upload is cancelled at once) or does not answer stops the prune.
"""

from __future__ import annotations

import shlex

from ..engines.resolve import secret_file
from ..facts.base import Section, Texts
from ..model.context import StepContext
from ..model.facts import HostFacts
from .access import instances
from .paths import CA_CERT, REGISTRY_USER

REFUSED = "405"
# A repository no image uses: an upload started there by a writable registry is cancelled at once.
PROBE_PATH = "/v2/kolla-registry/read-only-check/blobs/uploads/"
MARK_NAME = "readers"


def readers_section(ctx: StepContext) -> Section:
    """On the deployment host: every instance's answer to a push, as "NAME CODE" lines (000: no answer)."""
    port = ctx.inventory.registry.port
    curlrc = ""
    if ctx.login:
        escaped = ctx.password.replace("\\", "\\\\").replace('"', '\\"')
        curlrc = f'user = "{REGISTRY_USER}:{escaped}"\n'
    ca = f"--cacert {CA_CERT} " if ctx.inventory.registry.secure else ""
    probes = "\n".join(
        _probe(instance.name, f"{ctx.scheme}://{instance.address}:{port}{PROBE_PATH}", ca)
        for instance in instances(ctx.inventory, ctx.registry_address)
    )
    shell = f"""s {MARK_NAME}
if d=$(mktemp -d); then
{secret_file("curlrc", curlrc)}
{probes}
wait; rm -rf "$d"
fi"""
    return Section(MARK_NAME, shell, _parse)


def _probe(name: str, url: str, ca: str) -> str:
    """Shell: POST a blob upload (in the background); a 202 is cancelled (DELETE its Location) at once."""
    return (
        f"( h=$(curl -sS -m 10 {ca}-K \"$d/curlrc\" -X POST -D - -o /dev/null {shlex.quote(url)} 2>/dev/null | tr -d '\\r'); "
        "c=$(printf '%s\\n' \"$h\" | sed -n 's/^HTTP\\/[0-9.]* \\([0-9]*\\).*/\\1/p' | tail -1); "
        "l=$(printf '%s\\n' \"$h\" | sed -n 's/^[Ll]ocation: *//p' | tail -1); "
        f"if [ \"$c\" = 202 ] && [ -n \"$l\" ]; then case $l in /*) l={shlex.quote(url.split('/v2/')[0])}$l ;; esac; "
        f"curl -sS -m 10 {ca}-K \"$d/curlrc\" -X DELETE -o /dev/null \"$l\" 2>/dev/null; fi; "
        f"echo {shlex.quote(name)} \"${{c:-000}}\" ) &"
    )


def _parse(texts: Texts, facts: HostFacts) -> None:
    for line in texts.get(MARK_NAME, "").splitlines():
        name, _, code = line.strip().partition(" ")
        if name and code:
            facts.reach.answers.setdefault(MARK_NAME, {})[name] = code.strip()


def writable(facts: HostFacts, ctx: StepContext) -> str:
    """Why a collection must not run now: an instance that accepts pushes or did not answer; "" when
    every instance refused."""
    found = facts.reach.answers.get(MARK_NAME) or {}
    for instance in instances(ctx.inventory, ctx.registry_address):
        code = found.get(instance.name, "")
        if code == REFUSED:
            continue
        if code in ("", "000"):
            return (
                f"{instance.name} ({instance.address}) did not answer: garbage collection needs every instance "
                "read-only; bring it back, or take it out of registry.replicas"
            )
        if code == "401":
            return f"{instance.name} ({instance.address}) refused the registry's login (HTTP 401): run fab deploy-host first"
        return (
            f"{instance.name} ({instance.address}) accepts pushes (HTTP {code}): garbage collection needs every "
            "instance read-only; run fab deploy-host first"
        )
    return ""
