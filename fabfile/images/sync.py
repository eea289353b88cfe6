"""Syncing images into the local registry on the deployment host: query, decide, copy, read back."""

from __future__ import annotations

import queue
import shlex
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from ..docker.trust import trust_upstream
from ..docker.verify import docker_login, login_lines
from ..engine.converge import converge
from ..engine.hostrun import HostRun, RemoteError
from ..engine.result import FAILED, print_line
from ..inventory import ImageSettings
from ..remote.api import local_base, query_registry
from ..remote.apply import handler_script
from ..remote.marks import marks
from .archive import archived_as
from .decide import decide_archive, decide_upstream, retrying
from .model import COPIED, TO_COPY, Archived, Image, Manifest, Synced, upstream_base
from .scripts import copy_script, load_script, push_script
from .table import STEP, decimal_size, progress


class Syncer:
    """One sync on the deployment host: query, decide, copy a bounded number at once, read back."""

    def __init__(
        self,
        run: HostRun,
        settings: ImageSettings,
        archive: str,
        index: dict[str, Archived],
        workers: int,
        retries: int,
        upstream_password: str = "",
    ) -> None:
        self.run = run
        # A private upstream's login: asked with it over the API, docker login for the pulls.
        self.upstream_login = (
            [[upstream_base(settings), settings.username, upstream_password]] if settings.username else []
        )
        self.settings = settings
        self.archive = archive
        self.index = index
        self.workers = max(1, workers)
        self.retries = max(0, retries)
        self.local = run.ctx.registry

    def plan(self, images: list[Image]) -> list[Synced]:
        """Every image's decision, from one round trip of registry queries."""
        queries = [[local_base(self.run.ctx), image.path, image.tag] for image in images]
        if not self.archive:
            queries += [[upstream_base(self.settings), image.path, image.tag] for image in images]
        found = query_registry(self.run, {"manifests": queries}, self.upstream_login)["manifests"]
        answers = [Manifest.from_answer(answer) for answer in found]
        local, upstream = answers[: len(images)], answers[len(images) :]
        if self.archive:
            return [
                decide_archive(image, archived_as(image, self.index, self.settings.registry), found)
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
        error = error or self.login()
        if error:
            return [replace(item, status=FAILED, message=error) if item in todo else item for item in plan]
        done = {result.image: result for result in self.in_parallel(todo, scripts)}
        if self.upstream_login and not self.archive:
            # The private upstream's credentials are not left behind on the deployment host.
            self.run.run(f"docker logout {shlex.quote(self.settings.registry)} >/dev/null 2>&1; true")
        if cleanup:
            refs = " ".join(shlex.quote(ref) for ref in cleanup)
            self.run.run(f"docker rmi {refs} >/dev/null 2>&1; true")
        return self.read_back([done.get(item.image, item) for item in plan])

    def login(self) -> str:
        """docker login where a registry asks for one (the local one, a private upstream); "" or the error."""
        lines = docker_login(self.run.ctx) if self.run.ctx.login else []
        for _, user, password in self.upstream_login if not self.archive else []:
            lines += login_lines(self.settings.registry, user, password)
        if not lines:
            return ""
        try:
            self.run.run("\n".join(lines))
        except RemoteError as error:
            return str(error)
        return ""

    def target(self, item: Synced) -> str:
        return item.image.at(self.local)

    def trust(self) -> str:
        """Trust an HTTP upstream in this host's Docker before ``docker pull``; "" or the error."""
        if not self.settings.insecure:
            return ""
        upstream = self.settings.registry
        outcome, _ = converge(
            self.run,
            lambda facts, ctx: trust_upstream(facts, ctx, upstream),
            then=handler_script(upstream, self.run.ctx.limits.docker_wait),
            settle=False,
        )
        self.run.report(replace(outcome, step=STEP, message=f"trust {upstream}: {outcome.message}"))
        if outcome.failed:
            return f"{upstream} is not trusted: {outcome.message}"
        return ""

    def load(self, todo: list[Synced], cleanup: list[str]) -> str:
        """Upload and ``docker load`` the archive; "" or the error. ``cleanup``: the names it added."""
        size = Path(self.archive).stat().st_size
        shown: set[int] = set()

        def uploaded(sent: int, total: int) -> None:
            tenth = sent * 10 // max(total, 1)
            if tenth not in shown:
                shown.add(tenth)
                print_line(f"{self.run.host.name} | {STEP} | uploading {self.archive}: {decimal_size(sent)}/{decimal_size(total)}")

        uploaded(0, size)
        refs = list(dict.fromkeys(item.source for item in todo))
        try:
            output = self.run.run(load_script(refs, self.run.upload(self.archive, "images.tar", uploaded)))
        except RemoteError as error:
            return str(error)
        had = set(marks(output, "had"))
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
                worker = self.run.sibling()
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
                    print_line(progress(self.run.host.name, len(results), len(todo), copied, size, results[-1]))
        finally:
            for worker in opened:
                worker.close()
        return results

    def read_back(self, results: list[Synced]) -> list[Synced]:
        """The digest and size the local registry now has for every copied image."""
        copied = [item for item in results if item.status == COPIED]
        if not copied:
            return results
        queries = [[local_base(self.run.ctx), item.image.path, item.image.tag] for item in copied]
        answers = query_registry(self.run, {"manifests": queries})["manifests"]
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
