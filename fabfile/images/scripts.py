"""The shell that copies images on the deployment host: pull and push, load, tag and push."""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from ..remote.marks import FAIL_FUNCTION, MARK


def copy_script(source: str, target: str) -> str:
    """Shell: pull ``source``, push it as ``target``, leave the host's own images as they were."""
    src, dst = shlex.quote(source), shlex.quote(target)
    return f"""set -e
src={src}; dst={dst}
{FAIL_FUNCTION}
had() {{ docker image inspect "$1" >/dev/null 2>&1 && echo yes || true; }}
had_src=$(had "$src"); had_dst=$(had "$dst")
tidy() {{
  [ -n "$had_dst" ] || docker rmi "$dst" >/dev/null 2>&1 || true
  [ -n "$had_src" ] || docker rmi "$src" >/dev/null 2>&1 || true
}}
out=$(docker pull "$src" 2>&1) || {{ tidy; fail "docker pull $src: $(printf '%s' "$out" | tail -1)"; }}
docker tag "$src" "$dst"
out=$(docker push "$dst" 2>&1) || {{ tidy; fail "docker push $dst: $(printf '%s' "$out" | tail -1)"; }}
tidy
echo "{MARK} pushed $dst"
"""


def load_script(refs: Iterable[str], archive_path: str) -> str:
    """Shell: ``docker load`` the uploaded archive; names which of ``refs`` the host had before."""
    quoted = " ".join(shlex.quote(ref) for ref in refs)
    archive = shlex.quote(archive_path)
    return f"""set -e
for ref in {quoted}; do docker image inspect "$ref" >/dev/null 2>&1 && echo "{MARK} had $ref"; done
out=$(docker load -i {archive} 2>&1) || {{ rm -f {archive}; echo "{MARK} fail docker load: $(printf '%s' "$out" | tail -1)"; exit 1; }}
rm -f {archive}
echo "{MARK} loaded"
"""


def push_script(source: str, target: str) -> str:
    """Shell: tag a loaded image as ``target`` and push it; the host keeps only what it had."""
    src, dst = shlex.quote(source), shlex.quote(target)
    return f"""set -e
src={src}; dst={dst}
{FAIL_FUNCTION}
had=$(docker image inspect "$dst" >/dev/null 2>&1 && echo yes || true)
docker tag "$src" "$dst"
out=$(docker push "$dst" 2>&1) || {{ [ -n "$had" ] || docker rmi "$dst" >/dev/null 2>&1; fail "docker push $dst: $(printf '%s' "$out" | tail -1)"; }}
[ -n "$had" ] || docker rmi "$dst" >/dev/null 2>&1 || true
echo "{MARK} pushed $dst"
"""
