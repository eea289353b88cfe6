"""Target nodes: make every node's Docker trust the registry, in parallel.

Each node gets one SSH connection. Its first exec session reads only the facts
the target steps need and, when the node already names the registry, verifies
it in the same session: a run that changes nothing costs one session per node,
one that changes something two (facts; then changes, Docker handler and pull).
"""

from __future__ import annotations

import shlex
import time
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from invoke import Context, task
from invoke.exceptions import Exit

from . import facts as host_facts
from . import steps
from .change import RESTART, StepPlan, apply_script, handler_script
from .connection import connect, execute, unreachable_reason
from .deploy import MODE_HELP, hosts_for, inventory_or_exit
from .facts import DAEMON_JSON, DEFAULT_DOCKER, MARK, PENDING
from .inventory import Host, Inventory
from .report import CHANGED, FAILED, OK, Outcome, line, recap
from .runner import MAX_ROUNDS, HostRun, StepFailed, last_words, say, unreachable_outcome
from .steps import StepContext

STEP = "configure-targets"
VERIFY, VERIFIED = "verify", "verified"
DOCKER_SOCKET = "/var/run/docker.sock"


@dataclass(frozen=True)
class Verification:
    """The registry check run in the facts session: its exit status and output."""

    status: int
    output: str

    def error(self) -> str:
        return f"exit {self.status}: {last_words(self.output, '')}"


def facts_script(ctx: StepContext, verify: bool) -> str:
    """The facts the target steps read; with ``verify``, the registry check too where it is configured.

    Every process counts when twenty nodes share two cores: the engine's version
    comes from its API socket in the same curl as the check (the docker CLI
    costs ~40 ms of CPU a call), and the rest is shell builtins where it can be.
    """
    ping = f"-sS -m 20 --unix-socket {DOCKER_SOCKET} -D - -o /dev/null http://docker/_ping"
    # Worth checking only where the registry is named already and nothing is pending.
    check = (
        f"[ ! -s {PENDING} ] && {{ names {DAEMON_JSON} || names {DEFAULT_DOCKER}; }} && check=yes"
        if verify
        else ""
    )
    return f"""{host_facts.PREAMBLE}
names() {{ [ -f "$1" ] && while IFS= read -r l || [ -n "$l" ]; do case $l in *{shlex.quote(ctx.registry)}*) return 0 ;; esac; done < "$1"; return 1; }}
{host_facts.UNIT_AND_FILES}
check=
{check}
if [ -n "$check" ]; then out=$(curl {ping} --next {_check_curl(ctx)} 2>&1) || out=
else out=$(curl {ping} 2>/dev/null) || out=; fi
case $out in *"Server: Docker/"*) v=${{out#*Server: Docker/}}; v=${{v%%[[:space:]]*}} ;; *) v= ;; esac
[ -n "$v" ] || v=$(timeout 20 docker version --format '{{{{.Server.Version}}}}' 2>/dev/null)
s docker-server; echo "$v"
[ -n "$v" ] || {{ s dockerd; dockerd --version 2>/dev/null || docker --version 2>/dev/null; }}
if [ -n "$check" ]; then
  s {VERIFY}
  {{ {_judge(ctx)}
  }} 2>&1
  status=$?
  s {VERIFIED}; echo $status
fi
exit 0
"""


def verify_script(ctx: StepContext) -> str:
    """Shell: the registry answers /v2/ and the engine pulls the probe, with one curl.

    When that does not plainly succeed (or there is no curl), the full check of
    ``steps.verify_script`` runs, so failures read as they always did.
    """
    return f"out=$(curl {_check_curl(ctx)} 2>&1) || out=\n{_judge(ctx)}\n"


def _check_curl(ctx: StepContext) -> str:
    """curl arguments: GET /v2/ on the registry, then the engine's API pulls the probe."""
    repository, _, tag = ctx.probe_image.rpartition(":")
    query = urllib.parse.urlencode({"fromImage": repository, "tag": tag})
    return (
        f"-sS -m 20 -D - -o /dev/null http://{ctx.registry}/v2/ --next "
        f"-sS -m 600 --unix-socket {DOCKER_SOCKET} -X POST 'http://docker/images/create?{query}'"
    )


