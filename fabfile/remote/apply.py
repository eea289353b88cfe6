"""Applying a plan: the shell that writes its files safely, and the Docker handler.

A step's plan is data (files to write, commands to run, the Docker handler to
notify). ``apply_script`` turns it into one POSIX shell script, so applying a
plan costs one SSH round trip: every file is written to a temporary file and
renamed over the old one (never partial), the old one kept in
``BACKUP_DIR``, and the intent is recorded in ``PENDING`` *before* the rename
so an interrupted run still fires the Docker handler next time.
"""

from __future__ import annotations

import base64
import hashlib
import shlex

from ..engine.plan import RELOAD, RESTART, FileChange, StepPlan
from .facts import PENDING, STATE_DIR
from .marks import MARK

BACKUP_DIR = "/var/backups/kolla-registry"
LOCK = f"{STATE_DIR}/lock"
CONFLICT_EXIT = 75
DOCKER_WAIT_SECONDS = 60


def apply_script(plan: StepPlan, stamp: str) -> str:
    """Shell that applies ``plan``: files atomically with backups, then commands.

    Under a lock on the host, each file must still be what the plan was made
    from; otherwise nothing is written and the script exits ``CONFLICT_EXIT``
    so the caller re-gathers and plans again (two runs never lose an entry).
    """
    lines = [
        "set -e",
        "umask 022",
        "export DEBIAN_FRONTEND=noninteractive",
        f"mkdir -p {BACKUP_DIR} {STATE_DIR}",
        f"exec 9>{LOCK}",
        f"flock -w 120 9 || {{ echo '{MARK} fail another run holds {LOCK}'; exit 1; }}",
    ]
    lines += [_unchanged_check(change) for change in plan.files]
    for change in plan.files:
        lines += _file_lines(change, stamp, plan.handler)
    lines += plan.commands
    return "\n".join(lines) + "\n"


def handler_script(expect_insecure: str | None = None) -> str:
    """Shell that applies what ``PENDING`` asks of Docker, or rolls back.

    It reloads when only reloadable options changed, restarts otherwise, then
    waits for Docker to answer (and, for a reload, to report ``expect_insecure``
    as insecure). If Docker does not come back, every file listed in PENDING
    is restored from its backup and Docker is started again: exit status 3.
    """
    expect = ""
    if expect_insecure:
        # A bad reload leaves dockerd running on the old config: check it took.
        expect = (
            "docker info --format '{{range $k,$v := .RegistryConfig.IndexConfigs}}"
            "{{$k}}={{$v.Secure}} {{end}}' 2>/dev/null | tr ' ' '\\n' | "
            f"grep -qxF {shlex.quote(expect_insecure + '=false')}"
        )
    # A subshell, so its exits end only the handler inside a longer script.
    return f"""# apply pending Docker changes
(
p={PENDING}
[ -s "$p" ] || {{ echo "{MARK} docker nothing-pending"; exit 0; }}
action={RELOAD}; grep -q '^{RESTART} ' "$p" && action={RESTART}
answers() {{ for i in $(seq {DOCKER_WAIT_SECONDS}); do docker info >/dev/null 2>&1 && "$@" && return 0; sleep 1; done; return 1; }}
expected() {{ {expect or "true"}; }}
ready() {{ answers expected; }}
if grep -q ' /etc/systemd/' "$p"; then systemctl daemon-reload; action={RESTART}; fi
systemctl is-active -q docker || action={RESTART}
systemctl reset-failed docker 2>/dev/null || true
if systemctl "$action" docker && ready; then
  rm -f "$p"; echo "{MARK} docker $action"; exit 0
fi
echo "{MARK} docker failed-$action"
tac "$p" | while read -r act path backup; do
  if [ "$backup" = - ]; then rm -f "$path"; else cp -p "$backup" "$path.kolla-registry.tmp" && mv -f "$path.kolla-registry.tmp" "$path"; fi
  echo "{MARK} restored $path"
done
rm -f "$p"
systemctl daemon-reload; systemctl reset-failed docker 2>/dev/null || true
systemctl restart docker && answers true && echo "{MARK} docker running-after-rollback"
exit 3
) || exit $?
"""


def _unchanged_check(change: FileChange) -> str:
    path = shlex.quote(change.path)
    expected = _digest(change.before)
    return (
        f"[ \"$(if [ -e {path} ]; then sha256sum < {path} | cut -d' ' -f1; else echo absent; fi)\" = {expected} ] "
        f"|| {{ echo '{MARK} conflict {change.path} changed since facts were gathered'; exit {CONFLICT_EXIT}; }}"
    )


def _digest(text: str | None) -> str:
    return "absent" if text is None else hashlib.sha256(text.encode()).hexdigest()


def _file_lines(change: FileChange, stamp: str, handler: str | None) -> list[str]:
    path = shlex.quote(change.path)
    backup_name = change.path.strip("/").replace("/", "_") + "." + stamp
    backup = shlex.quote(f"{BACKUP_DIR}/{backup_name}")
    lines = [f"if [ -e {path} ]; then cp -p {path} {backup}; b={backup}; else b=-; fi"]
    if handler:
        lines.append(f'echo "{handler} {change.path} $b" >> {PENDING}')
    if change.after is None:
        return lines + [f"rm -f {path}", f"echo '{MARK} removed {change.path}'"]
    encoded = base64.b64encode(change.after.encode()).decode()
    tmp = shlex.quote(change.path + ".kolla-registry.tmp")
    return lines + [
        f"mkdir -p {shlex.quote(change.path.rsplit('/', 1)[0] or '/')}",
        f"printf %s {encoded} | base64 -d > {tmp}",
        f"if [ -e {path} ]; then chmod --reference={path} {tmp}; chown --reference={path} {tmp}; fi",
        f"mv -f {tmp} {path}",
        f"echo '{MARK} wrote {change.path}'",
    ]
