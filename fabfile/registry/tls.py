"""A secure registry on the deployment host: its CA, its server certificate and its login.

``secure_registry`` is a pure planner like the documented steps: from the facts
of the deployment host (which keys exist, the certificates' extensions, the
server certificate's names, days left and issuer, the login files) it plans the
shell that makes, renews or mends what is missing. The CA key never leaves the
host, nor does the operator's server key (only its digest is read); the
password is made here and kept there (0600), never shown.
"""

from __future__ import annotations

import re

from ..facts.base import Section, Texts, files
from ..facts.system import NAMES
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.inventory import HTPASSWD as HTPASSWD_AUTH
from ..model.inventory import SELF_SIGNED
from ..model.plan import FileChange, StepPlan
from . import certs, paths
from .auth import plan_login
from .replica_tls import is_replica, issues_for_replicas, plan_replica_certs, plan_served, put_pair

RENEW_DAYS = 30
# What a registry without TLS or login is, and the one setting that changes it (deploy-host's row, status).
# It is read-only: nobody pushes through it, whatever they hold; writes go through the deployment host.
PLAIN = (
    "plain HTTP, no login: anyone who reaches its port can pull any image, and anyone on the way can "
    "swap what nodes pull"
)
TLS_AND_LOGIN = "set registry: {tls: self-signed, auth: htpasswd} for TLS and a login"
NO_LOGIN = "TLS, no login: anyone who reaches its port can pull any image (registry.auth: htpasswd for a login)"


def exposure(tls: str, auth: str) -> str:
    """What anyone who reaches the registry may do, and the setting that stops it; "" with TLS and a login."""
    if tls == "off":
        return f"{PLAIN}; {TLS_AND_LOGIN}"
    return NO_LOGIN if auth == "off" else ""


def tls_sections(ctx: StepContext) -> tuple[Section, ...]:
    """What the deployment host has of a secure registry (nothing when the registry is plain HTTP)."""
    if not ctx.inventory.registry.secure:
        return ()
    return (files(paths.CA_CERT, paths.OLD_CA_CERT, paths.SERVER_CERT, paths.HTPASSWD, paths.PASSWORD), _STATE, NAMES)


def _read_state(texts: Texts, facts: HostFacts) -> None:
    state: dict = {"keys": set(texts.get("tls-keys", "").split()), "sans": set(), "signed": False}
    for line in [*texts.get("tls-ca", "").splitlines(), *texts.get("tls-server", "").splitlines()]:
        word, _, rest = line.strip().partition(" ")
        if word == "days" and re.fullmatch(r"-?\d+", rest):
            state["days"] = int(rest)
        elif word == "signed":
            state["signed"] = rest == "yes"
        elif word in ("fingerprint", "strict"):
            state[word] = rest
        elif word in ("ca-ext", "server-ext", "ca-mode", "key-digest"):
            state[word.replace("-", "_")] = rest.strip()
        elif word == "san":
            state["sans"] |= {name.split(":", 1)[1].strip() for name in rest.split(",") if ":" in name}
    facts.registry.tls = state


# An openssl listing of extensions on one line.
_ONE_LINE = "tr -s ' \\n' ' ' | sed 's/^ //'"


_STATE = Section(
    "tls-state",
    f"""s tls-keys; for f in {paths.CA_KEY} {paths.SERVER_KEY} {paths.OLD_CA_KEY}; do [ -s "$f" ] && echo "$f"; done
tls_ca={paths.CA_CERT}; [ -s "$tls_ca" ] || tls_ca={paths.OLD_CA_CERT}
s tls-ca
[ -s "$tls_ca" ] && echo "ca-ext $(openssl x509 -noout -ext basicConstraints,keyUsage -in "$tls_ca" 2>/dev/null | {_ONE_LINE})"
[ -d {paths.CA_DIR} ] && echo "ca-mode $(stat -c %a {paths.CA_DIR})"
s tls-server
[ -s {paths.SERVER_KEY} ] && echo "key-digest $(sha256sum < {paths.SERVER_KEY} | cut -d' ' -f1)"
if [ -s {paths.SERVER_CERT} ]; then
  end=$(openssl x509 -enddate -noout -in {paths.SERVER_CERT} | cut -d= -f2)
  echo "days $(( ($(date -d "$end" +%s) - $(date +%s)) / 86400 ))"
  echo "san $(openssl x509 -noout -ext subjectAltName -in {paths.SERVER_CERT} 2>/dev/null | tail -n +2 | tr -d ' ')"
  echo "server-ext $(openssl x509 -noout -ext keyUsage,extendedKeyUsage -in {paths.SERVER_CERT} 2>/dev/null | {_ONE_LINE})"
  openssl verify -CAfile "$tls_ca" {paths.SERVER_CERT} >/dev/null 2>&1 && echo "signed yes"
  # What Python 3.13 (Debian 13) checks by default: VERIFY_X509_STRICT.
  strict=$(openssl verify -x509_strict -CAfile "$tls_ca" {paths.SERVER_CERT} 2>&1) || echo "strict $(printf '%s\\n' "$strict" | grep -m1 '^error' | sed 's/^error [0-9]* at [0-9]* depth lookup: //')"
  echo "fingerprint $(openssl x509 -noout -fingerprint -sha256 -in {paths.SERVER_CERT} | cut -d= -f2)"
fi""",
    _read_state,
)


