"""What the command line and the tests call: up, down, status, and per-host controls."""

import fcntl
import json
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess
from typing import TYPE_CHECKING

from . import config, fanout, nodes
from .engine import docker, engine_running, ensure_engine, stop_engine
from .errors import LabError, say
from .files import ensure_key, forget, replace_known_host, write_inventory, write_known_hosts
from .firewall import open_egress, restrict_egress
from .host import ensure_tools, raise_inotify_limits, require_root
from .images import BUILD_CONTAINER, ensure_images, image_id

if TYPE_CHECKING:
    import paramiko


@dataclass(frozen=True)
class NodeStatus:
    """One row of `status`."""

    name: str
    state: str
    ip: str
    profile: str = "-"


def up(targets: int | str = 3, deploy: str = config.DEFAULT_DEPLOY) -> Path:
    """Bring up deploy1 and node1..nodeN, repairing whatever an earlier run left; return the inventory.

    ``targets`` is a count of bookworm-docker nodes or a spec such as
    ``bookworm-docker:2,trixie-podman:1``; ``deploy`` is the deployment host's suite.
    """
    hosts = config.layout(targets, deploy)
    names = list(hosts)
    require_root()
    with _locked():
        # Only a finished `up` leaves an inventory behind.
        config.paths().inventory.unlink(missing_ok=True)
        ensure_tools()
        raise_inotify_limits()
        ensure_engine()
        nodes.ensure_network()
        restrict_egress()
        ensure_key()
        ensure_images(set(hosts.values()))
        _remove_all_but(names)
        _save_layout(hosts)
        with fanout.timed("start"):
            _ensure_hosts(hosts)
        with fanout.timed("boot"):
            keys = fanout.each(_boot, names, "booting")
        write_known_hosts([line for name in names for line in keys[name]])
        with fanout.timed("ssh"):
            fanout.each(nodes.wait_for_ssh, names, "logging in over SSH")
        inventory = write_inventory(names[1:])
        # Images a changed recipe replaced, now that no container uses them.
        docker("image", "prune", "--force", check=False)
    say(f"up: {fanout.shortened(names)}")
    return inventory


def down(engine: bool = False) -> None:
    """Remove the lab's hosts and network (the images stay); with engine, stop its dockerd too."""
    require_root()
    if not (config.paths().engine / "data").is_dir():
        forget()
        return
    with _locked():
        ensure_engine()
        listed = nodes.lab_containers()
        say(f"removing {len(listed)} hosts: {fanout.shortened(listed)}")
        fanout.each(nodes.remove, listed, "removing")
        docker("rm", "-f", "-v", BUILD_CONTAINER, check=False)
        # What removed hosts leave: their anonymous volumes (an engine's store each), if any were kept.
        nodes.remove_dangling_volumes()
        nodes.remove_network()
        open_egress()
        forget()
        if engine:
            stop_engine()


def status() -> list[NodeStatus]:
    """Every lab host with its container state and address; empty when the engine is down."""
    require_root()
    if not engine_running():
        return []
    rows = []
    for name in nodes.lab_containers():
        info = nodes.inspect(name)
        if info is not None:
            network = info["NetworkSettings"]["Networks"].get(config.NETWORK) or {}
            address = network.get("IPAddress") or "-"
            rows.append(NodeStatus(name, nodes.state(info), address, nodes.profile_of(info)))
    return rows


def node_ip(name: str) -> str:
    """A host's fixed address on the lab network (deploy1 .10, nodeN .10+N)."""
    return config.node_ip(name)


def stop_node(name: str) -> None:
    """Stop a host's container (as if it were switched off)."""
    require_root()
    with _locked():
        nodes.stop(name)


def start_node(name: str) -> None:
    """Start a stopped host and wait until it runs and answers SSH."""
    require_root()
    with _locked():
        nodes.start(name)
        replace_known_host(config.node_ip(name), _boot(name))
        nodes.wait_for_ssh(name)


def reset_node(name: str, profile: str | None = None) -> None:
    """Recreate a host from its image: fresh disk and host keys (deploy1 is back without Docker).

    With ``profile`` (a target profile, or a suite for a host without an engine) the
    host comes back as that, until the next reset or `up`.
    """
    require_root()
    with _locked():
        made = profile_of(name) if profile is None else config.any_profile(profile)
        ensure_images({made})
        nodes.remove(name)
        nodes.create(name, made)
        _save_layout({**_saved_layout(), name: made})
        replace_known_host(config.node_ip(name), _boot(name))
        nodes.wait_for_ssh(name)


def profile_of(name: str) -> config.Profile:
    """The profile the last `up` (or reset) gave a host."""
    saved = _saved_layout()
    if name not in saved:
        raise LabError(f"{name} is not in the lab's layout ({config.paths().layout}): run up")
    return saved[name]


