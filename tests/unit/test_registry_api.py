"""The registry programs the hosts run (payload), against a fake registry on loopback (no outside address)."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from fabfile import payload
from fabfile.images.prune_plan import Repository, plan_prune
from fabfile.payload import manifests, registry_client, registry_scan
from fabfile.payload.query import answer

IMAGE = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 1000,
        "digest": "sha256:c1",
    },
    "layers": [{"size": 20000, "digest": "sha256:l1"}, {"size": 3000, "digest": "sha256:l2"}],
}
ARM_IMAGE = {**IMAGE, "config": {"size": 10, "digest": "sha256:arm"}, "layers": []}


def digest(document: dict) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(document).encode()).hexdigest()


INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {"digest": digest(ARM_IMAGE), "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": digest(IMAGE), "platform": {"os": "linux", "architecture": "amd64"}},
    ],
}
REPOSITORIES = [f"openstack.kolla/service-{i:04}" for i in range(1500)]
ROBOT = "Basic " + base64.b64encode(b"org+robot:s3cret").decode()


class FakeRegistry(BaseHTTPRequestHandler):
    """/v2/ API: kolla/keystone:zed (image), kolla/nova:zed (index, behind a token), a paged catalog."""

    seen: ClassVar[list] = []
    # (server's base, path, Authorization) of every request that carried credentials.
    credentials: ClassVar[list] = []

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.answer(body=False)

    def do_GET(self):
        self.answer(body=True)

    def answer(self, body: bool):
        self.seen.append((self.command, self.path, self.headers.get("Accept", "")))
        if self.headers.get("Authorization", "").startswith("Basic "):
            self.credentials.append((self.server.base, self.path, self.headers["Authorization"]))
        path, _, query = self.path.partition("?")
        manifests = {
            "/v2/kolla/keystone/manifests/zed": IMAGE,
            "/v2/kolla/nova/manifests/zed": INDEX,
            f"/v2/kolla/nova/manifests/{digest(IMAGE)}": IMAGE,
            f"/v2/kolla/nova/manifests/{digest(ARM_IMAGE)}": ARM_IMAGE,
        }
        if path == "/token" and "private" in query:
            # A private upstream's token service wants the account's login.
            if self.headers.get("Authorization") != ROBOT:
                return self.send(401, {"errors": []}, body)
            return self.send(200, {"token": "pr1v4t3"}, body)
        if path == "/token":
            return self.send(200, {"token": "t0k3n"}, body)
        if path.startswith("/v2/private/") and self.headers.get("Authorization") != "Bearer pr1v4t3":
            challenge = f'Bearer realm="{self.server.realm}",service="fake"'
            return self.send(401, {"errors": []}, body, {"WWW-Authenticate": challenge})
        if path.startswith("/v2/basic/") and self.headers.get("Authorization") != ROBOT:
            return self.send(401, {"errors": []}, body, {"WWW-Authenticate": 'Basic realm="kolla-registry"'})
        if path in ("/v2/private/app/manifests/1", "/v2/basic/app/manifests/1"):
            extra = {"Docker-Content-Digest": digest(IMAGE), "Content-Type": IMAGE["mediaType"]}
            return self.send(200, IMAGE, body, extra)
        if path.startswith("/v2/kolla/nova/") and self.headers.get("Authorization") != "Bearer t0k3n":
            challenge = f'Bearer realm="{self.server.realm}",service="fake"'
            return self.send(401, {"errors": []}, body, {"WWW-Authenticate": challenge})
        if path == "/v2/":
            return self.send(200, {}, body, {"Docker-Distribution-API-Version": "registry/2.0"})
        if path in ("/v2/kolla/paged/tags/list", "/v2/kolla/broken/tags/list"):
            # Two pages; the second one of kolla/broken fails with an error document.
            if "last=" not in query:
                link = {"Link": f'<{path}?last=2&n=1000>; rel="next"'}
                return self.send(200, {"name": path[4:-10], "tags": ["1", "2"]}, body, link)
            if "broken" in path:
                return self.send(500, {"errors": [{"code": "UNKNOWN", "message": "storage"}]}, body)
            return self.send(200, {"name": path[4:-10], "tags": ["3"]}, body)
        if path == "/v2/_catalog":
            last = dict(part.split("=") for part in query.split("&")).get("last")
            start = REPOSITORIES.index(last) + 1 if last else 0
            page = REPOSITORIES[start : start + 1000]
            more = start + 1000 < len(REPOSITORIES)
            link = {"Link": f'</v2/_catalog?last={page[-1]}&n=1000>; rel="next"'} if more else {}
            return self.send(200, {"repositories": page}, body, link)
        if path in manifests:
            document = manifests[path]
            extra = {"Docker-Content-Digest": digest(document), "Content-Type": document["mediaType"]}
            return self.send(200, document, body, extra)
        return self.send(404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]}, body)

    def send(self, status: int, document: dict, body: bool, headers: dict | None = None):
        data = json.dumps(document).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


def serve(tls: tuple[str, str] | None = None, realm: str = ""):
    """The fake registry on loopback, over TLS with ``tls`` (certificate, key); its token service at
    ``realm`` (a base URL; default its own)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.base = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}"
    server.realm = f"{realm or server.base}/token"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop(server) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def registry():
    server = serve()
    yield server.base
    stop(server)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, and its key (made with openssl)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def secure_registry(certificate):
    """The fake registry over https, its token service on https too."""
    server = serve(certificate)
    yield server.base
    stop(server)


