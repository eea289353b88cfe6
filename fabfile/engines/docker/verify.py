"""Verification, step 9: the registry answers, and a probe image round-trips."""

from __future__ import annotations

import ipaddress
import shlex
import urllib.parse

from ...facts.base import Section, Texts
from ...model.context import StepContext
from ...model.facts import HostFacts
from ...model.inventory import RegistrySettings
from ...model.marks import FAIL_FUNCTION, MARK, between
from ...model.paths import PENDING
from ...registry.paths import REGISTRY_USER
from ...registry.probe_push import probe_push_script
from ...registry.reach import ENGINE_RESOLVED
from ..shell import login_lines, registry_answers
from .facts import PING, REGISTRY_CONFIG, VERSION_FROM_PING, read_registry_config, read_version
from .paths import DAEMON_JSON, DEFAULT_DOCKER, DOCKER_SOCKET, NAME, ca_path
from .resolve import auth_header

# A registry's answer to GET /v2/ in a shell case pattern. Over TLS, Go's server speaks HTTP/2, whose header
# names are lower case: matching only "Docker-Distribution-Api-Version" sent every TLS no-op to the full login and pull.
REGISTRY_HEADER = "*[Dd]ocker-[Dd]istribution-[Aa]pi-[Vv]ersion:' registry/2.0'"

VERIFY, VERIFIED = "verify", "verified"


def verify_script(ctx: StepContext, push: bool, container: bool | None = None) -> str:
    """Shell that checks the registry answers, and a probe image round-trips.

    ``push`` is for the deployment host: it pushes the probe through the writer (the registry
    nodes reach is read-only), drops its own copy, and pulls it back with docker through the
    registry; ``container`` (with ``push`` by default; a replica's check too) checks the registry
    container and its volume first. Targets only pull.
    """
    probe = shlex.quote(ctx.probe_image)
    container = push if container is None else container
    lines = [
        "set -e",
        FAIL_FUNCTION,
        *(_container_checks(ctx.inventory.registry) if container else []),
        *registry_answers(ctx, ca_path(ctx.registry)),
        *(_probe_push(ctx) if push else []),
        *(docker_login(ctx) if ctx.login else []),
        (
            f"docker pull {probe} >/dev/null 2>&1 || fail docker pull {probe}: "
            f"$(docker pull {probe} 2>&1 | tail -1)"
        ),
        f"echo {shlex.quote(f'{MARK} pulled {ctx.probe_image}')}",
    ]
    return "\n".join(lines) + "\n"


def docker_login(ctx: StepContext) -> list[str]:
    """docker login to the local registry: its credentials go to root's ~/.docker/config.json
    (0600), where kolla-ansible's own pulls put them too."""
    return login_lines(ctx.registry, REGISTRY_USER, ctx.password)


def _container_checks(settings: RegistrySettings) -> list[str]:
    name = shlex.quote(settings.name)
    storage = '{{range .Mounts}}{{if eq .Destination "/var/lib/registry"}}{{.Name}} {{.Source}}{{end}}{{end}}'
    return [
        f"state=$(docker inspect -f '{{{{.State.Status}}}}' {name} 2>/dev/null) || fail no container {name}",
        f'[ "$state" = running ] || fail container {name} is "$state"',
        (
            f"docker ps -a --filter {shlex.quote(f'name=^/{settings.name}$')} "
            f"--format '{MARK} container {{{{.Names}}}} {{{{.Image}}}} {{{{.Status}}}}'"
        ),
        f"set -- $(docker inspect -f '{storage}' {name})",
        # The space left is what decides whether the next push fits.
        (
            'space="volume ${1:-none}: $(df -h --output=avail "${2:-/}" | tail -1 | tr -d " ") free'
            ' of $(df -h --output=size "${2:-/}" | tail -1 | tr -d " ")"'
        ),
        f'echo "{MARK} $space"',
    ]


