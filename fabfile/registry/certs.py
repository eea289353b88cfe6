"""The shell that makes a secure registry's certificates with openssl, and what makes one sound.

The CA is made as a CA should be (basicConstraints and keyUsage critical, key
identifiers): Python 3.13 (Debian 13) verifies with ``VERIFY_X509_STRICT`` and
refuses a CA without keyUsage. Re-issuing the CA keeps its key and its name
(the old certificate's subject, byte for byte, through ``-x509toreq``), so
every certificate it signed verifies against either copy.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex

from ..model.marks import CONFLICT_EXIT, MARK
from .paths import (
    CA_CERT,
    CA_DIR,
    CA_KEY,
    OLD_CA_CERT,
    OLD_CA_KEY,
    REPLICA_DIR,
    SERVER_CERT,
    SERVER_KEY,
    TLS_DIR,
)

SERVER_DAYS = 365
CA_DAYS = 3650
CA_SUBJECT = "/CN=kolla-registry CA"

CA_EXTENSIONS = (
    "basicConstraints=critical,CA:TRUE,pathlen:0",
    "keyUsage=critical,keyCertSign,cRLSign",
    "subjectKeyIdentifier=hash",
    "authorityKeyIdentifier=keyid:always",
)
SERVER_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    "subjectKeyIdentifier=hash",
    "authorityKeyIdentifier=keyid,issuer",
)


def sound_ca(extensions: str) -> bool:
    """Whether a CA's ``openssl x509 -ext basicConstraints,keyUsage`` text (on one line) is a CA's:
    basicConstraints critical with CA:TRUE, keyUsage critical with Certificate Sign."""
    return bool(
        re.search(r"Basic Constraints: critical CA:TRUE", extensions)
        and re.search(r"(?<!Extended )Key Usage: critical [^:]*Certificate Sign", extensions)
    )


def sound_server(extensions: str) -> bool:
    """Whether a server certificate's ``-ext keyUsage,extendedKeyUsage`` text has both, for a TLS server."""
    return bool(
        re.search(r"(?<!Extended )Key Usage: critical", extensions)
        and "TLS Web Server Authentication" in extensions
    )


def reason(state: dict, wanted: set[str], new_ca: bool, has_key: bool, renew_days: int = 30) -> str:
    """Why a server certificate is made, renewed or re-issued now, from its state (days, sans, signed,
    server_ext); "" when it is fine."""
    days = state.get("days")
    if new_ca or not has_key or days is None:
        return "make the registry's server certificate"
    if days < renew_days:
        return f"renew the server certificate ({days} days left)"
    missing = wanted - state.get("sans", set())
    if missing:
        return f"re-issue the server certificate for {', '.join(sorted(missing))}"
    if not state.get("signed"):
        return "re-issue the server certificate: the CA did not sign it"
    if not sound_server(state.get("server_ext", "")):
        return "re-issue the server certificate with its key usage (serverAuth)"
    return ""


def digest(key: bytes) -> str:
    """A key's sha256, as the host computes it (``sha256sum``): how a key is compared without reading it back."""
    return hashlib.sha256(key).hexdigest()


def move_ca() -> str:
    """Shell: the CA out of the folder the registry container used to see, into its own 0700 folder."""
    moves = "\n".join(
        f"if [ -e {old} ] && [ ! -e {new} ]; then mv -f {old} {new}; fi"
        for old, new in ((OLD_CA_KEY, CA_KEY), (OLD_CA_CERT, CA_CERT), (f"{TLS_DIR}/ca.srl", f"{CA_DIR}/ca.srl"))
    )
    return f"""# move the CA out of the registry container's folder into {CA_DIR} (0700)
mkdir -p {CA_DIR} && chmod 700 {CA_DIR}
{moves}"""


def private_ca_dir() -> str:
    return f"# make {CA_DIR} private again (0700: it holds the CA's key)\nchmod 700 {CA_DIR}"


def make_ca() -> str:
    """Shell: a new CA key (0600, never leaves this host) and its certificate."""
    return f"""# make the registry's CA (its key stays on this host, 0600)
mkdir -p {CA_DIR} && chmod 700 {CA_DIR}
(umask 077; openssl genrsa -out {CA_KEY} 4096 2>/dev/null)
openssl req -new -key {CA_KEY} -subj {shlex.quote(CA_SUBJECT)} -out {CA_DIR}/ca.csr
{_sign_ca()}"""


