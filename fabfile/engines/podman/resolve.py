"""Podman resolves each image through its registries.conf, its CA and the login (``podman manifest
inspect`` reads the manifest from the registry, no layer); the digest comes from the registry with
the same CA and login (podman prints the manifest, not its digest)."""

from __future__ import annotations

import base64
import json

from ...facts.base import Section
from ...model.context import StepContext
from ...registry.paths import REGISTRY_USER
from ..resolve import each, secret_file, section
from .paths import NAME, ca_path

ACCEPT = (
    "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
)


def _one(ctx: StepContext) -> str:
    """One image: podman reads it; then its digest, with podman's CA, from the manifest's headers."""
    scheme = ctx.scheme
    ca = f"--cacert {ca_path(ctx.registry)} " if ctx.inventory.registry.secure else ""
    return f"""d=$0; auth=; [ -s "$d/auth.json" ] && auth="--authfile $d/auth.json"
if ! said=$(podman manifest inspect $auth "$1" 2>&1 >/dev/null); then
  case $said in *"manifest unknown"*|*"not found"*) code=404 ;; *unauthorized*|*authentication*) code=401 ;; *) code=500 ;; esac
  echo "$1 $code $(printf '%s' "$said" | tail -n 1)"; exit 0
fi
repo=${{1#*/}}; tag=${{repo##*:}}; repo=${{repo%:*}}
digest=$(curl -sS -m 30 -I {ca}-H @"$d/basic" -H 'Accept: {ACCEPT}' "{scheme}://{ctx.registry}/v2/$repo/manifests/$tag" 2>/dev/null \\
  | tr -d '\\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p')
echo "$1 200 $digest"
"""


def resolve_section(ctx: StepContext, refs: list[str]) -> Section:
    """Every ref resolved by podman (logged in, through a private authfile, when the registry asks)."""
    files = ""
    if ctx.login:
        token = base64.b64encode(f"{REGISTRY_USER}:{ctx.password}".encode()).decode()
        files = secret_file("auth.json", json.dumps({"auths": {ctx.registry: {"auth": token}}})) + "\n"
        files += secret_file("basic", f"Authorization: Basic {token}\n") + "\n"
    else:
        files = ': > "$d/basic"\n'
    shell = (
        f'if command -v podman >/dev/null 2>&1 && d=$(mktemp -d); then\n{files}'
        f'{each(refs, _one(ctx), chr(34) + "$d" + chr(34))}rm -rf "$d"\nfi'
    )
    return section("podman-resolve", NAME, shell)
