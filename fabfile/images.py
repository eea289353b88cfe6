"""sync-images: Kolla images into the local registry, namespace kept, digests compared first.

The image list and every decision (which image is already there, which to
copy, what failed) are pure functions; the deployment host does the copying:
``docker pull``, ``tag`` and ``push`` there, or ``docker load`` of an archive
made by ``docker save`` for hosts with no outside access.
"""

from __future__ import annotations

import base64
import json
import queue
import shlex
import tarfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

from invoke import Context, task
from invoke.exceptions import Exit
from tabulate import tabulate

from . import dockerconfig as dc
from .change import RELOAD, FileChange, StepPlan, handler_script
from .deploy import MODE_HELP, hosts_for, inventory_or_exit, open_run
from .facts import DAEMON_JSON, DEFAULT_DOCKER, MARK, HostFacts
from .inventory import ImageSettings, Inventory, InventoryError, load_images
from .report import CHANGED, FAILED, Outcome, line
from .runner import HostRun, StepFailed, say
from .steps import StepContext, trust_method

STEP = "sync-images"
PRESENT, COPIED, TO_COPY = "present", "copied", "to copy"
RETRY_DELAY = 5  # seconds; kolla-ansible's pull retries wait as long
ARCHIVE_ON_HOST = "/var/tmp/kolla-registry-images.tar"
HELPER = Path(__file__).with_name("registry_api.py")
HELPER_END = "KOLLA_REGISTRY_API_PY"
# Errors that another attempt cannot fix: the image, the rights or the trust is missing.
PERMANENT_ERRORS = (
    "manifest unknown",
    "not found",
    "unauthorized",
    "denied",
    "invalid reference format",
    "no such image",
    "http response to https client",
    "x509",
    "certificate",
)


@dataclass(frozen=True)
class Image:
    """One image: its path in a registry (namespace included) and its tag."""

    path: str
    tag: str

    @property
    def name(self) -> str:
        return f"{self.path}:{self.tag}"

    def at(self, registry: str) -> str:
        """Its reference in ``registry``: ``quay.io/openstack.kolla/nova-api:TAG``."""
        return f"{registry}/{self.name}"


