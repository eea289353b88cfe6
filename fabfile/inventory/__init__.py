"""The inventory file: ``load`` reads and checks ``hosts.yaml`` (``$KOLLA_REGISTRY_HOSTS``)."""

from .load import ENV_VAR, default_path, load, load_images, parse

__all__ = ["ENV_VAR", "default_path", "load", "load_images", "parse"]
