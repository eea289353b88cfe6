"""Docker resolves each image through its own trust and credentials: the distribution inspect endpoint
(``GET /distribution/REF/json`` on its socket) fetches the manifest's descriptor, no layer."""

from __future__ import annotations

import base64
import json

from ...facts.base import Section
from ...model.context import StepContext
from ...registry.paths import REGISTRY_USER
from ..resolve import each, secret_file, section
from .paths import DOCKER_SOCKET, NAME

# One image: the endpoint's JSON and HTTP status, flattened to "REF STATUS DIGEST" or "REF STATUS WHY".
ONE = f"""out=$(curl -sS -m 30 -H @"$0" --unix-socket {DOCKER_SOCKET} -w '\\n%{{http_code}}' "http://docker/distribution/$1/json" 2>&1)
code=$(printf '%s' "$out" | tail -n 1); body=$(printf '%s' "$out" | sed '$d' | tr '\\n' ' ')
case $code in
  200) said=$(printf '%s' "$body" | sed -n 's/.*"digest":"\\(sha256:[0-9a-f]*\\)".*/\\1/p') ;;
  *) said=$(printf '%s' "$body" | sed -n 's/.*"message":"\\(.*\\)".*/\\1/p'); [ -n "$said" ] || said=$body ;;
esac
echo "$1 ${{code:-0}} $said"
"""


def auth_header(ctx: StepContext) -> str:
    """dockerd's X-Registry-Auth header line with the registry's login (for a file or a here-document: never argv)."""
    auth = {"username": REGISTRY_USER, "password": ctx.password, "serveraddress": ctx.registry}
    return "X-Registry-Auth: " + base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()


def resolve_section(ctx: StepContext, refs: list[str]) -> Section:
    """Every ref resolved by dockerd (logged in with the registry's login when it asks for one)."""
    header = auth_header(ctx) + "\n" if ctx.login else ""
    shell = (
        f'if [ -S {DOCKER_SOCKET} ] && d=$(mktemp -d); then\n{secret_file("header", header)}\n'
        f'{each(refs, ONE, chr(34) + "$d/header" + chr(34))}rm -rf "$d"\nfi'
    )
    return section("docker-resolve", NAME, shell)