def reissue_ca() -> str:
    """Shell: the CA's certificate again, same key and name, with a CA's extensions."""
    return f"""# re-issue the registry's CA with its key usage (same key and name: what it signed stays valid)
openssl x509 -x509toreq -in {CA_CERT} -signkey {CA_KEY} -out {CA_DIR}/ca.csr 2>/dev/null
{_sign_ca()}"""


def _sign_ca() -> str:
    extensions = " ".join(shlex.quote(line) for line in CA_EXTENSIONS)
    return f"""printf '%s\\n' {extensions} > {CA_DIR}/ca.ext
openssl x509 -req -in {CA_DIR}/ca.csr -signkey {CA_KEY} -sha256 -days {CA_DAYS} -set_serial "0x$(openssl rand -hex 16)" -extfile {CA_DIR}/ca.ext -out {CA_CERT}.new 2>/dev/null
mv -f {CA_CERT}.new {CA_CERT}; chmod 644 {CA_CERT}
rm -f {CA_DIR}/ca.csr {CA_DIR}/ca.ext"""


def make_server_cert(
    reason: str, names: list[str], common_name: str, cert: str = SERVER_CERT, key: str = SERVER_KEY
) -> str:
    """Shell: a new server key and certificate for ``names``, signed by the CA (a replica's: into its
    folder beside the CA, 0700, until its own run takes them)."""
    sans = ",".join(f"IP:{name}" if is_ip(name) else f"DNS:{name}" for name in names)
    extensions = " ".join(shlex.quote(line) for line in (f"subjectAltName={sans}", *SERVER_EXTENSIONS))
    folder = TLS_DIR if cert == SERVER_CERT else REPLICA_DIR
    made = f"mkdir -p {TLS_DIR}" if folder == TLS_DIR else f"( umask 077; mkdir -p {REPLICA_DIR} ) && chmod 700 {REPLICA_DIR}"
    # The request and extensions beside the certificate, for the while of its signing.
    work = shlex.quote(cert.removesuffix(".crt"))
    return f"""# {reason}
{made}
(umask 077; openssl genrsa -out {key}.new 2048 2>/dev/null)
printf '%s\\n' {extensions} > {work}.ext
openssl req -new -key {key}.new -subj {shlex.quote(f"/CN={common_name}")} -out {work}.csr
openssl x509 -req -in {work}.csr -CA {CA_CERT} -CAkey {CA_KEY} -CAcreateserial -days {SERVER_DAYS} -sha256 -extfile {work}.ext -out {cert}.new 2>/dev/null
mv -f {key}.new {key}; mv -f {cert}.new {cert}
rm -f {work}.csr {work}.ext"""


def put_key(key: bytes, before: str, whose: str = "the operator's") -> str:
    """Shell: ``whose`` server key in place (0600), if the host's still has the digest ``before``
    ("" for none); else the conflict exit, so the engine reads the host again.

    A command, not a file change, so that the host's key is never read back: only its digest.
    The key is base64 in a here-document, on the script's stdin, never on a command line.
    """
    encoded = base64.b64encode(key).decode()
    conflict = shlex.quote(f"{MARK} conflict {SERVER_KEY} changed since facts were gathered")
    return f"""# put {whose} server key in place (a secret: 0600, content not shown)
now=$(sha256sum 2>/dev/null < {SERVER_KEY} | cut -d' ' -f1) || now=
[ "$now" = {shlex.quote(before)} ] || {{ echo {conflict}; exit {CONFLICT_EXIT}; }}
mkdir -p {TLS_DIR}
(umask 077; base64 -d > {SERVER_KEY}.new <<'KOLLA_REGISTRY_KEY'
{encoded}
KOLLA_REGISTRY_KEY
)
chmod 600 {SERVER_KEY}.new; sync {SERVER_KEY}.new; mv -f {SERVER_KEY}.new {SERVER_KEY}"""


def is_ip(name: str) -> bool:
    return bool(re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", name))
