"""The air-gap part of the distribution benchmark (issue 22): `fab export-images` from the shaped upstream
into a bundle on this machine, against the link floor and the unique bytes; then `fab sync-images --locked`
from that bundle into deploy1's emptied registry, against the unique bytes read at this disk's rate."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from . import labnet
from .imageset import ImageSet

EXPORT, IMPORT = "fab export-images", "fab sync-images --locked (from the bundle)"
# The targets issue 22 sets.
EXPORT_OF_FLOOR = 1.15
BUNDLE_OF_UNIQUE = 1.02
IMPORT_OF_FLOOR = 1.15


def run(
    image_set: ImageSet,
    inventory: Path,
    rate: str,
    out: Path,
    fab: Callable[..., float],
    empty_registry: Callable[[], None],
) -> list[dict]:
    """Export (timed, bytes counted) and a no-op resume; then the locked import into an empty registry."""
    bundle = out / "bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    rows = []
    labnet.shape(labnet.UPSTREAM_NAME, rate)
    sent = labnet.sent_bytes(labnet.UPSTREAM_NAME)
    try:
        seconds = fab(inventory, "export-images", "--to", str(bundle))
        rows.append({
            "method": EXPORT,
            "seconds": seconds,
            "upstream_bytes": labnet.sent_bytes(labnet.UPSTREAM_NAME) - sent,
            "disk_bytes": _bytes_under(bundle),
            "noop_seconds": fab(inventory, "export-images", "--to", str(bundle)),
        })  # fmt: skip
    except RuntimeError as error:
        return [{"method": EXPORT, "error": str(error)}]
    finally:
        labnet.unshape(labnet.UPSTREAM_NAME)
    read_rate = disk_read_rate(bundle)
    empty_registry()
    try:
        seconds = fab(inventory, "sync-images", "--archive", str(bundle), "--locked", str(bundle))
        rows.append({"method": IMPORT, "seconds": seconds, "read_rate": read_rate})
    except RuntimeError as error:
        rows.append({"method": IMPORT, "error": str(error)})
    return rows


def disk_read_rate(folder: Path) -> float:
    """Bytes per second this machine's disk reads the bundle's blobs at, the page cache bypassed (O_DIRECT)."""
    blobs = [path for path in (folder / "blobs" / "sha256").iterdir() if path.stat().st_size >= 1 << 20]
    total, began = 0, time.monotonic()
    for path in blobs:
        done = subprocess.run(
            ["dd", f"if={path}", "of=/dev/null", "bs=4M", "iflag=direct"], capture_output=True, check=False
        )
        if done.returncode == 0:
            total += path.stat().st_size
    seconds = time.monotonic() - began
    return total / seconds if total and seconds > 0 else 0.0


def _bytes_under(folder: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(folder)], capture_output=True, text=True, check=True).stdout.split()[0])


def markdown(rows: list[dict], meta: dict) -> list[str]:
    """The air-gap table and its checks, as lines of the distribution report."""
    unique, floor = meta["unique_bytes"], meta["floor_seconds"]
    lines = ["", "| air gap | seconds | floor | × floor | upstream bytes | bundle on disk | × unique | no-op |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in rows:
        if row.get("error"):
            lines.append(f"| {row['method']} | failed: {row['error'][:120]} |||||||")
        elif row["method"] == EXPORT:
            lines.append(
                f"| {EXPORT} | {row['seconds']:.1f} s | {floor:.1f} s (link) | {row['seconds'] / floor:.2f} "
                f"| {row['upstream_bytes'] / 1e6:,.0f} MB | {row['disk_bytes'] / 1e6:,.0f} MB "
                f"| {row['disk_bytes'] / unique:.3f} | {row['noop_seconds']:.1f} s |"
            )
        else:
            read_floor = unique / row["read_rate"] if row["read_rate"] else 0.0
            ratio = f"{row['seconds'] / read_floor:.2f}" if read_floor else "?"
            lines.append(f"| {IMPORT} | {row['seconds']:.1f} s | {read_floor:.1f} s (disk) | {ratio} | | | | |")
    return lines + ["", "Targets (issue 22):", *[f"- {check}" for check in checks(rows, meta)]]


def checks(rows: list[dict], meta: dict) -> list[str]:
    by = {row["method"]: row for row in rows if not row.get("error")}
    found = []
    export = by.get(EXPORT)
    if export:
        ratio, disk = export["seconds"] / meta["floor_seconds"], export["disk_bytes"] / meta["unique_bytes"]
        found.append(_check("export-images ≤ 1.15 × link floor", ratio <= EXPORT_OF_FLOOR, f"{ratio:.2f} × floor"))
        found.append(_check("bundle ≤ 1.02 × unique bytes", disk <= BUNDLE_OF_UNIQUE, f"{disk:.3f} × unique"))
    imported = by.get(IMPORT)
    if imported and imported["read_rate"]:
        ratio = imported["seconds"] / (meta["unique_bytes"] / imported["read_rate"])
        found.append(_check("sync-images --locked from the bundle ≤ 1.15 × disk floor", ratio <= IMPORT_OF_FLOOR,
                            f"{ratio:.2f} × floor"))  # fmt: skip
    return found or ["the air-gap runs failed: no figures"]


def _check(name: str, met: bool, figure: str) -> str:
    return f"{name}: {'met' if met else 'MISSED'} ({figure})"
