"""Registry API queries asked from a host: ``registry_api.py`` runs there with a JSON request."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ..engine.context import StepContext
from ..engine.hostrun import HostRun, RemoteError
from .connection import LineCallback
from .facts import REGISTRY_USER
from .marks import MARK

HERE = Path(__file__).parent
HELPER = HERE / "registry_api.py"
# The copy's modules, in the order they are sent: each uses names the ones before it define.
COPY_MODULES = (HELPER, HERE / "blobcopy.py", HERE / "tarblobs.py", HERE / "copyrun.py")
HELPER_END = "KOLLA_REGISTRY_API_PY"
MAIN = 'if __name__ == "__main__":'


def helper_source(modules: tuple[Path, ...] = (HELPER,), entry: str = "answer") -> str:
    """One Python program from ``modules``: their relative imports dropped (the names are defined
    above in the same program), their ``__main__`` blocks left out, then ``entry(REQUEST)`` printed."""
    parts = []
    for module in modules:
        text = module.read_text().split("\n" + MAIN, 1)[0]
        lines = text.splitlines()
        kept, skipping = [], False
        for line in lines:
            # A relative import may span lines: "from .x import (" up to its ")".
            if line.startswith("from ."):
                skipping = "(" in line and ")" not in line
                continue
            if skipping:
                skipping = line.strip() != ")"
                continue
            kept.append(line)
        parts.append("\n".join(kept))
    request = "json.loads(base64.b64decode(REQUEST).decode())"
    return "\n\n".join(parts) + f"\n\n{MAIN}\n    print(json.dumps({entry}({request})), flush=True)\n"


def helper_script(request: dict, modules: tuple[Path, ...] = (HELPER,), entry: str = "answer") -> str:
    """Shell that runs ``modules`` on the host with ``request`` in its source; it prints one JSON line last."""
    encoded = base64.b64encode(json.dumps(request).encode()).decode()
    source = helper_source(modules, entry)
    return (
        f"command -v python3 >/dev/null || {{ echo '{MARK} fail python3 is missing'; exit 1; }}\n"
        f"python3 - <<'{HELPER_END}'\nREQUEST = {encoded!r}\n{source}\n{HELPER_END}\n"
    )


def local_base(ctx: StepContext) -> str:
    """The local registry's URL."""
    return f"{ctx.scheme}://{ctx.registry}"


def query_registry(
    run: HostRun,
    request: dict,
    logins: list | None = None,
    copy: bool = False,
    on_line: LineCallback = None,
    timeout: int = 0,
) -> dict:
    """Ask the registry API from ``run``'s host (see registry_api.answer), or with ``copy`` run a copy
    (copyrun.copy_answer; ``on_line`` sees its marks as they come); a secure local registry is
    asked with its CA and login, others with ``logins`` ([[BASE, USER, PASSWORD], ...])."""
    logins = list(logins or [])
    if run.ctx.inventory.registry.secure:
        request = {**request, "cafile": f"/etc/docker/certs.d/{run.ctx.registry}/ca.crt"}
    if run.ctx.login:
        logins.append([local_base(run.ctx), REGISTRY_USER, run.ctx.password])
    if logins:
        request = {**request, "logins": logins}
    script = helper_script(request, COPY_MODULES, "copy_answer") if copy else helper_script(request)
    output = run.run(script, on_line, timeout).strip()
    try:
        return json.loads(output.splitlines()[-1])
    except (ValueError, IndexError):
        raise RemoteError(f"registry query: no answer ({output[-200:] or 'no output'})") from None