def _judge(ctx: StepContext) -> str:
    """Shell: whether "$out" shows a registry and a finished pull; else the full check."""
    return f"""case $out in
  *'Docker-Distribution-Api-Version: registry/2.0'*'"status":"Status: '*) case $out in *'"error'*) out= ;; esac ;;
  *) out= ;;
esac
if [ -n "$out" ]; then echo '{MARK} pulled {ctx.probe_image}'; else ( {steps.verify_script(ctx, push=False)} ); fi"""


def gather(run: HostRun, verify: bool) -> Verification | None:
    """Facts into ``run.facts``; the verification, if the facts session ran one."""
    output = run.run(facts_script(run.ctx, verify))
    run.facts = host_facts.parse(output)
    return verification(output)


def verification(output: str) -> Verification | None:
    lines = output.splitlines()
    try:
        start = lines.index(f"{MARK} {VERIFY}")
        end = lines.index(f"{MARK} {VERIFIED}", start)
        status = int(lines[end + 1])
    except (ValueError, IndexError):
        return None
    return Verification(status, "\n".join(lines[start + 1 : end]))


def node_plan(run: HostRun) -> StepPlan:
    """Every target step's changes on one node, merged into one plan."""
    plan = StepPlan(STEP)
    for planner in steps.TARGET_STEPS:
        part = planner(run.facts, run.ctx)
        if part.error:
            plan.error = part.error
            return plan
        plan.files += part.files
        if part.handler:
            plan.handler = RESTART if RESTART in (plan.handler, part.handler) else part.handler
    return plan


def configure_node(run: HostRun, checked: Verification | None, started: float) -> Outcome:
    """Plan from the facts; changes, Docker handler and the pull check in one more session."""
    for _ in range(MAX_ROUNDS):
        try:
            return converge_node(run, checked, started)
        except StepFailed as error:
            if not error.conflict:
                raise
            # Another run changed a file since our facts: plan again from fresh ones.
            checked = gather(run, verify=False)
    return run.outcome(STEP, FAILED, "files kept changing under another run; try again", started)


def converge_node(run: HostRun, checked: Verification | None, started: float) -> Outcome:
    if not run.facts.docker_version:
        return run.outcome(
            STEP, FAILED, f"Docker is not installed: run fab -H {run.host.name} install-docker", started
        )
    plan = node_plan(run)
    if plan.error:
        return run.outcome(STEP, FAILED, plan.error, started)
    pending = bool(run.facts.files.get(PENDING, "").strip())
    run.show_diff(plan)
    if run.check:
        status = CHANGED if plan.changed or pending else OK
        return run.outcome(STEP, status, plan.summary() or "nothing to change", started)
    if not (plan.changed or pending):
        return verified_node(run, plan, checked, started)
    script = apply_script(plan, run.stamp) + handler_script(run.ctx.registry) + verify_script(run.ctx)
    try:
        run.run(script)
    except StepFailed as error:
        if error.conflict:
            raise
        return run.outcome(STEP, FAILED, f"{plan.summary() or 'pending Docker changes'}: {error}", started)
    handler = plan.handler or "reload"
    return run.outcome(
        STEP, CHANGED, f"{plan.summary() or 'pending'}; Docker {handler}; pulled probe", started
    )


def verified_node(run: HostRun, plan: StepPlan, checked: Verification | None, started: float) -> Outcome:
    """Nothing to change: the pull check from the facts session, or run it now."""
    error = checked.error() if checked and checked.status else ""
    if checked is None:
        try:
            run.run(verify_script(run.ctx))
        except StepFailed as failed:
            error = str(failed)
    if error:
        return run.outcome(STEP, FAILED, f"{plan.summary() or 'pending Docker changes'}: {error}", started)
    return run.outcome(STEP, OK, f"{run.ctx.registry} trusted; pulled probe", started)


