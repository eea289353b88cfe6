"""Docker behind the engine interface."""

from __future__ import annotations

from ...facts.base import Section, files
from ...model.context import StepContext
from ...model.facts import HostFacts
from ...model.plan import StepPlan
from ..base import PRESENT, PULLED, ContainerEngine, Insecure
from ..resolve import secret_file
from . import config as dc
from .facts import CONFIG, HELD_IMAGES, REGISTRY_CONFIG, VERSION
from .insecure import insecure_entries
from .paths import DOCKER_SOCKET, NAME, ca_path
from .resolve import auth_header, resolve_section
from .trust import configure_target
from .verify import engine_and_check, quick_verify_script

# Shell: api_pull REF -- dockerd pulls REF (POST /images/create, REF with its tag or digest; the login
# header file in $0 when there is one); its JSON lines on success, else the error alone, status 1.
API_PULL = f"""api_pull() {{
  if ! command -v curl >/dev/null 2>&1 || [ ! -S {DOCKER_SOCKET} ]; then docker pull "$1"; return; fi
  r=$1; set --; case $0 in /*) [ -f "$0" ] && set -- -H "@$0" ;; esac
  o=$(curl -sS -m 3600 "$@" --unix-socket {DOCKER_SOCKET} -X POST "http://docker/images/create?fromImage=$r" 2>&1) || {{ printf '%s\\n' "$o"; return 1; }}
  case $o in
    *'"error'*) printf '%s\\n' "$o" | sed -n 's/.*"error":"\\([^"]*\\)".*/\\1/p' | tail -1; return 1 ;;
    *'"status":"Status: '*) printf '%s\\n' "$o"; return 0 ;;
  esac
  m=$(printf '%s' "$o" | sed -n 's/.*"message":"\\([^"]*\\)".*/\\1/p'); printf '%s\\n' "${{m:-$o}}"; return 1
}}"""


class Docker(ContainerEngine):
    name = NAME
    # Pulls go to dockerd's API with curl: forty `docker pull` at once (8 a node) cost two shared cores
    # ~40 ms of CPU each just to start, before the first byte. The CLI is the fallback (no curl, no socket).
    before_pull = API_PULL
    pull_command = 'api_pull "$ref"'
    # Docker tells whether it was up to date, and the digest (the API's JSON lines, or the CLI's).
    pull_status = f'case "$out" in *"Image is up to date"*) status={PRESENT} ;; *) status={PULLED} ;; esac'
    pull_digest = (
        "printf '%s\\n' \"$out\" | sed -n 's/^Digest: //p; s/.*\"Digest: \\([^\"]*\\)\".*/\\1/p' | tail -1"
    )

    def pull_login(self, ctx: StepContext | None) -> tuple[str, str]:
        """With a login, dockerd gets it in its X-Registry-Auth header, from a private file ($0 of each pull)."""
        if ctx is None or not ctx.login:
            return super().pull_login(ctx)
        prelude = f"d=$(mktemp -d) || exit 1\ntrap 'rm -rf \"$d\"' EXIT\n{secret_file('header', auth_header(ctx) + chr(10))}\n"
        return prelude, '"$d/header"'

    def version_sections(self) -> tuple[Section, ...]:
        return (VERSION,)

    def target_sections(self, ctx: StepContext, verify: bool) -> tuple[Section, ...]:
        return (*CONFIG, *self._tls(ctx), engine_and_check(ctx, verify=verify))

    def status_sections(self, ctx: StepContext) -> tuple[Section, ...]:
        tls = self._tls(ctx)
        # A secure registry: dockerd's own view of which registries it treats as insecure.
        return (VERSION, *CONFIG, *tls, *((REGISTRY_CONFIG,) if tls else ()))

    def _tls(self, ctx: StepContext) -> tuple[Section, ...]:
        """A secure registry: the CA Docker has for it."""
        if not ctx.inventory.registry.secure or not ctx.registry_address:
            return ()
        return (files(ca_path(ctx.registry)),)

    def resolve(self, ctx: StepContext, refs: list[str]) -> Section:
        return resolve_section(ctx, refs)

    def held_images(self) -> Section:
        return HELD_IMAGES

    def trust(self, facts: HostFacts, ctx: StepContext) -> StepPlan:
        return configure_target(facts, ctx)

    def insecure_entries(self, facts: HostFacts, registry: str) -> list[Insecure]:
        try:
            return insecure_entries(facts, registry)
        except dc.ConfigError:
            return []

    def trusted(self, facts: HostFacts, registry: str) -> bool | None:
        try:
            from_json, from_flags = dc.insecure_registries(facts)
        except dc.ConfigError:
            return None
        return dc.trusts([*from_json, *from_flags], registry)

    def ca_path(self, registry: str) -> str:
        return ca_path(registry)

    def verify_script(self, ctx: StepContext) -> str:
        return quick_verify_script(ctx)


DOCKER = Docker()
