"""What a failed pull or check says, and what fixes it: one hint for the row."""

from __future__ import annotations

# What a failed pull or check says, and what fixes it.
_HINTS = (
    (
        ("unknown authority", "unable to get local issuer", "self-signed certificate", "self signed certificate"),
        "this node does not trust the registry's CA: run fab configure-targets",
    ),
    (("has expired", "not yet valid"), "the registry's certificate has expired: run fab deploy-host (it renews it)"),
    (
        ("is valid for", "not valid for", "no alternative certificate subject name", "doesn't contain any ip sans"),
        "the registry's certificate does not name the address used: run fab deploy-host to re-issue it",
    ),
    (
        ("unauthorized", "authentication required", "incorrect username or password"),
        "the registry refused the login: run fab deploy-host (it keeps the login files in step) and fab kolla-globals",
    ),
)
_PLAIN_HTTP = ("http response to https client", "server gave http response")


def diagnose(text: str, secure: bool = True) -> str:
    """The fix for a trust, TLS or login failure named in ``text``; "" when it is none of those."""
    lowered = text.lower()
    if any(needle in lowered for needle in _PLAIN_HTTP):
        if secure:
            return "the registry speaks plain HTTP here: run fab deploy-host to switch it to TLS"
        return "run fab configure-targets"
    for needles, hint in _HINTS:
        if any(needle in lowered for needle in needles):
            return hint
    return ""
