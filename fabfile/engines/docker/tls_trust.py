"""Docker trusting a TLS registry: its CA in certs.d, and nothing that makes dockerd treat it as insecure.

The CA goes where Docker reads it on every pull (no reload). An insecure entry
this tool had added (``ADDR:PORT``, ``http://ADDR:PORT``) goes once TLS verifies
from the node with that CA; any other entry that covers the registry (a CIDR
block, dockerd's own view) fails the host, named: dockerd would skip the
certificate checks and fall back to plain HTTP, login included.
"""

from __future__ import annotations

from ...model.context import StepContext
from ...model.facts import HostFacts
from ...model.plan import RELOAD, RESTART, StepPlan
from ...registry.paths import CA_CERT
from ...registry.reach import tls_verified
from ..base import Insecure
from . import config as dc
from .config import file_change
from .insecure import IN_DAEMON_JSON, IN_DOCKER_OPTS, downgrade_error, insecure_entries
from .paths import DAEMON_JSON, DEFAULT_DOCKER, ca_path


def trust_with_ca(facts: HostFacts, ctx: StepContext, plan: StepPlan) -> None:
    """The CA in certs.d; this tool's insecure entries removed once TLS verifies; any other one refused."""
    # The deployment host's own CA first: this very run may have re-issued it.
    ca = facts.files.get(CA_CERT) or ctx.ca
    if not ca:
        plan.error = "the registry's CA is not on the deployment host yet: run fab deploy-host"
        return
    path = ca_path(ctx.registry)
    if facts.files.get(path) != ca:
        plan.files.append(file_change(facts, path, ca))
    try:
        found = insecure_entries(facts, ctx.registry)
    except dc.ConfigError as error:
        plan.error = str(error)
        return
    theirs = [entry for entry in found if not entry.ours]
    if theirs:
        plan.error = downgrade_error(theirs[0], ctx.registry)
    elif not found:
        plan.notes.append(f"{ctx.registry} trusted through its CA ({path})")
    elif tls_verified(facts):
        _remove_ours(facts, ctx, found, plan)
    elif facts.files.get(path) == ca:
        plan.error = not_verified(facts, ctx.registry, found[0])
    else:
        plan.notes.append(f"{ctx.registry} stays insecure in {found[0].where} until TLS verifies from here")


def not_verified(facts: HostFacts, registry: str, entry: Insecure) -> str:
    """Why a node that has the CA still treats the registry as insecure: TLS does not verify from there."""
    return (
        f"TLS to {registry} does not verify from here with the registry's CA ({facts.reach.tls or 'no answer'}): "
        f"it stays insecure in {entry.where}, and no login is sent"
    )


def _remove_ours(facts: HostFacts, ctx: StepContext, found: list[Insecure], plan: StepPlan) -> None:
    """This tool's entries out: daemon.json's with a reload (containers keep running); DOCKER_OPTS's only
    with --repair, since a flag changes only on a restart."""
    wheres = {entry.where for entry in found}
    if IN_DOCKER_OPTS in wheres and not ctx.repair:
        plan.error = (
            f"{ctx.registry} is an --insecure-registry flag of dockerd in {DEFAULT_DOCKER}: certificates are not "
            "checked and a login may go over plain HTTP; re-run with --repair to remove it (restarts Docker)"
        )
        return
    if wheres - {IN_DAEMON_JSON, IN_DOCKER_OPTS}:
        plan.error = downgrade_error(next(e for e in found if e.where not in (IN_DAEMON_JSON, IN_DOCKER_OPTS)), ctx.registry)
        return
    if IN_DAEMON_JSON in wheres:
        current = facts.files.get(DAEMON_JSON)
        plan.files.append(file_change(facts, DAEMON_JSON, dc.without_insecure_registry(current, ctx.registry)))
        plan.handler = RELOAD
    if IN_DOCKER_OPTS in wheres:
        current = facts.files.get(DEFAULT_DOCKER)
        plan.files.append(file_change(facts, DEFAULT_DOCKER, dc.without_flag_registries(current, ctx.registry)))
        plan.handler = RESTART
