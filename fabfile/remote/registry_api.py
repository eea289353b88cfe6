"""The registry HTTP API, asked from a host: this file runs there as ``python3 -``.

The upstream and the local registry must answer the deployment host (or a
node), not this machine, so the questions are asked from there: the tasks
send this module's source over SSH with a base64 JSON request, and it prints
one JSON answer. Standard library only, and no syntax newer than Python 3.4
(no f-strings), so that any host that runs Docker can run it.
"""

# ruff: noqa: UP032 - str.format on purpose: f-strings need Python 3.6 on the host

import base64
import hashlib
import json
import platform
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

IMAGE_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
LIST_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
# Without these, a registry answers with the schema 1 manifest and its digest.
ACCEPT = ", ".join(IMAGE_TYPES + LIST_TYPES)
ARCHITECTURES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}
TIMEOUT = 20
WORKERS = 8
# The most a registry:2 lists in one page of its catalog.
PAGE = 1000


def parse_challenge(header: str) -> dict:
    """``Bearer realm="https://x/auth",service="x"`` -> {"scheme": "bearer", "realm": ..., ...}."""
    scheme, _, rest = (header or "").strip().partition(" ")
    found = {"scheme": scheme.lower()}
    key, value, quoted, i = "", "", False, 0
    reading_key = True
    while i < len(rest):
        char = rest[i]
        if reading_key:
            if char == "=":
                reading_key = False
            elif char not in ", ":
                key += char
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            found[key.lower()] = value
            key, value, reading_key = "", "", True
        else:
            value += char
        i += 1
    if key:
        found[key.lower()] = value
    return found


def pick_platform(index: dict, architecture: str) -> str:
    """The digest of the linux/``architecture`` image in a manifest list, or ""."""
    for entry in index.get("manifests") or []:
        wanted = entry.get("platform") or {}
        if wanted.get("os") == "linux" and wanted.get("architecture") == architecture:
            return entry.get("digest", "")
    return ""


def summary(manifest: dict) -> dict:
    """An image manifest's config digest and its size: config and layers, as stored."""
    config = manifest.get("config") or {}
    layers = manifest.get("layers") or []
    size = (config.get("size") or 0) + sum(layer.get("size") or 0 for layer in layers)
    return {"config": config.get("digest", ""), "size": size}


