"""The images `kolla-ansible pull` would pull on each host, found with kolla-ansible's own playbook.

A standalone program for the operator's kolla-ansible Python (it imports nothing from fabfile).
Stdin: ``{"inventory": [PATH, ...], "config_dir": "/etc/kolla", "share": optional, "facts": optional
{HOST: {"os_family": "Debian"}}}``. Stdout: ``{"kolla_ansible": VERSION, "hosts": {HOST: [REF, ...]},
"registry": ..., "namespace": ...}``, or ``{"error": LINE}`` and exit status 1.

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
from types import SimpleNamespace

try:  # there in the operator's kolla-ansible Python; else kolla_ansible_version says what is missing
    from ansible import constants, context
    from ansible._internal._templating._engine import TemplateEngine, TemplateOptions
    from ansible._internal._templating._lazy_containers import _AnsibleLazyTemplateMixin
    from ansible._internal._templating._utils import TemplateContext
    from ansible.errors import AnsibleError, AnsibleUndefinedVariable
    from ansible.inventory.manager import InventoryManager
    from ansible.module_utils.common.collections import ImmutableDict
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook import Playbook
    from ansible.playbook.block import Block
    from ansible.playbook.helpers import load_list_of_blocks
    from ansible.plugins.loader import add_all_plugin_dirs, init_plugin_loader, lookup_loader
    from ansible.vars import manager as vars_manager
    from ansible.vars.hostvars import HostVars
    from kolla_ansible import utils as kolla_utils
    IMPORT_ERROR = None
except ImportError as error:
    IMPORT_ERROR = error

NO_LOOP = object()
FOLLOWED = ("group_by", "add_host", "include_tasks", "include_role", "kolla_container")


class Failure(Exception):
    """A line for the operator: what is missing or wrong."""


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


def one_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


def pulled_images(request: Mapping) -> dict:
    """The answer to one request: every inventory host and the images kolla-ansible pull puts there."""
    version = kolla_ansible_version()
    inventories, config_dir = request_paths(request)
    share = request.get("share") or kolla_utils.get_data_files_path("ansible")  # its playbooks, as the CLI finds them
    loader, inventory, variables, plays = ansible_setup(inventories, config_dir, share)
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
        "registry": settings["docker_registry"] or "",
        "namespace": settings["docker_namespace"] or "",
    }


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


def extra_vars_files(loader, config_dir: str) -> list[str]:
    """globals.yml, then globals.d's .yml, .yaml and .json by name: what the CLI passes as -e @FILE. Not
    passwords.yml: no image needs a password (the oracle tests run with one), and secrets stay unread."""
    files = [os.path.join(config_dir, "globals.yml")]
    if not os.path.isfile(files[0]):
        raise Failure(f"{files[0]}: not found")
    more = os.path.join(config_dir, "globals.d")
    if os.path.isdir(more):
        names = sorted(n for n in os.listdir(more) if os.path.splitext(n)[1] in (".yml", ".yaml", ".json"))
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


def ansible_setup(inventories: list[str], config_dir: str, share: str):
    """The loader, inventory, variables and plays ansible-playbook would have for `kolla-ansible pull`."""
    loader = DataLoader()
    extra = [f"@{path}" for path in extra_vars_files(loader, config_dir)]
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


def quicker_ansible() -> None:
    """Two of Ansible's costs, half the run here, cut without changing a value: each Jinja template is
    compiled once, not at every use (the same few hundred for every host), and get_vars's deprecated
    ``vars`` dictionary skips tagging each value for a warning (kolla-ansible uses lookup('vars'))."""
    compile_template = TemplateEngine._compile_template
    compiled: dict = {}

    def compile_once(engine, template, options):
        key = (str(template), options)
        return compiled[key] if key in compiled else compiled.setdefault(key, compile_template(engine, template, options))

    TemplateEngine._compile_template = compile_once
    if hasattr(vars_manager, "_DEPRECATE_VARS"):
        vars_manager._DEPRECATE_VARS = SimpleNamespace(tag=lambda value: value)  # the value, untagged


def lazy_templar(loader, variables: Mapping):
    """Ansible's template engine over ``variables`` made lazy once, not at every template as by Templar:
    the same values (nothing changes within a task), but each, e.g. openstack_tag, rendered once."""
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
    """Every task of these blocks that runs when nothing fails (no rescue), nested blocks included, in order."""
    for block in blocks:
        for task in (*block.block, *block.always):
            yield from flat_tasks([task]) if isinstance(task, Block) else [task]


class PullWalk:
    """Follows site.yml's plays on each host as `kolla-ansible pull` runs them; collects the pulls."""

    def __init__(self, loader, inventory, variables) -> None:
        self.loader, self.inventory, self.variables = loader, inventory, variables
        self.pulled: dict[str, set[str]] = {host.name: set() for host in inventory.get_hosts("all")}
        self.included: dict = {}  # (include task, file): its blocks, loaded once for every host
        self.play_now, self.play_hosts = None, []

    def play(self, play) -> None:
        self.inventory.clear_pattern_cache()  # earlier plays' group_by and add_host changed the groups
        hosts = self.inventory.get_hosts(play.hosts)
        self.play_now, self.play_hosts, blocks = play, [host.name for host in hosts], play.compile()
        for host in hosts:
            self.tasks(blocks, host)
        self.inventory.reconcile_inventory()

    def tasks(self, blocks: list, host) -> None:
        for task in flat_tasks(blocks):
            action = task.action.rsplit(".", 1)[-1]
            try:
                if action in FOLLOWED:
                    self.task(task, action, host)
            except AnsibleError as error:
                has_facts = self.variables.get_vars(host=host, include_hostvars=False).get("ansible_facts")
                hint = "" if has_facts else " (this host has no facts: give its Ansible facts with the request)"
                raise Failure(f"host {host.name}: {where(task)}: {one_line(error)}{hint}") from None

    def task(self, task, action: str, host) -> None:
        names = self.play_hosts  # ansible_play_batch and ansible_play_hosts: the whole play (no serial)
        task_vars = self.variables.get_vars(play=self.play_now, host=host, task=task, _hosts=names, _hosts_all=names)
        loop_var = task.loop_control.loop_var if task.loop_control else "item"
        for item in self.loop_items(task, task_vars):
            templar = lazy_templar(self.loader, task_vars if item is NO_LOOP else {**task_vars, loop_var: item})
            if all(templar.evaluate_conditional(condition) for condition in task.when):
                getattr(self, action)(task, host, templar, item)

    def loop_items(self, task, task_vars: dict) -> list:
        if task.loop_with:  # with_<lookup>: the lookup runs on the terms resolved to a container, as TaskExecutor does
            terms = lazy_templar(self.loader, task_vars).resolve_to_container(task.loop)
            lookup = lookup_loader.get(task.loop_with, loader=self.loader).run
            return lookup(terms if isinstance(terms, list) else [terms], variables=task_vars)
        if task.loop is not None:
            return lazy_templar(self.loader, task_vars).template(task.loop)
        return [NO_LOOP]

    def group_by(self, task, host, templar, item) -> None:
        """The host joins the group its key names (spaces become dashes, as the action does)."""
        group = self.inventory.add_group(templar.template(task.args["key"]).replace(" ", "-"))
        self.inventory.add_host(host.name, group=group)

    def add_host(self, task, host, templar, item) -> None:
        """The named host joins the groups (mariadb's shard groups, for one)."""
        name, groups = templar.template(task.args["name"]), templar.template(task.args.get("groups", []))
        for group in groups.split(",") if isinstance(groups, str) else groups:
            self.inventory.add_host(name, group=self.inventory.add_group(group.strip()))

    def include_tasks(self, task, host, templar, item) -> None:
        """A role's ``{{ kolla_action }}.yml``: loaded once, as Ansible shares an included file."""
        if item is not NO_LOOP or task._role is None:
            raise Failure(f"{task.get_path()}: an include outside a role or in a loop; not followed here")
        target = templar.template(task.args.get("_raw_params") or task.args.get("file"))
        path = self.loader.path_dwim_relative(task._role._role_path, "tasks", target, is_role=True)
        if (task._uuid, path) not in self.included:
            data = self.loader.load_from_file(path, trusted_as_template=True) or []
            include = task.copy(exclude_parent=True)
            include._parent = task._parent  # as the strategy's _load_included_file does
            self.included[task._uuid, path] = load_list_of_blocks(
                data, play=self.play_now, parent_block=include.build_parent_block(), role=task._role,
                loader=self.loader, variable_manager=self.variables)
        self.tasks(self.included[task._uuid, path], host)

    def include_role(self, task, host, templar, item) -> None:
        raise Failure(f"{task.get_path()}: include_role runs during pull; not followed here")

    def kolla_container(self, task, host, templar, item) -> None:
        """kolla_container's pull_image: the image this host pulls."""
        if templar.template(task.args.get("action")) != "pull_image":
            return
        service = item["key"] if isinstance(item, Mapping) and "key" in item else task.get_name()
        try:
            self.pulled[host.name].add(templar.template(task.args["image"]))
        except AnsibleUndefinedVariable as error:
            raise Failure(f"host {host.name}: service {service}: image undefined: {one_line(error)}") from None


if __name__ == "__main__":
    sys.exit(main())
