"""Docker: daemon.json or DOCKER_OPTS (never both), its CA in certs.d, the handler, the pull check."""
