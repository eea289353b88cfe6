"""What a sync shows: progress lines, the table of images, the totals."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

from tabulate import tabulate

from ..model.marks import MARK
from ..model.outcome import FAILED
from ..model.units import decimal_size, duration
from .model import COPIED, EXPORTED, PRESENT, TAGGED, TO_COPY, TO_EXPORT, TO_TAG, Image, Synced

STEP = "sync-images"
SHOW_EVERY = 5  # seconds: the most a long copy stays silent


def transfer(sent: int, size: int, seconds: float) -> str:
    """Bytes sent / to send, the rate so far and the time left at that rate."""
    text = f"{decimal_size(sent)}/{decimal_size(size)}"
    if seconds <= 0 or sent <= 0:
        return text
    rate = sent / seconds
    return f"{text}, {decimal_size(round(rate))}/s, ETA {duration(max(0, size - sent) / rate)}"


def progress(host: str, done: int, total: int, transferred: str, what: str = "", step: str = STEP) -> str:
    """One progress line: images done / total, then the transfer (see ``transfer``) and what just happened."""
    return f"{host} | {step} | {done}/{total} images, {transferred}" + (f" | {what}" if what else "")


def waited(count: int, seconds: float) -> str:
    """The upstream's 429 answers waited out so far: ``waited 12 s (3 x 429)``, or ""."""
    return f"waited {duration(seconds)} ({count} x 429)" if count else ""


def wait_said(fields: list[str]) -> str:
    """What a progress line says of one wait mark (``SECONDS HOST STATUS asked|backoff``)."""
    seconds, host, status, how = (fields + ["", "", "", ""])[:4]
    why = "as its Retry-After asks" if how == "asked" else "backing off"
    return f"{host} answered {status} Too Many Requests: waiting {duration(float(seconds))}, {why}"


def image_done(item: Synced) -> str:
    """What a progress line says of an image that just finished."""
    return f"{item.image.name} {item.status}" + (f": {item.message}" if item.message else "")


def table(
    results: list[Synced], check: bool = False, needed_by: Mapping[Image, tuple[str, ...]] | None = None, step: str = STEP
) -> str:
    """image, tag, digest, size, status (and why), one row per image; with ``needed_by`` (kolla-ansible's
    set), the hosts that pull each image."""
    rows = [
        [r.image.path, r.image.tag, r.digest or "-", decimal_size(r.size) if r.size else "-", r.status]
        + ([hosts_text(needed_by.get(r.image, ()))] if needed_by else [])
        + [r.message]
        for r in results
    ]
    headers = ["image", "tag", "digest", "size", "status"] + (["hosts"] if needed_by else []) + ["details"]
    title = f"IMAGES (check mode: nothing was {'exported' if step != STEP else 'copied'})" if check else "IMAGES"
    widths = [None] * 5 + ([40] if needed_by else []) + [60]
    shown = tabulate(rows, headers=headers, disable_numparse=True, maxcolwidths=widths)
    return f"{title}\n{shown}\n\n{step}: {totals(results)}"


def hosts_text(hosts: tuple[str, ...]) -> str:
    """The hosts that pull an image: all of them named while few, else how many and the first."""
    return ", ".join(hosts) if len(hosts) <= 3 else f"{len(hosts)} hosts ({hosts[0]}, ...)"


def totals(results: list[Synced]) -> str:
    counts = Counter(result.status for result in results)
    copied = sum(r.size for r in results if r.status in (COPIED, TO_COPY, EXPORTED, TO_EXPORT))
    order = (COPIED, TO_COPY, TAGGED, TO_TAG, EXPORTED, TO_EXPORT, PRESENT, FAILED)
    parts = [f"{counts[status]} {status}" for status in order if counts[status]]
    return f"{len(results)} images: {', '.join(parts)}" + (f" ({decimal_size(copied)})" if copied else "")


class Watch:
    """The helper's marks as they come, shown as progress lines: bytes, rate, ETA, images done."""

    def __init__(self, host: str, todo: list[Synced], step: str = STEP) -> None:
        self.host = host
        self.step = step
        self.items = {item.image.name: item for item in todo}
        self.done = self.sent = self.size = 0
        self.waits, self.waited = 0, 0.0
        self.started = self.shown = time.monotonic()

    def line(self, text: str) -> str | None:
        """The progress line to show for one line of the program's output, or None."""
        if not text.startswith(f"{MARK} "):
            return None
        word, _, rest = text[len(MARK) + 1 :].partition(" ")
        fields = rest.split(" ", 2)
        if word == "wait":
            found = rest.split(" ")
            self.waits += 1
            self.waited += float(found[0]) if found[0].replace(".", "", 1).isdigit() else 0.0
            return self.show(wait_said(found))
        if word == "plan":
            self.size = int(fields[0])
        elif word == "progress":
            self.sent = int(fields[0])
            # Each image's line shows the bytes too: a line of bytes alone only between images.
            if time.monotonic() - self.shown >= SHOW_EVERY:
                return self.show()
        elif word == "image" and len(fields) > 1:
            self.done += 1
            item = self.items.get(fields[1])
            if item is not None:
                status = fields[0] if fields[0] in (COPIED, TAGGED, EXPORTED) else FAILED
                message = fields[2] if status == FAILED and len(fields) > 2 else ""
                return self.show(image_done(replace(item, status=status, message=message)))
        return None

    def show(self, what: str = "") -> str:
        self.shown = time.monotonic()
        elapsed = self.shown - self.started
        moved = ", ".join(part for part in (transfer(self.sent, self.size, elapsed), waited(self.waits, self.waited)) if part)
        return progress(self.host, self.done, len(self.items), moved, what, self.step)