class Client:
    """HTTP with the bearer tokens registries (quay.io) ask for, anonymous or with a login, basic
    logins, and an extra CA. ``logins``: [[BASE, USER, PASSWORD], ...] (the local registry's, a
    private upstream's); ``cafile``: the local registry's CA."""

    def __init__(self, logins=None, cafile="") -> None:
        self.tokens = {}
        # The Authorization that opened (registry, repository) once: sent up front from then on,
        # so that an upload's streamed body (which cannot be sent twice) never meets a 401.
        self.granted = {}
        self.logins = logins or []
        self.context = ssl.create_default_context()
        if cafile:
            try:
                self.context.load_verify_locations(cafile)
            except (OSError, ssl.SSLError):
                pass
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.context))

    def request(
        self, method: str, url: str, accept: str = "", repository: str = "", data=None, headers=None, stream=False
    ) -> tuple:
        """(status, lowercase headers, body); status 0 when nothing answered. With ``stream``, the
        body of a 2xx answer is the open response (the caller reads and closes it)."""
        key = (url.split("/v2/", 1)[0], repository)
        sent = self.granted.get(key, "")
        status, headers_in, body = self._send(method, url, accept, sent, data, headers, stream)
        if status != 401 or not (data is None or isinstance(data, bytes)):
            return status, headers_in, body
        challenge = parse_challenge(headers_in.get("www-authenticate", ""))
        authorization = ""
        if challenge["scheme"] == "bearer" and challenge.get("realm"):
            token = self.token(challenge, repository, self.basic(url))
            authorization = "Bearer " + token if token else ""
        elif challenge["scheme"] == "basic":
            authorization = self.basic(url)
        if authorization and authorization != sent:
            self.granted[key] = authorization
            status, headers_in, body = self._send(method, url, accept, authorization, data, headers, stream)
        return status, headers_in, body

    def basic(self, url: str) -> str:
        """The Basic authorization for ``url``'s registry, or ""."""
        for base, user, password in self.logins:
            if url.startswith(base + "/") and password:
                return "Basic " + base64.b64encode("{}:{}".format(user, password).encode()).decode()
        return ""

    def token(self, challenge: dict, repository: str, basic: str = "") -> str:
        scope = challenge.get("scope") or ("repository:{}:pull".format(repository) if repository else "")
        key = (challenge["realm"], challenge.get("service", ""), scope)
        if key not in self.tokens:
            query = {name: value for name, value in (("service", key[1]), ("scope", scope)) if value}
            url = challenge["realm"] + ("?" + urllib.parse.urlencode(query) if query else "")
            status, _, body = self._send("GET", url, "", basic)
            try:
                answer = json.loads(body.decode()) if status == 200 else {}
            except ValueError:
                answer = {}
            self.tokens[key] = answer.get("token") or answer.get("access_token") or ""
        return self.tokens[key]

    def _send(self, method: str, url: str, accept: str, authorization: str, data=None, headers=None, stream=False):
        request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if accept:
            request.add_header("Accept", accept)
        if authorization:
            # Unredirected: a blob GET is often redirected to a signed CDN or S3 address, which
            # refuses a second credential (Docker drops it there too).
            request.add_unredirected_header("Authorization", authorization)
        try:
            response = self.opener.open(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as error:
            # The registry's error document says why (DIGEST_INVALID, BLOB_UNKNOWN, ...).
            return error.code, _lower(error.headers), _error_body(error)
        except Exception as error:  # noqa: BLE001 - any failure to connect is an answer: nothing answered
            return 0, {"x-error": str(getattr(error, "reason", error))}, b""
        if stream:
            return response.status, _lower(response.headers), response
        with response:
            return response.status, _lower(response.headers), response.read()


def manifest(client: Client, base: str, repository: str, tag: str, architecture: str) -> dict:
    """What a registry holds for ``repository:tag``: digest (HEAD), config and size (GET)."""
    url = "{}/v2/{}/manifests/{}".format(base, repository, tag)
    status, headers, _ = client.request("HEAD", url, ACCEPT, repository)
    result = {"status": status, "digest": headers.get("docker-content-digest", "")}
    if status != 200:
        result["error"] = headers.get("x-error") or "HTTP {}".format(status)
        return result
    status, headers, body = client.request("GET", url, ACCEPT, repository)
    try:
        document = json.loads(body.decode()) if status == 200 else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        result["error"] = "GET {}: no manifest (HTTP {})".format(url, status)
        return result
    result["digest"] = result["digest"] or "sha256:" + hashlib.sha256(body).hexdigest()
    media_type = document.get("mediaType") or headers.get("content-type", "")
    result["media_type"] = media_type
    if media_type in LIST_TYPES or "manifests" in document:
        child = pick_platform(document, architecture)
        if not child:
            result["error"] = "no linux/{} image in the manifest list".format(architecture)
            return result
        url = "{}/v2/{}/manifests/{}".format(base, repository, child)
        status, _, body = client.request("GET", url, ACCEPT, repository)
        try:
            document = json.loads(body.decode()) if status == 200 else {}
        except ValueError:
            document = {}
    result.update(summary(document))
    return result


def catalog(client: Client, base: str) -> dict:
    """Whether ``base`` answers as a registry, and the repositories it lists."""
    status, headers, _ = client.request("GET", base + "/v2/")
    api = headers.get("docker-distribution-api-version", "")
    result = {"status": status, "api": api, "repositories": []}
    if not api.startswith("registry/2"):
        result["error"] = headers.get("x-error") or "HTTP {}, not a registry".format(status)
        return result
    url = base + "/v2/_catalog?n={}".format(PAGE)
    while url:
        status, headers, body = client.request("GET", url)
        try:
            if status != 200:
                raise ValueError(status)
            result["repositories"] += json.loads(body.decode()).get("repositories") or []
        except (ValueError, AttributeError):
            result["error"] = "GET /v2/_catalog: HTTP {}".format(status)
            break
        url = next_page(base, headers.get("link", ""))
    return result


def next_page(base: str, link: str) -> str:
    """The next page's URL from a ``Link: </v2/_catalog?last=x&n=1000>; rel="next"`` header, or ""."""
    if 'rel="next"' not in link or "<" not in link:
        return ""
    target = link[link.index("<") + 1 : link.index(">")]
    return target if "://" in target else base + target


def answer(request: dict) -> dict:
    """``{"catalog": BASE}`` or ``{"manifests": [[BASE, REPOSITORY, TAG], ...]}``, maybe logins and a CA."""
    client = Client(request.get("logins"), request.get("cafile", ""))
    if "scan" in request or "delete" in request:
        return prune_answer(client, request)
    if "catalog" in request:
        return catalog(client, request["catalog"])
    machine = platform.machine()
    architecture = request.get("architecture") or ARCHITECTURES.get(machine, machine)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        found = pool.map(
            lambda item: manifest(client, item[0], item[1], item[2], architecture), request["manifests"]
        )
        return {"manifests": list(found)}


def _error_body(error) -> bytes:
    try:
        with error:
            return error.read(4096)
    except (OSError, AttributeError, ValueError):
        return b""


# --- prune-registry: every tag's image, and deletes by digest -------------------------------------
# Apart from the copy side above, so that either can change alone.

SCHEMA1_TYPES = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)


