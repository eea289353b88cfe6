"""The inventory as data: the hosts, the registry, Docker and the images (``fabfile.inventory`` reads it)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path


class InventoryError(Exception):
    """A ``hosts.yaml`` that cannot be used; the message names file and key."""


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    user: str = "root"
    port: int = 22
    key: str | None = None
    known_hosts: str | None = None
    # accept-new: check known keys, save a new host's key; strict: known keys only; off: accept any.
    host_key_policy: str = "accept-new"
    # (folder, user): files at or below a folder that user owns (chown $USER /etc/kolla) are written as
    # that user; any other folder or link on a path root writes must be root's.
    write_as: tuple[tuple[str, str], ...] = ()
    # A rack, a row, an availability zone: a node pulls from a registry instance of its own zone first.
    zone: str = ""


# This machine, as a row names it: where a task works without SSH (export-images).
HERE = Host("localhost", "localhost")


@dataclass(frozen=True)
class TlsFiles:
    """The operator's own certificate, key and CA, as files on this machine."""

    cert: str
    key: str
    ca: str


OFF, SELF_SIGNED, OWN_FILES, HTPASSWD = "off", "self-signed", "files", "htpasswd"
FILESYSTEM, S3 = "filesystem", "s3"


@dataclass(frozen=True)
class S3Store:
    """An S3 bucket every registry instance keeps its images in (Ceph RGW, MinIO, SeaweedFS, AWS)."""

    endpoint: str
    bucket: str
    region: str
    access_key: str
    # A file on this machine holding the secret key: never inline, never on a command line.
    secret_key_file: str
    # An http:// endpoint, accepted only when the operator says so (anyone on the path can swap images).
    insecure: bool = False

    def secret_key(self) -> str:
        """The secret key, read from its file now (so that it is never kept in the inventory)."""
        with open(self.secret_key_file, encoding="utf-8") as handle:
            return handle.read().strip()


@dataclass(frozen=True)
class RegistrySettings:
    port: int = 4000
    address: str | None = None
    name: str = "registry"
    image: str = "registry:2"
    volume: str = "registry"
    image_archive: str | None = None
    # host (default; kolla's multinode guide: survives bootstrap-servers turning Docker's bridge off)
    # | bridge (the procedure's -p PORT:5000) | auto (accepted from older inventories: host)
    network: str = "host"
    # The address the registry listens on (default: every address, as the procedure does).
    bind: str | None = None
    # off (the procedure: plain HTTP, trusted as insecure) | self-signed | files (tls_files)
    tls: str = OFF
    tls_files: TlsFiles | None = None
    # off | htpasswd (a "kolla" user with a generated password; needs TLS)
    auth: str = OFF
    # The one name every node pulls by (each node's /etc/hosts maps it to its instance).
    hostname: str | None = None
    # Hosts that run registry instances besides the deployment host (need a shared store).
    replicas: tuple[Host, ...] = ()
    # None: the named volume on the deployment host (filesystem); else the shared S3 store.
    s3: S3Store | None = None

    @property
    def storage(self) -> str:
        return S3 if self.s3 else FILESYSTEM

    @property
    def secure(self) -> bool:
        return self.tls != OFF

    @property
    def host_network(self) -> bool:
        """Whether the registry shares the host's network (anything but ``bridge``)."""
        return self.network != "bridge"

    @property
    def known_address(self) -> str:
        """``address``, else ``bind`` (the one address the registry listens on), else ""."""
        return self.address or self.bind or ""


@dataclass(frozen=True)
class DockerSettings:
    source: str = "distro"
    config_method: str = "auto"
    prerequisites: tuple[str, ...] = (
        "python3-dev",
        "libffi-dev",
        "gcc",
        "libssl-dev",
        "curl",
        "python3-pip",
    )
    apt_cache_valid_time: int = 3600


@dataclass(frozen=True)
class KollaSource:
    """kolla-ansible's own files on this machine: its inventory, its config dir (globals.yml, globals.d/),
    and the virtualenv it runs from (None: the kolla-ansible on PATH)."""

    inventory: tuple[str, ...]
    config_dir: str = "/etc/kolla"
    virtualenv: str | None = None


@dataclass(frozen=True)
class ImageSettings:
    """Which Kolla images to copy into the local registry, and from where."""

    registry: str = "quay.io"
    namespace: str = "openstack.kolla"
    insecure: bool = False
    tag: str | None = None
    services: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    archive: str | None = None
    # A private upstream's login: the user, and a file on this machine that holds the password.
    username: str | None = None
    password_file: str | None = None
    # The platforms of a multi-platform image to copy (os/architecture[/variant]); empty: all.
    platforms: tuple[str, ...] = ()
    # images.from: kolla-ansible: each host's images are those kolla-ansible pull puts there.
    kolla: KollaSource | None = None
    # Requests in flight at most to the upstream (quay.io and Docker Hub answer 429 beyond their limits).
    max_requests: int = 8
    # The lock file on this machine every sync writes (""): kolla-images.lock.yaml beside the inventory).
    lock: str = ""
    # Every sync tags what it copied with a release named by the date, when no --release is given.
    snapshot: bool = False
    # Releases whose snapshot tags prune-registry keeps, whatever --keep says.
    keep_releases: tuple[str, ...] = ()
    # A regular expression (searched): each service or name given without a tag stands for every tag of
    # its repository that matches (and starts with ``tag``, when given).
    tag_filter: str = ""


@dataclass(frozen=True)
class Inventory:
    path: Path
    deploy_host: Host
    targets: tuple[Host, ...] = ()
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    docker: DockerSettings = field(default_factory=DockerSettings)
    defaults: Host | None = None
    images: ImageSettings | None = None
    # targets: kolla-ansible: the targets are the hosts of images.inventory that pull images.
    kolla_targets: bool = False

    def is_deploy_host(self, host: Host) -> bool:
        """Whether ``host`` is the deployment host (a target may be: same name or same address)."""
        return host.name == self.deploy_host.name or host.address == self.deploy_host.address

    @property
    def machines(self) -> tuple[Host, ...]:
        """Every host once: the deployment host, the targets that are not it, then the replicas that are neither."""
        targets = tuple(host for host in self.targets if not self.is_deploy_host(host))
        named = {host.name for host in targets}
        return (self.deploy_host, *targets, *(host for host in self.registry.replicas if host.name not in named))

    @property
    def registry_hosts(self) -> tuple[Host, ...]:
        """The hosts that run a registry instance: the deployment host, then the replicas."""
        return (self.deploy_host, *self.registry.replicas)

    def is_replica(self, host: Host) -> bool:
        return any(host.name == replica.name or host.address == replica.address for replica in self.registry.replicas)

    def find(self, name: str) -> Host | None:
        """The inventory host called ``name`` (or with that address)."""
        for host in (self.deploy_host, *self.targets, *self.registry.replicas):
            if name in (host.name, host.address):
                return host
        return None

    def resolve(self, name: str) -> Host:
        """The inventory host ``name``, or an ad-hoc one with the defaults."""
        known = self.find(name)
        if known:
            return known
        template = self.defaults or Host(name="", address="")
        return replace(template, name=name, address=name)
