"""Hosts the planner tests start from: realistic facts and contexts, built in Python.

Every value here is what ``facts.parse`` returns for a real host (see
``test_facts.py``, which parses the matching script output).
"""

from __future__ import annotations

import copy
from pathlib import Path

from fabfile.engines.docker.paths import DEFAULT_DOCKER
from fabfile.model.context import Modes, StepContext
from fabfile.model.facts import EngineFacts, HostFacts
from fabfile.model.inventory import DockerSettings, Host, Inventory, RegistrySettings
from fabfile.model.plan import StepPlan
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

from .factories import host_facts


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
