"""Trusting the registry, steps 5-8: daemon.json or DOCKER_OPTS (never both), and the Docker handler."""

from __future__ import annotations

from ...model.context import StepContext
from ...model.facts import HostFacts
from ...model.paths import PENDING
from ...model.plan import RELOAD, RESTART, Handler, StepPlan, merged_handler
from . import config as dc
from .config import daemon_json_or_error, dockerd_flags, file_change
from .facts import dropins
from .paths import DAEMON_JSON, DEFAULT_DOCKER, NAME
from .tls_trust import trust_with_ca


def trust_registry(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Make Docker trust the registry: daemon.json or DOCKER_OPTS, never both (step 5)."""
    plan = StepPlan("trust-registry")
    if not ctx.registry_address:
        plan.error = "no registry address: the deployment host has none, set registry.address"
        return plan
    daemon = daemon_json_or_error(facts, plan)
    if daemon is None:
        return plan
    if ctx.inventory.registry.secure:
        trust_with_ca(facts, ctx, plan)
        return plan
    flags = dockerd_flags(facts)
    method = trust_method(facts, ctx)
    if method == "docker-opts":
        _trust_with_docker_opts(facts, ctx, daemon, plan)
    elif method == UNIT_FLAGS:
        _trust_with_unit_flags(facts, ctx, plan)
    else:
        _trust_with_daemon_json(facts, ctx, dc.flag_registries(flags), plan)
    return plan


def copy_docker_unit(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Make docker.service read /etc/default/docker, when DOCKER_OPTS is used (step 6)."""
    plan = StepPlan("copy-docker-unit")
    if trust_method(facts, ctx) != "docker-opts":
        plan.notes.append(f"not needed: the registry is trusted through {_where(facts, ctx)}")
    elif DEFAULT_DOCKER in facts.engine(NAME).service.get("EnvironmentFiles", "") or dc.ENV_DROPIN in dropins(facts):
        plan.notes.append(f"not needed: docker.service already reads {DEFAULT_DOCKER}")
    else:
        # A drop-in instead of a copied unit: package upgrades keep fixing the unit.
        plan.files.append(file_change(facts, dc.ENV_DROPIN, dc.ENV_TEXT))
        plan.handler = RESTART
    return plan


def add_docker_opts(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Make dockerd's ExecStart pass $DOCKER_OPTS, when DOCKER_OPTS is used (step 7)."""
    plan = StepPlan("add-docker-opts")
    argv = dc.exec_start_argv(facts.engine(NAME).service.get("ExecStart", ""))
    if trust_method(facts, ctx) != "docker-opts":
        plan.notes.append(f"not needed: the registry is trusted through {_where(facts, ctx)}")
    elif "$DOCKER_OPTS" in argv or "${DOCKER_OPTS}" in argv:
        plan.notes.append("not needed: dockerd's ExecStart already passes $DOCKER_OPTS")
    else:
        text = dc.exec_dropin_text(argv, dc.version(facts.engine(NAME).version))
        if dropins(facts).get(dc.EXEC_DROPIN) == text:
            # systemd shows the new ExecStart only after restart-docker reloads it.
            plan.notes.append(f"{dc.EXEC_DROPIN} in place; applies when Docker restarts")
        else:
            plan.files.append(file_change(facts, dc.EXEC_DROPIN, text))
            plan.handler = RESTART
    return plan


def restart_docker(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Reload or restart Docker only if earlier steps changed its config (step 8)."""
    plan = StepPlan("restart-docker")
    pending = facts.files.get(PENDING, "").strip()
    if pending:
        configured = facts.files.get(DAEMON_JSON, "") + facts.files.get(DEFAULT_DOCKER, "")
        secure = ctx.inventory.registry.secure
        expect = ctx.registry if ctx.registry_address and (secure or ctx.registry in configured) else None
        plan.fire = Handler(expect, insecure=not secure)
        plan.notes.append(f"Docker {pending_action(pending)}")
    elif ctx.notified:
        plan.notes.append(f"Docker would {ctx.notified} after the changes above")
    else:
        pid = facts.engine(NAME).service.get("MainPID", "?")
        plan.notes.append(f"nothing changed: Docker left running (pid {pid})")
    return plan


UNIT_FLAGS = "unit-flags"


def trust_method(facts: HostFacts, ctx: StepContext) -> str:
    """How this host trusts the registry: the configured method, or with ``auto`` the one it already uses.

    ``auto``: DOCKER_OPTS before Docker 1.12; DOCKER_OPTS (or the unit's own
    flags) where dockerd already gets ``--insecure-registry`` flags; else daemon.json.
    Nothing to choose for a TLS registry.
    """
    if ctx.inventory.registry.secure:
        return "certs.d"
    chosen = ctx.inventory.docker.config_method
    if chosen != "auto":
        return chosen
    installed = dc.version(facts.engine(NAME).version)
    if installed and installed < dc.DOCKERD_SINCE:
        return "docker-opts"
    return _flag_method(facts, ctx) or "daemon-json"


def _flag_method(facts: HostFacts, ctx: StepContext) -> str | None:
    """Where dockerd's --insecure-registry flags come from, if they are the host's one method.

    Not with --repair (it moves DOCKER_OPTS flags into daemon.json), nor when
    daemon.json lists insecure-registries too: dockerd cannot run that way, so
    the daemon.json path refuses it and names the fix.
    """
    if ctx.repair or not dc.flag_registries(dockerd_flags(facts)):
        return None
    try:
        if "insecure-registries" in dc.load_daemon_json(facts.files.get(DAEMON_JSON)):
            return None
    except dc.ConfigError:
        return None
    return UNIT_FLAGS if _unit_flag_registries(facts) else "docker-opts"


def _unit_flag_registries(facts: HostFacts) -> list[str]:
    """Registries named by --insecure-registry in docker.service's own ExecStart (not DOCKER_OPTS)."""
    return dc.flag_registries(dc.exec_start_argv(facts.engine(NAME).service.get("ExecStart", ""))[1:])


def _unit_flags_error(facts: HostFacts, flagged: list[str], fix: str) -> str:
    unit = facts.engine(NAME).service.get("FragmentPath") or "its unit"
    return f"--insecure-registry {' '.join(flagged)} is set in docker.service's ExecStart ({unit}): {fix}"


def _trust_with_unit_flags(facts: HostFacts, ctx: StepContext, plan: StepPlan) -> None:
    """Flags in the unit itself: fine if they already cover the registry; this tool does not edit units."""
    flagged = dc.flag_registries(dockerd_flags(facts))
    if dc.trusts(flagged, ctx.registry):
        plan.notes.append(f"{ctx.registry} already trusted by dockerd's --insecure-registry flags")
        return
    plan.error = _unit_flags_error(
        facts,
        _unit_flag_registries(facts),
        f"adding {ctx.registry} to {DAEMON_JSON} would stop dockerd; add --insecure-registry {ctx.registry} "
        f"there, or move the flags into {DAEMON_JSON}'s insecure-registries by hand",
    )


def _trust_with_daemon_json(facts: HostFacts, ctx: StepContext, flagged: list[str], plan: StepPlan) -> None:
    unit_flags = _unit_flag_registries(facts) if flagged else []
    if unit_flags:
        plan.error = _unit_flags_error(
            facts,
            unit_flags,
            f"adding the registry to {DAEMON_JSON} too would stop dockerd, and --repair only edits "
            f"{DEFAULT_DOCKER}; remove it there by hand",
        )
        return
    if flagged and not ctx.repair:
        plan.error = (
            f"dockerd already gets --insecure-registry {' '.join(flagged)} as a flag "
            f"({DEFAULT_DOCKER}); {_both_ways(facts)}. "
            "Re-run with --repair to move the flags into daemon.json"
        )
        return
    if flagged:
        cleaned = dc.without_flag_registries(facts.files.get(DEFAULT_DOCKER))
        plan.files.append(file_change(facts, DEFAULT_DOCKER, cleaned))
    current = facts.files.get(DAEMON_JSON)
    try:
        merged = dc.with_insecure_registries(current, [*flagged, ctx.registry])
    except dc.ConfigError as error:
        plan.error = str(error)
        return
    if merged != current:
        plan.files.append(file_change(facts, DAEMON_JSON, merged))
    if plan.files:
        # Flags only change on a restart; insecure-registries alone reloads.
        plan.handler = RESTART if flagged or not facts.engine(NAME).answers else RELOAD
    else:
        plan.notes.append(f"{ctx.registry} already in {DAEMON_JSON}")


def _both_ways(facts: HostFacts) -> str:
    """Why daemon.json cannot be used next to the flags, as the host has it now."""
    if "insecure-registries" in dc.load_daemon_json(facts.files.get(DAEMON_JSON)):
        return f"{DAEMON_JSON} lists insecure-registries too, so dockerd cannot start this way"
    return f"adding the registry to {DAEMON_JSON} too would stop dockerd"


def _trust_with_docker_opts(facts: HostFacts, ctx: StepContext, daemon: dict, plan: StepPlan) -> None:
    if "insecure-registries" in daemon:
        plan.error = (
            f"{DAEMON_JSON} already sets insecure-registries; setting them in DOCKER_OPTS too "
            "would stop dockerd. Use docker.config_method daemon-json"
        )
        return
    current = facts.files.get(DEFAULT_DOCKER)
    updated = dc.with_docker_opts_registry(current, ctx.registry)
    if updated == current:
        plan.notes.append(f"{ctx.registry} already in DOCKER_OPTS")
        return
    plan.files.append(file_change(facts, DEFAULT_DOCKER, updated))
    plan.handler = RESTART


TARGET_STEPS = (trust_registry, copy_docker_unit, add_docker_opts)


def configure_target(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """A target's trust steps merged into one plan, with the Docker handler when anything is pending.

    One plan, so that a node's changes, its handler and the check that follows
    cost one session.
    """
    plan = StepPlan("configure-targets")
    for planner in TARGET_STEPS:
        part = planner(facts, ctx)
        if part.error:
            plan.error = part.error
            return plan
        plan.files += part.files
        plan.handler = merged_handler(plan.handler, part.handler)
    pending = facts.files.get(PENDING, "").strip()
    if plan.handler or pending:
        plan.handler = merged_handler(plan.handler, pending_action(pending) if pending else None)
        plan.fire = Handler(ctx.registry, insecure=not ctx.inventory.registry.secure)
        plan.notes.append(f"Docker {plan.handler}")
    return plan


def _where(facts: HostFacts, ctx: StepContext) -> str:
    method = trust_method(facts, ctx)
    return {"certs.d": "its CA", UNIT_FLAGS: "docker.service's own flags"}.get(method, "daemon.json")


def pending_action(pending: str) -> str:
    """What the handler does for these PENDING lines: a unit or a flag change needs a restart."""
    return RESTART if RESTART in pending or "/etc/systemd/" in pending else RELOAD
