"""The images `kolla-ansible pull` would pull on each host, found with kolla-ansible's own playbook.

A standalone program for the operator's kolla-ansible Python (it imports nothing from fabfile).
Stdin: ``{"inventory": [PATH, ...], "config_dir": "/etc/kolla", "share": optional, "facts": optional
{HOST: {"os_family": "Debian"}}, "skip": optional [globals.d file names left out]}``. Stdout: ``{"kolla_ansible": VERSION, "hosts": {HOST: [REF, ...]},
"connections": {HOST: {"address", "user", "port", "key"}}, "registry": ..., "namespace": ...}``, or
``{"error": LINE}`` and exit status 1.

site.yml is loaded with Ansible's Playbook API, each play's hosts come from its InventoryManager,
and each host's tasks are followed as far as `pull` goes (group_by, add_host, include_tasks, every
``when`` and loop, kolla_container's pull_image) with the VariableManager's variables (group_vars,
role defaults, globals as the CLI's extra vars), templated by Ansible with kolla-ansible's filters.
Hosts go one after the other, not task by task: the same while no host reads what another's later
task changes (true of `pull`). Facts are not gathered: the request's are used (none by default).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Mapping
from importlib import metadata

try:  # a module of this package here; beside this file when the operator's Python runs it as a program
    from .kolla_walk import IMPORT_ERROR, Failure, PullWalk, lazy_templar, one_line, quicker_ansible
except ImportError:
    from kolla_walk import IMPORT_ERROR, Failure, PullWalk, lazy_templar, one_line, quicker_ansible

try:  # there in the operator's kolla-ansible Python; else kolla_ansible_version says what is missing
    from ansible import constants, context
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.module_utils.common.collections import ImmutableDict
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook import Playbook
    from ansible.plugins.loader import add_all_plugin_dirs, init_plugin_loader
    from ansible.vars import manager as vars_manager
    from ansible.vars.hostvars import HostVars
    from kolla_ansible import utils as kolla_utils
except ImportError:
    pass  # IMPORT_ERROR (from kolla_walk) says it


def main() -> int:
    try:
        request = json.load(sys.stdin)
        with contextlib.redirect_stdout(sys.stderr):  # Ansible's messages must not mix with the answer
            answer = pulled_images(request)
    except Failure as failure:
        answer = {"error": str(failure)}
    except Exception as error:  # noqa: BLE001 - still one line for the operator, naming what broke
        answer = {"error": f"{type(error).__name__}: {one_line(error)}"}
    print(json.dumps(answer))
    return 1 if "error" in answer else 0


def pulled_images(request: Mapping) -> dict:
    """The answer to one request: every inventory host and the images kolla-ansible pull puts there."""
    version = kolla_ansible_version()
    inventories, config_dir = request_paths(request)
    share = request.get("share") or kolla_utils.get_data_files_path("ansible")  # its playbooks, as the CLI finds them
    loader, inventory, variables, plays = ansible_setup(inventories, config_dir, share, request.get("skip") or ())
    hosts = inventory.get_hosts("all")
    if not hosts:
        raise Failure(f"inventory {', '.join(inventories)}: no hosts")
    for name, facts in (request.get("facts") or {}).items():
        if inventory.get_host(name) is None:
            raise Failure(f"facts for {name}: no such host in the inventory")
        # As the setup module returns them (ansible_ prefixed); Ansible namespaces them as ansible_facts.
        variables.set_host_facts(name, {k if k.startswith("ansible_") else f"ansible_{k}": v for k, v in facts.items()})
    settings = lazy_templar(loader, variables.get_vars(host=hosts[0])).available_variables
    walk = PullWalk(loader, inventory, variables)
    for play in plays:
        walk.play(play)
    return {
        "kolla_ansible": version,
        "hosts": {name: sorted(images) for name, images in walk.pulled.items()},
        "connections": {host.name: connection(loader, variables, host) for host in hosts},
        "registry": settings["docker_registry"] or "",
        "namespace": settings["docker_namespace"] or "",
    }


# How Ansible reaches a host, as kolla-ansible's inventory says: what this tool's own SSH needs.
CONNECTION_VARS = {
    "address": "ansible_host", "user": "ansible_user", "port": "ansible_port",
    "key": "ansible_ssh_private_key_file", "connection": "ansible_connection",
}


def connection(loader, variables, host) -> dict:
    """The host's address, user, port and key as its (templated) inventory variables give them; unset ones left out."""
    found = variables.get_vars(host=host, include_hostvars=False)
    templar = lazy_templar(loader, found)
    return {key: str(templar.template(found[name])) for key, name in CONNECTION_VARS.items() if found.get(name) is not None}


