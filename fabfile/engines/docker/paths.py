"""Docker's files on a host, as this tool reads and writes them."""

NAME = "docker"
DAEMON_JSON = "/etc/docker/daemon.json"
DEFAULT_DOCKER = "/etc/default/docker"
DROPIN_DIR = "/etc/systemd/system/docker.service.d"
DOCKER_SOCKET = "/var/run/docker.sock"


def ca_path(registry: str) -> str:
    """Where Docker looks for a registry's CA, on every pull (no reload needed)."""
    return f"/etc/docker/certs.d/{registry}/ca.crt"
