"""globals.yml: point kolla-ansible at the local registry, with a line edit.

Only ``docker_registry``, ``docker_registry_insecure`` and ``docker_namespace``
change (with ``podman_registry`` and ``podman_registry_insecure`` where the file
selects podman, and a secure registry's CA and user); the edit is line-based,
so every other line and comment of the operator's file stays byte for byte as it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import PurePosixPath

import yaml

from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.plan import FileChange, StepPlan
from ..registry.paths import REGISTRY_USER

STEP = "kolla-globals"
GLOBALS_PATH = "/etc/kolla/globals.yml"
NEW_FILE_HEADER = "---\n"
_TRUE = {"yes", "y", "true", "on", "1"}
_FALSE = {"no", "n", "false", "off", "0", ""}


# Where kolla-ansible finds the registry's CA (its docker role copies it to every node's certs.d).
KOLLA_CA = "/etc/kolla/certificates/kolla-registry-ca.crt"


def globals_values(
    registry: str, namespace: str, secure: bool = False, login: bool = False, podman: bool = False
) -> dict[str, object]:
    """The keys that point kolla-ansible at the registry: three for plain HTTP, the CA and user for more,
    and podman's own two where globals.yml selects podman."""
    values: dict[str, object] = {
        "docker_registry": registry,
        "docker_registry_insecure": not secure,
        "docker_namespace": namespace,
    }
    if podman:
        # kolla-ansible's podman role reads its own keys; it does not derive them from docker_registry.
        values["podman_registry"] = registry
        values["podman_registry_insecure"] = not secure
    if login:
        values["docker_registry_username"] = REGISTRY_USER
    if secure:
        values["docker_registry_ca"] = KOLLA_CA
    return values


def kolla_insecure_registry(text: str | None) -> str | None:
    """The registry kolla-ansible's docker role lists in insecure-registries, as globals.yml says.

    ``docker_registry`` when ``docker_registry_insecure`` is true, else ""; None
    when there is no globals.yml to tell.
    """
    if text is None:
        return None
    data = _load(text)
    if not isinstance(data, dict) or not _same(data.get("docker_registry_insecure"), True):
        return ""
    return str(data.get("docker_registry") or "")


def passwords_path(globals_path: str) -> str:
    """kolla-ansible's passwords.yml, beside globals.yml."""
    return str(PurePosixPath(globals_path).parent / "passwords.yml")


def set_globals(text: str, values: dict[str, object]) -> str:
    """``text`` with each key of ``values`` set, every other line kept as it is.

    A key's line is replaced (its trailing comment kept); a missing key goes
    after its commented-out template line (``#docker_registry:``, as Kolla's
    sample file has them), else at the end. A line already holding the value
    (``yes`` for ``true`` too: kolla-ansible reads it with ``| bool``) is kept.
    """
    lines = text.splitlines(keepends=True)
    for key, value in values.items():
        lines = _set_key(lines, key, value)
    return "".join(lines)


def has_values(data: object, values: dict[str, object]) -> bool:
    """Whether parsed YAML ``data`` has every key of ``values`` at that value."""
    return isinstance(data, dict) and all(key in data and _same(data[key], v) for key, v in values.items())


def kolla_files(path: str) -> tuple[str, ...]:
    """The files kolla-globals may edit: globals.yml, passwords.yml, the CA's copy."""
    return (path, passwords_path(path), KOLLA_CA)


def globals_planner(path: str, namespace: str) -> Callable[[HostFacts, StepContext], StepPlan]:
    """A planner for globals.yml at ``path`` (and, for a secure registry, its CA and password)."""

    def plan_globals(facts: HostFacts, ctx: StepContext) -> StepPlan:
        unreadable = [name for name in kolla_files(path) if name in facts.unreadable]
        if unreadable:
            return StepPlan(STEP, error=f"{unreadable[0]}: {facts.unreadable[unreadable[0]]}; left as it is")
        secure = ctx.inventory.registry.secure
        current = facts.files.get(path)
        values = globals_values(ctx.registry, namespace, secure, ctx.login, selects_podman(current))
        plan = globals_plan(path, current, values)
        if secure and not plan.error and facts.files.get(KOLLA_CA) != ctx.ca:
            plan.files.append(FileChange(KOLLA_CA, facts.files.get(KOLLA_CA), ctx.ca))
        if ctx.login and not plan.error:
            plan.merge(_password_plan(passwords_path(path), facts.files.get(passwords_path(path)), ctx.password))
        return plan

    return plan_globals


