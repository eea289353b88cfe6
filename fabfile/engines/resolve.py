"""Resolving images from the registry through a node's engine, downloading no layer (check-images).

Each engine answers with one line per image, ``REF STATUS DIGEST-OR-WHY``; ``parse`` puts them in
``facts.engine(NAME).resolved``. A secret needed for it (the registry's login) travels in a private
file (``mktemp -d``, 0700) written from a here-document, and is removed after.
"""

from __future__ import annotations

import base64
import shlex

from ..facts.base import Section, Texts
from ..model.facts import HostFacts

AT_ONCE = 8


def secret_file(name: str, content: str) -> str:
    """Shell: ``$d/NAME`` (``d`` a private folder made first, removed at exit) holding ``content``,
    which travels base64-encoded in a here-document (no line of it can end that early)."""
    encoded = base64.b64encode(content.encode()).decode()
    return f"( umask 077; base64 -d > \"$d/{name}\" <<'KOLLA_REGISTRY_SECRET'\n{encoded}\nKOLLA_REGISTRY_SECRET\n)"


def each(refs: list[str], one: str, *args: str) -> str:
    """Shell: ``one`` (a sh -c script given $1 = a ref after ``args``) for every ref, AT_ONCE at a time."""
    listed = " ".join(shlex.quote(ref) for ref in refs)
    after = " ".join(shlex.quote(arg) if not arg.startswith('"$') else arg for arg in args)
    return f"printf '%s\\n' {listed} | xargs -n 1 -P {AT_ONCE} sh -c {shlex.quote(one)} {after}\n"


def section(mark: str, engine: str, shell: str) -> Section:
    """A section whose lines are ``REF STATUS REST`` for ``engine``."""

    def parse(texts: Texts, facts: HostFacts) -> None:
        found = facts.engine(engine).resolved
        for line in texts.get(mark, "").splitlines():
            ref, _, rest = line.strip().partition(" ")
            code, _, said = rest.partition(" ")
            if ref and code.isdigit():
                found[ref] = (int(code), said.strip())

    return Section(mark, f"s {mark}\n{shell}", parse)
