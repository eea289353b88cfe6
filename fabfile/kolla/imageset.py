"""Which images each host of a kolla-ansible inventory pulls, asked of the installed kolla-ansible.

The set is computed by ``fabfile/payload/kolla_images.py`` with kolla-ansible's own site.yml,
group_vars, role defaults and filters, so it runs in the operator's kolla-ansible interpreter
(kolla-ansible 23 needs Python >= 3.12, this tool runs on 3.11). This side finds that
interpreter, runs the payload (request on stdin, answer on stdout) and turns the answer into data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..images.model import Image
from ..images.wanted import Wanted, per_host
from ..model import grammar
from ..model.inventory import Host
from .cache import cached
from .release_pin import PIN_NAME

PAYLOAD = Path(__file__).resolve().parent.parent / "payload" / "kolla_images.py"
DEFAULT_TIMEOUT = 120.0
SET_IT = "set images.kolla_ansible to its virtualenv"
# pip's shebang for an interpreter path too long for "#!": a sh line that execs the Python.
SH_EXEC = re.compile(r"""^'''exec' "?([^"\s]+)"?""", re.MULTILINE)


class KollaImagesError(Exception):
    """One line naming what is missing or wrong."""


@dataclass(frozen=True)
class PulledImage:
    """One image kolla-ansible pulls: its registry ("" for Docker Hub) and the image in it."""

    registry: str
    image: Image

    @property
    def ref(self) -> str:
        return self.image.at(self.registry) if self.registry else self.image.name


@dataclass(frozen=True)
class KollaImageSet:
    """The images `kolla-ansible pull` would pull on each inventory host, and where they come from;
    how Ansible reaches each host (address, user, port, key, connection, where the inventory says)."""

    kolla_ansible: str
    registry: str
    namespace: str
    hosts: dict[str, tuple[PulledImage, ...]]
    connections: dict[str, dict[str, str]] = field(default_factory=dict)


def kolla_images(
    inventory: Sequence[str],
    config_dir: str = "/etc/kolla",
    kolla_ansible: str | None = None,
    share: str | None = None,
    facts: Mapping[str, Mapping[str, object]] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    skip: Sequence[str] = (PIN_NAME,),
) -> KollaImageSet:
    """The image set of these inventories and this config dir, from the kolla-ansible in the
    ``kolla_ansible`` virtualenv, or else the one on PATH. ``facts``: each host's Ansible facts
    (``{"os_family": "Debian"}``), for the few services kolla-ansible places by them. globals.d files named
    in ``skip`` are left out: by default this tool's release pin, so that the set names each image as the
    upstream tags it (the tasks put a pinned cloud's images at their snapshot tags themselves)."""
    request: dict[str, object] = {"inventory": [str(path) for path in inventory], "config_dir": config_dir}
    if skip:
        request["skip"] = list(skip)
    if share:
        request["share"] = share
    if facts:
        request["facts"] = {host: dict(values) for host, values in facts.items()}
    python = kolla_python(kolla_ansible)
    return image_set(cached(python, request, lambda: run_payload(python, request, timeout)))


def kolla_python(virtualenv: str | None) -> str:
    """The Python that runs kolla-ansible: the virtualenv's, or the one `kolla-ansible` on PATH starts."""
    if virtualenv:
        python = Path(virtualenv).expanduser() / "bin" / "python"
        if not os.access(python, os.X_OK):
            raise KollaImagesError(f"{virtualenv}: no bin/python there; images.kolla_ansible names a virtualenv")
        return str(python)
    found = shutil.which("kolla-ansible")
    if found is None:
        raise KollaImagesError(f"kolla-ansible not found on PATH; {SET_IT}")
    return script_interpreter(Path(found))


def script_interpreter(script: Path) -> str:
    """The Python a console script names on its first line (or in pip's sh form), resolved."""
    try:
        head = script.read_text(errors="replace")[:1024]
    except OSError as error:
        raise KollaImagesError(f"{script}: cannot read it ({error.strerror}); {SET_IT}") from None
    if not head.startswith("#!"):
        raise KollaImagesError(f"{script}: no #! line naming its Python; {SET_IT}")
    words = head[2:].splitlines()[0].split()
    exec_line = SH_EXEC.search(head)
    if exec_line:
        named = exec_line[1]
    elif words and Path(words[0]).name == "env":
        named = shutil.which(words[-1]) or words[-1]
    else:
        named = words[0] if words else ""
    if not Path(named).name.startswith("python"):
        raise KollaImagesError(f"{script}: started by {named or 'nothing'}, not by a Python; {SET_IT}")
    if not os.access(named, os.X_OK):
        raise KollaImagesError(f"{script}: its Python {named} is missing; {SET_IT}")
    return named


def run_payload(python: str, request: dict, timeout: float) -> dict:
    """The payload's answer for one request, run by ``python`` (no shell) as kolla-ansible would be: with
    the same environment, so a kolla-ansible installed with ``pip --user`` is found as it is by its CLI."""
    try:
        done = subprocess.run(
            [python, str(PAYLOAD)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise KollaImagesError(f"{python}: no image set from kolla-ansible within {timeout:g} s") from None
    except OSError as error:
        raise KollaImagesError(f"{python}: cannot run it ({error.strerror})") from None
    answer = last_json_line(done.stdout)
    if answer is None:
        said = [line for line in done.stderr.splitlines() if line.strip()]
        raise KollaImagesError(f"{python}: no answer (exit {done.returncode}: {said[-1] if said else 'nothing said'})")
    if "error" in answer:
        raise KollaImagesError(str(answer["error"]))
    return answer


def last_json_line(output: str) -> dict | None:
    lines = [line for line in output.splitlines() if line.strip()]
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def image_set(answer: dict) -> KollaImageSet:
    """The payload's answer as data: each reference split into its registry and Image."""
    return KollaImageSet(
        kolla_ansible=str(answer["kolla_ansible"]),
        registry=str(answer.get("registry") or ""),
        namespace=str(answer.get("namespace") or ""),
        hosts={host: tuple(split_ref(ref) for ref in refs) for host, refs in answer["hosts"].items()},
        connections={host: dict(found) for host, found in (answer.get("connections") or {}).items()},
    )


def split_ref(ref: str) -> PulledImage:
    """``quay.io/openstack.kolla/nova-api:TAG`` as registry ``quay.io`` and its Image; the first part
    is a registry when it looks like a host (a dot, a port or localhost), as Docker reads it."""
    path, tag = ref, "latest"
    if ":" in ref.rsplit("/", 1)[-1]:
        path, _, tag = ref.rpartition(":")
    first, slash, rest = path.partition("/")
    registry = ""
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    return PulledImage(registry, Image(path, tag))


def wanted(found: KollaImageSet) -> Wanted:
    """The set as every task uses it: each host's images, every image once with the hosts that need it;
    an image name this tool would not put in a script is named."""
    sets = {host: tuple(_sane(host, pulled) for pulled in images) for host, images in found.hosts.items() if images}
    aliases = {conn["address"]: host for host, conn in found.connections.items() if conn.get("address")}
    return per_host(sets, aliases, f"kolla-ansible {found.kolla_ansible}")


def kolla_targets(found: KollaImageSet, defaults: Host) -> tuple[Host, ...]:
    """The inventory's hosts that pull images, reached as its variables say (else as ``defaults`` says);
    a value this tool would not use is named."""
    hosts = []
    for name, images in found.hosts.items():
        conn = found.connections.get(name, {})
        if not images or conn.get("connection") == "local":
            continue
        hosts.append(replace(defaults, name=name, **_checked(name, conn)))
    return tuple(hosts)


def _checked(name: str, conn: dict[str, str]) -> dict:
    """The host's name, address, user, port and key from kolla-ansible's inventory, each checked."""
    if not grammar.matches(grammar.HOST_NAME, name):
        raise KollaImagesError(f"kolla-ansible inventory host {name!r}: not a host name this tool uses")
    values: dict = {"address": conn.get("address") or name}
    if not grammar.is_address(values["address"]):
        raise KollaImagesError(f"host {name}: ansible_host {values['address']!r} is not a host name or IP address")
    if conn.get("user"):
        if not grammar.matches(grammar.USER, conn["user"]):
            raise KollaImagesError(f"host {name}: ansible_user {conn['user']!r} is not a user name")
        values["user"] = conn["user"]
    if conn.get("port"):
        if not conn["port"].isdigit() or not 0 < int(conn["port"]) < 65536:
            raise KollaImagesError(f"host {name}: ansible_port {conn['port']!r} is not a port")
        values["port"] = int(conn["port"])
    if conn.get("key"):
        values["key"] = os.path.expanduser(conn["key"])
    return values


def _sane(host: str, pulled: PulledImage) -> Image:
    image = pulled.image
    if not grammar.matches(grammar.IMAGE_PATH, image.path) or not grammar.matches(grammar.IMAGE_TAG, image.tag):
        raise KollaImagesError(f"host {host}: {pulled.ref!r} is not an image reference this tool uses")
    return image
