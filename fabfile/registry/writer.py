"""The writer: the one way into the registry's storage, on the deployment host alone.

Every instance nodes reach runs read-only (``container.READ_ONLY_ENV``): it serves pulls and
refuses every push and delete, whatever the credential. The writes (sync-images' copy,
prune-registry's deletes, verify-registry's probe) go through a second registry on the same
storage (the named volume, or the S3 store), which listens only on a unix socket in a folder
only root enters: no TCP port, so no node reaches it, and no login, since the socket is its
access control. It runs for as long as one job's writes take, under the host's lock, and is
removed after; a job that dies leaves it behind, and the next one removes it first.
"""

from __future__ import annotations

import shlex

from ..model.context import StepContext
from ..model.marks import MARK
from .storage import storage_option

WRITER_DIR = "/run/kolla-registry"
WRITER_SOCKET = f"{WRITER_DIR}/registry.sock"
WRITER_SUFFIX = "-writer"
# The writer answers about 0.3 s after it starts: asked every second, every job waited a second for it.
POLLS_PER_SECOND = 10


def writer_name(ctx: StepContext) -> str:
    return ctx.inventory.registry.name + WRITER_SUFFIX


def writer_run_command(ctx: StepContext) -> str:
    """The writer: the registry image on the same storage, deletes allowed, listening on the socket alone
    (no TCP port; no network at all unless its store is S3), with no restart policy."""
    settings = ctx.inventory.registry
    network = "host" if settings.s3 else "none"
    return (
        f"docker run -d --name {shlex.quote(writer_name(ctx))} --network {network} "
        f"-v {WRITER_DIR}:{WRITER_DIR} -e REGISTRY_HTTP_NET=unix -e REGISTRY_HTTP_ADDR={WRITER_SOCKET} "
        f"-e REGISTRY_STORAGE_DELETE_ENABLED=true {storage_option(settings)} {shlex.quote(settings.image)}"
    )


def remove_writer(ctx: StepContext) -> str:
    """Shell: the writer and its socket gone (nothing when there is none)."""
    return f"docker rm -f {shlex.quote(writer_name(ctx))} >/dev/null 2>&1; rm -f {WRITER_SOCKET}"


def with_writer(ctx: StepContext, body: str, wait: int) -> str:
    """Shell, run in a subshell of its own: start the writer, wait until it answers on its socket (``wait``
    seconds at most), run ``body`` (its exit status is the script's), and remove the writer, however the
    script ends. A writer that does not start or answer fails the script with one line, ``body`` not run."""
    failed = f"{MARK} fail"
    return f"""writer={shlex.quote(writer_name(ctx))}
writer_down() {{ docker rm -f "$writer" >/dev/null 2>&1; rm -f {WRITER_SOCKET}; }}
writer_down
( umask 077; mkdir -p {WRITER_DIR} ) && chmod 700 {WRITER_DIR} || {{ echo "{failed} cannot make {WRITER_DIR}"; exit 1; }}
trap writer_down EXIT
trap 'exit 143' HUP INT TERM
out=$({writer_run_command(ctx)} 2>&1) || {{
  echo "{failed} could not start the writer $writer: $(printf '%s' "$out" | tail -1)"; exit 1
}}
{_writes()}
i=0
until writes; do
  i=$((i + 1))
  [ "$i" -lt {int(wait) * POLLS_PER_SECOND} ] || {{ echo "{failed} the writer $writer did not answer on {WRITER_SOCKET} within {int(wait)} s"; exit 1; }}
  sleep {1 / POLLS_PER_SECOND}
done
{body}
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
