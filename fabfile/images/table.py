"""What a sync shows: progress lines, the table of images, the totals."""

from __future__ import annotations

from collections import Counter

from tabulate import tabulate

from ..engine.result import FAILED
from .model import COPIED, PRESENT, TO_COPY, Synced

STEP = "sync-images"


def decimal_size(size: int) -> str:
    """Bytes as Docker shows them: decimal units."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 5 s``, ``2 h 10 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def transfer(sent: int, size: int, seconds: float) -> str:
    """Bytes sent / to send, the rate so far and the time left at that rate."""
    text = f"{decimal_size(sent)}/{decimal_size(size)}"
    if seconds <= 0 or sent <= 0:
        return text
    rate = sent / seconds
    return f"{text}, {decimal_size(round(rate))}/s, ETA {duration(max(0, size - sent) / rate)}"


def progress(host: str, done: int, total: int, transferred: str, what: str = "") -> str:
    """One progress line: images done / total, then the transfer (see ``transfer``) and what just happened."""
    return f"{host} | {STEP} | {done}/{total} images, {transferred}" + (f" | {what}" if what else "")


def image_done(item: Synced) -> str:
    """What a progress line says of an image that just finished."""
    return f"{item.image.name} {item.status}" + (f": {item.message}" if item.message else "")


def table(results: list[Synced], check: bool = False) -> str:
    """image, tag, digest, size, status (and why), one row per image."""
    rows = [
        [r.image.path, r.image.tag, r.digest or "-", decimal_size(r.size) if r.size else "-", r.status, r.message]
        for r in results
    ]
    headers = ["image", "tag", "digest", "size", "status", "details"]
    title = "IMAGES (check mode: nothing was copied)" if check else "IMAGES"
    shown = tabulate(rows, headers=headers, disable_numparse=True, maxcolwidths=[None] * 5 + [60])
    return f"{title}\n{shown}\n\n{STEP}: {totals(results)}"


def totals(results: list[Synced]) -> str:
    counts = Counter(result.status for result in results)
    copied = sum(r.size for r in results if r.status in (COPIED, TO_COPY))
    parts = [f"{counts[status]} {status}" for status in (COPIED, TO_COPY, PRESENT, FAILED) if counts[status]]
    return f"{len(results)} images: {', '.join(parts)}" + (f" ({decimal_size(copied)})" if copied else "")
