"""The host's lock around a job: the one lock the apply script takes, held for the whole job.

sync-images' copy and prune-registry's deletes and garbage collection change
the registry's content; deploy-host recreates the registry container. Each
holds ``model.paths.LOCK`` on the deployment host (``flock``), so none of them
runs while another does: a run waits for it at most ``LOCK_WAIT`` seconds,
then fails its row having changed nothing.
"""

from __future__ import annotations

from ..model.marks import MARK
from ..model.paths import LOCK, STATE_DIR

# As long as the apply script waits for it.
LOCK_WAIT = 120
HELD = f"another run holds {LOCK}"


def locked(script: str, wait: int = LOCK_WAIT) -> str:
    """Shell: ``script`` under the host's lock, waited for at most ``wait`` seconds.

    The job's own processes run without the lock's file descriptor, so that one
    left behind (a container, a killed collector) never holds the lock: the
    shell that took it holds it until it ends.
    """
    return (
        f"mkdir -p {STATE_DIR} && exec 9>{LOCK} || {{ echo '{MARK} fail cannot open {LOCK}'; exit 1; }}\n"
        f"flock -w {int(wait)} 9 || {{ echo '{MARK} fail {HELD} (waited {int(wait)} s): "
        f"nothing was changed; try again once it ends'; exit 1; }}\n"
        f"(\n{script}\n) 9>&-\n"
    )


def lock_not_taken(message: str) -> bool:
    """Whether a job failed waiting for the lock (so it changed nothing)."""
    return HELD in message
