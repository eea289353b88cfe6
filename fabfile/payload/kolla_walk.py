"""Following site.yml's tasks on each host as `kolla-ansible pull` runs them (see kolla_images.py).

Part of the program kolla_images.py, in the operator's kolla-ansible Python: Ansible's own
template engine, inventory and task objects; only the walk from task to task is here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace

try:  # there in the operator's kolla-ansible Python; else kolla_ansible_version says what is missing
    from ansible._internal._templating._engine import TemplateEngine, TemplateOptions
    from ansible._internal._templating._lazy_containers import _AnsibleLazyTemplateMixin
    from ansible._internal._templating._utils import TemplateContext
    from ansible.errors import AnsibleError, AnsibleUndefinedVariable
    from ansible.playbook.block import Block
    from ansible.playbook.helpers import load_list_of_blocks
    from ansible.plugins.loader import lookup_loader
    from ansible.vars import manager as vars_manager
    IMPORT_ERROR = None
except ImportError as error:
    IMPORT_ERROR = error


NO_LOOP = object()
FOLLOWED = ("group_by", "add_host", "include_tasks", "include_role", "kolla_container")


class Failure(Exception):
    """A line for the operator: what is missing or wrong."""


def one_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


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


