"""One copy into the local registry, run on the deployment host after registry_client.py and blobcopy.py.

Every image's manifests are resolved first (from the upstream, or given by the
tasks for an archive), then every blob any of them lacks in the local registry
is planned once (blobcopy.plan_blobs): fetched once, mounted into the other
repositories that need it. Blobs go ``workers`` at once; an image's manifests
are pushed as soon as all its blobs are there, children first, the tag last,
so that a tag never names a missing blob and an interrupted copy resumes with
only what is missing. Progress goes out as marks; the answer is one JSON line.
"""

# ruff: noqa: UP032 - str.format on purpose: f-strings need Python 3.6 on the host

import base64
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

from .blobcopy import (  # dropped on the host: defined above it there
    BadDigest,
    CopyError,
    blob_descriptors,
    chunks_of,
    digest_of,
    fetch,
    get_manifest,
    has_blob,
    is_list,
    plan_blobs,
    put_manifest,
    retried,
    select_platforms,
    start_upload,
    upload,
)
from .manifests import platforms_of  # dropped on the host: defined above it there
from .progress import Progress  # dropped on the host: defined above it there
from .registry_client import ACCEPT, Client, UnixClient  # dropped on the host: defined above it there
from .snapshots import guard_snapshot, put_snapshot, snapshot_of_present  # dropped on the host: likewise
from .tarblobs import TarBlobs  # dropped on the host: defined above it there

RETRY_DELAY = 5
HEADS = 16  # blob HEADs at once: small requests, answered at once


