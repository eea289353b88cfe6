"""pull-images: every target pre-pulls the synced images from the local registry, like ``kolla-ansible pull``."""

from __future__ import annotations

import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from invoke import Context, task
from invoke.exceptions import Exit

from .deploy import hosts_for, inventory_or_exit, open_run
from .facts import MARK
from .images import PERMANENT_ERRORS, RETRY_DELAY, Image, image_list, image_settings
from .inventory import Host, Inventory
from .report import CHANGED, FAILED, OK, Outcome, line, recap
from .runner import HostRun, StepFailed, say
from .targets import registry_address

STEP = "pull-images"
PULLED, PRESENT, MISSING = "pulled", "present", "missing"
UNTRUSTED_HINT = "http response to https client"


@dataclass(frozen=True)
class Pulled:
    """What one node did with (or has of) one image."""

    image: Image
    status: str
    detail: str = ""


def pull_script(refs: list[str], per_node: int, retries: int, delay: int = RETRY_DELAY) -> str:
    """Shell: ``docker pull`` each ref, ``per_node`` at once, retried on transient errors; a mark each."""
    permanent = "|".join(PERMANENT_ERRORS)
    one = f"""ref=$1; n=0
while :; do
  out=$(docker pull "$ref" 2>&1) && break
  n=$((n + 1))
  if [ "$n" -gt {retries} ] || printf '%s' "$out" | grep -qiE {shlex.quote(permanent)}; then
    echo "{MARK} failed $ref $(printf '%s' "$out" | tail -1)"; exit 0
  fi
  sleep {delay}
done
case "$out" in *"Image is up to date"*) status={PRESENT} ;; *) status={PULLED} ;; esac
echo "{MARK} $status $ref $(printf '%s' "$out" | sed -n 's/^Digest: //p')"
"""
    return _each(refs, per_node, one)


def check_script(refs: list[str]) -> str:
    """Shell: which refs the node has, pulling nothing."""
    one = f"""docker image inspect "$1" >/dev/null 2>&1 && s={PRESENT} || s={MISSING}; echo "{MARK} $s $1"
"""
    return _each(refs, 8, one)


def _each(refs: list[str], at_once: int, script: str) -> str:
    listed = " ".join(shlex.quote(ref) for ref in refs)
    return f"printf '%s\\n' {listed} | xargs -n 1 -P {max(1, at_once)} sh -c {shlex.quote(script)} sh\n"


def parse_pulls(output: str, wanted: dict[str, Image]) -> list[Pulled]:
    """One ``Pulled`` per wanted ref (by reference), from the script's marks, in the wanted order."""
    found: dict[str, Pulled] = {}
    for text in output.splitlines():
        if not text.startswith(MARK + " "):
            continue
        status, ref, *rest = text[len(MARK) + 1 :].split(" ", 2) + [""]
        if ref in wanted:
            found[ref] = Pulled(wanted[ref], status, rest[0].strip())
    return [
        found.get(ref) or Pulled(image, FAILED, "no answer from the node") for ref, image in wanted.items()
    ]


def node_outcome(host: str, pulls: list[Pulled], check: bool) -> Outcome:
    """The node's recap row: what it holds now (or, in check mode, what it would pull)."""
    held = sum(1 for p in pulls if p.status in (PULLED, PRESENT))
    holds = f"holds {held}/{len(pulls)}"
    failed = [p for p in pulls if p.status == FAILED]
    missing = [p.image.name for p in pulls if p.status == MISSING]
    if failed:
        hint = (
            " (run fab configure-targets)" if any(UNTRUSTED_HINT in p.detail.lower() for p in failed) else ""
        )
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


def pull_node(run: HostRun, images: list[Image], registry: str, per_node: int, retries: int) -> Outcome:
    """Pull (or, in check mode, look for) every image on one node, in one round trip."""
    if not run.facts.docker_version:
        return Outcome(
            run.host.name, STEP, FAILED, f"Docker is not installed: run fab -H {run.host.name} install-docker"
        )
    wanted = {image.at(registry): image for image in images}
    refs = list(wanted)
    script = check_script(refs) if run.check else pull_script(refs, per_node, retries)
    return node_outcome(run.host.name, parse_pulls(run.run(script), wanted), run.check)


def node(
    host: Host, inventory: Inventory, images: list[Image], registry: str, options: dict, c: Context
) -> Outcome:
    """One node's pulls; whatever happens there stays there."""
    started = time.monotonic()
    run = open_run(host, inventory, options["check"], False, False, c)
    if isinstance(run, Outcome):
        outcome = run
    else:
        try:
            outcome = pull_node(run, images, registry, options["per_node"], options["retries"])
            outcome.docker = run.facts.docker_version
        except StepFailed as error:
            outcome = run.outcome(STEP, FAILED, str(error), started)
        except Exception as error:  # noqa: BLE001 - one node's surprise must not stop the others
            outcome = run.outcome(STEP, FAILED, f"{type(error).__name__}: {error}", started)
        finally:
            run.close()
    outcome.step = STEP
    outcome.seconds = time.monotonic() - started
    say(line(outcome))
    return outcome


@task(
    help={
        "images": "YAML file with the image list, shaped like the inventory's images: section "
        "(default: that section)",
        "parallel": "how many nodes at once (default: kolla_registry.parallel, 10)",
        "per_node": "how many images each node pulls at once (default 3)",
        "retries": "attempts after the first when a pull fails for a transient reason, 5 s apart (default 3)",
        "check": "pull nothing; say which images each node lacks",
    }
)
def pull_images(c: Context, images="", parallel=0, per_node=3, retries=3, check=False):
    """Pre-pull the synced images on every target from the local registry, like kolla-ansible pull."""
    inventory = inventory_or_exit()
    wanted = image_list(image_settings(inventory, images))
    nodes = hosts_for(c, inventory, inventory.targets)
    if not nodes:
        raise Exit(f"error: {inventory.path}: targets: no target nodes listed", code=2)
    registry = f"{registry_address(inventory, c)}:{inventory.registry.port}"
    say(f"{STEP}: {len(wanted)} images from {registry} on {len(nodes)} nodes")
    workers = max(1, parallel or c.config.get("kolla_registry", {}).get("parallel", 10))
    options = {"check": check, "per_node": per_node, "retries": retries}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(lambda h: node(h, inventory, wanted, registry, options, c), nodes))
    say("\n" + recap(outcomes, check, with_docker=True))
    if any(outcome.failed for outcome in outcomes):
        raise Exit(code=1)
