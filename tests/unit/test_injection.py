"""Shell metacharacters in every value that can reach a shell: refused when loaded, inert when used.

The first half feeds each payload to each inventory field and expects the
one-line error that names the key. The second half bypasses that check
(values built in Python) and runs every script the tasks send, under sh,
with stand-ins for docker, curl, systemctl and apt-get: no payload may run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from fabfile import inventory as inv
from fabfile import payload
from fabfile.actions.targets import pull_checks
from fabfile.engines.docker import facts as docker_facts
from fabfile.engines.docker import install as hostprep
from fabfile.engines.docker import verify
from fabfile.engines.docker.engine import DOCKER
from fabfile.engines.podman import facts as podman_facts
from fabfile.engines.podman import registries as podman_registries
from fabfile.engines.podman import verify as podman_verify
from fabfile.engines.podman.engine import PODMAN
from fabfile.facts import base as facts
from fabfile.images import host_lock
from fabfile.model.context import StepContext
from fabfile.model.inventory import InventoryError
from fabfile.model.plan import FileChange, StepPlan
from fabfile.registry import collect, writer
from fabfile.registry import container as registry
from fabfile.registry import facts as registry_facts
from fabfile.registry.access import Instance
from fabfile.registry.api import query
from fabfile.registry.reach import health_section, tls_check
from fabfile.registry.readonly import readers_section
from fabfile.registry.writer import with_writer
from fabfile.transport import apply

from .factories import changed, docker_host, make_inventory

PAYLOADS = [
    "x;touch {canary}",
    "x$(touch {canary})",
    "x`touch {canary}`",
    "x' ; touch {canary} ; 'x",
    'x" ; touch {canary} ; "x',
    "x|touch {canary}",
    "x\ntouch {canary}",
    "x && touch {canary}",
]
BASE = {
    "deploy_host": {"name": "deploy1", "address": "192.0.2.10", "user": "root"},
    "targets": [{"name": "node1", "address": "192.0.2.11"}],
    "registry": {},
    "docker": {},
    "images": {"tag": "2024.1", "services": ["keystone"]},
}
FIELDS = [
    ("deploy_host", "name"),
    ("deploy_host", "address"),
    ("deploy_host", "user"),
    ("targets", "address"),
    ("targets", "name"),
    ("registry", "address"),
    ("registry", "name"),
    ("registry", "volume"),
    ("registry", "image"),
    ("registry", "bind"),
    ("registry", "network"),
    ("docker", "prerequisites"),
    ("images", "registry"),
    ("images", "namespace"),
    ("images", "tag"),
    ("images", "services"),
    ("images", "names"),
    ("images", "platforms"),
]


def inventory_with(section: str, key: str, value: str) -> str:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    if section == "targets":
        data["targets"][0][key] = value
    elif key in ("prerequisites", "services", "names", "platforms"):
        data[section][key] = [value]
    else:
        data[section][key] = value
    return yaml.safe_dump(data)


@pytest.mark.parametrize("section, key", FIELDS)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_field_refuses_shell_syntax_naming_the_key(section, key, payload):
    text = inventory_with(section, key, payload.format(canary="/tmp/PWNED"))
    where = r"targets\[0\]" if section == "targets" else section
    with pytest.raises(InventoryError, match=rf"^/srv/hosts\.yaml: {where}\.{key}(\[0\])?: "):
        inv.parse(text, Path("/srv/hosts.yaml"))


STORE_FIELDS = [
    ("hostname",),
    ("replicas", "name"),
    ("replicas", "address"),
    ("replicas", "user"),
    ("storage", "endpoint"),
    ("storage", "bucket"),
    ("storage", "region"),
    ("storage", "access_key"),
]


def store_inventory(path: tuple[str, ...], value: str, secret: Path) -> str:
    """An inventory with replicas on S3, ``value`` in the field at ``path``."""
    data = yaml.safe_load(yaml.safe_dump(BASE))
    s3 = {"endpoint": "https://store:8333", "bucket": "registry", "region": "us-east-1", "access_key": "kolla"}
    data["registry"] = {
        "hostname": "kolla-registry.internal",
        "replicas": [{"name": "replica1", "address": "192.0.2.21"}],
        "storage": {"s3": {**s3, "secret_key_file": str(secret)}},
    }
    if path[0] == "hostname":
        data["registry"]["hostname"] = value
    elif path[0] == "replicas":
        data["registry"]["replicas"][0][path[1]] = value
    else:
        data["registry"]["storage"]["s3"][path[1]] = value
    return yaml.safe_dump(data)


@pytest.mark.parametrize("path", STORE_FIELDS)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_store_field_refuses_shell_syntax_naming_the_key(path, payload, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    text = store_inventory(path, payload.format(canary="/tmp/PWNED"), secret)
    where = {"replicas": r"registry\.replicas\[0\]\.", "storage": r"registry\.storage\.s3\."}.get(path[0], "registry.")
    with pytest.raises(InventoryError, match=rf"^/srv/hosts\.yaml: {where}{path[-1]}: "):
        inv.parse(text, Path("/srv/hosts.yaml"))


def test_the_base_inventory_is_accepted():
    assert inv.parse(yaml.safe_dump(BASE), Path("/srv/hosts.yaml")).registry.name == "registry"


# --- inert where used ---------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Stand-ins for the commands the scripts call; state folders under tmp_path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("docker", "podman", "curl", "systemctl", "apt-get", "dockerd", "python3"):
        (bin_dir / tool).write_text('#!/bin/sh\nexit "${STUB_EXIT:-0}"\n')
        (bin_dir / tool).chmod(0o755)
    # A curl that answers as a registry, so the checks go on to their logins and pulls.
    (bin_dir / "curl").write_text(
        "#!/bin/sh\nprintf 'Docker-Distribution-Api-Version: registry/2.0\\r\\n'\nexit \"${STUB_EXIT:-0}\"\n"
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(apply, "BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setattr(apply, "STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(apply, "PENDING", str(tmp_path / "state" / "pending"))
    monkeypatch.setattr(apply, "LOCK", str(tmp_path / "state" / "lock"))
    monkeypatch.setattr(collect, "STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(collect, "GC_PENDING", str(tmp_path / "state" / "gc-pending"))
    monkeypatch.setattr(writer, "WRITER_DIR", str(tmp_path / "writer"))
    monkeypatch.setattr(writer, "WRITER_SOCKET", str(tmp_path / "writer" / "registry.sock"))
    monkeypatch.setattr(host_lock, "STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(host_lock, "LOCK", str(tmp_path / "state" / "lock"))
    return tmp_path


def scripts_with(value: str, where: Path) -> dict[str, str]:
    """Every script the tasks build, with ``value`` in each field that reaches it."""
    settings = {"name": value, "volume": value, "image": value, "bind": value}
    ctx = StepContext(make_inventory(settings, {"prerequisites": (value,)}), value)
    plan = StepPlan(
        "s", files=[FileChange(str(where / value.replace("/", "_")), None, value)], handler="reload"
    )
    install = hostprep.install_docker(changed(docker_host(), packages=set()), ctx)
    # A TLS registry with a login: the CA's path, the authfile and the password reach the scripts too.
    secure = StepContext(make_inventory({"tls": "self-signed", "auth": "htpasswd"}), value, password=value)
    both = changed(docker_host(), podman_version=value)
    # The registry prune-registry collects; a secure one puts the address in the CA's path too.
    return {
        "registry run": registry.registry_run_command(ctx, False, "spec"),
        "registry run (host network)": registry.registry_run_command(ctx, True, "spec"),
        "verify on the deployment host": verify.verify_script(ctx, push=True),
        "verify on a target": verify.quick_verify_script(ctx),
        "target facts": facts.script([*docker_facts.CONFIG, verify.engine_and_check(ctx, verify=True)]),
        "podman facts": facts.script(
            [
                podman_facts.VERSION,
                podman_registries.podman_files(secure),
                podman_verify.podman_check(ctx, verify=True),
            ]
        ),
        "podman facts (TLS)": facts.script([podman_verify.podman_check(secure, verify=True)]),
        "podman verify": podman_verify.podman_verify_script(ctx),
        "podman verify (login)": podman_verify.podman_verify_script(secure),
        "both engines verify": pull_checks(both, secure),
        "docker login": "\n".join(verify.docker_login(secure)),
        "podman login": "\n".join(PODMAN.login(secure)),
        "deploy facts": facts.script(
            [registry_facts.container(value), registry_facts.image(value), facts.files(value)]
        ),
        "registry TLS from a node": facts.script([tls_check(secure, [value])]),
        "registry query": payload.script({"manifests": [[value, value, value]], "logins": [[value, value, value]]}),
        "registry query (facts)": facts.script([query("catalog", secure, {"catalog": value})]),
        "copy": payload.script(copy_request(value, where), payload.COPY, "copy_answer"),
        "pull": DOCKER.pull_script([value], 1, 0, delay=0),
        "pull (login)": DOCKER.pull_script([value], 1, 0, delay=0, ctx=secure),
        "podman pull": PODMAN.pull_script([value], 1, 0, delay=0),
        "install": "\n".join(install.commands),
        "prune: usage": collect.prepare_script(collect.Collector.of(ctx)),
        "prune: collect": collect.collect_script(ctx, True, 1, 5),
        "prune: collect (TLS)": collect.collect_script(secure, False, 1, 5),
        "prune: cleanup": collect.cleanup_script(ctx),
        "prune: delete through the writer and collect": host_lock.locked(
            collect.collect_script(ctx, True, 1, 5, payload.script(prune_request(value)))
        ),
        "prune: every instance refuses a push": facts.script([readers_section(secure)]),
        "copy through the writer under the host's lock": host_lock.locked(
            with_writer(ctx, payload.script(copy_request(value, where), payload.COPY, "copy_answer"), 1)
        ),
        "instance probes": facts.script([health_section((Instance(value, value), Instance("b", value)), "http", 1)]),
        "apply and handle": apply.apply_script(plan, "20240108T100000Z")
        + apply.handler_script(value, wait=1),
    }


def prune_request(value: str) -> dict:
    """prune-registry's deletes with ``value`` as the repository, its digests and tags."""
    return {"prune": {"socket": value, "repositories": [{"name": value, "manifests": [value], "going": [[value, value]]}]}}


