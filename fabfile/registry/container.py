"""The registry container, step 4: ``registry:2`` on its port (host networking), with a named volume.

It is read-only (distribution's ``storage.maintenance.readonly``): it serves pulls and refuses every
push and delete, whatever the credential, so no node can change what the others run. The only way to
write is the writer on the deployment host (``writer.py``).
"""

from __future__ import annotations

import hashlib
import json
import shlex

from ..engines.docker import config as dc
from ..engines.docker.config import daemon_json_or_error, dockerd_flags
from ..engines.docker.paths import NAME as DOCKER
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.inventory import OFF, RegistrySettings
from ..model.plan import StepPlan
from .paths import HTPASSWD, SERVER_CERT, SERVER_KEY
from .storage import carry_data, env_file_change, registry_env, storage_option, store_notes

ARCHIVE_NAME = "registry-image.tar"


def create_registry(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Run the registry:2 container with a named volume (step 4)."""
    plan = StepPlan("create-registry")
    settings = ctx.inventory.registry
    if not facts.engine(DOCKER).answers:
        plan.error = "Docker is not running here: run install-docker first"
        return plan
    if not facts.registry.image_id:
        _plan_image(ctx, plan)
        return plan
    daemon = daemon_json_or_error(facts, plan)
    if daemon is None:
        return plan
    host_network = settings.host_network
    if not host_network and dc.bridge_or_iptables_off(daemon, dockerd_flags(facts)):
        plan.notes.append(BRIDGE_OFF)
    plan.files += env_file_change(facts, settings)
    plan.notes += store_notes(settings)
    spec = spec_of(facts, ctx)
    current = facts.registry.container
    labels = (current or {}).get("Config", {}).get("Labels") or {}
    if current and labels.get(SPEC_LABEL) == spec:
        if not current.get("State", {}).get("Running"):
            plan.commands.append(f"docker start {shlex.quote(settings.name)}")
        else:
            plan.notes.append(f"{settings.name} runs {settings.image} on port {settings.port}")
        return plan
    if current:
        plan.commands.append(f"docker rm -f {shlex.quote(settings.name)}")
        plan.commands += carry_data(current, settings)
        if READ_ONLY_ENV not in ((current.get("Config") or {}).get("Env") or []):
            plan.notes.append(MADE_READ_ONLY)
    plan.commands.append(registry_run_command(ctx, host_network, spec))
    return plan


SPEC_LABEL = "kolla-registry.spec"
# What every instance nodes reach runs with: pulls are served, pushes and deletes refused (405).
READ_ONLY_ENV = 'REGISTRY_STORAGE_MAINTENANCE_READONLY={"enabled":true}'
MADE_READ_ONLY = (
    "recreated read-only, keeping its images: no node can push any more; "
    "writes go through the deployment host (sync-images, prune-registry)"
)
BRIDGE_OFF = (
    "registry.network is bridge, but Docker runs without iptables or its bridge: "
    "the port may not answer (registry.network: host)"
)


def spec_of(facts: HostFacts, ctx: StepContext) -> str:
    """The spec the registry container should carry on this host now."""
    settings = ctx.inventory.registry
    return registry_spec(ctx, settings.host_network, facts.registry.image_id, _secure_state(facts, ctx))


def _secure_state(facts: HostFacts, ctx: StepContext) -> dict:
    """What a secure registry's container is made from: its certificate and its login file."""
    settings = ctx.inventory.registry
    if not settings.secure:
        return {}
    tls = facts.registry.tls
    # "mounts": only the server's certificate and key (a registry made when the whole TLS folder,
    # CA key included, was mounted is recreated once); the key's digest, so a new key recreates it.
    state = {"tls": tls.get("fingerprint", ""), "key": tls.get("key_digest", ""), "mounts": "server-only"}
    if settings.auth != OFF:
        state["htpasswd"] = hashlib.sha256(facts.files.get(HTPASSWD, "").encode()).hexdigest()
    return state


def registry_spec(ctx: StepContext, host_network: bool, image_id: str, secure: dict | None = None) -> str:
    """A short hash of every setting the registry container is created with.

    A renewed certificate or a new login file changes it: the registry reads both only when it starts.
    """
    settings = ctx.inventory.registry
    spec = {
        "image": settings.image,
        "image_id": image_id,
        "volume": settings.volume,
        "port": settings.port,
        "network": "host" if host_network else "bridge",
        # Read-only (writes only through the deployment host's writer): a registry made before is recreated once.
        "read_only": True,
    }
    if settings.bind:
        # Only when set, so that a registry made before this setting existed is not recreated.
        spec["bind"] = settings.bind
    if secure:
        spec["secure"] = secure
    if settings.s3:
        # The store (and its keys) is read when the registry starts: a new one recreates the container.
        spec.pop("volume")
        spec["store"] = hashlib.sha256(registry_env(settings).encode()).hexdigest()
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def registry_run_command(ctx: StepContext, host_network: bool, spec: str) -> str:
    """The documented ``docker run``, plus a named volume, read-only, and the spec label."""
    settings = ctx.inventory.registry
    if host_network:
        # kolla-ansible's bootstrap-servers turns Docker's bridge and iptables off, and then
        # nothing published with -p answers; kolla's own guide runs the registry this way.
        listen = f"{settings.bind or '0.0.0.0'}:{settings.port}"
        network = "--network host -e " + shlex.quote(f"REGISTRY_HTTP_ADDR={listen}")
    else:
        network = "-p " + shlex.quote(f"{settings.bind + ':' if settings.bind else ''}{settings.port}:5000")
    return (
        f"docker run -d {network} --restart=always --name {shlex.quote(settings.name)} "
        f"{storage_option(settings)} {_secure_options(settings)}-e {shlex.quote(READ_ONLY_ENV)} "
        f"--label {SPEC_LABEL}={spec} {shlex.quote(settings.image)}"
    )


def _secure_options(settings: RegistrySettings) -> str:
    """TLS and htpasswd, set through the registry's environment (REGISTRY_<SECTION>_<KEY>)."""
    if not settings.secure:
        return ""
    # The server's certificate and key only: the CA (and its key) is never in the network-facing container.
    options = [
        f"-v {SERVER_CERT}:{SERVER_CERT}:ro",
        f"-v {SERVER_KEY}:{SERVER_KEY}:ro",
        f"-e REGISTRY_HTTP_TLS_CERTIFICATE={SERVER_CERT}",
        f"-e REGISTRY_HTTP_TLS_KEY={SERVER_KEY}",
    ]
    if settings.auth != OFF:
        options += [
            f"-v {HTPASSWD}:{HTPASSWD}:ro",
            "-e REGISTRY_AUTH=htpasswd",
            "-e REGISTRY_AUTH_HTPASSWD_REALM=kolla-registry",
            f"-e REGISTRY_AUTH_HTPASSWD_PATH={HTPASSWD}",
        ]
    return " ".join(options) + " "


def _plan_image(ctx: StepContext, plan: StepPlan) -> None:
    settings = ctx.inventory.registry
    if settings.image_archive:
        # Air-gapped hosts: the image travels from this machine as a `docker save` archive.
        plan.uploads.append((settings.image_archive, ARCHIVE_NAME))
        plan.commands.append(f'docker load -i "$UPLOADS/{ARCHIVE_NAME}" && rm -f "$UPLOADS/{ARCHIVE_NAME}"')
    else:
        plan.commands.append(f"docker pull {shlex.quote(settings.image)}")
