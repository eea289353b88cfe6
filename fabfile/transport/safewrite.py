"""The shell that writes, backs up and restores a file as root without being led elsewhere by a link.

Before a file is touched, ``resolve`` walks its path from ``/``, one part at a
time, and follows each link itself: every folder and link it meets must be
root's, and no folder may be writable by anyone else (a sticky root folder
such as ``/tmp`` excepted). Then no one but root can change where the path
leads, so what was checked is what gets written: nothing races the check.
A folder another user owns (kolla-ansible's quickstart: ``chown $USER
/etc/kolla``) is refused, unless the host's ``write_as`` names that user for
it: then every read and write under it runs as that user (``setpriv``), so
a link planted there reaches only what that user could reach anyway.

A new file is made by ``mktemp`` in the file's own folder, gets its mode and
owner before any content, is synced, and renamed over the old one with
``mv -T`` (a rename replaces a link at the name, it never follows it).
"""

from __future__ import annotations

import re
import shlex

from ..model.marks import MARK

# The links a path may pass through, as the kernel's own limit.
MAX_LINKS = 40
# A temporary file's name: beside the file, hidden, unique (mktemp), e.g. .daemon.json.kolla-registry.a1B2c3.
TMP_INFIX = ".kolla-registry."

# trusted PATH PART FOLDER UID GID: whether PART (a folder or link on PATH's way) is root's, or at or
# below FOLDER the user UID's (GID: that user's group), and no folder is writable by anyone else; else
# the reason in $why, naming PATH and PART.
# resolve PATH [FOLDER UID GID]: f is PATH with every link resolved (a missing tail kept as it is),
# each folder and link on the way trusted; else return 1, the reason in $why.
RESOLVE = r"""trusted() {
  t_path=$1 t_part=$2 t_folder=$3 t_uid=$4 t_gid=$5
  t_stat=$(stat -c '%u %g %a %U %G' -- "$t_part") || { why="$t_path: cannot read $t_part"; return 1; }
  set -- $t_stat
  t_own=
  if [ -n "$t_folder" ]; then case $t_part in "$t_folder"|"$t_folder"/*) t_own=1 ;; esac; fi
  if [ "$1" != 0 ] && { [ -z "$t_own" ] || [ "$1" != "$t_uid" ]; }; then
    why="$t_path: $t_part is owned by $4, not root: refused"
    [ -L "$t_part" ] || why="$why (write_as: {$t_part: $4} in the inventory writes there as $4)"
    return 1
  fi
  if [ -L "$t_part" ] || [ ! -d "$t_part" ]; then return 0; fi
  if [ $((0$3 & 2)) != 0 ] && { [ $((0$3 & 01000)) = 0 ] || [ "$1" != 0 ]; }; then
    why="$t_path: $t_part is writable by others (mode $3): refused"; return 1
  fi
  if [ $((0$3 & 020)) != 0 ] && [ "$2" != 0 ] && { [ -z "$t_own" ] || [ "$2" != "$t_gid" ]; }; then
    why="$t_path: $t_part is writable by its group $5 (mode $3): refused"; return 1
  fi
}
resolve() {
  r_todo=${1#/} f= r_hops=0 r_gone=
  while [ -n "$r_todo" ]; do
    r_part=${r_todo%%/*}
    case $r_todo in */*) r_todo=${r_todo#*/} ;; *) r_todo= ;; esac
    case $r_part in ''|.) continue ;; ..) f=${f%/*}; continue ;; esac
    f=$f/$r_part
    if [ -n "$r_gone" ] || { [ ! -e "$f" ] && [ ! -L "$f" ]; }; then r_gone=1; continue; fi
    trusted "$1" "$f" "$2" "$3" "$4" || return 1
    [ -L "$f" ] || continue
    r_hops=$((r_hops + 1))
    [ "$r_hops" -le MAX_LINKS ] || { why="$1: more than MAX_LINKS links on its path: refused"; return 1; }
    r_link=$(readlink -- "$f")
    f=${f%/*}
    case $r_link in /*) f= ;; esac
    r_todo=$r_link${r_todo:+/$r_todo}
  done
  f=${f:-/}
}
owner_ids() {
  o_uid= o_gid=
  [ -n "$o_user" ] || return 0
  o_uid=$(id -u -- "$o_user" 2>/dev/null) && o_gid=$(id -g -- "$o_user") \
    || { why="$1: write_as user $o_user does not exist on this host"; return 1; }
  command -v setpriv >/dev/null || { why="$1: writing as $o_user needs setpriv (util-linux)"; return 1; }
  [ "$o_uid" != 0 ] || o_user= o_folder= o_uid= o_gid=
}
as_owner() { setpriv --reuid="$o_uid" --regid="$o_gid" --init-groups -- "$@" 9>&-; }""".replace(
    "MAX_LINKS", str(MAX_LINKS)
)

