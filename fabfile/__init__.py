"""kolla-registry: a Docker registry on the deployment host, trusted by every Kolla node.

``fab -H deploy1 deploy-host`` runs the documented steps on the deployment host;
``fab configure-targets`` points every target node's Docker at the registry;
``sync-images``, ``kolla-globals``, ``pull-images``, ``check-images`` and ``status`` fill it,
wire kolla-ansible to it and check the hosts; ``prune-registry`` deletes old releases from it;
``export-images`` carries the images to a site without internet.
Hosts come from ``hosts.yaml`` (or ``$KOLLA_REGISTRY_HOSTS``).
"""

from invoke import Collection

from .kolla.globals_yaml import GLOBALS_PATH
from .tasks import check, deploy, export, kolla_globals, prune, pull, status, sync, targets

ns = Collection(
    *deploy.STEP_TASKS,
    deploy.verify_registry,
    deploy.deploy_host,
    targets.configure_targets,
    sync.sync_images,
    export.export_images,
    prune.prune_registry,
    kolla_globals.kolla_globals,
    pull.pull_images,
    check.check_images,
    status.status,
)
ns.configure(
    {
        "kolla_registry": {
            # Hosts at once: 0 is every host, up to 100 (fewer with a low open-files limit).
            "parallel": 0,
            "sync_parallel": 4,
            "globals_path": GLOBALS_PATH,
            "cli_hosts": [],
            # Seconds a script may run on a host; seconds Docker may take to answer after a
            # reload or restart; backups kept per file in /var/backups/kolla-registry.
            "command_timeout": 1800,
            "docker_wait": 60,
            "backups_kept": 10,
        }
    }
)
