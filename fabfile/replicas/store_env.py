"""A registry instance's S3 settings: an env file on its host (0600), never its command line.

Every instance of one store needs the same ``http.secret`` (it signs upload
state that a client may carry from one instance to the next). It is derived
from the S3 secret key with HMAC, so every host gets the same one without the
hosts exchanging it, and no file on the deployment host has to be kept safe
besides the key itself: whoever holds that key holds the whole store anyway.
"""

from __future__ import annotations

import hashlib
import hmac

from ..inventory import RegistrySettings

ENV_FILE = "/etc/kolla-registry/registry.env"


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
        "REGISTRY_HTTP_SECRET": http_secret(settings),
    }
    header = "# Written by kolla-registry (fab deploy-host): this registry's store. Secret: 0600.\n"
    return header + "".join(f"{key}={value}\n" for key, value in values.items())


def parse_env(text: str) -> dict[str, str]:
    """KEY=VALUE lines as ``docker --env-file`` reads them (comments and blank lines skipped)."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {key: value for key, value in pairs}