def copy_request(value: str, where: Path) -> dict:
    """A copy with ``value`` everywhere: registries, image, platform, archive member, login, CA."""
    image = {"repo": value, "tag": value, "manifests": [[value, value, ""]], "blobs": {value: value}}
    job = {"target": value, "source": value, "archive": str(where / "none"), "platforms": [value]}
    return {"copy": {**job, "images": [image]}, "logins": [[value, value, value]], "cafile": value}


@pytest.mark.parametrize("commands", ["succeed", "fail"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_script_runs_a_value_it_is_given(sandbox, payload, commands, monkeypatch):
    # Failing commands take the error paths, where values end up in messages.
    monkeypatch.setenv("STUB_EXIT", "0" if commands == "succeed" else "1")
    canary = sandbox / "PWNED"
    for name, script in scripts_with(payload.format(canary=canary), sandbox).items():
        subprocess.run(
            ["sh", "-c", script], cwd=sandbox, capture_output=True, text=True, check=False, timeout=60
        )
        assert not canary.exists(), f"{name} ran the payload {payload!r}"


def test_the_registry_helpers_start_no_process_and_take_their_request_from_the_script():
    # Values reach the helpers only inside their embedded JSON: they never reach a shell from there.
    for module in dict.fromkeys((*payload.QUERY, *payload.COPY)):
        source = module.read_text()
        assert not any(call in source for call in ("subprocess", "os.system", "os.popen", "exec(", "eval(")), module
    script = payload.script({"manifests": [["x;touch /tmp/PWNED", "a", "b"]]})
    assert script.count(f"<<'{payload.PROGRAM_END}'") == 1 and "touch" not in script
