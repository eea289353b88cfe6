"""The grammar of every value that can reach a shell: checked when loaded, so only sane values get there.

Each is still quoted where it is used; this is the first of two guards.
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")
# An inventory host's name: a label for the recap and for -H.
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
# A zone (a rack, a row, an availability zone): a label shown in status and compared, never run.
ZONE = HOST_NAME
USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# A registry account: quay.io robots are "org+name", others e-mail-like.
REGISTRY_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}")
DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
# Docker's reference grammar: lowercase path components, a tag of up to 128 characters, a digest.
IMAGE_PATH = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# A digest becomes a file name (blobs/sha256/HEX) and a URL: nothing else may pass for one.
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# An image platform as manifest lists name them: os/architecture[/variant] (linux/arm64/v8).
PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\d{{1,3}}(?:\.\d{{1,3}}){{3}})(?::\d{{1,5}})?"
REGISTRY_HOST = re.compile(_DOMAIN)
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{IMAGE_PATH.pattern}(?::{IMAGE_TAG.pattern})?(?:@sha256:[a-f0-9]{{64}})?"
)
# An S3 store: its endpoint (scheme, host, optional port, nothing else), bucket, region and access key.
S3_ENDPOINT = re.compile(rf"https?://{_DOMAIN}/?")
S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
S3_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
S3_ACCESS_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9+/=_.-]{0,127}")
# Paths the tasks write on hosts: no blanks, quotes or shell syntax, no "..".
HOST_PATH = re.compile(r"(?!.*/\.\./)(?!.*/\.\.$)/[A-Za-z0-9._+@:/-]*")


def is_address(value: str) -> bool:
    """A host name, an IPv4 or an IPv6 address."""
    return is_ip(value) or bool(HOSTNAME.fullmatch(value))


def is_ip(value: str, version: int | None = None) -> bool:
    """An IPv4 or IPv6 address; an IPv6 zone id (``fe80::1%eth0``) is refused: it is free text after ``%``."""
    if "%" in value:
        return False
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        return False
    return version is None or parsed.version == version


def matches(pattern: re.Pattern, value: str) -> bool:
    return bool(pattern.fullmatch(value))
