"""Shell every engine's checks share: the registry answers, a login with the password on stdin, turns."""

from __future__ import annotations

import base64
import shlex

from ..model.context import StepContext
from ..model.marks import MARK


def registry_answers(ctx: StepContext, ca: str) -> list[str]:
    """Shell: GET /v2/ answers as a registry (over TLS verified with the CA at ``ca``, when secure), or fail."""
    url = shlex.quote(f"{ctx.scheme}://{ctx.registry}/v2/")
    cacert = f"--cacert {shlex.quote(ca)} " if ctx.inventory.registry.secure else ""
    return [
        (
            f'headers() {{ curl -sS -m 10 {cacert}-D - -o /dev/null "$1" 2>&1 || python3 -c '
            "'import sys,urllib.request as u; print(u.urlopen(sys.argv[1], timeout=10).headers)' \"$1\" 2>&1; }"
        ),
        (
            f"headers {url} | grep -qi '^Docker-Distribution-Api-Version: *registry/2.0' "
            f"|| fail GET {url} did not answer as a registry: $(headers {url} | head -1)"
        ),
    ]


def login_lines(registry: str, user: str, password: str, cli: str = "docker", options: str = "") -> list[str]:
    """Shell: ``cli`` login (docker or podman, with shell-ready ``options``), the password on stdin.

    The password travels base64-encoded in a here-document: never on a command
    line, and no line of it can end the here-document early.
    """
    login = f"{cli} login {options}-u {shlex.quote(user)} --password-stdin {shlex.quote(registry)}"
    # The registry quoted apart from the message: it must never be read as shell.
    failed = shlex.quote(f"{MARK} fail {cli} login {registry}: ")
    encoded = base64.b64encode(password.encode()).decode()
    return [
        "out=$(base64 -d <<'KOLLA_REGISTRY_PASSWORD' | " + login + " 2>&1",
        encoded,
        "KOLLA_REGISTRY_PASSWORD",
        f') || {{ echo {failed}"$(printf \'%s\' "$out" | tail -1)"; exit 1; }}',
    ]


def in_turn(scripts: list[str]) -> str:
    """Shell: each script in turn, each in a subshell (its exits and traps end it, not the whole);
    the first that fails ends the rest with its status."""
    return "".join(f'(\n{script})\nrc=$?; [ "$rc" -eq 0 ] || exit "$rc"\n' for script in scripts)


# dockerd (Go) reads /etc/hosts again at most every 5 s: a pull right after the registry's name
# moved would still go to the old instance. Wait out what is left of those seconds, only then.
HOSTS_SETTLE = """age=$(( $(date +%s) - $(stat -c %Y /etc/hosts 2>/dev/null || echo 0) ))
[ "$age" -ge 6 ] || [ "$age" -lt 0 ] || sleep $(( 6 - age ))
"""
