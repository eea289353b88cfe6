"""Podman nodes: registries.conf, the registry's CA and the pull check (Podman has no daemon to reload)."""
