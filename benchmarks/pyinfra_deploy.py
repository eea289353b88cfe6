"""The pyinfra way to do what ``fab configure-targets`` does.

Merge the registry into insecure-registries, restart Docker only when that
changed, pull the probe image. ``registry`` and ``probe`` come from the inventory.
"""

import json
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, server, systemd

DAEMON_JSON = "/etc/docker/daemon.json"

lines = host.get_fact(FileContents, path=DAEMON_JSON)
config = json.loads("\n".join(lines)) if lines else {}
trusted = config.setdefault("insecure-registries", [])
if host.data.registry not in trusted:
    trusted.append(host.data.registry)

written = files.put(
    name="Add the registry to insecure-registries",
    src=StringIO(json.dumps(config, indent=2) + "\n"),
    dest=DAEMON_JSON,
    mode="644",
)
systemd.service(
    name="Restart Docker if the config changed",
    service="docker",
    restarted=True,
    _if=written.did_change,
)
server.shell(name="Pull the probe image from the registry", commands=[f"docker pull {host.data.probe}"])
