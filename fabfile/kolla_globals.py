"""kolla-globals: point kolla-ansible's globals.yml at the local registry.

Only ``docker_registry``, ``docker_registry_insecure`` and ``docker_namespace``
change; the edit is line-based, so every other line and comment of the
operator's file stays byte for byte as it was.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
from dataclasses import replace

import yaml
from invoke import Context, task
from invoke.exceptions import Exit

from .change import FileChange, StepPlan
from .deploy import MODE_HELP, hosts_for, inventory_or_exit, open_run
from .facts import MARK
from .inventory import ImageSettings
from .report import Outcome, line, recap
from .runner import HostRun, StepFailed, say

STEP = "kolla-globals"
GLOBALS_PATH = "/etc/kolla/globals.yml"
NEW_FILE_HEADER = "---\n"
_TRUE = {"yes", "y", "true", "on", "1"}
_FALSE = {"no", "n", "false", "off", "0", ""}


def globals_values(registry: str, namespace: str) -> dict[str, object]:
    """The three keys, for a registry that speaks plain HTTP (as this tool's does)."""
    return {"docker_registry": registry, "docker_registry_insecure": True, "docker_namespace": namespace}


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


def holds(data: object, values: dict[str, object]) -> bool:
    """Whether parsed YAML ``data`` has every key of ``values`` at that value."""
    return isinstance(data, dict) and all(key in data and _same(data[key], v) for key, v in values.items())


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
    if not holds(_load(after), values):
        plan.error = f"{path}: cannot set {', '.join(values)} with a line edit; left as it is"
    elif after == current:
        plan.notes.append(", ".join(f"{key}: {_render(value)}" for key, value in values.items()))
    else:
        plan.files.append(FileChange(path, current, after))
    return plan


def file_script(path: str) -> str:
    """Shell that prints a file as base64 after a mark, or that it is absent."""
    quoted = shlex.quote(path)
    return (
        f"if [ -f {quoted} ]; then echo '{MARK} present'; base64 -w0 {quoted}; echo; "
        f"elif [ -e {quoted} ]; then echo '{MARK} fail {path} is not a regular file'; exit 1; "
        f"else echo '{MARK} absent'; fi\n"
    )


def parse_file(output: str) -> str | None:
    """The text ``file_script`` printed; None when the file is absent. ValueError if not UTF-8."""
    lines = output.splitlines()
    if f"{MARK} present" not in lines:
        return None
    encoded = lines[lines.index(f"{MARK} present") + 1] if lines[-1] != f"{MARK} present" else ""
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("not UTF-8 text; left as it is") from None


def host_plan(run: HostRun, path: str, values: dict[str, object]) -> StepPlan:
    """Read the file from the host as it is now, and plan."""
    try:
        current = parse_file(run.run(file_script(path)))
    except (StepFailed, ValueError) as error:
        plan = StepPlan(STEP)
        plan.error = f"{path}: {error}"
        return plan
    return globals_plan(path, current, values)


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


@task(
    help={
        "path": f"globals.yml on the deployment host (default: kolla_registry.globals_path, {GLOBALS_PATH})",
        "namespace": "docker_namespace to set (default: the inventory's images.namespace, openstack.kolla)",
        "check": MODE_HELP["check"],
        "diff": MODE_HELP["diff"],
    }
)
def kolla_globals(c: Context, path="", namespace="", check=False, diff=False):
    """Point kolla-ansible's globals.yml at the local registry (three keys, nothing else)."""
    inventory = inventory_or_exit()
    path = path or c.config.get("kolla_registry", {}).get("globals_path", GLOBALS_PATH)
    namespace = namespace or (inventory.images or ImageSettings()).namespace
    outcomes: list[Outcome] = []
    for host in hosts_for(c, inventory, (inventory.deploy_host,)):
        run = open_run(host, inventory, check, diff, False, c)
        if isinstance(run, Outcome):
            outcome = replace(run, step=STEP)
        else:
            try:
                values = globals_values(run.ctx.registry, namespace)
                outcome, _ = run.step(lambda facts, ctx, run=run, values=values: host_plan(run, path, values))
            finally:
                run.close()
        outcomes.append(outcome)
        say(line(outcome))
    say("\n" + recap(outcomes, check))
    if any(outcome.failed for outcome in outcomes):
        raise Exit(code=1)