def prune_answer(client: Client, request: dict) -> dict:
    """``{"scan": BASE}``: every repository's tags and what each points at;
    ``{"delete": [[BASE, REPOSITORY, DIGEST], ...]}``: each manifest deleted, or why not."""
    if "delete" in request:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            return {"deleted": list(pool.map(lambda item: delete(client, *item), request["delete"]))}
    machine = platform.machine()
    return scan(client, request["scan"], request.get("architecture") or ARCHITECTURES.get(machine, machine))


def scan(client: Client, base: str, architecture: str) -> dict:
    """The catalog, then each repository's tags, each tag's digest, kind, created time and blobs."""
    found = catalog(client, base)
    if found.get("error"):
        return {"error": found["error"], "repositories": []}
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        listed = list(pool.map(lambda name: tag_list(client, base, name), found["repositories"]))
        work = [(entry, tag) for entry in listed for tag in entry.pop("names")]
        described = list(
            pool.map(lambda item: described_tag(client, base, item[0]["name"], item[1], architecture), work)
        )
    for (entry, _), tag in zip(work, described):
        entry["tags"].append(tag)
    return {"repositories": listed}


def tag_list(client: Client, base: str, repository: str) -> dict:
    """``{"name", "names": [TAG, ...], "tags": [], "error"}``, every page of the tag list."""
    entry = {"name": repository, "names": [], "tags": [], "error": ""}
    url = "{}/v2/{}/tags/list?n={}".format(base, repository, PAGE)
    while url:
        status, headers, body = client.request("GET", url, "", repository)
        try:
            entry["names"] += json.loads(body.decode()).get("tags") or []
        except (ValueError, AttributeError):
            entry["error"] = "GET /v2/{}/tags/list: {}".format(
                repository, headers.get("x-error") or "HTTP {}".format(status)
            )
            break
        url = next_page(base, headers.get("link", ""))
    return entry


