"""Applying a plan: the shell that writes its files safely, and the Docker handler.

A step's plan is data (files to write, commands to run, the Docker handler to
notify). ``apply_script`` turns it into one POSIX shell script, so applying a
plan costs one SSH round trip. Under a lock on the host, every file's path is
checked (``safewrite``: no folder or link on it that another user controls),
then the file is written to a unique temporary file beside it that has its
final mode before it gets any content, checked (where a checker is given),
flushed to disk and renamed over the old one (never partial); a root symlink
is written through to its target and kept. The old file is kept in
``BACKUP_DIR`` (root's alone; the newest ``keep`` copies per file), and the
intent is recorded in ``PENDING`` *before* the rename, so an interrupted run
still fires the Docker handler next time.
"""

from __future__ import annotations

import base64
import hashlib
import shlex

from ..model.marks import CONFLICT_EXIT, FAIL_FUNCTION, MARK
from ..model.paths import BACKUP_DIR, LOCK, PENDING, STATE_DIR
from ..model.plan import RELOAD, RESTART, FileChange, StepPlan
from .safewrite import DIGEST_SH, PUT_SH, RESOLVE, owners_function, restore_function

DOCKER_WAIT_SECONDS = 60
BACKUPS_KEPT = 10


def apply_script(
    plan: StepPlan,
    stamp: str,
    keep: int = BACKUPS_KEPT,
    uploads: str = "",
    write_as: tuple[tuple[str, str], ...] = (),
) -> str:
    """Shell that applies ``plan``: files atomically with backups, then commands.

    Every file's path is checked first (see ``safewrite``): a folder or link on
    it that is not root's, or a folder others may write, refuses the whole plan
    before anything is written, unless ``write_as`` (folder, user) names that
    folder's owner, who then writes it. Each file must still be what the plan
    was made from; otherwise nothing is written and the script exits
    ``CONFLICT_EXIT`` so the caller re-gathers and plans again (two runs never
    lose an entry). Commands run without the lock's file descriptor, so a
    daemon they start never holds the lock.
    """
    lines = [
        "set -e",
        "umask 022",
        "export DEBIAN_FRONTEND=noninteractive",
        f"UPLOADS={shlex.quote(uploads)}",
        FAIL_FUNCTION,
        RESOLVE,
        owners_function(write_as),
        _functions(stamp, max(1, keep)),
        _own_folders(),
        f"exec 9>{LOCK}",
        f"flock -w 120 9 || fail another run holds {LOCK}",
    ]
    lines += [_unchanged_check(change) for change in plan.files]
    for change in plan.files:
        lines += _file_lines(change, plan.handler)
    lines += [f"{{\n{command}\n}} 9>&-" for command in plan.commands]
    return "\n".join(lines) + "\n"


def _own_folders() -> str:
    """The tool's own folders, checked like any path; backups are root's alone (0700): a secret's old copy too."""
    return "\n".join(
        [
            f"for d in {STATE_DIR} {BACKUP_DIR}; do resolve \"$d\" || fail \"$why\"; done",
            f"mkdir -p {STATE_DIR} {BACKUP_DIR}",
            f"chmod 700 {BACKUP_DIR}",
        ]
    )


def _functions(stamp: str, keep: int) -> str:
    """place: who writes a path and where it really is (links resolved), or fail. unchanged: the file is
    still what the facts showed (read as whoever writes it). backup: a copy named after the path and the
    run's time (.1, .2 for more in the same second), no wider than the file's new mode, the newest ``keep``
    kept. write_file / remove_file: the change, recorded in PENDING (for the Docker handler) first.
    """
    return f"""place() {{ who "$1" && resolve "$1" "$o_folder" "$o_uid" "$o_gid" || fail "$why"; }}
unchanged() {{
  place "$1"
  d=$(${{o_user:+as_owner}} sh -c {DIGEST_SH} digest "$f") || fail "$1: cannot be read${{o_user:+ as $o_user}}"
  # Absent to its owner but there to root: the owner cannot reach it (a link into root's files).
  [ "$d" != absent ] || [ ! -e "$f" ] || fail "$1: cannot be read${{o_user:+ as $o_user}}"
  [ "$d" = "$2" ] || {{ echo "{MARK} conflict $1 changed since facts were gathered"; exit {CONFLICT_EXIT}; }}
}}
backup() {{
  b=-
  ${{o_user:+as_owner}} test -e "$f" || return 0
  b_base={BACKUP_DIR}/$(printf '%s' "$f" | sed 's|^/||; s|/|_|g')
  b=$b_base.{stamp}; b_n=0
  while [ -e "$b" ]; do b_n=$((b_n + 1)); b=$b_base.{stamp}.$b_n; done
  ${{o_user:+as_owner}} cat -- "$f" > "$b" || {{ rm -f -- "$b"; fail "$1: cannot be read${{o_user:+ as $o_user}}"; }}
  b_mode=$(${{o_user:+as_owner}} stat -c %a -- "$f")
  [ "$3" != secret ] || b_mode=$(printf '%o' $((0$b_mode & 0$2)))
  chmod "$b_mode" -- "$b"
  ls -1t "$b_base".[0-9]* 2>/dev/null | tail -n +$(({keep} + 1)) | while read -r old; do rm -f -- "$old"; done
}}
pending() {{ [ -z "$1" ] || echo "$1 $f $b${{o_user:+ $o_user:$o_folder}}" >> {PENDING}; }}
write_file() {{
  place "$1"; backup "$1" "$3" "$4"; pending "$5"
  out=$(${{o_user:+as_owner}} sh -c {PUT_SH} put "$f" "$2" "$3" "$4" 2>&1) \\
    || fail "$1: ${{o_user:+as $o_user: }}$(printf '%s\\n' "$out" | tail -n 1)"
}}
remove_file() {{
  place "$1"; backup "$1"; pending "$2"
  ${{o_user:+as_owner}} rm -f -- "$f" || fail "$1: cannot remove it${{o_user:+ as $o_user}}"
}}"""