class CalledOff(Exception):
    """The registry address could not be learnt: no node is touched."""


def node_outcome(
    host: Host, inventory: Inventory, address: Future, modes: dict, c: Context
) -> Outcome | None:
    """Configure one node; whatever happens there stays there. None when the run was called off."""
    started = time.monotonic()
    try:
        run = HostRun(
            host, StepContext(inventory, repair=modes["repair"]), modes["check"], modes["diff"], c.config
        )
    except Exception as error:  # noqa: BLE001 - e.g. an unreadable known_hosts: this node fails, not the run
        return finished(Outcome(host.name, STEP, FAILED, f"{type(error).__name__}: {error}"), started)
    try:
        opened = open_node(run, address, started)
        outcome = opened if isinstance(opened, Outcome) else configure_node(run, opened, started)
    except CalledOff:
        return None
    except Exception as error:  # noqa: BLE001 - one node's surprise must not stop the others
        outcome = run.outcome(STEP, FAILED, f"{type(error).__name__}: {error}", started)
    finally:
        run.close()
    return finished(outcome, started)


def finished(outcome: Outcome, started: float) -> Outcome:
    outcome.step = STEP
    outcome.seconds = time.monotonic() - started
    say(line(outcome))
    return outcome


def open_node(run: HostRun, address: Future, started: float) -> Verification | Outcome | None:
    """Connect (while the registry address is looked up), then the facts session.

    An Outcome when the node is unreachable or its facts fail; else what the
    facts session verified (None when it did not try).
    """
    try:
        run.connection.open()
        if address.exception() is not None:
            raise CalledOff
        run.ctx = replace(run.ctx, registry_address=address.result())
        return gather(run, verify=not run.check)
    except StepFailed as error:
        return run.outcome("gather-facts", FAILED, str(error), started)
    except CalledOff:
        raise
    except Exception as error:
        outcome = unreachable_outcome(run.host, "connect", error, started)
        if outcome is None:
            raise
        return outcome


def registry_address(inventory: Inventory, c: Context) -> str:
    """The inventory's registry address, or the deployment host's first IP."""
    if inventory.registry.address:
        return inventory.registry.address
    host = inventory.deploy_host
    try:
        connection = connect(host, c.config)
        try:
            output = execute(connection, "hostname -I").stdout
        finally:
            connection.close()
    except Exception as error:  # noqa: BLE001 - any failure to ask ends the run with one line
        reason = unreachable_reason(error, host) or f"{type(error).__name__}: {error}"
        raise Exit(
            f"error: cannot learn the registry address from {host.name}: {reason}; "
            f"set registry.address in {inventory.path}",
            code=1,
        ) from None
    return next(iter(output.split()), "")


@task(
    help={
        **MODE_HELP,
        "parallel": "how many nodes to work on at once (default: kolla_registry.parallel, 10)",
    }
)
def configure_targets(c, check=False, diff=False, repair=False, parallel=0):
    """Make every target node's Docker trust the registry, and pull from it."""
    inventory = inventory_or_exit()
    nodes = hosts_for(c, inventory, inventory.targets)
    if not nodes:
        raise Exit(f"error: {inventory.path}: targets: no target nodes listed", code=2)
    workers = parallel or c.config.get("kolla_registry", {}).get("parallel", 10)
    modes = {"check": check, "diff": diff, "repair": repair}
    with ThreadPoolExecutor(max_workers=1) as lookup:
        # The deployment host is asked while the targets connect, not before.
        address = lookup.submit(registry_address, inventory, c)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            outcomes = list(pool.map(lambda host: node_outcome(host, inventory, address, modes, c), nodes))
    address.result()  # a failed lookup ends the run here, with its error
    say("\n" + recap(outcomes, check, with_docker=True))
    if any(outcome.failed for outcome in outcomes):
        raise Exit(code=1)