@pytest.mark.parametrize(
    "header, expected",
    [
        (
            'Bearer realm="https://quay.io/v2/auth",service="quay.io",scope="repository:a/b:pull"',
            {
                "scheme": "bearer",
                "realm": "https://quay.io/v2/auth",
                "service": "quay.io",
                "scope": "repository:a/b:pull",
            },
        ),
        ('Basic realm="Registry Realm"', {"scheme": "basic", "realm": "Registry Realm"}),
        ('Bearer realm="x", scope="a,b"', {"scheme": "bearer", "realm": "x", "scope": "a,b"}),
        ("", {"scheme": ""}),
    ],
)
def test_parse_challenge(header, expected):
    assert registry_client.parse_challenge(header) == expected


def test_pick_platform_takes_the_linux_image_of_this_architecture():
    assert manifests.pick_platform(INDEX, "arm64") == digest(ARM_IMAGE)
    assert manifests.pick_platform(INDEX, "s390x") == ""


def test_summary_is_the_config_digest_and_the_stored_size():
    assert manifests.summary(IMAGE) == {"config": "sha256:c1", "size": 24000}


@pytest.mark.parametrize(
    "link, expected",
    [
        ('</v2/_catalog?last=b&n=1000>; rel="next"', "http://r:5000/v2/_catalog?last=b&n=1000"),
        ('<https://other/v2/_catalog?last=b>; rel="next"', "https://other/v2/_catalog?last=b"),
        ("", ""),
    ],
)
def test_next_page(link, expected):
    assert registry_client.next_page("http://r:5000", link) == expected


def test_manifest_of_an_image_is_one_get_with_the_v2_and_list_types(registry):
    FakeRegistry.seen.clear()
    found = manifests.manifest(registry_client.Client(), registry, "kolla/keystone", "zed", "amd64")

    assert found == {
        "status": 200,
        "digest": digest(IMAGE),
        "media_type": IMAGE["mediaType"],
        "config": "sha256:c1",
        "size": 24000,
    }
    [(method, _, accept)] = FakeRegistry.seen
    assert method == "GET"
    assert "application/vnd.docker.distribution.manifest.v2+json" in accept
    assert "application/vnd.docker.distribution.manifest.list.v2+json" in accept


def test_manifest_list_behind_a_token_keeps_the_list_digest_and_this_platforms_config(registry):
    found = manifests.manifest(registry_client.Client(), registry, "kolla/nova", "zed", "amd64")

    assert found["status"] == 200
    assert found["digest"] == digest(INDEX)
    assert (found["config"], found["size"]) == ("sha256:c1", 24000)


def test_manifest_list_without_this_platform_is_an_error(registry):
    found = manifests.manifest(registry_client.Client(), registry, "kolla/nova", "zed", "s390x")

    assert found["error"] == "no linux/s390x image in the manifest list"


def test_missing_manifest_is_a_404(registry):
    assert manifests.manifest(registry_client.Client(), registry, "kolla/glance", "zed", "amd64") == {
        "status": 404,
        "digest": "",
        "error": "HTTP 404",
    }


def test_nothing_listening_is_status_0_with_the_reason():
    found = manifests.manifest(registry_client.Client(), "http://127.0.0.1:9", "kolla/glance", "zed", "amd64")

    assert found["status"] == 0
    assert "refused" in found["error"].lower()


