"""The registry HTTP client every program sent to a host shares: bearer tokens, logins, an extra CA.

The programs in this package run on the deployment host (or a node) as
``python3 -``, assembled by ``payload.program``: standard library only, and no
syntax newer than Python 3.4 (no f-strings), so that any host running Docker
runs them. Each answers with one JSON line.
"""

# ruff: noqa: UP032 - str.format on purpose: f-strings need Python 3.6 on the host

import base64
import http.client
import json
import platform
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request

from .polite import (  # dropped on the host: defined above
    TOO_MANY,
    WAITS,
    Gates,
    Held,
    Waits,
    retry_after,
    wait_for,
)

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
SCHEMA1_TYPES = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
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


class LazyTLS(urllib.request.HTTPSHandler):
    """urllib's HTTPS with the client's context, asked for when an https request is made. Its base's
    ``__init__`` is skipped on purpose: from Python 3.12 on it makes a default context at once."""

    def __init__(self, client) -> None:
        urllib.request.AbstractHTTPHandler.__init__(self)
        self.client = client

    def https_open(self, req):
        return self.do_open(http.client.HTTPSConnection, req, context=self.client.tls())


class Client:
    """HTTP with the bearer tokens registries (quay.io) ask for, anonymous or with a login, basic
    logins, and an extra CA. ``logins``: [[BASE, USER, PASSWORD], ...] (the local registry's, a
    private upstream's); ``cafile``: the local registry's CA (or a list of the places it may be);
    ``limits``: {HOST: N} requests in flight at most per upstream host; ``on_wait(seconds, host,
    status, asked)`` hears of each 429 waited out (see polite.py)."""

    def __init__(self, logins=None, cafile="", limits=None, on_wait=None) -> None:
        self.gates = Gates(limits)
        self.waits = Waits(on_wait)
        self.tokens = {}
        # The Authorization that opened (registry, repository) once: sent up front from then on,
        # so that an upload's streamed body (which cannot be sent twice) never meets a 401.
        self.granted = {}
        self.logins = logins or []
        self.cafile = cafile
        self.context = None
        self.context_made = threading.Lock()
        self.opener = urllib.request.build_opener(LazyTLS(self))

    def tls(self):
        """The TLS context: the system's CAs and the local registry's, loaded on the first https request
        (~20 ms of every program, which a registry over plain HTTP never needs)."""
        with self.context_made:
            if self.context is None:
                context = ssl.create_default_context()
                for path in [self.cafile] if isinstance(self.cafile, str) else self.cafile or []:
                    try:
                        context.load_verify_locations(path)
                    except (OSError, ssl.SSLError):
                        pass  # not on this host: the others, and the system's
                self.context = context
            return self.context

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
            # The login goes to the token service only over https (the realm names any address).
            secure = challenge["realm"].lower().startswith("https://")
            token = self.token(challenge, repository, self.basic(url) if secure else "")
            authorization = "Bearer " + token if token else ""
        elif challenge["scheme"] == "basic":
            authorization = self.basic(url)
        if authorization and authorization != sent:
            self.granted[key] = authorization
            status, headers_in, body = self._send(method, url, accept, authorization, data, headers, stream)
        return status, headers_in, body

    def basic(self, url: str) -> str:
        """The Basic authorization for ``url``'s registry, or "": credentials go over https only."""
        if not url.lower().startswith("https://"):
            return ""
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
        """One request through its host's gate; a 429 waited out and sent again while its body can be."""
        attempt = 0
        while True:
            place = self.gates.enter(url)
            status, found, body = self._open(method, url, accept, authorization, data, headers, stream)
            if stream and 200 <= status < 300 and place is not None:
                return status, found, Held(body, self.gates, place)
            self.gates.leave(place)
            # A streamed upload's body went with the first try: it cannot be sent again.
            resendable = data is None or isinstance(data, bytes)
            if status != TOO_MANY or attempt >= WAITS or not resendable:
                return status, found, body
            asked = retry_after(found.get("retry-after"))
            self.waits.wait(wait_for(attempt, asked), url, status, asked)
            attempt += 1

    def _open(self, method: str, url: str, accept: str, authorization: str, data=None, headers=None, stream=False):
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


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket: a registry only root on this host can reach."""

    def __init__(self, path: str, timeout: int = TIMEOUT) -> None:
        http.client.HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class UnixClient(Client):
    """The client of a registry listening on the unix socket ``path`` (its URLs' host is ignored): no
    login, no TLS, since the socket itself is the access control."""

    def __init__(self, path: str) -> None:
        Client.__init__(self)
        self.path = path

    def _send(self, method: str, url: str, accept: str, authorization: str, data=None, headers=None, stream=False):
        target = "/" + url.split("://", 1)[-1].split("/", 1)[-1]
        sent = dict(headers or {})
        if accept:
            sent["Accept"] = accept
        connection = UnixConnection(self.path)
        try:
            connection.request(method, target, body=data, headers=sent)
            response = connection.getresponse()
            return response.status, _lower(response.headers), response.read()
        except Exception as error:  # noqa: BLE001 - any failure to connect is an answer: nothing answered
            return 0, {"x-error": str(error)}, b""
        finally:
            connection.close()


def host_architecture(request: dict) -> str:
    """The architecture a request asks for, else this host's (as manifest lists name it)."""
    machine = platform.machine()
    return request.get("architecture") or ARCHITECTURES.get(machine, machine)


def next_page(base: str, link: str) -> str:
    """The next page's URL from a ``Link: </v2/_catalog?last=x&n=1000>; rel="next"`` header, or ""."""
    if 'rel="next"' not in link or "<" not in link:
        return ""
    target = link[link.index("<") + 1 : link.index(">")]
    return target if "://" in target else base + target


def _error_body(error) -> bytes:
    try:
        with error:
            return error.read(4096)
    except (OSError, AttributeError, ValueError):
        return b""


def _lower(headers: object) -> dict:
    return {key.lower(): value for key, value in (headers.items() if headers else [])}
