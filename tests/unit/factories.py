"""Hosts the planner tests start from: realistic facts and contexts, built in Python.

Every value here is what ``facts.parse`` returns for a real host (see
``test_facts.py``, which parses the matching script output).
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from fabfile.engine import access as _access
from fabfile.engine import action as _action
from fabfile.engine import hostrun as _hostrun
from fabfile.engine import report as _report
from fabfile.engine import runner as _runner
from fabfile.engine.access import RegistryAccess as _RegistryAccess
from fabfile.engine.action import Action as _Action
from fabfile.engine.runner import Runner as _Runner
from fabfile.engines.docker.paths import DEFAULT_DOCKER
from fabfile.engines.podman.registries import dropin_with
from fabfile.facts.base import Texts
from fabfile.model.context import Modes, StepContext
from fabfile.model.facts import EngineFacts, HostFacts
from fabfile.model.inventory import DockerSettings, Host, Inventory, RegistrySettings
from fabfile.model.plan import StepPlan
from fabfile.registry.access import Access
from fabfile.registry.container import SPEC_LABEL

REGISTRY_IP = "192.0.2.10"
REGISTRY = f"{REGISTRY_IP}:4000"
IMAGE_ID = "sha256:" + "3a" * 32
OLD_VOLUME = "f" * 64
PREREQUISITES = DockerSettings().prerequisites

DEBIAN12_OS = {
    "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
    "NAME": "Debian GNU/Linux",
    "VERSION_ID": "12",
    "VERSION": "12 (bookworm)",
    "VERSION_CODENAME": "bookworm",
    "ID": "debian",
}
UBUNTU1404_OS = {
    "NAME": "Ubuntu",
    "VERSION": "14.04.6 LTS, Trusty Tahr",
    "ID": "ubuntu",
    "ID_LIKE": "debian",
    "PRETTY_NAME": "Ubuntu 14.04.6 LTS",
    "VERSION_ID": "14.04",
}

# `systemctl show docker -p ExecStart` for the units the tasks meet.
DEBIAN_EXEC_START = (
    "{ path=/usr/sbin/dockerd ; argv[]=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS ; ignore_errors=no ; "
    "start_time=[Mon 2024-01-08 10:00:00 UTC] ; stop_time=[n/a] ; pid=612 ; code=(null) ; status=0/0 }"
)
DOCKER_CE_EXEC_START = (
    "{ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd -H fd:// "
    "--containerd=/run/containerd/containerd.sock ; ignore_errors=no ; start_time=[n/a] ; "
    "stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }"
)
DOCKER_1_11_EXEC_START = (
    "{ path=/usr/bin/docker ; argv[]=/usr/bin/docker daemon -H fd:// $DOCKER_OPTS ; ignore_errors=no ; "
    "start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }"
)
READS_DEFAULT_DOCKER = "/etc/default/docker (ignore_errors=yes)"

# /etc/default/docker as the docker.io and docker-ce packages ship it.
PACKAGED_DEFAULT_DOCKER = """\
# Docker Upstart and SysVinit configuration file

#
# THIS FILE DOES NOT APPLY TO SYSTEMD
#

# Customize location of Docker binary (especially for development testing).
#DOCKERD="/usr/local/bin/dockerd"

# Use DOCKER_OPTS to modify the daemon startup options.
#DOCKER_OPTS="--dns 8.8.8.8 --dns 8.8.4.4"

