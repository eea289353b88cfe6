"""verify-registry's probe, pushed through the writer: the deployment host's proof that writes work.

The instances nodes reach are read-only, so the probe goes in the way sync-images' images do:
through the writer on its root-only socket, under the host's lock (never during a prune's
garbage collection), with the registry API (docker cannot push to a unix socket). The check then
pulls it with docker through the read-only registry, as a node would.
"""

from __future__ import annotations

import shlex

from .. import payload
from ..images.host_lock import locked
from ..model.context import PROBE_REPOSITORY, StepContext
from ..model.marks import MARK
from . import writer

PROGRAM = (*payload.CLIENT, payload.HERE / "probe.py")
PROBE_TAG = "latest"


def probe_request() -> dict:
    return {"probe": {"socket": writer.WRITER_SOCKET, "repository": PROBE_REPOSITORY, "tag": PROBE_TAG}}


def probe_push_script(ctx: StepContext) -> str:
    """Shell: the probe pushed through the writer (started and removed around it) under the host's lock;
    a ``pushed`` mark, or one ``fail`` line and a non-zero exit."""
    program = payload.script(probe_request(), PROGRAM, "push_probe")
    pushed = shlex.quote(f"{MARK} pushed {ctx.probe_image} through the writer")
    failed = f"{MARK} fail could not push the probe through the writer"
    body = f"""out=$( {program} ) || out=
case $out in
  *'{{"pushed": "sha256:'*) echo {pushed} ;;
  *) echo "{failed}: $(printf '%s' "$out" | tail -1)${{space:+ ($space)}}"; exit 1 ;;
esac
"""
    return locked(writer.with_writer(ctx, body, ctx.limits.docker_wait))