class Copy:
    """One copy request: ``{"copy": {"target", "socket", "source" or "archive", "images", "platforms", "workers",
    "retries", "limits"}, "logins", "cafile"}``; with "socket", the target is written (and read) through that
    unix socket. Each image: ``{"repo", "tag"}``, and ``reference`` (the digest to fetch, locked), ``expect``
    (the digest its tag must name), ``snapshot`` (its release's tag), ``present`` (held already under this
    digest: only its snapshot tag to push); an archived image's ``manifests`` and ``blobs``."""

    def __init__(self, request: dict, out=None) -> None:
        job = request["copy"]
        self.progress = Progress(out)
        self.client = Client(request.get("logins"), request.get("cafile", ""), job.get("limits"), self.progress.waiting)
        # The local registry is written through the writer's unix socket (nodes' registries are read-only).
        self.writer = UnixClient(job["socket"]) if job.get("socket") else self.client
        self.target, self.source = job["target"], job.get("source", "")
        self.archive = TarBlobs(os.path.expandvars(job["archive"])) if job.get("archive") else None
        self.platforms = job.get("platforms") or []
        self.workers = max(1, int(job.get("workers") or 4))
        self.retries = max(0, int(job.get("retries") or 0))
        self.delay = float(job.get("retry_delay", RETRY_DELAY))
        self.images = job["images"]
        self.lock = threading.Lock()
        self.sizes, self.members, self.errors, self.sources = {}, {}, {}, {}
        self.stored = set()  # (repository, digest) in the local registry
        self.fetched = self.mounted = 0

    def resolve(self, image: dict) -> list:
        """[(reference, media type, body, document)]: the manifests to push, the tag's last."""
        if "manifests" in image:
            self.members.update(image.get("blobs") or {})
            found = []
            for reference, media_type, encoded in image["manifests"]:
                body = base64.b64decode(encoded)
                found.append((reference, media_type, body, json.loads(body.decode())))
            return found
        repo, tag = image["repo"], image["tag"]
        # A locked image is fetched by its digest (checked on the way), never by the tag, which moves.
        body, media_type, document = get_manifest(self.client, self.source, repo, image.get("reference") or tag, ACCEPT)
        with self.lock:
            self.sources[repo + ":" + tag] = digest_of(body)
        if not is_list(document, media_type):
            return [(tag, media_type, body, document)]
        chosen = select_platforms(document, self.platforms)
        if chosen is None:
            raise CopyError("no {} image in the manifest list".format(" or ".join(self.platforms)), True)
        found = []
        for entry in chosen["manifests"]:
            child, child_type, child_document = get_manifest(self.client, self.source, repo, entry["digest"], ACCEPT)
            found.append((entry["digest"], child_type, child, child_document))
        if chosen is not document:
            body = json.dumps(chosen, indent=3).encode()
        return found + [(tag, media_type, body, chosen)]

    def run(self) -> dict:
        """Resolve, plan, copy; one result per image."""
        resolved, results = {}, {}
        copied = [image for image in self.images if "present" not in image]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for image, answer in zip(self.images, pool.map(self.attempt_tag, self.images)):
                if answer is not None:
                    results[image["repo"] + ":" + image["tag"]] = answer
            for image, answer in zip(copied, pool.map(self.attempt_resolve, copied)):
                key = image["repo"] + ":" + image["tag"]
                if isinstance(answer, str):
                    results[key] = {"status": "failed", "error": answer}
                else:
                    resolved[key] = (image["repo"], answer, image)
        needs, pending = self.needs(resolved)
        self.stored = self.held(needs)
        actions = plan_blobs(needs, self.stored)
        fetches = [action for action in actions if action[0] == "fetch"]
        self.progress.total = sum(self.sizes[action[1]] for action in fetches)
        counts = (self.progress.total, len(fetches), len(actions) - len(fetches), len(self.stored))
        self.progress.say("plan {} {} {} {}".format(*counts))
        for key in self.ready(pending, []):
            results[key] = self.push(key, resolved[key])
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for future in as_completed([pool.submit(self.blob, action) for action in actions]):
                for key in self.ready(pending, future.result()):
                    results[key] = self.push(key, resolved[key])
        self.progress.finish()
        answers = [dict(results[image["repo"] + ":" + image["tag"]], repo=image["repo"], tag=image["tag"]) for image in self.images]
        counts = {"images": answers, "fetched": self.fetched, "mounted": self.mounted, "bytes": self.progress.done}
        return dict(counts, **self.client.waits.said())

    def held(self, needs: dict) -> set:
        """The (repository, digest) pairs the local registry already holds (HEAD, many at once)."""
        pairs = [(repo, digest) for digest, repos in needs.items() for repo in repos]

        def there(pair: tuple) -> bool:
            return self.attempt(has_blob, self.writer, self.target, pair[0], pair[1]) is True

        with ThreadPoolExecutor(max_workers=HEADS) as pool:
            return {pair for pair, found in zip(pairs, pool.map(there, pairs)) if found}

    def needs(self, resolved: dict) -> tuple:
        """{digest: [repository, ...]} over all images, and {image: {(repository, digest)}} each lacks."""
        needs, pending = {}, {}
        for key, (repo, manifests, _) in resolved.items():
            pending[key] = set()
            for _, _, _, document in manifests:
                for blob in self.blobs_of(document):
                    self.sizes[blob["digest"]] = int(blob.get("size") or 0)
                    users = needs.setdefault(blob["digest"], [])
                    if repo not in users:
                        users.append(repo)
                    pending[key].add((repo, blob["digest"]))
        return needs, pending

    @staticmethod
    def blobs_of(document: dict) -> list:
        return [] if is_list(document) else blob_descriptors(document)

    def ready(self, pending: dict, done: list) -> list:
        """The images whose last missing blob just arrived (``done``: the (repository, digest) pairs stored)."""
        with self.lock:
            self.stored.update(done)
            ready = [key for key, missing in pending.items() if missing is not None and missing <= self.stored]
            for key in ready:
                pending[key] = None
            failed = [key for key, missing in pending.items() if missing and any(p in self.errors for p in missing)]
            for key in failed:
                pending.pop(key)
        return ready + failed

    def push(self, key: str, image: tuple) -> dict:
        """Push an image's manifests, unless one of its blobs failed, the tag's digest is not the locked one or
        its snapshot tag names another; then the snapshot tag. Its result."""
        repo, manifests, asked = image
        wanted = [(repo, blob["digest"]) for _, _, _, doc in manifests for blob in self.blobs_of(doc)]
        errors = [self.errors[pair] for pair in wanted if pair in self.errors]
        if errors:
            return self.said(key, {"status": "failed", "error": errors[0]})
        _, tag_type, tag_body, tag_document = manifests[-1]
        digest, snapshot = digest_of(tag_body), asked.get("snapshot") or ""
        if asked.get("expect") and digest != asked["expect"]:
            error = "{} would name {}, not the locked {}".format(key, digest, asked["expect"])
            return self.said(key, {"status": "failed", "error": error})
        if snapshot:
            guarded = self.attempt(guard_snapshot, self.writer, self.target, repo, snapshot, digest)
            if isinstance(guarded, CopyError):
                return self.said(key, {"status": "failed", "error": str(guarded)})
        for reference, media_type, body, _ in manifests:
            digest = self.attempt(put_manifest, self.writer, self.target, repo, reference, media_type, body)
            if isinstance(digest, CopyError):
                return self.said(key, {"status": "failed", "error": str(digest)})
        result = {"status": "copied", "digest": digest, "source": self.sources.get(key, "")}
        if snapshot:
            tagged = self.attempt(put_snapshot, self.writer, self.target, repo, snapshot, tag_type, tag_body)
            if isinstance(tagged, CopyError):
                return self.said(key, {"status": "failed", "error": str(tagged)})
            result["snapshot"] = snapshot
        platforms = self.attempt(platforms_of, self.writer, self.target, repo, tag_document)
        result["platforms"] = [] if isinstance(platforms, CopyError) else platforms
        return self.said(key, result)

    def said(self, key: str, result: dict) -> dict:
        # The bytes so far first, so that the image's line shows them.
        self.progress.finish()
        self.progress.say("image {} {} {}".format(result["status"], key, result.get("error") or result.get("digest")))
        return result

    def blob(self, action: tuple) -> list:
        """Carry out one planned action (retried); the (repository, digest) pairs now stored."""
        kind, digest, first, rest = action
        into = [first] + rest if kind == "fetch" else rest
        done = []
        for repo in into:
            if kind == "fetch" and repo == first:
                outcome = self.attempt(self.transfer, digest, repo)
            else:
                outcome = self.attempt(self.mount, digest, repo, first)
            if isinstance(outcome, CopyError):
                # A blob that could not be fetched cannot be mounted either: each of its images fails.
                failed = rest if kind == "fetch" and repo == first else []
                with self.lock:
                    for where in [repo] + failed:
                        self.errors[(where, digest)] = str(outcome)
                if failed:
                    break
            else:
                done.append((repo, digest))
                self.progress.say("blob {} {}".format(digest, repo))
        return done

    def mount(self, digest: str, repo: str, holder: str) -> None:
        """Mount a stored blob into ``repo``; a registry that will not mount gets it streamed again."""
        location = start_upload(self.writer, self.target, repo, digest, holder)
        if location:
            self.transfer(digest, repo, location)
        else:
            with self.lock:
                self.mounted += 1

    def transfer(self, digest: str, repo: str, location: str = "") -> None:
        """Stream one blob from its source into ``repo``; what it sent is taken back if it fails."""
        sent = [0]

        def count(size: int) -> None:
            sent[0] += size
            self.progress.add(size)

        response = None
        try:
            if self.archive:
                chunks = self.archive.chunks(self.members.get(digest, ""))
            else:
                response = fetch(self.client, self.source, repo, digest)
                chunks = chunks_of(response, self.sizes[digest])
            upload(self.writer, self.target, repo, digest, self.sizes[digest], chunks, location, count)
        except BadDigest as error:
            self.progress.add(-sent[0])
            # An archive's bytes are what they are: reading them again gives the same wrong digest.
            raise BadDigest("{} in the archive".format(error) if self.archive else str(error), bool(self.archive))
        except BaseException:
            self.progress.add(-sent[0])
            raise
        finally:
            if response is not None:
                response.close()
        with self.lock:
            self.fetched += 1

    def attempt(self, action, *args):
        """``action(*args)``'s value, retried on transient errors; the last CopyError if it never worked."""
        return retried(action, args, self.retries, self.delay)

    def attempt_tag(self, image: dict):
        """An image only to tag (the registry holds it: ``present``) tagged; None for an image to copy."""
        if "present" not in image:
            return None
        found = self.attempt(snapshot_of_present, self.writer, self.target, image)
        if isinstance(found, CopyError):
            found = {"status": "failed", "error": str(found)}
        return self.said(image["repo"] + ":" + image["tag"], found)

    def attempt_resolve(self, image: dict):
        found = self.attempt(self.resolve, image)
        return str(found) if isinstance(found, CopyError) else found


def copy_answer(request: dict) -> dict:
    """The entry point on the host: ``{"copy": ...}`` -> ``{"images": [...], "fetched", "mounted", "bytes"}``."""
    return Copy(request).run()
