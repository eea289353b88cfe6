"""Registry API queries asked from a host: ``registry_api.py`` runs there with a JSON request."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ..engine.context import StepContext
from ..engine.hostrun import HostRun, RemoteError
from .facts import REGISTRY_USER
from .marks import MARK

HELPER = Path(__file__).with_name("registry_api.py")


HELPER_END = "KOLLA_REGISTRY_API_PY"


def helper_script(request: dict) -> str:
    """Shell that runs registry_api.py on the host with ``request`` in its source; it prints one JSON line."""
    encoded = base64.b64encode(json.dumps(request).encode()).decode()
    return (
        f"command -v python3 >/dev/null || {{ echo '{MARK} fail python3 is missing'; exit 1; }}\n"
        f"python3 - <<'{HELPER_END}'\nREQUEST = {encoded!r}\n{HELPER.read_text()}\n{HELPER_END}\n"
    )


def local_base(ctx: StepContext) -> str:
    """The local registry's URL."""
    return f"{ctx.scheme}://{ctx.registry}"


def query_registry(run: HostRun, request: dict, logins: list | None = None) -> dict:
    """Ask the registry API from ``run``'s host (see registry_api.answer); a secure local registry
    is asked with its CA and login, others with ``logins`` ([[BASE, USER, PASSWORD], ...])."""
    logins = list(logins or [])
    if run.ctx.inventory.registry.secure:
        request = {**request, "cafile": f"/etc/docker/certs.d/{run.ctx.registry}/ca.crt"}
    if run.ctx.login:
        logins.append([local_base(run.ctx), REGISTRY_USER, run.ctx.password])
    if logins:
        request = {**request, "logins": logins}
    output = run.run(helper_script(request)).strip()
    try:
        return json.loads(output.splitlines()[-1])
    except (ValueError, IndexError):
        raise RemoteError(f"registry query: no answer ({output[-200:] or 'no output'})") from None
