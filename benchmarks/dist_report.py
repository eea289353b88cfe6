"""The distribution benchmark's table, its checks against the issue's targets, and its plot."""

from __future__ import annotations

from pathlib import Path

FAB = "fab sync-images"
# The targets issue 13 sets.
FIRST_OF_FLOOR = 1.15
FASTER_THAN_DOCKER = 2.0
NOOP_SECONDS = 2.0
UPSTREAM_OF_UNIQUE = 1.02
DISK_OF_UNIQUE = 1.05


def _mb(value: float) -> str:
    return f"{value / 1e6:,.0f} MB"


def markdown(syncs: list[dict], pulls: list[dict], meta: dict) -> str:
    unique, floor = meta["unique_bytes"], meta["floor_seconds"]
    lines = [
        f"# Images at link speed ({meta['set']} set, {meta['date']})",
        "",
        (f"{meta['images']} images, {_mb(unique)} unique, {_mb(meta['logical_bytes'])} logical; "
        f"links limited to {meta['rate']} with tc; floor = unique bytes / link rate = {floor:.1f} s. "
        f"{meta['cpus']} CPUs; {meta['seconds']} s in all."),
        "",
        ("| method | first run | × floor | no-op run | upstream bytes | × unique | deploy1 disk | × unique "
        "| peak memory |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in syncs:
        if row.get("error"):
            lines.append(f"| {row['method']} | failed: {row['error'][:120]} |||||||")
            continue
        lines.append(
            f"| {row['method']} | {row['first_seconds']:.1f} s | {row['first_seconds'] / floor:.2f} "
            f"| {row['noop_seconds']:.2f} s | {_mb(row['upstream_bytes'])} | {row['upstream_bytes'] / unique:.3f} "
            f"| {_mb(row['disk_bytes'])} | {row['disk_bytes'] / unique:.3f} | {_mb(row['peak_rss_bytes'])} |"
        )
    lines += ["", "| pull-images to | seconds | floor (N × unique / rate) | × floor |", "| --- | --- | --- | --- |"]
    for row in pulls:
        pull_floor = row["targets"] * floor
        if row.get("error"):
            lines.append(f"| {row['targets']} targets | failed: {row['error'][:120]} | {pull_floor:.1f} s | |")
        else:
            lines.append(
                f"| {row['targets']} targets | {row['seconds']:.1f} s | {pull_floor:.1f} s "
                f"| {row['seconds'] / pull_floor:.2f} |"
            )
    lines += ["", "Targets (issue 13):", *[f"- {check}" for check in checks(syncs, meta)], ""]
    return "\n".join(lines)


def checks(syncs: list[dict], meta: dict) -> list[str]:
    """Each target with the figure it was measured at, met or missed."""
    by = {row["method"]: row for row in syncs if not row.get("error")}
    fab = by.get(FAB)
    if fab is None:
        return ["fab sync-images failed: no figures"]
    unique, floor = meta["unique_bytes"], meta["floor_seconds"]
    found = [
        _check("first run ≤ 1.15 × floor", fab["first_seconds"] / floor <= FIRST_OF_FLOOR,
               f"{fab['first_seconds'] / floor:.2f} × floor"),
        _check("no-op re-run < 2 s", fab["noop_seconds"] < NOOP_SECONDS, f"{fab['noop_seconds']:.2f} s"),
        _check("upstream bytes ≤ 1.02 × unique", fab["upstream_bytes"] / unique <= UPSTREAM_OF_UNIQUE,
               f"{fab['upstream_bytes'] / unique:.3f} × unique"),
        _check("deploy1 disk ≤ 1.05 × unique", fab["disk_bytes"] / unique <= DISK_OF_UNIQUE,
               f"{fab['disk_bytes'] / unique:.3f} × unique"),
    ]  # fmt: skip
    docker = by.get("docker pull/push")
    if docker:
        speedup = docker["first_seconds"] / fab["first_seconds"]
        found.append(_check("≥ 2 × faster than docker pull/push", speedup >= FASTER_THAN_DOCKER, f"{speedup:.2f} ×"))
    skopeo = by.get("skopeo sync")
    if skopeo:
        ratio = fab["first_seconds"] / skopeo["first_seconds"]
        found.append(_check("not slower than skopeo sync", ratio <= 1.0, f"{ratio:.2f} × skopeo's time"))
    return found


def _check(name: str, met: bool, figure: str) -> str:
    return f"{name}: {'met' if met else 'MISSED'} ({figure})"


def plot(path: Path, syncs: list[dict], pulls: list[dict], meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    done = [row for row in syncs if not row.get("error")]
    left.bar([row["method"] for row in done], [row["first_seconds"] for row in done], label="first run")
    left.bar([row["method"] for row in done], [row["noop_seconds"] for row in done], label="no-op run")
    left.axhline(meta["floor_seconds"], color="black", linestyle="--", label="floor")
    left.set_ylabel("seconds")
    left.set_title(f"sync {meta['images']} images, {meta['unique_bytes'] / 1e6:.0f} MB unique, {meta['rate']}")
    left.legend()
    pulled = [row for row in pulls if not row.get("error")]
    right.plot([r["targets"] for r in pulled], [r["seconds"] for r in pulled], marker="o", label="pull-images")
    right.plot([r["targets"] for r in pulled], [r["targets"] * meta["floor_seconds"] for r in pulled],
               linestyle="--", color="black", label="floor")  # fmt: skip
    right.set_xlabel("targets")
    right.set_ylabel("seconds")
    right.set_title("pull-images, deploy1's link limited")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
