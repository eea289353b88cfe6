"""The images `kolla-ansible pull` would pull on each host, found with kolla-ansible's own playbook.

A standalone program for the operator's kolla-ansible interpreter (it imports nothing from
fabfile): one JSON request on stdin, ``{"inventory": [PATH, ...], "config_dir": "/etc/kolla",
"share": optional, "facts": optional {HOST: {"os_family": "Debian", ...}}}``, and one JSON answer on stdout, ``{"kolla_ansible": VERSION, "hosts":
{HOST: [REF, ...]}, "registry": ..., "namespace": ...}``, or ``{"error": "one line"}`` and exit 1.

site.yml is loaded with Ansible's Playbook API. Each play's hosts come from Ansible's
InventoryManager; on each host its tasks are followed as far as `pull` goes: group_by and
add_host change the inventory as they do in a run, include_tasks is loaded and followed, every
``when`` and loop is evaluated, and kolla_container's ``pull_image`` records its ``image``. The
variables are the VariableManager's (kolla-ansible's group_vars and role defaults, globals.yml
and globals.d as extra vars, as the kolla-ansible CLI passes them) and the templating is
Ansible's, with kolla-ansible's filter plugins, so ``enable_*`` and every service's ``enabled``
and ``group`` mean exactly what they mean to kolla-ansible. Hosts are followed one after the
other within a play, not task by task across hosts as the linear strategy does: the same result
as long as no host's task reads what another host's later task changes (true of `pull` today).

A few of kolla-ansible's choices depend on a host's facts (with cinder's LVM backend, tgtd
runs only where ``ansible_facts.os_family`` is not RedHat). Nothing is gathered here: facts come
from the request, or from Ansible's fact cache when the operator's ansible.cfg keeps one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Mapping

MIN_ANSIBLE_CORE = (2, 19)  # data tagging and lazy templating, which the engine below relies on
NO_LOOP = object()
FOLLOWED = ("group_by", "add_host", "include_tasks", "include_role", "kolla_container")


class Failure(Exception):
    """A line for the operator: what is missing or wrong."""


def main() -> int:
    # Before Ansible reads its configuration: an inventory it cannot parse is an error, not a warning.
    os.environ["ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED"] = "1"
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


def one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def pulled_images(request: Mapping) -> dict:
    """The answer to one request: every inventory host and the images kolla-ansible pull puts there."""
    version = kolla_ansible_version()
    inventories, config_dir = request_paths(request)
    from kolla_ansible import utils

    share = request.get("share") or utils.get_data_files_path("ansible")
    if not os.path.isfile(os.path.join(share, "site.yml")):
        raise Failure(f"{share}: no site.yml (not kolla-ansible's ansible directory)")
    loader, inventory, variables = ansible_setup(inventories, config_dir, share)
    hosts = inventory.get_hosts("all")
    if not hosts:
        raise Failure(f"inventory {', '.join(inventories)}: no hosts")
    for name, facts in (request.get("facts") or {}).items():
        if inventory.get_host(name) is None:
            raise Failure(f"facts for {name}: no such host in the inventory")
        # Stored as the setup module returns them, ansible_ prefixed; Ansible namespaces them as ansible_facts.
        variables.set_host_facts(name, {k if k.startswith("ansible_") else f"ansible_{k}": v for k, v in facts.items()})
    settings = lazy_templar(loader, variables.get_vars(host=hosts[0])).available_variables
    walk = PullWalk(loader, inventory, variables)
    for play in playbook_plays(share, loader, variables):
        walk.play(play)
    return {
        "kolla_ansible": version,
        "hosts": {name: sorted(images) for name, images in walk.pulled.items()},
        "registry": settings["docker_registry"] or "",
        "namespace": settings["docker_namespace"] or "",
    }


def kolla_ansible_version() -> str:
    """kolla-ansible's version, once this Python and its ansible-core can run it."""
    from importlib import metadata

    try:
        kolla = metadata.distribution("kolla-ansible")
    except metadata.PackageNotFoundError:
        raise Failure(f"{sys.executable}: kolla-ansible is not installed for this Python") from None
    needed = re.search(r">=\s*(\d+)\.(\d+)", kolla.metadata.get("Requires-Python") or "")
    if needed and sys.version_info[:2] < (int(needed[1]), int(needed[2])):
        raise Failure(
            f"{sys.executable}: Python {sys.version_info[0]}.{sys.version_info[1]} is too old for "
            f"kolla-ansible {kolla.version.split('.')[0]} (needs >= {needed[1]}.{needed[2]})"
        )
    core = metadata.version("ansible-core")
    if tuple(int(part) for part in re.findall(r"\d+", core)[:2]) < MIN_ANSIBLE_CORE:
        raise Failure(f"{sys.executable}: ansible-core {core} is too old here (needs >= 2.19)")
    return kolla.version


