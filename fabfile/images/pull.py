"""Pulling images on a node: the shell that pulls (or looks), and what each node holds."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..docker.tls import diagnose
from ..engine.result import CHANGED, FAILED, OK, Outcome
from ..remote.marks import MARK, marks
from .decide import PERMANENT_ERRORS, RETRY_DELAY
from .model import Image

STEP = "pull-images"
PULLED, PRESENT, MISSING = "pulled", "present", "missing"


@dataclass(frozen=True)
class Pulled:
    """What one node did with (or has of) one image."""

    image: Image
    status: str
    detail: str = ""


# What each engine's pull says: Docker tells whether it was up to date and the digest; podman
# pulls quietly (its image ID), so the ID before the pull tells, and inspect gives the digest.
_PULLS = {
    "docker": (
        "",
        'docker pull "$ref"',
        f'case "$out" in *"Image is up to date"*) status={PRESENT} ;; *) status={PULLED} ;; esac',
        "printf '%s' \"$out\" | sed -n 's/^Digest: //p'",
    ),
    "podman": (
        "before=$(podman image inspect --format '{{.Id}}' \"$ref\" 2>/dev/null || true)",
        'podman pull -q "$ref"',
        f'[ -n "$before" ] && [ "$before" = "$(printf \'%s\' "$out" | tail -1)" ] && status={PRESENT} || status={PULLED}',
        "podman image inspect --format '{{.Digest}}' \"$ref\" 2>/dev/null",
    ),
}


def pull_script(refs: list[str], per_node: int, retries: int, delay: int = RETRY_DELAY, cli: str = "docker") -> str:
    """Shell: ``cli pull`` (docker or podman) each ref, ``per_node`` at once, retried on transient errors;
    a mark each."""
    permanent = "|".join(PERMANENT_ERRORS)
    before, pull, status, digest = _PULLS[cli]
    one = f"""ref=$1; n=0
{before}
while :; do
  out=$({pull} 2>&1) && break
  n=$((n + 1))
  if [ "$n" -gt {retries} ] || printf '%s' "$out" | grep -qiE {shlex.quote(permanent)}; then
    echo "{MARK} failed $ref $(printf '%s' "$out" | tail -1)"; exit 0
  fi
  sleep {delay}
done
{status}
echo "{MARK} $status $ref $({digest})"
"""
    return _each(refs, per_node, one)


def check_script(refs: list[str], cli: str = "docker") -> str:
    """Shell: which refs the node has (in ``cli``'s images), pulling nothing."""
    one = f"""{cli} image inspect "$1" >/dev/null 2>&1 && s={PRESENT} || s={MISSING}; echo "{MARK} $s $1"
"""
    return _each(refs, 8, one)


def _each(refs: list[str], at_once: int, script: str) -> str:
    listed = " ".join(shlex.quote(ref) for ref in refs)
    return f"printf '%s\\n' {listed} | xargs -n 1 -P {max(1, at_once)} sh -c {shlex.quote(script)} sh\n"


def parse_pulls(output: str, wanted: dict[str, Image]) -> list[Pulled]:
    """One ``Pulled`` per wanted ref (by reference), from the script's marks, in the wanted order."""
    found: dict[str, Pulled] = {}
    for text in marks(output):
        status, ref, *rest = text.split(" ", 2) + [""]
        if ref in wanted:
            found[ref] = Pulled(wanted[ref], status, rest[0].strip())
    return [
        found.get(ref) or Pulled(image, FAILED, "no answer from the node") for ref, image in wanted.items()
    ]


def pull_outcome(host: str, pulls: list[Pulled], check: bool, secure: bool = False) -> Outcome:
    """The node's recap row: what it holds now (or, in check mode, what it would pull)."""
    held = sum(1 for p in pulls if p.status in (PULLED, PRESENT))
    holds = f"holds {held}/{len(pulls)}"
    failed = [p for p in pulls if p.status == FAILED]
    missing = [p.image.name for p in pulls if p.status == MISSING]
    if failed:
        hints = dict.fromkeys(diagnose(p.detail, secure) for p in failed if diagnose(p.detail, secure))
        hint = "".join(f" ({hint})" for hint in hints)
        reasons = "; ".join(_failures(failed))
        return Outcome(host, STEP, FAILED, f"{holds}; failed {reasons}{hint}")
    if missing:
        return Outcome(host, STEP, CHANGED, f"{holds}; would pull {', '.join(missing)}")
    pulled = sum(1 for p in pulls if p.status == PULLED)
    if pulled and not check:
        return Outcome(host, STEP, CHANGED, f"pulled {pulled}; {holds}")
    return Outcome(host, STEP, OK, holds)


def _failures(failed: list[Pulled]) -> list[str]:
    """Failures grouped by reason: a registry that is not trusted fails every image alike."""
    by_reason: dict[str, list[str]] = {}
    for pulled in failed:
        by_reason.setdefault(pulled.detail, []).append(pulled.image.name)
    return [
        f"{', '.join(names) if len(names) <= 2 else f'{len(names)} images ({names[0]}, ...)'}: {reason}"
        for reason, names in by_reason.items()
    ]
