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


def progress(host: str, done: int, total: int, copied: int, size: int, item: Synced) -> str:
    """One line per finished image: images done / total, bytes copied / to copy."""
    detail = f": {item.message}" if item.message else ""
    return (
        f"{host} | {STEP} | {done}/{total} images, {decimal_size(copied)}/{decimal_size(size)} | "
        f"{item.image.name} {item.status}{detail}"
    )


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
