"""The registry's own files on the hosts that run an instance: TLS, login, storage settings."""

# What the registry container sees of TLS: its server certificate and key, nothing else.
TLS_DIR = "/etc/kolla-registry/tls"
SERVER_CERT, SERVER_KEY = f"{TLS_DIR}/server.crt", f"{TLS_DIR}/server.key"
# The CA (self-signed) in a folder of its own, 0700: never mounted into the network-facing container.
CA_DIR = "/etc/kolla-registry/ca"
CA_CERT, CA_KEY = f"{CA_DIR}/ca.crt", f"{CA_DIR}/ca.key"
# Where versions before CA_DIR kept the CA, next to the server's files (moved once by deploy-host).
OLD_CA_CERT, OLD_CA_KEY = f"{TLS_DIR}/ca.crt", f"{TLS_DIR}/ca.key"
AUTH_DIR = "/etc/kolla-registry/auth"
HTPASSWD, PASSWORD = f"{AUTH_DIR}/htpasswd", f"{AUTH_DIR}/password"
REGISTRY_USER = "kolla"
# An S3 store's settings, secret key included (0600): read by docker run --env-file only.
ENV_FILE = "/etc/kolla-registry/registry.env"
# Each replica's server certificate and key (tls: self-signed), issued on the deployment host by its CA,
# kept beside it (0700) until the replica's run writes them there.
REPLICA_DIR = f"{CA_DIR}/replicas"


def replica_cert(name: str) -> str:
    return f"{REPLICA_DIR}/{name}.crt"


def replica_key(name: str) -> str:
    return f"{REPLICA_DIR}/{name}.key"