# put FILE CHECKER MODE KIND < base64: FILE (links already resolved) replaced whole. Run by its own
# `sh -c` (as root, or as the folder's owner), so that `set -e` holds even where the caller tests it.
_PUT = r"""set -e
fail() { echo "$*" >&2; exit 1; }
put() {
  p_dir=$(dirname -- "$1")
  mkdir -p -- "$p_dir"
  # A run killed in its write leaves its temporary file; under the host's lock, none is in use.
  rm -f -- "$p_dir/.${1##*/}TMP_INFIX"??????
  t=$(mktemp -- "$p_dir/.${1##*/}TMP_INFIXXXXXXX")
  if [ -e "$1" ]; then
    chmod --reference="$1" -- "$t"
    [ "$(id -u)" != 0 ] || chown --reference="$1" -- "$t"
  else
    chmod "${3:-644}" -- "$t"
  fi
  [ "$4" != secret ] || chmod "$3" -- "$t"
  base64 -d > "$t"
  if [ -n "$2" ]; then out=$($2 "$t" 2>&1) || { rm -f -- "$t"; fail "the new content was refused ($2): $out"; }; fi
  sync "$t"
  # A mount point (a container's bind-mounted /etc/hosts) cannot be renamed over: rewritten in place.
  if mountpoint -q "$1" 2>/dev/null; then cat "$t" > "$1"; rm -f -- "$t"; else mv -T -f -- "$t" "$1"; fi
  sync "$p_dir"
}
put "$@"
""".replace("TMP_INFIX", TMP_INFIX)

PUT_SH = shlex.quote(_PUT)

# A file's sha256 (or "absent"), run by its own `sh -c` as the reader; it fails when it cannot read the file.
DIGEST_SH = shlex.quote(
    'if [ -e "$1" ]; then h=$(sha256sum < "$1") || exit 1; echo "${h%% *}"; else echo absent; fi'
)


def owners_function(write_as: tuple[tuple[str, str], ...]) -> str:
    """who PATH: o_user and o_folder, the user that writes PATH (write_as: the longest folder holding it), or none."""
    cases = [
        f"    {shlex.quote(folder)}|{shlex.quote(folder)}/*) o_user={shlex.quote(user)} o_folder={shlex.quote(folder)} ;;"
        for folder, user in sorted(write_as, key=lambda entry: -len(entry[0]))
    ]
    body = "\n".join(["  case $1 in", *cases, "  esac"]) if cases else "  :"
    return f"who() {{\n  o_user= o_folder=\n{body}\n  owner_ids \"$1\"\n}}"


def restore_function() -> str:
    """restore_pending FILE: each file it lists back from its backup (or removed, if it was new), last first.

    Each path is checked again as it was when written (as root, or as the ``write_as`` user its line names);
    a path that is no longer safe is not restored, and its mark says why.
    """
    return f"""restore_one() {{
  o_user= o_folder=
  if [ -n "$3" ]; then o_user=${{3%%:*}} o_folder=${{3#*:}}; fi
  owner_ids "$1" && resolve "$1" "$o_folder" "$o_uid" "$o_gid" || {{ echo "{MARK} not-restored $1 ($why)"; return 0; }}
  if [ "$2" = - ]; then
    case $f in /etc/systemd/system/*.service) systemctl disable "${{f##*/}}" >/dev/null 2>&1 || true ;; esac
    if ${{o_user:+as_owner}} rm -f -- "$f"; then echo "{MARK} restored $1 (removed)"; else echo "{MARK} not-restored $1"; fi
  elif base64 < "$2" | ${{o_user:+as_owner}} sh -c {PUT_SH} put "$f" '' "$(stat -c %a -- "$2")" secret; then
    echo "{MARK} restored $1"
  else
    echo "{MARK} not-restored $1"
  fi
}}
restore_pending() {{
  tac "$1" | while read -r act path backup owner; do restore_one "$path" "$backup" "$owner"; done
}}"""


# Root's own folder for a run's uploads: on the same filesystem as the login user's, so taking a file is a rename.
ROOT_UPLOADS_PREFIX = "/tmp/kolla-registry-root."
UPLOAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def adopt_script(inbox: str, name: str, folder: str = "") -> str:
    """Shell, as root: move the upload ``name`` out of the login user's ``inbox`` into root's private ``folder``
    (made when empty: ``mktemp -d``, 0700) and print that folder.

    Once moved, only root can change the name: the file is then checked (a
    regular file with no other link, never a symlink the login user swapped in
    to make root read another file) and made root's. A file that is not is removed, and the run fails.
    """
    if not UPLOAD_NAME.fullmatch(name):
        raise ValueError(f"not an upload name: {name!r}")
    made = f"$(mktemp -d {ROOT_UPLOADS_PREFIX}XXXXXXXX)" if not folder else shlex.quote(folder)
    source, target = shlex.quote(f"{inbox}/{name}"), f'"$d"/{shlex.quote(name)}'
    return f"""set -e
d={made}
case $d in {ROOT_UPLOADS_PREFIX}*) ;; *) echo "{MARK} fail cannot make a private folder for uploads"; exit 1 ;; esac
[ "$(stat -c '%u %a' -- "$d")" = "0 700" ] && [ ! -L "$d" ] || {{ echo "{MARK} fail $d is not root's private folder"; exit 1; }}
mv -T -f -- {source} {target}
if [ -L {target} ] || [ ! -f {target} ] || [ "$(stat -c %h -- {target})" != 1 ]; then
  rm -f -- {target}; echo "{MARK} fail upload {name}: not a regular file of its own (a link?): refused"; exit 1
fi
chown 0:0 -- {target}; chmod 600 -- {target}
echo "{MARK} uploads $d"
"""
