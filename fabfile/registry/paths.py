"""The registry's own files on the hosts that run an instance: TLS, login, storage settings."""

# A secure registry's files: its CA and server certificate, its login.
TLS_DIR = "/etc/kolla-registry/tls"
CA_CERT, CA_KEY = f"{TLS_DIR}/ca.crt", f"{TLS_DIR}/ca.key"
SERVER_CERT, SERVER_KEY = f"{TLS_DIR}/server.crt", f"{TLS_DIR}/server.key"
AUTH_DIR = "/etc/kolla-registry/auth"
HTPASSWD, PASSWORD = f"{AUTH_DIR}/htpasswd", f"{AUTH_DIR}/password"
REGISTRY_USER = "kolla"
# An S3 store's settings, secret key included (0600): read by docker run --env-file only.
ENV_FILE = "/etc/kolla-registry/registry.env"