def _probe_push(ctx: StepContext) -> list[str]:
    """The probe pushed through the writer; the host's own copy dropped, so that the pull fetches it."""
    probe = shlex.quote(ctx.probe_image)
    return [
        f"( {probe_push_script(ctx)} ) || exit 1",
        f"docker rmi -f {probe} >/dev/null 2>&1 || true",
    ]


def engine_and_check(ctx: StepContext, verify: bool) -> Section:
    """A target's Docker version and, with ``verify``, the registry check, in the facts session.

    Every process counts when twenty nodes share two cores: the engine's version
    comes from its API socket in the same curl as the check (the docker CLI
    costs ~40 ms of CPU a call), and the rest is shell builtins where it can be.
    The check runs only where the registry is named already and nothing is
    pending: a run that changes nothing then needs no second session. It
    resolves the probe through dockerd (its distribution inspect endpoint: the
    manifest through its own trust and login, no layer, nothing written), in
    one curl whose response headers carry the version too; the full pull is
    for runs that changed something.
    """
    secure = ctx.inventory.registry.secure
    # Where the node already trusts the registry: named in its config, or (TLS) its CA in place and
    # dockerd not treating it as insecure (else the login would go over an unchecked connection).
    trusted = (
        f"[ -s {shlex.quote(ca_path(ctx.registry))} ] && {_dockerd_checks_certificates(ctx)}"
        if secure
        else f"{{ names {DAEMON_JSON} || names {DEFAULT_DOCKER}; }}"
    )
    check = f"[ ! -s {PENDING} ] && {trusted} && check=yes" if verify else ""
    shell = f"""names() {{ [ -f "$1" ] && while IFS= read -r l || [ -n "$l" ]; do case $l in *{shlex.quote(ctx.registry)}*) return 0 ;; esac; done < "$1"; return 1; }}
{_registry_config(ctx) if secure else ""}
check=
{check}
if [ -n "$check" ]; then {_resolve_curl(ctx)}
else out=$(curl {PING} 2>/dev/null) || out=; fi
{VERSION_FROM_PING}
if [ -n "$check" ]; then
  s {VERIFY}
  {{ {_judge(ctx, pull=False)}
  }} 2>&1
  status=$?
  s {VERIFIED}; echo $status
fi"""
    return Section("engine-and-check", shell, _engine_and_check)


def _registry_config(ctx: StepContext) -> str:
    """Shell: dockerd's own view of its registries (its /info, from its socket: no docker CLI), a section."""
    return f"""info=$(curl -sS -m 20 --unix-socket {DOCKER_SOCKET} http://docker/info 2>/dev/null) || info=
s {REGISTRY_CONFIG.name}; printf '%s\\n' "$info"
"""


def _dockerd_checks_certificates(ctx: StepContext) -> str:
    """Shell condition: "$info" shows dockerd checks the registry's certificates. Only a plain case
    passes: the registry not named there at all and no insecure CIDR but dockerd's loopback ones
    (a registry on loopback never passes); anything else is left to the planner, which reads all of it."""
    if _loopback(ctx.registry_address):
        return "false"
    named = shlex.quote(f'"{ctx.registry}"')
    # The CIDR list's entries one by one in shell builtins (tr and sed cost two processes a node).
    return (
        f"case $info in *'\"InsecureRegistryCIDRs\":'*) ;; *) false ;; esac && "
        f"case $info in *{named}*) false ;; *) true ;; esac && "
        "c=${info#*'\"InsecureRegistryCIDRs\":'} && c=${c%%]*} && { case $c in \\[*) c=${c#?} ;; esac; } && "
        "{ r=0; while :; do e=${c%%,*}; case $e in '\"127.0.0.0/8\"'|'\"::1/128\"'|'') ;; *) r=1; break ;; esac; "
        '[ "$e" = "$c" ] && break; c=${c#*,}; done; [ $r = 0 ]; }'
    )


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _engine_and_check(texts: Texts, facts: HostFacts) -> None:
    read_version(texts, facts)
    if REGISTRY_CONFIG.name in texts:
        read_registry_config(facts, texts[REGISTRY_CONFIG.name])
    status = texts.get(VERIFIED, "").strip()
    checked = between(texts.output, VERIFY, VERIFIED)
    if status.isdigit() and checked is not None:
        facts.engine(NAME).checked = (int(status), checked)