# If you need Docker to use an HTTP proxy, it can also be specified here.
#export http_proxy="http://127.0.0.1:3128/"
"""


def make_inventory(registry: dict | None = None, docker: dict | None = None) -> Inventory:
    return Inventory(
        path=Path("/srv/kolla/hosts.yaml"),
        deploy_host=Host("deploy1", REGISTRY_IP),
        targets=(Host("node1", "192.0.2.11"), Host("node2", "192.0.2.12")),
        registry=RegistrySettings(**(registry or {})),
        docker=DockerSettings(**(docker or {})),
        defaults=Host("", ""),
    )


def make_ctx(
    registry: dict | None = None,
    docker: dict | None = None,
    *,
    address: str = REGISTRY_IP,
    repair: bool = False,
    notified: str | None = None,
) -> StepContext:
    return StepContext(make_inventory(registry, docker), address, Modes(repair=repair), notified)


# Where each of the flat names the tests use lives in HostFacts: (part, attribute); an engine's
# part is "engine:NAME".
FLAT = {
    **{name: ("system", name) for name in (
        "os", "kernel", "addresses", "names", "externally_managed", "pip_version", "packages",
        "apt_lists_age", "run_propagation",
    )},
    "docker_version": ("engine:docker", "version"),
    "docker_answers": ("engine:docker", "answers"),
    "unit": ("engine:docker", "service"),
    "verified": ("engine:docker", "checked"),
    "docker_images": ("engine:docker", "images"),
    "podman_version": ("engine:podman", "version"),
    "podman_verified": ("engine:podman", "checked"),
    "podman_images": ("engine:podman", "images"),
    "container": ("registry", "container"),
    "image_id": ("registry", "image_id"),
    "tls": ("registry", "tls"),
    "registry_tls": ("reach", "tls"),
    "instance_answers": ("reach", "instances"),
    "answers": ("reach", "answers"),
    "files": ("", "files"),
    "unreadable": ("", "unreadable"),
}


def changed(facts: HostFacts, **flat) -> HostFacts:
    """A copy of ``facts`` with each flat-named fact set (see ``FLAT``)."""
    after = copy.deepcopy(facts)
    for name, value in flat.items():
        part, attribute = FLAT[name]
        if part.startswith("engine:"):
            target = after.engines.setdefault(part[len("engine:") :], EngineFacts())
        else:
            target = getattr(after, part) if part else after
        setattr(target, attribute, value)
    return after


def host_facts(**flat) -> HostFacts:
    """HostFacts from flat names (see ``FLAT``)."""
    return changed(HostFacts(), **flat)


def fresh_debian(**changes) -> HostFacts:
    """Debian 12 as installed: no Docker, an old package index, PEP 668 Python."""
    facts = host_facts(
        os=dict(DEBIAN12_OS),
        kernel="6.1.0-18-amd64",
        addresses=[REGISTRY_IP, "10.0.3.15"],
        unit={
            "MainPID": "0",
            "ActiveState": "inactive",
            "ExecStart": "",
            "EnvironmentFiles": "",
            "FragmentPath": "",
        },
        externally_managed=True,
        packages={"adduser", "apt", "curl", "python3"},
        apt_lists_age=86400,
        run_propagation="shared",
    )
    return changed(facts, **changes)


def docker_host(version: str = "20.10.24+dfsg1", **changes) -> HostFacts:
    """Debian 12 with docker.io running, every prerequisite and the registry image; no container."""
    facts = fresh_debian(
        docker_version=version,
        docker_answers=True,
        unit={
            "ExecStart": DEBIAN_EXEC_START,
            "EnvironmentFiles": READS_DEFAULT_DOCKER,
            "MainPID": "612",
            "ActiveState": "active",
            "FragmentPath": "/lib/systemd/system/docker.service",
        },
        pip_version="23.0.1",
        packages={"adduser", "apt", "python3", "docker.io", *PREREQUISITES},
        apt_lists_age=120,
        files={DEFAULT_DOCKER: PACKAGED_DEFAULT_DOCKER},
        image_id=IMAGE_ID,
    )
    return changed(facts, **changes)


def docker_ce_host(**changes) -> HostFacts:
    """Docker CE from get.docker.com: its unit neither reads /etc/default/docker nor $DOCKER_OPTS."""
    facts = docker_host(
        "24.0.7",
        unit={
            "ExecStart": DOCKER_CE_EXEC_START,
            "EnvironmentFiles": "",
            "MainPID": "701",
            "ActiveState": "active",
            "FragmentPath": "/lib/systemd/system/docker.service",
        },
    )
    return changed(facts, **changes)


def container(
    spec: str | None = None, running: bool = True, volume: str | None = "registry", network: str = "host"
) -> dict:
    """``docker inspect registry``'s object; ``volume=None`` is the procedure's anonymous volume,
    ``network="bridge"`` its ``-p 4000:5000``."""
    name = volume or OLD_VOLUME
    labels = {SPEC_LABEL: spec} if spec else {}
    published = {"5000/tcp": [{"HostIp": "", "HostPort": "4000"}]} if network == "bridge" else {}
    return {
        "Id": "9c1f" + "0" * 60,
        "Name": "/registry",
        "State": {"Status": "running" if running else "exited", "Running": running, "ExitCode": 0},
        "Image": IMAGE_ID,
        "HostConfig": {
            "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
            "NetworkMode": network,
            "PortBindings": published,
        },
        "Mounts": [
            {
                "Type": "volume",
                "Name": name,
                "Source": f"/var/lib/docker/volumes/{name}/_data",
                "Destination": "/var/lib/registry",
                "Driver": "local",
                "RW": True,
            }
        ],
        "Config": {"Image": "registry:2", "Labels": labels},
    }


def applied(facts: HostFacts, *plans: StepPlan) -> HostFacts:
    """The facts a new gathering would return once ``plans``' files are written."""
    after = copy.deepcopy(facts)
    for plan in plans:
        for change in plan.files:
            if change.after is None:
                after.files.pop(change.path, None)
            else:
                after.files[change.path] = change.after
    return after