def request_paths(request: Mapping) -> tuple[list[str], str]:
    """The inventory sources and the configuration directory, each checked to exist."""
    inventories = request.get("inventory") or []
    inventories = [inventories] if isinstance(inventories, str) else list(inventories)
    if not inventories:
        raise Failure("no inventory given")
    for path in inventories:
        if not os.path.exists(path):
            raise Failure(f"inventory {path}: not found")
    config_dir = os.path.abspath(request.get("config_dir") or "/etc/kolla")
    if not os.path.isdir(config_dir):
        raise Failure(f"{config_dir}: not found (kolla-ansible's configuration directory)")
    return [os.path.abspath(path) for path in inventories], config_dir


def extra_vars_files(loader, config_dir: str) -> list[str]:
    """globals.yml, then globals.d's .yml, .yaml and .json files by name: what the CLI passes as -e @FILE.

    passwords.yml, which the CLI passes too, is never read: no image reference needs a password
    (the tests compare with real runs that have one), and the tool has no business with secrets.
    """
    files = [os.path.join(config_dir, "globals.yml")]
    if not os.path.isfile(files[0]):
        raise Failure(f"{files[0]}: not found")
    more = os.path.join(config_dir, "globals.d")
    if os.path.isdir(more):
        names = sorted(n for n in os.listdir(more) if os.path.splitext(n)[1] in (".yml", ".yaml", ".json"))
        files += [path for path in (os.path.join(more, n) for n in names) if os.path.isfile(path)]
    for path in files:
        check_vars_file(loader, path)
    return files


def check_vars_file(loader, path: str) -> None:
    from ansible.errors import AnsibleError

    try:
        data = loader.load_from_file(path, cache="none")  # not cached: Ansible loads it again, trusted as a template
    except AnsibleError as error:
        line = getattr(error.obj, "line_num", None)
        raise Failure(f"{path}: not valid YAML" + (f" (line {line})" if line else "")) from None
    if not isinstance(data, Mapping):
        raise Failure(f"{path}: not a mapping of variables (kolla-ansible needs one)")


def ansible_setup(inventories: list[str], config_dir: str, share: str):
    """The loader, inventory and variables ansible-playbook would have for `kolla-ansible pull`."""
    from ansible import context
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.module_utils.common.collections import ImmutableDict
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import add_all_plugin_dirs, init_plugin_loader
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    extra = [f"@{path}" for path in extra_vars_files(loader, config_dir)]
    context.CLIARGS = ImmutableDict(extra_vars=(*extra, "kolla_action=pull", f"CONFIG_DIR={config_dir}"))
    init_plugin_loader()
    loader.set_basedir(share)  # the playbook's directory: its group_vars/ are kolla-ansible's defaults
    try:
        inventory = InventoryManager(loader, sources=inventories)
    except AnsibleError as error:
        raise Failure(f"inventory {', '.join(inventories)}: {one_line(error)}") from None
    variables = VariableManager(loader, inventory)  # reads the extra vars from context.CLIARGS
    HostVars(inventory=inventory, variable_manager=variables, loader=loader)  # becomes `hostvars`
    add_all_plugin_dirs(share)  # as ansible-playbook does: filter_plugins/ (kolla_ansible's filters), library/
    cache_compiled_templates()
    return loader, inventory, variables


