"""Podman's files on a host: its registries configuration and certificates."""

NAME = "podman"
REGISTRIES_CONF = "/etc/containers/registries.conf"
REGISTRIES_DIR = "/etc/containers/registries.conf.d"
# When root has its own registries.conf, podman reads it instead of the system file and folder.
ROOT_CONF = "/root/.config/containers/registries.conf"
ROOT_DIR = "/root/.config/containers/registries.conf.d"
DROPIN = f"{REGISTRIES_DIR}/50-kolla-registry.conf"


def ca_path(registry: str) -> str:
    """Where podman looks for a registry's CA, on every pull (it has no daemon to reload)."""
    return f"/etc/containers/certs.d/{registry}/ca.crt"