def test_catalog_follows_every_page(registry):
    found = manifests.catalog(registry_client.Client(), registry)

    assert found["status"] == 200 and found["api"] == "registry/2.0"
    assert found["repositories"] == REPOSITORIES


def test_catalog_of_something_that_is_not_a_registry():
    found = manifests.catalog(registry_client.Client(), "http://127.0.0.1:9")

    assert found["repositories"] == [] and "error" in found


def test_the_script_sent_to_hosts_runs_under_sh_and_prints_one_json_answer(registry):
    request = {"manifests": [[registry, "kolla/keystone", "zed"], [registry, "kolla/glance", "zed"]]}
    done = subprocess.run(["sh", "-c", payload.script(request)], capture_output=True, text=True, check=True)

    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert [m["status"] for m in found["manifests"]] == [200, 404]
    assert payload.last_json(done.stdout) == found
    assert found == answer(request)


def test_the_program_reads_its_request_as_base64_json(registry):
    request = base64.b64encode(json.dumps({"catalog": registry}).encode()).decode()
    source = f"import base64, json\nREQUEST = {request!r}\n" + payload.program(payload.QUERY, "answer")
    done = subprocess.run(["python3", "-"], input=source, capture_output=True, text=True, check=True, timeout=60)

    assert len(json.loads(done.stdout)["repositories"]) == len(REPOSITORIES)


@pytest.mark.parametrize("repository", ["private/app", "basic/app"])
def test_a_login_opens_a_private_upstream_and_a_basic_registry_over_https(secure_registry, certificate, repository):
    registry, cafile = secure_registry, certificate[0]
    logins = [[registry, "org+robot", "s3cret"]]

    def status(client) -> int:
        return manifests.manifest(client, registry, repository, "1", "amd64")["status"]

    assert status(registry_client.Client(logins, cafile)) == 200
    assert status(registry_client.Client(None, cafile)) == 401
    assert status(registry_client.Client([["https://elsewhere", "org+robot", "s3cret"]], cafile)) == 401


@pytest.mark.parametrize("repository", ["private/app", "basic/app"])
def test_a_login_never_goes_over_plain_http(registry, repository):
    FakeRegistry.credentials.clear()
    client = registry_client.Client([[registry, "org+robot", "s3cret"]])

    assert manifests.manifest(client, registry, repository, "1", "amd64")["status"] == 401
    assert FakeRegistry.credentials == []  # neither to the registry (Basic) nor to its token service


def test_a_login_never_goes_to_a_plain_http_token_service(registry, certificate):
    # The registry speaks https, but its challenge names an http:// realm: the login would cross in the clear.
    server = serve(certificate, realm=registry)
    try:
        FakeRegistry.credentials.clear()
        client = registry_client.Client([[server.base, "org+robot", "s3cret"]], certificate[0])

        assert manifests.manifest(client, server.base, "private/app", "1", "amd64")["status"] == 401
        assert FakeRegistry.credentials == []
    finally:
        stop(server)


def test_the_request_travels_inside_the_script_never_as_an_argument(secure_registry, certificate):
    registry = secure_registry
    request = {
        "manifests": [[registry, "basic/app", "1"]],
        "logins": [[registry, "org+robot", "s3cret"]],
        "cafile": certificate[0],
    }
    script = payload.script(request)

    assert "python3 - <<" in script and "s3cret" not in script.split("<<", 1)[0]
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1])["manifests"][0]["status"] == 200


def test_a_tag_list_follows_every_page(registry):
    found = registry_scan.tag_list(registry_client.Client(), registry, "kolla/paged")

    assert (found["names"], found["error"]) == (["1", "2", "3"], "")


def test_a_tag_list_page_that_is_not_200_fails_the_repository_and_nothing_of_it_is_pruned(registry):
    found = registry_scan.tag_list(registry_client.Client(), registry, "kolla/broken")

    # Its error document has no tags: read as a page of none, two tags would look like all there is.
    assert found["error"] == "GET /v2/kolla/broken/tags/list: HTTP 500"
    tags = [{"tag": name, "digest": "sha256:" + name * 64, "created": ""} for name in found["names"]]
    repository = Repository.from_answer({"name": "kolla/broken", "tags": tags, "error": found["error"]})
    [plan] = plan_prune([repository], [], keep=0, every=True).repositories
    assert plan.deleted == () and plan.manifests == ()
    assert plan.message == "nothing deleted: GET /v2/kolla/broken/tags/list: HTTP 500"
