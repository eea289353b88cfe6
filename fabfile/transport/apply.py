"""Applying a plan: the shell that writes its files safely, and the Docker handler.

A step's plan is data (files to write, commands to run, the Docker handler to
notify). ``apply_script`` turns it into one POSIX shell script, so applying a
plan costs one SSH round trip. Under a lock on the host, every file is
written to a temporary file that has its final mode before it gets any
content, checked (where a checker is given), flushed to disk and renamed over
the old one (never partial); a symlink is written through to its target and
kept. The old file is kept in ``BACKUP_DIR`` (the newest ``keep`` copies per
file), and the intent is recorded in ``PENDING`` *before* the rename, so an
interrupted run still fires the Docker handler next time.
"""

from __future__ import annotations

import base64
import hashlib
import shlex

from ..model.marks import CONFLICT_EXIT, FAIL_FUNCTION, MARK
from ..model.paths import BACKUP_DIR, LOCK, PENDING, STATE_DIR
from ..model.plan import RELOAD, RESTART, FileChange, StepPlan

DOCKER_WAIT_SECONDS = 60
BACKUPS_KEPT = 10
TMP_SUFFIX = ".kolla-registry.tmp"


def apply_script(plan: StepPlan, stamp: str, keep: int = BACKUPS_KEPT, uploads: str = "") -> str:
    """Shell that applies ``plan``: files atomically with backups, then commands.

    Each file must still be what the plan was made from; otherwise nothing is
    written and the script exits ``CONFLICT_EXIT`` so the caller re-gathers and
    plans again (two runs never lose an entry). Commands run without the lock's
    file descriptor, so a daemon they start never holds the lock.
    """
    lines = [
        "set -e",
        "umask 022",
        "export DEBIAN_FRONTEND=noninteractive",
        f"UPLOADS={shlex.quote(uploads)}",
        FAIL_FUNCTION,
        f"mkdir -p {BACKUP_DIR} {STATE_DIR}",
        f"exec 9>{LOCK}",
        f"flock -w 120 9 || fail another run holds {LOCK}",
        _functions(stamp, max(1, keep)),
    ]
    lines += [_unchanged_check(change) for change in plan.files]
    for change in plan.files:
        lines += _file_lines(change, plan.handler)
    lines += [f"{{\n{command}\n}} 9>&-" for command in plan.commands]
    return "\n".join(lines) + "\n"


def _functions(stamp: str, keep: int) -> str:
    """real: where a path really is (a symlink's target). backup: a copy named after
    the path and the run's time (.1, .2 for more in the same second), the newest
    ``keep`` kept. put: the new content, mode and owner first (a secret's mode always its
    own, e.g. 0600, whatever the old file had), synced, then renamed; a file that is a mount point
    (a container's /etc/hosts, bind-mounted by its engine) cannot be renamed over, so it is
    rewritten in place from the synced copy.
    """
    return f"""real() {{ readlink -f -- "$1" 2>/dev/null || printf '%s\\n' "$1"; }}
digest() {{ if [ -e "$1" ]; then sha256sum < "$1" | cut -d' ' -f1; else echo absent; fi; }}
unchanged() {{ [ "$(digest "$(real "$1")")" = "$2" ] || {{ echo "{MARK} conflict $1 changed since facts were gathered"; exit {CONFLICT_EXIT}; }}; }}
backup() {{
  [ -e "$1" ] || {{ b=-; return 0; }}
  base={BACKUP_DIR}/$(printf '%s' "$1" | sed 's|^/||; s|/|_|g')
  b=$base.{stamp}; n=0
  while [ -e "$b" ]; do n=$((n + 1)); b=$base.{stamp}.$n; done
  cp -p "$1" "$b"
  ls -1t "$base".[0-9]* 2>/dev/null | tail -n +$(({keep} + 1)) | while read -r old; do rm -f "$old"; done
}}
put() {{
  t=$1{TMP_SUFFIX}
  mkdir -p "$(dirname "$1")"
  (umask 077; : > "$t")
  if [ -e "$1" ]; then chmod --reference="$1" "$t"; chown --reference="$1" "$t"; else chmod "${{3:-644}}" "$t"; fi
  [ "$4" != secret ] || chmod "$3" "$t"
  base64 -d > "$t"
  if [ -n "$2" ]; then out=$($2 "$t" 2>&1) || {{ rm -f "$t"; fail "$1: the new content was refused ($2): $out"; }}; fi
  sync "$t"
  if mountpoint -q "$1" 2>/dev/null; then cat "$t" > "$1"; rm -f "$t"; else mv -f "$t" "$1"; fi
  sync "$(dirname "$1")"
}}"""


