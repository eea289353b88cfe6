"""A tiny loopback proxy in front of a real registry that plays a busy upstream: it answers some requests
``429 Too Many Requests`` with ``Retry-After``, forwards the rest, and counts the requests in flight."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 1 << 16
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


class Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.forward()

    def do_GET(self):
        self.forward()

    def forward(self):
        """Refuse or forward one request. It counts as in flight from its arrival until its answer's headers
        are sent: a client cannot have let go of its place before then, whatever the timing of the body."""
        proxy: BusyUpstream = self.server.proxy
        refused = proxy.enter(self.command, self.path)
        left = False
        try:
            if refused is not None:
                self.send_response(429)
                self.send_header("Retry-After", refused)
                self.send_header("Content-Length", "0")
                proxy.leave()
                left = True
                self.end_headers()
                return
            upstream = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            upstream.request(self.command, self.path, headers=headers)
            answer = upstream.getresponse()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            proxy.leave()
            left = True
            self.end_headers()
            while self.command != "HEAD":
                chunk = answer.read(CHUNK)
                if not chunk:
                    break
                self.wfile.write(chunk)
            upstream.close()
        finally:
            if not left:
                proxy.leave()


class BusyUpstream:
    """``refuse(method, path, count)`` says which requests get a 429 (its Retry-After text) or None."""

    def __init__(self, port: int, refuse: Callable[[str, str, int], str | None]) -> None:
        self.port = port
        self.refuse = refuse
        self.lock = threading.Lock()
        self.seen = self.refused = self.in_flight = self.busiest = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.server.proxy = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"

    def enter(self, method: str, path: str) -> str | None:
        with self.lock:
            self.seen += 1
            self.in_flight += 1
            self.busiest = max(self.busiest, self.in_flight)
            refused = self.refuse(method, path, self.seen)
            self.refused += refused is not None
            return refused

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
