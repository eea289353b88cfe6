"""Deletes and garbage collection in the registry: the shell that runs them read-only and puts it back.

Deleting a manifest frees nothing: ``registry garbage-collect`` removes the
blobs no manifest uses, and it must not run while pushes write new ones. So
the container is recreated in read-only maintenance mode (same volume, same
network and port: pulls go on, pushes are refused for the while), collected
with ``docker exec``, and recreated as deploy-host makes it. Any failure puts
the normal container back before the script fails; every wait is bounded.

The deletes happen in the same read-only window, so that no push between the
scan and the deletes can lose a tag: a read-only registry refuses deletes too,
so a second registry on the same storage (the writer) listens on a unix socket
in a folder only root enters, for as long as the deletes take; the program
looks at each repository's tags again through it before deleting there.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..engines.docker.paths import ca_path
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.marks import FAIL_FUNCTION, MARK
from ..model.paths import STATE_DIR
from .container import SPEC_LABEL, registry_run_command, spec_of
from .storage import storage_option

# Made before the first delete, removed once garbage was collected: a run that failed in
# between leaves it, and the next run collects even with nothing left to delete.
GC_PENDING = f"{STATE_DIR}/gc-pending"
# Where both upstream's registry:2 and Debian's docker-registry (the lab's image) have it.
REGISTRY_BINARY = "/bin/registry"
REGISTRY_CONFIG = "/etc/docker/registry/config.yml"
# The writer's socket, in a folder only root enters (the socket is its only access control).
WRITER_DIR = "/run/kolla-registry"
WRITER_SOCKET = f"{WRITER_DIR}/registry.sock"
WRITER_SUFFIX = "-writer"


@dataclass(frozen=True)
class Container:
    """The registry container as the scripts need it: names, both run commands, where it answers."""

    name: str
    volume: str
    spec: str
    normal: str
    read_only: str
    url: str
    ca: str = ""
    writer: str = ""

    @classmethod
    def of(cls, facts: HostFacts, ctx: StepContext) -> Container:
        settings = ctx.inventory.registry
        spec = spec_of(facts, ctx)
        return cls(
            name=settings.name,
            volume=settings.volume,
            spec=spec,
            normal=registry_run_command(ctx, settings.host_network, spec),
            read_only=registry_run_command(ctx, settings.host_network, spec, read_only=True),
            url=f"{ctx.scheme}://{ctx.registry}/v2/",
            ca=ca_path(ctx.registry) if settings.secure else "",
            writer=writer_run_command(ctx),
        )


def writer_run_command(ctx: StepContext) -> str:
    """The writer: the registry image on the same storage, deletes allowed, listening on the socket alone
    (no TCP port; no network at all unless its store is S3), with no restart policy."""
    settings = ctx.inventory.registry
    network = "host" if settings.s3 else "none"
    return (
        f"docker run -d --name {shlex.quote(settings.name + WRITER_SUFFIX)} --network {network} "
        f"-v {WRITER_DIR}:{WRITER_DIR} -e REGISTRY_HTTP_NET=unix -e REGISTRY_HTTP_ADDR={WRITER_SOCKET} "
        f"-e REGISTRY_STORAGE_DELETE_ENABLED=true {storage_option(settings)} {shlex.quote(settings.image)}"
    )


def shell_functions(registry: Container, wait: int) -> str:
    """Shell functions: ``answers`` (GET /v2/ as a registry), ``up`` (within ``wait`` s),
    ``normal`` (the container as deploy-host makes it; ``$why`` says why not), ``used`` (volume bytes)."""
    checked = f"{shlex.quote(registry.url)} {shlex.quote(registry.ca)}"
    return f"""set -u
{FAIL_FUNCTION}
name={shlex.quote(registry.name)}
writer={shlex.quote(registry.name + WRITER_SUFFIX)}
answers() {{
  python3 - {checked} >/dev/null 2>&1 <<'KOLLA_REGISTRY_PY'
import os, ssl, sys, urllib.error, urllib.request
# The CA trust-registry put there; without it, the system's (the answer is what counts here).
context = ssl.create_default_context(cafile=sys.argv[2] if os.path.isfile(sys.argv[2]) else None)
try:
    headers = urllib.request.urlopen(sys.argv[1], timeout=5, context=context).headers
except urllib.error.HTTPError as error:
    headers = error.headers
sys.exit(0 if (headers.get("Docker-Distribution-Api-Version") or "").startswith("registry/2") else 1)
KOLLA_REGISTRY_PY
}}
up() {{ i=0; until answers; do i=$((i + 1)); [ "$i" -lt {int(wait)} ] || return 1; sleep 1; done; }}
why=
normal() {{
  docker rm -f "$name" "$writer" >/dev/null 2>&1
  why=$({registry.normal} 2>&1) || {{ why=$(printf '%s' "$why" | tail -1); return 1; }}
}}
mount=$(docker volume inspect -f '{{{{.Mountpoint}}}}' {shlex.quote(registry.volume)} 2>/dev/null) || mount=
used() {{ [ -n "$mount" ] && du -sb "$mount" 2>/dev/null | cut -f1; }}
"""


def prepare_script(registry: Container, wait: int) -> str:
    """Shell: note that garbage is pending, and how much the volume holds before."""
    return f"""{shell_functions(registry, wait)}