def handler_script(registry: str | None = None, wait: int = DOCKER_WAIT_SECONDS, insecure: bool = True) -> str:
    """Shell that applies what ``PENDING`` asks of Docker, or rolls back.

    It reloads when only reloadable options changed, restarts otherwise, then
    waits (at most ``wait`` seconds) for Docker to answer and to report
    ``registry`` as insecure (or, with ``insecure`` false, no longer so). If that fails, every file
    listed in PENDING is restored from its backup and the same action applies
    the old files again: a reload that did not take is undone with a reload,
    so running containers are never restarted by a rollback; Docker is
    restarted only when a restart was the action or Docker is down. Exit 3.
    """
    expect = ""
    if registry:
        # A bad reload leaves dockerd running on the old config: check it took.
        expect = (
            ("" if insecure else "! ") + "docker info --format '{{range $k,$v := .RegistryConfig.IndexConfigs}}"
            "{{$k}}={{$v.Secure}} {{end}}' 2>/dev/null | tr ' ' '\\n' | "
            f"grep -qxF {shlex.quote(registry + '=false')}"
        )
    # A subshell, so its exits end only the handler inside a longer script; without the lock's fd.
    return f"""# apply pending Docker changes
(
{_restore_function()}
p={PENDING}
[ -s "$p" ] || {{ echo "{MARK} docker nothing-pending"; exit 0; }}
action={RELOAD}; grep -q '^{RESTART} ' "$p" && action={RESTART}
answers() {{ for i in $(seq {max(1, wait)}); do timeout 10 docker info >/dev/null 2>&1 && "$@" && return 0; sleep 1; done; return 1; }}
expected() {{ {expect or "true"}; }}
if grep -q ' /etc/systemd/' "$p"; then systemctl daemon-reload; action={RESTART}; fi
systemctl is-active -q docker || action={RESTART}
systemctl reset-failed docker 2>/dev/null || true
if timeout {max(1, wait)} systemctl "$action" docker && answers expected; then
  rm -f "$p"; echo "{MARK} docker $action"; exit 0
fi
echo "{MARK} docker failed-$action"
restore_pending "$p"
rm -f "$p"
systemctl daemon-reload
systemctl is-active -q docker || action={RESTART}
systemctl reset-failed docker 2>/dev/null || true
timeout {max(1, wait)} systemctl "$action" docker && answers true && echo "{MARK} docker $action-after-rollback"
exit 3
) 9>&- || exit $?
"""


def _unchanged_check(change: FileChange) -> str:
    return f"unchanged {shlex.quote(change.path)} {_digest(change.before)}"


def _digest(text: str | None) -> str:
    return "absent" if text is None else hashlib.sha256(text.encode()).hexdigest()


def _file_lines(change: FileChange, handler: str | None) -> list[str]:
    lines = [f"f=$(real {shlex.quote(change.path)})", 'backup "$f"']
    if handler:
        lines.append(f'echo "{handler} $f $b" >> {PENDING}')
    if change.after is None:
        return lines + ['rm -f "$f"', f"echo {shlex.quote(f'{MARK} removed {change.path}')}"]
    encoded = base64.b64encode(change.after.encode()).decode()
    checker = shlex.quote(change.checker) if change.checker else "''"
    kind = "secret" if change.secret else "plain"
    return lines + [
        f"put \"$f\" {checker} {shlex.quote(change.mode)} {kind} <<'KOLLA_REGISTRY_CONTENT'\n{encoded}\nKOLLA_REGISTRY_CONTENT",
        f"echo {shlex.quote(f'{MARK} wrote {change.path}')}",
    ]


def rollback_script() -> str:
    """Shell: undo the changes PENDING records (a run that stopped before its handler); Docker untouched.

    Docker never saw those files (its handler did not run), so restoring them
    is all there is to undo. Prints a ``restored`` or ``not-restored`` mark each.
    """
    return f"""{_restore_function()}
p={PENDING}
[ -s "$p" ] || exit 0
exec 9>{LOCK}
flock -w 120 9 || {{ echo '{MARK} fail another run holds {LOCK}'; exit 1; }}
restore_pending "$p" 9>&-
grep -q ' /etc/systemd/' "$p" && systemctl daemon-reload
rm -f "$p"
"""


def _restore_function() -> str:
    """restore_pending FILE: each file it lists back from its backup (or removed, if it was new), last first."""
    return f"""restore_pending() {{
  tac "$1" | while read -r act path backup; do
    if [ "$backup" = - ]; then
      case $path in /etc/systemd/system/*.service) systemctl disable "${{path##*/}}" >/dev/null 2>&1 || true ;; esac
      rm -f "$path" && echo "{MARK} restored $path (removed)" || echo "{MARK} not-restored $path"
    elif cp -p "$backup" "$path{TMP_SUFFIX}" && mv -f "$path{TMP_SUFFIX}" "$path"; then
      echo "{MARK} restored $path"
    else
      echo "{MARK} not-restored $path"
    fi
  done
}}"""
