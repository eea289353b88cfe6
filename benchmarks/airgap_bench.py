"""The air-gap part of the distribution benchmark (issue 22): `fab export-images` from the shaped upstream
into a bundle on this machine, against the link floor and the unique bytes; then `fab sync-images --locked`
from that bundle into deploy1's emptied registry, against the unique bytes read at this disk's rate."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml

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
    locked_import = ("sync-images", "--archive", str(bundle), "--locked", str(bundle))
    lines: list[tuple[float, str]] = []
    try:
        seconds = fab(inventory, *locked_import, lines=lines)
    except RuntimeError as error:
        return [*rows, {"method": IMPORT, "error": str(error)}]
    row = {"method": IMPORT, "seconds": seconds, "read_rate": read_rate, "upload_done": _upload_done(lines)}
    rows.append(row)
    try:
        row["noop_seconds"] = fab(inventory, *locked_import)
        row["ssh_bytes"], row["ssh_seconds"] = ssh_cat(inventory, bundle)
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        row["breakdown_error"] = str(error)[-300:]
    return rows


def _upload_done(lines: list[tuple[float, str]]) -> float:
    """When fab showed the upload's last progress line (seconds from its start); 0 when it showed none."""
    return max((at for at, line in lines if "uploading " in line), default=0.0)


def ssh_cat(inventory: Path, bundle: Path) -> tuple[int, float]:
    """The bundle as the upload sends it (a tar of the folder), through OpenSSH's client into ``cat > /dev/null``
    on deploy1: the bytes and the seconds. What one SSH stream of those bytes costs on this lab, whatever the tool."""
    hosts = yaml.safe_load(inventory.read_text())
    login = {**(hosts.get("defaults") or {}), **hosts["deploy_host"]}
    ssh = ["ssh", "-i", login["key"], "-p", str(login.get("port", 22)), "-o", "BatchMode=yes",
           "-o", f"UserKnownHostsFile={login['known_hosts']}", "-o", "StrictHostKeyChecking=yes",
           f"{login.get('user', 'root')}@{login['address']}", "cat > /dev/null"]  # fmt: skip
    began = time.monotonic()
    with subprocess.Popen(["tar", "-cf", "-", "-C", str(bundle), "."], stdout=subprocess.PIPE) as tar:
        sent = subprocess.run(ssh, stdin=tar.stdout, capture_output=True, timeout=600, check=False)
    seconds = time.monotonic() - began
    if sent.returncode != 0 or tar.returncode != 0:
        raise RuntimeError(f"tar | ssh cat: exit {tar.returncode}, {sent.returncode}: {sent.stderr.decode()[-300:]}")
    with subprocess.Popen(["tar", "-cf", "-", "-C", str(bundle), "."], stdout=subprocess.PIPE) as tar:
        size = sum(len(chunk) for chunk in iter(lambda: tar.stdout.read(1 << 20), b""))
    return size, seconds


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
            noop = f"{row['noop_seconds']:.1f} s" if "noop_seconds" in row else ""
            lines.append(f"| {IMPORT} | {row['seconds']:.1f} s | {read_floor:.1f} s (disk) | {ratio} | | | | {noop} |")
    imported = next((row for row in rows if row["method"] == IMPORT and not row.get("error")), None)
    breakdown = []
    if imported and "ssh_seconds" in imported:
        breakdown = _breakdown(imported)
    elif imported:
        breakdown = ["", f"(no breakdown: {imported.get('breakdown_error', '?')})"]
    return lines + breakdown + ["", "Targets (issue 22):", *[f"- {check}" for check in checks(rows, meta)]]


def _breakdown(row: dict) -> list[str]:
    """Where the locked import's seconds go: up to the upload's end, after it, the fixed part (the no-op
    run), against one OpenSSH stream of the same bytes."""
    upload, total, size = row["upload_done"], row["seconds"], row["ssh_bytes"]
    ssh_rate = size / row["ssh_seconds"] / 1e6
    return [
        "",
        "| fab sync-images --locked from the bundle, part | seconds |",
        "| --- | --- |",
        f"| start to the upload's end (Python, SSH, facts, registry queries, {size / 1e6:,.0f} MB sent) | {upload:.1f} s |",
        f"| after the upload (writer start, blobs pushed into it, manifests, the lock) | {total - upload:.1f} s |",
        f"| the same import again, nothing to copy (the fixed part) | {row['noop_seconds']:.1f} s |",
        f"| reference: the same tar into `ssh deploy1 'cat > /dev/null'` (OpenSSH) | {row['ssh_seconds']:.1f} s ({ssh_rate:,.0f} MB/s) |",
    ]


def heading(meta: dict) -> str:
    """The first lines of the air-gap report when it runs alone (--only airgap)."""
    return (
        f"# The air gap ({meta['set']} set, {meta['date']})\n\n{meta['images']} images, {meta['unique_bytes'] / 1e6:,.0f} MB "
        f"unique; the upstream's link limited to {meta['rate']} for the export; {meta['cpus']} CPUs; {meta['seconds']} s in all.\n"
    )


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