def quick_verify_script(ctx: StepContext) -> str:
    """Shell: the registry answers /v2/ and the engine pulls the probe, with one curl (two with a login).

    When that does not plainly succeed (or there is no curl), the full check of
    ``verify_script`` runs, so failures read as they always did.
    """
    return f"{_check_curl(ctx)}\n{_judge(ctx)}\n"


def _check_curl(ctx: StepContext) -> str:
    """Shell that sets "$out": GET /v2/ on the registry, then the engine's API pulls the probe.

    A secure registry is checked against the CA the node has for it. With a login, the pull
    (its X-Registry-Auth header read from stdin, never argv) runs only once GET /v2/, without
    credentials, answered as a registry: over TLS verified with that CA when the registry is secure.
    """
    repository, _, tag = ctx.probe_image.rpartition(":")
    query = urllib.parse.urlencode({"fromImage": repository, "tag": tag})
    ca = f"--cacert {shlex.quote(ca_path(ctx.registry))} " if ctx.inventory.registry.secure else ""
    get = f"-sS -m 20 {ca}-D - -o /dev/null {shlex.quote(f'{ctx.scheme}://{ctx.registry}/v2/')}"
    fetch = f"-sS -m 600 --unix-socket {DOCKER_SOCKET} -X POST 'http://docker/images/create?{query}'"
    if not ctx.login:
        return f"out=$(curl {get} --next {fetch} 2>&1) || out="
    return f"""out=$(curl {get} 2>&1) || out=
case $out in {REGISTRY_HEADER}*)
  pulled=$(curl -H @- {fetch} 2>&1 <<'KOLLA_REGISTRY_AUTH'
{auth_header(ctx)}
KOLLA_REGISTRY_AUTH
) || pulled=
  out="$out
$pulled" ;;
esac"""


def _resolve_curl(ctx: StepContext) -> str:
    """Shell that sets "$out": dockerd's response to resolving the probe (its distribution inspect endpoint:
    the manifest's descriptor through its own TLS and credentials, no layer downloaded, nothing stored),
    headers included: their Server names dockerd's version, so no /_ping is needed.

    No GET /v2/ of our own first: dockerd checks the registry's certificate itself (the caller runs
    this only where its running config does not treat the registry as insecure), and a second TLS
    handshake per node is what made a TLS no-op cost twice a plain one on two shared cores.
    """
    url = shlex.quote(f"http://docker/distribution/{ctx.probe_image}/json")
    resolve = f"-sS -m 60 --unix-socket {DOCKER_SOCKET} -D - {url}"
    if not ctx.login:
        return f"out=$(curl {resolve} 2>&1) || out="
    return f"""out=$(curl -H @- {resolve} 2>&1 <<'KOLLA_REGISTRY_AUTH'
{auth_header(ctx)}
KOLLA_REGISTRY_AUTH
) || out="""


def _judge(ctx: StepContext, pull: bool = True) -> str:
    """Shell: whether "$out" shows a registry and a finished pull (or the probe resolved); else the full check."""
    if pull:
        shown = f"""{REGISTRY_HEADER}*'"status":"Status: '*) case $out in *'"error'*) out= ;; esac ;;"""
        done, resolved = f"{MARK} pulled {ctx.probe_image}", ""
    else:
        shown = """*'"Descriptor":{'*'"digest":"sha256:'*) ;;"""
        done = f"{MARK} resolved {ctx.probe_image}"
        resolved = f"{ENGINE_RESOLVED}=1; "
    return f"""case $out in
  {shown}
  *) out= ;;
esac
if [ -n "$out" ]; then {resolved}echo {shlex.quote(done)}; else ( {verify_script(ctx, push=False)} ); fi"""
