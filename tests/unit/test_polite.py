"""Polite to upstreams: 429 with Retry-After waited out, backoff with jitter, requests in flight capped."""

from __future__ import annotations

import email.utils
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fabfile import payload
from fabfile.images.model import Image, Synced
from fabfile.images.sync_report import Watch
from fabfile.model.marks import MARK
from fabfile.payload import polite
from fabfile.payload.registry_client import Client


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0", 0.0), ("", None), ("soon", None), (None, None)],
)
def test_retry_after_in_seconds(header, expected):
    assert polite.retry_after(header) == expected


def test_retry_after_as_an_http_date_counts_from_now():
    now = time.time()
    header = email.utils.formatdate(now + 30, usegmt=True)

    assert 28 <= polite.retry_after(header, now) <= 30
    assert polite.retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0


def test_a_wait_honours_what_the_upstream_asks_plus_jitter_never_less():
    assert polite.wait_for(0, 10, rand=lambda: 0.0) == 10
    assert polite.wait_for(0, 10, rand=lambda: 1.0) == 10 + 2.5 + 0.25
    # An absurd Retry-After is capped: a wait is bounded.
    assert polite.wait_for(0, 10_000, rand=lambda: 0.0) == polite.MAX_WAIT


def test_without_retry_after_the_backoff_doubles_with_full_jitter():
    lows = [polite.wait_for(attempt, None, rand=lambda: 0.0) for attempt in range(4)]
    highs = [polite.wait_for(attempt, None, rand=lambda: 1.0) for attempt in range(4)]

    assert lows == [0.5, 1.0, 2.0, 4.0]
    assert highs == [1.0, 2.0, 4.0, 8.0]
    assert polite.wait_for(20, None, rand=lambda: 1.0) == polite.MAX_WAIT


class Busy(BaseHTTPRequestHandler):
    """Answers 429 (with the server's Retry-After, if any) to the first ``server.refusals`` requests, then
    200 slowly; counts the requests in flight."""

    def log_message(self, *args):
        pass

    def do_PATCH(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def do_GET(self):
        server = self.server
        with server.lock:
            server.seen += 1
            refuse = server.seen <= server.refusals
            server.in_flight += 1
            server.busiest = max(server.busiest, server.in_flight)
        try:
            if refuse:
                self.send_response(429)
                if server.retry_after is not None:
                    self.send_header("Retry-After", server.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            time.sleep(server.pause)
            body = b"x" * 100
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.in_flight -= 1


@pytest.fixture
def busy():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    server.lock = threading.Lock()
    server.seen = server.in_flight = server.busiest = 0
    server.refusals, server.retry_after, server.pause = 0, "0", 0.0
    server.base = f"http://127.0.0.1:{server.server_port}"
    server.host = f"127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_429_with_retry_after_is_waited_out_and_said(busy):
    busy.refusals, busy.retry_after = 2, "1"
    heard = []
    client = Client(on_wait=lambda *said: heard.append(said))

    started = time.monotonic()
    status, _, body = client.request("GET", f"{busy.base}/v2/")

    assert status == 200 and body == b"x" * 100
    assert time.monotonic() - started >= 2.0  # two waits of at least the second asked
    assert [(host, status, asked) for _, host, status, asked in heard] == [(busy.host, 429, 1.0)] * 2
    assert client.waits.said()["waits"] == 2 and client.waits.said()["waited"] >= 2.0


def test_a_429_that_never_ends_is_the_answer_after_the_last_wait(busy, monkeypatch):
    busy.refusals = 1000
    monkeypatch.setattr(polite, "MAX_WAIT", 0.01)
    client = Client()

    status, _, _ = client.request("GET", f"{busy.base}/v2/")

    assert status == 429 and busy.seen == polite.WAITS + 1


def test_a_streamed_upload_is_not_sent_again_after_a_429(busy):
    busy.refusals = 5
    client = Client()

    body = iter([b"body"])
    status, _, _ = client.request("PATCH", f"{busy.base}/v2/", data=body, headers={"Content-Length": "4"})

    assert status == 429 and busy.seen == 1


def test_requests_in_flight_to_an_upstream_are_capped(busy):
    busy.pause = 0.1
    client = Client(limits={busy.host: 3})

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda _: client.request("GET", f"{busy.base}/v2/")[0], range(24)))

    assert statuses == [200] * 24
    assert busy.busiest == 3 == client.gates.busiest[busy.host]


def test_a_streamed_blob_holds_its_place_until_it_is_closed(busy):
    client = Client(limits={busy.host: 1})

    _, _, first = client.request("GET", f"{busy.base}/v2/", stream=True)
    waiting = threading.Thread(target=client.request, args=("GET", f"{busy.base}/v2/"))
    waiting.start()
    time.sleep(0.3)
    assert waiting.is_alive()  # the second request waits for the stream's place
    first.read()
    first.close()
    waiting.join(5)
    assert not waiting.is_alive() and busy.seen == 2


def test_a_host_without_a_limit_is_not_capped(busy):
    busy.pause = 0.1
    client = Client(limits={"quay.io": 1})

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda _: client.request("GET", f"{busy.base}/v2/"), range(6)))

    assert busy.busiest > 1


def test_the_waits_show_in_the_progress_line():
    item = Synced(Image("openstack.kolla/keystone", "2024.1"), "to copy", size=10)
    watch = Watch("deploy1", [item])

    shown = watch.line(f"{MARK} wait 30.2 quay.io 429 asked")
    later = watch.line(f"{MARK} image copied openstack.kolla/keystone:2024.1 sha256:{'e' * 64}")

    assert shown.endswith("| quay.io answered 429 Too Many Requests: waiting 30 s, as its Retry-After asks")
    assert "waited 30 s (1 x 429)" in later


def test_every_program_sent_to_hosts_carries_the_polite_client():
    for modules in (payload.QUERY, payload.COPY):
        source = payload.program(modules, "answer")
        assert source.index("def retry_after") < source.index("class Client")
        compile(source, "program", "exec")
