"""The registry: its container, TLS, login, storage (a volume or S3), garbage collection, replicas, status."""