def _saved_layout() -> dict[str, config.Profile]:
    path = config.paths().layout
    saved = json.loads(path.read_text()) if path.exists() else {}
    return {name: config.any_profile(profile) for name, profile in saved.items()}


def _save_layout(hosts: dict[str, config.Profile]) -> None:
    config.paths().layout.write_text(json.dumps({name: profile.name for name, profile in hosts.items()}))


@dataclass(frozen=True)
class Lab:
    """A running lab as the tests see it: its inventory, its hosts and their profiles, and a way in."""

    inventory: Path
    targets: tuple[str, ...]
    deploy_host: str = config.DEPLOY_HOST
    profiles: tuple[tuple[str, str], ...] = ()

    docker = staticmethod(docker)
    down = staticmethod(down)
    status = staticmethod(status)
    stop_node = staticmethod(stop_node)
    start_node = staticmethod(start_node)
    reset_node = staticmethod(reset_node)
    node_ip = staticmethod(node_ip)

    @classmethod
    def up(cls, targets: int | str = 3, deploy: str = config.DEFAULT_DEPLOY) -> "Lab":
        hosts = config.layout(targets, deploy)
        profiles = tuple((name, profile.name) for name, profile in hosts.items())
        return cls(up(targets, deploy), tuple(list(hosts)[1:]), profiles=profiles)

    def profile(self, name: str) -> str:
        """A host's profile name, as in ``trixie-podman``."""
        return dict(self.profiles)[name]

    def with_engine(self, engine: str) -> tuple[str, ...]:
        """The targets whose profile runs ``engine`` (docker or podman)."""
        return tuple(name for name in self.targets if self.profile(name).endswith(f"-{engine}"))

    @property
    def hosts(self) -> tuple[str, ...]:
        return (self.deploy_host, *self.targets)

    @property
    def key(self) -> Path:
        return config.paths().key

    @property
    def known_hosts(self) -> Path:
        return config.paths().known_hosts

    def ssh(self, name: str, user: str = "root", known_hosts: Path | None = None) -> "paramiko.SSHClient":
        """A paramiko client logged in with the lab key; unknown or changed host keys are refused."""
        import paramiko

        client = paramiko.SSHClient()
        client.load_system_host_keys(str(known_hosts or self.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            config.node_ip(name),
            username=user,
            key_filename=str(self.key),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
            banner_timeout=10,
            auth_timeout=10,
        )
        return client

    def run(self, name: str, command: str, user: str = "root", check: bool = True) -> CompletedProcess[str]:
        """Run a shell command on a lab host over SSH."""
        with closing(self.ssh(name, user)) as client:
            _, out, err = client.exec_command(command, timeout=300)
            stdout, stderr = out.read().decode(), err.read().decode()
            result = CompletedProcess(command, out.channel.recv_exit_status(), stdout, stderr)
        if check and result.returncode != 0:
            raise LabError(f"{name}: {command!r} exited {result.returncode}: {stderr.strip()}")
        return result


def _boot(name: str) -> list[str]:
    """Boot a host; one that will not, recreate once."""
    try:
        return nodes.boot(name)
    except nodes.NodeNotReady as error:
        say(f"{error}; recreating {name}")
        nodes.remove(name)
        nodes.create(name, profile_of(name))
        return nodes.boot(name)


def _remove_all_but(names: list[str]) -> None:
    extra = [name for name in nodes.lab_containers() if name not in names]
    if extra:
        say(f"removing {len(extra)} hosts not asked for: {fanout.shortened(extra)}")
        fanout.each(nodes.remove, extra, "removing")


def _ensure_hosts(hosts: dict[str, config.Profile]) -> None:
    """Each host running as its profile makes it: reused, started, or created; several at once."""
    found = nodes.inspect_all(list(hosts))
    images = {profile: image_id(profile.image) for profile in set(hosts.values())}
    done = fanout.each(lambda name: nodes.ensure(name, hosts[name], found.get(name), images[hosts[name]]), hosts, "starting")
    by_state: dict[str, list[str]] = {}
    for name, how in done.items():
        by_state.setdefault(how, []).append(name)
    say(", ".join(f"{how}: {fanout.shortened(names)}" for how, names in by_state.items()))


@contextmanager
def _locked() -> Iterator[None]:
    """One lab command at a time per state root."""
    lock = config.paths().lock
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another lab command to finish (lock: {lock})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def grown(count: int) -> str:
    """A targets spec with the lab's current targets in their profiles, plus bookworm-docker nodes up to ``count``."""
    current = [profile.name for name, profile in _saved_layout().items() if name != config.DEPLOY_HOST]
    extra = [config.DEFAULT_TARGET] * max(0, count - len(current))
    return ",".join(f"{profile}:1" for profile in [*current, *extra]) or str(count)
