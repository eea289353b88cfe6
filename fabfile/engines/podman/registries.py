"""Podman trusts the registry through one registries.conf drop-in this tool owns.

Podman reads /etc/containers/registries.conf, then every ``*.conf`` of
registries.conf.d in name order; an entry for a prefix replaces any earlier
entry for it, and the longest matching prefix decides a pull. An entry for the
registry (or a repository under it) in any other file is either undone by ours
or undoes it; either way it is the operator's, so it is named, never edited.
"""

from __future__ import annotations

import tomllib

from ...facts.base import Section, files
from ...model.context import StepContext
from ...model.facts import HostFacts
from ...model.plan import FileChange, StepPlan
from ...registry.paths import CA_CERT
from ...registry.reach import tls_verified
from ..base import Insecure
from .paths import DROPIN, REGISTRIES_CONF, REGISTRIES_DIR, ROOT_CONF, ROOT_DIR, ca_path

HEADER = (
    "# Written by kolla-registry (fab configure-targets): podman pulls the Kolla images from this registry.\n"
    "# This file is the tool's own: a change here is undone on its next run.\n"
)


def podman_files(ctx: StepContext) -> Section:
    """The registries files podman reads and, for a TLS registry, the CA it has for it (and for each mirror)."""
    secure = ctx.inventory.registry.secure and ctx.registry_address
    ca = tuple(ca_path(registry) for registry in (ctx.registry, *mirrors_of(ctx))) if secure else ()
    return files(REGISTRIES_CONF, ROOT_CONF, *ca, globs=(f"{REGISTRIES_DIR}/*.conf", f"{ROOT_DIR}/*.conf"))


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = "".join(
        f"\\{char}"
        if char in '"\\'
        else f"\\u{ord(char):04x}"
        if ord(char) < 0x20 or ord(char) == 0x7F
        else char
        for char in value
    )
    return f'"{escaped}"'


def dropin_with(current: str | None, registry: str, insecure: bool, mirrors: tuple[str, ...] = ()) -> str:
    """The drop-in with ``registry``'s entry set (and its ``mirrors``, tried in order before it), in its place,
    and the entries it holds for other registries kept.

    A node may pull from more than one registry (two clouds, a move to a new address),
    as daemon.json keeps every insecure entry.
    """
    try:
        listed = entries(current or "")
    except ValueError:
        listed = []  # the tool's own file, unreadable: written anew
    kept = {_prefix(entry): (bool(entry.get("insecure")), _mirrors(entry)) for entry in listed if _prefix(entry)}
    kept[registry] = (insecure, tuple((mirror, insecure) for mirror in mirrors if mirror != registry))
    return _render(kept)


def _mirrors(entry: dict) -> tuple[tuple[str, bool], ...]:
    listed = entry.get("mirror") if isinstance(entry.get("mirror"), list) else []
    return tuple((str(m.get("location", "")), bool(m.get("insecure"))) for m in listed if isinstance(m, dict) and m.get("location"))


def _render(kept: dict[str, tuple[bool, tuple[tuple[str, bool], ...]]]) -> str:
    blocks = []
    for location, (insecure, mirrors) in kept.items():
        block = f"[[registry]]\nlocation = {toml_string(location)}\ninsecure = {str(insecure).lower()}\n"
        for mirror, mirror_insecure in mirrors:
            block += f"\n[[registry.mirror]]\nlocation = {toml_string(mirror)}\ninsecure = {str(mirror_insecure).lower()}\n"
        blocks.append(block)
    return HEADER + "".join(f"\n{block}" for block in blocks)


def mirrors_of(ctx: StepContext) -> tuple[str, ...]:
    """``ADDR:PORT`` of every instance in the order this node tries them (registry.hostname), else none."""
    placement = ctx.placement
    if placement is None or not ctx.inventory.registry.hostname:
        return ()
    return tuple(f"{address}:{ctx.inventory.registry.port}" for address in placement.mirrors)