def wanted_names(facts: HostFacts, ctx: StepContext) -> set[str]:
    """The names the server certificate must hold: the registry's address and name, the host's names and address."""
    hostname = ctx.inventory.registry.hostname
    return {name for name in (ctx.registry_address, hostname, ctx.inventory.deploy_host.address, *facts.system.names) if name}


def secure_registry(facts: HostFacts, ctx: StepContext) -> StepPlan:
    """Make the registry's CA, server certificate and login when TLS or auth are on (part of step 4)."""
    plan = StepPlan("secure-registry")
    settings = ctx.inventory.registry
    if not settings.secure:
        plan.notes.append(exposure(settings.tls, settings.auth))
        return plan
    if not ctx.registry_address:
        plan.error = "no registry address: the deployment host has none, set registry.address"
        return plan
    if is_replica(ctx):
        # A replica makes nothing: the deployment host's CA issued its certificate, and the login is theirs.
        if settings.tls != SELF_SIGNED:
            _plan_own_files(facts, ctx, plan)
        plan_served(facts, ctx, plan, settings.tls == SELF_SIGNED, settings.auth == HTPASSWD_AUTH)
    elif settings.tls == SELF_SIGNED:
        _plan_self_signed(facts, ctx, plan)
    else:
        _plan_own_files(facts, ctx, plan)
    if settings.auth == HTPASSWD_AUTH and not is_replica(ctx):
        plan_login(facts, plan)
    elif not plan.changed:
        plan.notes.append(exposure(settings.tls, settings.auth))
    return plan


def _plan_self_signed(facts: HostFacts, ctx: StepContext, plan: StepPlan) -> None:
    state = facts.registry.tls
    keys = state.get("keys", set())
    # Versions before paths.CA_DIR kept the CA next to the server's files, which the container saw.
    moving = paths.OLD_CA_KEY in keys and paths.CA_KEY not in keys
    if moving:
        plan.commands.append(certs.move_ca())
    elif state.get("ca_mode", "700") != "700":
        plan.commands.append(certs.private_ca_dir())
    has_cert = paths.CA_CERT in facts.files or (moving and paths.OLD_CA_CERT in facts.files)
    new_ca = not (paths.CA_KEY in keys or moving) or not has_cert
    if new_ca:
        plan.commands.append(certs.make_ca())
    elif not certs.sound_ca(state.get("ca_ext", "")):
        plan.commands.append(certs.reissue_ca())
    reason = _server_reason(facts, ctx, new_ca)
    if reason:
        plan.commands.append(certs.make_server_cert(reason, sorted(wanted_names(facts, ctx)), ctx.registry_address))
    if issues_for_replicas(ctx):
        plan_replica_certs(facts, ctx, plan, new_ca)
    if not plan.commands:
        plan.notes.append(f"TLS: server certificate valid {state['days']} more days")


def _server_reason(facts: HostFacts, ctx: StepContext, new_ca: bool) -> str:
    """Why the server certificate is made, renewed or re-issued now; "" when it is fine."""
    state = facts.registry.tls
    has_key = paths.SERVER_KEY in state.get("keys", set())
    return certs.reason(state, wanted_names(facts, ctx), new_ca, has_key, RENEW_DAYS)


def _plan_own_files(facts: HostFacts, ctx: StepContext, plan: StepPlan) -> None:
    own = ctx.inventory.registry.tls_files
    with open(own.ca, encoding="utf-8") as source:
        ca = source.read()
    if facts.files.get(paths.CA_CERT) != ca:
        plan.files.append(FileChange(paths.CA_CERT, facts.files.get(paths.CA_CERT), ca))
    if paths.OLD_CA_CERT in facts.files:
        # The CA's copy where the container used to see it: removed (backed up), the new one is in paths.CA_DIR.
        plan.files.append(FileChange(paths.OLD_CA_CERT, facts.files[paths.OLD_CA_CERT], None))
    with open(own.cert, encoding="utf-8") as source:
        cert = source.read()
    with open(own.key, "rb") as source:
        put_pair(facts, plan, cert, source.read())
    if plan.changed:
        return
    state = facts.registry.tls
    plan.notes.append(f"TLS: the operator's certificate, {state.get('days', '?')} more days")
    if state.get("strict"):
        plan.notes.append(
            f"warning: it fails strict X.509 checks ({state['strict']}): Python 3.13 clients "
            "(Debian 13's sync-images and status) refuse it; issue it with keyUsage and key identifiers"
        )