def selects_podman(text: str | None) -> bool:
    """Whether globals.yml runs the containers with podman (``kolla_container_engine: podman``)."""
    data = _load(text) if text else None
    return isinstance(data, dict) and data.get("kolla_container_engine") == "podman"


def _password_plan(path: str, current: str | None, password: str) -> StepPlan:
    """docker_registry_password in passwords.yml: a secret, never shown. A missing passwords.yml is not
    made here: kolla-genpwd fills only an existing file's empty keys, so one holding our key alone would
    leave every other password of the cloud unset."""
    if current is None:
        return StepPlan(STEP, error=f"{path}: missing: run kolla-genpwd first (it makes kolla-ansible's passwords), then fab kolla-globals")
    plan = globals_plan(path, current, {"docker_registry_password": password})
    plan.notes = ["docker_registry_password in place"] if not plan.files and not plan.error else []
    plan.files = [replace(change, mode="600", secret=True) for change in plan.files]
    if plan.error:
        plan.error = plan.error.replace(password, "***")
    return plan


def globals_plan(path: str, current: str | None, values: dict[str, object]) -> StepPlan:
    """The change to globals.yml at ``path`` (``current`` None: absent), or why there is none."""
    plan = StepPlan(STEP)
    try:
        data = yaml.safe_load(current) if current else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        plan.error = f"{path}: not valid YAML{where}; left as it is"
        return plan
    if data is not None and not isinstance(data, dict):
        plan.error = f"{path}: not a YAML mapping; left as it is"
        return plan
    after = set_globals(current if current is not None else NEW_FILE_HEADER, values)
    if not has_values(_load(after), values):
        plan.error = f"{path}: cannot set {', '.join(values)} with a line edit; left as it is"
    elif after == current:
        plan.notes.append(", ".join(f"{key}: {_render(value)}" for key, value in values.items()))
    else:
        plan.files.append(FileChange(path, current, after))
    return plan


def _set_key(lines: list[str], key: str, value: object) -> list[str]:
    own = re.compile(rf"^{re.escape(key)}[ \t]*:(?=[ \t]|\r?$)")
    template = re.compile(rf"^#[ \t]*{re.escape(key)}[ \t]*:")
    wanted = f"{key}: {_render(value)}"
    out: list[str] = []
    found, after_template, i = False, None, 0
    while i < len(lines):
        if not own.match(lines[i]):
            if template.match(lines[i]):
                after_template = len(out) + 1
            out.append(lines[i])
            i += 1
            continue
        found = True
        end = i + 1
        # A value may go on over indented lines: they belong to the key.
        while end < len(lines) and lines[end][:1] in " \t" and lines[end].strip()[:1] not in ("", "#"):
            end += 1
        if _same(_value_of("".join(lines[i:end]), key), value):
            out += lines[i:end]
        else:
            body = lines[i].rstrip("\r\n")
            out.append(wanted + _comment(body) + lines[i][len(body) :])
        i = end
    if found:
        return out
    ending = "\r\n" if out and out[0].endswith("\r\n") else "\n"
    if after_template is not None:
        out.insert(after_template, wanted + ending)
        return out
    if out and not out[-1].endswith("\n"):
        out[-1] += ending
    return [*out, wanted + ending]


def _load(text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    # A JSON string is a YAML double-quoted scalar.
    return json.dumps(str(value))


def _value_of(block: str, key: str) -> object:
    data = _load(block)
    return data.get(key) if isinstance(data, dict) else None


def _same(found: object, wanted: object) -> bool:
    if isinstance(wanted, bool):
        if isinstance(found, bool):
            return found == wanted
        text = str(found).strip().lower() if isinstance(found, (str, int)) else None
        return text in (_TRUE if wanted else _FALSE)
    return isinstance(found, str) and found == wanted


def _comment(body: str) -> str:
    """The line's trailing ``# comment`` with the blanks before it, or ""."""
    try:
        whole = yaml.safe_load(body)
    except yaml.YAMLError:
        return ""
    for match in re.finditer(r"[ \t]+#", body):
        try:
            if yaml.safe_load(body[: match.start()]) == whole:
                return body[match.start() :]
        except yaml.YAMLError:
            continue
    return ""