def podman_host(version: str = "5.4.2", **changes) -> HostFacts:
    """Debian 12 with podman installed (no daemon) and no Docker: registries.conf as Debian ships it."""
    facts = fresh_debian(
        podman_version=version,
        packages={"adduser", "apt", "curl", "python3", "podman"},
        files={"/etc/containers/registries.conf": DEBIAN_REGISTRIES_CONF},
    )
    return changed(facts, **changes)


# /etc/containers/registries.conf as Debian's containers-common ships it: all comments.
DEBIAN_REGISTRIES_CONF = """\
# For more information on this configuration file, see containers-registries.conf(5).
#
# NOTE: RISK OF USING UNQUALIFIED IMAGE NAMES
# We recommend always using fully qualified image names including the registry
# server (full dns name), namespace, image name, and tag
#
# unqualified-search-registries = ["example.com"]
#
# [[registry]]
# # The "prefix" field is used to choose the relevant [[registry]] TOML table;
# prefix = "example.com/foo"
# insecure = false
# blocked = false
# location = "internal-registry-for-example.com/bar"
"""


# --- Hosts with no SSH, for the engine's path (Runner, converge): they answer as a host would ------



_REQUEST = re.compile(r"^REQUEST = '([^']*)'$", re.MULTILINE)


def request_of(script: str) -> dict | None:
    """The JSON request a payload program carries in ``script`` (see ``payload.script``), or None."""
    found = _REQUEST.search(script)
    return json.loads(base64.b64decode(found.group(1))) if found else None


class _StandInConnection:
    """Connects to nothing: the engine is under test, not SSH."""

    is_connected = True

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass


