"""An export: images from a registry into an OCI image layout (a folder or a tar), each blob once.

Run on the operator's machine (``python3 -``, assembled like the programs sent
to hosts, after ocistore.py). Every image's manifests are resolved first, by
its locked digest where there is one (checked as it comes); then every blob
the layout lacks is fetched once, whichever images share it, and checked
against its digest; manifests are blobs too. ``index.json`` names each image
(``org.opencontainers.image.ref.name``: its upstream reference, and its
release's snapshot tag too) and is written last. Progress goes out as marks;
the answer is one JSON line. Standard library only, no f-strings.

A name whose manifest is Docker-typed (schema 2, or a Docker manifest list, as
the upstream serves it, its digest kept) points at a small OCI index instead,
written as a blob of its own: OCI readers (skopeo, containers/image) only look
at index.json entries typed as OCI manifests or indexes. The wrapper holds the
Docker manifest (or the list's entries, which skopeo can copy; a list inside an
index it cannot), and the index.json entry says which manifest it wraps
(``io.kolla-registry.wraps``: its digest), for sync-images --archive to import
the upstream's manifest and never the wrapper.
"""

# ruff: noqa: UP032 - str.format on purpose: f-strings need Python 3.6 on the host

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from .blobcopy import (  # dropped on the host: defined above
    CopyError,
    blob_descriptors,
    chunks_of,
    digest_of,
    fetch,
    get_manifest,
    is_list,
    media_type_of,
    retried,
    select_platforms,
)
from .manifests import platform_text, platforms_of  # dropped on the host: defined above
from .ocistore import FolderLayout, TarLayout  # dropped on the host: defined above
from .progress import Progress  # dropped on the host: defined above
from .registry_client import ACCEPT, IMAGE_TYPES, LIST_TYPES, Client  # dropped on the host: defined above

NAME = "org.opencontainers.image.ref.name"
# On an index.json entry that names a wrapper: the digest of the manifest it wraps.
WRAPS = "io.kolla-registry.wraps"
RETRY_DELAY = 5


