"""Where this tool keeps its own state on every host it changes."""

STATE_DIR = "/var/lib/kolla-registry"
# The changes written whose Docker handler has not run yet: "ACTION PATH BACKUP" lines.
PENDING = f"{STATE_DIR}/pending"
LOCK = f"{STATE_DIR}/lock"
APT_STAMP = f"{STATE_DIR}/apt-updated"
BACKUP_DIR = "/var/backups/kolla-registry"
