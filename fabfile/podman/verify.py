"""The pull check on a podman node: the registry answers, and ``podman pull`` fetches the probe.

A login goes to an authfile in a private folder (``mktemp -d``, 0700), removed
after: the password is on stdin, never on a command line, and the check leaves
no credentials behind.
"""

from __future__ import annotations

import shlex

from ..docker.tls import podman_ca_path
from ..docker.verify import login_lines, quick_verify_script, registry_answers
from ..engine.context import StepContext
from ..remote.facts import PENDING, REGISTRY_USER, HostFacts, Section, Texts
from ..remote.marks import FAIL_FUNCTION, MARK, between
from .registries import DROPIN

VERIFY, VERIFIED = "podman-verify", "podman-verified"


def podman_verify_script(ctx: StepContext) -> str:
    """Shell: GET /v2/ answers as a registry, then podman pulls the probe (logged in, when asked)."""
    probe = shlex.quote(ctx.probe_image)
    authfile = '--authfile "$d/auth.json" ' if ctx.login else ""
    login = login_lines(ctx.registry, REGISTRY_USER, ctx.password, "podman", authfile) if ctx.login else []
    lines = [
        FAIL_FUNCTION,
        *registry_answers(ctx, podman_ca_path(ctx.registry)),
        # set -e is not relied on: this script may run where it is ignored (left of ||).
        'd=$(mktemp -d) || fail "cannot make a private folder for the login"',
        'trap \'rm -rf "$d"\' EXIT',
        *login,
        f"out=$(podman pull -q {authfile}{probe} 2>&1) || fail podman pull {probe}: $(printf '%s' \"$out\" | tail -1)",
        f"echo {shlex.quote(f'{MARK} pulled {ctx.probe_image} with podman')}",
    ]
    return "\n".join(lines) + "\n"


def node_verify_script(ctx: StepContext, facts: HostFacts) -> str:
    """Shell: the pull check of each engine the node has, in turn; the first that fails ends it."""
    docker = [quick_verify_script(ctx)] if facts.docker_version else []
    if docker and ctx.inventory.registry.hostname:
        docker = [HOSTS_SETTLE + docker[0]]
    return in_turn(docker + ([podman_verify_script(ctx)] if facts.podman_version else []))


# dockerd (Go) reads /etc/hosts again at most every 5 s: a pull right after the registry's name
# moved would still go to the old instance. Wait out what is left of those seconds, only then.
HOSTS_SETTLE = """age=$(( $(date +%s) - $(stat -c %Y /etc/hosts 2>/dev/null || echo 0) ))
[ "$age" -ge 6 ] || [ "$age" -lt 0 ] || sleep $(( 6 - age ))
"""


def in_turn(scripts: list[str]) -> str:
    """Shell: each script in turn, each in a subshell (its exits and traps end it, not the whole);
    the first that fails ends the rest with its status."""
    return "".join(f'(\n{script})\nrc=$?; [ "$rc" -eq 0 ] || exit "$rc"\n' for script in scripts)


def podman_check(ctx: StepContext, verify: bool) -> Section:
    """In the facts session: podman's pull check, where the node already trusts the registry and
    nothing is pending, so a run that changes nothing needs no second session."""
    if not verify or not ctx.registry_address:
        return Section(VERIFIED, "", _read_check)
    trusted = (
        f"[ -s {shlex.quote(podman_ca_path(ctx.registry))} ]"
        if ctx.inventory.registry.secure
        else f"grep -qF -- {shlex.quote(ctx.registry)} {DROPIN} 2>/dev/null"
    )
    shell = f"""if command -v podman >/dev/null 2>&1 && [ ! -s {PENDING} ] && {trusted}; then
  s {VERIFY}
  ( {podman_verify_script(ctx)} ) 2>&1
  status=$?
  s {VERIFIED}; echo $status
fi"""
    return Section(VERIFIED, shell, _read_check)


def _read_check(texts: Texts, facts: HostFacts) -> None:
    status = texts.get(VERIFIED, "").strip()
    checked = between(texts.output, VERIFY, VERIFIED)
    if status.isdigit() and checked is not None:
        facts.podman_verified = (int(status), checked)
