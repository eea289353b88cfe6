"""The programs that run elsewhere than this tool's Python, and how one is assembled and run.

The standard-library programs go to hosts (the registry client, manifests, scans and deletes, the
blob copy); ``kolla_images.py`` runs here, in the operator's kolla-ansible interpreter.

A program is some of this package's modules joined in order (each uses the
names the ones before it define: their relative imports are dropped), then a
call of its entry with the request, which travels inside the script on the
SSH channel's stdin (it may hold logins), never on a command line.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ..model.marks import MARK

HERE = Path(__file__).parent
# The registry client, after what keeps it polite to upstreams (429 waited out, requests capped).
CLIENT = (HERE / "polite.py", HERE / "registry_client.py")
# Registry queries: manifests, the catalog, a scan of every tag, deletes.
QUERY = (*CLIENT, HERE / "manifests.py", HERE / "registry_scan.py", HERE / "query.py")
# A copy into the local registry: from an upstream registry, or out of an uploaded archive.
COPY = (
    *CLIENT,
    *(HERE / name for name in ("progress.py", "manifests.py", "blobcopy.py", "tarblobs.py", "snapshots.py", "copyrun.py")),
)
# An export into an OCI image layout, run on this machine.
EXPORT = (
    *CLIENT,
    *(HERE / name for name in ("progress.py", "manifests.py", "blobcopy.py", "ocistore.py", "ocilayout.py")),
)
PROGRAM_END = "KOLLA_REGISTRY_API_PY"
MAIN = 'if __name__ == "__main__":'


def program(modules: tuple[Path, ...], entry: str) -> str:
    """One Python program from ``modules``: their relative imports and ``__main__`` blocks left out,
    then ``entry(REQUEST)`` printed as one JSON line."""
    parts = []
    for module in modules:
        text = module.read_text().split("\n" + MAIN, 1)[0]
        kept, skipping = [], False
        for line in text.splitlines():
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


def script(request: dict, modules: tuple[Path, ...] = QUERY, entry: str = "answer") -> str:
    """Shell that runs the program of ``modules`` with ``request`` in its source; it prints one JSON line last."""
    encoded = base64.b64encode(json.dumps(request).encode()).decode()
    return (
        f"command -v python3 >/dev/null || {{ echo '{MARK} fail python3 is missing'; exit 1; }}\n"
        f"python3 - <<'{PROGRAM_END}'\nimport base64, json\nREQUEST = {encoded!r}\n"
        f"{program(modules, entry)}\n{PROGRAM_END}\n"
    )


def last_json(output: str) -> dict | None:
    """The JSON answer a program printed last, or None."""
    try:
        found = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return found if isinstance(found, dict) else None
