"""Politeness towards upstream registries: 429 waited out, and a cap on requests in flight per host.

quay.io and Docker Hub answer ``429 Too Many Requests`` when a client asks too
much; they may say for how long with ``Retry-After`` (seconds, or an HTTP
date). The registry client (registry_client.py, after this module in every
program) waits what the upstream asks, plus a little jitter so that many
clients do not come back in the same second, or backs off exponentially with
jitter when it says nothing; and it never has more than ``max_requests``
requests in flight to one host (a streamed blob counts until it is closed).
Standard library only, no f-strings (see registry_client.py).
"""


import email.utils
import random
import threading
import time

TOO_MANY = 429
# How often one request is asked to wait before its 429 is the answer; the most one wait lasts.
WAITS = 6
MAX_WAIT = 120.0
FIRST_BACKOFF = 1.0


def retry_after(value, now=None):
    """The seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    text = (value or "").strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def wait_for(attempt: int, asked=None, rand=random.random) -> float:
    """How long to wait before try ``attempt`` + 1: at least what the upstream ``asked`` (capped at
    MAX_WAIT) plus up to a quarter more, or an exponential backoff (1, 2, 4 s...) with full jitter."""
    if asked is not None:
        base = min(MAX_WAIT, asked)
        return base + rand() * (base / 4 + 0.25)
    base = min(MAX_WAIT, FIRST_BACKOFF * (2 ** attempt))
    return base / 2 + rand() * base / 2


class Gates:
    """At most ``limits[host]`` requests in flight per host (``host[:port]``); unlisted hosts are free."""

    def __init__(self, limits=None) -> None:
        self.gates = {}
        for host, count in (limits or {}).items():
            self.gates[host] = threading.BoundedSemaphore(max(1, int(count)))
        self.lock = threading.Lock()
        self.busiest = {}
        self.in_flight = {}

    def enter(self, url: str):
        """Wait for a place for ``url``'s host; what ``leave`` takes back (None: the host is free)."""
        host = host_of(url)
        gate = self.gates.get(host)
        if gate is None:
            return None
        gate.acquire()
        with self.lock:
            self.in_flight[host] = self.in_flight.get(host, 0) + 1
            self.busiest[host] = max(self.busiest.get(host, 0), self.in_flight[host])
        return host

    def leave(self, host) -> None:
        if host is None:
            return
        with self.lock:
            self.in_flight[host] -= 1
        self.gates[host].release()


class Held:
    """A streamed response that holds its host's place until it is closed (a blob read in pieces)."""

    def __init__(self, response, gates: Gates, host) -> None:
        self.response = response
        self.gates = gates
        self.host = host
        self.status = response.status
        self.headers = response.headers

    def read(self, size=-1):
        return self.response.read(size)

    def close(self) -> None:
        try:
            self.response.close()
        finally:
            host, self.host = self.host, None
            self.gates.leave(host)


class Waits:
    """Every wait a client made, for the answer: how many and how long, by host."""

    def __init__(self, on_wait=None) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.seconds = 0.0
        self.on_wait = on_wait

    def wait(self, seconds: float, url: str, status: int, asked) -> None:
        """Say the wait (``on_wait(seconds, host, status, asked)``), then sleep it."""
        with self.lock:
            self.count += 1
            self.seconds += seconds
        if self.on_wait is not None:
            self.on_wait(seconds, host_of(url), status, asked)
        time.sleep(seconds)

    def said(self) -> dict:
        return {"waits": self.count, "waited": round(self.seconds, 1)}


def host_of(url: str) -> str:
    """``quay.io`` of ``https://quay.io/v2/...`` (``host:port`` when it has one)."""
    return url.split("://", 1)[-1].split("/", 1)[0]
