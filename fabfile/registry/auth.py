"""A registry's login: the "kolla" user, a generated password (0600 on its host), its bcrypt htpasswd."""

from __future__ import annotations

import secrets

import bcrypt

from ..model.facts import HostFacts
from ..model.plan import FileChange, StepPlan
from .paths import HTPASSWD, PASSWORD, REGISTRY_USER

# The registry checks the hash on every request of every pull: at bcrypt's default cost (10),
# twenty nodes pulling kept the deployment host's two cores busy for seconds. The lowest
# cost is safe here because the password is a random 32-character token, not a human one.
BCRYPT_ROUNDS = 4


def plan_login(facts: HostFacts, plan: StepPlan) -> None:
    """The password and the htpasswd entry that holds it, made or mended where they are not right."""
    password = facts.files.get(PASSWORD, "").strip()
    if not password:
        password = secrets.token_urlsafe(24)
        plan.files.append(FileChange(PASSWORD, facts.files.get(PASSWORD), password + "\n", mode="600", secret=True))
    current = facts.files.get(HTPASSWD)
    if not _htpasswd_holds(current, password):
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()
        plan.files.append(FileChange(HTPASSWD, current, f"{REGISTRY_USER}:{hashed}\n", mode="600", secret=True))
    if not plan.files:
        plan.notes.append(f"login: user {REGISTRY_USER} (password in {PASSWORD} on this host)")


def _htpasswd_holds(text: str | None, password: str) -> bool:
    for line in (text or "").splitlines():
        user, _, hashed = line.partition(":")
        if user == REGISTRY_USER and hashed.startswith(("$2b$", "$2y$", "$2a$")) and hashed[4:6] == f"{BCRYPT_ROUNDS:02d}":
            try:
                return bcrypt.checkpw(password.encode(), hashed.encode())
            except ValueError:
                return False
    return False