def trust_podman(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Make podman trust the registry: the drop-in and, for a TLS registry, its CA in certs.d."""
    plan = StepPlan("trust-podman")
    if not ctx.registry_address:
        plan.error = "no registry address: the deployment host has none, set registry.address"
        return plan
    secure = ctx.inventory.registry.secure
    plan.error = conflict(facts, ctx.registry, insecure=not secure)
    if plan.error:
        return plan
    ca = ""
    if secure:
        # The deployment host's own CA first: this very run may have re-issued it.
        ca = facts.files.get(CA_CERT) or ctx.ca
        if not ca:
            plan.error = "the registry's CA is not on the deployment host yet: run fab deploy-host"
            return plan
        # Each mirror is one instance at its own address, whose certificate names that address.
        for path in dict.fromkeys(ca_path(registry) for registry in (ctx.registry, *mirrors_of(ctx))):
            if facts.files.get(path) != ca:
                plan.files.append(FileChange(path, facts.files.get(path), ca))
    # A node moving to TLS keeps its insecure entry until TLS verifies with the CA (as Docker does);
    # once the CA is in place and TLS still does not verify, it fails rather than log in over it.
    keep_insecure = secure and still_insecure(facts, ctx.registry) and not tls_verified(facts)
    if keep_insecure and facts.files.get(ca_path(ctx.registry)) == ca:
        plan.error = (
            f"TLS to {ctx.registry} does not verify from here with the registry's CA "
            f"({facts.reach.tls or 'no answer'}): podman keeps it insecure in {DROPIN}, and no login is sent"
        )
        return plan
    insecure = not secure or keep_insecure
    text = dropin_with(facts.files.get(DROPIN), ctx.registry, insecure, mirrors_of(ctx))
    mirrored = f"podman mirrors: {', '.join(mirrors_of(ctx))}" if mirrors_of(ctx) else ""
    if facts.files.get(DROPIN) != text:
        plan.files.append(FileChange(DROPIN, facts.files.get(DROPIN), text))
        plan.notes += [mirrored] if mirrored else []
    elif keep_insecure:
        plan.notes.append(f"podman: {ctx.registry} stays insecure in {DROPIN} until TLS verifies from here")
    else:
        plan.notes.append(f"podman: {ctx.registry} in {DROPIN}" + (f"; {mirrored}" if mirrored else ""))
    return plan


def still_insecure(facts: HostFacts, registry: str) -> bool:
    """Whether this tool's drop-in still lists the registry as insecure (from before TLS)."""
    return any(found.ours for found in insecure_entries(facts, registry))


def insecure_entries(facts: HostFacts, registry: str) -> list[Insecure]:
    """The entries that make podman pull ``registry`` (or a repository under it) as insecure: this
    tool's drop-in's, and any other file's (a shorter prefix loses to the drop-in's own entry)."""
    found = []
    for path in (*read_order(facts), DROPIN):
        try:
            listed = entries(facts.files.get(path, ""))
        except ValueError:
            continue
        for entry in listed:
            prefix = _prefix(entry)
            if entry.get("insecure") is True and (prefix == registry or prefix.startswith(registry + "/")):
                found.append(Insecure(prefix, path, ours=path == DROPIN and prefix == registry))
    return found


def conflict(facts: HostFacts, registry: str, insecure: bool) -> str | None:
    """Why podman would not pull from ``registry`` as the drop-in says (naming the file); None if nothing would."""
    if ROOT_CONF in facts.files:
        return (
            f"{ROOT_CONF}: podman reads it instead of {REGISTRIES_CONF} and {REGISTRIES_DIR}, so {DROPIN} "
            "would be ignored; left as it is (remove it, or add the registry there)"
        )
    for path in read_order(facts):
        if path in facts.unreadable:
            return f"{path}: {facts.unreadable[path]}; cannot be checked for an entry for {registry}; left as it is"
        try:
            listed = entries(facts.files[path])
        except ValueError as error:
            return f"{path}: {error}; podman cannot read it either; left as it is"
        for entry in listed:
            found = _disagreement(entry, registry, insecure)
            if found:
                return f"{path}: {found}, against {DROPIN}; left as it is (remove or fix that entry)"
    return None


def read_order(facts: HostFacts) -> list[str]:
    """The registries files podman reads (this tool's drop-in aside), in its order; odd names too."""
    dirs = (REGISTRIES_DIR + "/", ROOT_DIR + "/")
    # A folder named *.conf is skipped by podman, and by this check.
    known = [*facts.files, *(path for path, why in facts.unreadable.items() if why != "not a regular file")]
    dropins = sorted({path for path in known if path.startswith(dirs) and path != DROPIN})
    main = [REGISTRIES_CONF] if REGISTRIES_CONF in facts.files else []
    return main + dropins


def entries(text: str) -> list[dict]:
    """The ``[[registry]]`` entries of a registries.conf text; v1 ``[registries.insecure]`` and
    ``[registries.block]`` lists as the entries podman makes of them. ValueError: not TOML podman reads."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"not valid TOML ({error})") from None
    listed = data.get("registry", [])
    if not isinstance(listed, list) or not all(isinstance(entry, dict) for entry in listed):
        raise ValueError("[[registry]] is not a list of tables")
    converted: dict[str, dict] = {}
    v1 = data.get("registries") if isinstance(data.get("registries"), dict) else {}
    for key, flag in (("block", "blocked"), ("insecure", "insecure")):
        section = v1.get(key) if isinstance(v1.get(key), dict) else {}
        for location in section.get("registries") or []:
            converted.setdefault(str(location), {"location": str(location)})[flag] = True
    return [*listed, *converted.values()]


def _prefix(entry: dict) -> str:
    return str(entry.get("prefix") or entry.get("location") or "").rstrip("/")


def _disagreement(entry: dict, registry: str, insecure: bool, own: bool = False) -> str:
    """What an entry for ``registry`` (or a repository under it) does differently; "" if it agrees or is for another.
    ``own``: the entry is this tool's, whose mirrors are the registry's own instances."""
    prefix = _prefix(entry)
    if prefix != registry and not prefix.startswith(registry + "/"):
        return ""
    where = f"[[registry]] for {prefix}"
    location = str(entry.get("location") or "").rstrip("/")
    if entry.get("blocked") is True:
        return f"{where} blocks it (blocked = true)"
    if location != prefix:
        return f"{where} sends its pulls to {location or 'nowhere'} (location)"
    if bool(entry.get("insecure")) != insecure:
        return f"{where} sets insecure = {str(bool(entry.get('insecure'))).lower()}"
    if entry.get("mirror") and not own:
        return f"{where} pulls through mirrors first (mirror)"
    return ""


def trusted(facts: HostFacts, registry: str) -> bool:
    """Whether podman pulls from ``registry`` as insecure: an entry says so (the drop-in or the
    operator's), and none stands against it."""
    if conflict(facts, registry, insecure=True):
        return False
    for path in (*read_order(facts), DROPIN):
        try:
            listed = entries(facts.files.get(path, ""))
        except ValueError:
            continue
        own = path == DROPIN
        if any(_prefix(entry) == registry and not _disagreement(entry, registry, True, own) for entry in listed):
            return True
    return False