@dataclass(frozen=True)
class Manifest:
    """What one registry answered about one image; status 0 when it did not answer."""

    status: int = 0
    digest: str = ""
    config: str = ""
    size: int = 0
    error: str = ""

    @classmethod
    def from_answer(cls, answer: dict) -> Manifest:
        return cls(
            status=int(answer.get("status") or 0),
            digest=answer.get("digest") or "",
            config=answer.get("config") or "",
            size=int(answer.get("size") or 0),
            error=answer.get("error") or "",
        )

    @property
    def exists(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class Archived:
    """One image in a ``docker save`` archive: the name it has there, its config digest, its size."""

    ref: str
    config: str
    size: int


@dataclass(frozen=True)
class Synced:
    """One image's row in the table: what was (or would be) done with it."""

    image: Image
    status: str
    digest: str = ""
    size: int = 0
    message: str = ""
    source: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAILED


def image_list(settings: ImageSettings) -> list[Image]:
    """Every image the settings name, in order and once: names, then each service at the tag."""
    entries = [*settings.names, *(f"{service}:{settings.tag}" for service in settings.services)]
    images = []
    for entry in entries:
        if ":" in entry.rsplit("/", 1)[-1]:
            path, _, tag = entry.rpartition(":")
        else:
            path, tag = entry, settings.tag or "latest"
        images.append(Image(path if "/" in path else f"{settings.namespace}/{path}", tag))
    return list(dict.fromkeys(images))


def image_settings(inventory: Inventory, path: str) -> ImageSettings:
    """The ``--images`` file's list, else the inventory's; exit status 2 when neither is usable."""
    if path:
        try:
            return load_images(Path(path))
        except InventoryError as error:
            raise Exit(f"error: {error}", code=2) from None
    if inventory.images is None:
        raise Exit(f"error: {inventory.path}: images: missing (or give --images FILE)", code=2)
    return inventory.images


def upstream_base(settings: ImageSettings) -> str:
    return ("http://" if settings.insecure else "https://") + settings.registry


def decide_upstream(image: Image, upstream: Manifest, local: Manifest) -> Synced:
    """Skip an image the local registry holds with the upstream's digest (or config digest)."""
    if upstream.status == 404:
        return Synced(image, FAILED, message="not found upstream (HTTP 404)")
    if upstream.exists and upstream.error:
        return Synced(image, FAILED, message=f"upstream: {upstream.error}")
    if local.exists and upstream.exists:
        if local.digest == upstream.digest:
            return Synced(image, PRESENT, local.digest, local.size, "same digest as upstream")
        # A push from Docker's image store may recompress layers, and a manifest list is
        # pushed as the one platform pulled: the same image under another manifest digest.
        if upstream.config and local.config == upstream.config:
            return Synced(image, PRESENT, local.digest, local.size, "same image as upstream (config digest)")
    elif local.exists:
        return Synced(image, PRESENT, local.digest, local.size, f"upstream not checked: {upstream.error}")
    if local.status not in (200, 404):
        return Synced(image, FAILED, message=f"local registry: {local.error or local.status}")
    reason = "differs from upstream" if local.exists else ""
    return Synced(image, TO_COPY, upstream.digest, upstream.size, reason)


def decide_archive(image: Image, archived: Archived | None, local: Manifest) -> Synced:
    """Skip an image the local registry holds with the archive's config digest (its image ID)."""
    if archived is None:
        return Synced(image, FAILED, message="not in the archive")
    if local.exists and local.config == archived.config:
        return Synced(image, PRESENT, local.digest, local.size, "same image as the archive's")
    if local.status not in (200, 404):
        return Synced(image, FAILED, message=f"local registry: {local.error or local.status}")
    reason = "differs from the archive's" if local.exists else ""
    return Synced(image, TO_COPY, "", archived.size, reason, source=archived.ref)


def archive_index(manifest: list[dict], sizes: dict[str, int]) -> dict[str, Archived]:
    """Each name in a ``docker save`` manifest.json, with its config digest and layer bytes."""
    index = {}
    for entry in manifest:
        # "<hex>.json" in Docker's own layout, "blobs/sha256/<hex>" in the OCI one (Docker >= 25).
        config = "sha256:" + entry["Config"].rsplit("/", 1)[-1].removesuffix(".json")
        size = sum(sizes.get(layer, 0) for layer in entry.get("Layers") or [])
        for ref in entry.get("RepoTags") or []:
            index[ref] = Archived(ref, config, size)
    return index


def archived_as(image: Image, index: dict[str, Archived], upstream: str) -> Archived | None:
    """The archive's copy of ``image``: saved under its upstream name, or without registry."""
    return index.get(image.at(upstream)) or index.get(image.name)


def read_archive(path: str) -> dict[str, Archived]:
    """The index of a ``docker save`` archive on this machine; exit status 2 when unreadable."""
    try:
        with tarfile.open(path) as archive:
            # A tar made by hand names its members ./manifest.json; docker save's, manifest.json.
            members = {member.name.removeprefix("./"): member for member in archive.getmembers()}
            manifest = json.load(archive.extractfile(members["manifest.json"]))
        sizes = {name: member.size for name, member in members.items()}
    except (OSError, tarfile.TarError, KeyError, ValueError, AttributeError) as error:
        raise Exit(f"error: {path}: not a docker save archive ({error})", code=2) from None
    return archive_index(manifest, sizes)


def transient(message: str) -> bool:
    """Whether another attempt may succeed (not when the image, the rights or the trust is missing)."""
    lowered = message.lower()
    return not any(error in lowered for error in PERMANENT_ERRORS)


def human(size: int) -> str:
    """Bytes as Docker shows them: decimal units."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def progress(host: str, done: int, total: int, copied: int, size: int, item: Synced) -> str:
    """One line per finished image: images done / total, bytes copied / to copy."""
    detail = f": {item.message}" if item.message else ""
    return (
        f"{host} | {STEP} | {done}/{total} images, {human(copied)}/{human(size)} | "
        f"{item.image.name} {item.status}{detail}"
    )


def table(results: list[Synced], check: bool = False) -> str:
    """image, tag, digest, size, status (and why), one row per image."""
    rows = [
        [r.image.path, r.image.tag, r.digest or "-", human(r.size) if r.size else "-", r.status, r.message]
        for r in results
    ]
    headers = ["image", "tag", "digest", "size", "status", "details"]
    title = "IMAGES (check mode: nothing was copied)" if check else "IMAGES"
    shown = tabulate(rows, headers=headers, disable_numparse=True, maxcolwidths=[None] * 5 + [60])
    return f"{title}\n{shown}\n\n{STEP}: {totals(results)}"


def totals(results: list[Synced]) -> str:
    counts = Counter(result.status for result in results)
    copied = sum(r.size for r in results if r.status in (COPIED, TO_COPY))
    parts = [f"{counts[status]} {status}" for status in (COPIED, TO_COPY, PRESENT, FAILED) if counts[status]]
    return f"{len(results)} images: {', '.join(parts)}" + (f" ({human(copied)})" if copied else "")


def insecure_registries(facts: HostFacts) -> tuple[list[str], list[str]]:
    """The registries Docker treats as insecure: in daemon.json, and as flags (DOCKER_OPTS, unit)."""
    listed = dc.load_daemon_json(facts.files.get(DAEMON_JSON)).get("insecure-registries") or []
    argv = dc.exec_start_argv(facts.unit.get("ExecStart", ""))
    reads = dc.unit_reads_docker_opts(argv, facts.unit.get("EnvironmentFiles", ""), facts.dropins)
    return list(listed), dc.flag_registries(dc.effective_flags(argv, facts.files.get(DEFAULT_DOCKER), reads))


def trust_upstream(facts: HostFacts, ctx: StepContext, upstream: str) -> StepPlan:
    """Make the deployment host's Docker trust a plain-HTTP upstream, through daemon.json."""
    plan = StepPlan("trust-upstream")
    current = facts.files.get(DAEMON_JSON)
    try:
        trusted, flagged = insecure_registries(facts)
    except dc.ConfigError as error:
        plan.error = str(error)
        return plan
    if upstream in (*flagged, *trusted):
        plan.notes.append(f"{upstream} already trusted")
    elif flagged or trust_method(facts, ctx) == "docker-opts":
        # daemon.json next to --insecure-registry flags would stop dockerd.
        plan.error = (
            f"this Docker takes its registries from DOCKER_OPTS: add --insecure-registry {upstream} "
            f"to {DEFAULT_DOCKER} and restart Docker, or sync from an archive"
        )
    else:
        try:
            merged = dc.with_insecure_registries(current, [upstream])
        except dc.ConfigError as error:
            plan.error = str(error)
            return plan
        plan.files.append(FileChange(DAEMON_JSON, current, merged))
        plan.handler = RELOAD
    return plan


def helper_script(request: dict) -> str:
    """Shell that runs registry_api.py on the host with ``request``; it prints one JSON line."""
    encoded = base64.b64encode(json.dumps(request).encode()).decode()
    return (
        f"command -v python3 >/dev/null || {{ echo '{MARK} fail python3 is missing'; exit 1; }}\n"
        f"python3 - {encoded} <<'{HELPER_END}'\n{HELPER.read_text()}\n{HELPER_END}\n"
    )


def ask(run: HostRun, request: dict) -> dict:
    """Ask the registry API from ``run``'s host (see registry_api.answer)."""
    output = run.run(helper_script(request)).strip()
    try:
        return json.loads(output.splitlines()[-1])
    except (ValueError, IndexError):
        raise StepFailed(f"registry query: no answer ({output[-200:] or 'no output'})") from None


def copy_script(source: str, target: str) -> str:
    """Shell: pull ``source``, push it as ``target``, leave the host's own images as they were."""
    src, dst = shlex.quote(source), shlex.quote(target)
    return f"""set -e
fail() {{ echo "{MARK} fail $*"; exit 1; }}
had() {{ docker image inspect "$1" >/dev/null 2>&1 && echo yes || true; }}
had_src=$(had {src}); had_dst=$(had {dst})
tidy() {{
  [ -n "$had_dst" ] || docker rmi {dst} >/dev/null 2>&1 || true
  [ -n "$had_src" ] || docker rmi {src} >/dev/null 2>&1 || true
}}
out=$(docker pull {src} 2>&1) || {{ tidy; fail "docker pull {source}: $(printf '%s' "$out" | tail -1)"; }}
docker tag {src} {dst}
out=$(docker push {dst} 2>&1) || {{ tidy; fail "docker push {target}: $(printf '%s' "$out" | tail -1)"; }}
tidy
echo "{MARK} pushed {target}"
"""


def load_script(refs: Iterable[str]) -> str:
    """Shell: ``docker load`` the uploaded archive; names which of ``refs`` the host had before."""
    quoted = " ".join(shlex.quote(ref) for ref in refs)
    archive = shlex.quote(ARCHIVE_ON_HOST)
    return f"""set -e
for ref in {quoted}; do docker image inspect "$ref" >/dev/null 2>&1 && echo "{MARK} had $ref"; done
out=$(docker load -i {archive} 2>&1) || {{ rm -f {archive}; echo "{MARK} fail docker load: $(printf '%s' "$out" | tail -1)"; exit 1; }}
rm -f {archive}
echo "{MARK} loaded"
"""


def retrying(attempt: Callable[[], object], retries: int, delay: float = RETRY_DELAY) -> str:
    """Run ``attempt`` until it succeeds, a permanent error, or ``retries`` more tries; "" or the error."""
    for tries in range(retries + 1):
        try:
            attempt()
            return ""
        except StepFailed as error:
            message = str(error)
            if tries == retries or not transient(message):
                return message + (f" (after {tries + 1} attempts)" if tries else "")
            time.sleep(delay)
    return "no attempt made"


class Syncer:
    """One sync on the deployment host: query, decide, copy a bounded number at once, read back."""

    def __init__(
        self, run: HostRun, settings: ImageSettings, archive: str, workers: int, retries: int
    ) -> None:
        self.run = run
        self.settings = settings
        self.archive = archive
        self.workers = max(1, workers)
        self.retries = max(0, retries)
        self.local = run.ctx.registry

    def plan(self, images: list[Image]) -> list[Synced]:
        """Every image's decision, from one round trip of registry queries."""
        index = read_archive(self.archive) if self.archive else {}
        queries = [[f"http://{self.local}", image.path, image.tag] for image in images]
        if not self.archive:
            queries += [[upstream_base(self.settings), image.path, image.tag] for image in images]
        answers = [Manifest.from_answer(a) for a in ask(self.run, {"manifests": queries})["manifests"]]
        local, upstream = answers[: len(images)], answers[len(images) :]
        if self.archive:
            return [
                decide_archive(image, archived_as(image, index, self.settings.registry), found)
                for image, found in zip(images, local, strict=True)
            ]
        return [decide_upstream(*row) for row in zip(images, upstream, local, strict=True)]

    def copy(self, plan: list[Synced]) -> list[Synced]:
        """Copy what the plan says (in check mode, only say what trust it needs)."""
        todo = [item for item in plan if item.status == TO_COPY]
        if not todo:
            return plan
        cleanup: list[str] = []
        if self.archive:
            error = "" if self.run.check else self.load(todo, cleanup)
            scripts = {item.image: push_script(item.source, self.target(item)) for item in todo}
        else:
            error = self.trust()
            upstream = self.settings.registry
            scripts = {item.image: copy_script(item.image.at(upstream), self.target(item)) for item in todo}
        if self.run.check:
            return plan
        if error:
            return [replace(item, status=FAILED, message=error) if item in todo else item for item in plan]
        done = {result.image: result for result in self.in_parallel(todo, scripts)}
        if cleanup:
            refs = " ".join(shlex.quote(ref) for ref in cleanup)
            self.run.run(f"docker rmi {refs} >/dev/null 2>&1; true")
        return self.read_back([done.get(item.image, item) for item in plan])

    def target(self, item: Synced) -> str:
        return item.image.at(self.local)

    def trust(self) -> str:
        """Trust an HTTP upstream in this host's Docker before ``docker pull``; "" or the error."""
        if not self.settings.insecure:
            return ""
        upstream = self.settings.registry
        outcome, _ = self.run.step(lambda facts, ctx: trust_upstream(facts, ctx, upstream))
        say(line(replace(outcome, step=STEP, message=f"trust {upstream}: {outcome.message}")))
        if outcome.failed:
            return f"{upstream} is not trusted: {outcome.message}"
        if outcome.status == CHANGED and not self.run.check:
            try:
                self.run.run(handler_script(expect_insecure=upstream))
            except StepFailed as error:
                return f"Docker did not take {upstream} as insecure: {error}"
        return ""

    def load(self, todo: list[Synced], cleanup: list[str]) -> str:
        """Upload and ``docker load`` the archive; "" or the error. ``cleanup``: the names it added."""
        size = Path(self.archive).stat().st_size
        shown: set[int] = set()

        def uploaded(sent: int, total: int) -> None:
            tenth = sent * 10 // max(total, 1)
            if tenth not in shown:
                shown.add(tenth)
                say(f"{self.run.host.name} | {STEP} | uploading {self.archive}: {human(sent)}/{human(total)}")

        uploaded(0, size)
        try:
            self.run.connection.sftp().put(self.archive, ARCHIVE_ON_HOST, callback=uploaded)
        except OSError as error:
            return f"upload of {self.archive} to {ARCHIVE_ON_HOST} failed: {error}"
        refs = list(dict.fromkeys(item.source for item in todo))
        try:
            output = self.run.run(load_script(refs))
        except StepFailed as error:
            return str(error)
        had = {mark.split()[-1] for mark in output.splitlines() if mark.startswith(f"{MARK} had ")}
        cleanup += [ref for ref in refs if ref not in had]
        return ""

    def in_parallel(self, todo: list[Synced], scripts: dict[Image, str]) -> list[Synced]:
        """Each image's script, ``workers`` at once, each worker on its own SSH connection."""
        idle: queue.SimpleQueue[HostRun] = queue.SimpleQueue()
        opened: list[HostRun] = []
        size = sum(item.size for item in todo)
        copied, results = 0, []

        def copy_one(item: Synced) -> Synced:
            try:
                worker = idle.get_nowait()
            except queue.Empty:
                worker = HostRun(self.run.host, self.run.ctx, False, False, self.run.connection.config)
                opened.append(worker)
            try:
                error = retrying(lambda: worker.run(scripts[item.image]), self.retries)
            finally:
                idle.put(worker)
            return replace(item, status=FAILED, message=error) if error else replace(item, status=COPIED)

        try:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                for future in as_completed([pool.submit(copy_one, item) for item in todo]):
                    results.append(future.result())
                    copied += results[-1].size if results[-1].status == COPIED else 0
                    say(progress(self.run.host.name, len(results), len(todo), copied, size, results[-1]))
        finally:
            for worker in opened:
                worker.close()
        return results

    def read_back(self, results: list[Synced]) -> list[Synced]:
        """The digest and size the local registry now has for every copied image."""
        copied = [item for item in results if item.status == COPIED]
        if not copied:
            return results
        queries = [[f"http://{self.local}", item.image.path, item.image.tag] for item in copied]
        answers = ask(self.run, {"manifests": queries})["manifests"]
        found = {item.image: Manifest.from_answer(a) for item, a in zip(copied, answers, strict=True)}
        return [read_back_one(item, found.get(item.image)) for item in results]


def read_back_one(item: Synced, found: Manifest | None) -> Synced:
    """A copied image's row with the local registry's digest and size; failed if it is not there."""
    if found is None:
        return item
    if not found.exists:
        return replace(
            item, status=FAILED, message=f"pushed, but the registry does not list it: {found.error}"
        )
    return replace(item, digest=found.digest, size=found.size or item.size)


def push_script(source: str, target: str) -> str:
    """Shell: tag a loaded image as ``target`` and push it; the host keeps only what it had."""
    src, dst = shlex.quote(source), shlex.quote(target)
    return f"""set -e
fail() {{ echo "{MARK} fail $*"; exit 1; }}
had=$(docker image inspect {dst} >/dev/null 2>&1 && echo yes || true)
docker tag {src} {dst}
out=$(docker push {dst} 2>&1) || {{ [ -n "$had" ] || docker rmi {dst} >/dev/null 2>&1; fail "docker push {target}: $(printf '%s' "$out" | tail -1)"; }}
[ -n "$had" ] || docker rmi {dst} >/dev/null 2>&1 || true
echo "{MARK} pushed {target}"
"""


@task(
    help={
        "images": "YAML file with the image list, shaped like the inventory's images: section "
        "(default: that section)",
        "archive": "a `docker save` archive on this machine to copy from, instead of the upstream registry "
        "(default: images.archive)",
        "parallel": "how many images to copy at once (default: kolla_registry.sync_parallel, 4)",
        "retries": "attempts after the first when a copy fails for a transient reason, 5 s apart (default 3)",
        "check": "change nothing; say which images would be copied",
        "diff": MODE_HELP["diff"],
    }
)
def sync_images(c: Context, images="", archive="", parallel=0, retries=3, check=False, diff=False):
    """Copy Kolla images into the local registry, skipping those it already holds."""
    inventory = inventory_or_exit()
    settings = image_settings(inventory, images)
    archive = archive or settings.archive or ""
    wanted = image_list(settings)
    host = hosts_for(c, inventory, (inventory.deploy_host,))[0]
    run = open_run(host, inventory, check, diff, False, c)
    if isinstance(run, Outcome):
        say(line(replace(run, step=STEP)))
        raise Exit(code=1)
    workers = parallel or c.config.get("kolla_registry", {}).get("sync_parallel", 4)
    syncer = Syncer(run, settings, archive, workers, retries)
    try:
        plan = syncer.plan(wanted)
        say(
            f"{host.name} | {STEP} | {totals(plan)}, from {archive or upstream_base(settings)} to {syncer.local}"
        )
        results = syncer.copy(plan)
    except StepFailed as error:
        say(line(Outcome(host.name, STEP, FAILED, str(error))))
        raise Exit(code=1) from None
    finally:
        run.close()
    say("\n" + table(results, check))
    if any(result.failed for result in results):
        raise Exit(code=1)
