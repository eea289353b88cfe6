"""The pull check on a podman node: the registry answers, and ``podman pull`` fetches the probe.

A login goes to an authfile in a private folder (``mktemp -d``, 0700), removed
after: the password is on stdin, never on a command line, and the check leaves
no credentials behind.
"""

from __future__ import annotations

import shlex

from ...facts.base import Section, Texts
from ...model.context import StepContext
from ...model.facts import HostFacts
from ...model.marks import FAIL_FUNCTION, MARK, between
from ...model.paths import PENDING
from ...registry.paths import REGISTRY_USER
from ..shell import login_lines, registry_answers
from .paths import DROPIN, NAME, REGISTRIES_CONF, REGISTRIES_DIR, ROOT_CONF, ROOT_DIR, ca_path

VERIFY, VERIFIED = "podman-verify", "podman-verified"
# A registries.conf line that may make a registry insecure: ``insecure = true``, or a v1 list.
INSECURE_WORDS = r"^[[:space:]]*insecure[[:space:]]*=[[:space:]]*true|registries\.insecure"


def podman_verify_script(ctx: StepContext, pull: bool = True) -> str:
    """Shell: GET /v2/ answers as a registry, then podman pulls the probe (logged in, when asked); with
    ``pull`` off, podman only resolves it (``podman manifest inspect``: the manifest through podman's
    registries.conf, CA and login, no layer), and pulls only when that fails, for its words."""
    probe = shlex.quote(ctx.probe_image)
    authfile = '--authfile "$d/auth.json" ' if ctx.login else ""
    login = login_lines(ctx.registry, REGISTRY_USER, ctx.password, "podman", authfile) if ctx.login else []
    lines = [
        FAIL_FUNCTION,
        *registry_answers(ctx, ca_path(ctx.registry)),
        # set -e is not relied on: this script may run where it is ignored (left of ||).
        'd=$(mktemp -d) || fail "cannot make a private folder for the login"',
        'trap \'rm -rf "$d"\' EXIT',
        *login,
        *([] if pull else [_resolved(authfile, ctx.probe_image)]),
        f"out=$(podman pull -q {authfile}{probe} 2>&1) || fail podman pull {probe}: $(printf '%s' \"$out\" | tail -1)",
        f"echo {shlex.quote(f'{MARK} pulled {ctx.probe_image} with podman')}",
    ]
    return "\n".join(lines) + "\n"


def _resolved(authfile: str, image: str) -> str:
    """Shell: end with a ``resolved`` mark when podman resolves ``image`` from the registry."""
    done = shlex.quote(f"{MARK} resolved {image} with podman")
    return f"if podman manifest inspect {authfile}{shlex.quote(image)} >/dev/null 2>&1; then echo {done}; exit 0; fi"


def podman_check(ctx: StepContext, verify: bool) -> Section:
    """In the facts session: podman's check, where the node already trusts the registry and nothing is
    pending, so a run that changes nothing needs no second session; it resolves the probe, downloading
    nothing (a run that changed something pulls it)."""
    if not verify or not ctx.registry_address:
        return Section(VERIFIED, "", _read_check)
    # With TLS: its CA in place, and no registries file that may say insecure (then the planner,
    # which reads them all, decides first: the login must not go over an unchecked connection).
    trusted = (
        f"[ -s {shlex.quote(ca_path(ctx.registry))} ] && ! grep -rqsiE {shlex.quote(INSECURE_WORDS)} "
        f"{REGISTRIES_CONF} {REGISTRIES_DIR} {ROOT_CONF} {ROOT_DIR}"
        if ctx.inventory.registry.secure
        else f"grep -qF -- {shlex.quote(ctx.registry)} {DROPIN} 2>/dev/null"
    )
    shell = f"""if command -v podman >/dev/null 2>&1 && [ ! -s {PENDING} ] && {trusted}; then
  s {VERIFY}
  ( {podman_verify_script(ctx, pull=False)} ) 2>&1
  status=$?
  s {VERIFIED}; echo $status
fi"""
    return Section(VERIFIED, shell, _read_check)


def _read_check(texts: Texts, facts: HostFacts) -> None:
    status = texts.get(VERIFIED, "").strip()
    checked = between(texts.output, VERIFY, VERIFIED)
    if status.isdigit() and checked is not None:
        facts.engine(NAME).checked = (int(status), checked)
