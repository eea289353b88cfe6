"""Replicas with TLS and a login: their certificates issued on the deployment host, their files learnt from it.

With ``tls: self-signed`` the CA stays on the deployment host (its key never leaves it). There it
also issues each replica's server certificate, naming ``registry.hostname`` and the replica's own
address and name, keeps it beside the CA (its folder 0700, the key 0600) and renews or re-issues
it by the same rules as its own. deploy-host then runs each replica with what the deployment host
holds for it (``Served``): the certificate is written there as a file, the key only through the
apply script's stdin (0600 there; compared by its digest, never read back). With ``auth:
htpasswd`` every instance gets the deployment host's one login file.
"""

from __future__ import annotations

import shlex

from ..facts.base import Section, Texts, files
from ..model.context import Served, StepContext
from ..model.facts import HostFacts
from ..model.inventory import SELF_SIGNED, Host, Inventory
from ..model.plan import FileChange, StepPlan
from . import certs
from .paths import CA_CERT, HTPASSWD, SERVER_CERT, replica_cert, replica_key

MARK_NAME = "tls-replicas"


def replica_names(inventory: Inventory, replica: Host) -> list[str]:
    """What a replica's certificate names: the registry's one name, the replica's address and its name."""
    return sorted({name for name in (inventory.registry.hostname, replica.address, replica.name) if name})


def is_replica(ctx: StepContext) -> bool:
    """Whether the host being planned for runs a replica (not the deployment host's instance)."""
    inventory = ctx.inventory
    return bool(ctx.host_name) and inventory.is_replica(inventory.resolve(ctx.host_name))


def issues_for_replicas(ctx: StepContext) -> bool:
    """Whether this host's run issues the replicas' certificates: the deployment host, with its own CA."""
    inventory = ctx.inventory
    if inventory.registry.tls != SELF_SIGNED or not inventory.registry.replicas or not ctx.host_name:
        return False
    return inventory.is_deploy_host(inventory.resolve(ctx.host_name))


def replica_sections(ctx: StepContext) -> tuple[Section, ...]:
    """On the deployment host: each replica's certificate as its CA holds it (days left, names, signed, usage)."""
    if not issues_for_replicas(ctx):
        return ()
    lines = []
    for replica in ctx.inventory.registry.replicas:
        name, cert, key = shlex.quote(replica.name), replica_cert(replica.name), replica_key(replica.name)
        lines.append(
            f"""[ -s {key} ] && echo {name} key yes
if [ -s {cert} ]; then
  end=$(openssl x509 -enddate -noout -in {cert} | cut -d= -f2)
  echo {name} days $(( ($(date -d "$end" +%s) - $(date +%s)) / 86400 ))
  echo {name} san $(openssl x509 -noout -ext subjectAltName -in {cert} 2>/dev/null | tail -n +2 | tr -d ' ')
  echo {name} server-ext $(openssl x509 -noout -ext keyUsage,extendedKeyUsage -in {cert} 2>/dev/null | tr -s ' \\n' ' ')
  openssl verify -CAfile {CA_CERT} {cert} >/dev/null 2>&1 && echo {name} signed yes
fi"""
        )
    return (Section(MARK_NAME, f"s {MARK_NAME}\n" + "\n".join(lines), _read_replicas),)


def _read_replicas(texts: Texts, facts: HostFacts) -> None:
    found: dict[str, dict] = {}
    for line in texts.get(MARK_NAME, "").splitlines():
        name, word, rest = (line.strip().split(" ", 2) + ["", ""])[:3]
        state = found.setdefault(name, {"sans": set(), "signed": False, "keys": set()})
        if word == "key":
            state["keys"] = {"server"}
        elif word == "days" and rest.lstrip("-").isdigit():
            state["days"] = int(rest)
        elif word == "san":
            state["sans"] = {item.split(":", 1)[1] for item in rest.split(",") if ":" in item}
        elif word == "server-ext":
            state["server_ext"] = rest.strip()
        elif word == "signed":
            state["signed"] = True
    facts.registry.tls["replicas"] = found


def plan_replica_certs(facts: HostFacts, ctx: StepContext, plan: StepPlan, new_ca: bool) -> None:
    """On the deployment host: each replica's certificate made, renewed or re-issued where it is not right."""
    held = facts.registry.tls.get("replicas") or {}
    for replica in ctx.inventory.registry.replicas:
        state = held.get(replica.name) or {}
        names = replica_names(ctx.inventory, replica)
        reason = certs.reason(state, set(names), new_ca, bool(state.get("keys")))
        if reason:
            command = certs.make_server_cert(
                f"{replica.name}: {reason}", names, replica.address, replica_cert(replica.name), replica_key(replica.name)
            )
            plan.commands.append(command)


def served_sections(inventory: Inventory) -> tuple[Section, ...]:
    """On the deployment host, read as root: the login file and each replica's certificate and key."""
    paths = [replica_cert(r.name) for r in inventory.registry.replicas] + [replica_key(r.name) for r in inventory.registry.replicas]
    return (files(HTPASSWD, *paths),)


def served_from_facts(inventory: Inventory, facts: HostFacts) -> dict[str, Served]:
    """What each replica serves with, from the deployment host's facts (gathered with ``served_sections``)."""
    htpasswd = facts.files.get(HTPASSWD, "")
    return {
        replica.name: Served(facts.files.get(replica_cert(replica.name), ""), facts.files.get(replica_key(replica.name), ""), htpasswd)
        for replica in inventory.registry.replicas
    }


def plan_served(facts: HostFacts, ctx: StepContext, plan: StepPlan, tls: bool, login: bool) -> None:
    """On a replica: the certificate and key the deployment host issued for it (``tls``) and the one login
    file (``login``), written where they differ. Missing: a check run says they come from the deployment
    host's run; a real run fails naming the fix."""
    served = ctx.served or Served()
    deploy = ctx.inventory.deploy_host.name
    missing = [what for what, needed, have in (
        ("its certificate", tls, served.cert and served.key), ("the login file", login, served.htpasswd)
    ) if needed and not have]  # fmt: skip
    if missing:
        why = f"{' and '.join(missing)} from {deploy}"
        if served.problem:
            plan.error = f"no {why}: {served.problem}"
        elif ctx.modes.check:
            plan.commands.append(f"# write {why} (made by {deploy}'s run)")
        else:
            plan.error = f"no {why}: run fab deploy-host with {deploy} ({ctx.inventory.path})"
        return
    if tls:
        put_pair(facts, plan, served.cert, served.key.encode(), f"the key {deploy} issued for this replica:")
    if login and facts.files.get(HTPASSWD) != served.htpasswd:
        plan.files.append(FileChange(HTPASSWD, facts.files.get(HTPASSWD), served.htpasswd, mode="600", secret=True))


def put_pair(facts: HostFacts, plan: StepPlan, cert: str, key: bytes, whose: str = "the operator's") -> None:
    """The server certificate (a file) and its key (a command: compared by its digest, never read back)."""
    if facts.files.get(SERVER_CERT) != cert:
        plan.files.append(FileChange(SERVER_CERT, facts.files.get(SERVER_CERT), cert))
    current = facts.registry.tls.get("key_digest", "")
    if certs.digest(key) != current:
        plan.commands.append(certs.put_key(key, current, whose))