class Export:
    """``{"export": {"to", "tar", "source", "images": [{"repo", "tag", "reference", "expect", "names"}],
    "platforms", "workers", "retries", "limits", "files": {NAME: TEXT}}, "logins"}``."""

    def __init__(self, request: dict, out=None) -> None:
        job = request["export"]
        self.progress = Progress(out)
        self.client = Client(request.get("logins"), "", job.get("limits"), self.progress.waiting)
        self.source, self.images = job["source"], job["images"]
        self.platforms = job.get("platforms") or []
        self.workers = max(1, int(job.get("workers") or 4))
        self.retries = max(0, int(job.get("retries") or 0))
        self.delay = float(job.get("retry_delay", RETRY_DELAY))
        self.files = job.get("files") or {}
        self.layout = (TarLayout if job.get("tar") else FolderLayout)(job["to"])
        self.fetched = self.kept = 0
        self.lock = threading.Lock()

    def run(self) -> dict:
        """Resolve, fetch what the layout lacks, write the index; one result per image."""
        results, resolved = {}, {}
        try:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                for image, found in zip(self.images, pool.map(self.attempt_resolve, self.images)):
                    key = image["repo"] + ":" + image["tag"]
                    if isinstance(found, str):
                        results[key] = self.said(key, {"status": "failed", "error": found})
                    else:
                        resolved[key] = found
            blobs = self.blobs(resolved)
            missing = [blob for blob in blobs.values() if not self.layout.has(blob["digest"], blob["size"])]
            self.kept = len(blobs) - len(missing)
            self.progress.total = sum(blob["size"] for blob in missing if "body" not in blob)
            self.progress.say("plan {} {} {} {}".format(self.progress.total, len(missing), 0, self.kept))
            errors = self.fetch_all(missing)
            for key, found in resolved.items():
                results[key] = self.result(key, found, errors)
            self.layout.finish(self.index(resolved, results), {name: text.encode() for name, text in self.files.items()})
        finally:
            self.layout.close()
        self.progress.finish()
        answers = [dict(results[i["repo"] + ":" + i["tag"]], repo=i["repo"], tag=i["tag"]) for i in self.images]
        counts = {"images": answers, "fetched": self.fetched, "kept": self.kept, "bytes": self.progress.done}
        return dict(counts, **self.client.waits.said())

    def resolve(self, image: dict) -> dict:
        """The image's manifests (the tag's last) as they will be in the layout, its source digest, its platforms."""
        repo = image["repo"]
        body, media_type, document = get_manifest(self.client, self.source, repo, image.get("reference") or image["tag"], ACCEPT)
        source, children = digest_of(body), []
        if is_list(document, media_type):
            chosen = select_platforms(document, self.platforms)
            if chosen is None:
                raise CopyError("no {} image in the manifest list".format(" or ".join(self.platforms)), True)
            for entry in chosen["manifests"]:
                child, child_type, child_document = get_manifest(self.client, self.source, repo, entry["digest"], ACCEPT)
                children.append((child_type, child, child_document))
            if chosen is not document:
                body, document = json.dumps(chosen, indent=3).encode(), chosen
        if image.get("expect") and digest_of(body) != image["expect"]:
            raise CopyError("{} would be {}, not the locked {}".format(repo, digest_of(body), image["expect"]), True)
        found = {"image": image, "top": (media_type, body, document), "children": children, "source": source}
        return dict(found, wrapper=wrapper_of(media_type, body, document))

    def blobs(self, resolved: dict) -> dict:
        """Every blob once: {digest: {"digest", "size", "repo", "body" (a manifest's bytes)}}."""
        found = {}
        for item in resolved.values():
            repo = item["image"]["repo"]
            for _, body, document in item["children"] + [item["top"]]:
                found.setdefault(digest_of(body), {"digest": digest_of(body), "size": len(body), "repo": repo, "body": body})
                for blob in [] if is_list(document) else blob_descriptors(document):
                    found.setdefault(blob["digest"], {"digest": blob["digest"], "size": int(blob.get("size") or 0), "repo": repo})
            if item["wrapper"] is not None:
                body = item["wrapper"]
                found.setdefault(digest_of(body), {"digest": digest_of(body), "size": len(body), "repo": repo, "body": body})
        return found

    def fetch_all(self, missing: list) -> dict:
        """Fetch each missing blob (``workers`` at once into a folder, one at a time into a tar); {digest: error}."""
        errors = {}

        def one(blob: dict) -> None:
            outcome = self.attempt(self.fetch_one, blob)
            if isinstance(outcome, CopyError):
                with self.lock:
                    errors[blob["digest"]] = str(outcome)
            elif "body" not in blob:
                with self.lock:
                    self.fetched += 1
                self.progress.say("blob {} {}".format(blob["digest"], blob["repo"]))

        with ThreadPoolExecutor(max_workers=self.workers if self.layout.parallel else 1) as pool:
            list(pool.map(one, sorted(missing, key=lambda blob: -blob["size"])))
        return errors

    def fetch_one(self, blob: dict) -> None:
        if "body" in blob:
            self.layout.put(blob["digest"], blob["size"], [blob["body"]])
            return
        sent = [0]

        def count(size: int) -> None:
            sent[0] += size
            self.progress.add(size)

        response = fetch(self.client, self.source, blob["repo"], blob["digest"])
        try:
            self.layout.put(blob["digest"], blob["size"], chunks_of(response, blob["size"]), count)
        except BaseException:
            self.progress.add(-sent[0])
            raise
        finally:
            response.close()

    def result(self, key: str, item: dict, errors: dict) -> dict:
        """An image's answer: exported, or the first of its blobs that failed."""
        wanted = [digest_of(body) for _, body, _ in item["children"] + [item["top"]]]
        wanted += [digest_of(item["wrapper"])] if item["wrapper"] is not None else []
        for _, _, document in item["children"] + [item["top"]]:
            wanted += [blob["digest"] for blob in ([] if is_list(document) else blob_descriptors(document))]
        failed = [errors[digest] for digest in wanted if digest in errors]
        if failed:
            return self.said(key, {"status": "failed", "error": failed[0]})
        _, body, document = item["top"]
        sizes = {blob["digest"]: int(blob.get("size") or 0) for _, _, doc in item["children"] + [item["top"]]
                 for blob in ([] if is_list(doc) else blob_descriptors(doc))}
        found = {"status": "exported", "digest": digest_of(body), "source": item["source"], "size": sum(sizes.values())}
        return self.said(key, dict(found, platforms=self.platforms_of(document)))

    def platforms_of(self, document: dict) -> list:
        """The platforms of an exported image: a list's entries', or its config's, read from the layout."""
        if is_list(document):
            return platforms_of(None, "", "", document)
        try:
            config = json.loads(self.layout.read(document["config"]["digest"]).decode())
        except (OSError, KeyError, ValueError, TypeError):
            return []
        if not isinstance(config, dict) or not config.get("os") or not config.get("architecture"):
            return []
        return [platform_text(config)]

    def index(self, resolved: dict, results: dict) -> dict:
        """index.json: a descriptor per name of each exported image (of its wrapper, for a Docker-typed one)."""
        manifests = []
        for key, item in sorted(resolved.items()):
            if results[key].get("status") != "exported":
                continue
            media_type, body, _ = item["top"]
            marks = {}
            if item["wrapper"] is not None:
                media_type, marks, body = LIST_TYPES[1], {WRAPS: digest_of(body)}, item["wrapper"]
            for name in item["image"].get("names") or []:
                annotations = dict(marks, **{NAME: name})
                manifests.append({"mediaType": media_type, "digest": digest_of(body), "size": len(body), "annotations": annotations})
        return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}

    def said(self, key: str, result: dict) -> dict:
        self.progress.finish()
        self.progress.say("image {} {} {}".format(result["status"], key, result.get("error") or result.get("digest")))
        return result

    def attempt(self, action, *args):
        """``action(*args)``'s value, retried on transient errors (a failed read or a bad answer too)."""
        return retried(action, args, self.retries, self.delay, (OSError, ValueError))
        return CopyError("no attempt made")

    def attempt_resolve(self, image: dict):
        found = self.attempt(self.resolve, image)
        return str(found) if isinstance(found, CopyError) else found


def wrapper_of(media_type: str, body: bytes, document: dict):
    """The OCI index that stands for a Docker-typed manifest in index.json (bytes, the same on every run); None
    for an OCI one. A Docker image's wrapper lists it, without a platform (a reader takes it whatever its own);
    a Docker manifest list's lists the list's entries as they are (platforms included)."""
    kind = media_type_of(document, media_type)
    if kind == LIST_TYPES[0]:
        entries = document.get("manifests") or []
    elif kind == IMAGE_TYPES[0]:
        entries = [{"mediaType": kind, "digest": digest_of(body), "size": len(body)}]
    else:
        return None
    wrapper = {"schemaVersion": 2, "mediaType": LIST_TYPES[1], "manifests": entries}
    return (json.dumps(wrapper, indent=2, sort_keys=True) + "\n").encode()


def export_answer(request: dict) -> dict:
    """The entry point: ``{"export": ...}`` -> ``{"images": [...], "fetched", "kept", "bytes"}``."""
    return Export(request).run()
