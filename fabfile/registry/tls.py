"""A secure registry on the deployment host: its CA, its server certificate and its login.

``secure_registry`` is a pure planner like the documented steps: from the facts
of the deployment host (which keys exist, the server certificate's names, days
left and issuer, the login files) it plans the shell that makes or renews what
is missing. The CA key never leaves the host; the password is made here and
kept there (0600), never shown.
"""

from __future__ import annotations

import re
import shlex

from ..facts.base import Section, Texts, files
from ..facts.system import NAMES
from ..model.context import StepContext
from ..model.facts import HostFacts
from ..model.inventory import HTPASSWD as HTPASSWD_AUTH
from ..model.inventory import OWN_FILES, SELF_SIGNED
from ..model.plan import FileChange, StepPlan
from .auth import plan_login
from .paths import CA_CERT, CA_KEY, HTPASSWD, PASSWORD, SERVER_CERT, SERVER_KEY, TLS_DIR

RENEW_DAYS = 30
SERVER_DAYS = 365
CA_DAYS = 3650


def tls_sections(ctx: StepContext) -> tuple[Section, ...]:
    """What the deployment host has of a secure registry (nothing when the registry is plain HTTP)."""
    settings = ctx.inventory.registry
    if not settings.secure:
        return ()
    own_key = (SERVER_KEY,) if settings.tls == OWN_FILES else ()
    return (files(CA_CERT, SERVER_CERT, *own_key, HTPASSWD, PASSWORD), _STATE, NAMES)


def _read_state(texts: Texts, facts: HostFacts) -> None:
    state: dict = {"keys": set(texts.get("tls-keys", "").split()), "sans": set(), "signed": False}
    for line in texts.get("tls-server", "").splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "days" and re.fullmatch(r"-?\d+", rest):
            state["days"] = int(rest)
        elif word == "signed":
            state["signed"] = rest == "yes"
        elif word == "fingerprint":
            state["fingerprint"] = rest
        elif word == "san":
            state["sans"] |= {name.split(":", 1)[1].strip() for name in rest.split(",") if ":" in name}
    facts.registry.tls = state


_STATE = Section(
    "tls-state",
    f"""s tls-keys; for f in {CA_KEY} {SERVER_KEY}; do [ -s "$f" ] && echo "$f"; done
s tls-server
if [ -s {SERVER_CERT} ]; then
  end=$(openssl x509 -enddate -noout -in {SERVER_CERT} | cut -d= -f2)
  echo "days $(( ($(date -d "$end" +%s) - $(date +%s)) / 86400 ))"
  echo "san $(openssl x509 -noout -ext subjectAltName -in {SERVER_CERT} 2>/dev/null | tail -n +2 | tr -d ' ')"
  openssl verify -CAfile {CA_CERT} {SERVER_CERT} >/dev/null 2>&1 && echo "signed yes"
  echo "fingerprint $(openssl x509 -noout -fingerprint -sha256 -in {SERVER_CERT} | cut -d= -f2)"
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
        plan.notes.append("plain HTTP, as the procedure (registry.tls: off)")
        return plan
    if not ctx.registry_address:
        plan.error = "no registry address: the deployment host has none, set registry.address"
        return plan
    if settings.tls == SELF_SIGNED:
        _plan_self_signed(facts, ctx, plan)
    else:
        _plan_own_files(facts, ctx, plan)
    if settings.auth == HTPASSWD_AUTH:
        plan_login(facts, plan)
    return plan


def _plan_self_signed(facts: HostFacts, ctx: StepContext, plan: StepPlan) -> None:
    state = facts.registry.tls
    keys = state.get("keys", set())
    new_ca = CA_KEY not in keys or CA_CERT not in facts.files
    missing = wanted_names(facts, ctx) - state.get("sans", set())
    days = state.get("days")
    if new_ca:
        plan.commands.append(_make_ca())
    if new_ca or SERVER_KEY not in keys or days is None:
        reason = "make the registry's server certificate"
    elif days < RENEW_DAYS:
        reason = f"renew the server certificate ({days} days left)"
    elif missing:
        reason = f"re-issue the server certificate for {', '.join(sorted(missing))}"
    elif not state.get("signed"):
        reason = "re-issue the server certificate: the CA did not sign it"
    else:
        plan.notes.append(f"TLS: server certificate valid {days} more days")
        return
    plan.commands.append(_make_server_cert(reason, sorted(wanted_names(facts, ctx)), ctx.registry_address))


def _plan_own_files(facts: HostFacts, ctx: StepContext, plan: StepPlan) -> None:
    own = ctx.inventory.registry.tls_files
    for path, local, secret in ((CA_CERT, own.ca, False), (SERVER_CERT, own.cert, False), (SERVER_KEY, own.key, True)):
        with open(local, encoding="utf-8") as source:
            text = source.read()
        if facts.files.get(path) != text:
            plan.files.append(FileChange(path, facts.files.get(path), text, mode="600" if secret else "644", secret=secret))
    if not plan.files:
        plan.notes.append(f"TLS: the operator's certificate, {facts.registry.tls.get('days', '?')} more days")


def _make_ca() -> str:
    return f"""# make the registry's CA (its key stays on this host, 0600)
mkdir -p {TLS_DIR} && chmod 755 {TLS_DIR}
(umask 077; openssl genrsa -out {CA_KEY} 4096 2>/dev/null)
openssl req -x509 -new -key {CA_KEY} -sha256 -days {CA_DAYS} -subj '/CN=kolla-registry CA' -out {CA_CERT}"""


def _make_server_cert(reason: str, names: list[str], common_name: str) -> str:
    sans = ",".join(f"IP:{name}" if _is_ip(name) else f"DNS:{name}" for name in names)
    return f"""# {reason}
mkdir -p {TLS_DIR}
(umask 077; openssl genrsa -out {SERVER_KEY}.new 2048 2>/dev/null)
printf '%s\\n' {shlex.quote(f"subjectAltName={sans}")} 'extendedKeyUsage=serverAuth' > {TLS_DIR}/server.ext
openssl req -new -key {SERVER_KEY}.new -subj {shlex.quote(f"/CN={common_name}")} -out {TLS_DIR}/server.csr
openssl x509 -req -in {TLS_DIR}/server.csr -CA {CA_CERT} -CAkey {CA_KEY} -CAcreateserial -days {SERVER_DAYS} -sha256 -extfile {TLS_DIR}/server.ext -out {SERVER_CERT}.new 2>/dev/null
mv -f {SERVER_KEY}.new {SERVER_KEY}; mv -f {SERVER_CERT}.new {SERVER_CERT}
rm -f {TLS_DIR}/server.csr {TLS_DIR}/server.ext"""


def _is_ip(name: str) -> bool:
    return bool(re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", name))