class StandInRun(_hostrun.HostRun):
    """A host run with no SSH.

    ``gather`` gives a copy of ``on_host``; each registry query section asked (``registry.api.query``)
    gets ``answers[NAME]`` (a dict, or a function of the query's request) through its own parser, and
    its request is kept in ``asked[NAME]``. ``run`` records each script and returns ``answer(script)``
    (which may raise ``RemoteError`` as a failing host would), fed line by line to ``on_line``.
    """

    def __init__(
        self,
        host: Host,
        ctx: StepContext,
        config=None,
        on_host: HostFacts | None = None,
        answers: dict | None = None,
        answer: Callable[[str], str] | None = None,
    ) -> None:
        super().__init__(host, ctx, config)
        self.connection = _StandInConnection()
        self.on_host = on_host if on_host is not None else HostFacts()
        self.answers = dict(answers or {})
        self.answer = answer or (lambda script: "")
        self.scripts: list[str] = []
        self.asked: dict[str, dict] = {}
        self.gatherings = 0
        self.uploaded: list[tuple[str, str]] = []
        self.siblings = 0

    def run(self, script: str, on_line=None, timeout: int = 0) -> str:
        self.scripts.append(script)
        output = self.answer(script)
        if on_line is not None:
            for line in output.splitlines():
                on_line(line)
        return output

    def gather(self, sections=None) -> HostFacts:
        wanted = tuple(self.sections if sections is None else sections)
        self.gatherings += 1
        facts = copy.deepcopy(self.on_host)
        for section in wanted:
            name = section.name.removeprefix("query-")
            if not section.name.startswith("query-"):
                continue
            request = request_of(section.shell) or {}
            self.asked[name] = request
            if name in self.answers:
                found = self.answers[name]
                found = found(request) if callable(found) else found
                section.parse(Texts({section.name: json.dumps(found)}), facts)
        self.facts = facts
        return facts

    def upload(self, local: str, name: str, callback=None) -> str:
        self.uploads = self.uploads or "/tmp/kolla-registry.standin"
        self.uploaded.append((local, name))
        return f"{self.uploads}/{name}"

    def sibling(self) -> _hostrun.HostRun:
        self.siblings += 1
        return self

    def close(self) -> None:
        pass


def run_stand_ins(
    action: _action.Action,
    ctx: StepContext,
    hosts: Iterable[Host],
    make: Callable[[Host, StepContext], StandInRun],
    parallel: int = 1,
) -> tuple[_report.Result, dict[str, StandInRun]]:
    """``action`` over ``hosts`` through the engine's ``Runner``, each host the stand-in ``make(host, ctx)``
    returns; the result, and each host's run by name."""
    runs: dict[str, StandInRun] = {}

    def run_class(host: Host, host_ctx: StepContext, config=None) -> StandInRun:
        runs[host.name] = make(host, host_ctx)
        return runs[host.name]

    runner = _runner.Runner(action, ctx, _access.RegistryAccess(ctx.inventory, serving=action.serving))
    runner.run_class = run_class
    return runner.run(list(hosts), parallel), runs


# --- One host through the engine's Runner, the registry's access as the context knows it -------------



def podman_dropin(registry: str, insecure: bool) -> str:
    """The podman drop-in as this tool writes it holding only ``registry``'s entry."""
    return dropin_with(None, registry, insecure)


class AnsweredAccess(_RegistryAccess):
    """The engine's registry access, the deployment host (when it must be asked) answering ``told``."""

    def __init__(self, inventory: Inventory, told: Access, serving: bool = False) -> None:
        super().__init__(inventory, None, serving)
        self.told = told

    def _ask(self, host: Host) -> str:
        self._access = self.told
        return "" if self.told.address else f"{host.name} has no IPv4 address (hostname -I)"


def run_on_host(
    action: _Action,
    facts: HostFacts,
    ctx: StepContext | None = None,
    host: Host | None = None,
    answer: Callable[[str], str] | None = None,
    answers: dict | None = None,
) -> StandInRun:
    """``action`` on one host (the first target by default) as the engine's Runner runs it: its facts
    ``facts``, its scripts answered by ``answer``, its registry queries by ``answers`` (see ``StandInRun``),
    the registry's address, CA and password those ``ctx`` has; the host's run, with its rows and scripts."""
    ctx = ctx or make_ctx()
    told = Access(ctx.registry_address, ctx.ca, ctx.password)
    runs: list[StandInRun] = []

    def run_class(on: Host, host_ctx: StepContext, config=None) -> StandInRun:
        runs.append(StandInRun(on, host_ctx, config, on_host=facts, answers=answers, answer=answer))
        return runs[-1]

    runner = _Runner(action, ctx, AnsweredAccess(ctx.inventory, told, action.serving))
    runner.run_class = run_class
    runner.on(host or ctx.inventory.targets[0])
    return runs[0]
