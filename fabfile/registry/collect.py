"""Deletes and garbage collection in the registry's storage, while every reader keeps serving.

Deleting a manifest frees nothing: ``registry garbage-collect`` removes the blobs no
manifest uses, and nothing may write the storage while it runs. Every instance nodes reach
is read-only (``container.READ_ONLY_ENV``), so none of them is stopped or recreated: they
serve pulls throughout. The deletes go through the writer (``writer.py``), which looks at
each repository's tags again first; the writer is then removed and the collector runs, a
one-off container of the registry image on the same storage (the volume, or the S3 store
every instance shares), bounded in time and removed with the script. The host's lock is held
for all of it, so sync-images' copy and verify-registry's probe, the only other writes, wait.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..model.context import StepContext
from ..model.marks import FAIL_FUNCTION, MARK
from ..model.paths import STATE_DIR
from .storage import storage_option
from .writer import remove_writer, with_writer

# Made before the first delete, removed once garbage was collected: a run that failed in
# between leaves it, and the next run collects even with nothing left to delete.
GC_PENDING = f"{STATE_DIR}/gc-pending"
# Where both upstream's registry:2 and Debian's docker-registry (the lab's image) have it.
REGISTRY_BINARY = "/bin/registry"
REGISTRY_CONFIG = "/etc/docker/registry/config.yml"
COLLECTOR_SUFFIX = "-gc"


@dataclass(frozen=True)
class Collector:
    """What the scripts need: the volume (for the space used), the collector's name and its run command."""

    volume: str
    name: str
    run: str

    @classmethod
    def of(cls, ctx: StepContext) -> Collector:
        settings = ctx.inventory.registry
        name = settings.name + COLLECTOR_SUFFIX
        network = "host" if settings.s3 else "none"
        run = (
            f"docker run --rm --name {shlex.quote(name)} --network {network} {storage_option(settings)} "
            f"-e REGISTRY_STORAGE_DELETE_ENABLED=true --entrypoint {REGISTRY_BINARY} {shlex.quote(settings.image)}"
        )
        # With S3 there is no volume: the space freed is not told.
        return cls("" if settings.s3 else settings.volume, name, run)


def _used(collector: Collector) -> str:
    """Shell function ``used``: the bytes the volume holds ("" without a volume)."""
    volume = shlex.quote(collector.volume) if collector.volume else "''"
    return f"""mount=$(docker volume inspect -f '{{{{.Mountpoint}}}}' {volume} 2>/dev/null) || mount=
used() {{ [ -n "$mount" ] && du -sb "$mount" 2>/dev/null | cut -f1; }}"""


def prepare_script(collector: Collector) -> str:
    """Shell: note that garbage is pending, and how much the volume holds before."""
    return f"""set -u
{FAIL_FUNCTION}
{_used(collector)}
mkdir -p {STATE_DIR} && : > {GC_PENDING} || fail cannot write {GC_PENDING}
echo "{MARK} used-before $(used)"
"""


def deletes_script(ctx: StepContext, deletes: str, wait: int) -> str:
    """Shell: ``deletes`` (a program that prints one JSON line last) through the writer, its answer marked."""
    body = f"""out=$( {deletes} ) || out=
echo "{MARK} deletes $(printf '%s' "$out" | tail -1)"
"""
    return with_writer(ctx, body, wait)


def collect_script(ctx: StepContext, delete_untagged: bool, wait: int, collect_timeout: int, deletes: str = "") -> str:
    """Shell: the deletes through the writer (when there are any), then the collector, ``collect_timeout``
    seconds at most; the readers are never touched. Fails with one line; the collector never outlives it."""
    collector = Collector.of(ctx)
    untagged = " --delete-untagged" if delete_untagged else ""
    through_writer = f"( {deletes_script(ctx, deletes, wait)} ) || exit $?\n" if deletes else ""
    name = shlex.quote(collector.name)
    return f"""set -u
{FAIL_FUNCTION}
{_used(collector)}
{through_writer}log=$(mktemp) || fail cannot make a temporary file
gc=
gone() {{ docker rm -f {name} >/dev/null 2>&1; rm -f "$log"; }}
# The collector runs in the background so that a signal (the host's time limit) is handled at
# once: the container is removed, which stops it. The registries kept serving all along.
trap 'kill "$gc" 2>/dev/null; gone; fail "stopped; the collector was removed, the registry kept serving"' HUP INT TERM
docker rm -f {name} >/dev/null 2>&1
timeout {int(collect_timeout)} {collector.run} garbage-collect{untagged} {REGISTRY_CONFIG} >"$log" 2>&1 &
gc=$!
wait "$gc" || {{ out=$(tail -1 "$log"); gone; fail "garbage-collect failed: $out; the registry kept serving"; }}
grep 'blobs marked' "$log" | tail -1 | sed 's/^/{MARK} collected /'
rm -f "$log"
trap - HUP INT TERM
rm -f {GC_PENDING}
echo "{MARK} used-after $(used)"
"""


def cleanup_script(ctx: StepContext) -> str:
    """Shell, on a new connection after a job that was lost: no writer nor collector left running."""
    collector = Collector.of(ctx)
    return f"""{remove_writer(ctx)}
docker rm -f {shlex.quote(collector.name)} >/dev/null 2>&1
echo "{MARK} cleaned"
"""