def described_tag(client: Client, base: str, repository: str, tag: str, architecture: str) -> dict:
    """One tag: its manifest's digest and media type, its platform manifests (a list's), its blobs
    ([[DIGEST, SIZE], ...]) and when its image was made (the config's ``created``), or an error."""
    result = {
        "tag": tag,
        "digest": "",
        "media_type": "",
        "children": [],
        "blobs": [],
        "created": "",
        "error": "",
    }
    document, digest, media_type, error = fetch_manifest(client, base, repository, tag)
    if error:
        result["error"] = error
        return result
    result.update(digest=digest, media_type=media_type)
    if media_type in LIST_TYPES or "manifests" in document:
        result["children"] = [entry.get("digest", "") for entry in document.get("manifests") or []]
        chosen = pick_platform(document, architecture) or (result["children"] or [""])[0]
        for child in result["children"]:
            child_document, _, _, error = fetch_manifest(client, base, repository, child)
            if error:
                result["error"] = "{} of {}: {}".format(child, tag, error)
                return result
            result["blobs"] += image_blobs(child_document)
            if child == chosen:
                result["created"] = created(client, base, repository, child_document)
        return result
    result["blobs"] = image_blobs(document)
    result["created"] = created(client, base, repository, document)
    return result


def fetch_manifest(client: Client, base: str, repository: str, reference: str) -> tuple:
    """(document, digest, media type, error) of one manifest, as the registry stores it."""
    url = "{}/v2/{}/manifests/{}".format(base, repository, reference)
    status, headers, body = client.request("GET", url, ACCEPT + ", " + ", ".join(SCHEMA1_TYPES), repository)
    try:
        document = json.loads(body.decode()) if status == 200 else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return {}, "", "", "GET {}: {}".format(url, headers.get("x-error") or "HTTP {}".format(status))
    digest = headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest()
    media_type = document.get("mediaType") or headers.get("content-type", "").split(";")[0]
    return document, digest, media_type, ""


def image_blobs(document: dict) -> list:
    """An image manifest's config and layers as [[DIGEST, SIZE], ...] (schema 1: layers, size 0)."""
    config = document.get("config") or {}
    blobs = [config] if config.get("digest") else []
    blobs += document.get("layers") or []
    found = [[blob.get("digest", ""), blob.get("size") or 0] for blob in blobs]
    found += [[layer.get("blobSum", ""), 0] for layer in document.get("fsLayers") or []]
    return [blob for blob in found if blob[0]]


def created(client: Client, base: str, repository: str, document: dict) -> str:
    """When the image was made: its config's ``created`` (schema 1: its newest history entry's), or ""."""
    history = document.get("history") or []
    if history and isinstance(history[0], dict) and "v1Compatibility" in history[0]:
        try:
            return json.loads(history[0]["v1Compatibility"]).get("created") or ""
        except ValueError:
            return ""
    digest = (document.get("config") or {}).get("digest")
    if not digest:
        return ""
    status, _, body = client.request(
        "GET", "{}/v2/{}/blobs/{}".format(base, repository, digest), "", repository
    )
    try:
        config = json.loads(body.decode()) if status == 200 else {}
    except ValueError:
        config = {}
    return (config.get("created") or "") if isinstance(config, dict) else ""


def delete(client: Client, base: str, repository: str, digest: str) -> dict:
    """DELETE one manifest by digest: 202 deleted, 404 already gone, 405 deletes are off."""
    url = "{}/v2/{}/manifests/{}".format(base, repository, digest)
    status, headers, _ = client.request("DELETE", url, "", repository)
    result = {"status": status, "error": ""}
    if status == 405:
        result["error"] = "the registry does not allow deletes (storage.delete is off)"
    elif status not in (200, 202, 404):
        result["error"] = "DELETE {}: {}".format(url, headers.get("x-error") or "HTTP {}".format(status))
    return result


def _lower(headers: object) -> dict:
    return {key.lower(): value for key, value in (headers.items() if headers else [])}


if __name__ == "__main__":
    # The request comes inside the script (on stdin), never on the command line: it may hold a login.
    print(json.dumps(answer(json.loads(base64.b64decode(globals().get("REQUEST") or sys.argv[1]).decode()))))