def playbook_plays(share: str, loader, variables) -> list:
    from ansible.playbook import Playbook

    plays = Playbook.load(os.path.join(share, "site.yml"), variable_manager=variables, loader=loader).get_plays()
    loader.set_basedir(share)  # loading moved it to the last imported playbook's directory
    return plays


def cache_compiled_templates() -> None:
    """Compile each Jinja template once per run: Ansible compiles at every use, here the same few
    hundred of kolla-ansible's templates for every host. A cache keyed by text and options."""
    from ansible._internal._templating._engine import TemplateEngine

    compile_template = TemplateEngine._compile_template
    compiled: dict = {}

    def compile_once(engine, template, options):
        key = (str(template), options)
        if key not in compiled:
            compiled[key] = compile_template(engine, template, options)
        return compiled[key]

    TemplateEngine._compile_template = compile_once


def lazy_templar(loader, variables: Mapping):
    """Ansible's template engine over ``variables`` made lazy once, where the public Templar makes
    them lazy again at every template: the same values (nothing changes while one task is
    evaluated), but each variable, e.g. openstack_tag under every image, is rendered once."""
    from ansible._internal._templating._engine import TemplateEngine, TemplateOptions
    from ansible._internal._templating._lazy_containers import _AnsibleLazyTemplateMixin
    from ansible._internal._templating._utils import TemplateContext

    engine = TemplateEngine(loader)
    with TemplateContext(template_value=None, templar=engine, options=TemplateOptions.DEFAULT):
        engine.available_variables = _AnsibleLazyTemplateMixin._try_create(variables)
    return engine


def where(task) -> str:
    """The outermost role a task is in (cinder, not the service-images-pull it imports), else the task."""
    role, node = None, task
    while node is not None:
        role, node = getattr(node, "_role", None) or role, getattr(node, "_parent", None)
    return f"role {role.get_name()}" if role else f"task '{task.get_name()}'"


def flat_tasks(blocks: list):
    """Every task of these blocks, nested blocks included, in order."""
    from ansible.playbook.block import Block

    for block in blocks:
        for task in (*block.block, *block.rescue, *block.always):
            yield from flat_tasks([task]) if isinstance(task, Block) else [task]


