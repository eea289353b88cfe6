"""Podman: a registries.conf.d drop-in this tool owns, its CA in certs.d, the pull check; no daemon."""
