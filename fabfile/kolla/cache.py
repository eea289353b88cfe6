"""The image set, kept between runs while nothing it was computed from has changed.

Computing it runs kolla-ansible's playbooks in its own Python for seconds; the
answer depends only on the inventory, globals.yml and globals.d, the facts
given, and the installed kolla-ansible. So it is kept under a digest of all of
them: editing globals.yml (``enable_cinder: "yes"``) changes the set on the
next run with nothing else to do, and an unchanged site pays nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

PAYLOADS = tuple(Path(__file__).resolve().parent.parent / "payload" / name for name in ("kolla_images.py", "kolla_walk.py"))
CACHE_ENV = "KOLLA_REGISTRY_CACHE"


def cache_dir() -> Path:
    """``$KOLLA_REGISTRY_CACHE``, else ``$XDG_CACHE_HOME/kolla-registry``, else ``~/.cache/kolla-registry``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kolla-registry"


def cached(python: str, request: dict, compute: Callable[[], dict]) -> dict:
    """``compute()``'s answer for this request and kolla-ansible, from the cache when nothing changed."""
    path = cache_dir() / "kolla-images" / f"{key(python, request)}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    answer = compute()
    _store(path, answer)
    return answer


def key(python: str, request: dict) -> str:
    """A digest of everything the answer depends on."""
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode())
    for payload in PAYLOADS:
        digest.update(payload.read_bytes())
    digest.update(os.path.realpath(python).encode())
    venv = Path(python).parent.parent
    for site in sorted(venv.glob("lib/python*/site-packages")):
        # A package installed or upgraded there (kolla-ansible, ansible-core) changes the folder.
        digest.update(f"{site}:{site.stat().st_mtime_ns}".encode())
    for source in [*request.get("inventory", []), *_globals(request.get("config_dir", ""))]:
        _add_tree(digest, Path(source))
    return digest.hexdigest()


def _globals(config_dir: str) -> list[str]:
    """globals.yml and globals.d/ (passwords.yml is never read for the set)."""
    return [os.path.join(config_dir, "globals.yml"), os.path.join(config_dir, "globals.d")] if config_dir else []


def _add_tree(digest, path: Path) -> None:
    """A file's path and bytes, or a folder's files', into ``digest``; a missing one as missing."""
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file():
                _add_tree(digest, child)
        return
    digest.update(str(path).encode())
    try:
        digest.update(path.read_bytes())
    except OSError:
        digest.update(b"\0missing")


def _store(path: Path, answer: dict) -> None:
    """Written whole (a temporary file renamed), readable by its owner only; a cache that cannot be
    written is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".kolla-images.")
        with os.fdopen(handle, "w") as out:
            json.dump(answer, out)
        os.replace(temporary, path)
    except OSError:
        return