class PullWalk:
    """Follows site.yml's plays on each host as `kolla-ansible pull` runs them; collects the pulls."""

    def __init__(self, loader, inventory, variables) -> None:
        self.loader, self.inventory, self.variables = loader, inventory, variables
        self.pulled: dict[str, set[str]] = {host.name: set() for host in inventory.get_hosts("all")}
        self.included: dict = {}  # (include task, file): its blocks, loaded once for every host

    def play(self, play) -> None:
        self.inventory.clear_pattern_cache()  # earlier plays' group_by and add_host changed the groups
        hosts = self.inventory.get_hosts(play.hosts)
        names = [host.name for host in hosts]
        blocks = play.compile()
        for host in hosts:
            self.tasks(play, blocks, host, names)
        self.inventory.reconcile_inventory()

    def tasks(self, play, blocks: list, host, names: list[str]) -> None:
        from ansible.errors import AnsibleError

        for task in flat_tasks(blocks):
            action = task.action.rsplit(".", 1)[-1]
            if action not in FOLLOWED:
                continue
            try:
                self.task(play, task, action, host, names)
            except AnsibleError as error:
                raise Failure(f"host {host.name}: {where(task)}: {one_line(error)}{self.facts_hint(host)}") from None

    def facts_hint(self, host) -> str:
        if self.variables.get_vars(host=host, include_hostvars=False).get("ansible_facts"):
            return ""
        return " (this host has no facts: give its Ansible facts, e.g. os_family, with the request)"

    def task(self, play, task, action: str, host, names: list[str]) -> None:
        task_vars = self.variables.get_vars(play=play, host=host, task=task, _hosts=names, _hosts_all=names)
        loop_var = task.loop_control.loop_var if task.loop_control else "item"
        for item in self.loop_items(task, task_vars):
            templar = lazy_templar(self.loader, task_vars if item is NO_LOOP else {**task_vars, loop_var: item})
            if all(templar.evaluate_conditional(condition) for condition in task.when):
                getattr(self, action)(play, task, host, names, templar, item)

    def loop_items(self, task, task_vars: dict) -> list:
        from ansible.plugins.loader import lookup_loader

        if task.loop_with:  # with_<lookup>: the lookup runs on the terms resolved to a container, as TaskExecutor does
            terms = lazy_templar(self.loader, task_vars).resolve_to_container(task.loop)
            lookup = lookup_loader.get(task.loop_with, loader=self.loader)
            return lookup.run(terms if isinstance(terms, list) else [terms], variables=task_vars)
        if task.loop is not None:
            return lazy_templar(self.loader, task_vars).template(task.loop)
        return [NO_LOOP]

    def group_by(self, play, task, host, names, templar, item) -> None:
        """The host joins the group its key names (spaces become dashes, as the action does)."""
        group = self.inventory.add_group(templar.template(task.args["key"]).replace(" ", "-"))
        self.inventory.add_host(host.name, group=group)

    def add_host(self, play, task, host, names, templar, item) -> None:
        """The named host joins the groups (mariadb's shard groups, for one)."""
        name = templar.template(task.args["name"])
        groups = templar.template(task.args.get("groups", []))
        for group in groups.split(",") if isinstance(groups, str) else groups:
            self.inventory.add_host(name, group=self.inventory.add_group(group.strip()))

    def include_tasks(self, play, task, host, names, templar, item) -> None:
        """A role's ``{{ kolla_action }}.yml``: loaded once, as Ansible shares an included file."""
        if item is not NO_LOOP or task._role is None:
            raise Failure(f"{task.get_path()}: an include outside a role or in a loop; not followed here")
        target = templar.template(task.args.get("_raw_params") or task.args.get("file"))
        path = self.loader.path_dwim_relative(task._role._role_path, "tasks", target, is_role=True)
        if (task._uuid, path) not in self.included:
            self.included[task._uuid, path] = self.load_included(play, task, path)
        self.tasks(play, self.included[task._uuid, path], host, names)

    def load_included(self, play, task, path: str) -> list:
        from ansible.playbook.helpers import load_list_of_blocks

        data = self.loader.load_from_file(path, trusted_as_template=True) or []
        include = task.copy(exclude_parent=True)
        include._parent = task._parent  # as the strategy's _load_included_file does
        return load_list_of_blocks(
            data, play=play, parent_block=include.build_parent_block(), role=task._role,
            loader=self.loader, variable_manager=self.variables,
        )

    def include_role(self, play, task, host, names, templar, item) -> None:
        raise Failure(f"{task.get_path()}: include_role runs during pull; not followed here")

    def kolla_container(self, play, task, host, names, templar, item) -> None:
        """kolla_container's pull_image: the image this host pulls."""
        from ansible.errors import AnsibleUndefinedVariable

        if templar.template(task.args.get("action")) != "pull_image":
            return
        service = item["key"] if isinstance(item, Mapping) and "key" in item else task.get_name()
        try:
            self.pulled[host.name].add(templar.template(task.args["image"]))
        except AnsibleUndefinedVariable as error:
            raise Failure(f"host {host.name}: service {service}: image undefined: {one_line(error)}") from None


if __name__ == "__main__":
    sys.exit(main())