mkdir -p {STATE_DIR} && : > {GC_PENDING} || fail cannot write {GC_PENDING}
echo "{MARK} used-before $(used)"
"""


def writer_script(registry: Container, wait: int, deletes: str) -> str:
    """Shell, once the registry is read-only: start the writer, run ``deletes`` (a program that prints one
    JSON line last) through it, remove it; ``restore`` and fail when the writer does not come up."""
    return f"""docker rm -f "$writer" >/dev/null 2>&1
( umask 077; mkdir -p {WRITER_DIR} ) && chmod 700 {WRITER_DIR} && rm -f {WRITER_SOCKET} || {{
  restore; fail "cannot make {WRITER_DIR}; $back"
}}
out=$({registry.writer} 2>&1) || {{
  restore; fail "could not start $writer: $(printf '%s' "$out" | tail -1); $back"
}}
i=0
until writes; do
  i=$((i + 1)); [ "$i" -lt {int(wait)} ] || {{ restore; fail "$writer did not answer on {WRITER_SOCKET} within {int(wait)} s; $back"; }}
  sleep 1
done
out=$( {deletes} ) || out=
echo "{MARK} deletes $(printf '%s' "$out" | tail -1)"
docker rm -f "$writer" >/dev/null 2>&1; rm -f {WRITER_SOCKET}
"""


def _writes() -> str:
    """Shell function ``writes``: the writer answers GET /v2/ on its socket."""
    return f"""writes() {{
  python3 - {WRITER_SOCKET} >/dev/null 2>&1 <<'KOLLA_REGISTRY_PY'
import http.client, socket, sys
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(sys.argv[1])
try:
    connection = Unix("localhost", timeout=5)
    connection.request("GET", "/v2/")
    sys.exit(0 if connection.getresponse().status == 200 else 1)
except Exception:
    sys.exit(1)
KOLLA_REGISTRY_PY
}}"""


def collect_script(
    registry: Container, delete_untagged: bool, wait: int, collect_timeout: int, deletes: str = ""
) -> str:
    """Shell: recreate read-only, delete (``deletes``, through the writer), collect, recreate normal; on any
    failure normal first, then fail."""
    untagged = " --delete-untagged" if delete_untagged else ""
    collect = f'docker exec "$name" {REGISTRY_BINARY} garbage-collect{untagged} {REGISTRY_CONFIG}'
    return f"""{shell_functions(registry, wait)}
{_writes()}
back=
restore() {{
  if normal && up; then back="the registry is back to normal"
  else back="the registry could NOT be put back ($why): run fab deploy-host"; fi
}}
log=$(mktemp) || fail cannot make a temporary file
gc=
# The collector runs in the background so that a signal (the host's time limit) is handled
# at once, not when it ends: the container is removed, which stops it, and put back.
trap 'kill "$gc" 2>/dev/null; restore; rm -f "$log"; fail "stopped; $back"' HUP INT TERM
docker rm -f "$name" >/dev/null 2>&1
out=$({registry.read_only} 2>&1) || {{
  restore; fail "could not start $name read-only: $(printf '%s' "$out" | tail -1); $back"
}}
up || {{ restore; fail "$name did not answer read-only within {int(wait)} s; $back"; }}
echo "{MARK} read-only"
{writer_script(registry, wait, deletes) if deletes else ""}timeout {int(collect_timeout)} {collect} >"$log" 2>&1 &
gc=$!
wait "$gc" || {{ restore; out=$(tail -1 "$log"); rm -f "$log"; fail "garbage-collect failed: $out; $back"; }}
grep 'blobs marked' "$log" | tail -1 | sed 's/^/{MARK} collected /'
rm -f "$log"
trap - HUP INT TERM
normal || fail "could not start $name again after garbage collection: $why: run fab deploy-host"
up || fail "$name did not answer within {int(wait)} s after garbage collection"
rm -f {GC_PENDING}
echo "{MARK} used-after $(used)"
"""


def restore_script(registry: Container, wait: int) -> str:
    """Shell: the normal container, unless it already runs and answers (after a collect that failed)."""
    label = f"{{{{index .Config.Labels {SPEC_LABEL!r}}}}}".replace("'", '"')
    return f"""{shell_functions(registry, wait)}
label=$(docker inspect -f '{label}' "$name" 2>/dev/null) || label=
running=$(docker inspect -f '{{{{.State.Running}}}}' "$name" 2>/dev/null) || running=
if [ "$label" = {shlex.quote(registry.spec)} ] && [ "$running" = true ] && up; then
  echo "{MARK} restored already"; exit 0
fi
normal || fail "could not start $name: $why: run fab deploy-host"
up || fail "$name did not answer within {int(wait)} s: run fab deploy-host"
echo "{MARK} restored"
"""