def kolla_ansible_version() -> str:
    """kolla-ansible's version, once this Python and its ansible-core can run it."""
    try:
        kolla = metadata.distribution("kolla-ansible")
    except metadata.PackageNotFoundError:
        raise Failure(f"{sys.executable}: kolla-ansible is not installed for this Python") from None
    needed = re.search(r">=\s*(\d+\.\d+)", kolla.metadata.get("Requires-Python") or "")
    if needed and sys.version_info[:2] < tuple(int(part) for part in needed[1].split(".")):
        running, major = f"{sys.version_info[0]}.{sys.version_info[1]}", kolla.version.split(".")[0]
        raise Failure(f"{sys.executable}: Python {running} is too old for kolla-ansible {major} (needs >= {needed[1]})")
    core = metadata.version("ansible-core")
    if tuple(int(part) for part in re.findall(r"\d+", core)[:2]) < (2, 19):  # the lazy templating used here
        raise Failure(f"{sys.executable}: ansible-core {core} is too old here (needs >= 2.19)")
    if IMPORT_ERROR is not None:
        raise Failure(f"{sys.executable}: cannot import Ansible or kolla_ansible: {one_line(IMPORT_ERROR)}")
    return kolla.version


def request_paths(request: Mapping) -> tuple[list[str], str]:
    """The inventory sources and the configuration directory, each checked to exist."""
    inventories = list(request.get("inventory") or [])
    if not inventories:
        raise Failure("no inventory given")
    for path in inventories:
        if not os.path.exists(path):
            raise Failure(f"inventory {path}: not found")
    config_dir = os.path.abspath(request.get("config_dir") or "/etc/kolla")
    if not os.path.isdir(config_dir):
        raise Failure(f"{config_dir}: not found (kolla-ansible's configuration directory)")
    return [os.path.abspath(path) for path in inventories], config_dir


def extra_vars_files(loader, config_dir: str, skip=()) -> list[str]:
    """globals.yml, then globals.d's .yml, .yaml and .json by name: what the CLI passes as -e @FILE, but
    the globals.d files named in ``skip`` (kolla-registry's own release pin: the set is the upstream's
    names). Not passwords.yml: no image needs a password (the oracle tests run with one), and secrets
    stay unread."""
    files = [os.path.join(config_dir, "globals.yml")]
    if not os.path.isfile(files[0]):
        raise Failure(f"{files[0]}: not found")
    more = os.path.join(config_dir, "globals.d")
    if os.path.isdir(more):
        names = sorted(n for n in os.listdir(more) if os.path.splitext(n)[1] in (".yml", ".yaml", ".json") and n not in skip)
        files += [path for path in (os.path.join(more, n) for n in names) if os.path.isfile(path)]
    for path in files:
        try:  # not cached: Ansible loads it again, trusted as a template
            data = loader.load_from_file(path, cache="none")
        except AnsibleError as error:
            line = getattr(error.obj, "line_num", None)
            raise Failure(f"{path}: not valid YAML" + (f" (line {line})" if line else "")) from None
        if not isinstance(data, Mapping):
            raise Failure(f"{path}: not a mapping of variables (kolla-ansible needs one)")
    return files


def ansible_setup(inventories: list[str], config_dir: str, share: str, skip=()):
    """The loader, inventory, variables and plays ansible-playbook would have for `kolla-ansible pull`."""
    loader = DataLoader()
    extra = [f"@{path}" for path in extra_vars_files(loader, config_dir, skip)]
    context.CLIARGS = ImmutableDict(extra_vars=(*extra, "kolla_action=pull", f"CONFIG_DIR={config_dir}"))
    init_plugin_loader()
    constants.INVENTORY_ANY_UNPARSED_IS_FAILED = True  # an inventory Ansible cannot parse is an error here
    constants.CACHE_PLUGIN = "memory"  # facts are the request's: the operator's fact cache is neither read nor written
    loader.set_basedir(share)  # the playbook's directory: its group_vars/ are kolla-ansible's defaults
    try:
        inventory = InventoryManager(loader, sources=inventories)
    except AnsibleError as error:
        raise Failure(f"inventory {', '.join(inventories)}: {one_line(error)}") from None
    variables = vars_manager.VariableManager(loader, inventory)  # reads the extra vars from context.CLIARGS
    HostVars(inventory=inventory, variable_manager=variables, loader=loader)  # becomes `hostvars`
    add_all_plugin_dirs(share)  # as ansible-playbook does: filter_plugins/ (kolla_ansible's filters), library/
    quicker_ansible()
    plays = Playbook.load(os.path.join(share, "site.yml"), variable_manager=variables, loader=loader).get_plays()
    loader.set_basedir(share)  # loading moved it to the last imported playbook's directory
    return loader, inventory, variables, plays


if __name__ == "__main__":
    sys.exit(main())
