"""Where the registry keeps its images: the named volume on its host, or an S3 bucket every instance shares.

An S3 store's settings go in an env file on the instance's host (0600), never
on its command line. Every instance of one store needs the same ``http.secret``
(it signs upload state that a client may carry from one instance to the next).
It is derived from the S3 secret key with HMAC, so every host gets the same one
without the hosts exchanging it, and no file on the deployment host has to be
kept safe besides the key itself: whoever holds that key holds the whole store anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import shlex

from ..model.facts import HostFacts
from ..model.inventory import RegistrySettings
from ..model.plan import FileChange
from .paths import ENV_FILE


def http_secret(settings: RegistrySettings) -> str:
    """The ``http.secret`` every instance of this store shares."""
    store = settings.s3
    message = f"kolla-registry http.secret\0{store.endpoint}\0{store.bucket}".encode()
    return hmac.new(store.secret_key().encode(), message, hashlib.sha256).hexdigest()


def registry_env(settings: RegistrySettings) -> str:
    """The env file's text (``docker run --env-file``: one KEY=VALUE a line, taken literally)."""
    store = settings.s3
    values = {
        "REGISTRY_STORAGE": "s3",
        "REGISTRY_STORAGE_S3_REGION": store.region,
        "REGISTRY_STORAGE_S3_REGIONENDPOINT": store.endpoint,
        "REGISTRY_STORAGE_S3_BUCKET": store.bucket,
        "REGISTRY_STORAGE_S3_ACCESSKEY": store.access_key,
        "REGISTRY_STORAGE_S3_SECRETKEY": store.secret_key(),
        # Path-style URLs: RGW, MinIO and SeaweedFS without wildcard DNS for buckets.
        "REGISTRY_STORAGE_S3_FORCEPATHSTYLE": "true",
        # Blobs come through the instance: nodes need not reach the store, nor trust its certificate.
        "REGISTRY_STORAGE_REDIRECT_DISABLE": "true",
        # distribution 2.8's upload purger panics walking an S3 store (index out of range in
        # getOutstandingUploads; goharbor/harbor#23784): the registry dies when it runs, up to an hour after start.
        "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING": '{"enabled":false}',
        "REGISTRY_HTTP_SECRET": http_secret(settings),
    }
    header = "# Written by kolla-registry (fab deploy-host): this registry's store. Secret: 0600.\n"
    return header + "".join(f"{key}={value}\n" for key, value in values.items())


def env_file_change(facts: HostFacts, settings: RegistrySettings) -> list[FileChange]:
    """An S3 store's env file (0600, a secret), when it differs; the container's spec carries its hash,
    so a changed store recreates the container (Docker reads the file only at ``docker run``)."""
    if not settings.s3:
        return []
    text = registry_env(settings)
    if facts.files.get(ENV_FILE) == text:
        return []
    return [FileChange(ENV_FILE, facts.files.get(ENV_FILE), text, mode="600", secret=True)]


def store_notes(settings: RegistrySettings) -> list[str]:
    """What the deploy-host row says of the store: a plain-HTTP one, every run (the operator allowed it)."""
    store = settings.s3
    if not store or not store.endpoint.lower().startswith("http://"):
        return []
    warning = (
        f"the S3 store {store.endpoint} is plain HTTP (registry.storage.s3.insecure: true): "
        "anyone between the registries and the store can swap the images the nodes run"
    )
    return [warning]


def storage_option(settings: RegistrySettings) -> str:
    """The named volume, or the S3 store's env file (its keys stay off the command line)."""
    if settings.s3:
        return f"--env-file {ENV_FILE}"
    return f"-v {shlex.quote(settings.volume)}:/var/lib/registry"


def carry_data(container: dict, settings: RegistrySettings) -> list[str]:
    """Copy images from the old container's storage when the volume is new.

    The procedure's registry kept its images in an anonymous volume, which a
    recreated container would not see. An S3 store is where it was.
    """
    if settings.s3:
        return []
    mounts = [m for m in container.get("Mounts", []) if m.get("Destination") == "/var/lib/registry"]
    if not mounts or mounts[0].get("Name") == settings.volume:
        return []
    source = shlex.quote(mounts[0]["Source"])
    target = shlex.quote(settings.volume)
    return [
        (
            f"if ! docker volume inspect {target} >/dev/null 2>&1; then docker volume create {target} >/dev/null; "
            f"cp -a {source}/. \"$(docker volume inspect -f '{{{{.Mountpoint}}}}' {target})\"/; fi"
        )
    ]