# Docker's /info as JSON: from its API socket with curl (one small process; the docker CLI costs about
# 45 ms of CPU a call, twice per handler, which a hundred nodes sharing CPUs felt), else the CLI's.
DOCKER_INFO = (
    "info() { curl -sS -m 10 --unix-socket /var/run/docker.sock http://docker/info 2>/dev/null "
    "|| timeout 10 docker info --format '{{json .}}' 2>/dev/null; }"
)


def insecure_entry(registry: str) -> str:
    """A basic regular expression matching ``registry``'s entry in /info's JSON when it is insecure:
    ``"Name":"ADDR:PORT","Mirrors":[...],"Secure":false`` (Docker writes the fields in that order)."""
    escaped = "".join(f"\\{char}" if char in ".[]*^$\\" else char for char in registry)
    return f'"Name":"{escaped}","Mirrors":\\[[^]]*\\],"Secure":false'


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
        # A bad reload leaves dockerd running on the old config: check it took, in the JSON of /info.
        expect = ("" if insecure else "! ") + f"printf '%s' \"$out\" | grep -q {shlex.quote(insecure_entry(registry))}"
    # A subshell, so its exits end only the handler inside a longer script; without the lock's fd.
    return f"""# apply pending Docker changes
(
{_restore_function()}
p={PENDING}
[ -s "$p" ] || {{ echo "{MARK} docker nothing-pending"; exit 0; }}
action={RELOAD}; grep -q '^{RESTART} ' "$p" && action={RESTART}
{DOCKER_INFO}
answers() {{ for i in $(seq {5 * max(1, wait)}); do out=$(info) && [ -n "$out" ] && "$@" && return 0; sleep 0.2; done; return 1; }}
expected() {{ {expect or "true"}; }}
if grep -q ' /etc/systemd/' "$p"; then systemctl daemon-reload; action={RESTART}; fi
# A restart first clears the unit's start count (three a minute); a reload is no start.
systemctl is-active -q docker || action={RESTART}
[ "$action" = {RELOAD} ] || systemctl reset-failed docker 2>/dev/null || true
if timeout {max(1, wait)} systemctl "$action" docker && answers expected; then
  rm -f "$p"; echo "{MARK} docker $action"; exit 0
fi
echo "{MARK} docker failed-$action"
restore_pending "$p"
rm -f "$p"
systemctl daemon-reload
systemctl is-active -q docker || action={RESTART}
[ "$action" = {RELOAD} ] || systemctl reset-failed docker 2>/dev/null || true
timeout {max(1, wait)} systemctl "$action" docker && answers true && echo "{MARK} docker $action-after-rollback"
exit 3
) 9>&- || exit $?
"""


def _unchanged_check(change: FileChange) -> str:
    return f"unchanged {shlex.quote(change.path)} {_digest(change.before)}"


def _digest(text: str | None) -> str:
    return "absent" if text is None else hashlib.sha256(text.encode()).hexdigest()


def _file_lines(change: FileChange, handler: str | None) -> list[str]:
    path = shlex.quote(change.path)
    if change.after is None:
        return [f"remove_file {path} {handler or ''}", f"echo {shlex.quote(f'{MARK} removed {change.path}')}"]
    encoded = base64.b64encode(change.after.encode()).decode()
    checker = shlex.quote(change.checker) if change.checker else "''"
    kind = "secret" if change.secret else "plain"
    call = f"write_file {path} {checker} {shlex.quote(change.mode)} {kind} {handler or ''}"
    return [
        f"{call} <<'KOLLA_REGISTRY_CONTENT'\n{encoded}\nKOLLA_REGISTRY_CONTENT",
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
    return RESOLVE + "\n" + restore_function()
